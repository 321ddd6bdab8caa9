//! One DPoP proof JWT (RFC 9449 §4), verified against one request: every check of §4.3
//! except the `jti` replay and the server nonce, which need state and belong to
//! [`DpopVerifier`](super::DpopVerifier). Shared by the resource server (with the access
//! token: `ath` required) and the dev authorization server's token endpoint (without).
//!
//! The checks run cheapest first; the key is only built, and the signature only checked,
//! for a proof that is right in every other respect.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::value::RawValue;

use super::thumbprint::ThumbprintMembers;
use crate::crypto::{
    Algorithm, AlgorithmSet, Curve, KeyType, PublicKeyMaterial, VerifyingKey, base64url_32, sha256,
};
use crate::json::ObjectView;
use crate::token::claims;
use crate::token::jws;

/// The largest proof read (RFC 9449 proofs are well under 2 KiB with an RSA-4096 key).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` remembered (a random id; 96 bits of randomness are plenty).
pub(crate) const MAX_JTI_BYTES: usize = 256;

/// The longest `nonce` read.
pub(crate) const MAX_NONCE_BYTES: usize = 512;

/// Why a proof is refused. Each has a fixed [`description`](Self::description), never with
/// attacker-controlled text, and a stable [`reason`](Self::reason) for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// No `DPoP` header.
    #[error("no DPoP proof")]
    Missing,
    /// More than one `DPoP` header.
    #[error("more than one DPoP proof")]
    Multiple,
    /// Larger than [`MAX_PROOF_BYTES`].
    #[error("DPoP proof too large")]
    TooLarge,
    /// Not a compact JWS with a JSON header and claims (or a duplicate member name, a value
    /// of the wrong type, not visible ASCII).
    #[error("malformed DPoP proof")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not one of the accepted asymmetric algorithms.
    #[error("DPoP proof algorithm not accepted")]
    AlgorithmNotAllowed,
    /// The header has no `jwk`, or one that is not a usable public key for `alg`.
    #[error("DPoP proof key missing or unusable")]
    InvalidKey,
    /// The `jwk` carries private key members.
    #[error("DPoP proof key has private members")]
    PrivateKey,
    /// `crit` names an extension (none is understood).
    #[error("DPoP proof has an unknown critical header")]
    UnknownCritical,
    /// The signature does not verify with the header's key.
    #[error("DPoP proof signature invalid")]
    BadSignature,
    /// A required claim (`jti`, `htm`, `htu`, `iat`, `ath`) is absent.
    #[error("DPoP proof lacks a required claim")]
    MissingClaim,
    /// `htm` is not the request's method.
    #[error("DPoP proof htm does not match the request method")]
    WrongMethod,
    /// `htu` is not the request's URI.
    #[error("DPoP proof htu does not match the request URI")]
    WrongUri,
    /// `iat` is outside the accepted window.
    #[error("DPoP proof iat outside the accepted window")]
    IssuedOutsideWindow,
    /// `ath` is not the hash of the presented access token.
    #[error("DPoP proof ath does not match the access token")]
    WrongAccessTokenHash,
    /// The same proof (`jti` under the same key) was presented before.
    #[error("DPoP proof replayed")]
    Replayed,
}

impl ProofError {
    /// The fixed `error_description` of the challenge.
    pub const fn description(self) -> &'static str {
        match self {
            ProofError::Missing => "A DPoP proof is required",
            ProofError::Multiple => "More than one DPoP proof",
            ProofError::TooLarge => "The DPoP proof is too large",
            ProofError::Malformed => "The DPoP proof is malformed",
            ProofError::WrongType => "The DPoP proof typ must be dpop+jwt",
            ProofError::AlgorithmNotAllowed => "The DPoP proof algorithm is not accepted",
            ProofError::InvalidKey => "The DPoP proof key is missing or unusable",
            ProofError::PrivateKey => "The DPoP proof key must be a public key",
            ProofError::UnknownCritical => "The DPoP proof has an unknown critical header",
            ProofError::BadSignature => "The DPoP proof signature is invalid",
            ProofError::MissingClaim => "The DPoP proof lacks a required claim",
            ProofError::WrongMethod => "The DPoP proof is for another HTTP method",
            ProofError::WrongUri => "The DPoP proof is for another URI",
            ProofError::IssuedOutsideWindow => "The DPoP proof is too old or from the future",
            ProofError::WrongAccessTokenHash => "The DPoP proof is for another access token",
            ProofError::Replayed => "The DPoP proof was already used",
        }
    }

    /// A stable snake_case code for audit logs.
    pub const fn reason(self) -> &'static str {
        match self {
            ProofError::Missing => "dpop_proof_missing",
            ProofError::Multiple => "dpop_proof_multiple",
            ProofError::TooLarge => "dpop_proof_too_large",
            ProofError::Malformed => "dpop_proof_malformed",
            ProofError::WrongType => "dpop_proof_wrong_typ",
            ProofError::AlgorithmNotAllowed => "dpop_proof_algorithm_not_allowed",
            ProofError::InvalidKey => "dpop_proof_invalid_key",
            ProofError::PrivateKey => "dpop_proof_private_key",
            ProofError::UnknownCritical => "dpop_proof_unknown_crit",
            ProofError::BadSignature => "dpop_proof_bad_signature",
            ProofError::MissingClaim => "dpop_proof_missing_claim",
            ProofError::WrongMethod => "dpop_proof_wrong_htm",
            ProofError::WrongUri => "dpop_proof_wrong_htu",
            ProofError::IssuedOutsideWindow => "dpop_proof_iat_outside_window",
            ProofError::WrongAccessTokenHash => "dpop_proof_wrong_ath",
            ProofError::Replayed => "dpop_proof_replayed",
        }
    }
}

/// Proof keys already parsed, by (thumbprint, algorithm): a client signs every proof with one
/// key, and parsing it (an EC point's validation costs about a third of a verification) is
/// then done once. The thumbprint is a SHA-256 over the key's members, so a hit is the same
/// key; the algorithm is part of the entry, so a key is never used with another one.
pub(crate) struct ProofKeyCache {
    keys: quick_cache::sync::Cache<([u8; 32], Algorithm), Arc<VerifyingKey>>,
}

impl ProofKeyCache {
    /// A cache of at most `capacity` keys.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            keys: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }
}

/// How many proof keys a verifier keeps parsed.
pub(crate) const PROOF_KEY_CACHE_CAPACITY: usize = 10_000;

/// What a proof is checked against.
pub(crate) struct ProofRequirements<'a> {
    /// The accepted `alg` values.
    pub algorithms: AlgorithmSet,
    /// The request's method (`htm` is compared exactly: methods are case-sensitive).
    pub method: &'a str,
    /// Whether `htu` names the request's URI.
    pub htu_matches: &'a dyn Fn(&str) -> bool,
    /// Now, Unix seconds.
    pub now: u64,
    /// How far `iat` may be from now, either way, in seconds.
    pub iat_window: u64,
    /// The access token presented with the proof: `ath` must be its hash. `None` at a token
    /// endpoint (no `ath` is read).
    pub access_token: Option<&'a str>,
    /// Where parsed proof keys are kept, if anywhere.
    pub keys: Option<&'a ProofKeyCache>,
}

/// A proof that passed every stateless check.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof key.
    pub thumbprint: [u8; 32],
    /// `jti`.
    pub jti: String,
    /// `iat`, Unix seconds.
    pub issued_at: u64,
    /// `nonce`, when present.
    pub nonce: Option<String>,
}

impl VerifiedProof {
    /// What the replay store remembers this proof by: SHA-256 over the key's thumbprint and
    /// the `jti` (the thumbprint's fixed length keeps the two apart), so one client's `jti`
    /// never collides with another's.
    pub(crate) fn replay_key(&self) -> [u8; 32] {
        let mut input = Vec::with_capacity(32 + self.jti.len());
        input.extend_from_slice(&self.thumbprint);
        input.extend_from_slice(self.jti.as_bytes());
        sha256(&input)
    }

    /// Until when (Unix seconds) the proof must be remembered: until it would fall out of
    /// the `iat` window anyway, inclusive of its last second, so a store with second-granular
    /// expiry never forgets it early.
    pub(crate) fn remember_until(&self, iat_window: u64) -> u64 {
        self.issued_at.saturating_add(iat_window).saturating_add(1)
    }
}

/// Verifies `proof` against `requirements`.
pub(crate) fn verify(
    proof: &str,
    requirements: &ProofRequirements<'_>,
) -> Result<VerifiedProof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge);
    }
    if proof.is_empty() || !proof.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProofError::Malformed);
    }
    let parts = jws::split(proof).map_err(|_| ProofError::Malformed)?;
    let header_bytes = jws::decode(parts.header).map_err(|_| ProofError::Malformed)?;
    if std::str::from_utf8(&header_bytes).is_err() {
        return Err(ProofError::Malformed);
    }
    let header = ObjectView::parse(&header_bytes).ok_or(ProofError::Malformed)?;
    let string = |view: &ObjectView<'_>, name: &str| -> Result<Option<String>, ProofError> {
        view.string(name)
            .map(|s| s.map(Cow::into_owned))
            .map_err(|()| ProofError::Malformed)
    };

    let typ = string(&header, "typ")?.ok_or(ProofError::WrongType)?;
    if !is_dpop_type(&typ) {
        return Err(ProofError::WrongType);
    }
    if let Some(crit) = header.get("crit") {
        return Err(match jws::crit_verdict(crit) {
            jws::Crit::Malformed => ProofError::Malformed,
            jws::Crit::Unknown => ProofError::UnknownCritical,
        });
    }
    // A proof's key is the `jwk` it carries: a key named elsewhere is never fetched.
    if header.get("jku").is_some() || header.get("x5u").is_some() {
        return Err(ProofError::InvalidKey);
    }
    let algorithm = string(&header, "alg")?
        .as_deref()
        .and_then(Algorithm::from_name)
        .filter(|alg| requirements.algorithms.contains(*alg))
        .ok_or(ProofError::AlgorithmNotAllowed)?;
    let jwk = header.get("jwk").ok_or(ProofError::InvalidKey)?;

    let payload_bytes = jws::decode(parts.payload).map_err(|_| ProofError::Malformed)?;
    if std::str::from_utf8(&payload_bytes).is_err() {
        return Err(ProofError::Malformed);
    }
    let claims_view = ObjectView::parse(&payload_bytes).ok_or(ProofError::Malformed)?;
    let jti = string(&claims_view, "jti")?.ok_or(ProofError::MissingClaim)?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(ProofError::Malformed);
    }
    let htm = string(&claims_view, "htm")?.ok_or(ProofError::MissingClaim)?;
    let htu = string(&claims_view, "htu")?.ok_or(ProofError::MissingClaim)?;
    let issued_at = claims::numeric_date(claims_view.get("iat"))
        .map_err(|_| ProofError::Malformed)?
        .ok_or(ProofError::MissingClaim)?;
    let nonce = string(&claims_view, "nonce")?;
    if nonce
        .as_deref()
        .is_some_and(|n| n.is_empty() || n.len() > MAX_NONCE_BYTES)
    {
        return Err(ProofError::Malformed);
    }
    if htm != requirements.method {
        return Err(ProofError::WrongMethod);
    }
    if !(requirements.htu_matches)(&htu) {
        return Err(ProofError::WrongUri);
    }
    if issued_at.abs_diff(requirements.now) > requirements.iat_window {
        return Err(ProofError::IssuedOutsideWindow);
    }
    if let Some(token) = requirements.access_token {
        let ath = string(&claims_view, "ath")?.ok_or(ProofError::MissingClaim)?;
        if base64url_32(&ath) != Some(sha256(token.as_bytes())) {
            return Err(ProofError::WrongAccessTokenHash);
        }
    }

    let (key, thumbprint) = proof_key(jwk, algorithm, requirements.keys)?;
    let mut signature_heap = Vec::new();
    let mut signature_stack = [0u8; 512];
    let signature = jws::decode_into(parts.signature, &mut signature_stack, &mut signature_heap)
        .map_err(|_| ProofError::Malformed)?;
    key.verify(parts.signing_input.as_bytes(), signature)
        .map_err(|_| ProofError::BadSignature)?;
    // Kept only once it verified a proof: junk proofs cannot evict clients' keys.
    if let Some(cache) = requirements.keys {
        cache.keys.insert((thumbprint, algorithm), key);
    }

    Ok(VerifiedProof {
        thumbprint,
        jti,
        issued_at,
        nonce,
    })
}

/// Whether `text` is unpadded base64url text of a possible length (what decoding checks
/// further, the trailing bits, is checked when the key is built).
fn is_base64url(text: &str) -> bool {
    !text.is_empty()
        && text.len() % 4 != 1
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `dpop+jwt`, or its full media type; case-insensitive, as media types are (RFC 7515
/// §4.1.9).
fn is_dpop_type(typ: &str) -> bool {
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case("dpop+jwt")
}

/// Members that only a private (or symmetric) key has: any of them refuses the proof.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The proof's public key for `algorithm`, and its RFC 7638 thumbprint.
fn proof_key(
    jwk: &RawValue,
    algorithm: Algorithm,
    cache: Option<&ProofKeyCache>,
) -> Result<(Arc<VerifyingKey>, [u8; 32]), ProofError> {
    let view = ObjectView::parse_raw(jwk).ok_or(ProofError::InvalidKey)?;
    if PRIVATE_MEMBERS.iter().any(|name| view.get(name).is_some()) {
        return Err(ProofError::PrivateKey);
    }
    let member = |name: &str| -> Result<String, ProofError> {
        match view.string(name) {
            Ok(Some(value)) => Ok(value.into_owned()),
            _ => Err(ProofError::InvalidKey),
        }
    };
    if let Ok(Some(declared)) = view.string("alg")
        && declared != algorithm.name()
    {
        return Err(ProofError::InvalidKey);
    }
    if view.get("alg").is_some() && view.string("alg").is_err() {
        return Err(ProofError::InvalidKey);
    }
    let bytes = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| ProofError::InvalidKey)
    };
    // The members as written, checked to be base64url text (so the thumbprint's JSON needs
    // no escaping and reads one way); the key is decoded and built only when the cache does
    // not have it (a hit is the same text, decoded before).
    let kty = member("kty")?;
    let members: Vec<String> = match (kty.as_str(), algorithm.key_type()) {
        ("RSA", KeyType::Rsa) => {
            let (n, e) = (member("n")?, member("e")?);
            // RFC 7518 §6.3.1: minimal big-endian integers, so that a key has one thumbprint.
            if [&n, &e]
                .iter()
                .any(|value| bytes(value).map_or(true, |b| b.first() == Some(&0)))
            {
                return Err(ProofError::InvalidKey);
            }
            vec![n, e]
        }
        ("EC", KeyType::Ec) => {
            let crv = member("crv")?;
            let curve = match crv.as_str() {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                _ => return Err(ProofError::InvalidKey),
            };
            if curve.algorithm() != algorithm {
                return Err(ProofError::InvalidKey);
            }
            let (x, y) = (member("x")?, member("y")?);
            if !is_base64url(&x) || !is_base64url(&y) {
                return Err(ProofError::InvalidKey);
            }
            vec![crv, x, y]
        }
        ("OKP", KeyType::Okp) => {
            let crv = member("crv")?;
            if crv != "Ed25519" {
                return Err(ProofError::InvalidKey);
            }
            let x = member("x")?;
            if !is_base64url(&x) {
                return Err(ProofError::InvalidKey);
            }
            vec![crv, x]
        }
        _ => return Err(ProofError::InvalidKey),
    };
    let thumbprint = match (kty.as_str(), members.as_slice()) {
        ("RSA", [n, e]) => ThumbprintMembers::Rsa { e, n }.sha256(),
        ("EC", [crv, x, y]) => ThumbprintMembers::Ec { crv, x, y }.sha256(),
        ("OKP", [crv, x]) => ThumbprintMembers::Okp { crv, x }.sha256(),
        _ => return Err(ProofError::InvalidKey),
    };
    if let Some(key) = cache.and_then(|cache| cache.keys.get(&(thumbprint, algorithm))) {
        return Ok((key, thumbprint));
    }
    let key = match (kty.as_str(), members.as_slice()) {
        ("RSA", [n, e]) => VerifyingKey::new(
            algorithm,
            PublicKeyMaterial::Rsa {
                n: &bytes(n)?,
                e: &bytes(e)?,
            },
        ),
        ("EC", [crv, x, y]) => VerifyingKey::new(
            algorithm,
            PublicKeyMaterial::Ec {
                curve: if crv == "P-256" {
                    Curve::P256
                } else {
                    Curve::P384
                },
                x: &bytes(x)?,
                y: &bytes(y)?,
            },
        ),
        ("OKP", [_, x]) => {
            VerifyingKey::new(algorithm, PublicKeyMaterial::Ed25519 { x: &bytes(x)? })
        }
        _ => return Err(ProofError::InvalidKey),
    };
    Ok((
        Arc::new(key.map_err(|_| ProofError::InvalidKey)?),
        thumbprint,
    ))
}
