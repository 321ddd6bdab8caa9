//! DPoP is not enforced yet, so it is not advertised.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop_bound_access_tokens_required = true,
)]
pub struct Calendar;

fn main() {}
