//! `resource` must be written as clients will send it.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/a/../mcp",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
