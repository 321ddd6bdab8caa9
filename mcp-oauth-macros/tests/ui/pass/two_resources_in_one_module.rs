//! Two resources in one module: tools name theirs with `resource = Type`; the module compiles
//! although the implicit marker is ambiguous, because nothing uses it.
#![deny(warnings)]

use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "shared"],
)]
pub struct Calendar;

#[protected_resource(
    resource = "https://files.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["files:read", "shared"],
)]
pub struct Files(pub u8);

#[mcp_tool(scopes = ["calendar:read", "shared"], resource = Calendar)]
fn list_events(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

#[mcp_tool(scopes = ["files:read"], resource = self::Files)]
async fn read_file(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {
    assert_eq!(Calendar::DECLARATION.scope_mask(&["shared"]), 0b10);
    assert_eq!(Files::DECLARATION.scope_mask(&["files:read"]), 0b01);
    assert_eq!(list_events_scopes().name, "list_events");
    assert_eq!(read_file_scopes().name, "read_file");
    let _ = (list_events, read_file, Files(0).0);
}
