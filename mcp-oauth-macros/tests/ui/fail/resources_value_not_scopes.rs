//! `resources` maps each URI or template to a scope or a list of scopes; anything else is
//! reported at the value, every mistake at once.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read"],
    resources = {
        "calendar://events/{day}" => calendar_read,
        "calendar://settings" => ["calendar:read", 42],
        "calendar://today": "calendar:read",
        "calendar://week" =>,
    },
)]
pub struct Calendar;

#[protected_resource(
    resource = "https://contacts.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    resources = ["contacts://people/{id}"],
)]
pub struct Contacts;

fn main() {}
