//! DPoP at the token endpoint (RFC 9449 §5): a token request may carry one `DPoP` header, a
//! proof signed by the key the client wants its tokens bound to. The proof is checked as the
//! resource server checks one (`crate::dpop::proof`), for `POST` to the token endpoint as
//! advertised and without `ath`; its `jti` is remembered for the `iat` window. The issued
//! access token then carries `cnf.jkt`, the proof key's thumbprint, and the response says
//! `token_type: DPoP`. A request without the header is served exactly as before.
//!
//! Server nonces (RFC 9449 §8) are not used: a proof's `nonce`, if any, is ignored.
//!
//! Below `state` (which owns a [`TokenEndpointDpop`]); the endpoints turn its refusals into
//! OAuth error responses.

use std::io;

use axum::http::HeaderMap;
use url::Url;

use crate::crypto::AlgorithmSet;
use crate::dpop::proof::{self, ProofRequirements};
use crate::dpop::{
    DEFAULT_IAT_WINDOW, DEFAULT_PROOF_ALGORITHMS, Freshness, InMemoryReplayStore, ProofError,
    ReplayStore, proof_algorithms,
};

/// The RFC 7638 SHA-256 thumbprint of a proof key.
pub(crate) type Thumbprint = [u8; 32];

/// Why a token request's DPoP is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DpopRefusal {
    /// The proof itself (or its replay): `invalid_dpop_proof`.
    Proof(ProofError),
    /// A bound grant (a code issued for `dpop_jkt`, a public client's bound refresh token)
    /// presented without a proof: `invalid_dpop_proof`.
    Unproven(BoundGrant),
    /// A bound grant presented with a proof by another key: `invalid_dpop_proof`.
    OtherKey(BoundGrant),
    /// The replay store is full: the proof cannot be checked now.
    StoreFull,
}

/// What is bound to a DPoP key, for the error description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoundGrant {
    Code,
    RefreshToken,
}

impl DpopRefusal {
    /// A fixed `error_description`.
    pub(crate) fn description(self) -> &'static str {
        match self {
            DpopRefusal::Proof(error) => error.description(),
            DpopRefusal::Unproven(BoundGrant::Code) => {
                "the code was issued for a dpop_jkt: the request needs a DPoP proof by that key"
            }
            DpopRefusal::Unproven(BoundGrant::RefreshToken) => {
                "the refresh token is bound to a DPoP key: the request needs a DPoP proof by it"
            }
            DpopRefusal::OtherKey(BoundGrant::Code) => {
                "the DPoP proof key is not the one the authorization request's dpop_jkt names"
            }
            DpopRefusal::OtherKey(BoundGrant::RefreshToken) => {
                "the refresh token is bound to another DPoP key than the proof's"
            }
            DpopRefusal::StoreFull => "too many DPoP proofs to remember now: try again later",
        }
    }
}

/// The token endpoint's DPoP checks: the accepted algorithms, the endpoint `htu` must name,
/// the proofs seen.
pub(crate) struct TokenEndpointDpop {
    algorithms: AlgorithmSet,
    endpoint: Url,
    replay: InMemoryReplayStore,
}

impl TokenEndpointDpop {
    /// Checks for the token endpoint at `endpoint` (as advertised), remembering at most
    /// `capacity` proofs at once.
    pub(crate) fn new(endpoint: &str, capacity: usize) -> io::Result<Self> {
        let algorithms = proof_algorithms(DEFAULT_PROOF_ALGORITHMS.iter().copied())
            .map_err(|error| io::Error::other(format!("DPoP proof algorithms: {error}")))?;
        let endpoint = Url::parse(endpoint)
            .map_err(|error| io::Error::other(format!("the token endpoint URL: {error}")))?;
        Ok(Self {
            algorithms,
            endpoint,
            replay: InMemoryReplayStore::new(capacity),
        })
    }

    /// The thumbprint of the key the request's `DPoP` proof is signed with; `None` without a
    /// `DPoP` header.
    pub(crate) async fn check(
        &self,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Option<Thumbprint>, DpopRefusal> {
        let mut values = headers.get_all(crate::dpop::HEADER).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(DpopRefusal::Proof(ProofError::Multiple));
        }
        let proof = first
            .to_str()
            .map_err(|_| DpopRefusal::Proof(ProofError::Malformed))?;
        let iat_window = DEFAULT_IAT_WINDOW.as_secs();
        let htu_matches = |htu: &str| names_endpoint(htu, &self.endpoint);
        let verified = proof::verify(
            proof,
            &ProofRequirements {
                algorithms: self.algorithms,
                method: "POST",
                htu_matches: &htu_matches,
                now,
                iat_window,
                access_token: None,
                keys: None,
            },
        )
        .map_err(DpopRefusal::Proof)?;
        let expires_at = verified.remember_until(iat_window);
        match self
            .replay
            .remember(verified.replay_key(), expires_at, now)
            .await
        {
            Ok(Freshness::Fresh) => Ok(Some(verified.thumbprint)),
            Ok(Freshness::Replayed) => Err(DpopRefusal::Proof(ProofError::Replayed)),
            Err(_) => Err(DpopRefusal::StoreFull),
        }
    }
}

/// Checks that a grant bound to a key (`bound`) is presented with a proof by that key.
pub(crate) fn check_bound(
    grant: BoundGrant,
    bound: Option<&Thumbprint>,
    presented: Option<&Thumbprint>,
) -> Result<(), DpopRefusal> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(DpopRefusal::Unproven(grant)),
        (Some(bound), Some(presented)) if bound == presented => Ok(()),
        (Some(_), Some(_)) => Err(DpopRefusal::OtherKey(grant)),
    }
}

/// The `cnf.jkt` text of a thumbprint (base64url, no padding).
pub(crate) fn jkt(thumbprint: &Thumbprint) -> String {
    crate::dpop::thumbprint::encode(thumbprint)
}

/// The thumbprint a `dpop_jkt` parameter names, if it is 32 base64url bytes.
pub(crate) fn parse_jkt(text: &str) -> Option<Thumbprint> {
    crate::crypto::base64url_32(text)
}

/// Whether a proof's `htu` names `endpoint` (RFC 9449 §4.3: without query and fragment; the
/// scheme and host case-insensitively, default ports normalised, as the URL parser gives them).
fn names_endpoint(htu: &str, endpoint: &Url) -> bool {
    let Ok(presented) = Url::parse(htu) else {
        return false;
    };
    presented.scheme() == endpoint.scheme()
        && presented.host() == endpoint.host()
        && presented.port_or_known_default() == endpoint.port_or_known_default()
        && presented.path() == endpoint.path()
        && presented.username().is_empty()
        && presented.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_names_the_token_endpoint_without_query_or_fragment() {
        let endpoint = Url::parse("http://127.0.0.1:4000/token").unwrap();
        for htu in [
            "http://127.0.0.1:4000/token",
            "HTTP://127.0.0.1:4000/token",
            "http://127.0.0.1:4000/token?x=1",
            "http://127.0.0.1:4000/token#f",
        ] {
            assert!(names_endpoint(htu, &endpoint), "{htu}");
        }
        for htu in [
            "http://127.0.0.1:4001/token",
            "http://localhost:4000/token",
            "https://127.0.0.1:4000/token",
            "http://127.0.0.1:4000/token/",
            "http://127.0.0.1:4000/authorize",
            "http://u@127.0.0.1:4000/token",
            "/token",
            "",
        ] {
            assert!(!names_endpoint(htu, &endpoint), "{htu}");
        }
    }

    #[test]
    fn dpop_jkt_is_a_base64url_sha256() {
        let thumbprint = [7u8; 32];
        assert_eq!(parse_jkt(&jkt(&thumbprint)), Some(thumbprint));
        assert_eq!(parse_jkt("short"), None);
        assert_eq!(parse_jkt(&format!("{}A", jkt(&thumbprint))), None);
        assert_eq!(parse_jkt(&"*".repeat(43)), None);
        assert_eq!(parse_jkt(&format!("{}=", jkt(&thumbprint))), None);
    }

    #[test]
    fn a_bound_grant_needs_its_key() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let grant = BoundGrant::Code;
        assert_eq!(check_bound(grant, None, None), Ok(()));
        assert_eq!(check_bound(grant, None, Some(&a)), Ok(()));
        assert_eq!(check_bound(grant, Some(&a), Some(&a)), Ok(()));
        assert_eq!(
            check_bound(grant, Some(&a), None),
            Err(DpopRefusal::Unproven(grant))
        );
        assert_eq!(
            check_bound(grant, Some(&a), Some(&b)),
            Err(DpopRefusal::OtherKey(grant))
        );
    }
}
