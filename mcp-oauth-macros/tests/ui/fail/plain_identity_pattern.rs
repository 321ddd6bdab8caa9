//! The identity parameter must be bound to a simple name.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(mcp_oauth::rmcp::Authenticated(token): mcp_oauth::rmcp::Authenticated) -> Result<(), InsufficientScope> {
    let _ = token;
    Ok(())
}

fn main() {}
