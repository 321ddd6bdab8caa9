//! `resource` must be https; plain http only on loopback.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "http://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
