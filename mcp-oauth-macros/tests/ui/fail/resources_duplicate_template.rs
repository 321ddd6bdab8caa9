//! Each URI or template is declared once, with all the scopes it needs: the second one is the
//! error.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
    resources = {
        "calendar://events/{day}" => "calendar:read",
        "calendar://settings" => "calendar:read",
        "calendar://events/{day}" => "calendar:write",
    },
)]
pub struct Calendar;

fn main() {}
