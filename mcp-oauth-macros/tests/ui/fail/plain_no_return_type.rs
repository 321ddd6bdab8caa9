//! A plain function without a return type cannot return early.
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read"])]
async fn list_events(identity: &VerifiedToken) {
    let _ = identity;
}

fn main() {}
