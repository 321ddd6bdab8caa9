//! With two resources in one module, a tool must name its resource.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
)]
pub struct Calendar;

#[protected_resource(
    resource = "https://files.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["files:read"],
)]
pub struct Files;

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {}
