#![cfg(feature = "redis")]
//! Two replicas of one deployment, each an `OAuthLayer` with its own `RedisState` on one real
//! `redis-server` (started by each test on a loopback port), driven in process (the layer's
//! service called directly, the client address handed over as `PeerAddr`, a recording
//! endpoint behind it): budgets, DPoP replay, sessions and revocations shared between them,
//! and what each replica does when Redis is stopped, restarted or paused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::IntoResponse;
use common::{AUDIENCE as RESOURCE, within};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use mcp_oauth::Validator;
use mcp_oauth::audit::{AuditEvent, AuditSink, reason};
use mcp_oauth::dpop::DpopMode;
use mcp_oauth::http::{OAuthLayer, OAuthLayerBuilder, OAuthService, PeerAddr};
use mcp_oauth::rate_limit::{Budget, InMemoryRateLimitStore, RateLimits};
use mcp_oauth::redis::{RedisConfig, RedisState};
use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
use mcp_oauth::revocation::Revocation;
use mcp_oauth::testing::{DpopKey, RedisServer, TestIssuer};
use parking_lot::Mutex;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The harness.

static CALENDAR: ResourceDeclaration = ResourceDeclaration {
    scopes: &["calendar:read"],
    ..ResourceDeclaration::new("Calendar", RESOURCE, &["http://127.0.0.1/issuer"])
};

/// The one client address every request comes from.
fn peer() -> SocketAddr {
    "203.0.113.7:50000".parse().unwrap()
}

/// Wires the shared state into a layer, as a deployment does.
fn shared(builder: OAuthLayerBuilder, state: &RedisState) -> OAuthLayerBuilder {
    builder.shared_state(state.clone())
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    fn last(&self) -> AuditEvent<'static> {
        self.0.lock().last().cloned().expect("an audit event")
    }

    /// Every event since the last call.
    fn take(&self) -> Vec<AuditEvent<'static>> {
        std::mem::take(&mut *self.0.lock())
    }
}

struct Options {
    limits: RateLimits,
    replicas: u32,
    /// `None`: the default operation timeout (25 ms). The other tests allow more: a loaded
    /// test machine can stall a process longer than 25 ms, and their failures must come from
    /// the outage they stage only.
    timeout: Option<Duration>,
    prefix: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: RateLimits::default(),
            replicas: 1,
            timeout: Some(Duration::from_millis(500)),
            prefix: "mcp-oauth:",
        }
    }
}

struct Replica {
    state: RedisState,
    layer: OAuthLayer,
    app: OAuthService<axum::Router>,
    events: Collect,
    endpoint_calls: Arc<AtomicUsize>,
}

struct Cluster {
    redis: RedisServer,
    issuer: TestIssuer,
    a: Replica,
    b: Replica,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn session(&self) -> String {
        self.headers["mcp-session-id"].to_str().unwrap().to_owned()
    }

    fn retry_after(&self) -> Option<u64> {
        self.headers
            .get("retry-after")
            .map(|value| value.to_str().unwrap().parse().unwrap())
    }

    /// The `error` of the first `WWW-Authenticate` challenge, and its scheme.
    fn challenge_error(&self) -> Option<(String, String)> {
        let text = self.headers.get("www-authenticate")?.to_str().unwrap();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let params = mcp_oauth::challenge::parse(&format!("Bearer {rest}"))?;
        let error = params.into_iter().find(|(name, _)| name == "error")?.1;
        Some((scheme.to_owned(), error))
    }
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

async fn start(options: Options) -> Cluster {
    let redis = RedisServer::start().await.expect("redis-server");
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let a = Replica::start(&redis, &issuer, &options).await;
    let b = Replica::start(&redis, &issuer, &options).await;
    Cluster {
        redis,
        issuer,
        a,
        b,
    }
}

fn redis_config(redis: &RedisServer, options: &Options) -> RedisConfig {
    let config = RedisConfig::new(redis.url())
        .prefix(options.prefix)
        .replicas(options.replicas);
    match options.timeout {
        Some(timeout) => config.timeout(timeout),
        None => config,
    }
}

impl Replica {
    async fn start(redis: &RedisServer, issuer: &TestIssuer, options: &Options) -> Replica {
        let state = RedisState::connect(redis_config(redis, options)).unwrap();
        assert!(state.ready(Duration::from_secs(5)).await, "Redis answers");
        let config = ResourceConfig::from_declaration(&CALENDAR)
            .unwrap()
            .resource(RESOURCE)
            .authorization_servers([issuer.issuer()])
            .dpop(DpopMode::Allowed);
        let validator = Validator::builder()
            .issuer(common::policy(issuer).build().unwrap())
            .build()
            .unwrap();
        let events = Collect::default();
        let layer = shared(
            OAuthLayer::builder(config, validator)
                // A store of its own, as in a process of its own (a clone of `RateLimits`
                // shares its store); the shared state replaces it.
                .rate_limits(
                    options
                        .limits
                        .clone()
                        .store(InMemoryRateLimitStore::default()),
                )
                .audit_sink(events.clone()),
            &state,
        )
        .build()
        .unwrap();
        let endpoint_calls = Arc::new(AtomicUsize::new(0));
        let calls = endpoint_calls.clone();
        // Answers a result; asked with `x-open-session` (and no session yet), creates a
        // session as a server keeping legacy sessions does.
        let endpoint = axum::routing::any(move |headers: HeaderMap| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let mut response = (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    json!({"jsonrpc": "2.0", "id": 1, "result": {}}).to_string(),
                )
                    .into_response();
                if headers.contains_key("x-open-session") && !headers.contains_key("mcp-session-id")
                {
                    let id = format!(
                        "session-{}-{}",
                        NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap()
                            .as_nanos()
                    );
                    response
                        .headers_mut()
                        .insert("mcp-session-id", HeaderValue::from_str(&id).unwrap());
                }
                response
            }
        });
        let app = tower_layer::Layer::layer(&layer, axum::Router::new().route("/mcp", endpoint));
        Replica {
            state,
            layer,
            app,
            events,
            endpoint_calls,
        }
    }

    async fn send(&self, headers: &[(&str, &str)]) -> Reply {
        let mut builder = Request::builder()
            .method("POST")
            .uri("/mcp")
            .header("host", "mcp.example.com")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}});
        let mut request = builder.body(Body::from(body.to_string())).unwrap();
        request.extensions_mut().insert(PeerAddr(peer()));
        let mut service = self.app.clone();
        std::future::poll_fn(|cx| {
            tower_service::Service::<Request<Body>>::poll_ready(&mut service, cx)
        })
        .await
        .unwrap();
        let response = tower_service::Service::call(&mut service, request)
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn bearer(&self, token: &str) -> Reply {
        self.bearer_with(token, &[]).await
    }

    async fn bearer_with(&self, token: &str, headers: &[(&str, &str)]) -> Reply {
        let authorization = format!("Bearer {token}");
        let mut all = vec![("authorization", authorization.as_str())];
        all.extend_from_slice(headers);
        self.send(&all).await
    }

    /// `Authorization: DPoP <token>` with `proof`.
    async fn dpop(&self, token: &str, proof: &str) -> Reply {
        let authorization = format!("DPoP {token}");
        self.send(&[("authorization", authorization.as_str()), ("dpop", proof)])
            .await
    }

    async fn status(&self, token: &str) -> u16 {
        self.bearer(token).await.status.as_u16()
    }

    fn validations(&self) -> u64 {
        self.layer.validator().stats().validations
    }
}

impl Cluster {
    fn token(&self, subject: &str) -> String {
        self.issuer
            .token()
            .subject(subject)
            .scope("calendar:read")
            .sign()
    }

    /// A token for `subject` bound to `key` (`cnf.jkt`).
    fn bound_token(&self, subject: &str, key: &DpopKey) -> String {
        self.issuer
            .token()
            .subject(subject)
            .scope("calendar:read")
            .claim("cnf", json!({ "jkt": key.jkt() }))
            .sign()
    }

    /// A distinct token that fails validation (after parsing: a bad signature).
    fn garbage(&self, n: usize) -> String {
        let token = self.issuer.token().jti(format!("garbage-{n}")).sign();
        let (rest, _) = token.rsplit_once('.').unwrap();
        format!("{rest}.AAAA")
    }

    /// Waits until both replicas hold a subscription to the revocation channel.
    async fn both_subscribed(&self, prefix: &str, within_: Duration) -> bool {
        let channel = format!("{prefix}revoked");
        within(within_, || {
            let channel = channel.clone();
            async move {
                self.redis
                    .command(&["PUBSUB", "NUMSUB", &channel])
                    .await
                    .is_ok_and(|reply| format!("{reply:?}").contains("int(2)"))
            }
        })
        .await
    }
}

fn proof(key: &DpopKey, token: &str) -> String {
    key.proof("POST", RESOURCE, Some(token))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Until when a revocation of a token minted now holds (its `exp`, now + 300 s).
fn token_exp() -> u64 {
    unix_now() + 300
}

/// Statuses of `token` sent `count` times to `replica`.
async fn statuses(replica: &Replica, token: &str, count: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(replica.status(token).await);
    }
    out
}

/// The refusal of a revoked token: 401 `invalid_token`, audited as `revoked`.
fn assert_revoked(replica: &Replica, reply: &Reply) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(
        reply.challenge_error(),
        Some(("Bearer".to_owned(), "invalid_token".to_owned())),
        "{reply:?}"
    );
    assert_eq!(reply.body["error"], "invalid_token", "{reply:?}");
    assert_eq!(replica.events.last().reason, "revoked");
}

// ---------------------------------------------------------------------------------------
// 1. Rate limits.

#[tokio::test]
async fn a_principal_budget_is_one_budget_across_two_replicas() {
    let cluster = start(Options {
        limits: RateLimits::default().per_principal(Budget::per_minute(1).burst(5)),
        ..Options::default()
    })
    .await;
    let (a, b) = (&cluster.a, &cluster.b);

    // In turns: five in all pass, wherever they land; every later one is refused on both.
    let alice = cluster.token("alice");
    let mut seen = Vec::new();
    for i in 0..12 {
        let replica = if i % 2 == 0 { a } else { b };
        seen.push(replica.status(&alice).await);
    }
    assert_eq!(
        seen,
        [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]
    );
    let event = b.events.last();
    assert_eq!(event.reason, reason::RATE_LIMITED_PRINCIPAL);
    assert!(!event.rate_limit_fallback, "{event:#?}");
    let limited = a.bearer(&alice).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"], "too_many_requests");
    assert!(
        matches!(limited.retry_after(), Some(55..=60)),
        "one unit refills every 60 s: {limited:?}"
    );

    // At once, from both sides: still five.
    let bob = cluster.token("bob");
    let replies = futures::future::join_all((0..16).map(|i| {
        let replica = if i % 2 == 0 { a } else { b };
        replica.status(&bob)
    }))
    .await;
    assert_eq!(
        replies.iter().filter(|s| **s == 200).count(),
        5,
        "{replies:?}"
    );
    assert_eq!(
        replies.iter().filter(|s| **s == 429).count(),
        11,
        "{replies:?}"
    );
    assert!(a.state.is_available() && b.state.is_available());
}

#[tokio::test]
async fn the_failed_authentication_budget_of_an_address_is_shared() {
    let cluster = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1).burst(3)),
        ..Options::default()
    })
    .await;
    let (a, b) = (&cluster.a, &cluster.b);

    // Replica A spends the address' budget; its last failure's answer closes A's gate.
    for n in 0..3 {
        assert_eq!(a.status(&cluster.garbage(n)).await, 401);
    }
    assert_eq!(a.validations(), 3);
    let refused = a.bearer(&cluster.garbage(3)).await;
    assert_eq!(refused.status, 429);
    assert!(refused.retry_after().is_some_and(|s| s > 0), "{refused:?}");
    assert_eq!(a.validations(), 3, "the gate refused before validation");

    // Replica B's gate reads a local view kept by the shared store's answers to failures:
    // it may judge one token before it hears "limited" (never a budget of its own).
    let mut b_statuses = Vec::new();
    for n in 4..10 {
        b_statuses.push(b.status(&cluster.garbage(n)).await);
    }
    assert!(b.validations() <= 1, "B judged {} tokens", b.validations());
    assert_eq!(
        b_statuses.iter().filter(|s| **s == 401).count() as u64,
        b.validations()
    );
    assert!(
        b_statuses[1..].iter().all(|s| *s == 429),
        "after the shared store answered limited, B's gate refuses: {b_statuses:?}"
    );
    let event = b.events.last();
    assert_eq!(event.reason, reason::RATE_LIMITED_FAILED_AUTH);
    assert_eq!(event.remote_addr, Some(peer().ip()));
    assert!(event.fingerprint.is_none(), "the token was never looked at");

    // A valid token from the spent address waits like everyone there, on both.
    let alice = cluster.token("alice");
    assert_eq!(a.status(&alice).await, 429);
    assert_eq!(b.status(&alice).await, 429);
    assert_eq!(a.validations(), 3);
    assert!(b.validations() <= 1);
}

// ---------------------------------------------------------------------------------------
// 2. DPoP.

#[tokio::test]
async fn a_dpop_proof_accepted_by_one_replica_is_a_replay_on_the_other() {
    let cluster = start(Options::default()).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let key = DpopKey::es256();
    let token = cluster.bound_token("alice", &key);
    let first = proof(&key, &token);

    let accepted = a.dpop(&token, &first).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    let replayed = b.dpop(&token, &first).await;
    assert_eq!(replayed.status, 401, "{replayed:?}");
    assert_eq!(
        replayed.challenge_error(),
        Some(("DPoP".to_owned(), "invalid_dpop_proof".to_owned()))
    );
    assert_eq!(replayed.body["error"], "invalid_dpop_proof");
    assert_eq!(b.events.last().reason, "dpop_proof_replayed");
    assert_eq!(b.endpoint_calls.load(Ordering::SeqCst), 0);
    // And back: A refuses a proof B accepted.
    let second = proof(&key, &token);
    assert_eq!(b.dpop(&token, &second).await.status, 200);
    assert_eq!(a.dpop(&token, &second).await.status, 401);
    assert_eq!(a.events.last().reason, "dpop_proof_replayed");
}

#[tokio::test]
async fn with_redis_stopped_dpop_fails_closed_and_bearer_tokens_still_serve() {
    let cluster = start(Options::default()).await;
    let key = DpopKey::es256();
    let bound = cluster.bound_token("alice", &key);
    let bearer = cluster.token("bob");
    assert_eq!(
        cluster.a.dpop(&bound, &proof(&key, &bound)).await.status,
        200
    );

    cluster.redis.stop();
    for replica in [&cluster.a, &cluster.b] {
        let calls = replica.endpoint_calls.load(Ordering::SeqCst);
        for _ in 0..2 {
            let reply = replica.dpop(&bound, &proof(&key, &bound)).await;
            assert_eq!(reply.status, 503, "{reply:?}");
            assert!(reply.retry_after().is_some(), "{reply:?}");
            assert_eq!(
                replica.events.last().reason,
                "dpop_replay_store_unavailable"
            );
        }
        assert_eq!(replica.endpoint_calls.load(Ordering::SeqCst), calls);
        let reply = replica.bearer(&bearer).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 3. Redis stopped in the middle of a run, and back.

#[tokio::test]
async fn redis_stopped_mid_run_budgets_fall_back_to_the_local_share_then_are_shared_again() {
    let cluster = start(Options {
        limits: RateLimits::default().per_principal(Budget::per_minute(1).burst(6)),
        replicas: 3,
        ..Options::default()
    })
    .await;
    let (a, b) = (&cluster.a, &cluster.b);

    // Shared: A alone may take all six; then B has none left.
    let alice = cluster.token("alice");
    assert_eq!(
        statuses(a, &alice, 7).await,
        [200, 200, 200, 200, 200, 200, 429]
    );
    assert_eq!(b.status(&alice).await, 429);
    assert!(
        a.events
            .take()
            .iter()
            .chain(b.events.take().iter())
            .all(|event| !event.rate_limit_fallback)
    );

    // Redis gone: each replica applies its share, 6 / 3 = 2, alone.
    cluster.redis.stop();
    let bob = cluster.token("bob");
    assert_eq!(statuses(a, &bob, 4).await, [200, 200, 429, 429]);
    assert_eq!(statuses(b, &bob, 4).await, [200, 200, 429, 429]);
    for replica in [a, b] {
        let events = replica.events.take();
        assert_eq!(events.len(), 4);
        assert!(
            events.iter().all(|event| event.rate_limit_fallback),
            "{events:#?}"
        );
        assert_eq!(events[3].reason, reason::RATE_LIMITED_PRINCIPAL);
        assert!(!replica.state.is_available());
    }

    // Back (empty): both replicas find it within a couple of seconds, and share again.
    cluster.redis.restart().await.unwrap();
    assert!(
        within(Duration::from_secs(5), || async {
            a.state.is_available() && b.state.is_available()
        })
        .await,
        "the probes found Redis again"
    );
    let carol = cluster.token("carol");
    assert_eq!(
        statuses(a, &carol, 7).await,
        [200, 200, 200, 200, 200, 200, 429]
    );
    assert_eq!(b.status(&carol).await, 429);
    for replica in [a, b] {
        let events = replica.events.take();
        assert!(
            events.iter().all(|event| !event.rate_limit_fallback),
            "{events:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. A slow Redis.

#[tokio::test]
async fn a_paused_redis_never_holds_a_request_nor_changes_a_decision() {
    let cluster = start(Options {
        limits: RateLimits::default().per_principal(Budget::per_minute(1).burst(4)),
        replicas: 2,
        // The default operation timeout (25 ms).
        timeout: None,
        ..Options::default()
    })
    .await;
    let (a, b) = (&cluster.a, &cluster.b);
    let key = DpopKey::es256();
    let bound = cluster.bound_token("erin", &key);
    // Warm: connections made, scripts loaded.
    let warm = cluster.token("warm");
    assert_eq!(a.status(&warm).await, 200);
    assert_eq!(b.status(&warm).await, 200);
    a.events.take();
    b.events.take();

    let pause = Duration::from_secs(3);
    cluster.redis.pause(pause).await.unwrap();
    let paused_at = Instant::now();
    let timed = |reply: Reply, started: Instant| {
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "answered after {elapsed:?}"
        );
        reply
    };
    let dave = cluster.token("dave");
    for replica in [a, b] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            seen.push(timed(replica.bearer(&dave).await, started).status.as_u16());
        }
        assert_eq!(seen, [200, 200, 429], "this replica's share: 4 / 2");
        let events = replica.events.take();
        assert!(
            events.iter().all(|event| event.rate_limit_fallback),
            "each was decided on the local share, and says so: {events:#?}"
        );

        let started = Instant::now();
        let reply = timed(replica.dpop(&bound, &proof(&key, &bound)).await, started);
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(reply.retry_after().is_some());

        let started = Instant::now();
        let reply = timed(replica.bearer(&cluster.token("frank")).await, started);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(
        paused_at.elapsed() < pause,
        "the requests above ran within the pause ({:?})",
        paused_at.elapsed()
    );

    // After the pause: normal again.
    assert!(
        within(Duration::from_secs(10), || async {
            a.state.is_available() && b.state.is_available()
        })
        .await,
        "the probes found Redis again"
    );
    assert_eq!(a.dpop(&bound, &proof(&key, &bound)).await.status, 200);
    let gina = cluster.token("gina");
    // Shared: A takes all four (its share alone would be two), and B none.
    assert_eq!(statuses(a, &gina, 5).await, [200, 200, 200, 200, 429]);
    assert_eq!(b.status(&gina).await, 429);
    assert!(!a.events.last().rate_limit_fallback);
}

// ---------------------------------------------------------------------------------------
// 5. Sessions.

#[tokio::test]
async fn a_session_made_on_one_replica_is_its_principals_only_on_the_other() {
    let cluster = start(Options::default()).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let alice = cluster.token("alice");
    let mallory = cluster.token("mallory");

    let opened = a.bearer_with(&alice, &[("x-open-session", "1")]).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let session = opened.session();

    let stolen = b
        .bearer_with(&mallory, &[("mcp-session-id", &session)])
        .await;
    assert_eq!(stolen.status, 404, "{stolen:?}");
    assert_eq!(b.events.last().reason, reason::SESSION_NOT_BOUND);
    let calls = b.endpoint_calls.load(Ordering::SeqCst);
    let owner = b.bearer_with(&alice, &[("mcp-session-id", &session)]).await;
    assert_eq!(owner.status, 200, "{owner:?}");
    assert_eq!(b.endpoint_calls.load(Ordering::SeqCst), calls + 1);
    let unknown = b
        .bearer_with(&alice, &[("mcp-session-id", "never-made")])
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    // A second session, which B never sees before Redis goes away.
    let unseen = a
        .bearer_with(&alice, &[("x-open-session", "1")])
        .await
        .session();
    cluster.redis.stop();
    let reply = b.bearer_with(&alice, &[("mcp-session-id", &unseen)]).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.retry_after().is_some(), "{reply:?}");
    assert_eq!(b.events.last().reason, reason::SESSION_STORE_UNAVAILABLE);
    // What B has seen, and what A made, still answer from their own tables.
    assert_eq!(
        b.bearer_with(&alice, &[("mcp-session-id", &session)])
            .await
            .status,
        200
    );
    assert_eq!(
        b.bearer_with(&mallory, &[("mcp-session-id", &session)])
            .await
            .status,
        404
    );
    assert_eq!(
        a.bearer_with(&alice, &[("mcp-session-id", &unseen)])
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// 6. Revocations.

#[tokio::test]
async fn a_revocation_on_one_replica_is_refused_by_the_other_within_a_second() {
    let cluster = start(Options::default()).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let by_id = cluster
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .jti("revoked-by-id")
        .sign();
    let by_hash = cluster.token("bob");
    for token in [&by_id, &by_hash] {
        // Both replicas know the tokens (and cache them).
        assert_eq!(a.status(token).await, 200);
        assert_eq!(b.status(token).await, 200);
    }

    for (token, revocation) in [
        (
            &by_id,
            Revocation::jwt_id(cluster.issuer.issuer(), "revoked-by-id"),
        ),
        (&by_hash, Revocation::token(&by_hash)),
    ] {
        a.layer
            .validator()
            .revocations()
            .revoke(revocation, token_exp())
            .await
            .unwrap();
        assert_revoked(a, &a.bearer(token).await);
        assert!(
            within(Duration::from_secs(1), || async {
                b.status(token).await == 401
            })
            .await,
            "replica B refuses within 1 s"
        );
        assert_revoked(b, &b.bearer(token).await);
    }
    // Another token of the same principal is not revoked.
    assert_eq!(b.status(&cluster.token("alice")).await, 200);
}

#[tokio::test]
async fn revocations_missed_while_unsubscribed_are_read_again() {
    let cluster = start(Options::default()).await;
    let (a, b) = (&cluster.a, &cluster.b);
    assert!(
        cluster
            .both_subscribed("mcp-oauth:", Duration::from_secs(5))
            .await
    );

    // The subscriptions are cut, and a revocation published at once.
    let first = cluster.token("alice");
    assert_eq!(b.status(&first).await, 200);
    cluster
        .redis
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    a.layer
        .validator()
        .revocations()
        .revoke(Revocation::token(&first), token_exp())
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(1), || async {
            b.status(&first).await == 401
        })
        .await,
        "replica B refuses within 1 s"
    );

    // An entry whose message never came (written to the list alone) is read after the next
    // reconnection. First, B is subscribed again and done reading the list: it has applied
    // a message published after that.
    assert!(
        cluster
            .both_subscribed("mcp-oauth:", Duration::from_secs(5))
            .await
    );
    let sentinel = cluster.token("carol");
    a.layer
        .validator()
        .revocations()
        .revoke(Revocation::token(&sentinel), token_exp())
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(1), || async {
            b.status(&sentinel).await == 401
        })
        .await
    );
    let second = cluster.token("bob");
    assert_eq!(b.status(&second).await, 200);
    let member = Revocation::token(&second).encode();
    let until = token_exp().to_string();
    cluster
        .redis
        .command(&["ZADD", "mcp-oauth:revoked", &until, &member])
        .await
        .unwrap();
    assert_eq!(b.status(&second).await, 200, "no message, no entry yet");
    cluster
        .redis
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(1), || async {
            b.status(&second).await == 401
        })
        .await,
        "replica B read the list again within 1 s"
    );
    assert_revoked(b, &b.bearer(&second).await);
}

#[tokio::test]
async fn a_restarted_redis_loses_the_list_but_each_replica_keeps_its_mirror() {
    let cluster = start(Options::default()).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let before = cluster.token("alice");
    a.layer
        .validator()
        .revocations()
        .revoke(Revocation::token(&before), token_exp())
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(1), || async {
            b.status(&before).await == 401
        })
        .await
    );

    cluster.redis.stop();
    cluster.redis.restart().await.unwrap();
    let listed = cluster
        .redis
        .command(&["ZCARD", "mcp-oauth:revoked"])
        .await
        .unwrap();
    assert_eq!(
        format!("{listed:?}"),
        "int(0)",
        "a restarted Redis without persistence holds no list"
    );
    // Both still refuse what they had mirrored.
    assert_revoked(a, &a.bearer(&before).await);
    assert_revoked(b, &b.bearer(&before).await);

    // Once both are subscribed again, new revocations travel as before.
    assert!(a.state.ready(Duration::from_secs(5)).await);
    assert!(
        cluster
            .both_subscribed("mcp-oauth:", Duration::from_secs(5))
            .await,
        "both replicas subscribed again"
    );
    let after = cluster.token("bob");
    assert_eq!(b.status(&after).await, 200);
    a.layer
        .validator()
        .revocations()
        .revoke(Revocation::token(&after), token_exp())
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(1), || async {
            b.status(&after).await == 401
        })
        .await,
        "replica B refuses within 1 s"
    );
    assert_revoked(b, &b.bearer(&before).await);
}

// ---------------------------------------------------------------------------------------
// 8. What Redis holds.

/// Lists what breaks the rules in Redis, byte for byte (a plain `string.find`, so binary
/// values are searched too): a key outside `ARGV[1]` (the prefix), or a key, field, member or
/// value holding one of `ARGV[2..]`.
const AUDIT_KEYS: &str = r"
local prefix = ARGV[1]
local problems = {}
local function check(key, text)
  for i = 2, #ARGV do
    if string.find(text, ARGV[i], 1, true) then
      table.insert(problems, key .. ' holds needle ' .. (i - 1))
    end
  end
end
for _, key in ipairs(redis.call('KEYS', '*')) do
  if string.sub(key, 1, #prefix) ~= prefix then
    table.insert(problems, key .. ' is outside the prefix')
  end
  check(key, key)
  local kind = redis.call('TYPE', key)['ok']
  local values
  if kind == 'string' then values = {redis.call('GET', key)}
  elseif kind == 'hash' then values = redis.call('HGETALL', key)
  elseif kind == 'zset' then values = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  elseif kind == 'set' then values = redis.call('SMEMBERS', key)
  elseif kind == 'list' then values = redis.call('LRANGE', key, 0, -1)
  else values = {}; table.insert(problems, key .. ' is a ' .. kind) end
  for _, value in ipairs(values) do check(key, value) end
end
return problems
";

/// How many keys match `pattern`.
async fn count_keys(redis: &RedisServer, pattern: &str) -> usize {
    let keys = redis.command(&["KEYS", pattern]).await.unwrap();
    keys.as_sequence().expect("an array").len()
}

#[cfg(feature = "rmcp")]
async fn store_rmcp_state(state: &RedisState, session: &str) {
    use rmcp::model::InitializeRequestParams;
    use rmcp::transport::streamable_http_server::session::store::{SessionState, SessionStore};
    let params: InitializeRequestParams = serde_json::from_value(json!({
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "keys-test", "version": "1"}}))
    .unwrap();
    state
        .session_store()
        .store(session, &SessionState::new(params))
        .await
        .unwrap();
}

#[cfg(not(feature = "rmcp"))]
async fn store_rmcp_state(_state: &RedisState, _session: &str) {}

#[tokio::test]
async fn every_key_has_the_prefix_and_no_key_or_value_holds_a_token_or_subject() {
    const PREFIX: &str = "tenant-7:";
    let cluster = start(Options {
        limits: RateLimits::default()
            .per_principal(Budget::per_minute(1).burst(10))
            .failed_auth(Budget::per_minute(1).burst(10)),
        prefix: PREFIX,
        ..Options::default()
    })
    .await;
    let (a, b) = (&cluster.a, &cluster.b);
    let subject = "subject-4a7c19";
    let other_subject = "subject-e03b52";
    let key = DpopKey::es256();

    // Every kind of state the replicas share.
    let token = cluster.token(subject);
    assert_eq!(a.status(&token).await, 200);
    let bound = cluster.bound_token(other_subject, &key);
    let dpop_proof = proof(&key, &bound);
    assert_eq!(a.dpop(&bound, &dpop_proof).await.status, 200);
    let garbage = cluster.garbage(0);
    assert_eq!(b.status(&garbage).await, 401);
    let session = a
        .bearer_with(&token, &[("x-open-session", "1")])
        .await
        .session();
    assert_eq!(
        b.bearer_with(&token, &[("mcp-session-id", &session)])
            .await
            .status,
        200
    );
    store_rmcp_state(&a.state, &session).await;
    let revoked_by_id = cluster
        .issuer
        .token()
        .subject(subject)
        .jti("jti-9d2e")
        .sign();
    let revocations = a.layer.validator().revocations();
    revocations
        .revoke(
            Revocation::jwt_id(cluster.issuer.issuer(), "jti-9d2e"),
            token_exp(),
        )
        .await
        .unwrap();
    revocations
        .revoke(Revocation::token(&token), token_exp())
        .await
        .unwrap();
    let nonce_key = a.state.dpop_nonce_key().await.unwrap();
    assert_eq!(
        b.state.dpop_nonce_key().await.unwrap(),
        nonce_key,
        "one nonce key for every replica"
    );

    for pattern in [
        "rl:principal:*",
        "rl:failed_auth:*",
        "dpop:jti:*",
        "dpop:nonce-key",
        "session:*",
        "revoked",
    ] {
        assert!(
            count_keys(&cluster.redis, &format!("{PREFIX}{pattern}")).await >= 1,
            "a {PREFIX}{pattern} key"
        );
    }
    assert_eq!(count_keys(&cluster.redis, "mcp-oauth:*").await, 0);

    let address = peer().ip().to_string();
    let needles = [
        ("the bearer token", token.as_str()),
        ("the DPoP-bound token", bound.as_str()),
        ("the DPoP proof", dpop_proof.as_str()),
        ("the refused token", garbage.as_str()),
        ("the token revoked by jti", revoked_by_id.as_str()),
        ("a subject", subject),
        ("another subject", other_subject),
        ("the session id", session.as_str()),
        ("the client address", address.as_str()),
    ];
    let mut args = vec!["EVAL", AUDIT_KEYS, "0", PREFIX];
    args.extend(needles.iter().map(|(_, needle)| *needle));
    let problems = cluster.redis.command(&args).await.unwrap();
    let names: Vec<&str> = needles.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        problems.as_sequence().map(<[_]>::len),
        Some(0),
        "needles (numbered from 1): {names:?}; problems: {problems:?}"
    );
}
