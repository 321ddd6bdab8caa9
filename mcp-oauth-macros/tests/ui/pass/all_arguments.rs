//! Every argument of `#[protected_resource]`, on unit, tuple and named structs, and the
//! declaration they produce.
#![deny(warnings)]

use mcp_oauth::protected_resource;
use mcp_oauth::resource::{ProtectedResource, ResourceConfig};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com", "http://localhost:9000/realms/dev"],
    scopes = ["mcp:use", "calendar:read", "calendar:write", "calendar:admin"],
    implies = {
        "calendar:admin" => ["calendar:write", "calendar:read"],
        "calendar:write" => "calendar:read",
    },
    resources = {
        "calendar://events/{day}" => ["calendar:read"],
        "calendar://settings" => "calendar:admin",
    },
    required_scopes = ["mcp:use"],
    challenge_scopes = ["mcp:use", "calendar:read"],
    resource_name = "Calendar",
    resource_documentation = "https://docs.example.com/calendar#auth",
    resource_policy_uri = "https://example.com/privacy",
    resource_tos_uri = "https://example.com/tos",
    bearer_methods_supported = ["header"],
    resource_signing_alg_values_supported = ["ES256", "RS256"],
    authorization_details_types_supported = ["calendar_event"],
    dpop = "allowed",
    dpop_signing_alg_values_supported = ["ES256", "EdDSA"],
)]
#[derive(Debug, Default)]
pub struct Calendar {
    pub name: String,
}

#[protected_resource(resource = "http://127.0.0.1:8080/mcp", authorization_servers = ["http://[::1]:9000"])]
pub struct Minimal(pub u8);

#[protected_resource(
    resource = "https://unit.example.com",
    authorization_servers = ["https://auth.example.com"],
    scopes = [],
    implies = {},
    resources = {},
    bearer_methods_supported = [],
)]
struct Unit;

// A resource whose declaration nothing reads: no dead-code warning for what is generated.
#[protected_resource(resource = "https://unused.example.com/mcp", authorization_servers = ["https://auth.example.com"])]
struct Unused;

fn main() {
    let _ = Unused;
    let d = Calendar::DECLARATION;
    assert_eq!(d.type_name, "Calendar");
    assert_eq!(d.resource, "https://calendar.example.com/mcp");
    assert_eq!(d.authorization_servers.len(), 2);
    assert_eq!(d.scopes, ["mcp:use", "calendar:read", "calendar:write", "calendar:admin"]);
    assert_eq!(
        d.scope_implications,
        [
            ("calendar:admin", "calendar:write"),
            ("calendar:admin", "calendar:read"),
            ("calendar:write", "calendar:read"),
        ]
    );
    assert_eq!(d.resources.len(), 2);
    assert_eq!(d.resources[0].uri_template, "calendar://events/{day}");
    assert_eq!(d.resources[0].scopes, ["calendar:read"]);
    assert_eq!(d.resources[1].uri_template, "calendar://settings");
    assert_eq!(d.resources[1].scopes, ["calendar:admin"]);
    assert_eq!(d.required_scopes, ["mcp:use"]);
    assert_eq!(d.challenge_scopes, Some(&["mcp:use", "calendar:read"][..]));
    assert_eq!(d.resource_name, Some("Calendar"));
    assert_eq!(d.resource_documentation, Some("https://docs.example.com/calendar#auth"));
    assert_eq!(d.resource_policy_uri, Some("https://example.com/privacy"));
    assert_eq!(d.resource_tos_uri, Some("https://example.com/tos"));
    assert_eq!(d.bearer_methods_supported, ["header"]);
    assert_eq!(d.resource_signing_alg_values_supported, ["ES256", "RS256"]);
    assert_eq!(d.authorization_details_types_supported, ["calendar_event"]);
    assert_eq!(d.dpop, mcp_oauth::dpop::DpopMode::Allowed);
    assert_eq!(d.dpop_signing_alg_values_supported, ["ES256", "EdDSA"]);
    assert!(Calendar::scope_hierarchy().implies("calendar:admin", "calendar:read"));
    assert!(Calendar::config().metadata().is_ok());
    assert_eq!(Calendar::default().name, "");

    let m = Minimal::DECLARATION;
    assert!(m.scopes.is_empty() && m.challenge_scopes.is_none() && m.resources.is_empty());
    assert_eq!(m.bearer_methods_supported, ["header"]);
    assert_eq!(m.dpop, mcp_oauth::dpop::DpopMode::Disabled);
    assert!(ResourceConfig::of::<Minimal>().metadata().is_ok());
    assert_eq!(Minimal(7).0, 7);

    assert!(Unit::DECLARATION.bearer_methods_supported.is_empty());
    assert!(Unit::DECLARATION.resources.is_empty());
    let _ = Unit;
}
