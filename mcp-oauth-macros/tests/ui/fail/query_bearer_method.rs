//! MCP forbids access tokens in the URI.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    bearer_methods_supported = ["header", "query"],
)]
pub struct Calendar;

fn main() {}
