//! A plain function must receive the verified identity.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(day: u32) -> Result<(), InsufficientScope> {
    let _ = day;
    Ok(())
}

fn main() {}
