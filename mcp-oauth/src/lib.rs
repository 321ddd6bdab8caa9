//! # mcp-oauth
//!
//! Make an MCP server a correct, fast OAuth 2.1 *resource server*.
//!
//! This crate is organised by concept, one module each:
//!
//! | module | what it holds |
//! |---|---|
//! | [`validation`] | JWT access-token validation (RFC 9068, RFC 8725): policies, errors, the verified identity |
//! | [`key_set`] | JSON Web Key Sets: parsing, per-issuer caching, discovery, refresh |
//! | [`crypto`] | signature algorithms and pre-parsed verifying keys over aws-lc-rs or RustCrypto |
//! | [`token_cache`] | the verified-token cache (keyed by policy and SHA-256 of the token) |
//! | [`scopes`] | scope sets, the all-of check, scope hierarchies |
//! | [`metadata`] | the RFC 9728 Protected Resource Metadata document and its well-known URL |
//! | [`clock`] | the injectable clock every time-based decision reads |
//! | `testing` (feature `testing`) | a local issuer that serves discovery and JWKS and mints any token |
//!
//! ## Crypto backends
//!
//! Exactly one backend verifies signatures. The `aws-lc-rs` feature (default) is the fast one;
//! `rust-crypto` is pure Rust for targets where aws-lc does not build. With both enabled,
//! aws-lc-rs is used and nothing panics. No process-wide crypto provider is ever installed:
//! each backend is called explicitly, so applications that install their own are unaffected.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "mcp-oauth needs a crypto backend: enable the `aws-lc-rs` feature (the default) or, \
     for a pure-Rust build, `rust-crypto` (e.g. `default-features = false, features = [\"rust-crypto\"]`)."
);

pub mod clock;
pub mod crypto;
pub mod key_set;
pub mod metadata;
pub mod resource;
pub mod scopes;
pub mod token_cache;
pub mod validation;

#[cfg(feature = "testing")]
pub mod testing;

mod http_client;

pub use clock::{Clock, ManualClock, SystemClock};
pub use scopes::{ScopeHierarchy, ScopeSet};
pub use validation::{IssuerPolicy, TokenError, Validator, VerifiedToken};

/// Items the generated code of `mcp-oauth-macros` reaches through absolute paths.
/// Not public API: no stability guarantees.
#[doc(hidden)]
pub mod __private {}
