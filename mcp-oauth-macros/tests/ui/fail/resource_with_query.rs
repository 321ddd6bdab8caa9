//! `resource` must not have a query.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp?tenant=1",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Calendar;

fn main() {}
