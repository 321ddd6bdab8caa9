//! Audit events over real HTTP on loopback, in front of a real rmcp streamable HTTP server:
//! every decision type records exactly one `AuditEvent` with its fields (a collecting sink),
//! the default sink emits the same as `tracing` events under `mcp_oauth::audit`, the JSON-lines
//! sink writes one object per decision, and the request id is echoed.
#![cfg(all(feature = "layer", feature = "rmcp"))]

mod peer;
mod small_calendar;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mcp_oauth::ScopeSet;
use mcp_oauth::audit::{self, AuditEvent, AuditSink, JsonLinesSink, Outcome, reason};
use mcp_oauth::http::OAuthLayer;
use mcp_oauth::rate_limit::{Budget, RateLimits};
use mcp_oauth::testing::{Fault, TestIssuer};
use mcp_oauth::validation::TokenFingerprint;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Collects every event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    fn take(&self) -> Vec<AuditEvent<'static>> {
        std::mem::take(&mut *self.0.lock())
    }

    /// The one event recorded since the last call.
    fn one(&self) -> AuditEvent<'static> {
        let mut events = self.take();
        assert_eq!(
            events.len(),
            1,
            "exactly one event per decision: {events:#?}"
        );
        events.pop().unwrap()
    }
}

#[derive(Default)]
struct Options {
    sink: Option<Arc<dyn AuditSink>>,
    rate_limits: Option<RateLimits>,
    max_body: Option<usize>,
    fault: Option<Fault>,
}

struct Server {
    issuer: TestIssuer,
    resource: String,
    base: String,
    http: reqwest::Client,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    layer: OAuthLayer,
}

const PROTOCOL: &str = "2025-06-18";

fn layer_for(issuer: &TestIssuer, resource: &str, options: Options) -> OAuthLayer {
    let mut builder = small_calendar::layer_builder(issuer, resource);
    if let Some(sink) = options.sink {
        builder = builder.audit_sink(sink);
    }
    if let Some(limits) = options.rate_limits {
        builder = builder.rate_limits(limits);
    }
    if let Some(max) = options.max_body {
        builder = builder.max_body_bytes(max);
    }
    builder.build().unwrap()
}

async fn start(options: Options) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let resource = format!("{base}/mcp");
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    if let Some(fault) = options.fault.clone() {
        issuer.set_fault(fault);
    }
    let layer = layer_for(&issuer, &resource, options);
    let router = axum::Router::new().route_service("/mcp", small_calendar::mcp_service());
    let app = tower_layer::Layer::layer(&layer, router);
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service_with_connect_info::<
                SocketAddr,
            >(peer::with_peer(app)),
        )
        .await
        .unwrap();
    });
    Server {
        issuer,
        resource,
        base,
        http: mcp_oauth::testing::http_client(),
        layer,
    }
}

impl Server {
    fn token(&self, subject: &str, scope: &str) -> String {
        self.issuer.token().subject(subject).scope(scope).sign()
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(&self.resource)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL)
            .body(body.to_string())
    }

    async fn initialize(&self, token: &str) -> String {
        let response = self
            .post(&initialize_body())
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.text().await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self
            .post(&initialized)
            .bearer_auth(token)
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        session
    }
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

fn call_body(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

fn loopback() -> Option<IpAddr> {
    Some(IpAddr::from([127, 0, 0, 1]))
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn assert_fingerprint_of(event: &AuditEvent, token: &str) {
    let fingerprint = event.fingerprint.expect("a fingerprint").to_string();
    assert_eq!(fingerprint.len(), 16);
    assert!(
        fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(fingerprint, TokenFingerprint::of(token).to_string());
}

/// The fields every refusal of a request that presented no verified token shares.
fn assert_unauthenticated(event: &AuditEvent, reason: &str, status: u16) {
    assert_eq!(event.outcome, Outcome::Refused);
    assert_eq!(event.reason, reason);
    assert_eq!(event.status, status);
    assert_eq!(event.issuer, None);
    assert_eq!(event.subject, None);
    assert_eq!(event.client_id, None);
    assert_eq!(event.granted_scopes, None);
    assert!(event.tools.is_empty());
    assert_eq!(event.remote_addr, loopback());
}

async fn collecting(options: Options) -> (Server, Collect) {
    let sink = Collect::default();
    let server = start(Options {
        sink: Some(Arc::new(sink.clone())),
        ..options
    })
    .await;
    (server, sink)
}

// ---------------------------------------------------------------------------------------
// One event per decision, with its fields.

#[tokio::test]
async fn an_allowed_call_records_who_called_which_tool_with_which_scopes() {
    let (server, sink) = collecting(Options::default()).await;
    let token = server.token("alice", "calendar:read");
    let session = server.initialize(&token).await;
    let events = sink.take();
    assert_eq!(events.len(), 2, "initialize and initialized: {events:#?}");
    assert_eq!(events[0].rpc_methods, strings(&["initialize"]));
    assert!(events[0].tools.is_empty());
    assert_eq!(events[0].status, 200);
    assert_eq!(
        events[1].rpc_methods,
        strings(&["notifications/initialized"])
    );
    assert_eq!(events[1].status, 202);

    let response = server
        .post(&call_body("list_events"))
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header("x-request-id", "req-allowed-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-allowed-1");
    let event = sink.one();
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.reason, reason::ALLOWED);
    assert_eq!(event.status, 200);
    assert_eq!(event.http_method, "POST");
    assert_eq!(event.issuer.as_deref(), Some(server.issuer.issuer()));
    assert_eq!(event.subject.as_deref(), Some("alice"));
    assert_eq!(event.client_id.as_deref(), Some("test-client"));
    assert_eq!(event.tools, strings(&["list_events"]));
    assert_eq!(event.rpc_methods, strings(&["tools/call"]));
    assert_eq!(
        event.required_scopes,
        Some(ScopeSet::from_space_separated("calendar:read"))
    );
    assert_eq!(
        event.granted_scopes,
        Some(ScopeSet::from_space_separated("calendar:read"))
    );
    assert_fingerprint_of(&event, &token);
    assert_eq!(event.request_id, "req-allowed-1");
    assert_eq!(event.remote_addr, loopback());
    assert_eq!(event.retry_after, None);
    let age = std::time::SystemTime::now()
        .duration_since(event.time)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60));
    assert!(event.time_rfc3339().ends_with('Z'));
}

#[tokio::test]
async fn each_refusal_before_the_token_verified_records_its_reason_and_status() {
    let (server, sink) = collecting(Options::default()).await;

    let response = server.post(&initialize_body()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let event = sink.one();
    assert_unauthenticated(&event, reason::NO_CREDENTIALS, 401);
    assert_eq!(event.fingerprint, None);

    let response = server
        .post(&initialize_body())
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_unauthenticated(&sink.one(), reason::NO_CREDENTIALS, 401);

    let response = server
        .post(&initialize_body())
        .header("authorization", "Bearer not a token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_unauthenticated(&sink.one(), reason::MALFORMED_BEARER, 400);

    let response = server
        .post(&initialize_body())
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_unauthenticated(&sink.one(), reason::MULTIPLE_AUTHORIZATION_HEADERS, 400);

    // Invalid tokens: the reason is TokenError::reason(), the fingerprint the token's.
    let signed = server.token("alice", "calendar:read");
    let (rest, _) = signed.rsplit_once('.').unwrap();
    let cases = [
        (server.issuer.token().expired().sign(), "expired"),
        (format!("{rest}.AAAA"), "invalid_signature"),
        (
            server
                .issuer
                .token()
                .audience("https://other.example/mcp")
                .sign(),
            "audience_mismatch",
        ),
        (server.issuer.token().typ("JWT").sign(), "invalid_type"),
        ("opaque-garbage".to_owned(), "malformed"),
    ];
    for (token, expected) in cases {
        let response = server
            .post(&initialize_body())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{expected}");
        let event = sink.one();
        assert_unauthenticated(&event, expected, 401);
        assert_fingerprint_of(&event, &token);
    }

    // Origin: refused before any token work, with the token's identity unknown.
    let response = server
        .post(&initialize_body())
        .bearer_auth(&signed)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let event = sink.one();
    assert_unauthenticated(&event, reason::ORIGIN_REFUSED, 403);
    assert_eq!(event.fingerprint, None);
}

#[tokio::test]
async fn each_refusal_of_a_verified_principal_records_who_and_why() {
    let (server, sink) = collecting(Options {
        max_body: Some(2048),
        ..Options::default()
    })
    .await;
    let reader = server.token("alice", "calendar:read");
    let session = server.initialize(&reader).await;
    sink.take();

    let check = |event: &AuditEvent, reason: &str, status: u16, token: &str| {
        assert_eq!(event.outcome, Outcome::Refused);
        assert_eq!(event.reason, reason);
        assert_eq!(event.status, status);
        assert_eq!(event.issuer.as_deref(), Some(server.issuer.issuer()));
        assert_eq!(event.subject.as_deref(), Some("alice"));
        assert_eq!(event.client_id.as_deref(), Some("test-client"));
        assert_eq!(
            event.granted_scopes,
            Some(ScopeSet::from_space_separated("calendar:read"))
        );
        assert_fingerprint_of(event, token);
        assert_eq!(event.remote_addr, loopback());
    };

    // Insufficient scope: the tool, the scopes it needs and those granted.
    let response = server
        .post(&call_body("create_event"))
        .bearer_auth(&reader)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let event = sink.one();
    check(&event, reason::INSUFFICIENT_SCOPE, 403, &reader);
    assert_eq!(event.tools, strings(&["create_event"]));
    assert_eq!(
        event.required_scopes,
        Some(ScopeSet::from_space_separated("calendar:write"))
    );

    // An unannotated tool under the deny policy.
    let response = server
        .post(&call_body("unannotated"))
        .bearer_auth(&reader)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let event = sink.one();
    check(&event, reason::UNANNOTATED_TOOL_DENIED, 403, &reader);
    assert_eq!(event.tools, strings(&["unannotated"]));

    // Mcp-Name disagreeing with the body.
    let response = server
        .post(&call_body("list_events"))
        .bearer_auth(&reader)
        .header("mcp-session-id", &session)
        .header("mcp-name", "create_event")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let event = sink.one();
    check(&event, reason::MCP_HEADERS_DISAGREE, 400, &reader);
    assert_eq!(event.tools, strings(&["list_events"]));

    // A body that is not JSON-RPC.
    let response = server
        .http
        .post(&server.resource)
        .bearer_auth(&reader)
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    check(&sink.one(), reason::UNREADABLE_JSONRPC, 400, &reader);

    // A token in the header and another in a form body.
    let response = server
        .http
        .post(&server.resource)
        .bearer_auth(&reader)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("access_token=another")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Refused before the header token is validated (RFC 6750 §2: one method per request,
    // whatever either token is worth), so no identity is known.
    assert_unauthenticated(&sink.one(), reason::TOKEN_IN_HEADER_AND_BODY, 400);

    // A body over the bound.
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    let response = server.post(&big).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(response.status(), 413);
    check(&sink.one(), reason::BODY_TOO_LARGE, 413, &reader);

    // Someone else's session.
    let mallory = server.token("mallory", "calendar:write");
    let response = server
        .post(&call_body("list_events"))
        .bearer_auth(&mallory)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let event = sink.one();
    assert_eq!(event.reason, reason::SESSION_NOT_BOUND);
    assert_eq!(event.status, 404);
    assert_eq!(event.subject.as_deref(), Some("mallory"));
    assert_fingerprint_of(&event, &mallory);

    // A session id that is not visible ASCII.
    let response = server
        .post(&call_body("list_events"))
        .bearer_auth(&reader)
        .header(
            "mcp-session-id",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    check(&sink.one(), reason::INVALID_SESSION_ID, 400, &reader);
}

#[tokio::test]
async fn keys_unavailable_records_a_503_with_its_retry_after() {
    let (server, sink) = collecting(Options {
        fault: Some(Fault::Status(500)),
        ..Options::default()
    })
    .await;
    let token = server.token("alice", "calendar:read");
    let response = server
        .post(&initialize_body())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let event = sink.one();
    assert_unauthenticated(&event, "keys_unavailable", 503);
    assert_eq!(event.retry_after, Some(Duration::from_secs(retry)));
    assert_fingerprint_of(&event, &token);
}

#[tokio::test]
async fn rate_limited_requests_record_429_with_retry_after() {
    let (server, sink) = collecting(Options {
        rate_limits: Some(
            RateLimits::default()
                .per_principal(Budget::per_minute(1))
                .failed_auth(Budget::per_minute(1)),
        ),
        ..Options::default()
    })
    .await;
    let token = server.token("alice", "calendar:read");
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let first = server.post(&ping).bearer_auth(&token).send().await.unwrap();
    assert_ne!(first.status(), 429);
    sink.take();
    let second = server.post(&ping).bearer_auth(&token).send().await.unwrap();
    assert_eq!(second.status(), 429);
    let event = sink.one();
    assert_eq!(event.reason, reason::RATE_LIMITED_PRINCIPAL);
    assert_eq!(event.status, 429);
    assert_eq!(event.subject.as_deref(), Some("alice"));
    assert!(
        event
            .retry_after
            .is_some_and(|d| d >= Duration::from_secs(1))
    );

    let garbage = server.issuer.token().expired().sign();
    let refused = server
        .post(&ping)
        .bearer_auth(&garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(sink.one().reason, "expired");
    let limited = server
        .post(&ping)
        .bearer_auth(&garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let event = sink.one();
    assert_unauthenticated(&event, reason::RATE_LIMITED_FAILED_AUTH, 429);
    assert!(event.retry_after.is_some());
}

#[tokio::test]
async fn an_unreadable_body_is_recorded() {
    // Straight through the service: a body whose stream fails cannot be sent over HTTP.
    let sink = Collect::default();
    let issuer = TestIssuer::builder()
        .audience("http://127.0.0.1:9/mcp")
        .start()
        .await;
    let layer = layer_for(
        &issuer,
        "http://127.0.0.1:9/mcp",
        Options {
            sink: Some(Arc::new(sink.clone())),
            ..Options::default()
        },
    );
    let token = issuer.token().scope("calendar:read").sign();
    let router = axum::Router::new().route_service("/mcp", small_calendar::mcp_service());
    let mut service = tower_layer::Layer::layer(&layer, router);
    let failing = futures::stream::iter([Err::<http_body::Frame<Bytes>, std::io::Error>(
        std::io::Error::other("connection reset"),
    )]);
    let request = http::Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .extension(mcp_oauth::http::PeerAddr("192.0.2.8:4000".parse().unwrap()))
        .body(http_body_util::StreamBody::new(failing))
        .unwrap();
    let response = tower_service::Service::call(&mut service, request)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let event = sink.one();
    assert_eq!(event.reason, reason::BODY_UNREADABLE);
    assert_eq!(event.status, 400);
    assert_eq!(event.subject.as_deref(), Some("user-123"));
    assert_eq!(event.remote_addr, Some("192.0.2.8".parse().unwrap()));
}

#[tokio::test]
async fn an_unknown_client_address_is_refused_while_the_failed_auth_budget_is_on() {
    let sink = Collect::default();
    let issuer = TestIssuer::builder()
        .audience("http://127.0.0.1:9/mcp")
        .start()
        .await;
    let layer = layer_for(
        &issuer,
        "http://127.0.0.1:9/mcp",
        Options {
            sink: Some(Arc::new(sink.clone())),
            ..Options::default()
        },
    );
    let token = issuer.token().scope("calendar:read").sign();
    let router = axum::Router::new().route_service("/mcp", small_calendar::mcp_service());
    let mut service = tower_layer::Layer::layer(&layer, router);
    // No connect info, no PeerAddr: the budget cannot apply, so the request is not let past it.
    let request = http::Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let response = tower_service::Service::call(&mut service, request)
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let event = sink.one();
    assert_eq!(event.reason, reason::CLIENT_ADDRESS_UNKNOWN);
    assert_eq!(event.outcome, Outcome::Refused);
    assert_eq!(event.remote_addr, None);
}

#[tokio::test]
async fn an_allowed_request_whose_endpoint_never_answers_is_still_recorded() {
    /// An endpoint that never answers, and says when a request reached it.
    #[derive(Clone)]
    struct Never(Arc<std::sync::atomic::AtomicBool>);
    impl<B> tower_service::Service<http::Request<B>> for Never {
        type Response = http::Response<axum::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Pending<Result<Self::Response, Self::Error>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<B>) -> Self::Future {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            std::future::pending()
        }
    }
    let sink = Collect::default();
    let issuer = TestIssuer::builder()
        .audience("http://127.0.0.1:9/mcp")
        .start()
        .await;
    let layer = layer_for(
        &issuer,
        "http://127.0.0.1:9/mcp",
        Options {
            sink: Some(Arc::new(sink.clone())),
            ..Options::default()
        },
    );
    let token = issuer.token().scope("calendar:read").sign();
    let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut service = tower_layer::Layer::layer(&layer, Never(reached.clone()));
    let request = http::Request::get("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .extension(mcp_oauth::http::PeerAddr("192.0.2.8:4000".parse().unwrap()))
        .body(axum::body::Body::empty())
        .unwrap();
    let call = tower_service::Service::call(&mut service, request);
    // Drop the call once the request is at the endpoint (not after a fixed time, which a slow
    // key fetch could use up: the call would then be dropped before any decision).
    let at_endpoint = tokio::time::timeout(Duration::from_secs(30), async {
        while !reached.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    tokio::select! {
        _ = call => panic!("the endpoint never answers"),
        waited = at_endpoint => waited.expect("the request reached the endpoint"),
    }
    let event = sink.one();
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.status, 499);
    assert_eq!(event.http_method, "GET");
}

// ---------------------------------------------------------------------------------------
// Request ids.

#[tokio::test]
async fn a_request_id_is_generated_when_absent_or_implausible_and_echoed() {
    let (server, sink) = collecting(Options::default()).await;
    let response = server.post(&initialize_body()).send().await.unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(echoed.len(), 32);
    assert!(echoed.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(sink.one().request_id, echoed);

    let response = server
        .post(&initialize_body())
        .header("x-request-id", "has space")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(echoed, "has space");
    assert_eq!(sink.one().request_id, echoed);

    // The endpoint sees the same id as the event.
    let token = server.token("alice", "calendar:read");
    let response = server
        .post(&initialize_body())
        .bearer_auth(&token)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    assert_eq!(sink.one().request_id, "abc-123");
}

// ---------------------------------------------------------------------------------------
// The tracing sink and the JSON-lines sink.

type Fields = BTreeMap<String, String>;

/// Captures the events of the audit target, with their fields, and their level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(tracing::Level, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl tracing::field::Visit for Visitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == audit::TARGET {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            self.0.lock().push((*event.metadata().level(), fields));
        }
    }
}

#[tokio::test]
async fn the_default_sink_emits_each_decision_under_the_audit_target() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    // The test's runtime is single-threaded: the server runs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start(Options::default()).await;
    let token = server.token("alice", "calendar:read");
    let response = server
        .post(&initialize_body())
        .bearer_auth(&token)
        .header("x-request-id", "trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .post(&call_body("create_event"))
        .bearer_auth(&token)
        .header("x-request-id", "trace-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .post(&initialize_body())
        .header("x-request-id", "trace-3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let events = captured.0.lock().clone();
    assert_eq!(events.len(), 3, "{events:#?}");
    for (level, _) in &events {
        assert_eq!(*level, tracing::Level::INFO);
    }
    let allowed = &events[0].1;
    assert_eq!(allowed["message"], "access allowed");
    assert_eq!(allowed["outcome"], "allowed");
    assert_eq!(allowed["reason"], "allowed");
    assert_eq!(allowed["status"], "200");
    assert_eq!(allowed["subject"], "alice");
    assert_eq!(allowed["client_id"], "test-client");
    assert_eq!(allowed["issuer"], server.issuer.issuer());
    assert_eq!(allowed["granted_scopes"], "calendar:read");
    assert_eq!(allowed["rpc_methods"], "initialize");
    assert_eq!(allowed["request_id"], "trace-1");
    assert_eq!(allowed["remote_addr"], "127.0.0.1");
    assert_eq!(
        allowed["fingerprint"],
        TokenFingerprint::of(&token).to_string()
    );
    assert!(allowed["time"].ends_with('Z'));

    let step_up = &events[1].1;
    assert_eq!(step_up["message"], "access refused");
    assert_eq!(step_up["outcome"], "refused");
    assert_eq!(step_up["reason"], "insufficient_scope");
    assert_eq!(step_up["status"], "403");
    assert_eq!(step_up["tools"], "create_event");
    assert_eq!(step_up["required_scopes"], "calendar:write");
    assert_eq!(step_up["granted_scopes"], "calendar:read");
    assert_eq!(step_up["request_id"], "trace-2");

    let discovery = &events[2].1;
    assert_eq!(discovery["reason"], "no_credentials");
    assert_eq!(discovery["status"], "401");
    assert_eq!(discovery["request_id"], "trace-3");
    assert!(!discovery.contains_key("subject"));
    assert!(!discovery.contains_key("fingerprint"));
}

/// A `Write` into shared memory.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_json_lines_sink_writes_one_object_per_decision_beside_another_sink() {
    let buffer = SharedBuffer::default();
    let collect = Collect::default();
    let server = start(Options {
        sink: Some(Arc::new((
            collect.clone(),
            JsonLinesSink::new(buffer.clone()),
        ))),
        ..Options::default()
    })
    .await;
    let token = server.token("alice", "calendar:read");
    let response = server
        .post(&initialize_body())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server.post(&initialize_body()).send().await.unwrap();
    assert_eq!(response.status(), 401);

    let text = String::from_utf8(buffer.0.lock().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(collect.take().len(), 2);
    let allowed = &lines[0];
    for key in [
        "time",
        "outcome",
        "reason",
        "status",
        "http_method",
        "issuer",
        "subject",
        "client_id",
        "tools",
        "rpc_methods",
        "required_scopes",
        "granted_scopes",
        "fingerprint",
        "request_id",
        "remote_addr",
        "retry_after_secs",
    ] {
        assert!(allowed.get(key).is_some(), "missing {key}: {allowed}");
    }
    assert_eq!(allowed["outcome"], "allowed");
    assert_eq!(allowed["subject"], "alice");
    assert_eq!(allowed["granted_scopes"], json!(["calendar:read"]));
    assert_eq!(allowed["remote_addr"], "127.0.0.1");
    assert_eq!(
        allowed["fingerprint"],
        TokenFingerprint::of(&token).to_string()
    );
    let refused = &lines[1];
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["reason"], "no_credentials");
    assert_eq!(refused["status"], 401);
    assert!(refused["subject"].is_null());
    assert!(!text.contains(&token));
}

#[tokio::test]
async fn preflights_metadata_and_other_routes_record_nothing() {
    let (server, sink) = collecting(Options::default()).await;
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, &server.resource)
        .header("origin", server.base.as_str())
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let metadata = server
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    let other = server
        .http
        .get(format!("{}/elsewhere", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert!(sink.take().is_empty());
}

// ---------------------------------------------------------------------------------------
// Metrics (feature `metrics`): decisions counted by outcome and reason, validator statistics
// exported.

#[cfg(feature = "metrics")]
mod metrics_capture {
    use super::*;
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    pub type Values = Arc<Mutex<BTreeMap<String, f64>>>;

    pub struct Capture(pub Values);
    struct Cell(Values, String);

    impl CounterFn for Cell {
        fn increment(&self, value: u64) {
            *self.0.lock().entry(self.1.clone()).or_default() += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0.lock().insert(self.1.clone(), value as f64);
        }
    }
    impl GaugeFn for Cell {
        fn increment(&self, value: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() += value;
        }
        fn decrement(&self, value: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() -= value;
        }
        fn set(&self, value: f64) {
            self.0.lock().insert(self.1.clone(), value);
        }
    }
    impl HistogramFn for Cell {
        fn record(&self, _: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() += 1.0;
        }
    }

    impl Capture {
        fn cell(&self, key: &Key) -> Arc<Cell> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Arc::new(Cell(
                self.0.clone(),
                format!("{}{{{}}}", key.name(), labels.join(",")),
            ))
        }
    }

    impl Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.cell(key))
        }
    }
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn decisions_and_validator_statistics_reach_the_metrics_facade() {
    let values: metrics_capture::Values = Arc::default();
    // Global: the only test of this binary that reads metrics, and it asserts lower bounds.
    metrics::set_global_recorder(metrics_capture::Capture(values.clone()))
        .unwrap_or_else(|_| panic!("a recorder was already installed"));
    let server = start(Options::default()).await;
    let token = server.token("alice", "calendar:read");
    for _ in 0..2 {
        let response = server.post(&initialize_body()).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = server
        .post(&initialize_body())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.layer.export_metrics();
    let values = values.lock().clone();
    let get = |key: &str| values.get(key).copied().unwrap_or_default();
    assert!(get("mcp_oauth_decisions_total{outcome=refused,reason=no_credentials}") >= 2.0);
    assert!(get("mcp_oauth_decisions_total{outcome=allowed,reason=allowed}") >= 1.0);
    assert!(get("mcp_oauth_token_validation_duration_seconds{outcome=accepted}") >= 1.0);
    let issuer = server.issuer.issuer();
    assert_eq!(
        get(&format!(
            "mcp_oauth_key_set_fetches_total{{issuer={issuer}}}"
        )),
        server
            .layer
            .validator()
            .key_set(issuer)
            .unwrap()
            .stats()
            .fetches as f64
    );
    assert!(
        get(&format!(
            "mcp_oauth_key_set_fetches_total{{issuer={issuer}}}"
        )) >= 1.0
    );
    assert!(values.contains_key("mcp_oauth_token_cache_hit_ratio{}"));
}
