//! An unknown DPoP mode is reported at its literal, with the nearest mode and every mode.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "requried",
)]
pub struct Calendar;

fn main() {}
