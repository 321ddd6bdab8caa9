//! `AuditSink::enabled`: the layer builds an audit event only for a sink that will record
//! it, and a listening sink gets the same events as before (fingerprint, request id). The
//! layer is driven in process, in front of a trivial endpoint.
#![cfg(feature = "layer")]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome, TracingSink, reason};
use mcp_oauth::http::{OAuthLayer, RequestBody, RequestId, ResponseBody};
use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::tools::{ToolScopes, ToolTable};
use mcp_oauth::validation::TokenFingerprint;
use mcp_oauth::{IssuerPolicy, ScopeSet, Validator};
use parking_lot::Mutex;
use tower_service::Service;

const RESOURCE: &str = "http://127.0.0.1/mcp";

static CALENDAR: ResourceDeclaration = ResourceDeclaration {
    scopes: &["calendar:read"],
    ..ResourceDeclaration::new("Calendar", RESOURCE, &["http://127.0.0.1/issuer"])
};

/// Answers 200, keeping the request id it was handed.
#[derive(Clone, Default)]
struct Endpoint(Arc<Mutex<Vec<String>>>);

impl Service<Request<RequestBody>> for Endpoint {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        assert!(!request.headers().contains_key("authorization"));
        let id = request
            .extensions()
            .get::<RequestId>()
            .expect("a request id");
        assert_eq!(request.headers()["x-request-id"], id.as_str());
        self.0.lock().push(id.as_str().to_owned());
        ready(Ok(Response::new(ResponseBody::empty())))
    }
}

/// Records what it is enabled for, and counts the events it is handed.
#[derive(Clone)]
struct Picky {
    allowed: bool,
    refused: bool,
    events: Arc<Mutex<Vec<AuditEvent<'static>>>>,
    asked: Arc<AtomicUsize>,
}

impl Picky {
    fn new(allowed: bool, refused: bool) -> Self {
        Self {
            allowed,
            refused,
            events: Arc::default(),
            asked: Arc::default(),
        }
    }

    fn take(&self) -> Vec<AuditEvent<'static>> {
        std::mem::take(&mut *self.events.lock())
    }
}

impl AuditSink for Picky {
    fn enabled(&self, outcome: Outcome) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Allowed => self.allowed,
            Outcome::Refused => self.refused,
        }
    }

    fn record(&self, event: &AuditEvent<'_>) {
        self.events.lock().push(event.clone().into_owned());
    }
}

struct Guarded {
    issuer: TestIssuer,
    service: mcp_oauth::http::OAuthService<Endpoint>,
    endpoint: Endpoint,
}

async fn guarded(sink: impl AuditSink) -> Guarded {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let config = ResourceConfig::from_declaration(&CALENDAR)
        .unwrap()
        .authorization_servers([issuer.issuer()]);
    let validator = Validator::new(
        IssuerPolicy::builder(issuer.issuer())
            .audience(RESOURCE)
            .jwks_uri(issuer.jwks_uri())
            .build()
            .unwrap(),
    )
    .unwrap();
    let layer = OAuthLayer::builder(config, validator)
        .tools(ToolTable::new([ToolScopes::new(
            "list_events",
            &["calendar:read"],
        )]))
        .audit_sink(sink)
        .build()
        .unwrap();
    let endpoint = Endpoint::default();
    let service = tower_layer::Layer::layer(&layer, endpoint.clone());
    Guarded {
        issuer,
        service,
        endpoint,
    }
}

impl Guarded {
    async fn call(&mut self, token: &str, tool: &str) -> Response<ResponseBody> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
        );
        let request = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .extension(mcp_oauth::http::PeerAddr("127.0.0.1:4000".parse().unwrap()))
            .body(RequestBody::from(body))
            .unwrap();
        futures::future::poll_fn(|cx| {
            Service::<Request<RequestBody>>::poll_ready(&mut self.service, cx)
        })
        .await
        .unwrap();
        self.service.call(request).await.unwrap()
    }
}

#[tokio::test]
async fn no_event_is_built_for_a_sink_that_would_drop_it() {
    let sink = Picky::new(false, true);
    let mut server = guarded(sink.clone()).await;
    let token = server.issuer.token().scope("calendar:read").sign();

    let response = server.call(&token, "list_events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(sink.take().is_empty(), "allowed: not enabled, not recorded");
    assert!(sink.asked.load(Ordering::Relaxed) >= 1);
    // The request id is still assigned, handed to the endpoint and echoed.
    let handed = server.endpoint.0.lock().pop().unwrap();
    assert_eq!(response.headers()["x-request-id"], handed.as_str());
    assert_eq!(handed.len(), 32);

    let response = server.call(&token, "delete_everything_unknown").await;
    assert_eq!(response.status(), StatusCode::OK); // unannotated tools are allowed by default
    assert!(sink.take().is_empty());

    let refused = "not-a-jwt";
    let response = server.call(refused, "list_events").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let events = sink.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Refused);
    assert_eq!(events[0].fingerprint, Some(TokenFingerprint::of(refused)));
    assert_eq!(response.headers()["x-request-id"], *events[0].request_id);
}

#[tokio::test]
async fn a_listening_sink_gets_the_whole_event() {
    let sink = Picky::new(true, true);
    let mut server = guarded(sink.clone()).await;
    let token = server
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .sign();

    let response = server.call(&token, "list_events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = sink.take();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.reason, reason::ALLOWED);
    assert_eq!(event.status, 200);
    assert_eq!(event.http_method, "POST");
    assert_eq!(event.subject.as_deref(), Some("alice"));
    assert_eq!(*event.tools, ["list_events"]);
    assert_eq!(*event.rpc_methods, ["tools/call"]);
    assert_eq!(
        event.required_scopes,
        Some(ScopeSet::from_space_separated("calendar:read"))
    );
    // Hashed once, by the validator: the same fingerprint as hashing the token here.
    assert_eq!(event.fingerprint, Some(TokenFingerprint::of(&token)));
    assert_eq!(response.headers()["x-request-id"], *event.request_id);

    // A cache hit gives the same event.
    let _ = server.call(&token, "list_events").await;
    let again = sink.take();
    assert_eq!(again[0].fingerprint, event.fingerprint);

    // Refused after verification (the scope is missing): still the token's fingerprint.
    let narrow = server.issuer.token().subject("bob").scope("other").sign();
    let response = server.call(&narrow, "list_events").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let events = sink.take();
    assert_eq!(events[0].reason, reason::INSUFFICIENT_SCOPE);
    assert_eq!(events[0].fingerprint, Some(TokenFingerprint::of(&narrow)));
}

#[tokio::test]
async fn a_tuple_records_when_either_sink_listens() {
    let quiet = Picky::new(false, false);
    let loud = Picky::new(true, true);
    assert!((quiet.clone(), loud.clone()).enabled(Outcome::Allowed));
    assert!(!(quiet.clone(), quiet.clone()).enabled(Outcome::Refused));
    assert!((quiet.clone(), quiet.clone(), loud.clone()).enabled(Outcome::Refused));
    let mut server = guarded((quiet.clone(), loud.clone())).await;
    let token = server.issuer.token().scope("calendar:read").sign();
    let _ = server.call(&token, "list_events").await;
    assert_eq!(loud.take().len(), 1);
}

#[test]
fn the_tracing_sink_is_enabled_when_a_subscriber_takes_audit_events() {
    use tracing_subscriber::layer::SubscriberExt;

    let quiet = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(quiet, || {
        assert!(!TracingSink.enabled(Outcome::Allowed));
        assert!(!TracingSink.enabled(Outcome::Refused));
        // Not enabled: recording formats nothing and emits nothing (nothing to observe
        // here but that it does not panic).
        TracingSink.record(&AuditEvent::new(
            Outcome::Refused,
            reason::NO_CREDENTIALS,
            401,
            "r",
        ));
    });

    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Count(seen.clone());
    let listening = tracing_subscriber::registry().with(counter);
    tracing::subscriber::with_default(listening, || {
        assert!(TracingSink.enabled(Outcome::Allowed));
        TracingSink.record(&AuditEvent::new(
            Outcome::Allowed,
            reason::ALLOWED,
            200,
            "r",
        ));
    });
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}

/// Counts the audit events it sees.
struct Count(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() == mcp_oauth::audit::TARGET {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
