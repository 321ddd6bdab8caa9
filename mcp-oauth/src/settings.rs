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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::dpop::DpopMode;
use crate::validation::{ENTRA_ORGANIZATIONS_V2, EntraTenant, EntraVersion, Profile};

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
    /// Token exchange (RFC 8693, or Entra ID's on-behalf-of flow): tools call downstream APIs
    /// with tokens obtained for them, never the caller's (`MCP_OAUTH_EXCHANGE_*`; see
    /// [`crate::exchange`]).
    pub token_exchange: Option<TokenExchange>,
    /// Where audit events go (`MCP_OAUTH_AUDIT_LOG`: `stderr`, or a JSON-lines file path);
    /// default: `tracing` events under the `mcp_oauth::audit` target.
    pub audit_log: Option<AuditLog>,
    /// DPoP-bound tokens (RFC 9449): `disabled`, `allowed` or `required` (`MCP_OAUTH_DPOP`);
    /// default: the declaration's `dpop`.
    pub dpop: Option<DpopMode>,
    /// Server nonces in DPoP proofs (`MCP_OAUTH_DPOP_NONCE`).
    pub dpop_nonce: bool,
    /// The keys of the nonces, base64url of 32 bytes each, the first signing
    /// (`MCP_OAUTH_DPOP_NONCE_KEYS`); default: a random key per process. Replicas share them.
    pub dpop_nonce_keys: Vec<Secret>,
    /// How far a proof's `iat` may be from now, in seconds (`MCP_OAUTH_DPOP_IAT_WINDOW`;
    /// default 300).
    pub dpop_iat_window: Option<u64>,
    /// State shared by the replicas on Redis (`MCP_OAUTH_REDIS_URL`: `redis://` or
    /// `rediss://`, a password in it never printed); default: every state in this process.
    pub redis_url: Option<Secret>,
    /// The prefix of the Redis keys (`MCP_OAUTH_REDIS_PREFIX`; default `mcp-oauth:`).
    pub redis_prefix: Option<String>,
    /// How long a request waits for one Redis operation, in milliseconds
    /// (`MCP_OAUTH_REDIS_TIMEOUT_MS`; default 25).
    pub redis_timeout_ms: Option<u32>,
    /// How many replicas share the budgets (`MCP_OAUTH_REPLICAS`; default 1): while Redis is
    /// unreachable each applies its share of every budget.
    pub replicas: Option<u32>,
}

impl Settings {
    /// The grant token exchange sends, when it is configured: the one `token_exchange`
    /// names, else Entra ID's on-behalf-of flow with the Entra provider, else RFC 8693.
    ///
    /// ```
    /// use mcp_oauth::settings::{ExchangeGrant, Settings};
    ///
    /// let entra = Settings::from_lookup([
    ///     ("MCP_OAUTH_PROVIDER", "entra"),
    ///     ("MCP_OAUTH_ENTRA_TENANT", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    ///     ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "api://calendar"),
    ///     ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", "from-a-vault"),
    ///     ("MCP_OAUTH_EXCHANGE_AUDIENCES", "api://holidays"),
    /// ].map(|(k, v)| (k.to_string(), v.to_string())))?;
    /// assert_eq!(entra.token_exchange_grant(), Some(ExchangeGrant::EntraObo));
    /// assert_eq!(Settings::default().token_exchange_grant(), None);
    /// # Ok::<(), mcp_oauth::settings::SettingsError>(())
    /// ```
    pub fn token_exchange_grant(&self) -> Option<ExchangeGrant> {
        let exchange = self.token_exchange.as_ref()?;
        Some(exchange.grant.unwrap_or(match self.provider {
            Some(Provider::Entra { .. }) => ExchangeGrant::EntraObo,
            _ => ExchangeGrant::TokenExchange,
        }))
    }

    /// The Redis members: a `redis://` or `rediss://` URL (never echoed: it may hold a
    /// password), the others only with it, the timeout within 1 to 10,000 ms, at least one
    /// replica.
    fn validate_redis(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.redis_url {
            let parsed = url::Url::parse(url.expose()).ok();
            if !parsed
                .as_ref()
                .is_some_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.has_host())
            {
                return Err(invalid(
                    REDIS_URL,
                    "is not a redis:// or rediss:// URL with a host",
                ));
            }
        } else {
            for (name, set) in [
                (REDIS_PREFIX, self.redis_prefix.is_some()),
                (REDIS_TIMEOUT_MS, self.redis_timeout_ms.is_some()),
                (REPLICAS, self.replicas.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        name,
                        format!("only means something with {REDIS_URL}: set it, or unset this"),
                    ));
                }
            }
        }
        if let Some(ms) = self.redis_timeout_ms
            && !(1..=MAX_REDIS_TIMEOUT_MS).contains(&ms)
        {
            return Err(invalid(
                REDIS_TIMEOUT_MS,
                format!("{ms} is not within 1 to {MAX_REDIS_TIMEOUT_MS} milliseconds"),
            ));
        }
        if self.replicas == Some(0) {
            return Err(invalid(REPLICAS, "must be at least 1"));
        }
        Ok(())
    }

    /// The DPoP members: nonce keys well-formed and only with nonces on, nonces and the
    /// window only with a mode that is not `disabled`, the window within 1 to 3600 s. (That
    /// nonces need DPoP on when the mode comes from the declaration is checked at startup.)
    fn validate_dpop(&self) -> Result<(), SettingsError> {
        for key in &self.dpop_nonce_keys {
            nonce_key(key)?;
        }
        if !self.dpop_nonce_keys.is_empty() && !self.dpop_nonce {
            return Err(invalid(
                DPOP_NONCE_KEYS,
                format!("nonce keys without nonces: set {DPOP_NONCE}=1, or unset the keys"),
            ));
        }
        if self.dpop == Some(DpopMode::Disabled) {
            for (name, set) in [
                (DPOP_NONCE, self.dpop_nonce),
                (DPOP_IAT_WINDOW, self.dpop_iat_window.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        name,
                        format!("is set but {DPOP} is `disabled`: nothing would use it"),
                    ));
                }
            }
        }
        if let Some(window) = self.dpop_iat_window
            && !(1..=MAX_DPOP_IAT_WINDOW).contains(&window)
        {
            return Err(invalid(
                DPOP_IAT_WINDOW,
                format!("{window} is not within 1 to {MAX_DPOP_IAT_WINDOW} seconds"),
            ));
        }
        Ok(())
    }
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

/// Token exchange (RFC 8693): this server's confidential client at the authorization server,
/// the downstream audiences it may ask tokens for, where and how it asks. The one-call setup
/// turns it into a [`TokenExchanger`](crate::exchange::TokenExchanger).
///
/// ```
/// use mcp_oauth::settings::{ExchangeGrant, Settings};
///
/// let settings: Settings = serde_json::from_str(r#"{
///     "issuers": ["https://auth.example.com"],
///     "token_exchange": {
///         "client_id": "calendar-server",
///         "client_secret": "from-a-vault",
///         "audiences": ["https://holidays.example.com"]
///     }
/// }"#).unwrap();
/// settings.validate().unwrap();
/// assert_eq!(settings.token_exchange_grant(), Some(ExchangeGrant::TokenExchange));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenExchange {
    /// This server's client id (`MCP_OAUTH_EXCHANGE_CLIENT_ID`), named in the `act` claim of
    /// the tokens it obtains. Set with the secret; both may be absent only when the embedded
    /// dev authorization server runs (it registers the server's client itself).
    pub client_id: Option<String>,
    /// Its secret (`MCP_OAUTH_EXCHANGE_CLIENT_SECRET`, or a file named by
    /// `MCP_OAUTH_EXCHANGE_CLIENT_SECRET_FILE`). Never printed.
    pub client_secret: Option<Secret>,
    /// The token endpoint (`MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT`): https, or http on a loopback
    /// host; default: discovered from the issuer's metadata (one issuer).
    pub token_endpoint: Option<String>,
    /// The downstream audiences (or resources) tools may ask tokens for
    /// (`MCP_OAUTH_EXCHANGE_AUDIENCES`, comma-separated): the exchanger's allow-list.
    /// Required.
    pub audiences: Vec<String>,
    /// The grant (`MCP_OAUTH_EXCHANGE_GRANT`); default: [`ExchangeGrant::EntraObo`] with the
    /// Entra ID provider, else [`ExchangeGrant::TokenExchange`].
    pub grant: Option<ExchangeGrant>,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("token_endpoint", &self.token_endpoint)
            .field("audiences", &self.audiences)
            .field("grant", &self.grant)
            .finish()
    }
}

/// Which token request a [`TokenExchange`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExchangeGrant {
    /// RFC 8693 token exchange (`token-exchange`).
    TokenExchange,
    /// Microsoft Entra ID's on-behalf-of flow (`entra-obo`).
    EntraObo,
}

impl ExchangeGrant {
    /// `token-exchange` or `entra-obo`, ASCII case-insensitively.
    ///
    /// ```
    /// use mcp_oauth::settings::ExchangeGrant;
    ///
    /// assert_eq!(ExchangeGrant::parse("entra-obo"), Some(ExchangeGrant::EntraObo));
    /// assert_eq!(ExchangeGrant::parse("jwt-bearer"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        [ExchangeGrant::TokenExchange, ExchangeGrant::EntraObo]
            .into_iter()
            .find(|grant| grant.as_str().eq_ignore_ascii_case(value))
    }

    /// The name `MCP_OAUTH_EXCHANGE_GRANT` takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExchangeGrant::TokenExchange => "token-exchange",
            ExchangeGrant::EntraObo => "entra-obo",
        }
    }
}

impl fmt::Display for ExchangeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// The prefix of every variable this module reads.
const PREFIX: &str = "MCP_OAUTH_";

/// Prefixes of variables that belong to the project's own tools, not to the library: the
/// stand-alone dev authorization server (`examples/dev_server.rs`) and the soak test. A shell
/// that runs both must not stop the server; a setting of the library never starts with them.
const OTHER_TOOLS: [&str; 2] = ["MCP_OAUTH_DEV_", "MCP_OAUTH_SOAK_"];

/// Whether `name` is read here (an `MCP_OAUTH_*` name not reserved for another tool).
fn is_ours(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with(PREFIX) && !OTHER_TOOLS.iter().any(|other| upper.starts_with(other))
}
/// `NAME_FILE`: the value of `NAME` is the content of the file it names.
const FILE_SUFFIX: &str = "_FILE";

const RESOURCE: &str = "MCP_OAUTH_RESOURCE";
const BIND: &str = "MCP_OAUTH_BIND";
const ISSUER: &str = "MCP_OAUTH_ISSUER";
const PROVIDER: &str = "MCP_OAUTH_PROVIDER";
const AUTH0_DOMAIN: &str = "MCP_OAUTH_AUTH0_DOMAIN";
const ENTRA_TENANT: &str = "MCP_OAUTH_ENTRA_TENANT";
const ENTRA_VERSION: &str = "MCP_OAUTH_ENTRA_VERSION";
const ENTRA_ALLOWED_TENANTS: &str = "MCP_OAUTH_ENTRA_ALLOWED_TENANTS";
const KEYCLOAK_URL: &str = "MCP_OAUTH_KEYCLOAK_URL";
const KEYCLOAK_REALM: &str = "MCP_OAUTH_KEYCLOAK_REALM";
const OKTA_DOMAIN: &str = "MCP_OAUTH_OKTA_DOMAIN";
const OKTA_AUTHORIZATION_SERVER: &str = "MCP_OAUTH_OKTA_AUTHORIZATION_SERVER";
const SCALEKIT_ENVIRONMENT_URL: &str = "MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL";
const ISSUER_JWKS_URI: &str = "MCP_OAUTH_ISSUER_JWKS_URI";
const AUDIENCE: &str = "MCP_OAUTH_AUDIENCE";
const ALLOWED_ORIGINS: &str = "MCP_OAUTH_ALLOWED_ORIGINS";
const ALLOWED_HOSTS: &str = "MCP_OAUTH_ALLOWED_HOSTS";
const TRUSTED_PROXIES: &str = "MCP_OAUTH_TRUSTED_PROXIES";
const FAILED_AUTH_PER_MINUTE: &str = "MCP_OAUTH_FAILED_AUTH_PER_MINUTE";
const REQUESTS_PER_MINUTE: &str = "MCP_OAUTH_REQUESTS_PER_MINUTE";
const FILTER_TOOLS: &str = "MCP_OAUTH_FILTER_TOOLS";
const INTROSPECTION_ENDPOINT: &str = "MCP_OAUTH_INTROSPECTION_ENDPOINT";
const INTROSPECTION_CLIENT_ID: &str = "MCP_OAUTH_INTROSPECTION_CLIENT_ID";
const INTROSPECTION_CLIENT_SECRET: &str = "MCP_OAUTH_INTROSPECTION_CLIENT_SECRET";
const EXCHANGE_CLIENT_ID: &str = "MCP_OAUTH_EXCHANGE_CLIENT_ID";
const EXCHANGE_CLIENT_SECRET: &str = "MCP_OAUTH_EXCHANGE_CLIENT_SECRET";
const EXCHANGE_TOKEN_ENDPOINT: &str = "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT";
const EXCHANGE_AUDIENCES: &str = "MCP_OAUTH_EXCHANGE_AUDIENCES";
const EXCHANGE_GRANT: &str = "MCP_OAUTH_EXCHANGE_GRANT";
const AUDIT_LOG: &str = "MCP_OAUTH_AUDIT_LOG";
const DPOP: &str = "MCP_OAUTH_DPOP";
const DPOP_NONCE: &str = "MCP_OAUTH_DPOP_NONCE";
const DPOP_NONCE_KEYS: &str = "MCP_OAUTH_DPOP_NONCE_KEYS";
const DPOP_IAT_WINDOW: &str = "MCP_OAUTH_DPOP_IAT_WINDOW";
const REDIS_URL: &str = "MCP_OAUTH_REDIS_URL";
const REDIS_PREFIX: &str = "MCP_OAUTH_REDIS_PREFIX";
const REDIS_TIMEOUT_MS: &str = "MCP_OAUTH_REDIS_TIMEOUT_MS";
const REPLICAS: &str = "MCP_OAUTH_REPLICAS";
/// The longest Redis timeout accepted (10 s): a request never waits longer on it.
const MAX_REDIS_TIMEOUT_MS: u32 = 10_000;
/// The widest `iat` window accepted (an hour): a wider one keeps proofs replayable longer.
const MAX_DPOP_IAT_WINDOW: u64 = 3600;

/// The provider names `MCP_OAUTH_PROVIDER` takes.
const PROVIDERS: [&str; 6] = ["auth0", "entra", "keycloak", "okta", "scalekit", "generic"];

/// Each provider's own variables, with the provider they belong to.
const PROVIDER_VARIABLES: [(&str, &str); 9] = [
    (AUTH0_DOMAIN, "auth0"),
    (ENTRA_TENANT, "entra"),
    (ENTRA_VERSION, "entra"),
    (ENTRA_ALLOWED_TENANTS, "entra"),
    (KEYCLOAK_URL, "keycloak"),
    (KEYCLOAK_REALM, "keycloak"),
    (OKTA_DOMAIN, "okta"),
    (OKTA_AUTHORIZATION_SERVER, "okta"),
    (SCALEKIT_ENVIRONMENT_URL, "scalekit"),
];

impl Settings {
    /// Every variable [`from_env`](Self::from_env) reads: name, default, meaning. The
    /// README's configuration table is this list (a test keeps them equal).
    ///
    /// Any variable may instead be given as a file: `NAME_FILE` names a file whose content,
    /// less one trailing newline, is the value (for container secrets; setting both `NAME`
    /// and `NAME_FILE` is an error).
    ///
    /// ```
    /// use mcp_oauth::settings::Settings;
    ///
    /// assert!(Settings::VARIABLES.iter().any(|(name, _, _)| *name == "MCP_OAUTH_ISSUER"));
    /// ```
    pub const VARIABLES: &'static [(&'static str, &'static str, &'static str)] = &[
        (
            RESOURCE,
            "the declaration's `resource`",
            "The MCP endpoint URL clients use: an http(s) URL with a host and no fragment.",
        ),
        (
            BIND,
            "the resource URL's host and port; required for an https resource",
            "The address to listen on: `ip:port`, `[ipv6]:port` or `host:port`.",
        ),
        (
            ISSUER,
            "the declaration's, or the provider's",
            "The authorization servers whose tokens are accepted and which the metadata \
             advertises: http(s) URLs, comma-separated, each exactly the tokens' `iss`.",
        ),
        (
            PROVIDER,
            "none: plain RFC 9068 tokens",
            "An identity provider's token conventions: `auth0`, `entra`, `keycloak`, `okta`, \
             `scalekit` or `generic` (RFC 9068 tokens from `MCP_OAUTH_ISSUER`).",
        ),
        (
            AUTH0_DOMAIN,
            "— (required for `auth0`)",
            "The Auth0 tenant's domain, e.g. `acme.us.auth0.com`.",
        ),
        (
            ENTRA_TENANT,
            "— (required for `entra`)",
            "The Entra ID tenant id (a GUID), or `multi` for a multi-tenant app.",
        ),
        (
            ENTRA_VERSION,
            "`2`",
            "The Entra ID access-token version, `1` or `2` (the app manifest's \
             `accessTokenAcceptedVersion`).",
        ),
        (
            ENTRA_ALLOWED_TENANTS,
            "— (required with `multi`)",
            "The tenant ids a multi-tenant app accepts, comma-separated.",
        ),
        (
            KEYCLOAK_URL,
            "— (required for `keycloak`)",
            "The Keycloak server's base URL (with `/auth` before Keycloak 17).",
        ),
        (
            KEYCLOAK_REALM,
            "— (required for `keycloak`)",
            "The Keycloak realm.",
        ),
        (
            OKTA_DOMAIN,
            "— (required for `okta`)",
            "The Okta domain, e.g. `acme.okta.com`.",
        ),
        (
            OKTA_AUTHORIZATION_SERVER,
            "`default`",
            "The Okta custom authorization server id.",
        ),
        (
            SCALEKIT_ENVIRONMENT_URL,
            "— (required for `scalekit`)",
            "The Scalekit environment URL, e.g. `https://acme.scalekit.com`.",
        ),
        (
            ISSUER_JWKS_URI,
            "discovered from the issuer's metadata",
            "The issuer's JWKS URL; only with exactly one issuer (or a provider).",
        ),
        (
            AUDIENCE,
            "the resource URL",
            "The audience tokens must carry (`aud`).",
        ),
        (
            ALLOWED_ORIGINS,
            "the resource's own origin",
            "More browser origins allowed to call the endpoint, comma-separated \
             `scheme://host[:port]`.",
        ),
        (
            ALLOWED_HOSTS,
            "the loopback names for a loopback resource; otherwise no `Host` check",
            "`Host` names accepted, comma-separated `name` or `name:port`; naming any turns the \
             check on (the resource's host stays allowed).",
        ),
        (
            TRUSTED_PROXIES,
            "none: the connection's peer is the client",
            "Proxies whose `X-Forwarded-For` is believed: IP addresses and CIDR blocks, \
             comma-separated.",
        ),
        (
            FAILED_AUTH_PER_MINUTE,
            "`60`",
            "Failed authentications allowed per client address and minute, after a burst of \
             60; `0` turns the limit off.",
        ),
        (
            REQUESTS_PER_MINUTE,
            "unlimited",
            "Requests allowed per principal and minute, with a burst of the same size; at \
             least 1.",
        ),
        (
            FILTER_TOOLS,
            "`0`",
            "`1` or `true`: `tools/list` shows each caller only the tools its token may call; \
             `0` or `false`: every tool.",
        ),
        (
            INTROSPECTION_ENDPOINT,
            "discovered from the issuer's metadata",
            "The RFC 7662 introspection endpoint, for opaque tokens (needs the client id and \
             secret).",
        ),
        (
            INTROSPECTION_CLIENT_ID,
            "— (set with the secret)",
            "This server's client id at the introspection endpoint.",
        ),
        (
            INTROSPECTION_CLIENT_SECRET,
            "— (set with the client id)",
            "Its client secret, best given as `MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE`; \
             never printed.",
        ),
        (
            EXCHANGE_CLIENT_ID,
            "— (set with the secret; the embedded dev server registers one)",
            "This server's client id for token exchange (RFC 8693): tools call downstream APIs \
             with tokens obtained for them, whose `act` names this client, never the caller's.",
        ),
        (
            EXCHANGE_CLIENT_SECRET,
            "— (set with the client id)",
            "Its client secret, best given as `MCP_OAUTH_EXCHANGE_CLIENT_SECRET_FILE`; never \
             printed.",
        ),
        (
            EXCHANGE_TOKEN_ENDPOINT,
            "discovered from the issuer's metadata (one issuer)",
            "The token endpoint exchanges are sent to: https, or http on a loopback host.",
        ),
        (
            EXCHANGE_AUDIENCES,
            "— (required for token exchange)",
            "The downstream audiences (or resource URIs) tools may ask tokens for, \
             comma-separated: the allow-list.",
        ),
        (
            EXCHANGE_GRANT,
            "`entra-obo` with `MCP_OAUTH_PROVIDER=entra`, else `token-exchange`",
            "The token request: `token-exchange` (RFC 8693) or `entra-obo` (Entra ID's \
             on-behalf-of flow).",
        ),
        (
            AUDIT_LOG,
            "`tracing` events (target `mcp_oauth::audit`)",
            "Where audit events go: `stderr`, or a file path (JSON lines, appended).",
        ),
        (
            DPOP,
            "the declaration's `dpop` (`disabled`)",
            "DPoP-bound tokens (RFC 9449): `disabled` (a `cnf`-bound token is refused), \
             `allowed` (bound tokens need the `DPoP` scheme and a proof; bearer tokens still \
             work) or `required` (only DPoP).",
        ),
        (
            DPOP_NONCE,
            "`0`",
            "`1` or `true`: DPoP proofs must carry a server nonce (RFC 9449 §9; stateless, \
             sent in `DPoP-Nonce`); needs DPoP on.",
        ),
        (
            DPOP_NONCE_KEYS,
            "a random key per process",
            "The nonce keys, comma-separated base64url of 32 bytes each, the first signing; \
             replicas share them. Best given as `MCP_OAUTH_DPOP_NONCE_KEYS_FILE`; never printed.",
        ),
        (
            DPOP_IAT_WINDOW,
            "`300`",
            "How far a DPoP proof's `iat` may be from now, either way, in seconds (1 to 3600).",
        ),
        (
            REDIS_URL,
            "none: every limit and memory in this process",
            "State shared by replicas on Redis (`redis://` or `rediss://`): rate limits, DPoP \
             proof ids and nonce key, sessions, introspection answers, revocations. Never \
             printed.",
        ),
        (
            REDIS_PREFIX,
            "`mcp-oauth:`",
            "The prefix of every Redis key (deployments sharing a Redis use different ones).",
        ),
        (
            REDIS_TIMEOUT_MS,
            "`25`",
            "How long a request waits for one Redis operation, in milliseconds (1 to 10000).",
        ),
        (
            REPLICAS,
            "`1`",
            "How many replicas share the budgets: while Redis is unreachable each applies its \
             share of every budget.",
        ),
    ];

    /// The settings the process environment states, over the defaults:
    /// `Settings::default().with_env()`.
    ///
    /// Every `MCP_OAUTH_*` variable must be one of [`VARIABLES`](Self::VARIABLES) (or its
    /// `_FILE` form): a misspelt security setting stops startup instead of being ignored.
    /// Values are trimmed, and an empty value counts as unset. Lists are comma-separated,
    /// their items trimmed, empty items skipped. A variable whose name or value is not
    /// UTF-8 is an error. Other variables (`RUST_LOG`, …) are not read.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), mcp_oauth::settings::SettingsError> {
    /// let settings = mcp_oauth::settings::Settings::from_env()?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::default().with_env()
    }

    /// The settings the given variables state, over the defaults (the rules of
    /// [`from_env`](Self::from_env), for a map read from elsewhere, or for tests).
    ///
    /// ```
    /// use mcp_oauth::settings::{Settings, SettingsError};
    ///
    /// let vars = |pairs: &[(&str, &str)]| {
    ///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
    /// };
    /// let settings = Settings::from_lookup(vars(&[
    ///     ("MCP_OAUTH_ISSUER", "https://auth.example.com"),
    ///     ("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "30"),
    ///     ("RUST_LOG", "debug"), // not ours: not read
    /// ]))?;
    /// assert_eq!(settings.issuers, ["https://auth.example.com"]);
    /// assert_eq!(settings.failed_auth_per_minute, Some(30));
    ///
    /// let typo = Settings::from_lookup(vars(&[("MCP_OAUTH_ISUER", "https://auth.example.com")]));
    /// assert_eq!(
    ///     typo.unwrap_err().to_string(),
    ///     "MCP_OAUTH_ISUER is not a setting of mcp-oauth; did you mean MCP_OAUTH_ISSUER?",
    /// );
    /// # Ok::<(), SettingsError>(())
    /// ```
    pub fn from_lookup(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        Settings::default().with_lookup(vars)
    }

    /// These settings with the process environment over them (see
    /// [`from_env`](Self::from_env) and [`with_lookup`](Self::with_lookup)).
    pub fn with_env(self) -> Result<Settings, SettingsError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let name = match name.into_string() {
                Ok(name) => name,
                Err(name) => {
                    let lossy = name.to_string_lossy();
                    if lossy.to_ascii_uppercase().starts_with(PREFIX) {
                        return Err(invalid(&lossy, "the variable's name is not valid UTF-8"));
                    }
                    continue;
                }
            };
            if !is_ours(&name) {
                continue;
            }
            let value = value
                .into_string()
                .map_err(|_| invalid(&name, "the value is not valid UTF-8"))?;
            vars.push((name, value));
        }
        self.with_lookup(vars)
    }

    /// These settings with the given variables over them: a variable that is set replaces
    /// the member it names (a list replaces the whole list). A provider's variables refine
    /// the settings' provider when it is the same one (`MCP_OAUTH_PROVIDER` unset or naming
    /// it); naming another provider starts from that provider's defaults. The result is
    /// [`validate`](Self::validate)d.
    ///
    /// ```
    /// use mcp_oauth::settings::{Provider, Settings, SettingsError};
    ///
    /// let file: Settings = serde_json::from_str(r#"{
    ///     "provider": { "name": "keycloak", "url": "https://kc.example.com", "realm": "staging" },
    ///     "filter_tools": true
    /// }"#).unwrap();
    /// let settings = file.with_lookup([
    ///     ("MCP_OAUTH_KEYCLOAK_REALM".to_string(), "production".to_string()),
    ///     ("MCP_OAUTH_FILTER_TOOLS".to_string(), "0".to_string()),
    /// ])?;
    /// assert!(!settings.filter_tools);
    /// assert!(matches!(
    ///     settings.provider,
    ///     Some(Provider::Keycloak { ref url, ref realm })
    ///         if url == "https://kc.example.com" && realm == "production"
    /// ));
    /// # Ok::<(), SettingsError>(())
    /// ```
    pub fn with_lookup(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut vars = Vars::read(vars)?;
        if let Some(value) = vars.take(RESOURCE) {
            self.resource = Some(value);
        }
        if let Some(value) = vars.take(BIND) {
            self.bind = Some(value);
        }
        if let Some(value) = vars.take(ISSUER) {
            self.issuers = list(&value);
        }
        self.provider = provider(self.provider.take(), &mut vars)?;
        if let Some(value) = vars.take(ISSUER_JWKS_URI) {
            self.jwks_uri = Some(value);
        }
        if let Some(value) = vars.take(AUDIENCE) {
            self.audience = Some(value);
        }
        if let Some(value) = vars.take(ALLOWED_ORIGINS) {
            self.allowed_origins = list(&value);
        }
        if let Some(value) = vars.take(ALLOWED_HOSTS) {
            self.allowed_hosts = list(&value);
        }
        if let Some(value) = vars.take(TRUSTED_PROXIES) {
            self.trusted_proxies = list(&value);
        }
        if let Some(value) = vars.take(FAILED_AUTH_PER_MINUTE) {
            self.failed_auth_per_minute = Some(whole_number(
                FAILED_AUTH_PER_MINUTE,
                &value,
                "0 turns the limit off",
            )?);
        }
        if let Some(value) = vars.take(REQUESTS_PER_MINUTE) {
            self.requests_per_minute = Some(whole_number(
                REQUESTS_PER_MINUTE,
                &value,
                "at least 1; unset for no limit",
            )?);
        }
        if let Some(value) = vars.take(FILTER_TOOLS) {
            self.filter_tools = boolean(FILTER_TOOLS, &value)?;
        }
        self.introspection = introspection(self.introspection.take(), &mut vars)?;
        self.token_exchange = token_exchange(self.token_exchange.take(), &mut vars)?;
        if let Some(value) = vars.take(AUDIT_LOG) {
            self.audit_log = Some(AuditLog::parse(&value));
        }
        if let Some(value) = vars.take(DPOP) {
            self.dpop = Some(DpopMode::parse(&value).ok_or_else(|| {
                invalid(
                    DPOP,
                    format!("{value:?} is not disabled, allowed or required"),
                )
            })?);
        }
        if let Some(value) = vars.take(DPOP_NONCE) {
            self.dpop_nonce = boolean(DPOP_NONCE, &value)?;
        }
        if let Some(value) = vars.take(DPOP_NONCE_KEYS) {
            self.dpop_nonce_keys = list(&value).into_iter().map(Secret::new).collect();
        }
        if let Some(value) = vars.take(DPOP_IAT_WINDOW) {
            self.dpop_iat_window = Some(u64::from(whole_number(
                DPOP_IAT_WINDOW,
                &value,
                "seconds, 1 to 3600",
            )?));
        }
        if let Some(value) = vars.take(REDIS_URL) {
            self.redis_url = Some(Secret::new(value));
        }
        if let Some(value) = vars.take(REDIS_PREFIX) {
            self.redis_prefix = Some(value);
        }
        if let Some(value) = vars.take(REDIS_TIMEOUT_MS) {
            self.redis_timeout_ms = Some(whole_number(
                REDIS_TIMEOUT_MS,
                &value,
                "milliseconds, 1 to 10000",
            )?);
        }
        if let Some(value) = vars.take(REPLICAS) {
            self.replicas = Some(whole_number(REPLICAS, &value, "at least 1")?);
        }
        debug_assert!(vars.values.is_empty(), "unread: {:?}", vars.values.keys());
        self.validate()?;
        Ok(self)
    }

    /// Checks every value, whatever its source (a deserialized document is not checked
    /// until this runs; [`with_lookup`](Self::with_lookup) runs it): URLs are http(s) with
    /// a host, lists hold what they should, a provider has what it needs and names the
    /// same issuer as `issuers`, a JWKS URL belongs to exactly one issuer, introspection
    /// has a client id and secret, token exchange has its audiences (and a client id and
    /// secret, or neither). Errors name the variable.
    ///
    /// ```
    /// use mcp_oauth::settings::Settings;
    ///
    /// let settings: Settings =
    ///     serde_json::from_str(r#"{ "issuers": ["auth.example.com"] }"#).unwrap();
    /// assert_eq!(
    ///     settings.validate().unwrap_err().to_string(),
    ///     "MCP_OAUTH_ISSUER: \"auth.example.com\" is not an http(s) URL: relative URL without a base",
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_dpop()?;
        self.validate_redis()?;
        if let Some(resource) = &self.resource {
            http_url(RESOURCE, resource)?;
        }
        if let Some(bind) = &self.bind {
            check_bind(bind)?;
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            issuer_url(ISSUER, issuer)?;
            if self.issuers[..i].contains(issuer) {
                return Err(invalid(ISSUER, format!("{issuer:?} is listed twice")));
            }
        }
        match &self.provider {
            // The generic provider takes its issuers from the declaration when none is set.
            Some(Provider::Generic) if self.issuers.is_empty() => {}
            Some(provider) if self.issuers.is_empty() => {
                provider.profile(None)?;
            }
            Some(provider) => {
                for issuer in &self.issuers {
                    provider.profile(Some(issuer))?;
                }
            }
            None => {}
        }
        if let Some(jwks_uri) = &self.jwks_uri {
            http_url(ISSUER_JWKS_URI, jwks_uri)?;
            let names_one_issuer = match self.issuers.len() {
                0 => matches!(&self.provider, Some(p) if *p != Provider::Generic),
                n => n == 1,
            };
            if !names_one_issuer {
                return Err(invalid(
                    ISSUER_JWKS_URI,
                    format!(
                        "the key set of one issuer, but {} issuers are set: set exactly one \
                         {ISSUER} (or a {PROVIDER})",
                        self.issuers.len()
                    ),
                ));
            }
        }
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err(invalid(
                AUDIENCE,
                "is empty: name the audience, or unset it",
            ));
        }
        for origin in &self.allowed_origins {
            check_origin(origin)?;
        }
        for host in &self.allowed_hosts {
            if !is_allowed_host(host) {
                return Err(invalid(
                    ALLOWED_HOSTS,
                    format!("{host:?} is not a host name or name:port, e.g. mcp.example.com:443"),
                ));
            }
        }
        check_proxies(&self.trusted_proxies)?;
        if self.requests_per_minute == Some(0) {
            return Err(invalid(
                REQUESTS_PER_MINUTE,
                "\"0\" would refuse every request: at least 1; unset it for no limit",
            ));
        }
        if let Some(introspection) = &self.introspection {
            if let Some(endpoint) = &introspection.endpoint {
                http_url(INTROSPECTION_ENDPOINT, endpoint)?;
            }
            if introspection.client_id.trim().is_empty() {
                return Err(invalid(INTROSPECTION_CLIENT_ID, "is empty"));
            }
            if introspection.client_secret.expose().trim().is_empty() {
                return Err(invalid(INTROSPECTION_CLIENT_SECRET, "is empty"));
            }
        }
        if let Some(exchange) = &self.token_exchange {
            validate_token_exchange(exchange)?;
        }
        if let Some(AuditLog::File(path)) = &self.audit_log
            && path.as_os_str().is_empty()
        {
            return Err(invalid(AUDIT_LOG, "is empty: `stderr`, or a file path"));
        }
        Ok(())
    }
}

impl Provider {
    /// The provider's name, as `MCP_OAUTH_PROVIDER` spells it.
    ///
    /// ```
    /// use mcp_oauth::settings::Provider;
    ///
    /// assert_eq!(Provider::Generic.name(), "generic");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Generic => "generic",
            Provider::Auth0 { .. } => "auth0",
            Provider::Entra { .. } => "entra",
            Provider::Keycloak { .. } => "keycloak",
            Provider::Okta { .. } => "okta",
            Provider::Scalekit { .. } => "scalekit",
        }
    }

    /// The runtime's [`Profile`] for this provider, its values checked. `issuer` is an
    /// issuer the settings list: the generic provider takes it as its issuer (and needs
    /// one); any other provider names its own, and `issuer` must be that one (for
    /// multi-tenant Entra ID: the template or [`ENTRA_ORGANIZATIONS_V2`]). Entra's
    /// `allowed_tenants` are not part of the profile: give them to the policy builder's
    /// [`allowed_tenants`](crate::validation::IssuerPolicyBuilder::allowed_tenants).
    ///
    /// ```
    /// use mcp_oauth::settings::Provider;
    /// use mcp_oauth::validation::Profile;
    ///
    /// let settings: mcp_oauth::settings::Settings = serde_json::from_str(
    ///     r#"{ "provider": { "name": "auth0", "domain": "acme.us.auth0.com" } }"#,
    /// ).unwrap();
    /// let profile = settings.provider.unwrap().profile(None).unwrap();
    /// assert_eq!(profile, Profile::Auth0 { domain: "acme.us.auth0.com".into() });
    /// assert_eq!(profile.issuer(), "https://acme.us.auth0.com/");
    ///
    /// assert_eq!(
    ///     Provider::Generic.profile(Some("https://auth.example.com")).unwrap(),
    ///     Profile::Rfc9068 { issuer: "https://auth.example.com".into() },
    /// );
    /// assert!(Provider::Generic.profile(None).is_err());
    /// ```
    pub fn profile(&self, issuer: Option<&str>) -> Result<Profile, SettingsError> {
        let profile = match self {
            Provider::Generic => {
                let issuer = issuer.ok_or_else(|| {
                    invalid(
                        ISSUER,
                        format!("{PROVIDER}=generic takes its issuer from {ISSUER}: set it"),
                    )
                })?;
                issuer_url(ISSUER, issuer)?;
                return Ok(Profile::Rfc9068 {
                    issuer: issuer.to_owned(),
                });
            }
            Provider::Auth0 { domain } => {
                check_domain(AUTH0_DOMAIN, domain, "acme.us.auth0.com")?;
                Profile::Auth0 {
                    domain: domain.clone(),
                }
            }
            Provider::Entra {
                tenant,
                version,
                allowed_tenants,
            } => {
                let version = match version {
                    1 => EntraVersion::V1,
                    2 => EntraVersion::V2,
                    other => {
                        return Err(invalid(
                            ENTRA_VERSION,
                            format!("\"{other}\" is not an Entra ID token version: 1 or 2"),
                        ));
                    }
                };
                let tenant = if tenant.eq_ignore_ascii_case("multi") {
                    if allowed_tenants.is_empty() {
                        return Err(invalid(
                            ENTRA_ALLOWED_TENANTS,
                            format!(
                                "required with {ENTRA_TENANT}=multi: the tenant ids to accept \
                                 (an empty list would trust every Entra ID tenant)"
                            ),
                        ));
                    }
                    for allowed in allowed_tenants {
                        if !is_guid(allowed) {
                            return Err(invalid(
                                ENTRA_ALLOWED_TENANTS,
                                format!("{allowed:?} is not a tenant id (a GUID)"),
                            ));
                        }
                    }
                    EntraTenant::Multi
                } else if is_guid(tenant) {
                    if !allowed_tenants.is_empty() {
                        return Err(invalid(
                            ENTRA_ALLOWED_TENANTS,
                            format!(
                                "only with {ENTRA_TENANT}=multi (one tenant is already the only \
                                 one accepted)"
                            ),
                        ));
                    }
                    EntraTenant::Single(tenant.clone())
                } else {
                    return Err(invalid(
                        ENTRA_TENANT,
                        format!(
                            "{tenant:?} is not a tenant id (a GUID, as in the tokens' `iss`) or \
                             `multi` (with {ENTRA_ALLOWED_TENANTS})"
                        ),
                    ));
                };
                Profile::EntraId { version, tenant }
            }
            Provider::Keycloak { url, realm } => {
                issuer_url(KEYCLOAK_URL, url)?;
                if !is_path_segment(realm) {
                    return Err(invalid(
                        KEYCLOAK_REALM,
                        format!("{realm:?} is not a realm name (no `/`, `?`, `#` or spaces)"),
                    ));
                }
                Profile::Keycloak {
                    base_url: url.clone(),
                    realm: realm.clone(),
                }
            }
            Provider::Okta {
                domain,
                authorization_server,
            } => {
                check_domain(OKTA_DOMAIN, domain, "acme.okta.com")?;
                if !is_path_segment(authorization_server) {
                    return Err(invalid(
                        OKTA_AUTHORIZATION_SERVER,
                        format!(
                            "{authorization_server:?} is not an authorization server id, e.g. \
                             default or aus1a2b3c4d5e6f7g8h9"
                        ),
                    ));
                }
                Profile::Okta {
                    domain: domain.clone(),
                    authorization_server: authorization_server.clone(),
                }
            }
            Provider::Scalekit { environment_url } => {
                issuer_url(SCALEKIT_ENVIRONMENT_URL, environment_url)?;
                Profile::Scalekit {
                    environment_url: environment_url.clone(),
                }
            }
        };
        if let Some(issuer) = issuer {
            let own = profile.issuer();
            let multi = matches!(
                profile,
                Profile::EntraId {
                    tenant: EntraTenant::Multi,
                    ..
                }
            );
            if issuer != own && !(multi && issuer == ENTRA_ORGANIZATIONS_V2) {
                return Err(invalid(
                    ISSUER,
                    format!(
                        "{issuer:?} is not the issuer {PROVIDER}={} names ({own}): unset \
                         {ISSUER} (the provider names it) or make them agree",
                        self.name()
                    ),
                ));
            }
        }
        Ok(profile)
    }
}

/// The `MCP_OAUTH_*` variables given, checked against the known names, `NAME_FILE`s read,
/// trimmed, empty ones dropped.
struct Vars {
    values: BTreeMap<&'static str, String>,
}

impl Vars {
    fn read(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let mut given: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut files: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut unknown: Option<String> = None;
        let mut seen = BTreeSet::new();
        for (name, value) in vars {
            if !is_ours(&name) {
                continue;
            }
            if !seen.insert(name.clone()) {
                return Err(invalid(&name, "is given twice"));
            }
            if let Some(known) = known(&name) {
                given.insert(known, value);
            } else if let Some(known) = name.strip_suffix(FILE_SUFFIX).and_then(known) {
                files.insert(known, value);
            } else if unknown.as_ref().is_none_or(|first| name < *first) {
                unknown = Some(name);
            }
        }
        if let Some(name) = unknown {
            return Err(unknown_variable(name));
        }
        let mut values = BTreeMap::new();
        for &(name, ..) in Settings::VARIABLES {
            let direct = given.remove(name).filter(|v| !v.trim().is_empty());
            let path = files.remove(name).filter(|v| !v.trim().is_empty());
            let value = match (direct, path) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        name,
                        format!("both {name} and {name}{FILE_SUFFIX} are set: set one"),
                    ));
                }
                (Some(value), None) => Some(value.trim().to_owned()),
                (None, Some(path)) => read_file(name, path.trim())?,
                (None, None) => None,
            };
            if let Some(value) = value {
                values.insert(name, value);
            }
        }
        Ok(Vars { values })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }
}

/// The known variable spelt `name`.
fn known(name: &str) -> Option<&'static str> {
    Settings::VARIABLES
        .iter()
        .map(|(known, ..)| *known)
        .find(|known| *known == name)
}

/// `NAME_FILE`'s file: its content less one trailing newline, trimmed (the secret is kept
/// as written); `None` when empty. The error names the variable and the path, never content.
fn read_file(name: &'static str, path: &str) -> Result<Option<String>, SettingsError> {
    let mut content = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            &format!("{name}{FILE_SUFFIX}"),
            format!("cannot read {path:?}: {e}"),
        )
    })?;
    if content.ends_with('\n') {
        content.pop();
        if content.ends_with('\r') {
            content.pop();
        }
    }
    if !matches!(name, INTROSPECTION_CLIENT_SECRET | EXCHANGE_CLIENT_SECRET) {
        content = content.trim().to_owned();
    }
    Ok(Some(content).filter(|c| !c.is_empty()))
}

/// An unknown `MCP_OAUTH_*` name, with the nearest known name (or its `_FILE` form) within
/// three edits, compared in upper case.
fn unknown_variable(name: String) -> SettingsError {
    let upper = name.to_ascii_uppercase();
    let names = Settings::VARIABLES.iter().map(|(n, ..)| (*n).to_owned());
    let files = Settings::VARIABLES
        .iter()
        .map(|(n, ..)| format!("{n}{FILE_SUFFIX}"));
    let suggestion = names
        .chain(files)
        .map(|known| (edit_distance(&upper, &known), known))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known);
    SettingsError::Unknown { name, suggestion }
}

/// The optimal-string-alignment (restricted Damerau–Levenshtein) distance: insertions,
/// deletions, substitutions and transpositions of adjacent characters, each one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

fn invalid(name: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// A comma-separated list: items trimmed, empty items skipped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `1`/`true` or `0`/`false`, ASCII case-insensitively.
fn boolean(name: &str, value: &str) -> Result<bool, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(invalid(
            name,
            format!("{value:?} is not 1, 0, true or false"),
        )),
    }
}

/// A DPoP nonce key: base64url (unpadded) of 32 bytes. The message never shows the value.
pub(crate) fn nonce_key(secret: &Secret) -> Result<[u8; 32], SettingsError> {
    crate::crypto::base64url_32(secret.expose().trim()).ok_or_else(|| {
        invalid(
            DPOP_NONCE_KEYS,
            "a key is not base64url (unpadded) of 32 random bytes, e.g. from \
             `head -c32 /dev/urandom | basenc --base64url | tr -d =`",
        )
    })
}

fn whole_number(name: &str, value: &str, hint: &str) -> Result<u32, SettingsError> {
    value.parse().map_err(|_| {
        invalid(
            name,
            format!(
                "{value:?} is not a whole number (0 to {}; {hint})",
                u32::MAX
            ),
        )
    })
}

/// The provider after the variables: `MCP_OAUTH_PROVIDER` picks it (refining `current` when
/// it is the same one), and each provider variable must belong to the provider in effect.
fn provider(current: Option<Provider>, vars: &mut Vars) -> Result<Option<Provider>, SettingsError> {
    let named = match vars.take(PROVIDER) {
        None => None,
        Some(value) => Some(
            PROVIDERS
                .into_iter()
                .find(|p| p.eq_ignore_ascii_case(&value))
                .ok_or_else(|| {
                    invalid(
                        PROVIDER,
                        format!(
                            "{value:?} is not a provider: auth0, entra, keycloak, okta, \
                             scalekit or generic"
                        ),
                    )
                })?,
        ),
    };
    let in_effect = named.or(current.as_ref().map(Provider::name));
    for (variable, owner) in PROVIDER_VARIABLES {
        if !vars.values.contains_key(variable) {
            continue;
        }
        match in_effect {
            Some(name) if name == owner => {}
            Some(name) => {
                return Err(invalid(
                    variable,
                    format!("belongs to {PROVIDER}={owner}, but {PROVIDER} is {name}"),
                ));
            }
            None => {
                return Err(invalid(
                    variable,
                    format!("belongs to {PROVIDER}={owner}, but {PROVIDER} is not set"),
                ));
            }
        }
    }
    let Some(name) = in_effect else {
        return Ok(None);
    };
    // The current provider's members are the base only when it is the one in effect.
    let current = current.filter(|p| p.name() == name);
    let required = |variable: &str, what: &str| {
        invalid(variable, format!("required with {PROVIDER}={name}: {what}"))
    };
    let provider =
        match (name, current) {
            ("generic", _) => Provider::Generic,
            ("auth0", current) => {
                let current = match current {
                    Some(Provider::Auth0 { domain }) => Some(domain),
                    _ => None,
                };
                Provider::Auth0 {
                    domain: vars.take(AUTH0_DOMAIN).or(current).ok_or_else(|| {
                        required(AUTH0_DOMAIN, "the tenant's domain, e.g. acme.us.auth0.com")
                    })?,
                }
            }
            ("entra", current) => {
                let (tenant, version, allowed_tenants) = match current {
                    Some(Provider::Entra {
                        tenant,
                        version,
                        allowed_tenants,
                    }) => (Some(tenant), version, allowed_tenants),
                    _ => (None, entra_v2(), Vec::new()),
                };
                let version = match vars.take(ENTRA_VERSION).as_deref() {
                    None => version,
                    Some("1") => 1,
                    Some("2") => 2,
                    Some(other) => {
                        return Err(invalid(
                            ENTRA_VERSION,
                            format!("{other:?} is not an Entra ID token version: 1 or 2"),
                        ));
                    }
                };
                Provider::Entra {
                    tenant: vars.take(ENTRA_TENANT).or(tenant).ok_or_else(|| {
                        required(ENTRA_TENANT, "the tenant id (a GUID), or `multi`")
                    })?,
                    version,
                    allowed_tenants: vars
                        .take(ENTRA_ALLOWED_TENANTS)
                        .map_or(allowed_tenants, |v| list(&v)),
                }
            }
            ("keycloak", current) => {
                let (url, realm) = match current {
                    Some(Provider::Keycloak { url, realm }) => (Some(url), Some(realm)),
                    _ => (None, None),
                };
                Provider::Keycloak {
                    url: vars
                        .take(KEYCLOAK_URL)
                        .or(url)
                        .ok_or_else(|| required(KEYCLOAK_URL, "the server's base URL"))?,
                    realm: vars
                        .take(KEYCLOAK_REALM)
                        .or(realm)
                        .ok_or_else(|| required(KEYCLOAK_REALM, "the realm"))?,
                }
            }
            ("okta", current) => {
                let (domain, server) = match current {
                    Some(Provider::Okta {
                        domain,
                        authorization_server,
                    }) => (Some(domain), authorization_server),
                    _ => (None, okta_default()),
                };
                Provider::Okta {
                    domain: vars.take(OKTA_DOMAIN).or(domain).ok_or_else(|| {
                        required(OKTA_DOMAIN, "the Okta domain, e.g. acme.okta.com")
                    })?,
                    authorization_server: vars.take(OKTA_AUTHORIZATION_SERVER).unwrap_or(server),
                }
            }
            ("scalekit", current) => {
                let current = match current {
                    Some(Provider::Scalekit { environment_url }) => Some(environment_url),
                    _ => None,
                };
                Provider::Scalekit {
                    environment_url: vars
                        .take(SCALEKIT_ENVIRONMENT_URL)
                        .or(current)
                        .ok_or_else(|| required(SCALEKIT_ENVIRONMENT_URL, "the environment URL"))?,
                }
            }
            (other, _) => unreachable!("{other} is in PROVIDERS"),
        };
    Ok(Some(provider))
}

/// Introspection after the variables: each one replaces its member; the client id and
/// secret come together (from the variables, or with the current settings).
fn introspection(
    current: Option<Introspection>,
    vars: &mut Vars,
) -> Result<Option<Introspection>, SettingsError> {
    let (endpoint, client_id, client_secret) = match current {
        Some(i) => (i.endpoint, Some(i.client_id), Some(i.client_secret)),
        None => (None, None, None),
    };
    let endpoint = vars.take(INTROSPECTION_ENDPOINT).or(endpoint);
    let client_id = vars.take(INTROSPECTION_CLIENT_ID).or(client_id);
    let client_secret = vars
        .take(INTROSPECTION_CLIENT_SECRET)
        .map(Secret::new)
        .or(client_secret);
    match (client_id, client_secret) {
        (Some(client_id), Some(client_secret)) => Ok(Some(Introspection {
            endpoint,
            client_id,
            client_secret,
        })),
        (None, None) if endpoint.is_none() => Ok(None),
        (None, None) => Err(invalid(
            INTROSPECTION_ENDPOINT,
            format!("needs {INTROSPECTION_CLIENT_ID} and {INTROSPECTION_CLIENT_SECRET} too"),
        )),
        (Some(_), None) => Err(invalid(
            INTROSPECTION_CLIENT_SECRET,
            format!("required with {INTROSPECTION_CLIENT_ID}: set both or neither"),
        )),
        (None, Some(_)) => Err(invalid(
            INTROSPECTION_CLIENT_ID,
            format!("required with {INTROSPECTION_CLIENT_SECRET}: set both or neither"),
        )),
    }
}

/// Token exchange after the variables: each one replaces its member (the audiences the
/// whole list); `None` when nothing is set.
fn token_exchange(
    current: Option<TokenExchange>,
    vars: &mut Vars,
) -> Result<Option<TokenExchange>, SettingsError> {
    let mut exchange = current.unwrap_or_default();
    if let Some(value) = vars.take(EXCHANGE_CLIENT_ID) {
        exchange.client_id = Some(value);
    }
    if let Some(value) = vars.take(EXCHANGE_CLIENT_SECRET) {
        exchange.client_secret = Some(Secret::new(value));
    }
    if let Some(value) = vars.take(EXCHANGE_TOKEN_ENDPOINT) {
        exchange.token_endpoint = Some(value);
    }
    if let Some(value) = vars.take(EXCHANGE_AUDIENCES) {
        exchange.audiences = list(&value);
    }
    if let Some(value) = vars.take(EXCHANGE_GRANT) {
        exchange.grant = Some(ExchangeGrant::parse(&value).ok_or_else(|| {
            invalid(
                EXCHANGE_GRANT,
                format!("{value:?} is not token-exchange or entra-obo"),
            )
        })?);
    }
    Ok((exchange != TokenExchange::default()).then_some(exchange))
}

/// The token exchange members: the client id and secret together, audiences with them (or
/// alone, for the embedded dev server, which `build` checks), an endpoint only with the
/// client's credentials and https (or http on loopback: the secret and the user's token
/// travel there), audiences without spaces, each once.
fn validate_token_exchange(exchange: &TokenExchange) -> Result<(), SettingsError> {
    match (&exchange.client_id, &exchange.client_secret) {
        (Some(id), _) if id.trim().is_empty() => {
            return Err(invalid(EXCHANGE_CLIENT_ID, "is empty"));
        }
        (_, Some(secret)) if secret.expose().trim().is_empty() => {
            return Err(invalid(EXCHANGE_CLIENT_SECRET, "is empty"));
        }
        (Some(_), None) => {
            return Err(invalid(
                EXCHANGE_CLIENT_SECRET,
                format!("required with {EXCHANGE_CLIENT_ID}: set both or neither"),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                EXCHANGE_CLIENT_ID,
                format!("required with {EXCHANGE_CLIENT_SECRET}: set both or neither"),
            ));
        }
        _ => {}
    }
    if let Some(endpoint) = &exchange.token_endpoint {
        if exchange.client_id.is_none() {
            return Err(invalid(
                EXCHANGE_TOKEN_ENDPOINT,
                format!("needs {EXCHANGE_CLIENT_ID} and {EXCHANGE_CLIENT_SECRET} too"),
            ));
        }
        let url = http_url(EXCHANGE_TOKEN_ENDPOINT, endpoint)?;
        if !crate::is_https_or_loopback(&url) {
            return Err(invalid(
                EXCHANGE_TOKEN_ENDPOINT,
                format!(
                    "{endpoint:?} is not https (plain http only on a loopback host): the client \
                     secret and the users' tokens would travel in the clear"
                ),
            ));
        }
    }
    if exchange.audiences.is_empty() {
        return Err(invalid(
            EXCHANGE_AUDIENCES,
            "required for token exchange: the downstream audiences tools may ask tokens for \
             (none would refuse every exchange)",
        ));
    }
    for (i, audience) in exchange.audiences.iter().enumerate() {
        if audience.is_empty()
            || audience
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                EXCHANGE_AUDIENCES,
                format!("{audience:?} is not an audience: empty, or has spaces"),
            ));
        }
        if exchange.audiences[..i].contains(audience) {
            return Err(invalid(
                EXCHANGE_AUDIENCES,
                format!("{audience:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// An http(s) URL with a host, no fragment and no credentials (whose value is then not
/// shown).
fn http_url(name: &str, value: &str) -> Result<url::Url, SettingsError> {
    let url = url::Url::parse(value)
        .map_err(|e| invalid(name, format!("{value:?} is not an http(s) URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            name,
            "holds a user name or password: not allowed in a URL here (value not shown)",
        ));
    }
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some(format!("its scheme is {}, not http or https", url.scheme()))
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("it has no host".to_owned())
    } else if url.fragment().is_some() {
        Some("it has a fragment (`#…`)".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(invalid(
            name,
            format!("{value:?} is not an http(s) URL with a host: {problem}"),
        )),
        None => Ok(url),
    }
}

/// An issuer identifier (RFC 8414 §2): an http(s) URL with a host and no query or fragment.
fn issuer_url(name: &str, value: &str) -> Result<(), SettingsError> {
    let url = http_url(name, value)?;
    if url.query().is_some() {
        return Err(invalid(
            name,
            format!("{value:?} has a query (`?…`): an issuer has none"),
        ));
    }
    Ok(())
}

/// `ip:port`, `[ipv6]:port` or `host:port`.
fn check_bind(value: &str) -> Result<(), SettingsError> {
    let hostname_and_port = || {
        let (host, port) = value.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        matches!(
            url::Host::parse(host).ok()?,
            url::Host::Domain(_) | url::Host::Ipv4(_)
        )
        .then_some(())
    };
    if value.parse::<std::net::SocketAddr>().is_ok() || hostname_and_port().is_some() {
        Ok(())
    } else {
        Err(invalid(
            BIND,
            format!(
                "{value:?} is not an address to listen on: ip:port, [ipv6]:port or host:port, \
                 e.g. 0.0.0.0:8080"
            ),
        ))
    }
}

/// `scheme://host[:port]`: no path, query, fragment or credentials.
fn check_origin(value: &str) -> Result<(), SettingsError> {
    let origin = url::Url::parse(value).ok().filter(|url| {
        url.host_str().is_some_and(|h| !h.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none()
    });
    match origin {
        Some(_) => Ok(()),
        None => Err(invalid(
            ALLOWED_ORIGINS,
            format!(
                "{value:?} is not an origin: scheme://host[:port] with no path, e.g. \
                 https://app.example.com"
            ),
        )),
    }
}

/// `name`, `name:port`, an IPv6 address, or `[ipv6]:port`.
fn is_allowed_host(value: &str) -> bool {
    if value.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    let (host_ok, port) = match value.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) => (v6.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let host = value.rsplit_once(':').map_or(value, |(host, _)| host);
            let host_ok = matches!(
                url::Host::parse(host),
                Ok(url::Host::Domain(_) | url::Host::Ipv4(_))
            );
            (host_ok, &value[host.len()..])
        }
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()))
}

/// Every entry an address or a CIDR block: the layer's own parser when it is built.
fn check_proxies(entries: &[String]) -> Result<(), SettingsError> {
    let hint = "addresses such as 10.1.2.3 or ::1, CIDR blocks such as 10.0.0.0/8";
    #[cfg(feature = "layer")]
    {
        crate::http::TrustedProxies::new(entries)
            .map(drop)
            .map_err(|e| invalid(TRUSTED_PROXIES, format!("{e} ({hint})")))
    }
    #[cfg(not(feature = "layer"))]
    {
        for entry in entries {
            let (ip, prefix) = match entry.split_once('/') {
                Some((ip, prefix)) => (ip, Some(prefix)),
                None => (entry.as_str(), None),
            };
            let max = match ip.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(std::net::IpAddr::V4(_)) => 32,
                Ok(std::net::IpAddr::V6(_)) => 128,
                Err(_) => 0,
            };
            let prefix_ok = prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max));
            if max == 0 || !prefix_ok {
                return Err(invalid(
                    TRUSTED_PROXIES,
                    format!("not an IP address or CIDR block: {entry:?} ({hint})"),
                ));
            }
        }
        Ok(())
    }
}

/// A domain name, optionally written `https://name/` (the profile drops those).
fn check_domain(name: &str, value: &str, example: &str) -> Result<(), SettingsError> {
    let value = value.trim();
    let bare = value
        .strip_prefix("https://")
        .unwrap_or(value)
        .trim_end_matches('/');
    if matches!(url::Host::parse(bare), Ok(url::Host::Domain(_))) && !bare.contains(':') {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("{value:?} is not a domain name, e.g. {example}"),
        ))
    }
}

/// One URL path segment: not empty, no `/`, `?`, `#`, `%` or whitespace.
fn is_path_segment(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace() || c.is_control())
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal.
fn is_guid(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod other_tools_tests {
    use super::*;

    #[test]
    fn the_project_tools_variables_are_not_ours_and_typos_still_are() {
        let vars = [
            ("MCP_OAUTH_DEV_PORT".to_owned(), "9000".to_owned()),
            ("MCP_OAUTH_SOAK_SECONDS".to_owned(), "60".to_owned()),
        ];
        assert_eq!(Settings::from_lookup(vars).unwrap(), Settings::default());
        let typo = [("MCP_OAUTH_DEVV_PORT".to_owned(), "1".to_owned())];
        assert!(matches!(
            Settings::from_lookup(typo),
            Err(SettingsError::Unknown { .. })
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Value-9f8e7d";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[track_caller]
    fn read(pairs: &[(&str, &str)]) -> Settings {
        match Settings::from_lookup(vars(pairs)) {
            Ok(settings) => settings,
            Err(e) => panic!("{pairs:?} refused: {e}"),
        }
    }

    #[track_caller]
    fn error(pairs: &[(&str, &str)]) -> SettingsError {
        match Settings::from_lookup(vars(pairs)) {
            Ok(settings) => panic!("{pairs:?} accepted: {settings:?}"),
            Err(e) => e,
        }
    }

    /// The variable an invalid value is reported for, and the reason.
    #[track_caller]
    fn invalid(pairs: &[(&str, &str)]) -> (String, String) {
        match error(pairs) {
            SettingsError::Invalid { name, reason } => (name, reason),
            other => panic!("{pairs:?}: not an invalid value: {other}"),
        }
    }

    #[track_caller]
    fn assert_invalid(pairs: &[(&str, &str)], variable: &str, reason_has: &str) {
        let (name, reason) = invalid(pairs);
        assert_eq!(name, variable, "{pairs:?}: {reason}");
        assert!(
            reason.contains(reason_has),
            "{pairs:?}: {reason:?} does not say {reason_has:?}"
        );
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(test: &str, content: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "mcp-oauth-settings-{}-{test}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The README's configuration table, as `VARIABLES` renders it.
    fn readme_table() -> String {
        let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
        for (name, default, meaning) in Settings::VARIABLES {
            table.push_str(&format!("| `{name}` | {default} | {meaning} |\n"));
        }
        table
    }

    #[test]
    fn the_readme_table_lists_every_variable_and_no_other() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Configuration\n"))
            .expect("README.md has a \"## Configuration\" section");
        let table = readme_table();
        assert!(
            section.contains(&table),
            "README.md's configuration table differs from Settings::VARIABLES; it should be:\n{table}"
        );
        let in_readme: Vec<&str> = section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('`').nth(1))
            .collect();
        let known: Vec<&str> = Settings::VARIABLES.iter().map(|(n, ..)| *n).collect();
        // And no other variable.
        assert_eq!(in_readme, known);
    }

    #[test]
    fn the_variables_are_distinct_prefixed_and_fit_a_table() {
        let names: BTreeSet<&str> = Settings::VARIABLES.iter().map(|(n, ..)| *n).collect();
        assert_eq!(names.len(), Settings::VARIABLES.len());
        for (name, default, meaning) in Settings::VARIABLES {
            assert!(name.starts_with(PREFIX), "{name}");
            assert!(!name.ends_with(FILE_SUFFIX), "{name}");
            for text in [name, default, meaning] {
                assert!(!text.contains('|') && !text.contains('\n'), "{text}");
            }
        }
        for (name, provider) in PROVIDER_VARIABLES {
            assert!(names.contains(name), "{name}");
            assert!(PROVIDERS.contains(&provider), "{provider}");
        }
    }

    #[test]
    fn no_variable_keeps_the_defaults() {
        assert_eq!(read(&[]), Settings::default());
    }

    #[test]
    fn other_variables_are_not_read() {
        let settings = read(&[
            ("RUST_LOG", "debug"),
            ("HOME", "/root"),
            ("MCPOAUTH_ISSUER", "https://auth.example.com"),
            ("XMCP_OAUTH_ISSUER", "https://auth.example.com"),
        ]);
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn values_are_trimmed_and_empty_values_are_unset() {
        let settings = read(&[
            (RESOURCE, "  https://calendar.example.com/mcp \n"),
            (ISSUER, ""),
            (AUDIENCE, "   "),
            (FILTER_TOOLS, " 1 "),
        ]);
        assert_eq!(
            settings.resource.as_deref(),
            Some("https://calendar.example.com/mcp")
        );
        assert!(settings.issuers.is_empty());
        assert_eq!(settings.audience, None);
        assert!(settings.filter_tools);
    }

    #[test]
    fn resource_is_an_http_url_with_a_host_and_no_fragment() {
        let settings = read(&[(RESOURCE, "https://calendar.example.com/mcp")]);
        assert_eq!(
            settings.resource.as_deref(),
            Some("https://calendar.example.com/mcp")
        );
        assert_invalid(
            &[(RESOURCE, "calendar.example.com/mcp")],
            RESOURCE,
            "\"calendar.example.com/mcp\" is not an http(s) URL",
        );
        assert_invalid(&[(RESOURCE, "ftp://example.com/mcp")], RESOURCE, "ftp");
        assert_invalid(
            &[(RESOURCE, "https://example.com/mcp#top")],
            RESOURCE,
            "fragment",
        );
    }

    #[test]
    fn bind_is_a_socket_address_or_host_and_port() {
        for bind in [
            "0.0.0.0:8080",
            "[::]:8080",
            "localhost:8080",
            "mcp-1.internal:80",
        ] {
            assert_eq!(read(&[(BIND, bind)]).bind.as_deref(), Some(bind));
        }
        for bind in [
            "8080",
            "localhost",
            "localhost:http",
            "0.0.0.0:65536",
            "::1:80",
        ] {
            assert_invalid(&[(BIND, bind)], BIND, "ip:port, [ipv6]:port or host:port");
        }
    }

    #[test]
    fn issuer_is_a_comma_separated_list_of_http_urls() {
        let settings = read(&[(ISSUER, "https://a.example.com, https://b.example.com/t ,")]);
        assert_eq!(
            settings.issuers,
            ["https://a.example.com", "https://b.example.com/t"]
        );
        assert_invalid(
            &[(ISSUER, "https://a.example.com,b.example.com")],
            ISSUER,
            "\"b.example.com\" is not an http(s) URL",
        );
        assert_invalid(&[(ISSUER, "https://a.example.com/?v=1")], ISSUER, "query");
        assert_invalid(
            &[(ISSUER, "https://a.example.com,https://a.example.com")],
            ISSUER,
            "listed twice",
        );
    }

    #[test]
    fn provider_is_a_known_provider() {
        let settings = read(&[(PROVIDER, "generic"), (ISSUER, "https://auth.example.com")]);
        assert_eq!(settings.provider, Some(Provider::Generic));
        // The generic provider without an issuer leaves the issuer to the declaration.
        assert_eq!(
            read(&[(PROVIDER, "generic")]).provider,
            Some(Provider::Generic)
        );
        let settings = read(&[(PROVIDER, "Auth0"), (AUTH0_DOMAIN, "acme.us.auth0.com")]);
        assert_eq!(
            settings.provider.as_ref().map(Provider::name),
            Some("auth0")
        );
        assert_invalid(
            &[(PROVIDER, "google")],
            PROVIDER,
            "\"google\" is not a provider: auth0, entra, keycloak, okta, scalekit or generic",
        );
    }

    #[test]
    fn auth0_needs_its_domain() {
        let settings = read(&[
            (PROVIDER, "auth0"),
            (AUTH0_DOMAIN, "https://acme.us.auth0.com/"),
        ]);
        assert_eq!(
            settings.provider,
            Some(Provider::Auth0 {
                domain: "https://acme.us.auth0.com/".into()
            })
        );
        assert_invalid(
            &[(PROVIDER, "auth0")],
            AUTH0_DOMAIN,
            "required with MCP_OAUTH_PROVIDER=auth0",
        );
        assert_invalid(
            &[(PROVIDER, "auth0"), (AUTH0_DOMAIN, "acme.us.auth0.com/api")],
            AUTH0_DOMAIN,
            "is not a domain name, e.g. acme.us.auth0.com",
        );
    }

    #[test]
    fn entra_reads_tenant_version_and_allowed_tenants() {
        let single = read(&[
            (PROVIDER, "entra"),
            (ENTRA_TENANT, TENANT),
            (ENTRA_VERSION, "1"),
        ]);
        assert_eq!(
            single.provider,
            Some(Provider::Entra {
                tenant: TENANT.into(),
                version: 1,
                allowed_tenants: Vec::new()
            })
        );
        let multi = read(&[
            (PROVIDER, "entra"),
            (ENTRA_TENANT, "multi"),
            (ENTRA_ALLOWED_TENANTS, &format!("{TENANT}, {OTHER_TENANT}")),
        ]);
        assert_eq!(
            multi.provider,
            Some(Provider::Entra {
                tenant: "multi".into(),
                version: 2,
                allowed_tenants: vec![TENANT.into(), OTHER_TENANT.into()]
            })
        );
    }

    #[test]
    fn entra_refuses_what_would_never_match_or_match_too_much() {
        let entra = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = vec![(PROVIDER, "entra")];
            pairs.extend_from_slice(extra);
            pairs
        };
        assert_invalid(
            &entra(&[]),
            ENTRA_TENANT,
            "required with MCP_OAUTH_PROVIDER=entra",
        );
        assert_invalid(
            &entra(&[(ENTRA_TENANT, "contoso.onmicrosoft.com")]),
            ENTRA_TENANT,
            "is not a tenant id (a GUID",
        );
        assert_invalid(
            &entra(&[(ENTRA_TENANT, "common")]),
            ENTRA_TENANT,
            "or `multi`",
        );
        assert_invalid(
            &entra(&[(ENTRA_TENANT, "multi")]),
            ENTRA_ALLOWED_TENANTS,
            "required with MCP_OAUTH_ENTRA_TENANT=multi",
        );
        assert_invalid(
            &entra(&[(ENTRA_TENANT, "multi"), (ENTRA_ALLOWED_TENANTS, "contoso")]),
            ENTRA_ALLOWED_TENANTS,
            "\"contoso\" is not a tenant id",
        );
        assert_invalid(
            &entra(&[
                (ENTRA_TENANT, TENANT),
                (ENTRA_ALLOWED_TENANTS, OTHER_TENANT),
            ]),
            ENTRA_ALLOWED_TENANTS,
            "only with MCP_OAUTH_ENTRA_TENANT=multi",
        );
        assert_invalid(
            &entra(&[(ENTRA_TENANT, TENANT), (ENTRA_VERSION, "3")]),
            ENTRA_VERSION,
            "\"3\" is not an Entra ID token version: 1 or 2",
        );
    }

    #[test]
    fn keycloak_needs_its_url_and_realm() {
        let settings = read(&[
            (PROVIDER, "keycloak"),
            (KEYCLOAK_URL, "https://kc.example.com"),
            (KEYCLOAK_REALM, "acme"),
        ]);
        assert_eq!(
            settings.provider,
            Some(Provider::Keycloak {
                url: "https://kc.example.com".into(),
                realm: "acme".into()
            })
        );
        assert_invalid(
            &[
                (PROVIDER, "keycloak"),
                (KEYCLOAK_URL, "https://kc.example.com"),
            ],
            KEYCLOAK_REALM,
            "required with MCP_OAUTH_PROVIDER=keycloak",
        );
        assert_invalid(
            &[(PROVIDER, "keycloak"), (KEYCLOAK_REALM, "acme")],
            KEYCLOAK_URL,
            "required",
        );
        assert_invalid(
            &[
                (PROVIDER, "keycloak"),
                (KEYCLOAK_URL, "kc.example.com"),
                (KEYCLOAK_REALM, "acme"),
            ],
            KEYCLOAK_URL,
            "is not an http(s) URL",
        );
        assert_invalid(
            &[
                (PROVIDER, "keycloak"),
                (KEYCLOAK_URL, "https://kc.example.com"),
                (KEYCLOAK_REALM, "acme/admin"),
            ],
            KEYCLOAK_REALM,
            "is not a realm name",
        );
    }

    #[test]
    fn okta_needs_its_domain_and_defaults_the_authorization_server() {
        let settings = read(&[(PROVIDER, "okta"), (OKTA_DOMAIN, "acme.okta.com")]);
        assert_eq!(
            settings.provider,
            Some(Provider::Okta {
                domain: "acme.okta.com".into(),
                authorization_server: "default".into()
            })
        );
        let settings = read(&[
            (PROVIDER, "okta"),
            (OKTA_DOMAIN, "acme.okta.com"),
            (OKTA_AUTHORIZATION_SERVER, "aus1a2b3c4"),
        ]);
        assert!(matches!(
            settings.provider,
            Some(Provider::Okta { authorization_server, .. }) if authorization_server == "aus1a2b3c4"
        ));
        assert_invalid(&[(PROVIDER, "okta")], OKTA_DOMAIN, "required");
        assert_invalid(
            &[(PROVIDER, "okta"), (OKTA_DOMAIN, "acme okta")],
            OKTA_DOMAIN,
            "is not a domain name",
        );
        assert_invalid(
            &[
                (PROVIDER, "okta"),
                (OKTA_DOMAIN, "acme.okta.com"),
                (OKTA_AUTHORIZATION_SERVER, "default/v1"),
            ],
            OKTA_AUTHORIZATION_SERVER,
            "is not an authorization server id",
        );
    }

    #[test]
    fn scalekit_needs_its_environment_url() {
        let settings = read(&[
            (PROVIDER, "scalekit"),
            (SCALEKIT_ENVIRONMENT_URL, "https://acme.scalekit.com"),
        ]);
        assert_eq!(
            settings.provider,
            Some(Provider::Scalekit {
                environment_url: "https://acme.scalekit.com".into()
            })
        );
        assert_invalid(
            &[(PROVIDER, "scalekit")],
            SCALEKIT_ENVIRONMENT_URL,
            "required",
        );
        assert_invalid(
            &[
                (PROVIDER, "scalekit"),
                (SCALEKIT_ENVIRONMENT_URL, "acme.scalekit.com"),
            ],
            SCALEKIT_ENVIRONMENT_URL,
            "is not an http(s) URL",
        );
    }

    #[test]
    fn a_provider_variable_without_the_provider_names_both() {
        let message = error(&[(KEYCLOAK_REALM, "acme")]).to_string();
        assert_eq!(
            message,
            "MCP_OAUTH_KEYCLOAK_REALM: belongs to MCP_OAUTH_PROVIDER=keycloak, but \
             MCP_OAUTH_PROVIDER is not set"
        );
    }

    #[test]
    fn another_providers_variable_names_both() {
        let message = error(&[
            (PROVIDER, "okta"),
            (OKTA_DOMAIN, "acme.okta.com"),
            (AUTH0_DOMAIN, "acme.us.auth0.com"),
        ])
        .to_string();
        assert_eq!(
            message,
            "MCP_OAUTH_AUTH0_DOMAIN: belongs to MCP_OAUTH_PROVIDER=auth0, but \
             MCP_OAUTH_PROVIDER is okta"
        );
    }

    #[test]
    fn a_provider_and_the_issuers_agree() {
        let auth0 = [(PROVIDER, "auth0"), (AUTH0_DOMAIN, "acme.us.auth0.com")];
        read(&[auth0[0], auth0[1], (ISSUER, "https://acme.us.auth0.com/")]);
        assert_invalid(
            &[auth0[0], auth0[1], (ISSUER, "https://acme.us.auth0.com")],
            ISSUER,
            "is not the issuer MCP_OAUTH_PROVIDER=auth0 names (https://acme.us.auth0.com/)",
        );
        let multi = format!("{TENANT},{OTHER_TENANT}");
        let entra = [
            (PROVIDER, "entra"),
            (ENTRA_TENANT, "multi"),
            (ENTRA_ALLOWED_TENANTS, multi.as_str()),
        ];
        read(&[
            entra[0],
            entra[1],
            entra[2],
            (ISSUER, ENTRA_ORGANIZATIONS_V2),
        ]);
        read(&[
            entra[0],
            entra[1],
            entra[2],
            (ISSUER, "https://login.microsoftonline.com/{tenantid}/v2.0"),
        ]);
        assert_invalid(
            &[
                entra[0],
                entra[1],
                entra[2],
                (ISSUER, "https://login.microsoftonline.com/common/v2.0"),
            ],
            ISSUER,
            "is not the issuer MCP_OAUTH_PROVIDER=entra names",
        );
    }

    #[test]
    fn issuer_jwks_uri_needs_exactly_one_issuer_or_a_provider() {
        let jwks = "https://auth.example.com/jwks.json";
        let settings = read(&[
            (ISSUER, "https://auth.example.com"),
            (ISSUER_JWKS_URI, jwks),
        ]);
        assert_eq!(settings.jwks_uri.as_deref(), Some(jwks));
        read(&[
            (PROVIDER, "keycloak"),
            (KEYCLOAK_URL, "https://kc.example.com"),
            (KEYCLOAK_REALM, "acme"),
            (ISSUER_JWKS_URI, jwks),
        ]);
        assert_invalid(
            &[(ISSUER_JWKS_URI, jwks)],
            ISSUER_JWKS_URI,
            "set exactly one MCP_OAUTH_ISSUER (or a MCP_OAUTH_PROVIDER)",
        );
        assert_invalid(
            &[(PROVIDER, "generic"), (ISSUER_JWKS_URI, jwks)],
            ISSUER_JWKS_URI,
            "0 issuers are set",
        );
        assert_invalid(
            &[
                (ISSUER, "https://a.example.com,https://b.example.com"),
                (ISSUER_JWKS_URI, jwks),
            ],
            ISSUER_JWKS_URI,
            "2 issuers are set",
        );
        assert_invalid(
            &[
                (ISSUER, "https://auth.example.com"),
                (ISSUER_JWKS_URI, "jwks.json"),
            ],
            ISSUER_JWKS_URI,
            "is not an http(s) URL",
        );
    }

    #[test]
    fn audience_is_read_and_an_empty_one_refused_in_a_document() {
        let settings = read(&[(AUDIENCE, "api://calendar")]);
        assert_eq!(settings.audience.as_deref(), Some("api://calendar"));
        let document: Settings = serde_json::from_str(r#"{ "audience": " " }"#).unwrap();
        assert!(matches!(
            document.validate(),
            Err(SettingsError::Invalid { name, .. }) if name == AUDIENCE
        ));
    }

    #[test]
    fn allowed_origins_are_origins() {
        let settings = read(&[(
            ALLOWED_ORIGINS,
            "https://app.example.com, http://localhost:3000/",
        )]);
        assert_eq!(
            settings.allowed_origins,
            ["https://app.example.com", "http://localhost:3000/"]
        );
        for origin in ["https://app.example.com/login", "app.example.com", "null"] {
            assert_invalid(
                &[(ALLOWED_ORIGINS, origin)],
                ALLOWED_ORIGINS,
                "is not an origin: scheme://host[:port]",
            );
        }
    }

    #[test]
    fn allowed_hosts_are_names_or_names_and_ports() {
        let hosts = "mcp.example.com, mcp.example.com:8443, 10.0.0.1, [::1]:8080, ::1";
        let settings = read(&[(ALLOWED_HOSTS, hosts)]);
        assert_eq!(
            settings.allowed_hosts,
            [
                "mcp.example.com",
                "mcp.example.com:8443",
                "10.0.0.1",
                "[::1]:8080",
                "::1"
            ]
        );
        for host in [
            "mcp.example.com:https",
            "https://mcp.example.com",
            "a b",
            "[::1",
        ] {
            assert_invalid(
                &[(ALLOWED_HOSTS, host)],
                ALLOWED_HOSTS,
                "is not a host name or name:port",
            );
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let settings = read(&[(TRUSTED_PROXIES, "10.0.0.0/8, ::1, 192.168.1.7")]);
        assert_eq!(
            settings.trusted_proxies,
            ["10.0.0.0/8", "::1", "192.168.1.7"]
        );
        for proxy in ["10.0.0.0/33", "proxy.example.com", "fd00::/129"] {
            assert_invalid(
                &[(TRUSTED_PROXIES, proxy)],
                TRUSTED_PROXIES,
                "not an IP address or CIDR block",
            );
        }
    }

    #[test]
    fn failed_auth_per_minute_is_a_whole_number_and_zero_is_off() {
        assert_eq!(
            read(&[(FAILED_AUTH_PER_MINUTE, "30")]).failed_auth_per_minute,
            Some(30)
        );
        assert_eq!(
            read(&[(FAILED_AUTH_PER_MINUTE, "0")]).failed_auth_per_minute,
            Some(0)
        );
        let message = error(&[(FAILED_AUTH_PER_MINUTE, "ten")]).to_string();
        assert!(
            message.starts_with(
                "MCP_OAUTH_FAILED_AUTH_PER_MINUTE: \"ten\" is not a whole number (0 to 4294967295"
            ),
            "{message}"
        );
        assert_invalid(
            &[(FAILED_AUTH_PER_MINUTE, "-1")],
            FAILED_AUTH_PER_MINUTE,
            "is not a whole number",
        );
    }

    #[test]
    fn requests_per_minute_is_at_least_one() {
        assert_eq!(
            read(&[(REQUESTS_PER_MINUTE, "600")]).requests_per_minute,
            Some(600)
        );
        assert_invalid(
            &[(REQUESTS_PER_MINUTE, "0")],
            REQUESTS_PER_MINUTE,
            "at least 1",
        );
        assert_invalid(
            &[(REQUESTS_PER_MINUTE, "many")],
            REQUESTS_PER_MINUTE,
            "is not a whole number",
        );
    }

    #[test]
    fn filter_tools_is_one_zero_true_or_false() {
        for (value, expected) in [("1", true), ("true", true), ("TRUE", true), ("0", false)] {
            assert_eq!(read(&[(FILTER_TOOLS, value)]).filter_tools, expected);
        }
        let on = Settings {
            filter_tools: true,
            ..Settings::default()
        };
        let off = on.with_lookup(vars(&[(FILTER_TOOLS, "false")])).unwrap();
        assert!(!off.filter_tools);
        assert_invalid(
            &[(FILTER_TOOLS, "yes")],
            FILTER_TOOLS,
            "is not 1, 0, true or false",
        );
    }

    #[test]
    fn introspection_reads_the_endpoint_client_id_and_secret() {
        let settings = read(&[
            (
                INTROSPECTION_ENDPOINT,
                "https://auth.example.com/introspect",
            ),
            (INTROSPECTION_CLIENT_ID, "calendar"),
            (INTROSPECTION_CLIENT_SECRET, SECRET),
        ]);
        let introspection = settings.introspection.unwrap();
        assert_eq!(
            introspection.endpoint.as_deref(),
            Some("https://auth.example.com/introspect")
        );
        assert_eq!(introspection.client_id, "calendar");
        assert_eq!(introspection.client_secret.expose(), SECRET);
        let settings = read(&[
            (INTROSPECTION_CLIENT_ID, "calendar"),
            (INTROSPECTION_CLIENT_SECRET, SECRET),
        ]);
        assert_eq!(settings.introspection.unwrap().endpoint, None);
    }

    #[test]
    fn introspection_client_id_and_secret_come_together() {
        assert_invalid(
            &[(INTROSPECTION_CLIENT_ID, "calendar")],
            INTROSPECTION_CLIENT_SECRET,
            "set both or neither",
        );
        assert_invalid(
            &[(INTROSPECTION_CLIENT_SECRET, SECRET)],
            INTROSPECTION_CLIENT_ID,
            "set both or neither",
        );
        assert_invalid(
            &[(
                INTROSPECTION_ENDPOINT,
                "https://auth.example.com/introspect",
            )],
            INTROSPECTION_ENDPOINT,
            "needs MCP_OAUTH_INTROSPECTION_CLIENT_ID and MCP_OAUTH_INTROSPECTION_CLIENT_SECRET",
        );
        assert_invalid(
            &[
                (INTROSPECTION_ENDPOINT, "/introspect"),
                (INTROSPECTION_CLIENT_ID, "calendar"),
                (INTROSPECTION_CLIENT_SECRET, SECRET),
            ],
            INTROSPECTION_ENDPOINT,
            "is not an http(s) URL",
        );
    }

    #[test]
    fn token_exchange_reads_the_client_endpoint_audiences_and_grant() {
        let settings = read(&[
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (EXCHANGE_TOKEN_ENDPOINT, "https://auth.example.com/token"),
            (
                EXCHANGE_AUDIENCES,
                " https://holidays.example.com , api://rooms,",
            ),
            (EXCHANGE_GRANT, "Token-Exchange"),
        ]);
        let exchange = settings.token_exchange.as_ref().unwrap();
        assert_eq!(exchange.client_id.as_deref(), Some("calendar-server"));
        assert_eq!(exchange.client_secret.as_ref().unwrap().expose(), SECRET);
        assert_eq!(
            exchange.token_endpoint.as_deref(),
            Some("https://auth.example.com/token")
        );
        assert_eq!(
            exchange.audiences,
            ["https://holidays.example.com", "api://rooms"]
        );
        assert_eq!(exchange.grant, Some(ExchangeGrant::TokenExchange));
        assert_eq!(
            settings.token_exchange_grant(),
            Some(ExchangeGrant::TokenExchange)
        );
        // Nothing set: no token exchange.
        assert_eq!(read(&[]).token_exchange, None);
        assert_eq!(read(&[]).token_exchange_grant(), None);
        // A plain http endpoint on loopback is accepted (a local authorization server).
        let local = read(&[
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (EXCHANGE_TOKEN_ENDPOINT, "http://127.0.0.1:9000/token"),
            (EXCHANGE_AUDIENCES, "http://127.0.0.1:8081"),
        ]);
        assert!(local.token_exchange.unwrap().token_endpoint.is_some());
    }

    #[test]
    fn token_exchange_audiences_alone_are_settings_for_the_dev_server() {
        // Whether a dev server runs is decided at startup: the settings accept them.
        let settings = read(&[(EXCHANGE_AUDIENCES, "http://127.0.0.1:8081")]);
        let exchange = settings.token_exchange.unwrap();
        assert_eq!(exchange.client_id, None);
        assert!(exchange.client_secret.is_none());
        assert_eq!(exchange.audiences, ["http://127.0.0.1:8081"]);
    }

    #[test]
    fn token_exchange_client_id_and_secret_come_together_with_audiences() {
        let audiences = (EXCHANGE_AUDIENCES, "https://holidays.example.com");
        assert_invalid(
            &[(EXCHANGE_CLIENT_ID, "calendar-server"), audiences],
            EXCHANGE_CLIENT_SECRET,
            "set both or neither",
        );
        assert_invalid(
            &[(EXCHANGE_CLIENT_SECRET, SECRET), audiences],
            EXCHANGE_CLIENT_ID,
            "set both or neither",
        );
        assert_invalid(
            &[
                (EXCHANGE_CLIENT_ID, "calendar-server"),
                (EXCHANGE_CLIENT_SECRET, SECRET),
            ],
            EXCHANGE_AUDIENCES,
            "required for token exchange",
        );
        // An endpoint or a grant alone is not a configuration either.
        assert_invalid(
            &[(EXCHANGE_TOKEN_ENDPOINT, "https://auth.example.com/token")],
            EXCHANGE_TOKEN_ENDPOINT,
            "needs MCP_OAUTH_EXCHANGE_CLIENT_ID and MCP_OAUTH_EXCHANGE_CLIENT_SECRET",
        );
        assert_invalid(
            &[(EXCHANGE_GRANT, "entra-obo")],
            EXCHANGE_AUDIENCES,
            "required for token exchange",
        );
        assert_invalid(
            &[(EXCHANGE_CLIENT_ID, "calendar-server"), audiences],
            EXCHANGE_CLIENT_SECRET,
            "set both or neither",
        );
    }

    #[test]
    fn token_exchange_values_are_checked() {
        let client = [
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = client.to_vec();
            pairs.extend_from_slice(extra);
            pairs
        };
        let audiences = (EXCHANGE_AUDIENCES, "https://holidays.example.com");
        assert_invalid(
            &with(&[
                (EXCHANGE_TOKEN_ENDPOINT, "http://auth.example.com/token"),
                audiences,
            ]),
            EXCHANGE_TOKEN_ENDPOINT,
            "is not https (plain http only on a loopback host)",
        );
        assert_invalid(
            &with(&[(EXCHANGE_TOKEN_ENDPOINT, "/token"), audiences]),
            EXCHANGE_TOKEN_ENDPOINT,
            "is not an http(s) URL",
        );
        assert_invalid(
            &with(&[audiences, (EXCHANGE_GRANT, "jwt-bearer")]),
            EXCHANGE_GRANT,
            "is not token-exchange or entra-obo",
        );
        assert_invalid(
            &with(&[(
                EXCHANGE_AUDIENCES,
                "https://a.example.com,https://a.example.com",
            )]),
            EXCHANGE_AUDIENCES,
            "is listed twice",
        );
        assert_invalid(
            &with(&[(EXCHANGE_AUDIENCES, "api://rooms api://holidays")]),
            EXCHANGE_AUDIENCES,
            "has spaces",
        );
        // Empty values are unset, as everywhere; a document's empty members are refused.
        let empty = Settings {
            token_exchange: Some(TokenExchange {
                client_id: Some(" ".into()),
                client_secret: Some(Secret::new(SECRET)),
                audiences: vec!["https://holidays.example.com".into()],
                ..TokenExchange::default()
            }),
            ..Settings::default()
        };
        assert!(matches!(
            empty.validate(),
            Err(SettingsError::Invalid { name, .. }) if name == EXCHANGE_CLIENT_ID
        ));
    }

    #[test]
    fn token_exchange_grant_defaults_to_on_behalf_of_with_entra() {
        let entra = [
            (PROVIDER, "entra"),
            (ENTRA_TENANT, TENANT),
            (EXCHANGE_CLIENT_ID, "api://calendar"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (EXCHANGE_AUDIENCES, "api://holidays"),
        ];
        assert_eq!(
            read(&entra).token_exchange_grant(),
            Some(ExchangeGrant::EntraObo)
        );
        let mut explicit = entra.to_vec();
        explicit.push((EXCHANGE_GRANT, "token-exchange"));
        assert_eq!(
            read(&explicit).token_exchange_grant(),
            Some(ExchangeGrant::TokenExchange)
        );
        let keycloak = read(&[
            (PROVIDER, "keycloak"),
            (KEYCLOAK_URL, "https://kc.example.com"),
            (KEYCLOAK_REALM, "acme"),
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (EXCHANGE_AUDIENCES, "holidays"),
        ]);
        assert_eq!(
            keycloak.token_exchange_grant(),
            Some(ExchangeGrant::TokenExchange)
        );
    }

    #[test]
    fn token_exchange_variables_refine_the_settings() {
        // A program's default audience, credentials from the environment.
        let base = Settings {
            token_exchange: Some(TokenExchange {
                audiences: vec!["https://holidays.example.com".into()],
                ..TokenExchange::default()
            }),
            ..Settings::default()
        };
        let settings = base
            .clone()
            .with_lookup(vars(&[
                (EXCHANGE_CLIENT_ID, "calendar-server"),
                (EXCHANGE_CLIENT_SECRET, SECRET),
            ]))
            .unwrap();
        let exchange = settings.token_exchange.unwrap();
        assert_eq!(exchange.client_id.as_deref(), Some("calendar-server"));
        assert_eq!(exchange.audiences, ["https://holidays.example.com"]);
        // The variable replaces the whole list.
        let settings = base
            .with_lookup(vars(&[(EXCHANGE_AUDIENCES, "api://rooms")]))
            .unwrap();
        assert_eq!(settings.token_exchange.unwrap().audiences, ["api://rooms"]);
    }

    #[test]
    fn token_exchange_secret_from_a_file_is_kept_as_written() {
        let secret = TempFile::new("exchange-secret", " s3cr3t \n");
        let settings = read(&[
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET_FILE", secret.path()),
            (EXCHANGE_AUDIENCES, "https://holidays.example.com"),
        ]);
        let exchange = settings.token_exchange.unwrap();
        assert_eq!(exchange.client_secret.unwrap().expose(), " s3cr3t ");
    }

    #[test]
    fn audit_log_is_stderr_or_a_file_path() {
        assert_eq!(
            read(&[(AUDIT_LOG, "stderr")]).audit_log,
            Some(AuditLog::Stderr)
        );
        assert_eq!(
            read(&[(AUDIT_LOG, "/var/log/mcp-audit.jsonl")]).audit_log,
            Some(AuditLog::File("/var/log/mcp-audit.jsonl".into()))
        );
        let document: Settings = serde_json::from_str(r#"{ "audit_log": "" }"#).unwrap();
        assert!(matches!(
            document.validate(),
            Err(SettingsError::Invalid { name, .. }) if name == AUDIT_LOG
        ));
    }

    #[test]
    fn an_unknown_variable_suggests_the_nearest_known_one() {
        assert_eq!(
            error(&[("MCP_OAUTH_ISUER", "https://auth.example.com")]).to_string(),
            "MCP_OAUTH_ISUER is not a setting of mcp-oauth; did you mean MCP_OAUTH_ISSUER?"
        );
        for (typo, known) in [
            ("MCP_OAUTH_AUDEINCE", "MCP_OAUTH_AUDIENCE"), // a transposition: one edit
            ("MCP_OAUTH_TRUSTED_PROXY", "MCP_OAUTH_TRUSTED_PROXIES"),
            ("MCP_OAUTH_ISUER_FILE", "MCP_OAUTH_ISSUER_FILE"),
            ("mcp_oauth_issuer", "MCP_OAUTH_ISSUER"),
        ] {
            assert_eq!(
                error(&[(typo, "x")]),
                SettingsError::Unknown {
                    name: typo.into(),
                    suggestion: Some(known.into())
                }
            );
        }
    }

    #[test]
    fn dpop_settings_are_read_and_checked() {
        let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"; // 32 bytes of 7
        let settings = read(&[
            ("MCP_OAUTH_DPOP", "Required"),
            ("MCP_OAUTH_DPOP_NONCE", "true"),
            ("MCP_OAUTH_DPOP_NONCE_KEYS", key),
            ("MCP_OAUTH_DPOP_IAT_WINDOW", "120"),
        ]);
        assert_eq!(settings.dpop, Some(DpopMode::Required));
        assert!(settings.dpop_nonce);
        assert_eq!(nonce_key(&settings.dpop_nonce_keys[0]), Ok([7; 32]));
        assert_eq!(settings.dpop_iat_window, Some(120));
        assert!(
            !format!("{settings:?}").contains(key),
            "the keys never print"
        );

        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("MCP_OAUTH_DPOP", "on")], "MCP_OAUTH_DPOP"),
            (&[("MCP_OAUTH_DPOP_NONCE", "yes")], "MCP_OAUTH_DPOP_NONCE"),
            (
                &[
                    ("MCP_OAUTH_DPOP_NONCE", "1"),
                    ("MCP_OAUTH_DPOP_NONCE_KEYS", "short"),
                ],
                "MCP_OAUTH_DPOP_NONCE_KEYS",
            ),
            (
                &[("MCP_OAUTH_DPOP_NONCE_KEYS", key)],
                "MCP_OAUTH_DPOP_NONCE_KEYS",
            ),
            (
                &[
                    ("MCP_OAUTH_DPOP", "disabled"),
                    ("MCP_OAUTH_DPOP_NONCE", "1"),
                ],
                "MCP_OAUTH_DPOP_NONCE",
            ),
            (
                &[("MCP_OAUTH_DPOP_IAT_WINDOW", "3601")],
                "MCP_OAUTH_DPOP_IAT_WINDOW",
            ),
        ];
        for (pairs, variable) in cases {
            let (name, reason) = invalid(pairs);
            assert_eq!(name, variable, "{pairs:?}: {reason}");
            assert!(!reason.contains(key), "a key never shows in an error");
        }
    }

    #[test]
    fn an_unknown_variable_far_from_every_known_one_has_no_suggestion() {
        for name in [
            "MCP_OAUTH_KAFKA_BROKERS",
            "MCP_OAUTH_MTLS",
            "MCP_OAUTH_TELEMETRY",
        ] {
            let error = error(&[(name, "1")]);
            assert_eq!(
                error,
                SettingsError::Unknown {
                    name: name.into(),
                    suggestion: None
                }
            );
            assert_eq!(
                error.to_string(),
                format!("{name} is not a setting of mcp-oauth")
            );
        }
    }

    #[test]
    fn an_unknown_variable_is_refused_even_beside_valid_ones() {
        let error = error(&[
            (ISSUER, "https://auth.example.com"),
            ("MCP_OAUTH_FILTER_TOOL", "1"),
        ]);
        assert!(
            matches!(error, SettingsError::Unknown { name, .. } if name == "MCP_OAUTH_FILTER_TOOL")
        );
    }

    #[test]
    fn edit_distance_counts_one_edit_per_change() {
        assert_eq!(edit_distance("ISSUER", "ISSUER"), 0);
        assert_eq!(edit_distance("ISUER", "ISSUER"), 1);
        assert_eq!(edit_distance("AB", "BA"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn a_variable_given_twice_is_refused() {
        assert_invalid(
            &[(AUDIENCE, "a"), (AUDIENCE, "b")],
            AUDIENCE,
            "is given twice",
        );
    }

    #[test]
    fn a_file_variable_is_read_less_one_trailing_newline() {
        let secret = TempFile::new("secret", &format!("{SECRET}\n"));
        let issuer = TempFile::new("issuer", " https://auth.example.com \r\n");
        let settings = read(&[
            (INTROSPECTION_CLIENT_ID, "calendar"),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", secret.path()),
            ("MCP_OAUTH_ISSUER_FILE", issuer.path()),
        ]);
        assert_eq!(
            settings.introspection.unwrap().client_secret.expose(),
            SECRET
        );
        assert_eq!(settings.issuers, ["https://auth.example.com"]);

        // One newline goes; the secret is otherwise kept as written.
        let written = TempFile::new("written", " two\n\n");
        let settings = read(&[
            (INTROSPECTION_CLIENT_ID, "calendar"),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", written.path()),
        ]);
        assert_eq!(
            settings.introspection.unwrap().client_secret.expose(),
            " two\n"
        );

        // An empty file, like an empty value, is unset.
        let empty = TempFile::new("empty", "\n");
        assert_eq!(
            read(&[("MCP_OAUTH_AUDIENCE_FILE", empty.path())]).audience,
            None
        );
    }

    #[test]
    fn a_variable_and_its_file_both_set_are_refused() {
        let file = TempFile::new("both", "https://auth.example.com");
        assert_eq!(
            error(&[
                (ISSUER, "https://auth.example.com"),
                ("MCP_OAUTH_ISSUER_FILE", file.path()),
            ])
            .to_string(),
            "MCP_OAUTH_ISSUER: both MCP_OAUTH_ISSUER and MCP_OAUTH_ISSUER_FILE are set: set one"
        );
        // An empty variable is unset: the file alone counts.
        read(&[(ISSUER, ""), ("MCP_OAUTH_ISSUER_FILE", file.path())]);
    }

    #[test]
    fn an_unreadable_file_names_the_variable_and_the_path() {
        let path =
            std::env::temp_dir().join(format!("mcp-oauth-settings-{}-missing", std::process::id()));
        let path = path.to_str().unwrap();
        let (name, reason) = invalid(&[("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", path)]);
        assert_eq!(name, "MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE");
        assert!(
            reason.starts_with(&format!("cannot read {path:?}: ")),
            "{reason}"
        );
    }

    #[test]
    fn no_error_shows_the_secret() {
        let file = TempFile::new("shown", SECRET);
        let scenarios: [&[(&str, &str)]; 8] = [
            // The exchange secret without its client id, or without audiences.
            &[
                (EXCHANGE_CLIENT_SECRET, SECRET),
                (EXCHANGE_AUDIENCES, "https://holidays.example.com"),
            ],
            &[
                (EXCHANGE_CLIENT_ID, "calendar-server"),
                (EXCHANGE_CLIENT_SECRET, SECRET),
            ],
            // A bad exchange endpoint beside a good secret.
            &[
                (EXCHANGE_CLIENT_ID, "calendar-server"),
                (EXCHANGE_CLIENT_SECRET, SECRET),
                (EXCHANGE_TOKEN_ENDPOINT, "http://auth.example.com/token"),
                (EXCHANGE_AUDIENCES, "https://holidays.example.com"),
            ],
            // The secret without its client id.
            &[(INTROSPECTION_CLIENT_SECRET, SECRET)],
            // The secret from a file without its client id.
            &[("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", file.path())],
            // The secret twice.
            &[
                (INTROSPECTION_CLIENT_ID, "calendar"),
                (INTROSPECTION_CLIENT_SECRET, SECRET),
                ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", file.path()),
            ],
            // A misspelt secret variable.
            &[("MCP_OAUTH_INTROSPECTION_CLIENT_SECRT", SECRET)],
            // A bad endpoint beside a good secret.
            &[
                (INTROSPECTION_ENDPOINT, "introspect"),
                (INTROSPECTION_CLIENT_ID, "calendar"),
                (INTROSPECTION_CLIENT_SECRET, SECRET),
            ],
        ];
        for pairs in scenarios {
            let error = error(pairs);
            assert!(!error.to_string().contains(SECRET), "{error}");
            assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
        }
        // Nor does a URL's password.
        let error = error(&[(ISSUER, &format!("https://user:{SECRET}@auth.example.com"))]);
        assert!(!error.to_string().contains(SECRET), "{error}");
        // Nor do the settings themselves.
        let settings = read(&[
            (INTROSPECTION_CLIENT_ID, "calendar"),
            (INTROSPECTION_CLIENT_SECRET, SECRET),
            (EXCHANGE_CLIENT_ID, "calendar-server"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (EXCHANGE_AUDIENCES, "https://holidays.example.com"),
        ]);
        assert!(!format!("{settings:?}").contains(SECRET));
    }

    #[test]
    fn variables_replace_the_settings_they_name() {
        let base = Settings {
            issuers: vec!["https://a.example.com".into()],
            allowed_origins: vec!["https://app.example.com".into()],
            failed_auth_per_minute: Some(10),
            filter_tools: true,
            ..Settings::default()
        };
        let settings = base
            .clone()
            .with_lookup(vars(&[(ISSUER, "https://b.example.com")]))
            .unwrap();
        assert_eq!(settings.issuers, ["https://b.example.com"]);
        assert_eq!(settings.allowed_origins, base.allowed_origins);
        assert_eq!(settings.failed_auth_per_minute, Some(10));
        assert!(settings.filter_tools);
        // The settings are checked too, whatever their source.
        let bad = Settings {
            requests_per_minute: Some(0),
            ..Settings::default()
        };
        assert!(bad.with_lookup(Vec::new()).is_err());
    }

    #[test]
    fn provider_variables_refine_the_same_provider_only() {
        let keycloak = Settings {
            provider: Some(Provider::Keycloak {
                url: "https://kc.example.com".into(),
                realm: "staging".into(),
            }),
            ..Settings::default()
        };
        let refined = keycloak
            .clone()
            .with_lookup(vars(&[(KEYCLOAK_REALM, "production")]))
            .unwrap();
        assert_eq!(
            refined.provider,
            Some(Provider::Keycloak {
                url: "https://kc.example.com".into(),
                realm: "production".into()
            })
        );
        let replaced = keycloak
            .clone()
            .with_lookup(vars(&[(PROVIDER, "okta"), (OKTA_DOMAIN, "acme.okta.com")]))
            .unwrap();
        assert_eq!(replaced.provider.as_ref().map(Provider::name), Some("okta"));
        // Another provider starts from its own defaults, not the settings' members.
        let error = keycloak
            .clone()
            .with_lookup(vars(&[(PROVIDER, "entra")]))
            .unwrap_err();
        assert!(matches!(error, SettingsError::Invalid { name, .. } if name == ENTRA_TENANT));
        let error = keycloak
            .with_lookup(vars(&[(OKTA_DOMAIN, "acme.okta.com")]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "MCP_OAUTH_OKTA_DOMAIN: belongs to MCP_OAUTH_PROVIDER=okta, but MCP_OAUTH_PROVIDER \
             is keycloak"
        );
    }

    #[test]
    fn introspection_variables_refine_the_settings() {
        let base = Settings {
            introspection: Some(Introspection {
                endpoint: None,
                client_id: "calendar".into(),
                client_secret: Secret::new(SECRET),
            }),
            ..Settings::default()
        };
        let settings = base
            .with_lookup(vars(&[(
                INTROSPECTION_ENDPOINT,
                "https://auth.example.com/introspect",
            )]))
            .unwrap();
        let introspection = settings.introspection.unwrap();
        assert_eq!(
            introspection.endpoint.as_deref(),
            Some("https://auth.example.com/introspect")
        );
        assert_eq!(introspection.client_id, "calendar");
        assert_eq!(introspection.client_secret.expose(), SECRET);
    }

    #[test]
    fn a_document_deserializes_every_member() {
        let document = format!(
            r#"{{
                "resource": "https://calendar.example.com/mcp",
                "bind": "0.0.0.0:8080",
                "issuers": ["https://login.microsoftonline.com/{TENANT}/v2.0"],
                "provider": {{ "name": "entra", "tenant": "{TENANT}" }},
                "jwks_uri": "https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
                "audience": "api://calendar",
                "allowed_origins": ["https://app.example.com"],
                "allowed_hosts": ["calendar.example.com"],
                "trusted_proxies": ["10.0.0.0/8"],
                "failed_auth_per_minute": 0,
                "requests_per_minute": 600,
                "filter_tools": true,
                "introspection": {{ "client_id": "calendar", "client_secret": "{SECRET}" }},
                "token_exchange": {{
                    "client_id": "api://calendar",
                    "client_secret": "{SECRET}",
                    "token_endpoint": "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
                    "audiences": ["api://holidays"],
                    "grant": "entra-obo"
                }},
                "audit_log": "stderr"
            }}"#
        );
        let settings: Settings = serde_json::from_str(&document).unwrap();
        settings.validate().unwrap();
        assert_eq!(
            settings.provider,
            Some(Provider::Entra {
                tenant: TENANT.into(),
                version: 2,
                allowed_tenants: Vec::new()
            })
        );
        assert_eq!(settings.failed_auth_per_minute, Some(0));
        assert_eq!(settings.requests_per_minute, Some(600));
        assert!(settings.filter_tools);
        assert_eq!(settings.audit_log, Some(AuditLog::Stderr));
        let introspection = settings.introspection.as_ref().unwrap();
        assert_eq!(introspection.client_secret.expose(), SECRET);
        // The same settings from the environment's names.
        let from_vars = read(&[
            (RESOURCE, "https://calendar.example.com/mcp"),
            (BIND, "0.0.0.0:8080"),
            (
                ISSUER,
                &format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            ),
            (PROVIDER, "entra"),
            (ENTRA_TENANT, TENANT),
            (
                ISSUER_JWKS_URI,
                &format!("https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"),
            ),
            (AUDIENCE, "api://calendar"),
            (ALLOWED_ORIGINS, "https://app.example.com"),
            (ALLOWED_HOSTS, "calendar.example.com"),
            (TRUSTED_PROXIES, "10.0.0.0/8"),
            (FAILED_AUTH_PER_MINUTE, "0"),
            (REQUESTS_PER_MINUTE, "600"),
            (FILTER_TOOLS, "1"),
            (INTROSPECTION_CLIENT_ID, "calendar"),
            (INTROSPECTION_CLIENT_SECRET, SECRET),
            (EXCHANGE_CLIENT_ID, "api://calendar"),
            (EXCHANGE_CLIENT_SECRET, SECRET),
            (
                EXCHANGE_TOKEN_ENDPOINT,
                &format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
            ),
            (EXCHANGE_AUDIENCES, "api://holidays"),
            (EXCHANGE_GRANT, "entra-obo"),
            (AUDIT_LOG, "stderr"),
        ]);
        assert_eq!(from_vars, settings);
    }

    #[test]
    fn a_document_refuses_a_misspelt_member() {
        let cases = [
            (r#"{ "isuers": ["https://auth.example.com"] }"#, "isuers"),
            (
                r#"{ "provider": { "name": "okta", "domian": "acme.okta.com" } }"#,
                "domian",
            ),
            (
                r#"{ "introspection": { "client_id": "c", "client_secret": "s", "endpiont": "https://a" } }"#,
                "endpiont",
            ),
            (
                r#"{ "token_exchange": { "audience": ["https://a"] } }"#,
                "audience",
            ),
        ];
        for (document, member) in cases {
            let error = serde_json::from_str::<Settings>(document).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("unknown field `{member}`")),
                "{document}: {error}"
            );
        }
        let error = serde_json::from_str::<Settings>(r#"{ "provider": { "name": "google" } }"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `google`"),
            "{error}"
        );
    }

    #[test]
    fn each_provider_becomes_its_profile() {
        let cases = [
            (
                Provider::Auth0 {
                    domain: "acme.us.auth0.com".into(),
                },
                Profile::Auth0 {
                    domain: "acme.us.auth0.com".into(),
                },
            ),
            (
                Provider::Entra {
                    tenant: TENANT.into(),
                    version: 1,
                    allowed_tenants: Vec::new(),
                },
                Profile::EntraId {
                    version: EntraVersion::V1,
                    tenant: EntraTenant::Single(TENANT.into()),
                },
            ),
            (
                Provider::Entra {
                    tenant: "multi".into(),
                    version: 2,
                    allowed_tenants: vec![TENANT.into()],
                },
                Profile::EntraId {
                    version: EntraVersion::V2,
                    tenant: EntraTenant::Multi,
                },
            ),
            (
                Provider::Keycloak {
                    url: "https://kc.example.com".into(),
                    realm: "acme".into(),
                },
                Profile::Keycloak {
                    base_url: "https://kc.example.com".into(),
                    realm: "acme".into(),
                },
            ),
            (
                Provider::Okta {
                    domain: "acme.okta.com".into(),
                    authorization_server: "default".into(),
                },
                Profile::Okta {
                    domain: "acme.okta.com".into(),
                    authorization_server: "default".into(),
                },
            ),
            (
                Provider::Scalekit {
                    environment_url: "https://acme.scalekit.com".into(),
                },
                Profile::Scalekit {
                    environment_url: "https://acme.scalekit.com".into(),
                },
            ),
        ];
        for (provider, profile) in cases {
            assert_eq!(provider.profile(None).unwrap(), profile);
            // Its own issuer agrees with it.
            assert_eq!(provider.profile(Some(&profile.issuer())).unwrap(), profile);
        }
    }

    #[test]
    fn the_generic_profile_is_rfc_9068_for_the_given_issuer() {
        assert_eq!(
            Provider::Generic
                .profile(Some("https://auth.example.com"))
                .unwrap(),
            Profile::Rfc9068 {
                issuer: "https://auth.example.com".into()
            }
        );
        assert!(matches!(
            Provider::Generic.profile(None),
            Err(SettingsError::Invalid { name, .. }) if name == ISSUER
        ));
        assert!(matches!(
            Provider::Generic.profile(Some("auth.example.com")),
            Err(SettingsError::Invalid { name, .. }) if name == ISSUER
        ));
    }
}
