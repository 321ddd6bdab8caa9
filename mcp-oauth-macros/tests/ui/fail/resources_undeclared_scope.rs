//! A scope of a declared resource must be in `scopes`; with none near, the error lists the
//! declared scopes.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
    resources = { "contacts://people/{id}" => ["contacts:read"] },
)]
pub struct Calendar;

fn main() {}
