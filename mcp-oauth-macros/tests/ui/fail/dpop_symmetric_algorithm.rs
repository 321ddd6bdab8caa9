//! `none` and HMAC are never DPoP proof algorithms: a proof is signed by the key it carries.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "allowed",
    dpop_signing_alg_values_supported = ["ES256", "HS256", "none"],
)]
pub struct Calendar;

fn main() {}
