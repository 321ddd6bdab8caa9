//! A tool in a module that declares no resource must name one.
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool};

#[mcp_tool(scopes = ["calendar:read"])]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {}
