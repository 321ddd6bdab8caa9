//! Tokens are never logged: every refusal path of the layer (and allowed calls) runs with a
//! subscriber at TRACE for every target (and `log` records bridged in), on every thread,
//! writing into a buffer; then no raw credential, and no payload or signature segment of a
//! JWT, may appear anywhere in what was written (nor in the JSON-lines audit log).
#![cfg(all(feature = "layer", feature = "rmcp"))]

mod peer;
mod small_calendar;

use std::net::SocketAddr;
use std::sync::Arc;

use mcp_oauth::audit::{JsonLinesSink, TracingSink};
use mcp_oauth::rate_limit::{Budget, RateLimits};
use mcp_oauth::testing::{Fault, TestIssuer};
use mcp_oauth::validation::TokenFingerprint;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// A `Write` into shared memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

struct Server {
    issuer: TestIssuer,
    resource: String,
    http: reqwest::Client,
}

async fn start(audit_log: &Buffer, fault: Option<Fault>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    if let Some(fault) = fault {
        issuer.set_fault(fault);
    }
    let layer = small_calendar::layer_builder(&issuer, &resource)
        .max_body_bytes(2048)
        .rate_limits(
            RateLimits::default()
                .per_principal(Budget::per_minute(5))
                .failed_auth(Budget::per_minute(25)),
        )
        .audit_sink((TracingSink, JsonLinesSink::new(audit_log.clone())))
        .build()
        .unwrap();
    let mcp = small_calendar::mcp_service();
    let app = tower_layer::Layer::layer(&layer, axum::Router::new().route_service("/mcp", mcp));
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
        http: mcp_oauth::testing::http_client(),
    }
}

const PROTOCOL: &str = "2025-06-18";

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

fn call_body(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

/// Sends requests and remembers every secret it put in them.
struct Client<'a> {
    server: &'a Server,
    secrets: Vec<String>,
    statuses: Vec<u16>,
}

impl<'a> Client<'a> {
    fn new(server: &'a Server) -> Self {
        Self {
            server,
            secrets: Vec::new(),
            statuses: Vec::new(),
        }
    }

    fn token(&mut self, subject: &str, scope: &str) -> String {
        let token = self
            .server
            .issuer
            .token()
            .subject(subject)
            .scope(scope)
            .sign();
        self.secrets.push(token.clone());
        token
    }

    fn secret(&mut self, secret: impl Into<String>) -> String {
        let secret = secret.into();
        self.secrets.push(secret.clone());
        secret
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.server
            .http
            .post(&self.server.resource)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL)
            .body(body.to_string())
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request.send().await.unwrap();
        self.statuses.push(response.status().as_u16());
        response
    }

    /// Sends and reads the whole body (so streamed answers are logged too).
    async fn status(&mut self, request: reqwest::RequestBuilder) -> u16 {
        let response = self.send(request).await;
        let status = response.status().as_u16();
        let _ = response.text().await;
        status
    }

    async fn initialize(&mut self, token: &str) -> String {
        let response = self
            .send(self.post(&initialize_body()).bearer_auth(token))
            .await;
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.text().await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let status = self
            .status(
                self.post(&initialized)
                    .bearer_auth(token)
                    .header("mcp-session-id", &session),
            )
            .await;
        assert_eq!(status, 202);
        session
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_any_log_at_trace_level() {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        // Plain text (the workspace turns on the `ansi` feature): nothing splits a token.
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    let audit_log = Buffer::default();

    let server = start(&audit_log, None).await;
    let mut client = Client::new(&server);

    // Allowed: a session, a tool call, the SSE stream's GET, the DELETE.
    let alice = client.token("alice", "calendar:read");
    let session = client.initialize(&alice).await;
    let status = client
        .status(
            client
                .post(&call_body("list_events"))
                .bearer_auth(&alice)
                .header("mcp-session-id", &session),
        )
        .await;
    assert_eq!(status, 200);
    let status = client
        .status(
            server
                .http
                .delete(&server.resource)
                .bearer_auth(&alice)
                .header("mcp-session-id", &session),
        )
        .await;
    assert!(status < 300, "{status}");

    // No credentials, another scheme, a query-string token (ignored).
    assert_eq!(client.status(client.post(&initialize_body())).await, 401);
    let basic = client.secret("dXNlcjpzdXBlcnNlY3JldC1wYXNzd29yZA==");
    assert_eq!(
        client
            .status(
                client
                    .post(&initialize_body())
                    .header("authorization", format!("Basic {basic}"))
            )
            .await,
        401
    );
    let dpop = client.token("dpop-user", "calendar:read");
    assert_eq!(
        client
            .status(
                client
                    .post(&initialize_body())
                    .header("authorization", format!("DPoP {dpop}"))
            )
            .await,
        401
    );

    let query = client.secret("query-string-secret-token-0123456789");
    assert_eq!(
        client
            .status(
                server
                    .http
                    .post(format!("{}?access_token={query}", server.resource))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(initialize_body().to_string())
            )
            .await,
        401
    );

    // Malformed credentials.
    let part_one = client.secret("malformed-secret-part-one");
    let part_two = client.secret("malformed-secret-part-two");
    assert_eq!(
        client
            .status(
                client
                    .post(&initialize_body())
                    .header("authorization", format!("Bearer {part_one} {part_two}"))
            )
            .await,
        400
    );
    let first = client.token("alice", "calendar:read");
    let second = client.token("bob", "calendar:read");
    assert_eq!(
        client
            .status(
                client
                    .post(&initialize_body())
                    .header("authorization", format!("Bearer {first}"))
                    .header("authorization", format!("Bearer {second}"))
            )
            .await,
        400
    );

    // Invalid tokens of every kind.
    let now = mcp_oauth::Clock::now(&mcp_oauth::SystemClock).as_secs();
    let issuer = &server.issuer;
    let valid = client.token("carol", "calendar:read");
    let (rest, _) = valid.rsplit_once('.').unwrap();
    let invalid = [
        issuer.token().expired().sign(),
        issuer.token().not_before(now + 3600).sign(),
        issuer.token().issuer("https://evil.example.com").sign(),
        issuer.token().audience("https://other.example/mcp").sign(),
        issuer.token().alg_header("none").unsigned(),
        issuer.token().kid("unknown-kid").sign(),
        issuer.token().typ("JWT").sign(),
        issuer.token().header("crit", json!(["x"])).sign(),
        issuer.token().without_claim("sub").sign(),
        format!("{rest}.c2lnbmF0dXJlLW9mLWEtZm9yZ2VyeQ"),
        "opaque-token-that-is-not-a-jwt-0123456789".to_owned(),
    ];
    for token in invalid {
        let token = client.secret(token);
        assert_eq!(
            client
                .status(client.post(&initialize_body()).bearer_auth(&token))
                .await,
            401,
            "{token}"
        );
    }

    // Origin refused, with a valid token.
    let origin = client.token("alice", "calendar:write");
    assert_eq!(
        client
            .status(
                client
                    .post(&initialize_body())
                    .bearer_auth(&origin)
                    .header("origin", "https://evil.example")
            )
            .await,
        403
    );

    // Refusals of a verified principal.
    let dave = client.token("dave", "calendar:read");
    let dave_session = client.initialize(&dave).await;
    let with_session = |request: reqwest::RequestBuilder| {
        request
            .bearer_auth(&dave)
            .header("mcp-session-id", &dave_session)
    };
    assert_eq!(
        client
            .status(with_session(client.post(&call_body("create_event"))))
            .await,
        403
    );
    assert_eq!(
        client
            .status(with_session(client.post(&call_body("unannotated"))))
            .await,
        403
    );
    let status = client
        .status(with_session(
            client
                .post(&call_body("list_events"))
                .header("mcp-name", "create_event"),
        ))
        .await;
    assert_eq!(status, 400);
    let erin = client.token("erin", "calendar:read");
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    assert_eq!(
        client.status(client.post(&big).bearer_auth(&erin)).await,
        413
    );
    assert_eq!(
        client
            .status(
                server
                    .http
                    .post(&server.resource)
                    .bearer_auth(&erin)
                    .body("not json at all")
            )
            .await,
        400
    );
    let form_token = client.secret("form-body-secret-token-0123456789");
    assert_eq!(
        client
            .status(
                server
                    .http
                    .post(&server.resource)
                    .bearer_auth(&erin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("access_token={form_token}"))
            )
            .await,
        400
    );
    let mallory = client.token("mallory", "calendar:write");
    assert_eq!(
        client
            .status(
                client
                    .post(&call_body("list_events"))
                    .bearer_auth(&mallory)
                    .header("mcp-session-id", &dave_session)
            )
            .await,
        404
    );

    // Rate limited: a principal's budget, then the address's failed-auth budget.
    let greedy = client.token("greedy", "calendar:read");
    let mut limited = false;
    for _ in 0..6 {
        limited |= client
            .status(client.post(&initialize_body()).bearer_auth(&greedy))
            .await
            == 429;
    }
    assert!(limited, "the principal budget was reached");
    let mut limited = false;
    for n in 0..30 {
        let garbage = client.secret(format!("garbage-token-{n:04}-abcdefghijklmnop"));
        if client
            .status(client.post(&initialize_body()).bearer_auth(&garbage))
            .await
            == 429
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "the failed-auth budget was reached");

    // Keys unavailable (503).
    let broken = start(&audit_log, Some(Fault::Status(500))).await;
    let mut broken_client = Client::new(&broken);
    let token = broken_client.token("frank", "calendar:read");
    assert_eq!(
        broken_client
            .status(broken_client.post(&initialize_body()).bearer_auth(&token))
            .await,
        503
    );

    // Now: what was written.
    let text = logs.text();
    let audit = audit_log.text();
    let mut secrets = client.secrets.clone();
    secrets.extend(broken_client.secrets.clone());
    assert!(secrets.len() > 30);
    for secret in &secrets {
        let mut needles = vec![secret.as_str()];
        // A JWT's payload and signature (the header is not secret, and is shared).
        let segments: Vec<&str> = secret.split('.').collect();
        if segments.len() == 3 {
            needles.extend(segments[1..].iter().filter(|s| s.len() >= 8));
        }
        for needle in needles {
            assert!(
                !text.contains(needle),
                "a token (or part of one) was logged: {needle}"
            );
            assert!(
                !audit.contains(needle),
                "a token (or part of one) reached the audit log: {needle}"
            );
        }
    }

    // The capture was real: TRACE events of other crates, and one audit event per request
    // in both the tracing output and the JSON-lines log, with fingerprints.
    assert!(text.contains("TRACE"), "TRACE output was captured");
    let requests = client.statuses.len() + broken_client.statuses.len();
    let decisions = text
        .lines()
        .filter(|line| line.contains("mcp_oauth::audit:"))
        .count();
    assert_eq!(decisions, requests, "one audit event per request");
    assert_eq!(audit.lines().count(), requests);
    assert!(text.contains(&TokenFingerprint::of(&alice).to_string()));
    let audit_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("mcp_oauth::audit:"))
        .collect();
    for reason in [
        "rate_limited_failed_auth",
        "rate_limited_principal",
        "keys_unavailable",
    ] {
        assert!(
            audit_lines
                .iter()
                .any(|line| line.contains(&format!("reason=\"{reason}\""))),
            "{reason}: {audit_lines:#?}"
        );
    }
}
