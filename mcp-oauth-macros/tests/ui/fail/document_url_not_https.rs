//! Document links must be https URLs.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    resource_tos_uri = "http://example.com/tos",
)]
pub struct Calendar;

fn main() {}
