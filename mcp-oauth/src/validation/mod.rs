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

mod policy;
pub mod profile;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::token::{
    Claim, ErrorCode, MAX_LEEWAY, RequiredClaims, ScopeClaim, ScopeFormat, TokenError,
    TokenFingerprint, Verification, VerifiedToken,
};
pub use policy::{
    IssuerPolicy, IssuerPolicyBuilder, IssuerTemplate, PolicyError, TENANT_PLACEHOLDER, TypPolicy,
};
pub use profile::{ENTRA_ORGANIZATIONS_V2, EntraTenant, EntraVersion, Profile};

use crate::clock::{Clock, SystemClock};
use crate::crypto::Algorithm;
use crate::crypto::sha256;
use crate::introspection::{Introspection, IntrospectionConfigError, Introspector};
use crate::key_set::{KeyLookupError, KeySetConfigError, KeyUnavailable, RemoteKeySet};
use crate::token::claims::{self, ClaimsView, Registered, audience_matches};
use crate::token::jws::{self, Header};
use crate::token::{Identity, check_not_before, is_expired, read_issued_at, read_scopes};
use crate::token_cache::{CacheEntry, CacheKey, SignedBy, TokenCache, TokenCacheConfig};
use policy::IssuerMatch;

const LOG_TARGET: &str = "mcp_oauth::validation";

/// Whether audience `presented` names `configured` (scheme and host case-insensitive), for
/// the layer's start-up check of its resource against the validator's audiences.
#[cfg(feature = "layer")]
pub(crate) fn audience_names(configured: &str, presented: &str) -> bool {
    claims::audience_matches(configured, presented)
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
    introspector: Option<Introspector>,
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
    introspection: Option<Introspection>,
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

    /// Also accepts opaque tokens through one RFC 7662 introspection endpoint (a second
    /// verifier in the same chain; see [`Introspection`]). JWT-shaped tokens still go to the
    /// issuer policies unless the introspection's [mode](crate::introspection::IntrospectionMode)
    /// says otherwise. Calling it again replaces the endpoint: there is only ever one, so an
    /// opaque token is never sent to more than one authorization server.
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
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
                id,
                issuers,
                introspector,
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
            introspection: None,
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

    /// The key set of `issuer`: the policy a token naming `iss` = `issuer` is routed to (an
    /// exact issuer, else a template matching it), or the template policy advertising
    /// `issuer`.
    pub fn key_set(&self, issuer: &str) -> Option<&RemoteKeySet> {
        self.route(issuer)
            .or_else(|| {
                self.inner
                    .issuers
                    .iter()
                    .position(|i| i.policy.issuer == issuer)
            })
            .map(|index| &self.inner.issuers[index].keys)
    }

    /// The policy a token whose (unverified) `iss` is `iss` is judged by: the one for that
    /// exact issuer, else the first issuer template matching it. Keys never cross policies.
    pub fn policy_for(&self, iss: &str) -> Option<&IssuerPolicy> {
        self.route(iss)
            .map(|index| &self.inner.issuers[index].policy)
    }

    fn route(&self, iss: &str) -> Option<usize> {
        let issuers = &self.inner.issuers;
        issuers
            .iter()
            .position(|i| i.policy.issuer_match == IssuerMatch::Exact && i.policy.issuer == iss)
            .or_else(|| {
                issuers.iter().position(|i| {
                    i.policy.issuer_match != IssuerMatch::Exact && i.policy.matches_issuer(iss)
                })
            })
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
        if token.is_empty() {
            return Err(TokenError::Malformed);
        }
        // Opaque tokens (and, when so configured, the introspection issuer's JWTs) go to the
        // one introspection endpoint, with its own cache; they never enter the JWT path.
        if let Some(introspector) = &inner.introspector
            && introspector.handles(token)
        {
            return introspector
                .introspect(token, sha256(token.as_bytes()))
                .await;
        }
        // The one clock read of a validation: the cache, the key set and the claims are all
        // judged at this instant.
        let now = inner.clock.now();
        // SHA-256 of the token: the cache key, and the identity's fingerprint. With the cache
        // off it is computed only for a token that verified (see `fingerprint` below).
        let mut token_hash = None;
        if let Some(cache) = &inner.cache {
            let hash = sha256(token.as_bytes());
            let cache_key = CacheKey {
                policy: inner.id,
                token_hash: hash,
            };
            let hit = cache.get(&cache_key, now, |entry| {
                entry.signed_by.as_ref().is_some_and(|signed_by| {
                    inner.issuers[signed_by.issuer_index].keys.still_has_at(
                        signed_by.kid.as_deref(),
                        &signed_by.key,
                        now,
                    )
                })
            });
            if let Some(entry) = hit {
                return entry.answer.clone();
            }
            token_hash = Some(hash);
        }

        let parts = jws::split(token)?;
        let (mut header_stack, mut header_heap) = ([0; 512], Vec::new());
        let header_bytes = jws::decode_into(parts.header, &mut header_stack, &mut header_heap)?;
        let header = Header::parse(header_bytes)?;
        let algorithm =
            Algorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        let payload = jws::decode(parts.payload)?;
        let claims = ClaimsView::parse(&payload)?;
        let registered = &claims.registered;

        let issuer_name =
            claims::string(registered.iss)?.ok_or(TokenError::MissingClaim(Claim::Issuer))?;
        let issuer_index = self.route(&issuer_name).ok_or(TokenError::UnknownIssuer)?;
        let issuer = &inner.issuers[issuer_index];
        let policy = &issuer.policy;
        if let IssuerMatch::Template {
            template,
            tenant_claim,
            allowed_tenants,
        } = &policy.issuer_match
        {
            check_tenant(
                &claims,
                template,
                tenant_claim,
                allowed_tenants.as_deref(),
                &issuer_name,
            )?;
        }
        if !policy.algorithms.contains(algorithm) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        check_typ(policy.typ, header.typ.as_deref(), registered)?;

        let audiences =
            claims::audiences(registered.aud)?.ok_or(TokenError::MissingClaim(Claim::Audience))?;
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
        let expires_at =
            claims::numeric_date(registered.exp)?.ok_or(TokenError::MissingClaim(Claim::Expiry))?;
        if is_expired(expires_at, now_secs, leeway) {
            return Err(TokenError::Expired);
        }
        check_not_before(registered.nbf, now_secs, leeway)?;
        let issued_at = read_issued_at(registered.iat, now_secs, leeway)?;
        if registered.cnf.is_some() {
            return Err(TokenError::SenderConstrained);
        }

        let subject = claims::string(registered.sub)?;
        let jwt_id = claims::string(registered.jti)?;
        let mut client_id = None;
        for name in &policy.client_id_claims {
            if let Some(value) = claims.string(name)? {
                client_id = Some(value);
                break;
            }
        }
        policy.required.check([
            (Claim::Subject, subject.is_some()),
            (Claim::ClientId, client_id.is_some()),
            (Claim::IssuedAt, issued_at.is_some()),
            (Claim::JwtId, jwt_id.is_some()),
        ])?;
        let scopes = read_scopes(&claims, &policy.scope_claims)?;
        // Informational: a `username` of another type is ignored rather than refused.
        let username = claims::string(registered.username).ok().flatten();

        // The signature must at least be base64url before it may cost a key fetch.
        let (mut signature_stack, mut signature_heap) = ([0; 512], Vec::new());
        let signature =
            jws::decode_into(parts.signature, &mut signature_stack, &mut signature_heap)?;

        // Only now, for a token that is ours in every cheap respect, may the key lookup
        // cause a fetch (an unknown kid triggers one single-flight refresh).
        let key = issuer
            .keys
            .key_for_at(header.kid.as_deref(), algorithm, now)
            .await
            .map_err(|error| match error {
                KeyUnavailable::NotLoaded { retry_after } => {
                    TokenError::KeysUnavailable { retry_after }
                }
                KeyUnavailable::Lookup(KeyLookupError::UnknownKid) => TokenError::UnknownKey,
                KeyUnavailable::RefreshPending { retry_after } => {
                    TokenError::UnknownKeyRetryLater { retry_after }
                }
                KeyUnavailable::Lookup(KeyLookupError::AlgorithmMismatch) => {
                    TokenError::KeyAlgorithmMismatch
                }
            })?;
        // The lookup may have waited for a fetch (up to its timeout): a token that expired
        // meanwhile is refused as expired, not accepted on the time read before the wait.
        if is_expired(expires_at, inner.clock.now().as_secs(), leeway) {
            return Err(TokenError::Expired);
        }
        inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        key.verify(parts.signing_input.as_bytes(), signature)
            .map_err(|_| TokenError::InvalidSignature)?;

        // The fingerprint is the first 8 bytes of the token's SHA-256, whether or not the
        // cache needed the hash: the same token has the same fingerprint in every log and
        // audit event (`TokenFingerprint::of`), and a cheaper keyed or truncated hash would
        // break that. With the cache off only accepted tokens pay for it (a refused one is
        // fingerprinted by the debug log alone, when that log is on).
        let token_hash = token_hash.unwrap_or_else(|| sha256(token.as_bytes()));
        let weight = (payload.len() + token.len() / 4 + 256) as u64;
        let verified = VerifiedToken::new(Identity {
            issuer: issuer_name.into_owned(),
            subject: subject.map(Cow::into_owned),
            client_id: client_id.map(Cow::into_owned),
            scopes,
            audiences: audiences.into_iter().map(Cow::into_owned).collect(),
            expires_at,
            issued_at,
            jwt_id: jwt_id.map(Cow::into_owned),
            username: username.map(Cow::into_owned),
            verification: Verification::Signature,
            fingerprint: TokenFingerprint::from_sha256(&token_hash),
            payload: {
                drop(claims);
                payload.into_boxed_slice()
            },
        });
        if let Some(cache) = &inner.cache {
            let valid_until = Duration::from_secs(expires_at.saturating_add(leeway))
                .min(now.saturating_add(cache.ttl()));
            cache.insert(
                CacheKey {
                    policy: inner.id,
                    token_hash,
                },
                CacheEntry {
                    answer: Ok(verified.clone()),
                    signed_by: Some(SignedBy {
                        issuer_index,
                        kid: header.kid.map(|kid| Box::from(kid.as_ref())),
                        key: key.shared().clone(),
                    }),
                    valid_until,
                    weight,
                },
            );
        }
        Ok(verified)
    }
}

/// For a template policy: the token's tenant claim must name the tenant of its `iss`, and
/// that tenant must be allowed.
fn check_tenant(
    claims: &ClaimsView<'_>,
    template: &IssuerTemplate,
    tenant_claim: &str,
    allowed: Option<&[String]>,
    iss: &str,
) -> Result<(), TokenError> {
    let tenant = template.tenant_of(iss).ok_or(TokenError::UnknownIssuer)?;
    if claims.string(tenant_claim)?.as_deref() != Some(tenant) {
        return Err(TokenError::UnknownIssuer);
    }
    match allowed {
        Some(tenants) if !tenants.iter().any(|t| t.eq_ignore_ascii_case(tenant)) => {
            Err(TokenError::TenantNotAllowed)
        }
        _ => Ok(()),
    }
}

fn check_typ(
    policy: TypPolicy,
    typ: Option<&str>,
    claims: &Registered<'_>,
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

fn refuse_id_token(claims: &Registered<'_>) -> Result<(), TokenError> {
    if claims.id_token_claim {
        Err(TokenError::IdToken)
    } else {
        Ok(())
    }
}
