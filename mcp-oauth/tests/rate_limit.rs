//! Rate limits over real HTTP on loopback, in front of a real rmcp streamable HTTP server:
//! each principal has its own budget, 429 carries `Retry-After`, the failed-authentication
//! budget stops token validation before it starts (counted by the validator), and a
//! forwarding header is believed only from a configured trusted proxy.
#![cfg(all(feature = "layer", feature = "rmcp"))]

mod peer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_oauth::ManualClock;
use mcp_oauth::audit::{AuditEvent, AuditSink, reason};
use mcp_oauth::http::{ClientAddress, OAuthLayer, TrustedProxies};
use mcp_oauth::rate_limit::{
    Budget, InMemoryRateLimitStore, PrincipalKey, RateDecision, RateLimitKey, RateLimitStore,
    RateLimits, StoreFuture,
};
use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
use mcp_oauth::testing::{Fault, TestIssuer};
use mcp_oauth::{IssuerPolicy, Validator};
use parking_lot::Mutex;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool_handler, tool_router};
use serde_json::{Value, json};

#[derive(Clone)]
struct Empty;

#[tool_router(allow_empty)]
impl Empty {}

#[tool_handler]
impl ServerHandler for Empty {
    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.capabilities = ServerCapabilities::builder().enable_tools().build();
        config
    }
}

static RESOURCE: ResourceDeclaration = ResourceDeclaration {
    scopes: &["calendar:read"],
    ..ResourceDeclaration::new(
        "Calendar",
        "http://127.0.0.1/mcp",
        &["http://127.0.0.1/issuer"],
    )
};

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    fn last(&self) -> AuditEvent<'static> {
        self.0.lock().last().cloned().expect("an event")
    }
}

struct Options {
    limits: RateLimits,
    client_address: ClientAddress,
    fault: Option<Fault>,
    /// Serve with `into_make_service_with_connect_info` (the peer address is known).
    connect_info: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: RateLimits::default(),
            client_address: ClientAddress::default(),
            fault: None,
            connect_info: true,
        }
    }
}

struct Server {
    issuer: TestIssuer,
    resource: String,
    http: reqwest::Client,
    layer: OAuthLayer,
    clock: ManualClock,
    events: Collect,
}

async fn start(options: Options) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    if let Some(fault) = options.fault {
        issuer.set_fault(fault);
    }
    let config = ResourceConfig::from_declaration(&RESOURCE)
        .unwrap()
        .resource(&resource)
        .authorization_servers([issuer.issuer()]);
    let validator = Validator::builder()
        .issuer(
            IssuerPolicy::builder(issuer.issuer())
                .audience(&resource)
                .jwks_uri(issuer.jwks_uri())
                .build()
                .unwrap(),
        )
        // Every request validates: the counts below are validations, not cache hits.
        .without_token_cache()
        .build()
        .unwrap();
    let clock = ManualClock::starting_now();
    let events = Collect::default();
    let layer = OAuthLayer::builder(config, validator)
        .rate_limits(options.limits)
        .client_address(options.client_address)
        .clock(Arc::new(clock.clone()))
        .audit_sink(events.clone())
        .build()
        .unwrap();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = true;
    let mcp = StreamableHttpService::new(
        || Ok(Empty),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let app = tower_layer::Layer::layer(&layer, axum::Router::new().route_service("/mcp", mcp));
    tokio::spawn(async move {
        type Request = http::Request<axum::body::Body>;
        if options.connect_info {
            let service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(peer::with_peer(app));
            axum::serve(listener, service).await.unwrap();
        } else {
            let service = axum::ServiceExt::<Request>::into_make_service(app);
            axum::serve(listener, service).await.unwrap();
        }
    });
    Server {
        issuer,
        resource,
        http: mcp_oauth::testing::http_client(),
        layer,
        clock,
        events,
    }
}

fn ping() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

impl Server {
    fn token(&self, subject: &str) -> String {
        self.issuer
            .token()
            .subject(subject)
            .scope("calendar:read")
            .sign()
    }

    /// A distinct token that fails validation (after parsing: a bad signature).
    fn garbage(&self, n: usize) -> String {
        let token = self.issuer.token().jti(format!("garbage-{n}")).sign();
        let (rest, _) = token.rsplit_once('.').unwrap();
        format!("{rest}.AAAA")
    }

    async fn send(&self, token: Option<&str>, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.resource)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(ping().to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    async fn status(&self, token: Option<&str>, headers: &[(&str, &str)]) -> u16 {
        self.send(token, headers).await.status().as_u16()
    }

    fn validations(&self) -> u64 {
        self.layer.validator().stats().validations
    }
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

// ---------------------------------------------------------------------------------------
// Per principal.

#[tokio::test]
async fn each_principal_has_its_own_budget_and_429_carries_retry_after() {
    let server = start(Options {
        limits: RateLimits::default().per_principal(Budget::per_minute(2)),
        ..Options::default()
    })
    .await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    assert_eq!(server.status(Some(&alice), &[]).await, 200);
    assert_eq!(server.status(Some(&alice), &[]).await, 200);
    let limited = server.send(Some(&alice), &[]).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(retry_after(&limited), 30, "one unit refills every 30 s");
    assert_eq!(limited.headers()["content-type"], "application/json");
    let event = server.events.last();
    assert_eq!(event.reason, reason::RATE_LIMITED_PRINCIPAL);
    assert_eq!(event.subject.as_deref(), Some("alice"));
    assert_eq!(event.retry_after, Some(Duration::from_secs(30)));

    // Bob does not share Alice's bucket; a new token of Alice's does.
    assert_eq!(server.status(Some(&bob), &[]).await, 200);
    assert_eq!(server.status(Some(&bob), &[]).await, 200);
    assert_eq!(server.status(Some(&bob), &[]).await, 429);
    assert_eq!(server.status(Some(&server.token("alice")), &[]).await, 429);

    // Time refills it, one unit per interval.
    server.clock.advance(Duration::from_secs(30));
    assert_eq!(server.status(Some(&alice), &[]).await, 200);
    assert_eq!(server.status(Some(&alice), &[]).await, 429);
}

#[tokio::test]
async fn keyed_on_the_client_id_the_users_of_one_client_share_a_budget() {
    let server = start(Options {
        limits: RateLimits::default()
            .per_principal(Budget::per_minute(2))
            .principal_key(PrincipalKey::ClientId),
        ..Options::default()
    })
    .await;
    let token = |subject: &str, client: &str| {
        server
            .issuer
            .token()
            .subject(subject)
            .client_id(client)
            .scope("calendar:read")
            .sign()
    };
    assert_eq!(
        server.status(Some(&token("alice", "app-1")), &[]).await,
        200
    );
    assert_eq!(server.status(Some(&token("bob", "app-1")), &[]).await, 200);
    assert_eq!(
        server.status(Some(&token("carol", "app-1")), &[]).await,
        429
    );
    assert_eq!(
        server.status(Some(&token("alice", "app-2")), &[]).await,
        200
    );
}

#[tokio::test]
async fn principals_are_not_limited_by_default() {
    let server = start(Options::default()).await;
    let alice = server.token("alice");
    for _ in 0..80 {
        assert_eq!(server.status(Some(&alice), &[]).await, 200);
    }
}

// ---------------------------------------------------------------------------------------
// Failed authentications.

#[tokio::test]
async fn the_failed_auth_budget_stops_validation_before_it_starts() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(3)),
        ..Options::default()
    })
    .await;
    for n in 0..3 {
        assert_eq!(server.status(Some(&server.garbage(n)), &[]).await, 401);
    }
    assert_eq!(server.validations(), 3);
    for n in 3..10 {
        let response = server.send(Some(&server.garbage(n)), &[]).await;
        assert_eq!(response.status(), 429);
        assert_eq!(retry_after(&response), 20);
    }
    assert_eq!(
        server.validations(),
        3,
        "no token was looked at once the budget was spent"
    );
    let event = server.events.last();
    assert_eq!(event.reason, reason::RATE_LIMITED_FAILED_AUTH);
    assert_eq!(event.remote_addr, ip("127.0.0.1"));
    assert!(event.fingerprint.is_none());

    // Malformed credentials are charged and stopped too; a valid token from the spent
    // address waits like everyone there.
    assert_eq!(
        server
            .status(None, &[("authorization", "Bearer not a token")])
            .await,
        429
    );
    assert_eq!(server.status(Some(&server.token("alice")), &[]).await, 429);
    assert_eq!(server.validations(), 3);

    server.clock.advance(Duration::from_secs(20));
    assert_eq!(server.status(Some(&server.token("alice")), &[]).await, 200);
    assert_eq!(server.status(Some(&server.garbage(10)), &[]).await, 401);
    assert_eq!(server.status(Some(&server.garbage(11)), &[]).await, 429);
    assert_eq!(server.validations(), 5);
}

#[tokio::test]
async fn concurrent_garbage_never_costs_more_validations_than_the_budget() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(5)),
        ..Options::default()
    })
    .await;
    let tokens: Vec<String> = (0..60).map(|n| server.garbage(n)).collect();
    let statuses =
        futures::future::join_all(tokens.iter().map(|token| server.status(Some(token), &[]))).await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 55);
    assert_eq!(server.validations(), 5);
}

#[tokio::test]
async fn verified_tokens_and_discovery_requests_spend_nothing() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(2)),
        ..Options::default()
    })
    .await;
    let alice = server.token("alice");
    for _ in 0..20 {
        assert_eq!(server.status(Some(&alice), &[]).await, 200);
    }
    for _ in 0..20 {
        assert_eq!(server.status(None, &[]).await, 401);
    }
    assert_eq!(server.status(Some(&server.garbage(0)), &[]).await, 401);
    assert_eq!(server.status(Some(&server.garbage(1)), &[]).await, 401);
    assert_eq!(server.status(Some(&server.garbage(2)), &[]).await, 429);
}

#[tokio::test]
async fn unavailable_keys_are_not_the_clients_failure() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        fault: Some(Fault::Status(500)),
        ..Options::default()
    })
    .await;
    let alice = server.token("alice");
    for _ in 0..3 {
        assert_eq!(server.status(Some(&alice), &[]).await, 503);
    }
}

#[tokio::test]
async fn guessed_session_ids_are_charged_as_failed_authentications() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(2)),
        ..Options::default()
    })
    .await;
    let mallory = server.token("mallory");
    for guess in ["s-1", "s-2"] {
        assert_eq!(
            server
                .status(Some(&mallory), &[("mcp-session-id", guess)])
                .await,
            404
        );
    }
    assert_eq!(
        server
            .status(Some(&mallory), &[("mcp-session-id", "s-3")])
            .await,
        429
    );
}

#[tokio::test]
async fn without_a_known_address_requests_are_refused_while_the_budget_is_on() {
    // One bucket for every client would let one attacker lock everyone out, and no bucket
    // would let a guesser through unlimited: neither, the request is refused (fail closed).
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        connect_info: false,
        ..Options::default()
    })
    .await;
    for n in 0..5 {
        assert_eq!(server.status(Some(&server.garbage(n)), &[]).await, 500);
    }
    let event = server.events.last();
    assert_eq!(event.remote_addr, None);
    assert_eq!(
        event.reason,
        mcp_oauth::audit::reason::CLIENT_ADDRESS_UNKNOWN
    );
    // The misconfiguration shows on the first request of any kind, not only on a failure.
    assert_eq!(server.status(None, &[]).await, 500);
}

#[tokio::test]
async fn without_a_known_address_the_explicit_opt_out_serves() {
    let server = start(Options {
        limits: RateLimits::default().without_failed_auth_limit(),
        connect_info: false,
        ..Options::default()
    })
    .await;
    for n in 0..5 {
        assert_eq!(server.status(Some(&server.garbage(n)), &[]).await, 401);
    }
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let server = start(Options {
        limits: RateLimits::disabled(),
        ..Options::default()
    })
    .await;
    for n in 0..(mcp_oauth::rate_limit::DEFAULT_FAILED_AUTH_BUDGET.burst_size() as usize + 5) {
        assert_eq!(server.status(Some(&server.garbage(n)), &[]).await, 401);
    }
}

// ---------------------------------------------------------------------------------------
// Where the address comes from.

#[tokio::test]
async fn a_spoofed_x_forwarded_for_is_ignored_without_a_trusted_proxy() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        ..Options::default()
    })
    .await;
    let spoof = |addr: &'static str| [("x-forwarded-for", addr)];
    assert_eq!(
        server
            .status(Some(&server.garbage(0)), &spoof("198.51.100.1"))
            .await,
        401
    );
    assert_eq!(server.events.last().remote_addr, ip("127.0.0.1"));
    // A new "address" in the header changes nothing: the bucket is the connection's.
    assert_eq!(
        server
            .status(Some(&server.garbage(1)), &spoof("198.51.100.2"))
            .await,
        429
    );
    assert_eq!(
        server
            .status(Some(&server.garbage(2)), &[("x-real-ip", "198.51.100.3")])
            .await,
        429
    );
}

#[tokio::test]
async fn x_forwarded_for_is_honoured_from_a_trusted_proxy_rightmost_untrusted() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        client_address: ClientAddress::x_forwarded_for(
            TrustedProxies::new(["127.0.0.1", "10.0.0.0/8"]).unwrap(),
        ),
        ..Options::default()
    })
    .await;
    let xff = |value: &'static str| [("x-forwarded-for", value)];
    assert_eq!(
        server
            .status(Some(&server.garbage(0)), &xff("198.51.100.1"))
            .await,
        401
    );
    assert_eq!(server.events.last().remote_addr, ip("198.51.100.1"));
    assert_eq!(
        server
            .status(Some(&server.garbage(1)), &xff("198.51.100.1"))
            .await,
        429
    );
    // Another client behind the same proxy has its own bucket.
    assert_eq!(
        server
            .status(Some(&server.garbage(2)), &xff("198.51.100.2"))
            .await,
        401
    );
    // Entries left of the rightmost untrusted one are the client's own words; inner proxy
    // hops (trusted) are skipped.
    assert_eq!(
        server
            .status(
                Some(&server.garbage(3)),
                &xff("203.0.113.9, 198.51.100.1, 10.1.2.3")
            )
            .await,
        429
    );
    assert_eq!(server.events.last().remote_addr, ip("198.51.100.1"));
    // Without the header: the proxy's own address.
    assert_eq!(server.status(Some(&server.garbage(4)), &[]).await, 401);
    assert_eq!(server.events.last().remote_addr, ip("127.0.0.1"));
}

#[tokio::test]
async fn x_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        client_address: ClientAddress::x_forwarded_for(
            TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
        ),
        ..Options::default()
    })
    .await;
    let xff = |value: &'static str| [("x-forwarded-for", value)];
    assert_eq!(
        server
            .status(Some(&server.garbage(0)), &xff("198.51.100.1"))
            .await,
        401
    );
    assert_eq!(server.events.last().remote_addr, ip("127.0.0.1"));
    assert_eq!(
        server
            .status(Some(&server.garbage(1)), &xff("198.51.100.2"))
            .await,
        429
    );
}

#[tokio::test]
async fn a_single_configured_header_is_honoured_from_a_trusted_proxy() {
    let server = start(Options {
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        client_address: ClientAddress::header(
            http::HeaderName::from_static("x-real-ip"),
            TrustedProxies::new(["127.0.0.1"]).unwrap(),
        ),
        ..Options::default()
    })
    .await;
    let real = |value: &'static str| [("x-real-ip", value)];
    assert_eq!(
        server
            .status(Some(&server.garbage(0)), &real("2001:db8::1"))
            .await,
        401
    );
    assert_eq!(server.events.last().remote_addr, ip("2001:db8::1"));
    // The same /64: the same bucket.
    assert_eq!(
        server
            .status(Some(&server.garbage(1)), &real("2001:db8::2"))
            .await,
        429
    );
    assert_eq!(
        server
            .status(Some(&server.garbage(2)), &real("2001:db8:0:1::1"))
            .await,
        401
    );
    // X-Forwarded-For is not what was configured.
    assert_eq!(
        server
            .status(
                Some(&server.garbage(3)),
                &[("x-forwarded-for", "198.51.100.7")]
            )
            .await,
        401
    );
    assert_eq!(server.events.last().remote_addr, ip("127.0.0.1"));
}

// ---------------------------------------------------------------------------------------
// The store is pluggable.

/// Delegates to the in-memory store and counts the calls, as a shared store would see them.
#[derive(Clone, Default)]
struct CountingStore {
    inner: Arc<InMemoryRateLimitStore>,
    acquired: Arc<AtomicU64>,
    released: Arc<AtomicU64>,
}

impl RateLimitStore for CountingStore {
    fn acquire<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        self.acquired.fetch_add(1, Ordering::Relaxed);
        self.inner.acquire(key, budget, now)
    }

    fn release<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, ()> {
        self.released.fetch_add(1, Ordering::Relaxed);
        self.inner.release(key, budget, now)
    }
}

#[tokio::test]
async fn a_custom_store_backs_both_budgets() {
    let store = CountingStore::default();
    let server = start(Options {
        limits: RateLimits::default()
            .per_principal(Budget::per_minute(100))
            .store(store.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(server.status(Some(&server.token("alice")), &[]).await, 200);
    // One reservation (given back) and one principal unit.
    assert_eq!(store.acquired.load(Ordering::Relaxed), 2);
    assert_eq!(store.released.load(Ordering::Relaxed), 1);
    assert_eq!(server.status(Some(&server.garbage(0)), &[]).await, 401);
    assert_eq!(store.acquired.load(Ordering::Relaxed), 3);
    assert_eq!(store.released.load(Ordering::Relaxed), 1);
    assert_eq!(store.inner.len(), 2, "one principal and one address bucket");
}
