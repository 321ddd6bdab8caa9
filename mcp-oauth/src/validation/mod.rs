//! Access-token validation: JWTs (RFC 9068, RFC 8725), and opaque tokens through RFC 7662
//! introspection.
//!
//! A [`Validator`] holds one [`IssuerPolicy`] per trusted issuer, each with its own key set,
//! and optionally one [introspection](crate::introspection) endpoint, and turns a bearer token
//! into a [`VerifiedToken`] or a [`TokenError`] that says exactly why not. The order of checks
//! is chosen so that nothing expensive happens for a token that fails a cheap check, and
//! nothing is fetched for a token that is not ours:
//!
//! 1. size cap (16 KiB by default), before any decoding;
//! 2. with introspection configured, a token that is not JWT-shaped (or, in
//!    [`AllTokens`](crate::introspection::IntrospectionMode::AllTokens) mode, a JWT naming the
//!    introspection's issuer) goes to that one endpoint, and nowhere else; other tokens are
//!    looked up in the verified-token cache;
//! 3. the header: `alg` (never `none`, never HMAC), no `jku`/`x5u`/`jwk`, no unknown `crit`;
//!    JWE and nested JWTs refused;
//! 4. `iss` routes to exactly one issuer's policy — the exact issuer first, else the first
//!    [issuer template](IssuerPolicy::template) matching it, whose tenant claim must agree and
//!    be allowed (keys never cross policies); `alg` on its allow-list; `typ` per its
//!    [`TypPolicy`];
//! 5. `aud` names this resource; `exp`, `nbf`, `iat` within leeway; no `cnf` binding;
//!    required claims present;
//! 6. only then the key: an unknown `kid` may cause one single-flight refresh;
//! 7. the signature, with the key bound to the header's algorithm.
//!
//! Identity providers that shape tokens differently have [presets](profile) that relax
//! exactly what each needs ([`IssuerPolicy::preset`]).
//!
//! ```no_run
//! # async fn demo(bearer: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth::{IssuerPolicy, Validator};
//!
//! let validator = Validator::new(
//!     IssuerPolicy::builder("https://auth.example.com")
//!         .audience("https://calendar.example.com/mcp")
//!         .build()?,
//! )?;
//! match validator.validate(bearer).await {
//!     Ok(identity) => println!("{:?} may use {}", identity.subject(), identity.scopes()),
//!     Err(refusal) => println!("401 {}: {}", refusal.error_code().as_str(), refusal.description()),
//! }
//! # Ok(()) }
//! ```
//!
//! # Token lifetimes
//!
//! MCP clients hold short-lived access tokens (minutes) and a refresh token; the resource
//! server's part in that dance is small and exact:
//!
//! - **Leeway.** `exp`, `nbf` and `iat` are judged with a clock leeway (60 s by default,
//!   [`IssuerPolicyBuilder::leeway`], at most [`MAX_LEEWAY`]): a token is refused from
//!   `exp + leeway` on, and accepted from `nbf - leeway` on. The leeway absorbs clock skew
//!   between the authorization server and this host; it does not lengthen a token's life on
//!   purpose, so keep it small.
//! - **Expiry is `invalid_token`.** An expired token is refused with [`TokenError::Expired`],
//!   which the HTTP layer answers with 401 and `error="invalid_token"`: the signal on which
//!   clients use their refresh token and retry. It is never a 503 (retrying the same token
//!   cannot help) and never a 403 (that means "more scope", not "new token").
//! - **Caches never outlive `exp`.** A cached verification (the verified-token cache, keyed by
//!   SHA-256 of the token) is served only until the moment a fresh validation would refuse
//!   the token (`exp + leeway`), and never past the cache TTL; an introspection answer only
//!   until `exp` itself. A refreshed token is a different token: nothing of the old one's
//!   verdict carries over.
//! - **Refresh and rotation are the authorization server's job.** The resource server never
//!   sees refresh tokens (an introspection answer naming one is refused with
//!   [`TokenError::InvalidType`]) and does not track rotation or reuse. The old access token
//!   stays valid until its own `exp`; a revocation (e.g. of a replayed refresh token's family)
//!   reaches a resource server that validates JWTs locally only at that `exp`, and one that
//!   [introspects](crate::introspection) within its cache TTL. Short access-token lifetimes
//!   bound both. The dev authorization server (`mcp_oauth::dev`, feature `dev`) rotates refresh
//!   tokens and revokes a family on reuse, to try this end to end.

pub mod diagnose;
mod jwt;
mod policy;
pub mod profile;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::token::{
    Claim, ErrorCode, MAX_LEEWAY, RequiredClaims, ScopeClaim, ScopeFormat, TokenError,
    TokenFingerprint, Verification, VerifiedToken,
};
pub use diagnose::{Diagnosis, Finding, diagnose};
pub use policy::{
    IssuerPolicy, IssuerPolicyBuilder, IssuerTemplate, PolicyError, TENANT_PLACEHOLDER, TypPolicy,
};
pub use profile::{ENTRA_ORGANIZATIONS_V2, EntraTenant, EntraVersion, Profile};

use crate::clock::{Clock, SystemClock};
use crate::crypto::sha256;
use crate::introspection::{Introspection, IntrospectionConfigError, Introspector};
use crate::key_set::{KeySetConfigError, RemoteKeySet};
use crate::metrics;
use crate::revocation::Revocations;
use crate::token_cache::{TokenCache, TokenCacheConfig};
use jwt::{Issuer, JwtVerifier};
use policy::IssuerMatch;

const LOG_TARGET: &str = "mcp_oauth::validation";

/// Whether audience `presented` names `configured` (scheme and host case-insensitive), for
/// the layer's start-up check of its resource against the validator's audiences.
#[cfg(feature = "layer")]
pub(crate) fn audience_names(configured: &str, presented: &str) -> bool {
    crate::token::claims::audience_matches(configured, presented)
}

/// The default size cap of a token, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Each validator's cache entries carry its own id, so a token accepted under one
/// validator's policies is never served to another.
static NEXT_VALIDATOR_ID: AtomicU64 = AtomicU64::new(1);

/// Why a [`Validator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// No issuer policy and no introspection endpoint was configured.
    #[error("at least one issuer policy (or an introspection endpoint) is required")]
    NoIssuer,
    /// Two policies name the same issuer (or the same issuer template).
    #[error("issuer {0} is configured twice")]
    DuplicateIssuer(String),
    /// The introspection verifier could not be set up.
    #[error("introspection: {0}")]
    Introspection(#[from] IntrospectionConfigError),
    /// An issuer's key set could not be set up.
    #[error("issuer {issuer}: {source}")]
    KeySet {
        /// The issuer.
        issuer: String,
        /// Why.
        source: KeySetConfigError,
    },
}

/// Counters of a [`Validator`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidatorStats {
    /// Calls of [`Validator::validate`].
    pub validations: u64,
    /// Signature verifications performed (a cache hit performs none).
    pub signature_checks: u64,
    /// Tokens accepted.
    pub accepted: u64,
    /// Tokens refused.
    pub refused: u64,
}

/// Validates bearer tokens against one or more issuers' policies. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Validator {
    inner: Arc<Inner>,
}

/// The two verifiers a validator dispatches to, and its counters.
#[derive(Debug)]
struct Inner {
    jwt: JwtVerifier,
    introspector: Option<Introspector>,
    max_token_bytes: usize,
    revocations: Revocations,
    validations: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Builds a [`Validator`].
#[must_use]
#[derive(Debug)]
pub struct ValidatorBuilder {
    policies: Vec<IssuerPolicy>,
    introspection: Option<Introspection>,
    clock: Arc<dyn Clock>,
    cache: Option<TokenCacheConfig>,
    shared_cache: Option<Arc<TokenCache>>,
    max_token_bytes: usize,
    revocations: Option<Revocations>,
}

impl ValidatorBuilder {
    /// Trusts tokens of this issuer, under this policy. Call once per issuer.
    pub fn issuer(mut self, policy: IssuerPolicy) -> Self {
        self.policies.push(policy);
        self
    }

    /// Also accepts opaque tokens through one RFC 7662 introspection endpoint (a second
    /// verifier in the same chain; see [`Introspection`]). JWT-shaped tokens still go to the
    /// issuer policies unless the introspection's [mode](crate::introspection::IntrospectionMode)
    /// says otherwise. Calling it again replaces the endpoint: there is only ever one, so an
    /// opaque token is never sent to more than one authorization server.
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Reads time from `clock` (tests inject a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Bounds of the verified-token cache (on by default).
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Uses a cache shared with other validators (entries stay separate per validator).
    pub fn shared_token_cache(mut self, cache: Arc<TokenCache>) -> Self {
        self.shared_cache = Some(cache);
        self
    }

    /// Turns the verified-token cache off: every request verifies a signature.
    pub fn without_token_cache(mut self) -> Self {
        self.cache = None;
        self.shared_cache = None;
        self
    }

    /// The revocation denylist consulted after a token verified, from the cache too
    /// (default: an empty local list; see [`crate::revocation`]).
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The size cap of a token in bytes (default [`DEFAULT_MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Sets up each issuer's key set (nothing is fetched yet).
    pub fn build(self) -> Result<Validator, ValidatorError> {
        if self.policies.is_empty() && self.introspection.is_none() {
            return Err(ValidatorError::NoIssuer);
        }
        let mut issuers: Vec<Issuer> = Vec::with_capacity(self.policies.len());
        for policy in self.policies {
            let duplicate = issuers.iter().find_map(|other| {
                match (
                    &other.policy.issuer_match,
                    &policy.issuer_match,
                    policy.issuer_template(),
                ) {
                    (IssuerMatch::Exact, IssuerMatch::Exact, _)
                        if other.policy.issuer == policy.issuer =>
                    {
                        Some(policy.issuer.clone())
                    }
                    (IssuerMatch::Template { template, .. }, _, Some(ours)) if template == ours => {
                        Some(ours.as_str().to_owned())
                    }
                    _ => None,
                }
            });
            if let Some(name) = duplicate {
                return Err(ValidatorError::DuplicateIssuer(name));
            }
            let keys = RemoteKeySet::with_clock(
                policy.key_source.clone(),
                policy.key_set_config.clone(),
                self.clock.clone(),
            )
            .map_err(|source| ValidatorError::KeySet {
                issuer: policy.issuer.clone(),
                source,
            })?;
            issuers.push(Issuer { policy, keys });
        }
        let cache = self
            .shared_cache
            .or_else(|| self.cache.map(|c| Arc::new(TokenCache::new(&c))));
        let id = NEXT_VALIDATOR_ID.fetch_add(1, Ordering::Relaxed);
        let introspector = self
            .introspection
            .map(|config| Introspector::new(config, id, self.clock.clone()))
            .transpose()?;
        Ok(Validator {
            inner: Arc::new(Inner {
                jwt: JwtVerifier::new(id, issuers, cache, self.clock.clone()),
                introspector,
                max_token_bytes: self.max_token_bytes,
                revocations: self
                    .revocations
                    .unwrap_or_else(|| Revocations::with_clock(self.clock.clone())),
                validations: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        })
    }
}

impl Validator {
    /// A validator for one issuer, with the defaults (system clock, token cache on).
    pub fn new(policy: IssuerPolicy) -> Result<Self, ValidatorError> {
        Self::builder().issuer(policy).build()
    }

    /// Starts a validator with the defaults.
    pub fn builder() -> ValidatorBuilder {
        ValidatorBuilder {
            policies: Vec::new(),
            introspection: None,
            clock: Arc::new(SystemClock),
            cache: Some(TokenCacheConfig::default()),
            shared_cache: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            revocations: None,
        }
    }

    /// Loads every issuer's keys now, so the first request does not wait for a fetch.
    /// Returns the first failure; the validator still works (it retries on demand).
    pub async fn preload(&self) -> Result<(), crate::key_set::KeySetLoadError> {
        for issuer in self.inner.jwt.issuers() {
            issuer.keys.load().await?;
        }
        Ok(())
    }

    /// The policies, in configuration order.
    pub fn policies(&self) -> impl Iterator<Item = &IssuerPolicy> {
        self.inner.jwt.issuers().iter().map(|issuer| &issuer.policy)
    }

    /// The key set of `issuer`: the policy a token naming `iss` = `issuer` is routed to (an
    /// exact issuer, else a template matching it), or the template policy advertising
    /// `issuer`.
    pub fn key_set(&self, issuer: &str) -> Option<&RemoteKeySet> {
        let issuers = self.inner.jwt.issuers();
        self.inner
            .jwt
            .route(issuer)
            .or_else(|| issuers.iter().position(|i| i.policy.issuer == issuer))
            .map(|index| &issuers[index].keys)
    }

    /// The policy a token whose (unverified) `iss` is `iss` is judged by: the one for that
    /// exact issuer, else the first issuer template matching it. Keys never cross policies.
    pub fn policy_for(&self, iss: &str) -> Option<&IssuerPolicy> {
        let jwt = &self.inner.jwt;
        jwt.route(iss).map(|index| &jwt.issuers()[index].policy)
    }

    /// The introspection verifier, if configured.
    pub fn introspector(&self) -> Option<&Introspector> {
        self.inner.introspector.as_ref()
    }

    /// Every issuer the metadata must advertise in `authorization_servers`: each policy's
    /// [`issuer`](IssuerPolicy::issuer) (the advertised one for a template), then the
    /// introspection endpoint's issuer. No duplicates.
    pub fn advertised_issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = Vec::new();
        let introspected = self.inner.introspector.as_ref().map(|i| i.issuer());
        for issuer in self
            .policies()
            .map(IssuerPolicy::issuer)
            .chain(introspected)
        {
            if !issuers.contains(&issuer) {
                issuers.push(issuer);
            }
        }
        issuers
    }

    /// The revocation denylist this validator consults.
    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// The verified-token cache, if on.
    pub fn token_cache(&self) -> Option<&TokenCache> {
        self.inner.jwt.cache()
    }

    /// Counters.
    pub fn stats(&self) -> ValidatorStats {
        let inner = &self.inner;
        ValidatorStats {
            validations: inner.validations.load(Ordering::Relaxed),
            signature_checks: inner.jwt.signature_checks(),
            accepted: inner.accepted.load(Ordering::Relaxed),
            refused: inner.refused.load(Ordering::Relaxed),
        }
    }

    /// Validates a bearer token (the credential after `Bearer `). A DPoP-bound token (with
    /// `cnf.jkt`) is refused with [`TokenError::SenderConstrained`]: without its proof it is
    /// no more than a stolen token; [`crate::dpop::DpopVerifier`] accepts it with one.
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.validate_counted(token, false).await
    }

    /// Validates a token presented with the `DPoP` scheme: like [`validate`](Self::validate),
    /// but a `cnf.jkt` binding is returned in the identity instead of refused. Only the DPoP
    /// verifier calls it, and it checks the binding against the proof.
    pub(crate) async fn validate_dpop_bound(
        &self,
        token: &str,
    ) -> Result<VerifiedToken, TokenError> {
        self.validate_counted(token, true).await
    }

    async fn validate_counted(
        &self,
        token: &str,
        dpop_proof_follows: bool,
    ) -> Result<VerifiedToken, TokenError> {
        let inner = &self.inner;
        inner.validations.fetch_add(1, Ordering::Relaxed);
        let result = match self.validate_inner(token).await {
            // The check is on the identity, so a cached verification is refused alike.
            Ok(identity) => {
                match check_bearer_binding(identity.dpop_thumbprint(), dpop_proof_follows) {
                    Err(error) => Err(error),
                    Ok(()) if inner.revocations.is_revoked(&identity) => Err(TokenError::Revoked),
                    Ok(()) => Ok(identity),
                }
            }
            other => other,
        };
        match &result {
            Ok(_) => inner.accepted.fetch_add(1, Ordering::Relaxed),
            Err(error) => {
                // A reason code and a fingerprint: never the token.
                tracing::debug!(
                    target: LOG_TARGET,
                    reason = error.reason(),
                    fingerprint = %TokenFingerprint::of(token),
                    "token refused"
                );
                inner.refused.fetch_add(1, Ordering::Relaxed)
            }
        };
        result
    }

    async fn validate_inner(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let inner = &self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        if token.is_empty() {
            return Err(TokenError::Malformed);
        }
        // Opaque tokens (and, when so configured, the introspection issuer's JWTs) go to the
        // one introspection endpoint, with its own cache; they never enter the JWT path.
        if let Some(introspector) = &inner.introspector
            && introspector.handles(token)
        {
            // Boxed (an allocation per introspected request, beside its cache lookup): this
            // future nests in the HTTP layer's per-request one, which must stay small for
            // the JWT cache hit.
            return Box::pin(introspector.introspect(token, sha256(token.as_bytes()))).await;
        }
        inner.jwt.verify(token).await
    }
}

/// The rule for a sender-constrained token: one bound to a DPoP key (`cnf.jkt`, `dpop_jkt`)
/// is refused with [`TokenError::SenderConstrained`] unless a DPoP proof follows (RFC 9449
/// §7.1: presented as a bearer token it is no more than a stolen one). Applied after every
/// other check of the token (its signature included), by [`Validator::validate`] and by
/// [`diagnose`](diagnose::diagnose) alike.
pub(crate) fn check_bearer_binding(
    dpop_jkt: Option<&[u8; 32]>,
    dpop_proof_follows: bool,
) -> Result<(), TokenError> {
    if dpop_jkt.is_some() && !dpop_proof_follows {
        Err(TokenError::SenderConstrained)
    } else {
        Ok(())
    }
}

/// The statistics the HTTP layer exports through [`metrics`] (and
/// [`metrics::export_validator`] takes): each issuer's key-set counters, by the policy's
/// issuer, and the verified-token cache's.
impl From<&Validator> for metrics::Snapshot {
    fn from(validator: &Validator) -> Self {
        metrics::Snapshot {
            key_sets: validator
                .policies()
                .filter_map(|policy| {
                    let keys = validator.key_set(policy.issuer())?;
                    Some((policy.issuer().to_owned(), keys.stats()))
                })
                .collect(),
            token_cache: validator.token_cache().map(TokenCache::stats),
        }
    }
}
