//! `resources = {...}`: URIs and RFC 6570 URI templates (levels 1 to 4) with the scopes reading
//! them needs, in written order; a scope alone or a list, `[]` for no particular scope; under
//! a `#[cfg]` the template checks go with the struct.
#![deny(warnings)]

use mcp_oauth::__private::DeclaredResource;
use mcp_oauth::protected_resource;
use mcp_oauth::resource::ProtectedResource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin"],
    resources = {
        "calendar://events/{day}" => ["calendar:read"],
        "calendar://events/{day}/attendees{?page,per_page}" => ["calendar:read", "calendar:write"],
        "file:///calendars/{+path}" => "calendar:admin",
        "calendar://settings" => "calendar:admin",
        "calendar://public{/segments*}{#section}" => [],
        "calendar://events/%E2%9C%93/{day:10}{;flags*}{.ext}{&more}" => "calendar:read",
    },
)]
pub struct Calendar;

#[cfg(any())]
#[protected_resource(
    resource = "https://gone.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["a"],
    resources = { "gone://{x}" => "a" },
)]
pub struct Gone;

fn main() {
    let resources = Calendar::DECLARATION.resources;
    assert_eq!(resources.len(), 6);
    assert_eq!(
        resources[0],
        DeclaredResource { uri_template: "calendar://events/{day}", scopes: &["calendar:read"] }
    );
    assert_eq!(resources[1].scopes, ["calendar:read", "calendar:write"]);
    assert_eq!(resources[2].scopes, ["calendar:admin"]);
    assert_eq!(resources[3].uri_template, "calendar://settings");
    assert!(resources[4].scopes.is_empty());
    assert_eq!(resources[5].scopes, ["calendar:read"]);
}
