//! `authorization_servers` is required: reported at the attribute.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
)]
pub struct Calendar;

fn main() {}
