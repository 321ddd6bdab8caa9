//! The JWT verifier: an access token (RFC 9068) judged by its issuer's policy and verified
//! with that issuer's keys (RFC 8725), its verdict kept in the verified-token cache. A peer of
//! the [introspection](crate::introspection) verifier: both stand on [`crate::token`] and
//! share the [`TokenCache`] type; the [`Validator`](super::Validator) only dispatches.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::policy::{IssuerMatch, IssuerPolicy, IssuerTemplate, TypPolicy};
use crate::clock::Clock;
use crate::crypto::{Algorithm, PrefixSha256, VerifyingKey, sha256};
use crate::key_set::{KeyLookupError, KeyUnavailable, RemoteKeySet};
use crate::token::claims::{self, ClaimsView, Registered, audience_matches};
use crate::token::jws::{self, Compact, Header};
use crate::token::{
    Claim, Identity, Names, TokenError, Verification, VerifiedToken, check_not_before, is_expired,
    read_issued_at, read_scopes,
};
use crate::token_cache::{CacheEntry, CacheKey, SignedBy, TokenCache};

/// A trusted issuer: its policy and its key set. Keys never cross issuers.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub(crate) policy: IssuerPolicy,
    pub(crate) keys: RemoteKeySet,
}

/// The issuers' policies and keys, the verified-token cache, the signature counter.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    /// The validator's id, in every cache key: a token accepted under one validator's
    /// policies is never served to another sharing the cache.
    id: u64,
    issuers: Vec<Issuer>,
    cache: Option<Arc<TokenCache>>,
    clock: Arc<dyn Clock>,
    signature_checks: AtomicU64,
}

impl JwtVerifier {
    pub(crate) fn new(
        id: u64,
        issuers: Vec<Issuer>,
        cache: Option<Arc<TokenCache>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            id,
            issuers,
            cache,
            clock,
            signature_checks: AtomicU64::new(0),
        }
    }

    /// The issuers, in configuration order.
    pub(crate) fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The verified-token cache, if on.
    pub(crate) fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_deref()
    }

    /// The time now, on the validator's clock.
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Signature verifications performed.
    pub(crate) fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// The issuer a token whose (unverified) `iss` is `iss` is judged by: the one with that
    /// exact issuer, else the first issuer template matching it.
    pub(crate) fn route(&self, iss: &str) -> Option<usize> {
        let issuers = &self.issuers;
        issuers
            .iter()
            .position(|i| i.policy.issuer_match == IssuerMatch::Exact && i.policy.issuer == iss)
            .or_else(|| {
                issuers.iter().position(|i| {
                    i.policy.issuer_match != IssuerMatch::Exact && i.policy.matches_issuer(iss)
                })
            })
    }

    /// Verifies a JWT (already within the size cap, not empty): from the cache, or by the
    /// checks of the [module](super) documentation, cheapest first.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        // The one clock read of a validation: the cache, the key set and the claims are all
        // judged at this instant.
        let now = self.clock.now();
        // SHA-256 of the token: the cache key, and the identity's fingerprint. With the cache
        // off it is computed in one pass with the SHA-256 of `header.payload`, which RS256,
        // PS256 and ES256 sign (see `check_signature` below), and only for a token that reached
        // its signature check. With the cache on the whole token is hashed at once: a hit must
        // not pay for finding `header.payload` (the last dot: ≈ 60 ns on a 1 KiB token, a tenth
        // of the hit), so a miss hashes `header.payload` again.
        let mut token_hash = None;
        if let Some(cache) = &self.cache {
            let hash = sha256(token.as_bytes());
            let cache_key = CacheKey {
                policy: self.id,
                token_hash: hash,
            };
            let hit = cache.get(&cache_key, now, |entry| {
                entry.signed_by.as_ref().is_some_and(|signed_by| {
                    self.issuers[signed_by.issuer_index].keys.still_has_at(
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
        // Boxed: the checks hold their decoding buffers across the key lookup (≈ 2.5 KiB), and
        // the HTTP layer nests this future in its own per-request one, where each level of
        // nesting copied it again. A cache hit now costs the layer none of it; a miss one
        // allocation beside a signature check.
        Box::pin(self.verify_uncached(token, now, token_hash)).await
    }

    /// [`verify`](Self::verify) past the cache: `token_hash` is the token's SHA-256 when the
    /// cache computed it.
    async fn verify_uncached(
        &self,
        token: &str,
        now: Duration,
        token_hash: Option<[u8; 32]>,
    ) -> Result<VerifiedToken, TokenError> {
        let parts = jws::split(token)?;
        let (mut header_stack, mut header_heap) = ([0; 512], Vec::new());
        let header_bytes = jws::decode_into(parts.header, &mut header_stack, &mut header_heap)?;
        let header = Header::parse(header_bytes)?;
        let algorithm = header_algorithm(&header)?;
        let payload = jws::decode(parts.payload)?;
        let claims = ClaimsView::parse(&payload)?;
        let registered = &claims.registered;

        let issuer_name = read_issuer(registered)?;
        let issuer_index = self.route(&issuer_name).ok_or(TokenError::UnknownIssuer)?;
        let issuer = &self.issuers[issuer_index];
        let policy = &issuer.policy;
        check_issuer_match(policy, &claims, &issuer_name)?;
        check_algorithm_allowed(policy, algorithm)?;
        check_typ(policy.typ, header.typ.as_deref(), registered)?;

        let audiences = read_audiences(registered)?;
        check_audience(policy, &audiences)?;

        let now_secs = now.as_secs();
        let leeway = policy.leeway.as_secs();
        let expires_at = read_expiry(registered)?;
        check_expiry(expires_at, now_secs, leeway)?;
        check_not_before(registered.nbf, now_secs, leeway)?;
        let issued_at = read_issued_at(registered.iat, now_secs, leeway)?;
        // A binding is kept, not judged: the validator refuses a bound token presented as a
        // bearer token, and the DPoP verifier checks the proof against it.
        let dpop_jkt = claims::dpop_confirmation(registered.cnf)?;

        let subject = claims::string(registered.sub)?;
        let jwt_id = claims::string(registered.jti)?;
        let client_id = read_client_id(policy, &claims)?;
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
            .map_err(key_error)?;
        // The lookup may have waited for a fetch (up to its timeout): a token that expired
        // meanwhile is refused as expired, not accepted on the time read before the wait.
        check_expiry(expires_at, self.clock.now().as_secs(), leeway)?;
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let signing_input_hash = PrefixSha256::new(parts.signing_input.as_bytes());
        check_signature(&key, &parts, &signing_input_hash, signature)?;

        // The fingerprint is the first 8 bytes of the token's SHA-256, whether or not the
        // cache needed the hash: the same token has the same fingerprint in every log and
        // audit event (`TokenFingerprint::of`), and a cheaper keyed or truncated hash would
        // break that. With the cache off it continues the hash of `header.payload` over
        // `.signature`, and only accepted tokens pay for that part (a refused one is
        // fingerprinted by the debug log alone, when that log is on).
        let token_hash = token_hash.unwrap_or_else(|| {
            signing_input_hash.then(&token.as_bytes()[parts.signing_input.len()..])
        });
        let weight = (payload.len() + token.len() / 4 + 256) as u64;
        let names = Names::new(
            &issuer_name,
            subject.as_deref(),
            client_id.as_deref(),
            jwt_id.as_deref(),
            username.as_deref(),
        );
        let verified = VerifiedToken::new(Identity {
            names,
            scopes,
            // Read again from the payload if asked for (`VerifiedToken::audiences`).
            audiences: OnceLock::new(),
            expires_at,
            issued_at,
            verification: Verification::Signature,
            token_hash,
            dpop_jkt,
            principal: OnceLock::new(),
            payload: {
                drop(claims);
                payload.into_boxed_slice()
            },
        });
        if let Some(cache) = &self.cache {
            let valid_until = Duration::from_secs(expires_at.saturating_add(leeway))
                .min(now.saturating_add(cache.ttl()));
            cache.insert(
                CacheKey {
                    policy: self.id,
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

// The rules of a JWT access token, one function each: `verify` above applies them in order and
// stops at the first refusal; `diagnose` applies every one it can and reports each verdict.

/// The header's `alg` as an algorithm this crate verifies (never `none`, never HMAC).
#[inline]
pub(super) fn header_algorithm(header: &Header<'_>) -> Result<Algorithm, TokenError> {
    Algorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)
}

/// `iss`, required, a string.
#[inline]
pub(super) fn read_issuer<'a>(registered: &Registered<'a>) -> Result<Cow<'a, str>, TokenError> {
    claims::string(registered.iss)?.ok_or(TokenError::MissingClaim(Claim::Issuer))
}

/// For a template policy, the tenant rules of [`check_tenant`]; an exact policy has none.
#[inline]
pub(super) fn check_issuer_match(
    policy: &IssuerPolicy,
    claims: &ClaimsView<'_>,
    iss: &str,
) -> Result<(), TokenError> {
    match &policy.issuer_match {
        IssuerMatch::Exact => Ok(()),
        IssuerMatch::Template {
            template,
            tenant_claim,
            allowed_tenants,
        } => check_tenant(
            claims,
            template,
            tenant_claim,
            allowed_tenants.as_deref(),
            iss,
        ),
    }
}

/// `alg` on the policy's allow-list.
#[inline]
pub(super) fn check_algorithm_allowed(
    policy: &IssuerPolicy,
    algorithm: Algorithm,
) -> Result<(), TokenError> {
    if policy.algorithms.contains(algorithm) {
        Ok(())
    } else {
        Err(TokenError::AlgorithmNotAllowed)
    }
}

/// `aud`, required: a string or an array of strings.
#[inline]
pub(super) fn read_audiences<'a>(
    registered: &Registered<'a>,
) -> Result<Vec<Cow<'a, str>>, TokenError> {
    claims::audiences(registered.aud)?.ok_or(TokenError::MissingClaim(Claim::Audience))
}

/// Some audience of the token names one of the policy's.
#[inline]
pub(super) fn check_audience(
    policy: &IssuerPolicy,
    audiences: &[Cow<'_, str>],
) -> Result<(), TokenError> {
    let ours = audiences.iter().any(|presented| {
        policy
            .audiences
            .iter()
            .any(|aud| audience_matches(aud, presented))
    });
    if ours {
        Ok(())
    } else {
        Err(TokenError::AudienceMismatch)
    }
}

/// `exp`, required, a NumericDate.
#[inline]
pub(super) fn read_expiry(registered: &Registered<'_>) -> Result<u64, TokenError> {
    claims::numeric_date(registered.exp)?.ok_or(TokenError::MissingClaim(Claim::Expiry))
}

/// Refused from `exp + leeway` on.
#[inline]
pub(super) fn check_expiry(expires_at: u64, now_secs: u64, leeway: u64) -> Result<(), TokenError> {
    if is_expired(expires_at, now_secs, leeway) {
        Err(TokenError::Expired)
    } else {
        Ok(())
    }
}

/// The client id: the first of the policy's client-id claims present (each, when present,
/// a string).
#[inline]
pub(super) fn read_client_id<'a>(
    policy: &IssuerPolicy,
    claims: &ClaimsView<'a>,
) -> Result<Option<Cow<'a, str>>, TokenError> {
    for name in &policy.client_id_claims {
        if let Some(value) = claims.string(name)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Why no key could be had, as the refusal it is.
pub(super) fn key_error(error: KeyUnavailable) -> TokenError {
    match error {
        KeyUnavailable::NotLoaded { retry_after } => TokenError::KeysUnavailable { retry_after },
        KeyUnavailable::Lookup(KeyLookupError::UnknownKid) => TokenError::UnknownKey,
        KeyUnavailable::RefreshPending { retry_after } => {
            TokenError::UnknownKeyRetryLater { retry_after }
        }
        KeyUnavailable::Lookup(KeyLookupError::AlgorithmMismatch) => {
            TokenError::KeyAlgorithmMismatch
        }
    }
}

/// The signature over `header.payload`, with the key bound to the header's algorithm.
/// `signing_input_hash` is the SHA-256 of this token's `header.payload`: for the algorithms
/// that sign that digest (RS256, PS256, ES256) it is verified from it, without hashing the
/// signing input again; the others hash it with their own digest.
#[inline]
pub(super) fn check_signature(
    key: &VerifyingKey,
    parts: &Compact<'_>,
    signing_input_hash: &PrefixSha256,
    signature: &[u8],
) -> Result<(), TokenError> {
    let verdict = if key.algorithm().signs_sha256()
        && signing_input_hash.len() == parts.signing_input.len()
    {
        key.verify_sha256_digest(&signing_input_hash.digest(), signature)
    } else {
        key.verify(parts.signing_input.as_bytes(), signature)
    };
    verdict.map_err(|_| TokenError::InvalidSignature)
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

/// `typ` as the policy wants it; under a lenient policy, an ID token is refused by its claims.
#[inline]
pub(super) fn check_typ(
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
