//! An unknown argument is reported at its name, with the nearest known one.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scope = ["calendar:read"],
)]
pub struct Calendar;

fn main() {}
