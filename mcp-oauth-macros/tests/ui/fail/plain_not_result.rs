//! A plain function must return a Result to return early on missing scopes.
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(identity: &VerifiedToken) -> Vec<String> {
    let _ = identity;
    Vec::new()
}

fn main() {}
