//! A scope implying itself is a cycle of one.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
    implies = { "calendar:write" => ["calendar:write", "calendar:read"] },
)]
pub struct Calendar;

fn main() {}
