//! #[mcp_tool] below rmcp's #[tool] comes too late to guard the tool.
use mcp_oauth::{mcp_tool, protected_resource};
use rmcp::{tool, tool_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

pub struct Server;

#[tool_router]
impl Server {
    #[tool(description = "List events")]
    #[mcp_tool(scopes = ["calendar:read"])]
    async fn list_events(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Server::tool_router();
}
