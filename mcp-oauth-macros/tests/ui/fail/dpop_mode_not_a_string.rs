//! The DPoP mode is a string literal.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = true,
)]
pub struct Calendar;

fn main() {}
