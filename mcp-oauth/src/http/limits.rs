//! The rate limits: the failed-authentication budget per client address, taken before any
//! token work, and the request budget per verified principal.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Shared;
use super::decision::{Decision, Refusal};
use super::responses::too_many_requests;
use crate::audit::reason;
use crate::rate_limit::{RateDecision, RateLimitKey};
use crate::validation::VerifiedToken;

/// The failed-authentication bucket of this request's address, when the guard is on.
pub(super) struct FailedAuth<'a> {
    shared: &'a Shared,
    bucket: Option<(RateLimitKey, crate::rate_limit::Budget)>,
    /// A unit is reserved and not settled yet: [`finish`](Self::finish) settles it as a
    /// failure (every path that keeps the unit is a refusal the client caused).
    reserved: AtomicBool,
}

impl<'a> FailedAuth<'a> {
    /// The bucket of the request's address; `None` when the budget is on and the address
    /// cannot be learned: the request is refused ([`unknown_address`]), never waved past
    /// the budget.
    pub(super) fn of(shared: &'a Shared, decision: &Decision) -> Option<Self> {
        let bucket = match (shared.rate_limits.failed_auth, decision.remote) {
            (Some(budget), Some(address)) => Some((RateLimitKey::failed_auth(address), budget)),
            (Some(_), None) => {
                if !shared.warned_no_address.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        target: "mcp_oauth::rate_limit",
                        "the client address is unknown, so requests are refused while the \
                         failed-authentication budget is on: serve with \
                         into_make_service_with_connect_info::<SocketAddr>(), insert \
                         mcp_oauth::http::PeerAddr, choose another ClientAddress source, or \
                         turn the budget off with RateLimits::without_failed_auth_limit()"
                    );
                }
                return None;
            }
            (None, _) => None,
        };
        Some(Self {
            shared,
            bucket,
            reserved: AtomicBool::new(false),
        })
    }

    /// Takes a unit before any token work; `Err` is the 429.
    pub(super) async fn reserve(&self) -> Result<(), Refusal> {
        let Some((key, budget)) = &self.bucket else {
            return Ok(());
        };
        let now = self.shared.clock.now();
        match self
            .shared
            .rate_limits
            .store
            .reserve(key, *budget, now)
            .await
        {
            RateDecision::Allowed => {
                self.reserved.store(true, Ordering::Release);
                Ok(())
            }
            RateDecision::Limited { retry_after } => Err(Refusal::new(
                reason::RATE_LIMITED_FAILED_AUTH,
                too_many_requests(retry_after),
            )),
        }
    }

    /// Gives the reserved unit back: the attempt did not fail.
    pub(super) async fn release(&self) {
        self.settle(false).await;
    }

    /// Settles a reservation still open when the request's decision is made: the attempt
    /// failed (the unit stays taken; a shared store charges it now).
    pub(super) async fn finish(&self) {
        self.settle(true).await;
    }

    async fn settle(&self, failed: bool) {
        if !self.reserved.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some((key, budget)) = &self.bucket {
            let now = self.shared.clock.now();
            self.shared
                .rate_limits
                .store
                .settle(key, *budget, now, failed)
                .await;
        }
    }

    /// Charges a failure found after the token verified (a guessed session id).
    pub(super) async fn charge(&self) {
        if let Some((key, budget)) = &self.bucket {
            let now = self.shared.clock.now();
            let _ = self
                .shared
                .rate_limits
                .store
                .acquire(key, *budget, now)
                .await;
        }
    }
}

impl Drop for FailedAuth<'_> {
    /// A request dropped before its decision (the client went away mid-validation) still
    /// settles its reservation as a failure: cancelling must not be a free attempt.
    fn drop(&mut self) {
        if !self.reserved.swap(false, Ordering::AcqRel) {
            return;
        }
        let (Some((key, budget)), Ok(runtime)) =
            (self.bucket, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = self.shared.rate_limits.store.clone();
        let now = self.shared.clock.now();
        runtime.spawn(async move { store.settle(&key, budget, now, true).await });
    }
}

/// The verified principal's request budget, when one is configured: 429 once it is spent.
pub(super) async fn per_principal(
    shared: &Shared,
    identity: &VerifiedToken,
) -> Result<(), Refusal> {
    let Some(budget) = shared.rate_limits.per_principal else {
        return Ok(());
    };
    let key = RateLimitKey::principal(identity, shared.rate_limits.principal_key);
    let now = shared.clock.now();
    match shared.rate_limits.store.acquire(&key, budget, now).await {
        RateDecision::Allowed => Ok(()),
        RateDecision::Limited { retry_after } => Err(Refusal::new(
            reason::RATE_LIMITED_PRINCIPAL,
            too_many_requests(retry_after),
        )),
    }
}

/// Gives back the principal's unit taken by [`per_principal`]: the request was refused after
/// all for something its principal did not do (a captured proof replayed by someone else
/// must not spend the victim's budget).
pub(super) async fn release_principal(shared: &Shared, identity: &VerifiedToken) {
    if let Some(budget) = shared.rate_limits.per_principal {
        let key = RateLimitKey::principal(identity, shared.rate_limits.principal_key);
        let now = shared.clock.now();
        shared.rate_limits.store.release(&key, budget, now).await;
    }
}
