//! A deployment's configuration as data: one [`Settings`] value, deserializable with `serde`
//! (so it embeds in a program's own TOML, YAML or figment configuration) and read from the
//! environment (`MCP_OAUTH_*`, see [`Settings::from_env`]). The one-call setup
//! ([`ProtectedResource::oauth`](crate::resource::ProtectedResource)) turns it into a served
//! app; every fact is stated once here.
//!
//! ```
//! use mcp_oauth::settings::Settings;
//!
//! let settings: Settings = serde_json::from_str(r#"{
//!     "resource": "https://calendar.example.com/mcp",
//!     "bind": "0.0.0.0:8080",
//!     "issuers": ["https://auth.example.com"],
//!     "failed_auth_per_minute": 30
//! }"#).unwrap();
//! assert_eq!(settings.issuers, ["https://auth.example.com"]);
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything a deployment sets. Absent members keep the declaration's values
/// (`#[protected_resource]`) or the library's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The MCP endpoint URL clients use (`MCP_OAUTH_RESOURCE`); default: the declaration's.
    pub resource: Option<String>,
    /// The address to listen on (`MCP_OAUTH_BIND`); default: the resource URL's host and
    /// port. Required for an https resource (TLS is terminated in front).
    pub bind: Option<String>,
    /// The authorization servers, each an issuer whose tokens are accepted and which the
    /// metadata advertises (`MCP_OAUTH_ISSUER`, comma-separated); default: the
    /// declaration's, or the embedded dev server (feature `dev`, loopback only).
    pub issuers: Vec<String>,
    /// An identity provider's conventions (`MCP_OAUTH_PROVIDER` and its variables); it
    /// names the issuer when `issuers` is empty.
    pub provider: Option<Provider>,
    /// The issuer's JWKS URL, when not discovered (`MCP_OAUTH_ISSUER_JWKS_URI`; one issuer).
    pub jwks_uri: Option<String>,
    /// The audience tokens carry (`MCP_OAUTH_AUDIENCE`); default: the resource URL.
    pub audience: Option<String>,
    /// Extra browser origins allowed to call the endpoint (`MCP_OAUTH_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// `Host` names (or `name:port`) accepted (`MCP_OAUTH_ALLOWED_HOSTS`): the layer's Host
    /// check and rmcp's `allowed_hosts` both come from it.
    pub allowed_hosts: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed, addresses or CIDR blocks
    /// (`MCP_OAUTH_TRUSTED_PROXIES`); empty: the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Failed authentications allowed per client address and minute, after a burst of 60
    /// (`MCP_OAUTH_FAILED_AUTH_PER_MINUTE`; default 60; `0` turns the limit off).
    pub failed_auth_per_minute: Option<u32>,
    /// Requests allowed per principal and minute, with a burst of the same size
    /// (`MCP_OAUTH_REQUESTS_PER_MINUTE`; default: unlimited).
    pub requests_per_minute: Option<u32>,
    /// `tools/list` shows each caller only the tools its token may call
    /// (`MCP_OAUTH_FILTER_TOOLS`).
    pub filter_tools: bool,
    /// Token introspection (RFC 7662) for opaque tokens (`MCP_OAUTH_INTROSPECTION_*`).
    pub introspection: Option<Introspection>,
    /// Where audit events go (`MCP_OAUTH_AUDIT_LOG`: `stderr`, or a JSON-lines file path);
    /// default: `tracing` events under the `mcp_oauth::audit` target.
    pub audit_log: Option<AuditLog>,
}

/// An identity provider preset (`MCP_OAUTH_PROVIDER`), with the values it needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Provider {
    /// Plain RFC 9068 tokens from `issuers` (`generic`).
    Generic,
    /// Auth0 (`MCP_OAUTH_AUTH0_DOMAIN`).
    Auth0 {
        /// The tenant's domain, e.g. `acme.us.auth0.com`.
        domain: String,
    },
    /// Microsoft Entra ID (`MCP_OAUTH_ENTRA_TENANT`, `MCP_OAUTH_ENTRA_VERSION`,
    /// `MCP_OAUTH_ENTRA_ALLOWED_TENANTS`).
    Entra {
        /// A tenant id, or `multi` for a multi-tenant app.
        tenant: String,
        /// The token version, 1 or 2 (default 2).
        #[serde(default = "entra_v2")]
        version: u8,
        /// For `multi`: the tenants allowed (required: an empty list would trust every
        /// tenant of Entra).
        #[serde(default)]
        allowed_tenants: Vec<String>,
    },
    /// Keycloak (`MCP_OAUTH_KEYCLOAK_URL`, `MCP_OAUTH_KEYCLOAK_REALM`).
    Keycloak {
        /// The server's base URL.
        url: String,
        /// The realm.
        realm: String,
    },
    /// Okta (`MCP_OAUTH_OKTA_DOMAIN`, `MCP_OAUTH_OKTA_AUTHORIZATION_SERVER`, default
    /// `default`).
    Okta {
        /// The Okta domain.
        domain: String,
        /// The custom authorization server id.
        #[serde(default = "okta_default")]
        authorization_server: String,
    },
    /// Scalekit (`MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL`).
    Scalekit {
        /// The environment URL.
        environment_url: String,
    },
}

fn entra_v2() -> u8 {
    2
}

fn okta_default() -> String {
    "default".to_owned()
}

/// Token introspection (RFC 7662): the endpoint and this server's client credentials.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Introspection {
    /// The introspection endpoint (`MCP_OAUTH_INTROSPECTION_ENDPOINT`); default: discovered
    /// from the issuer's metadata.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// This server's client id (`MCP_OAUTH_INTROSPECTION_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`MCP_OAUTH_INTROSPECTION_CLIENT_SECRET`, or a file named by
    /// `MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE`). Never printed.
    pub client_secret: Secret,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

/// A secret value: never printed, logged or echoed in an error.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditLog {
    /// JSON lines on standard error.
    Stderr,
    /// JSON lines appended to a file.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditLog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(AuditLog::parse(&value))
    }
}

impl AuditLog {
    /// `stderr`, or a file path.
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("stderr") {
            AuditLog::Stderr
        } else {
            AuditLog::File(PathBuf::from(value))
        }
    }
}

/// A setting that stops startup: which one, and why (never its value when it is a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A variable has a value that cannot be used.
    #[error("{name}: {reason}")]
    Invalid {
        /// The variable (or member) name.
        name: String,
        /// What is wrong, and what would be right.
        reason: String,
    },
    /// An `MCP_OAUTH_*` variable this version does not know: a misspelt security setting
    /// must never be ignored.
    #[error("{name} is not a setting of mcp-oauth{}", suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    Unknown {
        /// The variable.
        name: String,
        /// The nearest known variable, when one is close.
        suggestion: Option<String>,
    },
}
