//! A misspelt scope in a prompt names the scope, the resource, and the declared scope it is
//! nearest to; an undeclared scope with none near lists what the resource declares.
use mcp_oauth::{mcp_prompt, protected_resource};
use rmcp::model::PromptMessage;
use rmcp::{prompt, prompt_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[derive(Clone)]
pub struct Server;

#[prompt_router]
impl Server {
    #[mcp_prompt(scopes = ["calendar:raed", "contacts:read"])]
    #[prompt(description = "Summarise a day")]
    async fn summarise_day(&self) -> Vec<PromptMessage> {
        Vec::new()
    }
}

fn main() {
    let _ = Server::prompt_router();
}
