//! `resource` must not have a fragment.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp#top",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
