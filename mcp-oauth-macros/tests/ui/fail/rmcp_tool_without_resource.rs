//! An rmcp tool in a module that declares no resource must name one.
use rmcp::{tool, tool_router};

pub struct Server;

#[tool_router]
impl Server {
    #[mcp_oauth::mcp_tool(scopes = ["calendar:read"])]
    #[tool(description = "List events")]
    async fn list_events(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Server::tool_router();
}
