//! Issuers follow the same URL rules as `resource`.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com", "http://auth.example.org"],
)]
pub struct Calendar;

fn main() {}
