//! Proof algorithms without `dpop` are never used (DPoP is disabled by default).
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop_signing_alg_values_supported = ["ES256", "EdDSA"],
)]
pub struct Calendar;

fn main() {}
