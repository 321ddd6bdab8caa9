//! `#[mcp_prompt]` guards an rmcp prompt: without rmcp's `#[prompt]` below it, it says where it
//! goes.
use mcp_oauth::{mcp_prompt, protected_resource};
use rmcp::model::PromptMessage;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
)]
pub struct Calendar;

#[mcp_prompt(scopes = ["calendar:read"])]
fn summarise_day() -> Vec<PromptMessage> {
    Vec::new()
}

fn main() {
    let _ = summarise_day();
}
