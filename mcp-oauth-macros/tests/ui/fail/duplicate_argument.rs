//! A repeated argument is reported at the repetition.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
    scopes = ["calendar:write"],
)]
pub struct Calendar;

fn main() {}
