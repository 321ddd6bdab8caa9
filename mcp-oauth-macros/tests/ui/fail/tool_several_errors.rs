//! Every mistake of an #[mcp_tool] is reported at once.
use mcp_oauth::{mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
)]
pub struct Calendar;

#[mcp_tool(scope = ["calendar:read"], resource = Self)]
fn list_events(day: u32) -> Vec<u32> {
    vec![day]
}

fn main() {
    let _ = list_events(1);
}
