//! Every mistake of a declaration is reported at once.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "http://calendar.example.com/mcp#x",
    authorization_servers = [],
    scopes = ["calendar:read", "calendar read", "offline_access"],
    implies = { "calendar:write" => "calendar:read" },
    bearer_methods_supported = ["query"],
    dpop_bound_access_tokens_required = true,
    resource_nmae = "Calendar",
)]
pub struct Calendar;

fn main() {}
