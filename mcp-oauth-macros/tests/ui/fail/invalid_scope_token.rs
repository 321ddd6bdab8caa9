//! A scope must be an RFC 6749 scope-token.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar write", "caf\u{e9}"],
)]
pub struct Calendar;

fn main() {}
