//! One mistake in a declaration is one error: the struct, its trait impl and the module's tools
//! (rmcp and plain) all still compile against what parsed.
use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};
use rmcp::{tool, tool_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp?tenant=1",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

pub struct Server;

#[tool_router]
impl Server {
    #[mcp_tool(scopes = ["calendar:write"])]
    #[tool(description = "Create an event")]
    async fn create_event(&self) -> String {
        String::new()
    }
}

#[mcp_tool(scopes = ["calendar:read"], resource = Calendar)]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {
    let _ = Calendar::DECLARATION;
    let _ = Server::tool_router();
    let _ = (list_events, list_events_scopes());
}
