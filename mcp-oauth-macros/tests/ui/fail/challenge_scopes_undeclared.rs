//! `challenge_scopes` names only declared scopes.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
    challenge_scopes = ["calendar:reed"],
)]
pub struct Calendar;

fn main() {}
