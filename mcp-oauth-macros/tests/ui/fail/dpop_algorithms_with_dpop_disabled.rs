//! Proof algorithms with `dpop = "disabled"` are never used.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "disabled",
    dpop_signing_alg_values_supported = ["ES256"],
)]
pub struct Calendar;

fn main() {}
