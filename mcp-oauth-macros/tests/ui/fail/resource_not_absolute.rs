//! `resource` must be an absolute URL.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
