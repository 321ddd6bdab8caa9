//! MCP requires at least one authorization server.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = [],
)]
pub struct Calendar;

fn main() {}
