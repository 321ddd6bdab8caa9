//! The hierarchy names only declared scopes.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
    implies = { "calendar:admin" => ["calendar:write"], "calendar:write" => ["calendar:raed"] },
)]
pub struct Calendar;

fn main() {}
