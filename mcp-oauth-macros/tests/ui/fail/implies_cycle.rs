//! A hierarchy cycle is reported at the implication that closes it.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["a", "b", "c"],
    implies = { "a" => ["b"], "b" => ["c"], "c" => ["a"] },
)]
pub struct Calendar;

fn main() {}
