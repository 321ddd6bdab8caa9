//! The hierarchy is a map `{ "broader" => ["narrower", …] }`.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["a", "b"],
    implies = { "a": "b" },
)]
pub struct Calendar;

fn main() {}
