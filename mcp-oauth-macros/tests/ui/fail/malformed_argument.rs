//! An argument that is not `name = value` / a value of the wrong kind.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes: ["calendar:read"],
    resource_name = Calendar,
)]
pub struct Calendar;

fn main() {}
