//! Rate limits: a token bucket per principal, and a tighter one per client address for
//! failed authentications.
//!
//! Two budgets, each a token bucket ([`Budget`]: a burst, refilled at a steady rate):
//!
//! - **Failed authentications, per client address** (on by default:
//!   [`DEFAULT_FAILED_AUTH_BUDGET`], a burst of 60 then one a second). A cheap brute-force
//!   guard: before a presented token is validated (before JWT parsing, key fetches or
//!   introspection), one unit is *reserved* from the bucket of the client's address; a token
//!   that verifies gives it back, a refusal keeps it. Once the bucket is empty the request is
//!   answered 429 with `Retry-After` and the token is never looked at. Reserving rather than
//!   checking bounds concurrency too: a thousand garbage tokens sent at once can never cost
//!   more validations than the bucket holds. Charged: a malformed bearer value (400), a token
//!   refused as invalid (401), and a session id that is not the principal's (404, a guessed
//!   session). Not charged: a request with no credentials (the discovery step of every MCP
//!   client, no token work), a token not judged because keys or introspection are unavailable
//!   (503, not the client's fault), and refusals of a verified principal (403, 400, 413: the
//!   per-principal budget is theirs).
//! - **Requests per verified principal** (off by default: capacity planning is the
//!   deployment's). Keyed on verified claims ([`PrincipalKey`]: issuer + subject, or issuer +
//!   client id), taken after the token verified, for every request; 429 with `Retry-After`.
//!
//! The client address is the connection's peer (axum's `ConnectInfo<SocketAddr>` when served
//! with `into_make_service_with_connect_info::<SocketAddr>()`, or
//! [`PeerAddr`](crate::http::PeerAddr)), or, *only when configured*, a trusted proxy's header
//! ([`ClientAddress`](crate::http::ClientAddress)). When no address is known the address
//! budget is not applied (a warning says so once): one shared bucket for every client would
//! let one attacker lock everyone out. Behind a proxy that is not configured, every client
//! shares the proxy's address: configure it. IPv6 addresses are bucketed by their /64, the
//! block one subscriber typically holds.
//!
//! The state sits behind [`RateLimitStore`] so a shared store can back it across replicas;
//! [`InMemoryRateLimitStore`] (bounded, 100,000 buckets by default) is the default. The trait
//! is asynchronous because a shared store answers over the network: a blocking call on the
//! request path would stall the runtime's worker threads.
//!
//! ```
//! use mcp_oauth::rate_limit::{Budget, RateLimits};
//! use std::time::Duration;
//!
//! let limits = RateLimits::default()
//!     .per_principal(Budget::per_minute(600).burst(100))
//!     .failed_auth(Budget::new(20, Duration::from_secs(60)));
//! // OAuthLayer::builder(config, validator).rate_limits(limits)
//! # let _ = limits;
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::validation::VerifiedToken;

/// A token bucket's shape: up to `burst` requests at once, refilled at one request per
/// [`interval`](Budget::interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Budget {
    burst: u32,
    interval: Duration,
}

/// The default failed-authentication budget: a burst of 60, then one a second.
pub const DEFAULT_FAILED_AUTH_BUDGET: Budget = Budget {
    burst: 60,
    interval: Duration::from_secs(1),
};

impl Budget {
    /// `requests` per `period`, refilled evenly, with a burst of `requests`.
    ///
    /// # Panics
    /// Never; `requests` of 0 is taken as 1 and a zero `period` as one nanosecond.
    pub fn new(requests: u32, period: Duration) -> Self {
        let requests = requests.max(1);
        let interval = (period / requests).max(Duration::from_nanos(1));
        Self {
            burst: requests,
            interval,
        }
    }

    /// `requests` per second, with a burst of `requests`.
    pub fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }

    /// `requests` per minute, with a burst of `requests`.
    pub fn per_minute(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }

    /// The same rate with another burst (at least 1).
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// The largest number of requests allowed at once.
    pub fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The time one request's unit takes to refill.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// One replica's share of this budget among `replicas`: the burst divided (at least 1),
    /// the refill slowed as much. What a replica applies alone while the shared store is
    /// unreachable.
    #[must_use]
    pub fn share(self, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        Self {
            burst: (self.burst / replicas).max(1),
            interval: self.interval.saturating_mul(replicas),
        }
    }
}

/// Which bucket family a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    /// Requests of a verified principal.
    Principal,
    /// Failed authentications from a client address.
    FailedAuth,
}

impl BucketKind {
    /// `principal` or `failed_auth`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BucketKind::Principal => "principal",
            BucketKind::FailedAuth => "failed_auth",
        }
    }
}

/// The key of one bucket: its family and a SHA-256 digest of who it is for (so a store never
/// holds subjects or addresses in the clear). [`Display`](fmt::Display) gives
/// `principal:<hex>` or `failed_auth:<hex>`, a stable string for shared stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimitKey {
    kind: BucketKind,
    digest: [u8; 32],
}

impl RateLimitKey {
    /// The bucket of a verified principal.
    pub fn principal(token: &VerifiedToken, key: PrincipalKey) -> Self {
        let (first, second) = match key {
            PrincipalKey::Subject => (token.subject(), token.client_id()),
            PrincipalKey::ClientId => (token.client_id(), token.subject()),
        };
        // The fallback is tagged, so a subject never shares a bucket with an equal client id.
        let (tag, id) = match (first, second) {
            (Some(id), _) => ("1", id),
            (None, Some(id)) => ("2", id),
            (None, None) => ("0", ""),
        };
        Self::digest(BucketKind::Principal, &[token.issuer(), tag, id])
    }

    /// The failed-authentication bucket of a client address (IPv6: its /64).
    pub fn failed_auth(address: IpAddr) -> Self {
        match address.to_canonical() {
            // The dotted quad, as `Ipv4Addr`'s `Display` writes it, without its formatter: this
            // key is derived for every request on the guarded route.
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[len] = b'.';
                        len += 1;
                    }
                    for (digit, place) in
                        [(octet / 100, 100), (octet / 10 % 10, 10), (octet % 10, 1)]
                    {
                        if octet >= place || place == 1 {
                            text[len] = b'0' + digit;
                            len += 1;
                        }
                    }
                }
                let text = std::str::from_utf8(&text[..len]).expect("digits and dots are ASCII");
                Self::digest(BucketKind::FailedAuth, &[text])
            }
            IpAddr::V6(v6) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                let text = format!("{}/64", std::net::Ipv6Addr::from(segments));
                Self::digest(BucketKind::FailedAuth, &[&text])
            }
        }
    }

    fn digest(kind: BucketKind, parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        hash.update(kind.as_str().as_bytes());
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        Self {
            kind,
            digest: hash.finalize().into(),
        }
    }

    /// The bucket family.
    pub fn kind(&self) -> BucketKind {
        self.kind
    }

    /// The digest.
    pub fn digest_bytes(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Display for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        f.write_str(":")?;
        self.digest.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimitKey({self})")
    }
}

/// Which verified claims identify a principal for its budget. A token with neither subject
/// nor client id shares one bucket with every such token of its issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PrincipalKey {
    /// Issuer + subject (a token without `sub`: issuer + client id). The default.
    #[default]
    Subject,
    /// Issuer + client id (without one: issuer + subject): one budget per client
    /// application, shared by its users.
    ClientId,
}

/// What a store answers when asked for a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// A unit was taken.
    Allowed,
    /// The bucket is empty; a unit refills after `retry_after`.
    Limited {
        /// When to retry.
        retry_after: Duration,
    },
}

pub use crate::store::StoreFuture;

/// Where the buckets live. Implement it over a shared store (Redis, a database) so the
/// replicas of one deployment share budgets; see [`InMemoryRateLimitStore`] for the semantics
/// (GCRA: one timestamp per bucket, which suits an atomic script in a shared store).
///
/// `now` is the layer's clock reading (since the Unix epoch), so a store never reads time
/// of its own and tests control it (a shared store may read its server's clock instead, so
/// that the replicas' clocks do not matter). A store that cannot reach its backend should
/// fall back to a local share of the budget (the limits protect capacity, they do not
/// authenticate), say so in [`is_degraded`](Self::is_degraded), and report the failure its
/// own way.
///
/// The failed-authentication budget is taken in two steps: [`reserve`](Self::reserve) before
/// the token is judged, [`settle`](Self::settle) once it was. The defaults reserve a unit
/// and give it back for a success (which bounds concurrent attempts too); a shared store may
/// instead answer the reservation from a local view of the buckets its previous replies
/// showed empty, and charge the shared bucket only for a failure, so that a request whose
/// token verifies costs no round trip for this budget.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Takes one unit from `key`'s bucket under `budget`, or says when one will be there.
    fn acquire<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision>;

    /// Gives back a unit taken by [`acquire`](Self::acquire) that turned out not to count
    /// (a reservation for a token that verified). Never beyond a full bucket.
    fn release<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Reserves a unit for an attempt whose outcome is not known yet (default:
    /// [`acquire`](Self::acquire)).
    fn reserve<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        self.acquire(key, budget, now)
    }

    /// Settles a reservation: a `failed` attempt keeps its unit, a successful one gives it
    /// back (default: [`release`](Self::release) for a success).
    fn settle<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
        failed: bool,
    ) -> StoreFuture<'a, ()> {
        if failed {
            Box::pin(std::future::ready(()))
        } else {
            self.release(key, budget, now)
        }
    }

    /// Whether the store currently answers from a local fallback rather than the shared
    /// state (its backend is unreachable): recorded in audit events (`rate_limit_fallback`).
    fn is_degraded(&self) -> bool {
        false
    }
}

impl<T: RateLimitStore + ?Sized> RateLimitStore for Arc<T> {
    fn acquire<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        (**self).acquire(key, budget, now)
    }

    fn release<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, ()> {
        (**self).release(key, budget, now)
    }

    fn reserve<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        (**self).reserve(key, budget, now)
    }

    fn settle<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
        failed: bool,
    ) -> StoreFuture<'a, ()> {
        (**self).settle(key, budget, now, failed)
    }

    fn is_degraded(&self) -> bool {
        (**self).is_degraded()
    }
}

/// The default store: buckets in memory, at most `capacity` of them (the least recently used
/// are evicted; an evicted bucket starts full again, as an idle one would be).
///
/// Each bucket is one atomic timestamp (the generic cell rate algorithm's "theoretical
/// arrival time"): a request is allowed while that time stays within `burst × interval` of
/// now, and each one pushes it `interval` further.
pub struct InMemoryRateLimitStore {
    buckets: quick_cache::sync::Cache<RateLimitKey, Arc<AtomicU64>>,
}

impl fmt::Debug for InMemoryRateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRateLimitStore")
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl Default for InMemoryRateLimitStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl InMemoryRateLimitStore {
    /// A store of at most `capacity` buckets.
    pub fn new(capacity: usize) -> Self {
        Self {
            buckets: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Buckets currently held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Takes a unit now (the synchronous form of [`RateLimitStore::acquire`]).
    pub fn try_acquire(&self, key: &RateLimitKey, budget: Budget, now: Duration) -> RateDecision {
        let cell = self
            .buckets
            .get_or_insert_with(key, || Ok::<_, std::convert::Infallible>(Arc::default()))
            .unwrap_or_else(|never| match never {});
        let now = nanos(now);
        let interval = nanos(budget.interval);
        let window = interval.saturating_mul(u64::from(budget.burst));
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let next = current.max(now).saturating_add(interval);
            let ahead = next - now;
            if ahead > window {
                return RateDecision::Limited {
                    retry_after: Duration::from_nanos(ahead - window),
                };
            }
            match cell.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return RateDecision::Allowed,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives a unit back now (the synchronous form of [`RateLimitStore::release`]).
    pub fn give_back(&self, key: &RateLimitKey, budget: Budget, now: Duration) {
        let Some(cell) = self.buckets.get(key) else {
            return;
        };
        let now = nanos(now);
        let interval = nanos(budget.interval);
        let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
            (current > now).then(|| current.saturating_sub(interval).max(now))
        });
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimitStore for InMemoryRateLimitStore {
    fn acquire<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        let decision = self.try_acquire(key, budget, now);
        Box::pin(std::future::ready(decision))
    }

    fn release<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, ()> {
        self.give_back(key, budget, now);
        Box::pin(std::future::ready(()))
    }
}

/// The layer's rate-limit configuration; see the module docs. The default: failed
/// authentications limited per address ([`DEFAULT_FAILED_AUTH_BUDGET`]), principals not
/// limited, buckets in memory.
#[derive(Clone)]
pub struct RateLimits {
    pub(crate) per_principal: Option<Budget>,
    pub(crate) failed_auth: Option<Budget>,
    pub(crate) principal_key: PrincipalKey,
    pub(crate) store: Arc<dyn RateLimitStore>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_principal", &self.per_principal)
            .field("failed_auth", &self.failed_auth)
            .field("principal_key", &self.principal_key)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_principal: None,
            failed_auth: Some(DEFAULT_FAILED_AUTH_BUDGET),
            principal_key: PrincipalKey::default(),
            store: Arc::new(InMemoryRateLimitStore::default()),
        }
    }
}

impl RateLimits {
    /// No limits at all (not even the failed-authentication guard).
    pub fn disabled() -> Self {
        Self {
            failed_auth: None,
            ..Self::default()
        }
    }

    /// Limits each verified principal to `budget`.
    #[must_use]
    pub fn per_principal(mut self, budget: Budget) -> Self {
        self.per_principal = Some(budget);
        self
    }

    /// Which claims identify a principal (default: issuer + subject).
    #[must_use]
    pub fn principal_key(mut self, key: PrincipalKey) -> Self {
        self.principal_key = key;
        self
    }

    /// The failed-authentication budget per client address.
    #[must_use]
    pub fn failed_auth(mut self, budget: Budget) -> Self {
        self.failed_auth = Some(budget);
        self
    }

    /// Turns the failed-authentication guard off.
    #[must_use]
    pub fn without_failed_auth_limit(mut self) -> Self {
        self.failed_auth = None;
        self
    }

    /// Where the buckets live (default: [`InMemoryRateLimitStore`]).
    #[must_use]
    pub fn store(mut self, store: impl RateLimitStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// The per-principal budget, if any.
    pub fn principal_budget(&self) -> Option<Budget> {
        self.per_principal
    }

    /// The failed-authentication budget, if any.
    pub fn failed_auth_budget(&self) -> Option<Budget> {
        self.failed_auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> RateLimitKey {
        RateLimitKey::failed_auth(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let store = InMemoryRateLimitStore::new(10);
        let budget = Budget::per_second(2).burst(3);
        let t0 = Duration::from_secs(1_000);
        for _ in 0..3 {
            assert_eq!(
                store.try_acquire(&key(1), budget, t0),
                RateDecision::Allowed
            );
        }
        let RateDecision::Limited { retry_after } = store.try_acquire(&key(1), budget, t0) else {
            panic!("the fourth request passed");
        };
        assert_eq!(retry_after, Duration::from_millis(500));
        // Another key has its own bucket.
        assert_eq!(
            store.try_acquire(&key(2), budget, t0),
            RateDecision::Allowed
        );
        let later = t0 + Duration::from_millis(500);
        assert_eq!(
            store.try_acquire(&key(1), budget, later),
            RateDecision::Allowed
        );
        assert!(matches!(
            store.try_acquire(&key(1), budget, later),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn a_released_unit_can_be_taken_again_but_never_beyond_the_burst() {
        let store = InMemoryRateLimitStore::new(10);
        let budget = Budget::per_minute(1);
        let now = Duration::from_secs(50);
        assert_eq!(
            store.try_acquire(&key(1), budget, now),
            RateDecision::Allowed
        );
        assert!(matches!(
            store.try_acquire(&key(1), budget, now),
            RateDecision::Limited { .. }
        ));
        store.give_back(&key(1), budget, now);
        store.give_back(&key(1), budget, now);
        assert_eq!(
            store.try_acquire(&key(1), budget, now),
            RateDecision::Allowed
        );
        assert!(matches!(
            store.try_acquire(&key(1), budget, now),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(RateLimitKey::failed_auth(a), RateLimitKey::failed_auth(b));
        assert_ne!(RateLimitKey::failed_auth(a), RateLimitKey::failed_auth(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let plain: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            RateLimitKey::failed_auth(mapped),
            RateLimitKey::failed_auth(plain)
        );
        assert!(key(1).to_string().starts_with("failed_auth:"));
    }

    #[test]
    fn an_ipv4_key_hashes_the_dotted_quad_as_display_writes_it() {
        // Shared stores keep these keys: the digest must not change with how it is computed.
        let octets = [0u8, 1, 9, 10, 42, 99, 100, 101, 199, 200, 255];
        for a in octets {
            for b in octets {
                let v4 = std::net::Ipv4Addr::new(a, b, 255 - a, b / 2);
                assert_eq!(
                    RateLimitKey::failed_auth(IpAddr::V4(v4)),
                    RateLimitKey::digest(BucketKind::FailedAuth, &[&v4.to_string()]),
                    "{v4}"
                );
            }
        }
    }

    #[test]
    fn budgets_never_divide_by_zero() {
        let budget = Budget::new(0, Duration::ZERO);
        assert_eq!(budget.burst_size(), 1);
        assert_eq!(budget.interval(), Duration::from_nanos(1));
        assert_eq!(Budget::per_minute(60).interval(), Duration::from_secs(1));
    }
}
