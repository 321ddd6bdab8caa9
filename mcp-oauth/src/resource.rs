//! A protected resource: what `#[protected_resource]` declares, and the effective
//! configuration a deployment runs with.
//!
//! The attribute generates an impl of [`ProtectedResource`] whose [`ResourceDeclaration`] is a
//! `const`: the declared scopes form a table that compile-time checks of `#[mcp_tool]` read.
//! The deployment's `resource` URL and authorization servers may differ from the attribute's
//! defaults (dev, staging, prod): [`ResourceConfig`] takes them from the environment or a
//! builder at startup, while the scopes stay compile-time. The served metadata document is
//! rendered once from the effective configuration.
//!
//! ```
//! use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
//!
//! static DECLARATION: ResourceDeclaration = ResourceDeclaration {
//!     scopes: &["calendar:read", "calendar:write"],
//!     scope_implications: &[("calendar:write", "calendar:read")],
//!     ..ResourceDeclaration::new("Calendar", "https://calendar.example.com/mcp", &["https://auth.example.com"])
//! };
//! assert!(DECLARATION.declares("calendar:write"));
//! const MASK: u128 = DECLARATION.scope_mask(&["calendar:write"]);
//! assert_eq!(MASK, 0b10);
//!
//! let config = ResourceConfig::from_declaration(&DECLARATION)
//!     .unwrap()
//!     .resource("https://calendar.staging.example.com/mcp");
//! let metadata = config.metadata().unwrap();
//! assert_eq!(metadata.resource, "https://calendar.staging.example.com/mcp");
//! assert_eq!(metadata.scopes_supported, ["calendar:read", "calendar:write"]);
//! ```

use crate::crypto::AlgorithmSet;
use crate::dpop::mode::{
    DEFAULT_PROOF_ALGORITHMS, DpopMode, ProofAlgorithmsError, proof_algorithms,
};
use crate::metadata::{MetadataError, ProtectedResourceMetadata};
use crate::scopes::{ScopeError, ScopeHierarchy, ScopeSet};

/// The most scopes one resource may declare (tool requirements are bit masks over them).
pub const MAX_DECLARED_SCOPES: usize = 127;

/// A resource declared with `#[protected_resource]`.
pub trait ProtectedResource: 'static {
    /// The compile-time declaration.
    const DECLARATION: &'static ResourceDeclaration;

    /// The compile-time error message of a `#[mcp_tool]` scope this resource does not
    /// declare (the attribute generates one naming the type and its scopes).
    const UNDECLARED_SCOPE_MESSAGE: &'static str =
        "this scope is not declared by the resource's #[protected_resource(scopes = [...])]";

    /// The declared scope hierarchy, built once.
    fn scope_hierarchy() -> &'static ScopeHierarchy;

    /// The effective configuration: the declaration's defaults, to be overridden from the
    /// environment or a builder.
    fn config() -> ResourceConfig {
        ResourceConfig::with_hierarchy(Self::DECLARATION, Self::scope_hierarchy().clone())
    }
}

/// What `#[protected_resource(...)]` declares. Every member is `'static` so that the
/// declaration is a `const` and compile-time checks can read it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDeclaration {
    /// The Rust type's name, for messages.
    pub type_name: &'static str,
    /// The default `resource` URL: the MCP endpoint.
    pub resource: &'static str,
    /// The default authorization servers (issuers).
    pub authorization_servers: &'static [&'static str],
    /// The declared scopes, in declaration order.
    pub scopes: &'static [&'static str],
    /// Implications `(broader, narrower)`: holding the broader scope satisfies the narrower.
    pub scope_implications: &'static [(&'static str, &'static str)],
    /// Scopes every request needs, whatever the tool.
    pub required_scopes: &'static [&'static str],
    /// The scopes a 401 challenge asks for; `None` for the default (see
    /// [`challenge_scopes`](Self::challenge_scopes)).
    pub challenge_scopes: Option<&'static [&'static str]>,
    /// `resource_name`.
    pub resource_name: Option<&'static str>,
    /// `resource_documentation`.
    pub resource_documentation: Option<&'static str>,
    /// `resource_policy_uri`.
    pub resource_policy_uri: Option<&'static str>,
    /// `resource_tos_uri`.
    pub resource_tos_uri: Option<&'static str>,
    /// `bearer_methods_supported` (default `["header"]`).
    pub bearer_methods_supported: &'static [&'static str],
    /// `resource_signing_alg_values_supported`.
    pub resource_signing_alg_values_supported: &'static [&'static str],
    /// `authorization_details_types_supported`.
    pub authorization_details_types_supported: &'static [&'static str],
    /// The MCP resources (URIs and RFC 6570 URI templates) with the scopes reading them
    /// needs, beyond the resource-wide ones.
    pub resources: &'static [DeclaredResource],
    /// Whether DPoP-bound tokens are accepted or required (`dpop = "allowed"`).
    pub dpop: DpopMode,
    /// The DPoP proof algorithms (`dpop_signing_alg_values_supported`); empty means
    /// [`DEFAULT_PROOF_ALGORITHMS`] when DPoP is enabled.
    pub dpop_signing_alg_values_supported: &'static [&'static str],
}

/// An MCP resource (a URI, or an RFC 6570 template of URIs) and the scopes reading it needs,
/// as `#[protected_resource(resources = { "calendar://events/{day}" => ["calendar:read"] })]`
/// declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredResource {
    /// The URI or URI template.
    pub uri_template: &'static str,
    /// The scopes it needs (each declared in `scopes`).
    pub scopes: &'static [&'static str],
}

impl ResourceDeclaration {
    /// A declaration with no scopes and the default optional members; fill the rest with
    /// struct-update syntax.
    pub const fn new(
        type_name: &'static str,
        resource: &'static str,
        authorization_servers: &'static [&'static str],
    ) -> Self {
        Self {
            type_name,
            resource,
            authorization_servers,
            scopes: &[],
            scope_implications: &[],
            required_scopes: &[],
            challenge_scopes: None,
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            bearer_methods_supported: &["header"],
            resource_signing_alg_values_supported: &[],
            authorization_details_types_supported: &[],
            resources: &[],
            dpop: DpopMode::Disabled,
            dpop_signing_alg_values_supported: &[],
        }
    }

    /// Whether `scope` is declared. A `const fn`: `#[mcp_tool]` checks scopes with it at
    /// compile time.
    pub const fn declares(&self, scope: &str) -> bool {
        self.index_of(scope).is_some()
    }

    const fn index_of(&self, scope: &str) -> Option<usize> {
        let mut i = 0;
        while i < self.scopes.len() {
            if const_str_eq(self.scopes[i], scope) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The bit mask of `scopes` over the declared scopes (bit *i* = the *i*-th declared scope).
    /// An undeclared scope, or a declaration of more than [`MAX_DECLARED_SCOPES`], yields
    /// `u128::MAX`, which no token satisfies: a mistake fails closed.
    pub const fn scope_mask(&self, scopes: &[&str]) -> u128 {
        if self.scopes.len() > MAX_DECLARED_SCOPES {
            return u128::MAX;
        }
        let mut mask = 0u128;
        let mut i = 0;
        while i < scopes.len() {
            match self.index_of(scopes[i]) {
                Some(index) => mask |= 1 << index,
                None => return u128::MAX,
            }
            i += 1;
        }
        mask
    }

    /// The scopes of `mask`, or `None` when the mask names anything undeclared.
    pub fn scopes_of_mask(&self, mask: u128) -> Option<ScopeSet> {
        if self.scopes.len() > MAX_DECLARED_SCOPES || (mask >> self.scopes.len()) != 0 {
            return None;
        }
        Some(
            self.scopes
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, scope)| *scope)
                .collect(),
        )
    }

    /// The scopes a 401 challenge asks for: the explicit `challenge_scopes`, else the
    /// scopes every request needs, else the least privileged declared scopes (those that
    /// imply no other: with `write ⇒ read`, just `read`). With no hierarchy that is every
    /// declared scope, which equals `scopes_supported`.
    pub fn challenge_scopes(&self) -> ScopeSet {
        if let Some(explicit) = self.challenge_scopes {
            return explicit.iter().copied().collect();
        }
        if !self.required_scopes.is_empty() {
            return self.required_scopes.iter().copied().collect();
        }
        self.scopes
            .iter()
            .filter(|scope| {
                !self
                    .scope_implications
                    .iter()
                    .any(|(broader, _)| broader == *scope)
            })
            .copied()
            .collect()
    }

    /// Builds the declared hierarchy.
    pub fn scope_hierarchy(&self) -> Result<ScopeHierarchy, ScopeError> {
        ScopeHierarchy::from_pairs(self.scope_implications.iter().copied())
    }
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Why the effective configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The metadata the configuration yields is invalid (a bad URL, no issuer, …).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The declared scope hierarchy is invalid.
    #[error(transparent)]
    Scopes(#[from] ScopeError),
    /// An environment variable holds something unusable.
    #[error("environment variable {name}: {reason}")]
    Environment {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The configuration a deployment runs with: the declaration's scopes, with the `resource`
/// URL and authorization servers possibly overridden at startup.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    declaration: &'static ResourceDeclaration,
    hierarchy: ScopeHierarchy,
    resource: String,
    authorization_servers: Vec<String>,
    dpop: DpopMode,
}

/// The environment variable that overrides the `resource` URL.
pub const ENV_RESOURCE: &str = "MCP_OAUTH_RESOURCE";
/// The environment variable that overrides the authorization servers (comma-separated).
pub const ENV_ISSUER: &str = "MCP_OAUTH_ISSUER";
/// The environment variable that overrides the DPoP mode (`disabled`, `allowed`,
/// `required`).
pub const ENV_DPOP: &str = "MCP_OAUTH_DPOP";

impl ResourceConfig {
    /// The configuration of a declared resource type, with its defaults.
    pub fn of<R: ProtectedResource>() -> Self {
        R::config()
    }

    /// The configuration of a declaration, with its defaults.
    pub fn from_declaration(declaration: &'static ResourceDeclaration) -> Result<Self, ScopeError> {
        Ok(Self::with_hierarchy(
            declaration,
            declaration.scope_hierarchy()?,
        ))
    }

    fn with_hierarchy(
        declaration: &'static ResourceDeclaration,
        hierarchy: ScopeHierarchy,
    ) -> Self {
        Self {
            declaration,
            hierarchy,
            resource: declaration.resource.to_owned(),
            authorization_servers: declaration
                .authorization_servers
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            dpop: declaration.dpop,
        }
    }

    /// Overrides the `resource` URL (the MCP endpoint as clients reach it).
    #[must_use]
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        self.resource = url.into();
        self
    }

    /// Replaces the authorization servers.
    #[must_use]
    pub fn authorization_servers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides the DPoP mode (the declaration's `dpop`); see [`DpopMode`].
    #[must_use]
    pub fn dpop(mut self, mode: DpopMode) -> Self {
        self.dpop = mode;
        self
    }

    /// Applies `MCP_OAUTH_RESOURCE`, `MCP_OAUTH_ISSUER` (comma-separated) and
    /// `MCP_OAUTH_DPOP` when set, and
    /// checks the result: `ResourceConfig::of::<Calendar>().with_env()?`. (The whole
    /// deployment's `MCP_OAUTH_*` configuration is [`Settings`](crate::settings::Settings).)
    pub fn with_env(self) -> Result<Self, ConfigError> {
        self.with_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`with_env`](Self::with_env), reading variables through `lookup` (for tests).
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(resource) = lookup(ENV_RESOURCE) {
            let resource = resource.trim();
            if resource.is_empty() {
                return Err(ConfigError::Environment {
                    name: ENV_RESOURCE,
                    reason: "empty".into(),
                });
            }
            self.resource = resource.to_owned();
        }
        if let Some(issuers) = lookup(ENV_ISSUER) {
            let issuers: Vec<String> = issuers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if issuers.is_empty() {
                return Err(ConfigError::Environment {
                    name: ENV_ISSUER,
                    reason: "no issuer URL".into(),
                });
            }
            self.authorization_servers = issuers;
        }
        if let Some(mode) = lookup(ENV_DPOP) {
            self.dpop = DpopMode::parse(&mode).ok_or_else(|| ConfigError::Environment {
                name: ENV_DPOP,
                reason: format!("`{}` is not disabled, allowed or required", mode.trim()),
            })?;
        }
        self.metadata()?;
        Ok(self)
    }

    /// Renamed [`with_env`](Self::with_env): a `from_` constructor takes no `self`.
    #[deprecated(note = "renamed `with_env`")]
    pub fn from_env(self) -> Result<Self, ConfigError> {
        self.with_env()
    }

    /// Renamed [`with_lookup`](Self::with_lookup).
    #[deprecated(note = "renamed `with_lookup`")]
    pub fn from_lookup(self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        self.with_lookup(lookup)
    }

    /// The declaration.
    pub fn declaration(&self) -> &'static ResourceDeclaration {
        self.declaration
    }

    /// The effective `resource` URL.
    pub fn resource_url(&self) -> &str {
        &self.resource
    }

    /// The effective authorization servers.
    pub fn issuers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// The declared scope hierarchy.
    pub fn scope_hierarchy(&self) -> &ScopeHierarchy {
        &self.hierarchy
    }

    /// The effective DPoP mode.
    pub fn dpop_mode(&self) -> DpopMode {
        self.dpop
    }

    /// The DPoP proof algorithms: the declared ones, or [`DEFAULT_PROOF_ALGORITHMS`].
    pub fn dpop_algorithms(&self) -> Result<AlgorithmSet, ProofAlgorithmsError> {
        proof_algorithms(self.dpop_algorithm_names().iter().copied())
    }

    fn dpop_algorithm_names(&self) -> &'static [&'static str] {
        match self.declaration.dpop_signing_alg_values_supported {
            [] => DEFAULT_PROOF_ALGORITHMS,
            names => names,
        }
    }

    /// The scopes every request needs.
    pub fn required_scopes(&self) -> ScopeSet {
        self.declaration.required_scopes.iter().copied().collect()
    }

    /// The scopes a 401 challenge asks for.
    pub fn challenge_scopes(&self) -> ScopeSet {
        self.declaration.challenge_scopes()
    }

    /// Renders the RFC 9728 document from the effective configuration. `scopes_supported`
    /// is the declared scopes.
    pub fn metadata(&self) -> Result<ProtectedResourceMetadata, MetadataError> {
        let d = self.declaration;
        let mut builder = ProtectedResourceMetadata::builder(self.resource.clone())
            .authorization_servers(self.authorization_servers.iter().cloned())
            .scopes_supported(d.scopes.iter().copied())
            .bearer_methods_supported(d.bearer_methods_supported.iter().copied())
            .resource_signing_alg_values_supported(
                d.resource_signing_alg_values_supported.iter().copied(),
            )
            .authorization_details_types_supported(
                d.authorization_details_types_supported.iter().copied(),
            );
        if let Some(name) = d.resource_name {
            builder = builder.resource_name(name);
        }
        if let Some(url) = d.resource_documentation {
            builder = builder.resource_documentation(url);
        }
        if let Some(url) = d.resource_policy_uri {
            builder = builder.resource_policy_uri(url);
        }
        if let Some(url) = d.resource_tos_uri {
            builder = builder.resource_tos_uri(url);
        }
        if self.dpop.is_enabled() {
            builder = builder
                .dpop_signing_alg_values_supported(self.dpop_algorithm_names().iter().copied());
            if self.dpop == DpopMode::Required {
                builder = builder.dpop_bound_access_tokens_required(true);
            }
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CALENDAR: ResourceDeclaration = ResourceDeclaration {
        scopes: &["calendar:read", "calendar:write", "calendar:admin"],
        scope_implications: &[
            ("calendar:admin", "calendar:write"),
            ("calendar:write", "calendar:read"),
        ],
        ..ResourceDeclaration::new(
            "Calendar",
            "https://calendar.example.com/mcp",
            &["https://auth.example.com"],
        )
    };

    #[test]
    fn masks_round_trip_and_undeclared_scopes_fail_closed() {
        let mask = CALENDAR.scope_mask(&["calendar:admin", "calendar:read"]);
        assert_eq!(mask, 0b101);
        let scopes = CALENDAR.scopes_of_mask(mask).unwrap();
        assert_eq!(scopes.to_space_separated(), "calendar:admin calendar:read");
        assert_eq!(CALENDAR.scope_mask(&["calendar:typo"]), u128::MAX);
        assert!(CALENDAR.scopes_of_mask(u128::MAX).is_none());
        assert_eq!(CALENDAR.scope_mask(&[]), 0);
    }

    #[test]
    fn the_default_challenge_asks_for_the_least_privileged_scopes() {
        assert_eq!(
            CALENDAR.challenge_scopes().to_space_separated(),
            "calendar:read"
        );
        static FLAT: ResourceDeclaration = ResourceDeclaration {
            scopes: &["a", "b"],
            ..ResourceDeclaration::new(
                "Flat",
                "https://x.example.com/mcp",
                &["https://as.example.com"],
            )
        };
        assert_eq!(FLAT.challenge_scopes().to_space_separated(), "a b");
        static REQUIRED: ResourceDeclaration = ResourceDeclaration {
            required_scopes: &["b"],
            ..FLAT
        };
        assert_eq!(REQUIRED.challenge_scopes().to_space_separated(), "b");
    }

    #[test]
    fn environment_overrides_resource_and_issuers_and_bad_values_are_refused() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = ResourceConfig::from_declaration(&CALENDAR)
            .unwrap()
            .with_lookup(env(&[
                (ENV_RESOURCE, "http://127.0.0.1:9000/mcp"),
                (ENV_ISSUER, "https://a.example.com, https://b.example.com"),
            ]))
            .unwrap();
        assert_eq!(config.resource_url(), "http://127.0.0.1:9000/mcp");
        assert_eq!(
            config.issuers(),
            ["https://a.example.com", "https://b.example.com"]
        );
        let metadata = config.metadata().unwrap();
        assert_eq!(metadata.authorization_servers.len(), 2);

        let bad = ResourceConfig::from_declaration(&CALENDAR)
            .unwrap()
            .with_lookup(env(&[(ENV_RESOURCE, "http://calendar.example.com/mcp")]));
        assert!(matches!(bad, Err(ConfigError::Metadata(_))));
        let empty = ResourceConfig::from_declaration(&CALENDAR)
            .unwrap()
            .with_lookup(env(&[(ENV_ISSUER, " , ")]));
        assert!(matches!(
            empty,
            Err(ConfigError::Environment {
                name: ENV_ISSUER,
                ..
            })
        ));
    }

    #[test]
    #[allow(deprecated)]
    fn the_deprecated_from_lookup_still_applies_the_environment() {
        let lookup = |name: &str| (name == ENV_RESOURCE).then(|| "http://127.0.0.1:9/mcp".into());
        let config = ResourceConfig::from_declaration(&CALENDAR)
            .unwrap()
            .from_lookup(lookup)
            .unwrap();
        assert_eq!(config.resource_url(), "http://127.0.0.1:9/mcp");
    }
}
