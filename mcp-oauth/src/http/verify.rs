//! The token: validated once (the verified-token cache, JWT or introspection), with its DPoP
//! proof when it came with the `DPoP` scheme (checked on every request, whatever the cache
//! holds), timed for the metrics, fingerprinted for the audit event, and charged to the
//! failed-authentication budget when the token or the proof caused the refusal.

use std::time::Instant;

use http::request::Parts;

use super::Shared;
use super::credentials::Presented;
use super::decision::{Decision, Refusal};
use super::limits::{FailedAuth, per_principal, release_principal};
use super::responses::{dpop_refusal, token_refusal};
use crate::challenge::Scheme;
use crate::dpop::{DpopError, DpopRequest, ProofError};
use crate::validation::{ErrorCode, TokenFingerprint, VerifiedToken};

/// The verified identity of the presented token, within the principal's request budget, or
/// the refusal (401, 429, 503). For a DPoP request the proof is remembered by the replay
/// store only after the per-principal limit passed: a principal over its budget cannot fill
/// the store.
pub(super) async fn verify_token(
    shared: &Shared,
    decision: &mut Decision,
    presented: Presented<'_>,
    parts: &Parts,
    failed_auth: &FailedAuth<'_>,
) -> Result<VerifiedToken, Refusal> {
    let token = presented.token;
    decision.scheme = presented.scheme;
    decision.presented = true;
    let started = Instant::now();
    let mut pending = None;
    let validated = match (presented.scheme, &shared.dpop) {
        (Scheme::Dpop, Some(dpop)) => {
            let mut proofs: Vec<&str> = Vec::with_capacity(1);
            let mut unreadable = false;
            for value in parts.headers.get_all(crate::dpop::HEADER) {
                match value.to_str() {
                    Ok(proof) => proofs.push(proof),
                    Err(_) => unreadable = true,
                }
            }
            let request = DpopRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                access_token: token,
                proofs: &proofs,
            };
            if unreadable {
                Err(DpopError::Proof(ProofError::Malformed))
            } else {
                dpop.check(&shared.validator, request).await.map(|proof| {
                    let token = proof.verified().token.clone();
                    pending = Some(proof);
                    token
                })
            }
        }
        _ => shared
            .validator
            .validate(token)
            .await
            .map_err(DpopError::Token),
    };
    let elapsed = started.elapsed();
    // The token is hashed once: the validator's hash is in the identity's fingerprint, and a
    // refused token is hashed here, for its audit event only.
    decision.fingerprint = Some(match &validated {
        Ok(identity) => {
            debug_assert_eq!(identity.fingerprint(), TokenFingerprint::of(token));
            identity.fingerprint()
        }
        Err(_) => TokenFingerprint::of(token),
    });
    let outcome = match validated {
        Ok(identity) => {
            decision.identity = Some(identity.clone());
            if let Err(refusal) = per_principal(shared, &identity).await {
                // Not an authentication failure: the unit goes back.
                failed_auth.release().await;
                return Err(refusal);
            }
            match (&shared.dpop, pending) {
                (Some(dpop), Some(pending)) => match dpop.commit(pending).await {
                    Ok(verified) => {
                        decision.dpop_jkt = Some(verified.thumbprint);
                        Ok(identity)
                    }
                    Err(error) => {
                        release_principal(shared, &identity).await;
                        Err(error)
                    }
                },
                _ => Ok(identity),
            }
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(identity) => {
            crate::metrics::record_validation(elapsed, "accepted");
            failed_auth.release().await;
            Ok(identity)
        }
        Err(error) => {
            let outcome = if error.error_code() == ErrorCode::TemporarilyUnavailable {
                "unavailable"
            } else {
                "refused"
            };
            crate::metrics::record_validation(elapsed, outcome);
            // Every refusal the token or its proof caused stays charged (an unknown kid
            // answered 503 too); keys that cannot be loaded for a known kid, the challenge to
            // a proof without a nonce and a replay store that cannot answer are not the
            // client's failure.
            if !error.counts_as_failed_authentication() {
                failed_auth.release().await;
            }
            let response = match &error {
                DpopError::Token(token_error) => {
                    token_refusal(shared, presented.scheme, token_error)
                }
                other => dpop_refusal(shared, other),
            };
            Err(Refusal::new(error.reason(), response))
        }
    }
}
