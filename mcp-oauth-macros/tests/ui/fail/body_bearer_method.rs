//! The layer reads tokens from the Authorization header only: advertising `body` would
//! promise what is not enforced.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    bearer_methods_supported = ["header", "body"],
)]
pub struct Calendar;

fn main() {}
