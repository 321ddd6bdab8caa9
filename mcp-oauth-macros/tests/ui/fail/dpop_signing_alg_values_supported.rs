//! DPoP is not enforced yet, so it is not advertised.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop_signing_alg_values_supported = ["ES256"],
)]
pub struct Calendar;

fn main() {}
