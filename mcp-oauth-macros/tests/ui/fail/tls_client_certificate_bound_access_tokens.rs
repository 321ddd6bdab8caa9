//! mTLS binding is not enforced yet, so it is not advertised.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    tls_client_certificate_bound_access_tokens = true,
)]
pub struct Calendar;

fn main() {}
