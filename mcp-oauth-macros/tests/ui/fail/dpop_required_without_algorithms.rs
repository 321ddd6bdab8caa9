//! DPoP with an empty list of proof algorithms could accept no proof.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "required",
    dpop_signing_alg_values_supported = [],
)]
pub struct Calendar;

fn main() {}
