//! Why a token was refused.

use std::time::Duration;

/// A claim the policy can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Claim {
    /// `iss`: always required.
    Issuer,
    /// `exp`: always required.
    Expiry,
    /// `aud`: always required (MCP requires the audience check, RFC 8707).
    Audience,
    /// `sub`.
    Subject,
    /// `client_id` (or the policy's configured client-id claims).
    ClientId,
    /// `iat`.
    IssuedAt,
    /// `jti`.
    JwtId,
}

impl Claim {
    /// The claim's JWT name.
    pub const fn name(self) -> &'static str {
        match self {
            Claim::Issuer => "iss",
            Claim::Expiry => "exp",
            Claim::Audience => "aud",
            Claim::Subject => "sub",
            Claim::ClientId => "client_id",
            Claim::IssuedAt => "iat",
            Claim::JwtId => "jti",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The RFC 6750 (and RFC 6749) error code a refusal maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `invalid_request`: HTTP 400.
    InvalidRequest,
    /// `invalid_token`: HTTP 401.
    InvalidToken,
    /// `insufficient_scope`: HTTP 403.
    InsufficientScope,
    /// `temporarily_unavailable`: HTTP 503 with `Retry-After`; the token was not judged.
    TemporarilyUnavailable,
    /// `invalid_dpop_proof` (RFC 9449 §7.1): HTTP 401, the DPoP proof is refused.
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §9): HTTP 401 with a `DPoP-Nonce` header.
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as it appears in a challenge's `error=` parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => 401,
        }
    }
}

/// Why a token was refused.
///
/// Every variant maps to an [`ErrorCode`] and has a short, fixed
/// [`description`](TokenError::description) that never contains attacker-controlled text
/// (no `kid`, no claim values), and a stable [`reason`](TokenError::reason) code for audit logs.
///
/// ```
/// use mcp_oauth::validation::{ErrorCode, TokenError};
///
/// let error = TokenError::Expired;
/// assert_eq!(error.error_code(), ErrorCode::InvalidToken);
/// assert_eq!(error.error_code().status(), 401);
/// assert_eq!(error.reason(), "expired");
/// assert_eq!(error.description(), "The access token expired");
///
/// // A token that could not be judged is not refused as invalid: 503, retry later, and
/// // not the client's failure.
/// let unavailable = TokenError::IntrospectionUnavailable { retry_after: std::time::Duration::from_secs(5) };
/// assert_eq!(unavailable.error_code().status(), 503);
/// assert_eq!(unavailable.retry_after(), Some(std::time::Duration::from_secs(5)));
/// assert!(!unavailable.counts_as_failed_authentication());
/// assert!(error.counts_as_failed_authentication());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum (16 KiB by default); nothing was decoded.
    #[error("token too large")]
    TooLarge,
    /// Not a compact JWS: wrong segment count, bad base64url, bad JSON, duplicate members.
    #[error("malformed token")]
    Malformed,
    /// A JWE (five segments): encrypted tokens are not accepted.
    #[error("encrypted tokens are not accepted")]
    Encrypted,
    /// A nested JWT (`cty: JWT`).
    #[error("nested tokens are not accepted")]
    Nested,
    /// `alg` is `none`, an HMAC algorithm, or unknown.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// `alg` is valid but outside this issuer's allow-list.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The `typ` header does not satisfy the policy (strict: `at+jwt`).
    #[error("wrong token type")]
    InvalidType,
    /// An OpenID Connect ID token presented as an access token.
    #[error("an ID token is not an access token")]
    IdToken,
    /// The header lists a `crit` extension this implementation does not understand.
    #[error("unknown critical header")]
    UnknownCriticalHeader,
    /// The header carries `jku`, `x5u` or `jwk`: key references in a token are never trusted.
    #[error("embedded key reference")]
    EmbeddedKeyReference,
    /// `iss` names no trusted issuer; or, for an issuer template, the token's tenant claim
    /// does not name the tenant of its `iss`; or an introspection response names another
    /// issuer than the endpoint's.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// `iss` matches an issuer template, but its tenant is not on the policy's allow-list.
    #[error("tenant not allowed")]
    TenantNotAllowed,
    /// `aud` does not name this resource.
    #[error("audience mismatch")]
    AudienceMismatch,
    /// At or after `exp` (plus leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` (minus leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` lies in the future (beyond leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// A required claim is absent.
    #[error("missing claim {}", .0.name())]
    MissingClaim(Claim),
    /// A claim has the wrong type or an impossible value.
    #[error("invalid claim")]
    InvalidClaim,
    /// A sender-constrained (`cnf`) token presented as a bearer token, or bound by a method
    /// this crate cannot verify (mTLS `x5t#S256`): not accepted. A DPoP-bound token
    /// (`cnf.jkt`) is accepted only with the `DPoP` scheme and its proof ([`crate::dpop`]).
    #[error("sender-constrained token")]
    SenderConstrained,
    /// No key of the issuer has this `kid`: not after a refresh made for it, nor in a set
    /// fetched successfully within the [unknown-kid cooldown](crate::key_set::KeySetConfig::unknown_kid_cooldown).
    #[error("unknown key")]
    UnknownKey,
    /// No key has this `kid` and no refresh of the key set has succeeded since the
    /// unknown-kid cooldown began (the refresh made for it failed: the issuer is down or
    /// serves garbage). The key may be one the issuer has just started using: the token is
    /// not condemned; the HTTP layer answers 503 with `Retry-After`. It still
    /// [counts as a failed authentication](TokenError::counts_as_failed_authentication):
    /// a made-up kid costs the client as much as any other forged token.
    #[error("unknown key, refresh pending")]
    UnknownKeyRetryLater {
        /// When a refresh may be made.
        retry_after: Duration,
    },
    /// The key named by `kid` is bound to another algorithm than the header's `alg`.
    #[error("key algorithm mismatch")]
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// The issuer's keys have never loaded (or are too stale): retry later. The token was
    /// not judged; the HTTP layer answers 503 with `Retry-After`.
    #[error("signing keys unavailable")]
    KeysUnavailable {
        /// When to retry.
        retry_after: Duration,
    },
    /// The introspection endpoint (RFC 7662) answered `active: false`: revoked, expired,
    /// unknown, or not a token of this authorization server.
    #[error("token not active")]
    Inactive,
    /// The token verified, but it was revoked before its `exp` (by its `jti` or its hash;
    /// see [`Revocations`](crate::revocation::Revocations)).
    #[error("token revoked")]
    Revoked,
    /// The introspection endpoint could not judge the token: unreachable, timed out, an error
    /// status, a response that is not an RFC 7662 answer, or too many calls in flight. The
    /// token was not judged; the HTTP layer answers 503 with `Retry-After`.
    #[error("token introspection unavailable")]
    IntrospectionUnavailable {
        /// When to retry.
        retry_after: Duration,
    },
}

impl TokenError {
    /// The RFC 6750 error code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TokenError::KeysUnavailable { .. }
            | TokenError::IntrospectionUnavailable { .. }
            | TokenError::UnknownKeyRetryLater { .. } => ErrorCode::TemporarilyUnavailable,
            _ => ErrorCode::InvalidToken,
        }
    }

    /// When to retry, for errors that did not judge the token ([`ErrorCode::TemporarilyUnavailable`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TokenError::KeysUnavailable { retry_after }
            | TokenError::IntrospectionUnavailable { retry_after }
            | TokenError::UnknownKeyRetryLater { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the refusal is charged to the client's failed-authentication budget (the
    /// HTTP layer's per-address limit on failed attempts).
    ///
    /// `true` for every refusal caused by the token: every `invalid_token`, and also
    /// [`UnknownKeyRetryLater`](TokenError::UnknownKeyRetryLater), the 503 for a kid that
    /// could not be looked up because the key set could not be refreshed: a stream of
    /// made-up kids must cost as much while the issuer is down as at any other time.
    ///
    /// `false` for the refusals that did not judge the token at all, whoever sent it:
    /// [`KeysUnavailable`](TokenError::KeysUnavailable) (the issuer's keys never loaded, or
    /// are staler than allowed) and [`IntrospectionUnavailable`](TokenError::IntrospectionUnavailable)
    /// (the introspection endpoint could not answer). Charging those would lock honest
    /// clients out for an outage that is not theirs.
    ///
    /// ```
    /// use mcp_oauth::validation::TokenError;
    /// use std::time::Duration;
    ///
    /// assert!(TokenError::InvalidSignature.counts_as_failed_authentication());
    /// // 503, yet charged: the kid is unknown and the issuer could not be asked.
    /// let unknown_kid = TokenError::UnknownKeyRetryLater { retry_after: Duration::from_secs(5) };
    /// assert_eq!(unknown_kid.error_code().status(), 503);
    /// assert!(unknown_kid.counts_as_failed_authentication());
    /// // 503, not charged: no token could have been judged.
    /// let down = TokenError::KeysUnavailable { retry_after: Duration::from_secs(5) };
    /// assert!(!down.counts_as_failed_authentication());
    /// ```
    pub fn counts_as_failed_authentication(&self) -> bool {
        !matches!(
            self,
            TokenError::KeysUnavailable { .. } | TokenError::IntrospectionUnavailable { .. }
        )
    }

    /// A stable snake_case code for audit logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::Encrypted => "encrypted",
            TokenError::Nested => "nested",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenError::InvalidType => "invalid_type",
            TokenError::IdToken => "id_token",
            TokenError::UnknownCriticalHeader => "unknown_crit",
            TokenError::EmbeddedKeyReference => "embedded_key_reference",
            TokenError::UnknownIssuer => "unknown_issuer",
            TokenError::TenantNotAllowed => "tenant_not_allowed",
            TokenError::AudienceMismatch => "audience_mismatch",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim => "invalid_claim",
            TokenError::SenderConstrained => "sender_constrained",
            TokenError::UnknownKey => "unknown_key",
            TokenError::UnknownKeyRetryLater { .. } => "unknown_key_refresh_pending",
            TokenError::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            TokenError::InvalidSignature => "invalid_signature",
            TokenError::KeysUnavailable { .. } => "keys_unavailable",
            TokenError::Inactive => "inactive",
            TokenError::Revoked => "revoked",
            TokenError::IntrospectionUnavailable { .. } => "introspection_unavailable",
        }
    }

    /// A short, fixed, human-readable description, safe for an `error_description`:
    /// printable ASCII without `"`, `\` or `=`, and no text taken from the token.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "The access token is too large",
            TokenError::Malformed => "The access token is malformed",
            TokenError::Encrypted => "Encrypted access tokens are not accepted",
            TokenError::Nested => "Nested access tokens are not accepted",
            TokenError::UnsupportedAlgorithm => "The token signing algorithm is not supported",
            TokenError::AlgorithmNotAllowed => "The token signing algorithm is not allowed",
            TokenError::InvalidType => "The token is not an access token of the expected type",
            TokenError::IdToken => "An ID token is not an access token",
            TokenError::UnknownCriticalHeader => "The token has an unsupported critical header",
            TokenError::EmbeddedKeyReference => {
                "Tokens that reference their own keys are not accepted"
            }
            TokenError::UnknownIssuer => "The token issuer is not trusted",
            TokenError::TenantNotAllowed => "The token tenant is not allowed",
            TokenError::AudienceMismatch => "The token was not issued for this resource",
            TokenError::Expired => "The access token expired",
            TokenError::NotYetValid => "The access token is not valid yet",
            TokenError::IssuedInFuture => "The access token was issued in the future",
            TokenError::MissingClaim(claim) => match claim {
                Claim::Issuer => "The access token has no issuer",
                Claim::Expiry => "The access token has no expiry",
                Claim::Audience => "The access token has no audience",
                Claim::Subject => "The access token has no subject",
                Claim::ClientId => "The access token has no client id",
                Claim::IssuedAt => "The access token has no issue time",
                Claim::JwtId => "The access token has no token id",
            },
            TokenError::InvalidClaim => "The access token has an invalid claim",
            TokenError::SenderConstrained => {
                "Sender-constrained tokens are not accepted as bearer tokens"
            }
            TokenError::UnknownKey => "The token signing key is unknown",
            TokenError::UnknownKeyRetryLater { .. } => {
                "The token signing key is not known yet; retry later"
            }
            TokenError::KeyAlgorithmMismatch => {
                "The token signing algorithm does not match its key"
            }
            TokenError::InvalidSignature => "The token signature is invalid",
            TokenError::KeysUnavailable { .. } => "The authorization server keys are unavailable",
            TokenError::Inactive => "The access token is not active",
            TokenError::Revoked => "The access token was revoked",
            TokenError::IntrospectionUnavailable { .. } => {
                "The token introspection service is unavailable"
            }
        }
    }
}
