//! `scopes` written as a string instead of a list: one error, and the tools that use the scope
//! still compile.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = "calendar:read",
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {
    let _ = (list_events, list_events_scopes());
}
