//! MCP: resources SHOULD NOT advertise offline_access.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "offline_access"],
)]
pub struct Calendar;

fn main() {}
