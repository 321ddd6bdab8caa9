//! #[protected_resource] goes on a struct.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
)]
fn calendar() {}

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
)]
pub enum Calendar {}

fn main() {
    calendar();
}
