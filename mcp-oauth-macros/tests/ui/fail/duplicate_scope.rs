//! A scope is declared once.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write", "calendar:read"],
)]
pub struct Calendar;

fn main() {}
