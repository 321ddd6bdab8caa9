//! The proof algorithms are a list.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "allowed",
    dpop_signing_alg_values_supported = "ES256",
)]
pub struct Calendar;

fn main() {}
