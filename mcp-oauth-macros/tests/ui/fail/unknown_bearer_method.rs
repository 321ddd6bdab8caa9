//! Bearer methods are header or body.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    bearer_methods_supported = ["header", "cookie"],
)]
pub struct Calendar;

fn main() {}
