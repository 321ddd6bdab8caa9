//! A misspelt scope in an rmcp tool names the scope, the resource, and the declared scope it
//! is nearest to.
use mcp_oauth::{mcp_tool, protected_resource};
use rmcp::{tool, tool_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[derive(Clone)]
pub struct Server;

#[tool_router]
impl Server {
    #[mcp_tool(scopes = ["calendar:wirte"])]
    #[tool(description = "Create an event")]
    async fn create_event(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Server::tool_router();
}
