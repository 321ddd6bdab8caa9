//! What an issuer's tokens must satisfy.

use std::sync::Arc;
use std::time::Duration;

use super::error::Claim;
use crate::crypto::{Algorithm, AlgorithmSet};
use crate::key_set::{KeySet, KeySetConfig, KeySource};

/// The largest leeway a policy accepts: clock skew beyond this is a broken clock, not skew.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// How the `typ` header is judged (RFC 9068 §2.1, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypPolicy {
    /// `typ` must be `at+jwt` or `application/at+jwt`, compared case-insensitively.
    /// The default: it stops ID tokens and other JWTs from passing as access tokens.
    #[default]
    Strict,
    /// Also accepts `JWT`, `application/jwt` or no `typ`, for providers that send those
    /// (Entra ID, Auth0). OpenID Connect ID tokens are still refused, by their
    /// `nonce`, `at_hash`, `c_hash` or `s_hash` claims (and by their audience).
    Lenient,
}

/// The shape of the scope claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeFormat {
    /// A space-separated string (RFC 9068, Keycloak, Scalekit).
    SpaceSeparated,
    /// A JSON array of strings (Auth0 `permissions`, Entra `roles`).
    Array,
    /// Either a space-separated string or an array of strings (Okta and Entra `scp`).
    #[default]
    Either,
}

/// Where a token's scopes live.
///
/// ```
/// use mcp_oauth::validation::{ScopeClaim, ScopeFormat};
///
/// let auth0_rbac = ScopeClaim::new("permissions", ScopeFormat::Array);
/// assert_eq!(auth0_rbac.name(), "permissions");
/// assert_eq!(ScopeClaim::default().name(), "scope");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeClaim {
    name: String,
    format: ScopeFormat,
}

impl ScopeClaim {
    /// Scopes in claim `name`, of shape `format`.
    pub fn new(name: impl Into<String>, format: ScopeFormat) -> Self {
        Self {
            name: name.into(),
            format,
        }
    }

    /// The claim's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The claim's shape.
    pub fn format(&self) -> ScopeFormat {
        self.format
    }
}

impl Default for ScopeClaim {
    /// `scope`, a space-separated string (RFC 9068 §2.2.3).
    fn default() -> Self {
        Self::new("scope", ScopeFormat::SpaceSeparated)
    }
}

/// The set of claims a policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredClaims(u8);

impl RequiredClaims {
    /// `iss`, `exp` and `aud`: the claims no policy can drop.
    pub const ALWAYS: RequiredClaims =
        RequiredClaims(Claim::Issuer.bit() | Claim::Expiry.bit() | Claim::Audience.bit());

    /// The RFC 9068 §2.2 set: iss, exp, aud, sub, client_id, iat, jti.
    pub const RFC_9068: RequiredClaims = RequiredClaims(
        Self::ALWAYS.0
            | Claim::Subject.bit()
            | Claim::ClientId.bit()
            | Claim::IssuedAt.bit()
            | Claim::JwtId.bit(),
    );

    /// Whether `claim` is required.
    pub const fn contains(self, claim: Claim) -> bool {
        self.0 & claim.bit() != 0
    }
}

impl Default for RequiredClaims {
    fn default() -> Self {
        Self::RFC_9068
    }
}

/// Why a policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The issuer is empty.
    #[error("the issuer must not be empty")]
    EmptyIssuer,
    /// No audience was configured: MCP servers must check the audience.
    #[error("at least one audience (the resource URL) is required")]
    NoAudience,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithm,
    /// Leeway above [`MAX_LEEWAY`].
    #[error("leeway above {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
    /// `iss`, `exp` and `aud` cannot be made optional.
    #[error("claim {} is always required", .0.name())]
    ClaimAlwaysRequired(Claim),
    /// The RSA default algorithm is not an RSA algorithm.
    #[error("{0} is not an RSA algorithm")]
    NotAnRsaAlgorithm(Algorithm),
    /// An empty list of client-id claims.
    #[error("at least one client-id claim name is required")]
    NoClientIdClaim,
}

/// What one issuer's access tokens must satisfy, and where its keys come from.
///
/// Strict by default: `typ` must be `at+jwt`; `iss` must equal the issuer exactly; `aud`
/// must name the resource (compared with scheme and host case-insensitive); the RFC 9068
/// claims are required; every key is bound to one algorithm from the allow-list; 60 s of
/// leeway.
///
/// ```
/// use mcp_oauth::validation::{IssuerPolicy, TypPolicy};
/// use mcp_oauth::validation::Claim;
///
/// let policy = IssuerPolicy::builder("https://auth.example.com")
///     .audience("https://calendar.example.com/mcp")
///     .typ(TypPolicy::Lenient)
///     .optional_claim(Claim::JwtId)
///     .build()
///     .unwrap();
/// assert_eq!(policy.issuer(), "https://auth.example.com");
/// ```
#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) leeway: Duration,
    pub(crate) required: RequiredClaims,
    pub(crate) typ: TypPolicy,
    pub(crate) scope_claim: ScopeClaim,
    pub(crate) client_id_claims: Vec<String>,
    pub(crate) key_source: KeySource,
    pub(crate) key_set_config: KeySetConfig,
}

impl IssuerPolicy {
    /// Starts a policy for tokens whose `iss` is exactly `issuer`.
    pub fn builder(issuer: impl Into<String>) -> IssuerPolicyBuilder {
        let issuer = issuer.into();
        IssuerPolicyBuilder {
            policy: IssuerPolicy {
                key_source: KeySource::Discover {
                    issuer: issuer.clone(),
                },
                issuer,
                audiences: Vec::new(),
                algorithms: AlgorithmSet::default(),
                leeway: Duration::from_secs(60),
                required: RequiredClaims::default(),
                typ: TypPolicy::default(),
                scope_claim: ScopeClaim::default(),
                client_id_claims: vec!["client_id".to_owned()],
                key_set_config: KeySetConfig::default(),
            },
            rsa_default: Algorithm::RS256,
            errors: Vec::new(),
        }
    }

    /// The issuer, exactly as tokens' `iss` must carry it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where the issuer's keys come from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }
}

/// Builds an [`IssuerPolicy`]; see there.
#[derive(Debug, Clone)]
#[must_use]
pub struct IssuerPolicyBuilder {
    policy: IssuerPolicy,
    rsa_default: Algorithm,
    errors: Vec<PolicyError>,
}

impl IssuerPolicyBuilder {
    /// Accepts tokens whose `aud` names `audience` (usually the MCP endpoint URL, the
    /// `resource` of the metadata). Call again to accept several (e.g. Entra's App ID URI).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.policy.audiences.push(audience.into());
        self
    }

    /// Fetches keys from this JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.policy.key_source = KeySource::JwksUri(uri.into());
        self
    }

    /// Uses this fixed key set; nothing is fetched.
    pub fn static_keys(mut self, keys: KeySet) -> Self {
        self.policy.key_source = KeySource::Static(Arc::new(keys));
        self
    }

    /// The algorithm allow-list (default: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.policy.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The algorithm of RSA keys published without `alg` (default RS256).
    pub fn rsa_default_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.rsa_default = algorithm;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most [`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.policy.leeway = leeway;
        self
    }

    /// The `typ` policy (default [`TypPolicy::Strict`]).
    pub fn typ(mut self, typ: TypPolicy) -> Self {
        self.policy.typ = typ;
        self
    }

    /// Requires `claim` (all of RFC 9068's are required by default).
    pub fn require_claim(mut self, claim: Claim) -> Self {
        self.policy.required.0 |= claim.bit();
        self
    }

    /// Stops requiring `claim`. `iss`, `exp` and `aud` cannot be dropped.
    pub fn optional_claim(mut self, claim: Claim) -> Self {
        if RequiredClaims::ALWAYS.contains(claim) {
            self.errors.push(PolicyError::ClaimAlwaysRequired(claim));
        } else {
            self.policy.required.0 &= !claim.bit();
        }
        self
    }

    /// Where scopes live (default `scope`, space-separated).
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.policy.scope_claim = claim;
        self
    }

    /// The claims tried, in order, for the client id (default `["client_id"]`; Auth0 uses
    /// `azp`, Entra v1 `appid`).
    pub fn client_id_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.client_id_claims = names.into_iter().map(Into::into).collect();
        self
    }

    /// How the issuer's key set is fetched and cached.
    pub fn key_set_config(mut self, config: KeySetConfig) -> Self {
        self.policy.key_set_config = config;
        self
    }

    /// Checks the policy.
    pub fn build(self) -> Result<IssuerPolicy, PolicyError> {
        let IssuerPolicyBuilder {
            mut policy,
            rsa_default,
            mut errors,
        } = self;
        if policy.issuer.is_empty() {
            errors.push(PolicyError::EmptyIssuer);
        }
        if policy.audiences.is_empty() {
            errors.push(PolicyError::NoAudience);
        }
        if policy.algorithms.is_empty() {
            errors.push(PolicyError::NoAlgorithm);
        }
        if policy.leeway > MAX_LEEWAY {
            errors.push(PolicyError::LeewayTooLarge);
        }
        if policy.client_id_claims.is_empty() {
            errors.push(PolicyError::NoClientIdClaim);
        }
        if rsa_default.key_type() != crate::crypto::KeyType::Rsa {
            errors.push(PolicyError::NotAnRsaAlgorithm(rsa_default));
        }
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        policy.key_set_config.key_options.algorithms = policy.algorithms;
        policy.key_set_config.key_options.rsa_default_algorithm = rsa_default;
        Ok(policy)
    }
}
