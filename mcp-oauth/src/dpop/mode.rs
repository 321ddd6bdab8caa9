//! The DPoP mode of a resource and the proof algorithms it accepts: what the declaration
//! names and the metadata advertises. (Below the declaration, so that `resource` and
//! `metadata` can name it without depending on proof verification.)

use std::fmt;

use crate::crypto::{Algorithm, AlgorithmSet};

/// Whether a resource accepts DPoP-bound access tokens (RFC 9449), per resource.
///
/// | mode | `Bearer` token | DPoP-bound token (`cnf.jkt`) | metadata |
/// |---|---|---|---|
/// | `Disabled` (default) | accepted | refused (`invalid_token`), the `DPoP` scheme is answered like no credentials | no DPoP member |
/// | `Allowed` | accepted | only as `Authorization: DPoP` with a valid proof | `dpop_signing_alg_values_supported` |
/// | `Required` | answered like no credentials (a `DPoP` challenge) | only as `Authorization: DPoP` with a valid proof | also `dpop_bound_access_tokens_required: true` |
///
/// ```
/// use mcp_oauth::dpop::DpopMode;
///
/// assert_eq!(DpopMode::parse("required"), Some(DpopMode::Required));
/// assert_eq!(DpopMode::Allowed.as_str(), "allowed");
/// assert!(!DpopMode::Disabled.is_enabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DpopMode {
    /// No DPoP: a token with a `cnf` binding is refused, as a token whose binding cannot be
    /// verified.
    #[default]
    Disabled,
    /// DPoP-bound tokens need the `DPoP` scheme and a valid proof; bearer tokens still work.
    Allowed,
    /// Only DPoP-bound tokens with a valid proof.
    Required,
}

impl DpopMode {
    /// Every mode, in order.
    pub const ALL: [DpopMode; 3] = [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required];

    /// `disabled`, `allowed` or `required`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DpopMode::Disabled => "disabled",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names, ASCII case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether proofs are verified (`Allowed` or `Required`).
    pub const fn is_enabled(self) -> bool {
        !matches!(self, DpopMode::Disabled)
    }

    /// Whether a `Bearer` credential is accepted.
    pub const fn accepts_bearer(self) -> bool {
        !matches!(self, DpopMode::Required)
    }
}

impl<'de> serde::Deserialize<'de> for DpopMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        DpopMode::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{name}` is not a DPoP mode: disabled, allowed or required"
            ))
        })
    }
}

impl fmt::Display for DpopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The proof algorithms accepted when a declaration names none: ES256 (which every DPoP
/// client supports), ES384, EdDSA, PS256 and RS256.
pub const DEFAULT_PROOF_ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "PS256", "RS256"];

/// Why a list of proof algorithms is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofAlgorithmsError {
    /// The list is empty.
    #[error("no DPoP proof algorithm is named")]
    Empty,
    /// A name is not an asymmetric JWS algorithm this crate verifies (`none` and HMAC never
    /// are: a proof must be signed by the key it carries).
    #[error("`{0}` is not an asymmetric JWS algorithm mcp-oauth verifies")]
    Unknown(String),
    /// ES256 is missing: it is the one algorithm every DPoP client supports.
    #[error("the DPoP proof algorithms must include ES256, the one every client supports")]
    NoEs256,
}

/// Parses a list of proof algorithm names (as declared or configured) into a set, checking
/// it: not empty, every name an asymmetric algorithm, ES256 among them.
///
/// ```
/// use mcp_oauth::dpop::proof_algorithms;
/// use mcp_oauth::crypto::Algorithm;
///
/// let set = proof_algorithms(["ES256", "EdDSA"]).unwrap();
/// assert!(set.contains(Algorithm::EdDSA) && !set.contains(Algorithm::RS256));
/// assert!(proof_algorithms(["HS256"]).is_err());
/// assert!(proof_algorithms(["EdDSA"]).is_err());
/// ```
pub fn proof_algorithms<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<AlgorithmSet, ProofAlgorithmsError> {
    let mut set = AlgorithmSet::EMPTY;
    for name in names {
        let algorithm =
            Algorithm::from_name(name).ok_or_else(|| ProofAlgorithmsError::Unknown(name.into()))?;
        set = set.with(algorithm);
    }
    if set.is_empty() {
        return Err(ProofAlgorithmsError::Empty);
    }
    if !set.contains(Algorithm::ES256) {
        return Err(ProofAlgorithmsError::NoEs256);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_algorithms_are_a_valid_list() {
        let set = proof_algorithms(DEFAULT_PROOF_ALGORITHMS.iter().copied()).unwrap();
        assert_eq!(set.iter().count(), DEFAULT_PROOF_ALGORITHMS.len());
    }

    #[test]
    fn modes_parse_case_insensitively_and_nothing_else() {
        assert_eq!(DpopMode::parse(" Allowed "), Some(DpopMode::Allowed));
        assert_eq!(DpopMode::parse("on"), None);
        assert_eq!(DpopMode::parse(""), None);
        assert_eq!(
            proof_algorithms(std::iter::empty()),
            Err(ProofAlgorithmsError::Empty)
        );
    }
}
