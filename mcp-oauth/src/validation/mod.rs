//! JWT access-token validation (RFC 9068, RFC 8725).
//!
//! A [`Validator`] holds one [`IssuerPolicy`] per trusted issuer, each with its own key set,
//! and turns a bearer token into a [`VerifiedToken`] or a [`TokenError`] that says exactly
//! why not. The order of checks is chosen so that nothing expensive happens for a token
//! that fails a cheap check, and nothing is fetched for a token that is not ours:
//!
//! 1. size cap (16 KiB by default), before any decoding; JWE and nested JWTs refused;
//! 2. the header: `alg` (never `none`, never HMAC), no `jku`/`x5u`/`jwk`, no unknown `crit`;
//! 3. `iss` routes to exactly one issuer's policy (keys never cross issuers); `alg` on its
//!    allow-list; `typ` per its [`TypPolicy`];
//! 4. `aud` names this resource; `exp`, `nbf`, `iat` within leeway; no `cnf` binding;
//!    required claims present;
//! 5. only then the key: an unknown `kid` may cause one single-flight refresh;
//! 6. the signature, with the key bound to the header's algorithm.
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

mod claims;
mod error;
mod identity;
mod jws;
mod policy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use error::{Claim, ErrorCode, TokenError};
pub use identity::{TokenFingerprint, VerifiedToken};
pub use policy::{
    IssuerPolicy, IssuerPolicyBuilder, MAX_LEEWAY, PolicyError, RequiredClaims, ScopeClaim,
    ScopeFormat, TypPolicy,
};

use crate::clock::{Clock, SystemClock};
use crate::crypto::Algorithm;
use crate::key_set::{KeyLookupError, KeySetConfigError, KeyUnavailable, RemoteKeySet};
use crate::scopes::ScopeSet;
use crate::token_cache::{CacheEntry, CacheKey, TokenCache, TokenCacheConfig, sha256};
use claims::{ClaimsView, audience_matches};
use identity::Identity;
use jws::Header;

const LOG_TARGET: &str = "mcp_oauth::validation";

/// The default size cap of a token, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Claims whose presence marks an OpenID Connect ID token.
const ID_TOKEN_CLAIMS: [&str; 4] = ["nonce", "at_hash", "c_hash", "s_hash"];

/// Each validator's cache entries carry its own id, so a token accepted under one
/// validator's policies is never served to another.
static NEXT_VALIDATOR_ID: AtomicU64 = AtomicU64::new(1);

/// Why a [`Validator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// No issuer was configured.
    #[error("at least one issuer policy is required")]
    NoIssuer,
    /// Two policies name the same issuer.
    #[error("issuer {0} is configured twice")]
    DuplicateIssuer(String),
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

#[derive(Debug)]
struct Inner {
    id: u64,
    issuers: Vec<Issuer>,
    cache: Option<Arc<TokenCache>>,
    clock: Arc<dyn Clock>,
    max_token_bytes: usize,
    validations: AtomicU64,
    signature_checks: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

#[derive(Debug)]
struct Issuer {
    policy: IssuerPolicy,
    keys: RemoteKeySet,
}

/// Builds a [`Validator`].
#[must_use]
#[derive(Debug)]
pub struct ValidatorBuilder {
    policies: Vec<IssuerPolicy>,
    clock: Arc<dyn Clock>,
    cache: Option<TokenCacheConfig>,
    shared_cache: Option<Arc<TokenCache>>,
    max_token_bytes: usize,
}

impl ValidatorBuilder {
    /// Trusts tokens of this issuer, under this policy. Call once per issuer.
    pub fn issuer(mut self, policy: IssuerPolicy) -> Self {
        self.policies.push(policy);
        self
    }

    /// Reads time from `clock` (tests inject a [`ManualClock`](crate::ManualClock)).
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

    /// The size cap of a token in bytes (default [`DEFAULT_MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Sets up each issuer's key set (nothing is fetched yet).
    pub fn build(self) -> Result<Validator, ValidatorError> {
        if self.policies.is_empty() {
            return Err(ValidatorError::NoIssuer);
        }
        let mut issuers: Vec<Issuer> = Vec::with_capacity(self.policies.len());
        for policy in self.policies {
            if issuers
                .iter()
                .any(|other| other.policy.issuer == policy.issuer)
            {
                return Err(ValidatorError::DuplicateIssuer(policy.issuer));
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
        Ok(Validator {
            inner: Arc::new(Inner {
                id: NEXT_VALIDATOR_ID.fetch_add(1, Ordering::Relaxed),
                issuers,
                cache,
                clock: self.clock,
                max_token_bytes: self.max_token_bytes,
                validations: AtomicU64::new(0),
                signature_checks: AtomicU64::new(0),
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
            clock: Arc::new(SystemClock),
            cache: Some(TokenCacheConfig::default()),
            shared_cache: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Loads every issuer's keys now, so the first request does not wait for a fetch.
    /// Returns the first failure; the validator still works (it retries on demand).
    pub async fn preload(&self) -> Result<(), crate::key_set::KeySetLoadError> {
        for issuer in &self.inner.issuers {
            issuer.keys.load().await?;
        }
        Ok(())
    }

    /// The policies, in configuration order.
    pub fn policies(&self) -> impl Iterator<Item = &IssuerPolicy> {
        self.inner.issuers.iter().map(|issuer| &issuer.policy)
    }

    /// The key set of `issuer`, if configured.
    pub fn key_set(&self, issuer: &str) -> Option<&RemoteKeySet> {
        self.inner
            .issuers
            .iter()
            .find(|i| i.policy.issuer == issuer)
            .map(|i| &i.keys)
    }

    /// The verified-token cache, if on.
    pub fn token_cache(&self) -> Option<&TokenCache> {
        self.inner.cache.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> ValidatorStats {
        let inner = &self.inner;
        ValidatorStats {
            validations: inner.validations.load(Ordering::Relaxed),
            signature_checks: inner.signature_checks.load(Ordering::Relaxed),
            accepted: inner.accepted.load(Ordering::Relaxed),
            refused: inner.refused.load(Ordering::Relaxed),
        }
    }

    /// Validates a bearer token (the credential after `Bearer `).
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let inner = &self.inner;
        inner.validations.fetch_add(1, Ordering::Relaxed);
        let result = self.validate_inner(token).await;
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
        let token_hash = sha256(token.as_bytes());
        let cache_key = CacheKey {
            policy: inner.id,
            token_hash,
        };
        let now = inner.clock.now();
        if let Some(cache) = &inner.cache {
            let hit = cache.get(&cache_key, now, |entry| {
                inner.issuers[entry.issuer_index]
                    .keys
                    .still_has(entry.kid.as_deref(), &entry.key)
            });
            if let Some(entry) = hit {
                return Ok(entry.token.clone());
            }
        }

        let parts = jws::split(token)?;
        let header_bytes = jws::decode(parts.header)?;
        let header = Header::parse(&header_bytes)?;
        let algorithm =
            Algorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        let payload = jws::decode(parts.payload)?;
        let claims = ClaimsView::parse(&payload)?;

        let issuer_name = claims
            .string("iss")?
            .ok_or(TokenError::MissingClaim(Claim::Issuer))?;
        let (issuer_index, issuer) = inner
            .issuers
            .iter()
            .enumerate()
            .find(|(_, issuer)| issuer.policy.issuer == issuer_name)
            .ok_or(TokenError::UnknownIssuer)?;
        let policy = &issuer.policy;
        if !policy.algorithms.contains(algorithm) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        check_typ(policy.typ, header.typ.as_deref(), &claims)?;

        let audiences = claims
            .audiences()?
            .ok_or(TokenError::MissingClaim(Claim::Audience))?;
        let ours = audiences.iter().any(|presented| {
            policy
                .audiences
                .iter()
                .any(|aud| audience_matches(aud, presented))
        });
        if !ours {
            return Err(TokenError::AudienceMismatch);
        }

        let now_secs = now.as_secs();
        let leeway = policy.leeway.as_secs();
        let expires_at = claims
            .numeric_date("exp")?
            .ok_or(TokenError::MissingClaim(Claim::Expiry))?;
        if now_secs >= expires_at.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(not_before) = claims.numeric_date("nbf")?
            && now_secs.saturating_add(leeway) < not_before
        {
            return Err(TokenError::NotYetValid);
        }
        let issued_at = claims.numeric_date("iat")?;
        if issued_at.is_some_and(|iat| iat > now_secs.saturating_add(leeway)) {
            return Err(TokenError::IssuedInFuture);
        }
        if claims.contains("cnf") {
            return Err(TokenError::SenderConstrained);
        }

        let required = policy.required;
        let subject = claims.string("sub")?;
        let jwt_id = claims.string("jti")?;
        let mut client_id = None;
        for name in &policy.client_id_claims {
            if let Some(value) = claims.string(name)? {
                client_id = Some(value);
                break;
            }
        }
        for (claim, present) in [
            (Claim::Subject, subject.is_some()),
            (Claim::ClientId, client_id.is_some()),
            (Claim::IssuedAt, issued_at.is_some()),
            (Claim::JwtId, jwt_id.is_some()),
        ] {
            if required.contains(claim) && !present {
                return Err(TokenError::MissingClaim(claim));
            }
        }
        let scopes = read_scopes(&claims, &policy.scope_claim)?;

        // Only now, for a token that is ours in every cheap respect, may the key lookup
        // cause a fetch (an unknown kid triggers one single-flight refresh).
        let key = issuer
            .keys
            .key_for(header.kid.as_deref(), algorithm)
            .await
            .map_err(|error| match error {
                KeyUnavailable::NotLoaded { retry_after } => {
                    TokenError::KeysUnavailable { retry_after }
                }
                KeyUnavailable::Lookup(KeyLookupError::UnknownKid) => TokenError::UnknownKey,
                KeyUnavailable::Lookup(KeyLookupError::AlgorithmMismatch) => {
                    TokenError::KeyAlgorithmMismatch
                }
            })?;
        let signature = jws::decode(parts.signature)?;
        inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        key.verify(parts.signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::InvalidSignature)?;

        let weight = (payload.len() + token.len() / 4 + 256) as u64;
        let verified = VerifiedToken::new(Identity {
            issuer: issuer_name,
            subject,
            client_id,
            scopes,
            audiences,
            expires_at,
            issued_at,
            jwt_id,
            payload: payload.into_boxed_slice(),
            fingerprint: TokenFingerprint::from_sha256(&token_hash),
        });
        if let Some(cache) = &inner.cache {
            let valid_until =
                Duration::from_secs(expires_at.saturating_add(leeway)).min(now + cache.ttl());
            cache.insert(
                cache_key,
                CacheEntry {
                    token: verified.clone(),
                    issuer_index,
                    kid: header.kid.map(String::into_boxed_str),
                    key,
                    valid_until,
                    weight,
                },
            );
        }
        Ok(verified)
    }
}

fn check_typ(
    policy: TypPolicy,
    typ: Option<&str>,
    claims: &ClaimsView<'_>,
) -> Result<(), TokenError> {
    let is_access_token_type =
        |t: &str| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt");
    match policy {
        TypPolicy::Strict => match typ {
            Some(t) if is_access_token_type(t) => Ok(()),
            _ => Err(TokenError::InvalidType),
        },
        TypPolicy::Lenient => {
            let generic = |t: &str| {
                t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt")
            };
            match typ {
                Some(t) if is_access_token_type(t) => Ok(()),
                None => refuse_id_token(claims),
                Some(t) if generic(t) => refuse_id_token(claims),
                Some(_) => Err(TokenError::InvalidType),
            }
        }
    }
}

fn refuse_id_token(claims: &ClaimsView<'_>) -> Result<(), TokenError> {
    if ID_TOKEN_CLAIMS.iter().any(|name| claims.contains(name)) {
        Err(TokenError::IdToken)
    } else {
        Ok(())
    }
}

fn read_scopes(claims: &ClaimsView<'_>, claim: &ScopeClaim) -> Result<ScopeSet, TokenError> {
    let Some(raw) = claims.get(claim.name()) else {
        return Ok(ScopeSet::new());
    };
    let value: serde_json::Value =
        serde_json::from_str(raw.get()).map_err(|_| TokenError::InvalidClaim)?;
    match (claim.format(), value) {
        (ScopeFormat::SpaceSeparated | ScopeFormat::Either, serde_json::Value::String(text)) => {
            Ok(ScopeSet::from_space_separated(&text))
        }
        (ScopeFormat::Array | ScopeFormat::Either, serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(scope) if !scope.is_empty() && !scope.contains(' ') => {
                    Ok(scope)
                }
                _ => Err(TokenError::InvalidClaim),
            })
            .collect(),
        _ => Err(TokenError::InvalidClaim),
    }
}
