//! The token: validated once (the verified-token cache, JWT or introspection), timed for
//! the metrics, fingerprinted for the audit event, and charged to the failed-authentication
//! budget when the token caused the refusal.

use std::time::Instant;

use super::Shared;
use super::decision::{Decision, Refusal};
use super::limits::FailedAuth;
use super::responses::token_refusal;
use crate::validation::{ErrorCode, TokenFingerprint, VerifiedToken};

/// The verified identity of `token`, or the 401/503 refusal.
pub(super) async fn verify_token(
    shared: &Shared,
    decision: &mut Decision,
    token: &str,
    failed_auth: &FailedAuth<'_>,
) -> Result<VerifiedToken, Refusal> {
    let started = Instant::now();
    let validated = shared.validator.validate(token).await;
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
    match validated {
        Ok(identity) => {
            crate::metrics::record_validation(elapsed, "accepted");
            failed_auth.release().await;
            decision.identity = Some(identity.clone());
            Ok(identity)
        }
        Err(error) => {
            let outcome = if error.error_code() == ErrorCode::TemporarilyUnavailable {
                "unavailable"
            } else {
                "refused"
            };
            crate::metrics::record_validation(elapsed, outcome);
            // Every refusal the token caused stays charged (an unknown kid answered 503 too);
            // keys that cannot be loaded for a known kid are not the client's failure.
            if !error.counts_as_failed_authentication() {
                failed_auth.release().await;
            }
            Err(Refusal::new(error.reason(), token_refusal(shared, &error)))
        }
    }
}
