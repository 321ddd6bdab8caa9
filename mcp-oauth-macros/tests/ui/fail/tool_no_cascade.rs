//! A mistake in #[mcp_tool] is one error: the function and its `_scopes()` sibling still exist.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read", "calendar read"])]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {
    let _ = list_events_scopes();
    let _ = list_events;
}
