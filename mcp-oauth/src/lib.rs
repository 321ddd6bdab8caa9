//! # mcp-oauth
//!
//! Make an MCP server a correct, fast OAuth 2.1 *resource server*.
//!
//! What every program names is at the crate root: the layer and its builder
//! (`OAuthLayer`, `OAuthLayerBuilder`, feature `layer`), the configuration ([`ResourceConfig`],
//! [`ProtectedResource`], [`ResourceDeclaration`]), the [`Validator`] and its [`IssuerPolicy`]
//! (with their builders), what a validation yields ([`VerifiedToken`], [`TokenError`]), the
//! scope types, the two attributes and, with the `rmcp` feature, the `Authenticated`
//! extractor. The same items stay reachable at their module paths.
//!
//! Everything else is organised by concept, one module each (`docs/ARCHITECTURE.md` draws
//! how they depend on each other):
//!
//! | module | what it holds |
//! |---|---|
//! | [`validation`] | JWT access-token validation (RFC 9068, RFC 8725): policies, errors, the verified identity |
//! | [`introspection`] | RFC 7662 introspection, the verifier of opaque tokens |
//! | [`key_set`] | JSON Web Key Sets: parsing, per-issuer caching, discovery, refresh |
//! | [`crypto`] | signature algorithms and pre-parsed verifying keys over aws-lc-rs or RustCrypto |
//! | [`token_cache`] | the verified-token cache (keyed by policy and SHA-256 of the token) |
//! | [`scopes`] | scope sets, the all-of check, scope hierarchies |
//! | [`metadata`] | the RFC 9728 Protected Resource Metadata document and its well-known URL |
//! | [`clock`] | the injectable clock every time-based decision reads |
//! | [`challenge`] | `WWW-Authenticate` challenges (401 discovery, 401 `invalid_token`, 403 step-up) |
//! | [`resource`] | what `#[protected_resource]` declares, and the effective configuration at startup |
//! | [`tools`] | the per-tool scope table and the check `#[mcp_tool]` runs |
//! | [`access`] | the one rule: what an operation needs, and whether a token may perform it |
//! | [`audit`] | one audit event per decision of the layer, and where events go |
//! | [`rate_limit`] | token buckets: failed authentications per client address, requests per principal |
//! | [`metrics`] | counters and histograms through the `metrics` facade (feature `metrics`) |
//! | [`settings`] | a deployment's configuration as data: serde, `MCP_OAUTH_*` variables |
//! | `http` (feature `layer`) | the tower/axum layer: metadata, guard, step-up, Origin, sessions |
//! | `rmcp` (feature `rmcp`) | rmcp extractors (`Authenticated`), tool guards, the table from a `ToolRouter` |
//! | `testing` (feature `testing`) | a local issuer that serves discovery and JWKS and mints any token |
//! | `dev` (feature `dev`) | a dev authorization server: client credentials, auth code + PKCE, DCR, introspection |
//!
//! ## Crypto backends
//!
//! Exactly one backend verifies signatures. The `aws-lc-rs` feature (default) is the fast one;
//! `rust-crypto` is pure Rust for targets where aws-lc does not build. With both enabled,
//! aws-lc-rs is used and nothing panics. No process-wide crypto provider is ever installed:
//! each backend is called explicitly, so applications that install their own are unaffected.
#![forbid(unsafe_code)]
// Without a backend, the compile_error! below is the one message worth reading.
#![cfg_attr(
    not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
    allow(unused, unreachable_code)
)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "mcp-oauth needs a crypto backend: enable the `aws-lc-rs` feature (the default) or, \
     for a pure-Rust build, `rust-crypto` (e.g. `default-features = false, features = [\"rust-crypto\"]`)."
);

pub mod access;
#[cfg(feature = "serve")]
pub mod app;
pub mod audit;
pub mod challenge;
pub mod clock;
pub mod crypto;
pub mod dpop;
pub mod exchange;
#[cfg(feature = "layer")]
pub mod http;
pub mod introspection;
pub mod key_set;
pub mod metadata;
pub mod metrics;
pub mod operations;
pub mod rate_limit;
#[cfg(feature = "redis")]
pub mod redis;
pub mod resource;
pub mod revocation;
#[cfg(feature = "rmcp")]
pub mod rmcp;
pub mod scopes;
pub mod settings;
pub mod store;
mod token;
pub mod token_cache;
pub mod tools;
pub mod uri_template;

mod compile_checks;
pub mod validation;

#[cfg(feature = "dev")]
pub mod dev;
#[cfg(feature = "testing")]
pub mod testing;

mod http_client;
mod json;
mod loopback;

/// The `https`-or-loopback rule, for tools that fetch as the crate does.
pub use loopback::is_https_or_loopback;

#[cfg(feature = "serve")]
pub use app::{OAuthApp, OAuthServer, ProtectedResourceExt, StartupError};
// What every program types. Re-exports, not moves: the module paths keep working.
#[cfg(feature = "layer")]
pub use crate::http::{OAuthLayer, OAuthLayerBuilder};
#[cfg(feature = "rmcp")]
pub use crate::rmcp::Authenticated;
/// Declares a protected resource: its RFC 9728 metadata, its scopes (a compile-time table
/// that `#[mcp_tool]` checks against) and their hierarchy. The `resource` and
/// `authorization_servers` are defaults a deployment overrides ([`settings`]).
///
/// ```
/// use mcp_oauth::{ProtectedResource, protected_resource};
///
/// #[protected_resource(
///     resource = "https://calendar.example.com/mcp",
///     authorization_servers = ["https://auth.example.com"],
///     scopes = ["calendar:read", "calendar:write"],
///     implies = { "calendar:write" => ["calendar:read"] },
/// )]
/// pub struct Calendar;
///
/// let metadata = Calendar::config().metadata().unwrap();
/// assert_eq!(metadata.resource, "https://calendar.example.com/mcp");
/// assert!(Calendar::scope_hierarchy().implies("calendar:write", "calendar:read"));
/// ```
pub use mcp_oauth_macros::protected_resource;

/// Gives a tool the scopes it needs, checked at compile time against the resource's
/// declaration (a typo is an error at the string). With rmcp the scopes go in the tool's
/// `_meta`, where the layer reads them to answer a 403 step-up before dispatch, and a guard
/// checks them again inside the tool.
///
/// ```
/// # #[cfg(feature = "rmcp")] {
/// use mcp_oauth::{mcp_tool, protected_resource};
/// use rmcp::model::{CallToolResult, ContentBlock};
/// use rmcp::{ErrorData, tool, tool_router};
///
/// #[protected_resource(
///     resource = "https://calendar.example.com/mcp",
///     authorization_servers = ["https://auth.example.com"],
///     scopes = ["calendar:read", "calendar:write"],
/// )]
/// #[derive(Clone)]
/// pub struct Calendar;
///
/// #[tool_router]
/// impl Calendar {
///     #[mcp_tool(scopes = ["calendar:write"])]
///     #[tool(description = "Create an event")]
///     async fn create_event(&self) -> Result<CallToolResult, ErrorData> {
///         Ok(CallToolResult::success(vec![ContentBlock::text("created")]))
///     }
/// }
///
/// let table = mcp_oauth::rmcp::tool_table(&Calendar::tool_router());
/// assert!(matches!(
///     table.requirement("create_event"),
///     mcp_oauth::tools::ToolRequirement::Scopes(s) if s.contains("calendar:write")
/// ));
/// # }
/// ```
pub use mcp_oauth_macros::mcp_tool;

pub use mcp_oauth_macros::mcp_prompt;

pub use resource::{ProtectedResource, ResourceConfig, ResourceDeclaration};
pub use scopes::{ScopeHierarchy, ScopeSet};
pub use validation::{
    IssuerPolicy, IssuerPolicyBuilder, TokenError, Validator, ValidatorBuilder, VerifiedToken,
};

/// The clock lives in [`clock`]; these root paths are kept for compatibility.
#[doc(hidden)]
pub use clock::{Clock, ManualClock, SystemClock};

/// Items the generated code of `mcp-oauth-macros` reaches through absolute paths.
/// Not public API: no stability guarantees.
#[doc(hidden)]
pub mod __private {
    pub use crate::dpop::DpopMode;
    pub use crate::resource::{DeclaredResource, ProtectedResource, ResourceDeclaration};
    pub use crate::scopes::ScopeHierarchy;
    pub use crate::tools::{AsVerifiedToken, InsufficientScope, ToolScopes};
    pub use crate::uri_template::check as check_uri_template;
    pub use crate::validation::VerifiedToken;
    pub use ::std::sync::OnceLock;

    /// Whether `R` declares `scope` (evaluated at compile time by `#[mcp_tool]`).
    pub const fn scope_declared<R: ProtectedResource>(scope: &str) -> bool {
        R::DECLARATION.declares(scope)
    }

    /// The mask of `scopes` over `R`'s declared scopes; `u128::MAX` (fails closed) if any
    /// is undeclared.
    pub const fn scope_mask<R: ProtectedResource>(scopes: &[&str]) -> u128 {
        R::DECLARATION.scope_mask(scopes)
    }

    /// The declared hierarchy. The macro rejects cycles at compile time; should building
    /// still fail, no implication is honoured (stricter, never laxer).
    pub fn build_hierarchy(declaration: &'static ResourceDeclaration) -> ScopeHierarchy {
        declaration.scope_hierarchy().unwrap_or_default()
    }

    /// The check a plain (non-rmcp) guarded function runs first.
    pub fn check_tool_scopes<R: ProtectedResource>(
        identity: &impl AsVerifiedToken,
        mask: u128,
    ) -> Result<(), InsufficientScope> {
        crate::access::check_tool_scopes::<R>(identity, mask)
    }

    pub use crate::compile_checks::{
        ConstMessage, malformed_uri_template_message, nearest_scope, undeclared_scope_message,
    };

    #[cfg(feature = "rmcp")]
    pub mod rmcp {
        pub use crate::rmcp::{ScopeGuard, prompt_meta, tool_meta};
        pub use ::rmcp;
    }
}

/// Thin wrappers over crate-private parsers, for the fuzz targets in `fuzz/` (FUZZING.md).
/// Only with the `fuzzing` feature. Not public API: no stability guarantees.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use std::borrow::Cow;

    /// What the `Authorization` header parser makes of a request's headers: `Ok(None)`
    /// without credentials, `Ok(Some(None))` for another scheme, `Ok(Some(Some((scheme,
    /// token))))` for a `Bearer` or `DPoP` token, `Err(reason)` for malformed credentials.
    #[allow(clippy::type_complexity)]
    pub fn bearer_credentials(
        headers: &::http::HeaderMap,
    ) -> Result<Option<Option<(&'static str, &str)>>, &'static str> {
        use crate::http::bearer::{Credentials, credentials};
        match credentials(headers) {
            Ok(Credentials::Missing) => Ok(None),
            Ok(Credentials::OtherScheme) => Ok(Some(None)),
            Ok(Credentials::Bearer(token)) => Ok(Some(Some(("Bearer", token)))),
            Ok(Credentials::Dpop(token)) => Ok(Some(Some(("DPoP", token)))),
            Err(malformed) => Err(malformed.reason()),
        }
    }

    /// What the DPoP proof verifier makes of `proof` for a `POST` to
    /// `https://mcp.example.com/mcp` with the access token `token` at time `now`: the
    /// thumbprint of a proof that passes every stateless check, or the reason it is refused.
    pub fn dpop_proof(proof: &str, token: &str, now: u64) -> Result<[u8; 32], &'static str> {
        use crate::dpop::proof::{ProofRequirements, verify};
        // Any `htu` on the origin: the harness judges the other checks, not `htu`'s.
        let htu_matches = |htu: &str| htu.starts_with("https://mcp.example.com");
        verify(
            proof,
            &ProofRequirements {
                algorithms: crate::dpop::proof_algorithms(
                    crate::dpop::DEFAULT_PROOF_ALGORITHMS.iter().copied(),
                )
                .map_err(|_| "algorithms")?,
                method: "POST",
                htu_matches: &htu_matches,
                now,
                iat_window: 300,
                access_token: Some(token),
                keys: None,
            },
        )
        .map(|verified| verified.thumbprint)
        .map_err(|error| error.reason())
    }

    /// One request of a JSON-RPC body: its method, and for a named operation what it names
    /// (the tool, prompt, resource URI or task id; see [`name_member`]).
    pub type Call<'a> = (Cow<'a, str>, Option<Cow<'a, str>>);

    /// The `(method, name)` of each request of a JSON-RPC body, as the guard reads them;
    /// `Err(())` when the guard refuses the body (400).
    #[allow(clippy::result_unit_err)]
    pub fn jsonrpc_calls(body: &[u8]) -> Result<Vec<Call<'_>>, ()> {
        crate::http::jsonrpc::calls(body)
            .map(|calls| calls.into_iter().map(|c| (c.method, c.name)).collect())
            .map_err(|_| ())
    }

    /// The `params` member a method's name is read from, as the guard reads it.
    pub fn name_member(method: &str) -> Option<&'static str> {
        crate::http::jsonrpc::name_member(method)
    }

    /// Decodes an `Mcp-Name` / `Mcp-Method` header value as the guard does.
    pub fn decode_header_value(value: &[u8]) -> Option<Cow<'_, str>> {
        crate::http::jsonrpc::decode_header_value(value)
    }
}
