//! State shared by the replicas of one deployment, on Redis (feature `redis`).
//!
//! With one process, every limit and memory of mcp-oauth lives in it. Behind a load balancer
//! with N replicas, a per-principal budget of 60/min would become 60 × N/min, a DPoP proof
//! replayed to another replica would pass, a session made on one replica would be unknown on
//! the next, and a revoked token would pass wherever the revocation was not heard. One
//! [`RedisState`] serves them all, each behind the trait the in-memory default implements:
//!
//! | what | trait | Redis | on the request path |
//! |---|---|---|---|
//! | rate limits per principal | [`RateLimitStore`](crate::rate_limit::RateLimitStore) | a single-key Lua script (GCRA, one timestamp per bucket) reading Redis' own clock | one round trip after validation, when a per-principal budget is set |
//! | failed-authentication budget per address | same | same script, charged only for a failure | none for a request whose token verifies: the gate reads a local view that the replies to failures keep current |
//! | DPoP `jti` replay | [`ReplayStore`](crate::dpop::ReplayStore) | `SET NX EX` | one round trip per DPoP request |
//! | DPoP nonce key | — | `SET NX` then `GET`, at startup | none |
//! | session bindings and rmcp's session store | [`SessionBindings`](crate::http::SessionBindings), `rmcp::…::session::store::SessionStore` | one hash per session | none once a replica has seen the session |
//! | introspection answers | [`SharedIntrospectionCache`](crate::introspection::SharedIntrospectionCache) | the endpoint's answer, expiring with the token | on a local miss only |
//! | revocations | [`RevocationBackend`](crate::revocation::RevocationBackend) | a sorted set (member, `exp`) and publish/subscribe, the subscription pinged every second | none: a local mirror, re-read in full after every reconnect and every 30 s; a revocation that could not be shared is shared again |
//!
//! **Which Redis.** Redis 6.2 or later (`ZADD GT`, `ZRANGE BYSCORE`), one primary: standalone,
//! or behind a TCP endpoint that follows failover. Every operation is on one key, so a
//! sharded deployment would need no cross-slot work, but this client talks to one node:
//! Redis Cluster is not supported yet. Set `maxmemory-policy noeviction` (Redis' default; a
//! warning at startup says when it is not): an evicted proof id would let a replayed DPoP
//! proof pass; and a failover to an asynchronously replicated replica can lose the proof ids
//! written just before it (a replay window of a few milliseconds that persistence does not
//! close). Redis is trusted like the process itself: whoever can write to it can lift
//! limits, forge introspection answers or restore sessions.
//!
//! Keys start with a configurable [prefix](RedisConfig::prefix) (`mcp-oauth:`) and never hold
//! a token, a subject or an address in the clear: SHA-256 digests, which are not secret for a
//! guessable input (an IPv4 address); the shared introspection answers hold the endpoint's
//! response (subject, client, scopes) as it sent it.
//!
//! **Failure is defined.** Each operation has a [timeout](RedisConfig::timeout) (25 ms). A
//! lost connection, or [`TIMEOUTS_BEFORE_DOWN`] timeouts in a row, mark the store unavailable
//! (a warning, the metric `mcp_oauth_shared_store_available` at 0) and a background task
//! probes it until it answers again; meanwhile no request waits on Redis (an operation that
//! timed out or got an error reply meanwhile is decided the same way, alone):
//! - token validation never needed it;
//! - DPoP proofs are refused with 503 and `Retry-After` (a proof that might be a replay is
//!   never accepted);
//! - rate limits apply this replica's share of each budget ([`Budget::share`] by
//!   [`replicas`](RedisConfig::replicas)), and audit events say `rate_limit_fallback`;
//! - a session this replica has not seen yet gets 503 (its owner cannot be checked);
//! - introspection calls the endpoint; revocations keep the local mirror, and are re-read in
//!   full once the subscription is back.
//!
//! **Why redis-rs.** `redis` (redis-rs) is the client most of the Rust ecosystem runs on,
//! kept by the Redis organisation; its [`ConnectionManager`](::redis::aio::ConnectionManager)
//! multiplexes every request of a process over one connection (concurrent commands are
//! pipelined), reconnects on its own, and speaks TLS (`rediss://`) through rustls. fred is a
//! fine client too, with more built in (pools, cluster discovery, its own reconnection
//! policies), but heavier than this needs: the operations here are single commands and
//! single-key scripts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth::redis::{RedisConfig, RedisState};
//!
//! let redis = RedisState::connect(RedisConfig::new("redis://127.0.0.1:6379/").replicas(3))?;
//! // OAuthLayer::builder(config, validator).shared_state(redis.clone()) wires every store;
//! // the one-call setup does it when MCP_OAUTH_REDIS_URL is set.
//! # let _ = redis;
//! # Ok(()) }
//! ```

mod introspection;
mod rate_limit;
mod replay;
mod revocation;
mod sessions;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;

use crate::rate_limit::{Budget, InMemoryRateLimitStore, RateLimitKey};

pub use rate_limit::{GCRA_ACQUIRE, GCRA_RELEASE};
#[cfg(feature = "rmcp")]
pub use sessions::RedisSessionStore;

const LOG_TARGET: &str = "mcp_oauth::redis";

/// The default operation timeout: a loopback or same-zone Redis answers in well under a
/// millisecond; a request never waits longer than this for one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(25);

/// Timeouts in a row after which the store is taken for unavailable (one could be a worker
/// thread that was not scheduled in time, not Redis).
pub const TIMEOUTS_BEFORE_DOWN: u32 = 3;

/// The timeout of work off the request path (sharing a revocation, reading the list).
const DETACHED_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a session binding is kept after its last write (24 hours).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How to reach Redis and what to assume when it cannot be reached.
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    timeout: Duration,
    replicas: u32,
    session_ttl: Duration,
    probe_interval: Duration,
}

impl fmt::Debug for RedisConfig {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

/// A Redis URL with any password replaced by `***` (for logs).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() || !parsed.username().is_empty() => {
            // `redis://secret@host` puts a password where the user name goes.
            let _ = parsed.set_username("***");
            let _ = parsed.set_password(parsed.password().map(|_| "***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<not a URL>".to_owned(),
    }
}

impl RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "mcp-oauth:".to_owned(),
            timeout: DEFAULT_TIMEOUT,
            replicas: 1,
            session_ttl: DEFAULT_SESSION_TTL,
            probe_interval: Duration::from_millis(200),
        }
    }

    /// The prefix of every key (default `mcp-oauth:`): deployments sharing one Redis use
    /// different prefixes.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a request waits for one operation (default [`DEFAULT_TIMEOUT`], at least
    /// 1 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many replicas share the budgets: while Redis is unreachable each applies
    /// `1/replicas` of every budget (default 1: the whole budget).
    #[must_use]
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// How long a session is remembered after it was created or last stored (default
    /// [`DEFAULT_SESSION_TTL`]).
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// How often an unavailable store is probed (default 200 ms).
    #[must_use]
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval.max(Duration::from_millis(10));
        self
    }
}

/// Why the shared state could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// The URL is not a Redis URL.
    #[error("not a Redis URL (redis:// or rediss://): {0}")]
    Url(String),
    /// Redis did not answer a startup step that cannot be skipped (the shared DPoP nonce
    /// key).
    #[error("Redis did not answer: {0}")]
    Unreachable(String),
}

/// An operation that did not complete (Redis unreachable, slow, or an error reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(pub(crate) String);

/// The shared state of one deployment on Redis; cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

struct Inner {
    client: ::redis::Client,
    connection: ConnectionManager,
    /// For work off the request path, with [`DETACHED_TIMEOUT`].
    detached: ConnectionManager,
    config: RedisConfig,
    available: AtomicBool,
    /// Operations that timed out since the last that answered.
    timeouts_in_a_row: AtomicU32,
    /// Wakes the probe when an operation failed.
    down: Notify,
    /// The budgets applied while Redis is unreachable: each replica's share.
    local_budgets: InMemoryRateLimitStore,
    /// Failed-authentication reservations in flight on this replica, bounded by the whole
    /// budget: the shared bucket is charged only once an attempt failed, so this bounds how
    /// many attempts of one address are judged at once.
    in_flight: InMemoryRateLimitStore,
    /// The failed-authentication gate's local view: until when (layer clock, since the
    /// epoch) the shared store last said a bucket is empty.
    blocked: quick_cache::sync::Cache<RateLimitKey, Duration>,
    /// Session bindings this replica has seen (a binding never changes owner).
    sessions: crate::http::InMemorySessionBindings,
}

impl fmt::Debug for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState")
            .field("config", &self.inner.config)
            .field("available", &self.is_available())
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Sets up the connection (made in the background: this never waits for Redis, and an
    /// unreachable Redis at startup is an outage like any other) and the probe. Needs a
    /// Tokio runtime.
    pub fn connect(config: RedisConfig) -> Result<Self, RedisSetupError> {
        if !(config.url.starts_with("redis://") || config.url.starts_with("rediss://")) {
            return Err(RedisSetupError::Url(redacted(&config.url)));
        }
        let client = ::redis::Client::open(config.url.as_str())
            .map_err(|error| RedisSetupError::Url(format!("{}: {error}", redacted(&config.url))))?;
        let manager = |response_timeout| {
            let settings = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(250))))
                .set_response_timeout(Some(response_timeout))
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1));
            ConnectionManager::new_lazy_with_config(client.clone(), settings).map_err(|error| {
                RedisSetupError::Url(format!("{}: {error}", redacted(&config.url)))
            })
        };
        let connection = manager(config.timeout)?;
        // Work off the request path (sharing and reading revocations) waits longer, on a
        // connection of its own so that it never queues before a request's command.
        let detached = manager(DETACHED_TIMEOUT)?;
        let state = Self {
            inner: Arc::new(Inner {
                client,
                connection,
                detached,
                available: AtomicBool::new(true),
                timeouts_in_a_row: AtomicU32::new(0),
                down: Notify::new(),
                local_budgets: InMemoryRateLimitStore::default(),
                in_flight: InMemoryRateLimitStore::default(),
                blocked: quick_cache::sync::Cache::new(100_000),
                sessions: crate::http::InMemorySessionBindings::default(),
                config,
            }),
        };
        tokio::spawn(probe(Arc::downgrade(&state.inner)));
        tokio::spawn(check_eviction_policy(state.clone()));
        Ok(state)
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Whether the store is taken for available: no connection failure, nor
    /// [`TIMEOUTS_BEFORE_DOWN`] timeouts in a row, since the last answer (or probe).
    pub fn is_available(&self) -> bool {
        self.inner.available.load(Ordering::Acquire)
    }

    /// Whether decisions may be falling back to this replica's share now: the store is
    /// unavailable, or its last operation timed out.
    pub(crate) fn is_failing(&self) -> bool {
        !self.is_available() || self.inner.timeouts_in_a_row.load(Ordering::Relaxed) > 0
    }

    /// Waits until Redis answers a `PING` (at most `within`): for startup checks and tests.
    pub async fn ready(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.ping().await {
                self.mark_up();
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The shared DPoP nonce key: created once by the first replica (`SET NX`), read by the
    /// others, so a nonce issued by one replica is accepted by all. Needs Redis to answer
    /// (within a few seconds): a replica with a key of its own would refuse the others'
    /// nonces.
    pub async fn dpop_nonce_key(&self) -> Result<[u8; 32], RedisSetupError> {
        use rand::RngCore as _;
        if !self.ready(Duration::from_secs(5)).await {
            return Err(RedisSetupError::Unreachable(format!(
                "{} (for the shared DPoP nonce key)",
                redacted(&self.inner.config.url)
            )));
        }
        let key = self.key("dpop:nonce-key");
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let mut connection = self.inner.connection.clone();
        let stored: Result<Vec<u8>, _> = ::redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&fresh[..])
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key)
            .query_async::<(Vec<u8>,)>(&mut connection)
            .await
            .map(|(value,)| value);
        match stored {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                Ok(key)
            }
            Ok(_) => Err(RedisSetupError::Unreachable(
                "the stored DPoP nonce key is not 32 bytes".into(),
            )),
            Err(error) => Err(RedisSetupError::Unreachable(error.to_string())),
        }
    }
}

impl crate::http::SharedState for RedisState {
    fn rate_limit_store(&self) -> Arc<dyn crate::rate_limit::RateLimitStore> {
        Arc::new(self.clone())
    }

    fn replay_store(&self) -> Arc<dyn crate::dpop::ReplayStore> {
        Arc::new(self.clone())
    }

    fn session_bindings(&self) -> Arc<dyn crate::http::SessionBindings> {
        Arc::new(self.clone())
    }

    fn share_revocations(&self, revocations: &crate::revocation::Revocations) {
        RedisState::share_revocations(self, revocations);
    }
}

impl RedisState {
    /// `prefix` + `suffix`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.inner.config.prefix.len() + suffix.len());
        key.push_str(&self.inner.config.prefix);
        key.push_str(suffix);
        key
    }

    /// Runs one operation of the request path within the timeout. While the store is
    /// unavailable, operations fail at once (the probe finds out when it is back); a
    /// connection failure, or [`TIMEOUTS_BEFORE_DOWN`] timeouts in a row, mark it unavailable.
    /// An error reply of the server (out of memory, a wrong type) fails this operation only.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        self.run_with(operation, true, call).await
    }

    /// [`run`](Self::run) for an operation whose failure costs nothing but a saving (the
    /// shared introspection answers): it never marks the store unavailable, so a slow lookup
    /// cannot turn DPoP off.
    pub(crate) async fn run_best_effort<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        self.run_with(operation, false, call).await
    }

    async fn run_with<T, F, Fut>(
        &self,
        operation: &'static str,
        counts: bool,
        call: F,
    ) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        if !self.is_available() {
            return Err(Unavailable("the shared store is unavailable".into()));
        }
        let connection = self.inner.connection.clone();
        let outcome = tokio::time::timeout(self.inner.config.timeout, call(connection)).await;
        let (why, down) = match outcome {
            Ok(Ok(value)) => {
                if counts {
                    self.inner.timeouts_in_a_row.store(0, Ordering::Relaxed);
                }
                return Ok(value);
            }
            // redis-rs' own response timeout is an I/O error too: a timeout first.
            Ok(Err(error)) if error.is_timeout() => (error.to_string(), counts && self.timed_out()),
            Ok(Err(error)) => {
                let unreachable = error.is_io_error()
                    || error.is_connection_refusal()
                    || error.is_connection_dropped()
                    || error.is_unrecoverable_error();
                (error.to_string(), unreachable)
            }
            Err(_) => (
                format!("no answer within {:?}", self.inner.config.timeout),
                counts && self.timed_out(),
            ),
        };
        crate::metrics::record_shared_store_failure(operation);
        if counts && down {
            Err(self.failed(operation, why))
        } else {
            tracing::debug!(target: LOG_TARGET, operation, error = %why, "a shared-store operation failed");
            Err(Unavailable(why))
        }
    }

    /// Counts a timeout; `true` once there were enough in a row to call the store down.
    fn timed_out(&self) -> bool {
        self.inner.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_BEFORE_DOWN
    }

    /// Runs an operation off the request path (sharing a revocation) with a longer timeout,
    /// whether or not the store is marked available, without changing that mark. A
    /// connection found broken (Redis restarted since the last command) is tried once more:
    /// the connection manager reconnects after reporting it.
    pub(crate) async fn run_detached<T, F, Fut>(&self, call: F) -> Result<T, Unavailable>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        let attempt = async {
            match call(self.inner.detached.clone()).await {
                Err(error) if error.is_connection_dropped() || error.is_io_error() => {
                    call(self.inner.detached.clone()).await
                }
                answer => answer,
            }
        };
        match tokio::time::timeout(DETACHED_TIMEOUT, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Unavailable(error.to_string())),
            Err(_) => Err(Unavailable(format!(
                "no answer within {DETACHED_TIMEOUT:?}"
            ))),
        }
    }

    fn failed(&self, operation: &'static str, why: String) -> Unavailable {
        if self.inner.available.swap(false, Ordering::AcqRel) {
            crate::metrics::record_shared_store_available(false);
            tracing::warn!(
                target: LOG_TARGET,
                operation,
                error = %why,
                replicas = self.inner.config.replicas,
                "the shared store (Redis) is unavailable: DPoP proofs get 503, rate limits apply \
                 this replica's share of each budget, until it answers again"
            );
            self.inner.down.notify_one();
        }
        Unavailable(why)
    }

    fn mark_up(&self) {
        self.inner.timeouts_in_a_row.store(0, Ordering::Relaxed);
        if !self.inner.available.swap(true, Ordering::AcqRel) {
            crate::metrics::record_shared_store_available(true);
            tracing::info!(target: LOG_TARGET, "the shared store (Redis) answers again");
        }
    }

    async fn ping(&self) -> bool {
        let mut connection = self.inner.connection.clone();
        let command = ::redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        matches!(
            tokio::time::timeout(self.inner.config.timeout, ping).await,
            Ok(Ok(_))
        )
    }

    pub(crate) fn local_share(&self, budget: Budget) -> Budget {
        budget.share(self.inner.config.replicas)
    }
}

/// Warns, once Redis answers, when its eviction policy could drop keys under memory pressure:
/// an evicted proof id lets a replayed DPoP proof pass. (A managed Redis may refuse `CONFIG`:
/// then nothing is said.)
async fn check_eviction_policy(state: RedisState) {
    if !state.ready(Duration::from_secs(30)).await {
        return;
    }
    let mut connection = state.inner.connection.clone();
    let command = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .clone();
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        command.query_async::<Vec<String>>(&mut connection),
    )
    .await;
    if let Ok(Ok(pair)) = answer
        && let Some(policy) = pair.get(1)
        && policy != "noeviction"
    {
        tracing::warn!(
            target: LOG_TARGET,
            policy = %policy,
            "Redis may evict keys under memory pressure (maxmemory-policy): an evicted DPoP \
             proof id would let a replayed proof pass. Set maxmemory-policy noeviction for \
             the Redis that mcp-oauth uses"
        );
    }
}

/// Waits for an outage, then pings until Redis answers; ends with the state.
async fn probe(state: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = state.upgrade() else {
            return;
        };
        let interval = inner.config.probe_interval;
        if inner.available.load(Ordering::Acquire) {
            // Checked again now and then, in case a notification raced the check; the state
            // is held no longer than that.
            let _ = tokio::time::timeout(Duration::from_secs(1), inner.down.notified()).await;
            continue;
        }
        drop(inner);
        tokio::time::sleep(interval).await;
        let Some(inner) = state.upgrade() else {
            return;
        };
        let state_now = RedisState { inner };
        if state_now.ping().await {
            state_now.mark_up();
        } else {
            crate::metrics::record_shared_store_failure("ping");
        }
    }
}
