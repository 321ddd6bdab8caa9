//! An issuer's key set, kept fresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwapOption, Guard};
use url::Url;

use super::{KeyLookupError, KeySet, KeySetError, KeySetOptions};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{Algorithm, VerifyingKey};
use crate::http_client;
use crate::loopback::{is_allowed_discovered_url, is_https_or_loopback_http};

const LOG_TARGET: &str = "mcp_oauth::key_set";

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS URL given explicitly (https, or http to a loopback host).
    JwksUri(String),
    /// Discovered from the issuer's metadata (RFC 8414, then OpenID Connect Discovery);
    /// the document's `issuer` must equal this issuer exactly.
    Discover {
        /// The issuer identifier, exactly as it appears in tokens' `iss`.
        issuer: String,
    },
    /// A fixed set, never fetched (tests, air-gapped deployments).
    Static(Arc<KeySet>),
}

/// How a [`RemoteKeySet`] fetches and caches.
///
/// The defaults follow the guide this crate implements: keys are cached up to 24 hours so
/// no request waits on the network, and refreshed when keys rotate.
#[derive(Debug, Clone)]
pub struct KeySetConfig {
    /// The lifetime used when the response has no usable `Cache-Control: max-age` (1 h).
    pub default_ttl: Duration,
    /// `max-age` below this is raised to it (5 min): a tiny max-age must not cause a fetch flood.
    pub min_ttl: Duration,
    /// `max-age` above this is lowered to it (24 h): rotations are picked up within a day.
    pub max_ttl: Duration,
    /// How long before expiry a background refresh starts, as a fraction of the TTL (0.2).
    pub refresh_ahead: f64,
    /// After a refresh caused by an unknown `kid`, further unknown kids are refused without
    /// fetching for this long (30 s): an unknown-kid flood never becomes a fetch flood.
    ///
    /// Within the cooldown an unknown kid is refused as an invalid token (401) when a fetch
    /// of the set has succeeded since the cooldown began: the set in use is then at most one
    /// cooldown old, so it holds every key published before that. It is answered "retry
    /// later" (503 with `Retry-After`) only while no fetch has succeeded since (the issuer
    /// is down or serves garbage), because the key may then be one the issuer just started
    /// using.
    ///
    /// **An identity provider must publish a new key at least one cooldown before it signs
    /// with it** (every major provider publishes days or weeks ahead). A token signed with a
    /// key published less than a cooldown earlier may be refused with 401 until the cooldown
    /// ends; the client then fetches a new token or retries.
    pub unknown_kid_cooldown: Duration,
    /// After a failed fetch, no new attempt for this long (5 s).
    pub retry_after_failure: Duration,
    /// How long past its expiry a set is still used while refreshes fail (24 h).
    pub max_stale: Duration,
    /// TCP connect timeout (5 s).
    pub connect_timeout: Duration,
    /// Total timeout of one request (10 s).
    pub request_timeout: Duration,
    /// Largest accepted response body (1 MiB).
    pub max_body_bytes: usize,
    /// Redirects followed, each to an https (or loopback) URL (3).
    pub max_redirects: usize,
    /// How JWKs become keys.
    pub key_options: KeySetOptions,
}

impl KeySetConfig {
    /// `refresh_ahead` within 0..=1 (a NaN or out-of-range value means the default 0.2).
    fn refresh_ahead_fraction(&self) -> f64 {
        if (0.0..=1.0).contains(&self.refresh_ahead) {
            self.refresh_ahead
        } else {
            0.2
        }
    }
}

impl Default for KeySetConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(24 * 3600),
            refresh_ahead: 0.2,
            unknown_kid_cooldown: Duration::from_secs(30),
            retry_after_failure: Duration::from_secs(5),
            max_stale: Duration::from_secs(24 * 3600),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
            max_redirects: 3,
            key_options: KeySetOptions::default(),
        }
    }
}

/// Counters of a [`RemoteKeySet`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySetStats {
    /// Fetch attempts of the key set (discovery requests not included).
    pub fetches: u64,
    /// Attempts that failed (the previous set, if any, stayed in use).
    pub failures: u64,
    /// Refreshes caused by a token naming an unknown `kid`.
    pub unknown_kid_refreshes: u64,
}

/// Why no key could be had for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyUnavailable {
    /// No key matches: the set was refreshed for this lookup, or a refresh succeeded within
    /// the [cooldown](KeySetConfig::unknown_kid_cooldown) and did not bring the kid (or the
    /// kid was retired, or the token has none, or the set is static).
    #[error(transparent)]
    Lookup(#[from] KeyLookupError),
    /// The kid is unknown and no refresh could be made: the refresh attempted for it failed,
    /// or, within the cooldown, no fetch has succeeded since the cooldown's refresh failed.
    /// The set in use may predate the key, which may be one the issuer just started using:
    /// retry later.
    #[error("the key set could not be refreshed for an unknown kid yet")]
    RefreshPending {
        /// When a refresh may be made.
        retry_after: Duration,
    },
    /// The issuer's keys have never loaded (or are staler than allowed): retry later.
    #[error("the issuer's keys are not available")]
    NotLoaded {
        /// When a new attempt may succeed.
        retry_after: Duration,
    },
}

/// What an unknown-kid refresh attempt did.
enum UnknownKidRefresh {
    /// The set was fetched (here or by a concurrent caller): look again.
    Refreshed,
    /// A fixed set: nothing to fetch.
    Static,
    /// Within the cooldown, and a fetch has succeeded since it began: the set in use is as
    /// recent as a refresh now could make it.
    UpToDate,
    /// Within the cooldown, and no fetch has succeeded since its refresh failed.
    CoolingDown(Duration),
    /// The fetch failed (stale-if-error keeps the old set).
    Failed(Duration),
}

#[derive(Debug)]
struct Loaded {
    set: Arc<KeySet>,
    generation: u64,
    /// Clock time (since the epoch) the set was fetched and expires.
    fetched_at: Duration,
    expires_at: Duration,
}

/// The set in use, pinned by an arc-swap guard: loading it writes no shared reference count.
type Pinned = Guard<Option<Arc<Loaded>>>;

/// A key found by [`RemoteKeySet::key_for`]: the key, borrowed from the set it was found in.
///
/// Looking a key up touches no shared counter (the set is pinned by an arc-swap guard, the
/// key by its position in it), so lookups on many threads do not contend. Use it for the
/// verification and drop it; keep [`shared`](Self::shared)`().clone()` when the key must
/// outlive it (a guard held for long pins its set, and arc-swap's few per-thread slots make
/// further loads on that thread fall back to reference counting).
pub struct KeyRef {
    loaded: Pinned,
    at: usize,
}

impl KeyRef {
    /// The key as the set holds it: clone it to keep it, compare it with [`Arc::ptr_eq`].
    pub fn shared(&self) -> &Arc<VerifyingKey> {
        let loaded = (*self.loaded)
            .as_ref()
            .expect("a KeyRef is only made from a loaded set");
        loaded.set.key_at(self.at)
    }
}

impl std::ops::Deref for KeyRef {
    type Target = VerifyingKey;

    fn deref(&self) -> &VerifyingKey {
        self.shared()
    }
}

impl std::fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyRef").field(self.shared()).finish()
    }
}

/// An issuer's key set, kept fresh. Cheap to clone; clones share the cache.
///
/// Reads are lock-free (an atomic pointer load); refreshes are single-flight.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_oauth::key_set::{KeySetConfig, KeySource, RemoteKeySet};
///
/// let keys = RemoteKeySet::new(
///     KeySource::Discover { issuer: "https://auth.example.com".into() },
///     KeySetConfig::default(),
/// )?;
/// keys.load().await?; // optional: warm up at startup instead of at the first request
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteKeySet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: KeySource,
    config: KeySetConfig,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    current: ArcSwapOption<Loaded>,
    jwks_uri: ArcSwapOption<Url>,
    // Held by whoever fetches: N concurrent misses cause one fetch and all wait on it.
    refresh: tokio::sync::Mutex<()>,
    background_running: AtomicBool,
    last_unknown_kid_refresh: AtomicU64,
    // The set's generation when the cooldown's refresh began: a later generation in use
    // means a fetch succeeded within the cooldown.
    cooldown_generation: AtomicU64,
    last_failure: AtomicU64,
    fetches: AtomicU64,
    failures: AtomicU64,
    unknown_kid_refreshes: AtomicU64,
    // Kids that disappeared from the set in a refresh: a token naming one is dead for sure,
    // even while no new refresh can be made (bounded, oldest forgotten first).
    retired_kids: parking_lot::Mutex<std::collections::VecDeque<Box<str>>>,
}

/// Why a [`RemoteKeySet`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeySetConfigError {
    /// The URL does not parse, or is neither https nor http to a loopback host.
    #[error("key-set URL must be https (or http to a loopback host): {0}")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl RemoteKeySet {
    /// A key set from `source`, with the system clock. Nothing is fetched until
    /// [`load`](Self::load) or the first lookup.
    pub fn new(source: KeySource, config: KeySetConfig) -> Result<Self, KeySetConfigError> {
        Self::with_clock(source, config, Arc::new(SystemClock))
    }

    /// Like [`new`](Self::new), reading time from `clock`.
    pub fn with_clock(
        source: KeySource,
        config: KeySetConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeySetConfigError> {
        let check = |raw: &str| {
            Url::parse(raw)
                .ok()
                .filter(is_https_or_loopback_http)
                .ok_or_else(|| KeySetConfigError::Url(raw.to_owned()))
        };
        let jwks_uri = match &source {
            KeySource::JwksUri(uri) => Some(Arc::new(check(uri)?)),
            KeySource::Discover { issuer } => {
                check(issuer)?;
                None
            }
            KeySource::Static(_) => None,
        };
        let client = http_client::build(
            config.connect_timeout,
            config.request_timeout,
            config.max_redirects,
        )?;
        let current = match &source {
            KeySource::Static(set) => Some(Arc::new(Loaded {
                set: set.clone(),
                generation: 1,
                fetched_at: Duration::ZERO,
                expires_at: Duration::MAX,
            })),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                config,
                clock,
                client,
                current: ArcSwapOption::new(current),
                jwks_uri: ArcSwapOption::new(jwks_uri),
                refresh: tokio::sync::Mutex::new(()),
                background_running: AtomicBool::new(false),
                last_unknown_kid_refresh: AtomicU64::new(0),
                cooldown_generation: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                unknown_kid_refreshes: AtomicU64::new(0),
                retired_kids: parking_lot::Mutex::new(std::collections::VecDeque::new()),
            }),
        })
    }

    /// Fetches the set now (if it is not loaded yet) and reports why it failed.
    pub async fn load(&self) -> Result<Arc<KeySet>, KeySetLoadError> {
        if let Some(loaded) = self.inner.current.load_full() {
            return Ok(loaded.set.clone());
        }
        let _flight = self.inner.refresh.lock().await;
        if let Some(loaded) = self.inner.current.load_full() {
            return Ok(loaded.set.clone());
        }
        self.inner
            .fetch_and_store()
            .await
            .map(|loaded| loaded.set.clone())
    }

    /// The set in use now, if one has loaded. Lock-free.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|loaded| loaded.set.clone())
    }

    /// When the set in use expires (clock time since the epoch): the fetch time plus the
    /// TTL taken from `Cache-Control` within the configured clamps. `None` before the first
    /// load.
    pub fn expires_at(&self) -> Option<Duration> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|loaded| loaded.expires_at)
    }

    /// Counters of fetches and failures.
    pub fn stats(&self) -> KeySetStats {
        KeySetStats {
            fetches: self.inner.fetches.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
            unknown_kid_refreshes: self.inner.unknown_kid_refreshes.load(Ordering::Relaxed),
        }
    }

    /// The key for a token whose header names `kid` and `alg`.
    ///
    /// Call this only for a token that passed the cheap checks (known issuer, our audience,
    /// not expired, right `typ`): an unknown `kid` triggers one refresh, single-flight,
    /// then a cooldown during which unknown kids are refused without fetching: as
    /// [`KeyLookupError::UnknownKid`] when a fetch has succeeded since the cooldown began,
    /// as [`KeyUnavailable::RefreshPending`] while none has (see
    /// [`KeySetConfig::unknown_kid_cooldown`]).
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<KeyRef, KeyUnavailable> {
        self.key_for_at(kid, alg, self.inner.clock.now()).await
    }

    /// [`key_for`](Self::key_for) at `now`, the time the caller read from this set's clock
    /// (one clock read per validation). After waiting for a fetch the clock is read again.
    pub(crate) async fn key_for_at(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: Duration,
    ) -> Result<KeyRef, KeyUnavailable> {
        let loaded = self.usable(now).await?;
        let generation = {
            let Some(set) = loaded.as_ref() else {
                unreachable!("usable() returns a loaded set")
            };
            self.inner.maybe_refresh_in_background(set, now);
            match set.set.position(kid, alg) {
                Ok(at) => return Ok(KeyRef { loaded, at }),
                Err(KeyLookupError::AlgorithmMismatch) => {
                    return Err(KeyLookupError::AlgorithmMismatch.into());
                }
                Err(KeyLookupError::UnknownKid) => set.generation,
            }
        };
        drop(loaded);
        match self.inner.refresh_for_unknown_kid(generation).await {
            UnknownKidRefresh::Refreshed => {}
            // The set is as recent as a refresh could make it, and lacks the kid.
            UnknownKidRefresh::Static | UnknownKidRefresh::UpToDate => {
                return Err(KeyLookupError::UnknownKid.into());
            }
            // No refresh succeeded. A kid the issuer retired, or no kid at all, is dead
            // whatever a refresh would say; any other kid may be a key the issuer just started
            // using: retry later rather than condemn the token.
            UnknownKidRefresh::CoolingDown(retry_after)
            | UnknownKidRefresh::Failed(retry_after) => {
                let dead = kid.is_none_or(|kid| self.inner.is_retired(kid));
                return Err(if dead {
                    KeyLookupError::UnknownKid.into()
                } else {
                    KeyUnavailable::RefreshPending { retry_after }
                });
            }
        }
        let loaded = self.usable(self.inner.clock.now()).await?;
        let at = match loaded.as_ref() {
            Some(set) => set.set.position(kid, alg)?,
            None => unreachable!("usable() returns a loaded set"),
        };
        Ok(KeyRef { loaded, at })
    }

    /// Whether `key` is still in the set in use under `kid`: a cached verification is
    /// served only while the key that made it is still published and the set is within its
    /// stale bound. Like [`key_for`](Self::key_for), it starts a background refresh when the
    /// set nears expiry, so a removed key is noticed even when every request is a cache hit.
    pub fn still_has(&self, kid: Option<&str>, key: &Arc<VerifyingKey>) -> bool {
        self.still_has_at(kid, key, self.inner.clock.now())
    }

    /// [`still_has`](Self::still_has) at `now`, read by the caller from this set's clock.
    pub(crate) fn still_has_at(
        &self,
        kid: Option<&str>,
        key: &Arc<VerifyingKey>,
        now: Duration,
    ) -> bool {
        let guard = self.inner.current.load();
        let Some(loaded) = guard.as_ref() else {
            return false;
        };
        if !self.inner.within_stale_bound(loaded, now) {
            return false;
        }
        self.inner.maybe_refresh_in_background(loaded, now);
        loaded.set.contains_under(kid, key)
    }

    /// The loaded set if it is fresh or within the stale bound at `now`; otherwise one
    /// (single-flight) fetch attempt, unless one failed recently. The set is returned pinned
    /// by an arc-swap guard: no shared reference count is written on the way.
    async fn usable(&self, now: Duration) -> Result<Pinned, KeyUnavailable> {
        {
            let loaded = self.inner.current.load();
            if loaded
                .as_ref()
                .is_some_and(|set| self.inner.within_stale_bound(set, now))
            {
                return Ok(loaded);
            }
        }
        let _flight = self.inner.refresh.lock().await;
        // The lock may have been waited for across a fetch: read the clock again.
        let now = self.inner.clock.now();
        {
            let loaded = self.inner.current.load();
            if loaded
                .as_ref()
                .is_some_and(|set| self.inner.within_stale_bound(set, now))
            {
                return Ok(loaded);
            }
        }
        if let Some(retry_after) = self.inner.failure_backoff(now) {
            return Err(KeyUnavailable::NotLoaded { retry_after });
        }
        self.inner
            .fetch_and_store()
            .await
            .map(|loaded| Guard::from_inner(Some(loaded)))
            .map_err(|_| KeyUnavailable::NotLoaded {
                retry_after: self.inner.config.retry_after_failure,
            })
    }
}

/// Why a fetch of the key set failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetLoadError {
    /// No discovery document named this issuer with a usable `jwks_uri`.
    #[error("discovery found no metadata for this issuer with a usable jwks_uri")]
    Discovery,
    /// The request failed: connection, timeout, redirect policy.
    #[error("request failed: {0}")]
    Request(String),
    /// The server answered with a non-200 status.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The body exceeded the configured limit.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a usable key set.
    #[error(transparent)]
    Invalid(#[from] KeySetError),
}

impl Inner {
    fn within_stale_bound(&self, loaded: &Loaded, now: Duration) -> bool {
        now < loaded.expires_at.saturating_add(self.config.max_stale)
    }

    fn failure_backoff(&self, now: Duration) -> Option<Duration> {
        let last = Duration::from_nanos(self.last_failure.load(Ordering::Acquire));
        if last.is_zero() {
            return None;
        }
        let until = last.saturating_add(self.config.retry_after_failure);
        (now < until).then(|| until - now)
    }

    fn generation(&self) -> u64 {
        self.current
            .load()
            .as_ref()
            .map_or(0, |loaded| loaded.generation)
    }

    /// Refreshes for an unknown kid unless within the cooldown. Says whether a lookup is
    /// worth retrying (a refresh happened, here or by a concurrent caller), and otherwise
    /// whether the set in use is as recent as a refresh could make it.
    async fn refresh_for_unknown_kid(&self, seen_generation: u64) -> UnknownKidRefresh {
        if matches!(self.source, KeySource::Static(_)) {
            return UnknownKidRefresh::Static;
        }
        let _flight = self.refresh.lock().await;
        if self.generation() != seen_generation {
            return UnknownKidRefresh::Refreshed;
        }
        let now = self.clock.now();
        let last = Duration::from_nanos(self.last_unknown_kid_refresh.load(Ordering::Acquire));
        let until = last.saturating_add(self.config.unknown_kid_cooldown);
        if !last.is_zero() && now < until {
            // Generations only grow, by successful fetches (all made under `refresh`, held).
            if seen_generation > self.cooldown_generation.load(Ordering::Acquire) {
                return UnknownKidRefresh::UpToDate;
            }
            return UnknownKidRefresh::CoolingDown((until - now).max(Duration::from_secs(1)));
        }
        self.last_unknown_kid_refresh
            .store(as_nanos(now), Ordering::Release);
        self.cooldown_generation
            .store(seen_generation, Ordering::Release);
        self.unknown_kid_refreshes.fetch_add(1, Ordering::Relaxed);
        match self.fetch_and_store().await {
            Ok(_) => UnknownKidRefresh::Refreshed,
            Err(_) => UnknownKidRefresh::Failed(
                self.config.retry_after_failure.max(Duration::from_secs(1)),
            ),
        }
    }

    /// Starts a background refresh when the set is close to (or past) expiry. Requests never
    /// wait for it: in steady state no request waits for a fetch.
    fn maybe_refresh_in_background(self: &Arc<Self>, loaded: &Loaded, now: Duration) {
        if matches!(self.source, KeySource::Static(_)) {
            return;
        }
        let ttl = loaded.expires_at.saturating_sub(loaded.fetched_at);
        // `mul_f64` would panic for a TTL near `Duration::MAX` times 1.0 (rounded up in f64).
        let ahead =
            Duration::try_from_secs_f64(ttl.as_secs_f64() * self.config.refresh_ahead_fraction())
                .map_or(ttl, |ahead| ahead.min(ttl));
        let refresh_at = loaded.expires_at.saturating_sub(ahead);
        if now < refresh_at || self.failure_backoff(now).is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        let generation = loaded.generation;
        runtime.spawn(async move {
            // Reset on every way out, a panic included, or refresh-ahead would stop for good.
            struct Running(Arc<Inner>);
            impl Drop for Running {
                fn drop(&mut self) {
                    self.0.background_running.store(false, Ordering::Release);
                }
            }
            let running = Running(inner);
            let _flight = running.0.refresh.lock().await;
            if running.0.generation() == generation {
                let _ = running.0.fetch_and_store().await;
            }
        });
    }

    /// One fetch; on success the new set replaces the old one, on failure the old one stays
    /// (stale-if-error). Callers hold `refresh`.
    async fn fetch_and_store(&self) -> Result<Arc<Loaded>, KeySetLoadError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        // Counted as failed until it succeeds: whatever way the attempt ends (an error, a
        // panic, a cancelled future), the retry backoff applies.
        self.last_failure
            .store(as_nanos(self.clock.now()).max(1), Ordering::Release);
        let previous = self.current.load_full();
        let result = self.fetch(previous.as_deref()).await;
        let now = self.clock.now();
        match result {
            Ok((set, ttl)) => {
                let loaded = Arc::new(Loaded {
                    set: Arc::new(set),
                    generation: previous.as_ref().map_or(0, |p| p.generation) + 1,
                    fetched_at: now,
                    expires_at: now.saturating_add(ttl),
                });
                let skipped = loaded.set.skipped();
                if !skipped.is_empty() {
                    // One line per fetch, however large the set.
                    let first: Vec<String> = skipped
                        .iter()
                        .take(5)
                        .map(|k| format!("#{} {:?}: {}", k.index, k.kid, k.reason))
                        .collect();
                    tracing::warn!(target: LOG_TARGET, source = %self.describe(), skipped = skipped.len(), first = ?first, "skipped keys of the key set");
                }
                tracing::debug!(target: LOG_TARGET, source = %self.describe(), keys = loaded.set.len(), ttl_secs = ttl.as_secs(), "key set loaded");
                if let Some(previous) = &previous {
                    self.retire_kids_missing_from(&previous.set, &loaded.set);
                }
                self.current.store(Some(loaded.clone()));
                self.last_failure.store(0, Ordering::Release);
                Ok(loaded)
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_failure
                    .store(as_nanos(now).max(1), Ordering::Release);
                if matches!(self.source, KeySource::Discover { .. }) {
                    // The issuer may have moved its keys: discover again next time.
                    self.jwks_uri.store(None);
                }
                tracing::warn!(target: LOG_TARGET, source = %self.describe(), %error, kept_previous = previous.is_some(), "key set fetch failed");
                Err(error)
            }
        }
    }

    /// Remembers the kids of `old` that `new` no longer has.
    fn retire_kids_missing_from(&self, old: &KeySet, new: &KeySet) {
        const MAX_RETIRED: usize = 256;
        let mut retired = self.retired_kids.lock();
        for kid in old.kids().filter(|kid| !new.has_kid(kid)) {
            if !retired.iter().any(|known| &**known == kid) {
                if retired.len() == MAX_RETIRED {
                    retired.pop_front();
                }
                retired.push_back(kid.into());
            }
        }
        // A kid published again is alive again.
        retired.retain(|kid| !new.has_kid(kid));
    }

    fn is_retired(&self, kid: &str) -> bool {
        self.retired_kids.lock().iter().any(|known| &**known == kid)
    }

    fn describe(&self) -> String {
        match &self.source {
            KeySource::JwksUri(uri) => uri.clone(),
            KeySource::Discover { issuer } => issuer.clone(),
            KeySource::Static(_) => "static".to_owned(),
        }
    }

    async fn fetch(
        &self,
        previous: Option<&Loaded>,
    ) -> Result<(KeySet, Duration), KeySetLoadError> {
        let uri = match self.jwks_uri.load_full() {
            Some(uri) => uri,
            None => {
                let KeySource::Discover { issuer } = &self.source else {
                    return Err(KeySetLoadError::Discovery);
                };
                let uri = Arc::new(self.discover(issuer).await?);
                self.jwks_uri.store(Some(uri.clone()));
                uri
            }
        };
        let (body, cache_control) = self.get((*uri).clone()).await?;
        let set =
            KeySet::from_jwks_reusing(&body, &self.config.key_options, previous.map(|p| &*p.set))?;
        Ok((set, self.ttl_from(cache_control.as_deref())))
    }

    async fn discover(&self, issuer: &str) -> Result<Url, KeySetLoadError> {
        let urls = super::discovery_urls(issuer).map_err(|_| KeySetLoadError::Discovery)?;
        for candidate in urls {
            let Ok(url) = Url::parse(&candidate) else {
                continue;
            };
            let body = match self.get(url).await {
                Ok((body, _)) => body,
                Err(error) => {
                    tracing::debug!(target: LOG_TARGET, url = %candidate, %error, "discovery candidate failed");
                    continue;
                }
            };
            let Ok(document) = serde_json::from_slice::<serde_json::Value>(&body) else {
                continue;
            };
            // RFC 8414 §3.3: the document's issuer must be the one the URL was built from.
            if document.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
                tracing::warn!(target: LOG_TARGET, url = %candidate, "discovery document names another issuer; ignored");
                continue;
            }
            let jwks_uri = document
                .get("jwks_uri")
                .and_then(|v| v.as_str())
                .and_then(|u| Url::parse(u).ok());
            match jwks_uri {
                Some(uri) if is_allowed_discovered_url(issuer, &uri) => {
                    return Ok(uri);
                }
                _ => {
                    tracing::warn!(target: LOG_TARGET, url = %candidate, "discovery document has no usable jwks_uri")
                }
            }
        }
        Err(KeySetLoadError::Discovery)
    }

    /// GET with the body limit enforced while reading.
    async fn get(&self, url: Url) -> Result<(Vec<u8>, Option<String>), KeySetLoadError> {
        let limit = self.config.max_body_bytes;
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| KeySetLoadError::Request(error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(KeySetLoadError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(KeySetLoadError::TooLarge(limit));
        }
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| KeySetLoadError::Request(error_chain(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(KeySetLoadError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, cache_control))
    }

    fn ttl_from(&self, cache_control: Option<&str>) -> Duration {
        let config = &self.config;
        let ttl = match cache_control.map(parse_cache_control) {
            Some(CacheDirective::MaxAge(seconds)) => Duration::from_secs(seconds),
            Some(CacheDirective::NoCache) => config.min_ttl,
            Some(CacheDirective::None) | None => config.default_ttl,
        };
        ttl.clamp(config.min_ttl, config.max_ttl.max(config.min_ttl))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum CacheDirective {
    MaxAge(u64),
    NoCache,
    None,
}

fn parse_cache_control(value: &str) -> CacheDirective {
    let mut result = CacheDirective::None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return CacheDirective::NoCache;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=")
            && let Ok(seconds) = seconds.trim_matches('"').parse::<u64>()
        {
            result = CacheDirective::MaxAge(seconds);
        }
    }
    result
}

fn as_nanos(time: Duration) -> u64 {
    u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_urls_must_be_https_except_on_loopback() {
        let build =
            |uri: &str| RemoteKeySet::new(KeySource::JwksUri(uri.into()), KeySetConfig::default());
        assert!(build("https://as.example.com/jwks").is_ok());
        assert!(build("http://127.0.0.1:9/jwks").is_ok());
        assert!(matches!(
            build("http://as.example.com/jwks"),
            Err(KeySetConfigError::Url(_))
        ));
        assert!(matches!(build("not a url"), Err(KeySetConfigError::Url(_))));
        let discover = |issuer: &str| {
            RemoteKeySet::new(
                KeySource::Discover {
                    issuer: issuer.into(),
                },
                KeySetConfig::default(),
            )
        };
        assert!(matches!(
            discover("http://as.example.com"),
            Err(KeySetConfigError::Url(_))
        ));
    }

    #[test]
    fn refresh_ahead_of_a_set_that_never_expires_does_not_panic() {
        // Fetched at the epoch with an unbounded TTL, refreshed ahead by the whole TTL: the
        // product, rounded up in f64, exceeds `Duration::MAX`.
        let keys = RemoteKeySet::with_clock(
            KeySource::JwksUri("https://as.example.com/jwks".into()),
            KeySetConfig {
                refresh_ahead: 1.0,
                ..KeySetConfig::default()
            },
            Arc::new(crate::clock::ManualClock::new(0)),
        )
        .unwrap();
        let loaded = Loaded {
            set: Arc::new(KeySet::default()),
            generation: 1,
            fetched_at: Duration::ZERO,
            expires_at: Duration::MAX,
        };
        // Due at once; outside a runtime nothing is spawned.
        keys.inner
            .maybe_refresh_in_background(&loaded, Duration::ZERO);
        assert!(!keys.inner.background_running.load(Ordering::Acquire));
    }

    #[test]
    fn cache_control_max_age_is_read_and_no_cache_means_the_minimum() {
        assert_eq!(
            parse_cache_control("public, max-age=600"),
            CacheDirective::MaxAge(600)
        );
        assert_eq!(
            parse_cache_control("Max-Age=42, must-revalidate"),
            CacheDirective::MaxAge(42)
        );
        assert_eq!(parse_cache_control("no-store"), CacheDirective::NoCache);
        assert_eq!(parse_cache_control("max-age=abc"), CacheDirective::None);
        assert_eq!(parse_cache_control("private"), CacheDirective::None);
    }
}
