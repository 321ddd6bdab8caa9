//! `resource` is required: reported at the attribute.
use mcp_oauth::protected_resource;

#[protected_resource(
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
