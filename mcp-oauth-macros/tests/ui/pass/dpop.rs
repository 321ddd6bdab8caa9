//! `dpop = "…"` and `dpop_signing_alg_values_supported`: the declaration they produce, and
//! the metadata members the runtime derives from them (`dpop_bound_access_tokens_required`
//! only for "required"; the default algorithms when none are named).
#![deny(warnings)]

use mcp_oauth::dpop::{DEFAULT_PROOF_ALGORITHMS, DpopMode};
use mcp_oauth::protected_resource;
use mcp_oauth::resource::{ProtectedResource, ResourceConfig};
use serde_json::{Value, json};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "required",
    dpop_signing_alg_values_supported = ["ES256", "EdDSA"],
)]
pub struct Required;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "allowed",
)]
pub struct Allowed;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    dpop = "disabled",
)]
pub struct Disabled;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
)]
pub struct Unsaid;

fn metadata<R: ProtectedResource>() -> Value {
    let json = ResourceConfig::of::<R>().metadata().unwrap().to_json();
    serde_json::from_str(&json).unwrap()
}

fn main() {
    assert_eq!(Required::DECLARATION.dpop, DpopMode::Required);
    assert_eq!(
        Required::DECLARATION.dpop_signing_alg_values_supported,
        ["ES256", "EdDSA"]
    );
    let required = metadata::<Required>();
    assert_eq!(
        required["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    assert_eq!(required["dpop_bound_access_tokens_required"], json!(true));
    assert_eq!(
        ResourceConfig::of::<Required>()
            .dpop_algorithms()
            .unwrap()
            .iter()
            .count(),
        2
    );

    assert_eq!(Allowed::DECLARATION.dpop, DpopMode::Allowed);
    assert!(
        Allowed::DECLARATION
            .dpop_signing_alg_values_supported
            .is_empty()
    );
    let allowed = metadata::<Allowed>();
    assert_eq!(
        allowed["dpop_signing_alg_values_supported"],
        json!(DEFAULT_PROOF_ALGORITHMS)
    );
    assert!(allowed.get("dpop_bound_access_tokens_required").is_none());

    for (mode, document) in [
        (Disabled::DECLARATION.dpop, metadata::<Disabled>()),
        (Unsaid::DECLARATION.dpop, metadata::<Unsaid>()),
    ] {
        assert_eq!(mode, DpopMode::Disabled);
        assert!(
            document.get("dpop_signing_alg_values_supported").is_none(),
            "{document}"
        );
        assert!(
            document.get("dpop_bound_access_tokens_required").is_none(),
            "{document}"
        );
    }
}
