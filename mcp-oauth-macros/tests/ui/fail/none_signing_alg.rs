//! `none` is never a signing algorithm.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    resource_signing_alg_values_supported = ["ES256", "none"],
)]
pub struct Calendar;

fn main() {}
