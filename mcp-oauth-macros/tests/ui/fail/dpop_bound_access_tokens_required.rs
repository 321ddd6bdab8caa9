//! The "DPoP required" member follows from `dpop = "required"`; it is not written by hand.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop_bound_access_tokens_required = true,
)]
pub struct Calendar;

fn main() {}
