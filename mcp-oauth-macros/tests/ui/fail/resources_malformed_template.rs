//! A declared URI template is checked with the runtime's RFC 6570 grammar at compile time:
//! each malformed one fails the build at its literal, saying what is wrong.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
    resources = {
        "calendar://events/{day" => "calendar:read",
        "calendar://events/{day}" => "calendar:read",
        "calendar://my events" => "calendar:read",
        "calendar://{!day}" => "calendar:read",
        "" => "calendar:read",
    },
)]
pub struct Calendar;

fn main() {}
