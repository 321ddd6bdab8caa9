//! The RFC 9728 Protected Resource Metadata document and its well-known URL.
//!
//! An MCP client that gets a `401` from this server fetches the resource's metadata to learn
//! which authorization servers issue tokens for it and which scopes exist. MCP requires that
//! document, with at least one entry in `authorization_servers`.
//!
//! [`ProtectedResourceMetadata::builder`] refuses documents that would mislead a client:
//! a `resource` that is not an https URL (plain http only on loopback), has a query or a
//! fragment; no authorization server; `offline_access` or malformed scopes in
//! `scopes_supported`; bearer methods this crate does not accept; the `none` algorithm; DPoP
//! algorithms that are not asymmetric or lack ES256 (RFC 9449's members are advertised by a
//! resource whose [`DpopMode`](crate::dpop::DpopMode) is enabled, and the layer enforces
//! them); and mTLS binding, which this crate does not enforce.
//!
//! ```
//! use mcp_oauth::metadata::{self, ProtectedResourceMetadata};
//!
//! let prm = ProtectedResourceMetadata::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["calendar:read", "calendar:write"])
//!     .bearer_methods_supported(["header"])
//!     .resource_name("Calendar")
//!     .build()?;
//!
//! assert_eq!(
//!     prm.to_json(),
//!     r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["calendar:read","calendar:write"],"bearer_methods_supported":["header"],"resource_name":"Calendar"}"#,
//! );
//! // Serve it at both of these; put the first in `WWW-Authenticate: Bearer resource_metadata="…"`.
//! assert_eq!(
//!     metadata::well_known_url(&prm.resource)?,
//!     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
//! );
//! assert_eq!(
//!     metadata::root_well_known_url(&prm.resource)?,
//!     "https://mcp.example.com/.well-known/oauth-protected-resource",
//! );
//! # Ok::<(), mcp_oauth::metadata::MetadataError>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::dpop::mode::{ProofAlgorithmsError, proof_algorithms};
use crate::loopback::is_https_or_loopback_http;
use crate::scopes::is_valid_scope_token;

/// The path the metadata is served under (RFC 9728 §3.1), before the resource's own path.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// The members whose values are human-readable (RFC 9728 §2.1), and so may carry
/// language-tagged variants such as `resource_name#de`.
const HUMAN_READABLE_MEMBERS: [&str; 4] = [
    "resource_name",
    "resource_documentation",
    "resource_policy_uri",
    "resource_tos_uri",
];

/// The RFC 9728 Protected Resource Metadata document.
///
/// Build one with [`ProtectedResourceMetadata::builder`], which validates it, and serve
/// [`to_json`](Self::to_json) at [`well_known_url`] and [`root_well_known_url`]. Empty lists
/// and absent values are omitted from the JSON (RFC 9728 §3.2). Deserializing is lenient, as
/// RFC 9728 asks of clients: unknown members are ignored and nothing is validated; call
/// [`validate`](Self::validate) to apply the builder's rules.
///
/// ```
/// use mcp_oauth::metadata::ProtectedResourceMetadata;
///
/// let prm = ProtectedResourceMetadata::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .resource_name("Files")
///     .localized("resource_name#de", "Dateien")
///     .build()?;
///
/// let json = prm.to_json();
/// assert!(json.ends_with(r#""resource_name":"Files","resource_name#de":"Dateien"}"#));
/// let parsed: ProtectedResourceMetadata = serde_json::from_str(&json).unwrap();
/// assert_eq!(parsed, prm);
/// # Ok::<(), mcp_oauth::metadata::MetadataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: exactly the MCP endpoint URL clients connect to (for example
    /// `https://mcp.example.com/mcp`). Clients compare it code point by code point with the
    /// URL they used, so it is kept as configured, never normalised.
    pub resource: String,
    /// Issuer identifiers of the authorization servers whose tokens this resource accepts.
    /// Optional in RFC 9728, at least one required by MCP.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub authorization_servers: Vec<String>,
    /// The URL of the *resource server's own* JSON Web Key Set, for resources that sign
    /// responses or encrypt to clients. Not the issuer's keys (those are found through the
    /// authorization server's metadata): almost never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The scopes a client may request for this resource. Keep it to the minimum needed.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub scopes_supported: Vec<String>,
    /// How a bearer token may be sent: `header`, `body` or `query` (RFC 6750).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub bearer_methods_supported: Vec<String>,
    /// JWS algorithms the resource signs its responses with. Never `none`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// A human-readable name for the resource. Language-tagged variants go in
    /// [`localized`](Self::localized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// The URL of developer documentation for the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// The URL of the resource's policy on how a client may use its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// The URL of the resource's terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// Whether the resource requires mutual-TLS certificate-bound access tokens (RFC 8705).
    /// Refused by [`validate`](Self::validate): not enforced by this crate yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// The `authorization_details` types (RFC 9396) the resource understands.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub authorization_details_types_supported: Vec<String>,
    /// The JWS algorithms accepted for DPoP proofs (RFC 9449).
    /// Refused by [`validate`](Self::validate): not enforced by this crate yet.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "vec_or_null"
    )]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether the resource always requires DPoP-bound access tokens (RFC 9449).
    /// Refused by [`validate`](Self::validate): not enforced by this crate yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
    /// A JWT, signed by a party the client trusts, whose claims are metadata values that
    /// override the plain ones. It is served as given: keep it consistent with this document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_metadata: Option<String>,
    /// Language-tagged variants of human-readable members, keyed as in the JSON:
    /// `resource_name#de`, `resource_tos_uri#fr-CA`. Only keys containing `#` are kept when
    /// deserializing or serialized.
    #[serde(
        flatten,
        serialize_with = "serialize_localized",
        deserialize_with = "deserialize_localized"
    )]
    pub localized: BTreeMap<String, String>,
}

impl ProtectedResourceMetadata {
    /// A builder for the metadata of `resource`, the MCP endpoint URL.
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadataBuilder {
            metadata: ProtectedResourceMetadata {
                resource: resource.into(),
                authorization_servers: Vec::new(),
                jwks_uri: None,
                scopes_supported: Vec::new(),
                bearer_methods_supported: Vec::new(),
                resource_signing_alg_values_supported: Vec::new(),
                resource_name: None,
                resource_documentation: None,
                resource_policy_uri: None,
                resource_tos_uri: None,
                tls_client_certificate_bound_access_tokens: None,
                authorization_details_types_supported: Vec::new(),
                dpop_signing_alg_values_supported: Vec::new(),
                dpop_bound_access_tokens_required: None,
                signed_metadata: None,
                localized: BTreeMap::new(),
            },
        }
    }

    /// The document as compact JSON, members in declaration order, empty and absent members
    /// omitted, language-tagged members last (sorted).
    pub fn to_json(&self) -> String {
        // Strings, booleans, lists of strings and a map with string keys: nothing can fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the rules [`ProtectedResourceMetadataBuilder::build`] applies; useful for a
    /// document built by hand or deserialized.
    ///
    /// # Errors
    ///
    /// The first rule broken, as a [`MetadataError`].
    pub fn validate(&self) -> Result<(), MetadataError> {
        check_identifier("resource", &self.resource)?;

        if self.authorization_servers.is_empty() {
            return Err(MetadataError::NoAuthorizationServer);
        }
        for issuer in &self.authorization_servers {
            check_identifier("authorization_servers", issuer)?;
        }

        if let Some(jwks_uri) = &self.jwks_uri {
            check_https_url("jwks_uri", jwks_uri)?;
        }

        for scope in &self.scopes_supported {
            if !is_valid_scope_token(scope) {
                return Err(MetadataError::InvalidScope(scope.clone()));
            }
            if scope == crate::scopes::OFFLINE_ACCESS {
                return Err(MetadataError::OfflineAccessAdvertised);
            }
        }

        for method in &self.bearer_methods_supported {
            match method.as_str() {
                "header" => {}
                "body" => return Err(MetadataError::BodyBearerMethod),
                "query" => return Err(MetadataError::QueryBearerMethod),
                _ => return Err(MetadataError::UnsupportedBearerMethod(method.clone())),
            }
        }

        for alg in &self.resource_signing_alg_values_supported {
            if alg.eq_ignore_ascii_case("none") {
                return Err(MetadataError::NoneAlgorithm(alg.clone()));
            }
        }

        for (member, value) in [
            ("resource_documentation", &self.resource_documentation),
            ("resource_policy_uri", &self.resource_policy_uri),
            ("resource_tos_uri", &self.resource_tos_uri),
        ] {
            if let Some(url) = value {
                check_https_url(member, url)?;
            }
        }

        if self.tls_client_certificate_bound_access_tokens.is_some() {
            return Err(MetadataError::SenderConstrainedNotSupported {
                member: "tls_client_certificate_bound_access_tokens",
            });
        }
        if !self.dpop_signing_alg_values_supported.is_empty() {
            proof_algorithms(
                self.dpop_signing_alg_values_supported
                    .iter()
                    .map(String::as_str),
            )
            .map_err(MetadataError::DpopAlgorithms)?;
        } else if self.dpop_bound_access_tokens_required.is_some() {
            return Err(MetadataError::DpopAlgorithms(ProofAlgorithmsError::Empty));
        }

        for (key, value) in &self.localized {
            let member = localized_member(key)
                .ok_or_else(|| MetadataError::InvalidLocalizedMember(key.clone()))?;
            if member != "resource_name" {
                check_https_url(member, value)?;
            }
        }

        if let Some(jwt) = &self.signed_metadata
            && !is_compact_jws(jwt)
        {
            return Err(MetadataError::InvalidSignedMetadata);
        }

        Ok(())
    }
}

/// Builds a validated [`ProtectedResourceMetadata`]; from [`ProtectedResourceMetadata::builder`].
///
/// Setters of list members append. Nothing is checked until [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceMetadataBuilder {
    metadata: ProtectedResourceMetadata,
}

impl ProtectedResourceMetadataBuilder {
    /// Adds an authorization server's issuer identifier (for example
    /// `https://auth.example.com`), exactly as it appears in its tokens' `iss`.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.metadata.authorization_servers.push(issuer.into());
        self
    }

    /// Adds several authorization servers' issuer identifiers.
    pub fn authorization_servers<S: Into<String>>(
        mut self,
        issuers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .authorization_servers
            .extend(issuers.into_iter().map(Into::into));
        self
    }

    /// Sets the URL of the resource server's *own* key set. Not the issuer's: leave it unset
    /// unless the resource itself signs or encrypts.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.metadata.jwks_uri = Some(url.into());
        self
    }

    /// Adds scopes a client may request. Never `offline_access`.
    pub fn scopes_supported<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .scopes_supported
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Adds bearer-token methods: `header` (what MCP clients use) or `body`. `query` is
    /// refused: MCP forbids tokens in the URI, and this crate never reads them there.
    pub fn bearer_methods_supported<S: Into<String>>(
        mut self,
        methods: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .bearer_methods_supported
            .extend(methods.into_iter().map(Into::into));
        self
    }

    /// Adds JWS algorithms the resource signs responses with. Never `none`.
    pub fn resource_signing_alg_values_supported<S: Into<String>>(
        mut self,
        algs: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .resource_signing_alg_values_supported
            .extend(algs.into_iter().map(Into::into));
        self
    }

    /// Sets the human-readable name of the resource.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.resource_name = Some(name.into());
        self
    }

    /// Sets the URL of developer documentation.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_documentation = Some(url.into());
        self
    }

    /// Sets the URL of the data-use policy.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_policy_uri = Some(url.into());
        self
    }

    /// Sets the URL of the terms of service.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_tos_uri = Some(url.into());
        self
    }

    /// Adds a language-tagged variant of a human-readable member, keyed as in the JSON:
    /// `.localized("resource_name#de", "Dateien")`.
    pub fn localized(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.localized.insert(key.into(), value.into());
        self
    }

    /// Adds `authorization_details` types (RFC 9396) the resource understands.
    pub fn authorization_details_types_supported<S: Into<String>>(
        mut self,
        types: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .authorization_details_types_supported
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Sets the signed-metadata JWT, served as given.
    pub fn signed_metadata(mut self, jwt: impl Into<String>) -> Self {
        self.metadata.signed_metadata = Some(jwt.into());
        self
    }

    /// Sets `tls_client_certificate_bound_access_tokens`. Until this crate enforces mTLS
    /// binding, [`build`](Self::build) refuses it: advertising what is not enforced would
    /// make clients believe stolen tokens are useless.
    pub fn tls_client_certificate_bound_access_tokens(mut self, required: bool) -> Self {
        self.metadata.tls_client_certificate_bound_access_tokens = Some(required);
        self
    }

    /// Adds DPoP proof algorithms (asymmetric, ES256 among them). The layer sets them from
    /// the resource's [`DpopMode`](crate::dpop::DpopMode) and enforces them.
    pub fn dpop_signing_alg_values_supported<S: Into<String>>(
        mut self,
        algs: impl IntoIterator<Item = S>,
    ) -> Self {
        self.metadata
            .dpop_signing_alg_values_supported
            .extend(algs.into_iter().map(Into::into));
        self
    }

    /// Sets `dpop_bound_access_tokens_required` (needs the DPoP algorithms).
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.metadata.dpop_bound_access_tokens_required = Some(required);
        self
    }

    /// Validates and returns the document.
    ///
    /// # Errors
    ///
    /// The first rule broken, as a [`MetadataError`]; see [`ProtectedResourceMetadata::validate`].
    pub fn build(self) -> Result<ProtectedResourceMetadata, MetadataError> {
        self.metadata.validate()?;
        Ok(self.metadata)
    }
}

/// Why a metadata document or a resource identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A URL member is not an absolute URL.
    #[error(
        "{member} {value:?} is not an absolute URL ({source}); write it in full, as https://host/path"
    )]
    NotAbsoluteUrl {
        /// The metadata member.
        member: &'static str,
        /// The offending value.
        value: String,
        /// What the URL parser said.
        source: url::ParseError,
    },
    /// A URL member is an absolute URL that is malformed for its purpose.
    #[error("{member} {value:?} is refused: {reason}")]
    InvalidUrl {
        /// The metadata member.
        member: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong and what to do.
        reason: &'static str,
    },
    /// A URL member is neither `https` nor `http` on a loopback host.
    #[error(
        "{member} {value:?} must be an https URL (plain http is allowed only for loopback \
         hosts: localhost, 127.0.0.0/8 and [::1], for local development)"
    )]
    NotHttps {
        /// The metadata member.
        member: &'static str,
        /// The offending value.
        value: String,
    },
    /// A resource or issuer identifier has a fragment (`#…`), which RFC 9728 and RFC 8414
    /// forbid.
    #[error("{member} {value:?} must not have a fragment (#…); remove it")]
    UrlWithFragment {
        /// The metadata member.
        member: &'static str,
        /// The offending value.
        value: String,
    },
    /// A resource or issuer identifier has a query (`?…`). RFC 9728 says a resource SHOULD
    /// NOT, RFC 8414 says an issuer MUST NOT; this crate refuses both.
    #[error("{member} {value:?} must not have a query (?…); remove it")]
    UrlWithQuery {
        /// The metadata member.
        member: &'static str,
        /// The offending value.
        value: String,
    },
    /// `authorization_servers` is empty; MCP requires at least one.
    #[error(
        "authorization_servers is empty: MCP requires at least one; add the issuer of the \
         tokens this server accepts"
    )]
    NoAuthorizationServer,
    /// A `scopes_supported` entry is not a scope-token (RFC 6749 §3.3).
    #[error(
        "scopes_supported entry {0:?} is not a valid OAuth scope (one or more printable ASCII \
         characters other than space, '\"' and '\\')"
    )]
    InvalidScope(String),
    /// `scopes_supported` lists `offline_access`, which MCP says not to advertise.
    #[error(
        "scopes_supported lists \"offline_access\": MCP says resources should not advertise it \
         (refresh tokens are between the client and the authorization server); remove it"
    )]
    OfflineAccessAdvertised,
    /// A `bearer_methods_supported` entry is not one of RFC 6750's methods.
    #[error("bearer_methods_supported entry {0:?} is unknown; use \"header\"")]
    UnsupportedBearerMethod(String),
    /// `bearer_methods_supported` lists `query`.
    #[error(
        "bearer_methods_supported lists \"query\": MCP forbids access tokens in the URI and this \
         crate never reads them there; remove it"
    )]
    QueryBearerMethod,
    /// `bearer_methods_supported` lists `body`, which the layer does not accept.
    #[error(
        "bearer_methods_supported lists \"body\": the layer reads access tokens from the \
         Authorization header only; advertising a method that is not enforced misleads clients"
    )]
    BodyBearerMethod,
    /// `resource_signing_alg_values_supported` lists `none`.
    #[error(
        "resource_signing_alg_values_supported lists {0:?}: unsigned responses are never acceptable; remove it"
    )]
    NoneAlgorithm(String),
    /// The DPoP algorithms are not a valid list, or `dpop_bound_access_tokens_required` is
    /// set without them.
    #[error("dpop_signing_alg_values_supported: {0}")]
    DpopAlgorithms(ProofAlgorithmsError),
    /// mTLS binding (`tls_client_certificate_bound_access_tokens`) is set: this crate does not
    /// enforce it.
    #[error(
        "{member} is set, but mTLS-bound tokens are not supported: advertising what \
         is not enforced is a security bug; remove it"
    )]
    SenderConstrainedNotSupported {
        /// The metadata member.
        member: &'static str,
    },
    /// A language-tagged key is not `<human-readable member>#<language tag>`.
    #[error(
        "localized member {0:?} must be resource_name, resource_documentation, \
         resource_policy_uri or resource_tos_uri, then '#', then a language tag (e.g. \
         \"resource_name#de\")"
    )]
    InvalidLocalizedMember(String),
    /// `signed_metadata` is not a signed compact JWT.
    #[error(
        "signed_metadata is not a signed compact JWT (three base64url parts separated by '.', \
         with a signature)"
    )]
    InvalidSignedMetadata,
}

/// The path at which the metadata of `resource` is served (RFC 9728 §3.1): [`WELL_KNOWN_PREFIX`]
/// followed by the resource's path, a bare trailing `/` dropped.
///
/// ```
/// use mcp_oauth::metadata::well_known_path;
///
/// assert_eq!(well_known_path("https://rs.ex/")?, "/.well-known/oauth-protected-resource");
/// assert_eq!(
///     well_known_path("https://ex.com/public/mcp")?,
///     "/.well-known/oauth-protected-resource/public/mcp",
/// );
/// # Ok::<(), mcp_oauth::metadata::MetadataError>(())
/// ```
///
/// # Errors
///
/// `resource` is not a valid resource identifier (the rules of
/// [`ProtectedResourceMetadata::validate`] for `resource`).
pub fn well_known_path(resource: &str) -> Result<String, MetadataError> {
    let parts = check_identifier("resource", resource)?;
    let path = if parts.path == "/" { "" } else { parts.path };
    Ok(format!("{WELL_KNOWN_PREFIX}{path}"))
}

/// The URL at which the metadata of `resource` is served (RFC 9728 §3.1): the one to put in
/// `WWW-Authenticate: Bearer resource_metadata="…"`, and the one clients try first.
///
/// Built from the text of `resource` as configured (scheme, host and port are not
/// normalised), since clients compare URLs code point by code point.
///
/// ```
/// use mcp_oauth::metadata::well_known_url;
///
/// assert_eq!(
///     well_known_url("https://rs.ex/resource1")?,
///     "https://rs.ex/.well-known/oauth-protected-resource/resource1",
/// );
/// # Ok::<(), mcp_oauth::metadata::MetadataError>(())
/// ```
///
/// # Errors
///
/// As [`well_known_path`].
pub fn well_known_url(resource: &str) -> Result<String, MetadataError> {
    let parts = check_identifier("resource", resource)?;
    let path = if parts.path == "/" { "" } else { parts.path };
    Ok(format!("{}{WELL_KNOWN_PREFIX}{path}", parts.origin))
}

/// The root alias of the metadata URL, which MCP clients try after [`well_known_url`]:
/// `https://ex.com/.well-known/oauth-protected-resource` whatever the resource's path.
///
/// ```
/// use mcp_oauth::metadata::root_well_known_url;
///
/// assert_eq!(
///     root_well_known_url("https://ex.com/public/mcp")?,
///     "https://ex.com/.well-known/oauth-protected-resource",
/// );
/// # Ok::<(), mcp_oauth::metadata::MetadataError>(())
/// ```
///
/// # Errors
///
/// As [`well_known_path`].
pub fn root_well_known_url(resource: &str) -> Result<String, MetadataError> {
    let parts = check_identifier("resource", resource)?;
    Ok(format!("{}{WELL_KNOWN_PREFIX}", parts.origin))
}

/// A validated identifier, split as written.
struct IdentifierParts<'a> {
    /// `scheme://authority`, as written.
    origin: &'a str,
    /// The path as written, possibly empty.
    path: &'a str,
}

/// Checks a resource or issuer identifier: an https (or loopback http) URL without
/// fragment, query or user information, whose text is already in the form a URL parser
/// would produce for it, so that splitting the text gives the same parts clients see.
fn check_identifier<'a>(
    member: &'static str,
    value: &'a str,
) -> Result<IdentifierParts<'a>, MetadataError> {
    let url = check_https_url(member, value)?;
    let invalid = |reason| MetadataError::InvalidUrl {
        member,
        value: value.to_owned(),
        reason,
    };
    if url.fragment().is_some() {
        return Err(MetadataError::UrlWithFragment {
            member,
            value: value.to_owned(),
        });
    }
    if url.query().is_some() {
        return Err(MetadataError::UrlWithQuery {
            member,
            value: value.to_owned(),
        });
    }
    // The URL parser silently drops or rewrites these; the text must mean what it says.
    if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err(invalid(
            "it must be printable ASCII without spaces or backslashes; percent-encode anything else",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not contain user information (user:password@)",
        ));
    }
    let Some((_, after_scheme)) = value.split_once("://") else {
        return Err(invalid("it must be written as scheme://host[:port][/path]"));
    };
    let authority_len = after_scheme.find('/').unwrap_or(after_scheme.len());
    if authority_len == 0 {
        return Err(invalid("it must be written as scheme://host[:port][/path]"));
    }
    let origin_len = value.len() - after_scheme.len() + authority_len;
    let (origin, path) = value.split_at(origin_len);
    if path != url.path() && !(path.is_empty() && url.path() == "/") {
        return Err(invalid(
            "its path is not in normal form (dot segments or characters a URL parser would \
             percent-encode); write the path as clients will send it",
        ));
    }
    Ok(IdentifierParts { origin, path })
}

/// Checks an absolute `https` URL, or `http` on a loopback host (`localhost`, `127.x.y.z`,
/// `[::1]`: the crate's one loopback rule, the one its key-set fetches follow).
fn check_https_url(member: &'static str, value: &str) -> Result<Url, MetadataError> {
    let url = Url::parse(value).map_err(|source| MetadataError::NotAbsoluteUrl {
        member,
        value: value.to_owned(),
        source,
    })?;
    if is_https_or_loopback_http(&url) {
        Ok(url)
    } else {
        Err(MetadataError::NotHttps {
            member,
            value: value.to_owned(),
        })
    }
}

/// The human-readable member a `member#language-tag` key belongs to, if the key is well formed.
fn localized_member(key: &str) -> Option<&'static str> {
    let (member, tag) = key.split_once('#')?;
    let member = HUMAN_READABLE_MEMBERS.into_iter().find(|m| *m == member)?;
    let mut subtags = tag.split('-');
    let primary = subtags.next()?;
    let primary_ok =
        (1..=8).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    (primary_ok && rest_ok).then_some(member)
}

/// Whether `jwt` looks like a signed compact JWS: `header.payload.signature`, base64url.
fn is_compact_jws(jwt: &str) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn vec_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

fn serialize_localized<S: Serializer>(
    localized: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // A key without '#' could collide with a declared member and emit it twice.
    serializer.collect_map(localized.iter().filter(|(key, _)| key.contains('#')))
}

/// Keeps the unknown members that are language-tagged strings; ignores every other unknown
/// member, whatever its type.
fn deserialize_localized<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let unknown = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    Ok(unknown
        .into_iter()
        .filter(|(key, _)| key.contains('#'))
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(value) => Some((key, value)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "https://mcp.example.com/mcp";
    const ISSUER: &str = "https://auth.example.com";

    fn builder() -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadata::builder(RESOURCE).authorization_server(ISSUER)
    }

    fn resource_error(resource: &str) -> MetadataError {
        ProtectedResourceMetadata::builder(resource)
            .authorization_server(ISSUER)
            .build()
            .unwrap_err()
    }

    #[test]
    fn well_known_path_inserts_the_prefix_before_the_resource_path() {
        assert_eq!(
            well_known_path("https://rs.ex/resource1").unwrap(),
            "/.well-known/oauth-protected-resource/resource1"
        );
        assert_eq!(
            well_known_url("https://rs.ex/resource1").unwrap(),
            "https://rs.ex/.well-known/oauth-protected-resource/resource1"
        );
    }

    #[test]
    fn well_known_path_of_an_mcp_endpoint() {
        let resource = "https://ex.com/public/mcp";
        assert_eq!(
            well_known_path(resource).unwrap(),
            "/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(
            well_known_url(resource).unwrap(),
            "https://ex.com/.well-known/oauth-protected-resource/public/mcp"
        );
    }

    #[test]
    fn root_well_known_url_ignores_the_resource_path() {
        assert_eq!(
            root_well_known_url("https://ex.com/public/mcp").unwrap(),
            "https://ex.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            root_well_known_url("http://127.0.0.1:8080/mcp").unwrap(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn well_known_path_drops_a_bare_trailing_slash() {
        for resource in ["https://rs.ex/", "https://rs.ex"] {
            assert_eq!(well_known_path(resource).unwrap(), WELL_KNOWN_PREFIX);
            assert_eq!(
                well_known_url(resource).unwrap(),
                "https://rs.ex/.well-known/oauth-protected-resource"
            );
        }
    }

    #[test]
    fn well_known_path_keeps_the_trailing_slash_of_a_longer_path() {
        assert_eq!(
            well_known_path("https://rs.ex/mcp/").unwrap(),
            "/.well-known/oauth-protected-resource/mcp/"
        );
    }

    #[test]
    fn well_known_url_is_built_from_the_configured_text() {
        // A URL parser would lowercase the host and drop the default port; clients compare
        // code points, so the configured text is kept.
        assert_eq!(
            well_known_url("https://MCP.Example.com:443/mcp").unwrap(),
            "https://MCP.Example.com:443/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            well_known_url("http://[::1]:9/mcp").unwrap(),
            "http://[::1]:9/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn resource_with_query_is_refused() {
        let err = resource_error("https://mcp.example.com/mcp?tenant=1");
        assert!(
            matches!(
                err,
                MetadataError::UrlWithQuery {
                    member: "resource",
                    ..
                }
            ),
            "{err}"
        );
        assert!(well_known_path("https://mcp.example.com/mcp?").is_err());
    }

    #[test]
    fn resource_with_fragment_is_refused() {
        let err = resource_error("https://mcp.example.com/mcp#x");
        assert!(
            matches!(
                err,
                MetadataError::UrlWithFragment {
                    member: "resource",
                    ..
                }
            ),
            "{err}"
        );
        assert!(well_known_url("https://mcp.example.com/mcp#").is_err());
    }

    #[test]
    fn http_resource_off_loopback_is_refused() {
        for resource in [
            "http://mcp.example.com/mcp",
            "http://128.0.0.1/mcp",
            "http://[::2]/mcp",
            "http://localhost.example.com/mcp",
            "ftp://ex.com/mcp",
        ] {
            let err = resource_error(resource);
            assert_eq!(
                err,
                MetadataError::NotHttps {
                    member: "resource",
                    value: resource.into()
                }
            );
        }
    }

    #[test]
    fn http_loopback_ipv4_resource_and_issuer_are_accepted_anywhere_in_127_0_0_0_8() {
        // The crate's one loopback rule (RFC 8252 §7.3, RFC 1122 §3.2.1.3): the issuer a key
        // set may fetch from over plain http may also be advertised.
        for (resource, issuer) in [
            ("http://127.0.0.1:8080/mcp", "http://127.0.0.1:9000"),
            ("http://127.0.0.2:8080/mcp", "http://127.1.2.3:9000"),
            ("http://localhost:3000/mcp", ISSUER),
        ] {
            let prm = ProtectedResourceMetadata::builder(resource)
                .authorization_server(issuer)
                .build()
                .unwrap();
            assert_eq!(prm.resource, resource);
            assert_eq!(prm.authorization_servers, [issuer]);
        }
    }

    #[test]
    fn http_loopback_ipv6_resource_is_accepted() {
        let prm = ProtectedResourceMetadata::builder("http://[::1]:9/mcp")
            .authorization_server(ISSUER)
            .build()
            .unwrap();
        assert_eq!(prm.resource, "http://[::1]:9/mcp");
    }

    #[test]
    fn relative_resource_is_refused() {
        for resource in ["/mcp", "mcp.example.com/mcp", ""] {
            let err = resource_error(resource);
            assert!(
                matches!(err, MetadataError::NotAbsoluteUrl { .. }),
                "{resource:?}: {err}"
            );
        }
    }

    #[test]
    fn resource_not_written_as_parsed_is_refused() {
        for resource in [
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/caf\u{e9}",
            "https://mcp.example.com\\mcp",
            " https://mcp.example.com/mcp",
            "https:mcp.example.com/mcp",
            "https://user:pw@mcp.example.com/mcp",
        ] {
            let err = resource_error(resource);
            assert!(
                matches!(err, MetadataError::InvalidUrl { .. }),
                "{resource:?}: {err}"
            );
        }
    }

    #[test]
    fn empty_authorization_servers_is_refused() {
        let err = ProtectedResourceMetadata::builder(RESOURCE)
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::NoAuthorizationServer);
    }

    #[test]
    fn authorization_server_must_be_an_https_url_without_query_or_fragment() {
        let build = |issuer: &str| builder().authorization_server(issuer).build().unwrap_err();
        assert!(matches!(
            build("http://auth.example.com"),
            MetadataError::NotHttps { .. }
        ));
        assert!(matches!(
            build("https://auth.example.com?x=1"),
            MetadataError::UrlWithQuery { .. }
        ));
        assert!(matches!(
            build("https://auth.example.com#x"),
            MetadataError::UrlWithFragment { .. }
        ));
        assert!(matches!(
            build("auth.example.com"),
            MetadataError::NotAbsoluteUrl { .. }
        ));
        let prm = builder()
            .authorization_servers(["https://auth.example.com/tenant/1"])
            .build();
        assert_eq!(prm.unwrap().authorization_servers.len(), 2);
    }

    #[test]
    fn offline_access_is_refused() {
        let err = builder()
            .scopes_supported(["files:read", "offline_access"])
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::OfflineAccessAdvertised);
    }

    #[test]
    fn invalid_scope_in_scopes_supported_is_refused() {
        let err = builder()
            .scopes_supported(["files read"])
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::InvalidScope("files read".into()));
    }

    #[test]
    fn unknown_bearer_method_is_refused() {
        let err = builder()
            .bearer_methods_supported(["cookie"])
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::UnsupportedBearerMethod("cookie".into()));
        assert!(
            builder()
                .bearer_methods_supported(["header"])
                .build()
                .is_ok()
        );
    }

    #[test]
    fn body_bearer_method_is_refused_until_the_layer_reads_body_tokens() {
        let err = builder()
            .bearer_methods_supported(["header", "body"])
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::BodyBearerMethod);
    }

    #[test]
    fn query_bearer_method_is_refused() {
        let err = builder()
            .bearer_methods_supported(["header", "query"])
            .build()
            .unwrap_err();
        assert_eq!(err, MetadataError::QueryBearerMethod);
    }

    #[test]
    fn none_alg_is_refused() {
        let err = builder()
            .resource_signing_alg_values_supported(["ES256", "none"])
            .build();
        assert_eq!(
            err.unwrap_err(),
            MetadataError::NoneAlgorithm("none".into())
        );
    }

    #[test]
    fn dpop_members_are_checked_algorithms_first() {
        let document = builder()
            .dpop_signing_alg_values_supported(["ES256", "EdDSA"])
            .dpop_bound_access_tokens_required(true)
            .build()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&document.to_json()).unwrap();
        assert_eq!(
            json["dpop_signing_alg_values_supported"],
            serde_json::json!(["ES256", "EdDSA"])
        );
        assert_eq!(json["dpop_bound_access_tokens_required"], true);
        for (algs, error) in [
            (vec!["HS256"], ProofAlgorithmsError::Unknown("HS256".into())),
            (vec!["none"], ProofAlgorithmsError::Unknown("none".into())),
            (vec!["EdDSA"], ProofAlgorithmsError::NoEs256),
        ] {
            let err = builder()
                .dpop_signing_alg_values_supported(algs)
                .build()
                .unwrap_err();
            assert_eq!(err, MetadataError::DpopAlgorithms(error));
        }
        let err = builder()
            .dpop_bound_access_tokens_required(true)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            MetadataError::DpopAlgorithms(ProofAlgorithmsError::Empty)
        );
    }

    #[test]
    fn mtls_member_is_refused() {
        let err = builder()
            .tls_client_certificate_bound_access_tokens(true)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            MetadataError::SenderConstrainedNotSupported {
                member: "tls_client_certificate_bound_access_tokens"
            }
        );
    }

    #[test]
    fn jwks_uri_and_document_urls_must_be_https() {
        let err = builder()
            .jwks_uri("http://mcp.example.com/jwks")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                MetadataError::NotHttps {
                    member: "jwks_uri",
                    ..
                }
            ),
            "{err}"
        );
        let err = builder()
            .resource_tos_uri("http://ex.com/tos")
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            MetadataError::NotHttps {
                member: "resource_tos_uri",
                ..
            }
        ));
        assert!(
            builder()
                .resource_documentation("https://docs.ex.com/#auth")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn signed_metadata_must_be_a_signed_jwt() {
        assert!(
            builder()
                .signed_metadata("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
                .build()
                .is_ok()
        );
        for jwt in ["not a jwt", "eyJhbGciOiJub25lIn0.e30.", "a.b"] {
            let err = builder().signed_metadata(jwt).build().unwrap_err();
            assert_eq!(err, MetadataError::InvalidSignedMetadata, "{jwt:?}");
        }
    }

    #[test]
    fn serialized_json_has_no_empty_arrays_or_null_members() {
        let json = builder().build().unwrap().to_json();
        assert_eq!(
            json,
            r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"]}"#
        );
        assert!(!json.contains("null") && !json.contains("[]"), "{json}");
    }

    #[test]
    fn members_serialize_in_declaration_order() {
        let json = builder()
            .localized("resource_name#de", "Kalender")
            .resource_name("Calendar")
            .bearer_methods_supported(["header"])
            .scopes_supported(["calendar:read"])
            .build()
            .unwrap()
            .to_json();
        assert_eq!(
            json,
            r#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["calendar:read"],"bearer_methods_supported":["header"],"resource_name":"Calendar","resource_name#de":"Kalender"}"#
        );
    }

    #[test]
    fn localized_resource_name_round_trips() {
        let prm = builder()
            .resource_name("Files")
            .localized("resource_name#de", "Dateien")
            .localized("resource_tos_uri#fr-CA", "https://ex.com/fr/tos")
            .build()
            .unwrap();
        let parsed: ProtectedResourceMetadata = serde_json::from_str(&prm.to_json()).unwrap();
        assert_eq!(parsed, prm);
        assert_eq!(parsed.localized["resource_name#de"], "Dateien");
    }

    #[test]
    fn localized_member_must_be_a_tagged_human_readable_member() {
        for key in [
            "resource_name",
            "resource#de",
            "resource_name#",
            "resource_name#d e",
        ] {
            let err = builder().localized(key, "x").build().unwrap_err();
            assert_eq!(err, MetadataError::InvalidLocalizedMember(key.into()));
        }
        let err = builder()
            .localized("resource_tos_uri#de", "http://ex.com/tos")
            .build();
        assert!(matches!(err.unwrap_err(), MetadataError::NotHttps { .. }));
    }

    #[test]
    fn unknown_members_are_tolerated_on_deserialize() {
        let json = r#"{
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": ["https://auth.example.com"],
            "scopes_supported": null,
            "future_member": {"nested": [1, 2]},
            "future_flag": true,
            "future_string": "x",
            "resource_name#de": "Dateien",
            "odd#member": 7
        }"#;
        let prm: ProtectedResourceMetadata = serde_json::from_str(json).unwrap();
        assert_eq!(
            prm,
            builder()
                .localized("resource_name#de", "Dateien")
                .build()
                .unwrap()
        );
    }
}
