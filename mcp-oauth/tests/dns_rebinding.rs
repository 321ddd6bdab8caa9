//! SPEC vector 16 (DNS-rebinding protection) over real HTTP on loopback, in front of a real
//! rmcp streamable HTTP server: for a loopback resource every loopback alias on its port is a
//! valid `Origin` and only loopback names are a valid `Host`; a refused `Host` or `Origin`
//! gets 403 before any token work, audited; for another resource `Host` is checked only
//! against configured names. The requests of the MCP conformance scenario
//! `dns-rebinding-protection` are replayed as it sends them.
#![cfg(all(feature = "layer", feature = "rmcp"))]

mod peer;
// Its `mcp_service` keeps rmcp's own loopback-only `Host` check, which would answer for the
// layer: these tests serve the calendar with that check off (`mcp_service` below).
#[allow(dead_code)]
mod small_calendar;

use std::net::SocketAddr;
use std::sync::Arc;

use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome, reason};
use mcp_oauth::http::{LayerError, OAuthLayerBuilder};
use mcp_oauth::testing::TestIssuer;
use parking_lot::Mutex;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

/// Collects every event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    /// The one event recorded since the last call.
    fn one(&self) -> AuditEvent<'static> {
        let mut events = std::mem::take(&mut *self.0.lock());
        assert_eq!(events.len(), 1, "one event per decision: {events:#?}");
        events.pop().unwrap()
    }
}

/// The calendar served by rmcp with sessions and without rmcp's own `Host` check (as the
/// example serves it): every `Host` decision here is the layer's.
fn mcp_service() -> StreamableHttpService<small_calendar::Calendar, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = true;
    config.allowed_hosts = Vec::new();
    StreamableHttpService::new(
        || Ok(small_calendar::Calendar),
        LocalSessionManager::default().into(),
        config,
    )
}

struct Server {
    issuer: TestIssuer,
    /// Where the server listens (`http://127.0.0.1:<port>/mcp`).
    url: String,
    port: u16,
    audit: Collect,
    http: reqwest::Client,
}

/// The calendar behind a layer for `resource` (`None`: its own loopback URL), configured by
/// `configure`.
async fn start(
    resource: Option<&str>,
    configure: impl FnOnce(OAuthLayerBuilder) -> OAuthLayerBuilder,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let resource = resource.unwrap_or(&url).to_owned();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let audit = Collect::default();
    let layer =
        configure(small_calendar::layer_builder(&issuer, &resource).audit_sink(audit.clone()))
            .build()
            .unwrap();
    let router = axum::Router::new().route_service("/mcp", mcp_service());
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
        url,
        port,
        audit,
        http: mcp_oauth::testing::http_client(),
    }
}

impl Server {
    fn token(&self) -> String {
        self.issuer.token().scope("calendar:read").sign()
    }

    /// An `initialize` with a valid token, `Host` and `Origin` as given (`None`: the
    /// client's own `Host`, no `Origin`); the status.
    async fn initialize(&self, host: Option<&str>, origin: Option<&str>) -> u16 {
        self.initialize_with(&self.token(), host, origin).await
    }

    async fn initialize_with(&self, token: &str, host: Option<&str>, origin: Option<&str>) -> u16 {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "conformance-dns-rebinding-test", "version": "1.0.0"}}});
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .body(body.to_string());
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// The audit event of a refusal decided before any token work.
    fn assert_refused_before_token_work(&self, expected: &str) {
        let event = self.audit.one();
        assert_eq!(event.outcome, Outcome::Refused);
        assert_eq!(event.reason, expected);
        assert_eq!(event.status, 403);
        assert_eq!(event.fingerprint, None);
        assert_eq!(event.subject, None);
        assert_eq!(event.issuer, None);
    }

    fn assert_allowed(&self) {
        let event = self.audit.one();
        assert_eq!(event.outcome, Outcome::Allowed, "{event:?}");
    }
}

#[tokio::test]
async fn vector_16_every_loopback_alias_on_the_resource_port_is_a_valid_origin() {
    let server = start(None, |builder| builder).await;
    let port = server.port;
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        assert_eq!(
            server.initialize(None, Some(&origin)).await,
            200,
            "{origin}"
        );
        server.assert_allowed();
    }
}

#[tokio::test]
async fn vector_16_a_loopback_alias_on_another_port_or_scheme_is_refused() {
    let server = start(None, |builder| builder).await;
    let port = server.port;
    for origin in [
        format!("http://localhost:{}", port.wrapping_add(1)),
        format!("https://localhost:{port}"),
        "http://localhost".to_owned(),
        format!("http://evil.example:{port}"),
    ] {
        assert_eq!(
            server.initialize(None, Some(&origin)).await,
            403,
            "{origin}"
        );
        server.assert_refused_before_token_work(reason::ORIGIN_REFUSED);
    }
}

#[tokio::test]
async fn vector_16_a_non_loopback_host_is_refused_before_any_token_work() {
    let server = start(None, |builder| builder).await;
    let port = server.port;
    let rebound = format!("evil.example:{port}");
    // Without an Origin (a rebinding page's same-origin GET-like request may carry none).
    assert_eq!(server.initialize(Some(&rebound), None).await, 403);
    server.assert_refused_before_token_work(reason::HOST_REFUSED);
    // An invalid token does not get as far as 401.
    let status = server
        .initialize_with("not-a-token", Some(&rebound), None)
        .await;
    assert_eq!(status, 403);
    server.assert_refused_before_token_work(reason::HOST_REFUSED);
    for host in [
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("192.168.1.10:{port}"),
    ] {
        assert_eq!(server.initialize(Some(&host), None).await, 403, "{host}");
        server.assert_refused_before_token_work(reason::HOST_REFUSED);
    }
}

#[tokio::test]
async fn vector_16_loopback_hosts_pass_on_any_port() {
    let server = start(None, |builder| builder).await;
    let port = server.port;
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
        "localhost:1".to_owned(),
    ] {
        assert_eq!(server.initialize(Some(&host), None).await, 200, "{host}");
        server.assert_allowed();
    }
}

/// What the conformance scenario `dns-rebinding-protection` sends: `Host` and `Origin` of
/// `evil.example.com` (expects 4xx), then of the server URL's own `host:port` under another
/// loopback alias than the resource URL's (expects 2xx).
#[tokio::test]
async fn vector_16_the_conformance_rebinding_requests() {
    let server = start(None, |builder| builder).await;
    let port = server.port;
    let status = server
        .initialize(Some("evil.example.com"), Some("http://evil.example.com"))
        .await;
    assert_eq!(status, 403);
    server.assert_refused_before_token_work(reason::HOST_REFUSED);
    let local = format!("localhost:{port}");
    let status = server
        .initialize(Some(&local), Some(&format!("http://{local}")))
        .await;
    assert_eq!(status, 200);
    server.assert_allowed();
}

#[tokio::test]
async fn configured_hosts_extend_the_loopback_names() {
    let server = start(None, |builder| builder.allowed_hosts(["devbox.lan"])).await;
    let port = server.port;
    assert_eq!(
        server
            .initialize(Some(&format!("devbox.lan:{port}")), None)
            .await,
        200
    );
    server.assert_allowed();
    assert_eq!(
        server
            .initialize(Some(&format!("localhost:{port}")), None)
            .await,
        200
    );
    server.assert_allowed();
    assert_eq!(
        server
            .initialize(Some(&format!("evil.example:{port}")), None)
            .await,
        403
    );
    server.assert_refused_before_token_work(reason::HOST_REFUSED);
}

#[tokio::test]
async fn a_public_resource_accepts_any_host_by_default() {
    // Behind a reverse proxy: the resource URL is public, the proxy may send any Host.
    let server = start(Some("https://mcp.example.com/mcp"), |builder| builder).await;
    for host in ["mcp.example.com", "upstream.internal:8080", "127.0.0.1"] {
        assert_eq!(server.initialize(Some(host), None).await, 200, "{host}");
        server.assert_allowed();
    }
    // Its Origin policy is its own origin only: no loopback alias.
    let status = server
        .initialize(None, Some(&format!("http://localhost:{}", server.port)))
        .await;
    assert_eq!(status, 403);
    server.assert_refused_before_token_work(reason::ORIGIN_REFUSED);
    assert_eq!(
        server
            .initialize(None, Some("https://mcp.example.com"))
            .await,
        200
    );
    server.assert_allowed();
}

#[tokio::test]
async fn a_public_resource_with_allowed_hosts_refuses_any_other_host() {
    let server = start(Some("https://mcp.example.com/mcp"), |builder| {
        builder.allowed_hosts(["upstream.internal:8080"])
    })
    .await;
    for host in [
        "upstream.internal:8080",
        "mcp.example.com",
        "MCP.example.com:443",
    ] {
        assert_eq!(server.initialize(Some(host), None).await, 200, "{host}");
        server.assert_allowed();
    }
    for host in ["upstream.internal:9090", "evil.example", "localhost"] {
        assert_eq!(server.initialize(Some(host), None).await, 403, "{host}");
        server.assert_refused_before_token_work(reason::HOST_REFUSED);
    }
}

#[tokio::test]
async fn an_allowed_host_that_is_not_a_host_fails_the_build() {
    let issuer = TestIssuer::builder()
        .audience("https://mcp.example.com/mcp")
        .start()
        .await;
    let error = small_calendar::layer_builder(&issuer, "https://mcp.example.com/mcp")
        .allowed_hosts(["mcp.example.com", "https://mcp.example.com/mcp"])
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, LayerError::InvalidAllowedHost(entry) if entry == "https://mcp.example.com/mcp"),
        "{error}"
    );
}
