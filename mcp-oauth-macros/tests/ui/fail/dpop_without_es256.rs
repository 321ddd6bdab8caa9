//! The proof algorithms include ES256, the one every DPoP client supports.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "required",
    dpop_signing_alg_values_supported = ["EdDSA", "ES384"],
)]
pub struct Calendar;

fn main() {}
