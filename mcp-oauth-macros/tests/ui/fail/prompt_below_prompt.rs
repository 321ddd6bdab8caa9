//! `#[mcp_prompt]` below rmcp's `#[prompt]` sees the boxed future `#[prompt]` made of the body,
//! and says to swap them.
use mcp_oauth::{mcp_prompt, protected_resource};
use rmcp::model::PromptMessage;
use rmcp::{prompt, prompt_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
)]
pub struct Calendar;

#[derive(Clone)]
pub struct Server;

#[prompt_router]
impl Server {
    #[prompt(description = "Summarise a day")]
    #[mcp_prompt(scopes = ["calendar:read"])]
    async fn summarise_day(&self) -> Vec<PromptMessage> {
        Vec::new()
    }
}

fn main() {
    let _ = Server::prompt_router();
}
