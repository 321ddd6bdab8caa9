//! A proof algorithm the runtime does not verify is reported at its literal, with the nearest one.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "allowed",
    dpop_signing_alg_values_supported = ["ES256", "EDDSA", "PS-256", "ES512"],
)]
pub struct Calendar;

fn main() {}
