//! The rules every verifier applies to a token's claims, whatever carried them (a JWT's
//! payload or an introspection response): the time window with its leeway, the claims a
//! policy requires, and where the scopes live.

use std::time::Duration;

use serde_json::value::RawValue;

use super::claims::{self, ClaimsView};
use super::error::{Claim, TokenError};
use crate::json;
use crate::scopes::ScopeSet;

/// The largest leeway a policy accepts: clock skew beyond this is a broken clock, not skew.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Whether a token whose `exp` is `expires_at` (seconds since the epoch) is expired at
/// `now_secs`: it is from `exp + leeway` on.
pub(crate) fn is_expired(expires_at: u64, now_secs: u64, leeway_secs: u64) -> bool {
    now_secs >= expires_at.saturating_add(leeway_secs)
}

/// Reads `nbf` and refuses a token before `nbf - leeway`.
pub(crate) fn check_not_before(
    nbf: Option<&RawValue>,
    now_secs: u64,
    leeway_secs: u64,
) -> Result<(), TokenError> {
    match claims::numeric_date(nbf)? {
        Some(not_before) if now_secs.saturating_add(leeway_secs) < not_before => {
            Err(TokenError::NotYetValid)
        }
        _ => Ok(()),
    }
}

/// Reads `iat` and refuses a token issued later than `now + leeway`.
pub(crate) fn read_issued_at(
    iat: Option<&RawValue>,
    now_secs: u64,
    leeway_secs: u64,
) -> Result<Option<u64>, TokenError> {
    let issued_at = claims::numeric_date(iat)?;
    if issued_at.is_some_and(|iat| iat > now_secs.saturating_add(leeway_secs)) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(issued_at)
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

    /// No claim at all (introspection responses, where every member but `active` is
    /// optional).
    pub(crate) const NONE: RequiredClaims = RequiredClaims(0);

    /// Whether `claim` is required.
    pub const fn contains(self, claim: Claim) -> bool {
        self.0 & claim.bit() != 0
    }

    /// This set plus `claim`.
    pub(crate) const fn with(self, claim: Claim) -> RequiredClaims {
        RequiredClaims(self.0 | claim.bit())
    }

    /// This set without `claim`.
    pub(crate) const fn without(self, claim: Claim) -> RequiredClaims {
        RequiredClaims(self.0 & !claim.bit())
    }

    /// Refuses a token lacking a required claim among the optional ones, given which of
    /// them it has (checked in this order).
    pub(crate) fn check(self, present: [(Claim, bool); 4]) -> Result<(), TokenError> {
        match self.missing(present).next() {
            Some(claim) => Err(TokenError::MissingClaim(claim)),
            None => Ok(()),
        }
    }

    /// Every required claim among the optional ones that the token lacks, in the order of
    /// [`check`](Self::check) (which refuses with the first).
    #[inline]
    pub(crate) fn missing(self, present: [(Claim, bool); 4]) -> impl Iterator<Item = Claim> {
        present
            .into_iter()
            .filter(move |&(claim, present)| self.contains(claim) && !present)
            .map(|(claim, _)| claim)
    }
}

impl Default for RequiredClaims {
    fn default() -> Self {
        Self::RFC_9068
    }
}

/// The scopes of the first claim of `claims_in_order` that is present (none: no scopes).
pub(crate) fn read_scopes(
    claims: &ClaimsView<'_>,
    claims_in_order: &[ScopeClaim],
) -> Result<ScopeSet, TokenError> {
    let Some((claim, raw)) = claims_in_order
        .iter()
        .find_map(|claim| claims.get(claim.name()).map(|raw| (claim, raw)))
    else {
        return Ok(ScopeSet::new());
    };
    // The claim's own type decides, without building a `serde_json::Value`: a string of
    // space-separated scopes, or an array of scope strings (each non-empty, without spaces).
    match (claim.format(), claims::first_byte(raw)) {
        (ScopeFormat::SpaceSeparated | ScopeFormat::Either, b'"') => {
            let text = json::string(raw).map_err(|()| TokenError::InvalidClaim)?;
            Ok(ScopeSet::from_space_separated(&text))
        }
        (ScopeFormat::Array | ScopeFormat::Either, b'[') => {
            let items = json::strings(raw).map_err(|()| TokenError::InvalidClaim)?;
            if items
                .iter()
                .any(|scope| scope.is_empty() || scope.contains(' '))
            {
                return Err(TokenError::InvalidClaim);
            }
            Ok(items.into_iter().collect())
        }
        _ => Err(TokenError::InvalidClaim),
    }
}
