//! An unknown argument far from every known one: the known ones are listed.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    crate = "mcp_oauth",
)]
pub struct Calendar;

fn main() {}
