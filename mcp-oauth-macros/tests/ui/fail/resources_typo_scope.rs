//! A misspelt scope of a declared resource names the scope, the resource, and the declared
//! scope it is nearest to; every such scope is reported, each at its literal.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin"],
    resources = {
        "calendar://events/{day}" => ["calendar:read", "calendar:wirte"],
        "calendar://settings" => "calendar:admn",
    },
)]
pub struct Calendar;

fn main() {}
