//! Token exchange for tools (RFC 8693, `mcp_oauth::exchange`), through the layer: a request
//! verified by the layer carries a `Downstream` (the sealed incoming token, the identity, the
//! audit trail), and the tests drive it against a token endpoint and a downstream API served
//! here on loopback, so that every request the exchanger makes is seen:
//!
//! - the cache: a hit for the same token and target, a miss for another token or scopes;
//!   entries end before either token expires (a manual clock moves past them);
//! - single-flight: concurrent exchanges make one call, and share its failure too (which is
//!   not cached past them);
//! - the downstream API receives only exchanged tokens, never the incoming one; a 401 drops
//!   the cached token and tries once more; a 403 `insufficient_scope` is a step-up only
//!   through the configured mapping;
//! - the authorization server's errors, and the allow-list (nothing is sent for an audience
//!   not allowed);
//! - one audit event per exchange, with the downstream audience, the issued token's `act`,
//!   and no token;
//! - Entra's on-behalf-of request; and no `Downstream` (no kept token) without an exchanger.
#![cfg(all(feature = "layer", feature = "rmcp"))]

#[allow(dead_code)] // the rmcp server is not used here
mod small_calendar;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mcp_oauth::audit::{AuditEvent, AuditSink, reason};
use mcp_oauth::clock::ManualClock;
use mcp_oauth::exchange::{Downstream, ExchangeError, Target, TokenExchanger};
use mcp_oauth::http::{OAuthLayerBuilder, PeerAddr};
use mcp_oauth::introspection::ClientAuth;
use mcp_oauth::testing::TestIssuer;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tower_service::Service;

const API: &str = "https://api.example.com";
const SERVER_ID: &str = "calendar-server";
const SERVER_SECRET: &str = "server-secret";

/// Collects every audit event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    fn exchanges(&self) -> Vec<AuditEvent<'static>> {
        self.0
            .lock()
            .iter()
            .filter(|event| event.downstream.is_some())
            .cloned()
            .collect()
    }
}

/// What the token endpoint answers next (a queue; empty: a token valid `lifetime`).
enum Answer {
    Token,
    Status(u16, Value),
}

/// The token endpoint: counts calls, keeps each form, issues JWT-shaped tokens.
struct AuthorizationServer {
    calls: AtomicUsize,
    forms: Mutex<Vec<Vec<(String, String)>>>,
    answers: Mutex<VecDeque<Answer>>,
    delay: Mutex<Duration>,
    lifetime: Mutex<u64>,
    /// What `exp` the issued tokens carry (`None`: no `exp` claim).
    now: ManualClock,
}

/// The downstream API: records each `Authorization` it receives, answers from a queue.
struct Api {
    seen: Mutex<Vec<String>>,
    answers: Mutex<VecDeque<(u16, Option<&'static str>)>>,
}

fn jwt(claims: &Value) -> String {
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(&json!({"alg": "RS256", "typ": "at+jwt"})),
        encode(claims)
    )
}

async fn token_endpoint(
    State(server): State<Arc<AuthorizationServer>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let call = server.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if let Some(basic) = headers.get("authorization") {
        form.push(("authorization".into(), basic.to_str().unwrap().to_owned()));
    }
    server.forms.lock().push(form.clone());
    let delay = *server.delay.lock();
    tokio::time::sleep(delay).await;
    let answer = server.answers.lock().pop_front().unwrap_or(Answer::Token);
    match answer {
        Answer::Token => {
            let lifetime = *server.lifetime.lock();
            let get = |name: &str| {
                form.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let now = server.now.now_secs();
            let token = jwt(&json!({
                "iss": "https://as.example.com",
                "sub": "alice",
                "aud": get("audience"),
                "exp": now + lifetime,
                "act": {"sub": SERVER_ID},
                "n": call,
            }));
            axum::Json(json!({
                "access_token": token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": get("scope"),
            }))
            .into_response()
        }
        Answer::Status(status, body) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
    }
}

async fn api_endpoint(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    api.seen.lock().push(authorization);
    let (status, challenge) = api.answers.lock().pop_front().unwrap_or((200, None));
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"holidays": ["2026-12-25"]})),
    )
        .into_response();
    if let Some(challenge) = challenge {
        response
            .headers_mut()
            .insert("www-authenticate", challenge.parse().unwrap());
    }
    response
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        mcp_oauth::clock::Clock::now(self).as_secs()
    }
}

struct World {
    issuer: TestIssuer,
    resource: String,
    server: Arc<AuthorizationServer>,
    api: Arc<Api>,
    api_url: String,
    token_endpoint: String,
    clock: ManualClock,
    audit: Collect,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

async fn world() -> World {
    let resource = "http://127.0.0.1:9/mcp".to_owned();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let clock = ManualClock::starting_now();
    let server = Arc::new(AuthorizationServer {
        calls: AtomicUsize::new(0),
        forms: Mutex::new(Vec::new()),
        answers: Mutex::new(VecDeque::new()),
        delay: Mutex::new(Duration::ZERO),
        lifetime: Mutex::new(600),
        now: clock.clone(),
    });
    let as_base = serve(
        axum::Router::new()
            .route("/token", axum::routing::post(token_endpoint))
            .with_state(server.clone()),
    )
    .await;
    let api = Arc::new(Api {
        seen: Mutex::new(Vec::new()),
        answers: Mutex::new(VecDeque::new()),
    });
    let api_base = serve(
        axum::Router::new()
            .route("/holidays", axum::routing::get(api_endpoint))
            .with_state(api.clone()),
    )
    .await;
    World {
        issuer,
        resource,
        server,
        api,
        api_url: format!("{api_base}/holidays"),
        token_endpoint: format!("{as_base}/token"),
        clock,
        audit: Collect::default(),
    }
}

impl World {
    fn exchanger(&self) -> mcp_oauth::exchange::TokenExchangerBuilder {
        TokenExchanger::builder(ClientAuth::SecretBasic {
            client_id: SERVER_ID.into(),
            client_secret: SERVER_SECRET.into(),
        })
        .token_endpoint(&self.token_endpoint)
        .subject_issuer(self.issuer.issuer())
        .allow_audience(API)
        .clock(self.clock.clone())
    }

    fn layer(&self, exchanger: Option<TokenExchanger>) -> OAuthLayerBuilder {
        let builder = small_calendar::layer_builder(&self.issuer, &self.resource)
            .audit_sink(self.audit.clone());
        match exchanger {
            Some(exchanger) => builder.token_exchange(exchanger),
            None => builder,
        }
    }

    /// The `Downstream` the layer hands the endpoint for a `tools/call` with `token`, and
    /// whether the endpoint saw an `Authorization` header.
    async fn downstream(
        &self,
        layer: OAuthLayerBuilder,
        token: &str,
    ) -> (Option<Downstream>, bool) {
        let layer = layer.build().unwrap();
        let seen = Arc::new(Mutex::new((None::<Downstream>, false)));
        let slot = seen.clone();
        let endpoint = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |request: axum::extract::Request| {
                let slot = slot.clone();
                async move {
                    *slot.lock() = (
                        request.extensions().get::<Downstream>().cloned(),
                        request.headers().contains_key("authorization"),
                    );
                    axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}))
                }
            }),
        );
        let mut service = tower_layer::Layer::layer(&layer, endpoint);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_events", "arguments": {}}});
        let mut request = http::Request::post("http://127.0.0.1:9/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        request
            .extensions_mut()
            .insert(PeerAddr("127.0.0.1:40000".parse::<SocketAddr>().unwrap()));
        let response = service.call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let seen = seen.lock();
        (seen.0.clone(), seen.1)
    }

    fn user_token(&self, scope: &str) -> String {
        self.issuer.token().subject("alice").scope(scope).sign()
    }

    /// The value of `name` in the `call`-th token request (0-based).
    fn sent(&self, call: usize, name: &str) -> Option<String> {
        self.server.forms.lock()[call]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn calls(&self) -> usize {
        self.server.calls.load(Ordering::SeqCst)
    }

    fn answer_next(&self, answer: Answer) {
        self.server.answers.lock().push_back(answer);
    }
}

fn target() -> Target {
    Target::audience(API).scopes(["holidays:read"])
}

async fn downstream_for(world: &World, exchanger: TokenExchanger, token: &str) -> Downstream {
    let (downstream, authorization_seen) =
        world.downstream(world.layer(Some(exchanger)), token).await;
    assert!(
        !authorization_seen,
        "the endpoint never sees the incoming token's header"
    );
    downstream.expect("the layer hands an exchanger's Downstream to the endpoint")
}

#[tokio::test]
async fn the_same_token_and_target_hit_the_cache_and_others_do_not() {
    let world = world().await;
    let exchanger = world.exchanger().build().unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger.clone(), &alice).await;

    let first = downstream.token(&target()).await.unwrap();
    assert!(!first.from_cache());
    assert_eq!(first.scopes(), ["holidays:read"]);
    assert_eq!(first.act(), Some(r#"{"sub":"calendar-server"}"#));
    // The request the server sent: RFC 8693, authenticated as the server's own client.
    let value = |name: &str| world.sent(0, name);
    assert_eq!(
        value("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(value("subject_token").as_deref(), Some(alice.as_str()));
    assert_eq!(value("audience").as_deref(), Some(API));
    assert_eq!(value("scope").as_deref(), Some("holidays:read"));
    assert!(value("authorization").unwrap().starts_with("Basic "));

    // Another request with the same token: the cache answers.
    let again = downstream_for(&world, exchanger.clone(), &alice).await;
    let second = again.token(&target()).await.unwrap();
    assert!(second.from_cache());
    assert_eq!(second.secret(), first.secret());
    assert_eq!(world.calls(), 1);

    // Other scopes, or another user's token: a call each.
    let other_scopes = Target::audience(API).scopes(["holidays:read", "holidays:write"]);
    assert!(!again.token(&other_scopes).await.unwrap().from_cache());
    let bob = world
        .issuer
        .token()
        .subject("bob")
        .scope("calendar:read")
        .sign();
    let bobs = downstream_for(&world, exchanger.clone(), &bob).await;
    let bob_token = bobs.token(&target()).await.unwrap();
    assert!(!bob_token.from_cache());
    assert_ne!(bob_token.secret(), first.secret());
    assert_eq!(world.calls(), 3);
    assert_eq!(exchanger.cached_entries(), 3);

    // The audit trail: one event per exchange, the downstream audience and act, no token.
    let events = world.audit.exchanges();
    let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            reason::TOKEN_EXCHANGED,
            reason::TOKEN_EXCHANGE_CACHED,
            reason::TOKEN_EXCHANGED,
            reason::TOKEN_EXCHANGED
        ]
    );
    let first_event = &events[0];
    let audit = first_event.downstream.as_ref().unwrap();
    assert_eq!(audit.audience, API);
    assert_eq!(audit.act.as_deref(), Some(r#"{"sub":"calendar-server"}"#));
    assert_eq!(audit.token_fingerprint, Some(first.fingerprint()));
    assert_eq!(first_event.subject.as_deref(), Some("alice"));
    assert_eq!(
        first_event.fingerprint,
        Some(mcp_oauth::validation::TokenFingerprint::of(&alice))
    );
    assert_eq!(first_event.status, 200);
    assert_eq!(events[1].status, 0, "a cache hit reached no server");
    let json =
        serde_json::to_string(&events.iter().map(AuditEvent::to_json).collect::<Vec<_>>()).unwrap();
    assert!(
        !json.contains(&alice) && !json.contains(first.secret()),
        "{json}"
    );
    assert!(!format!("{downstream:?}{first:?}").contains(first.secret()));
    assert!(!format!("{downstream:?}").contains(&alice));
}

#[tokio::test]
async fn cached_tokens_end_before_either_token_expires() {
    let world = world().await;
    let exchanger = world.exchanger().build().unwrap();
    // The downstream token lives 120 s: handed out until 30 s (the margin) before that.
    *world.server.lifetime.lock() = 120;
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger.clone(), &alice).await;
    let first = downstream.token(&target()).await.unwrap();
    world.clock.advance(Duration::from_secs(85));
    assert!(downstream.token(&target()).await.unwrap().from_cache());
    world.clock.advance(Duration::from_secs(10));
    let renewed = downstream.token(&target()).await.unwrap();
    assert!(!renewed.from_cache());
    assert_ne!(renewed.secret(), first.secret());
    assert_eq!(world.calls(), 2);

    // The incoming token expires first (in 100 s): the entry ends with it, whatever the
    // downstream token's own lifetime.
    *world.server.lifetime.lock() = 3600;
    let short = world
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .expires_in(Duration::from_secs(100))
        .sign();
    let downstream = downstream_for(&world, exchanger.clone(), &short).await;
    world
        .clock
        .set(mcp_oauth::clock::SystemClock.now_duration());
    let token = downstream.token(&target()).await.unwrap();
    assert!(token.expires_at() <= downstream.identity().expires_at());
    world.clock.advance(Duration::from_secs(60));
    assert!(downstream.token(&target()).await.unwrap().from_cache());
    world.clock.advance(Duration::from_secs(15));
    assert!(!downstream.token(&target()).await.unwrap().from_cache());
    assert_eq!(world.calls(), 4);
}

trait NowDuration {
    fn now_duration(&self) -> Duration;
}

impl NowDuration for mcp_oauth::clock::SystemClock {
    fn now_duration(&self) -> Duration {
        mcp_oauth::clock::Clock::now(self)
    }
}

#[tokio::test]
async fn concurrent_exchanges_make_one_call_and_share_a_failure() {
    let world = world().await;
    let exchanger = world.exchanger().build().unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger, &alice).await;
    *world.server.delay.lock() = Duration::from_millis(300);

    let target = target();
    let answers = futures::future::join_all((0..10).map(|_| downstream.token(&target))).await;
    assert_eq!(world.calls(), 1, "single-flight");
    let tokens: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    assert!(tokens.iter().all(|t| t.secret() == tokens[0].secret()));
    assert_eq!(tokens.iter().filter(|t| !t.from_cache()).count(), 1);

    // A failure is shared by those who waited on it, and not cached past them.
    let other = Target::audience(API).scopes(["holidays:write"]);
    world.answer_next(Answer::Status(
        400,
        json!({"error": "invalid_grant", "error_description": "subject token revoked"}),
    ));
    let answers = futures::future::join_all((0..5).map(|_| downstream.token(&other))).await;
    assert_eq!(world.calls(), 2);
    for answer in answers {
        match answer {
            Err(ExchangeError::Refused { error, status, .. }) => {
                assert_eq!((error.as_str(), status), ("invalid_grant", 400))
            }
            other => panic!("{other:?}"),
        }
    }
    *world.server.delay.lock() = Duration::ZERO;
    assert!(downstream.token(&other).await.is_ok());
    assert_eq!(world.calls(), 3);
}

#[tokio::test]
async fn the_downstream_api_sees_only_exchanged_tokens_and_a_401_gets_a_fresh_one() {
    let world = world().await;
    let exchanger = world.exchanger().build().unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger.clone(), &alice).await;
    let http = mcp_oauth::testing::http_client();

    let response = downstream
        .send(&target(), http.get(&world.api_url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A 401 (the API no longer accepts the cached token): dropped, exchanged again, sent again.
    world
        .api
        .answers
        .lock()
        .push_back((401, Some("Bearer error=\"invalid_token\"")));
    let response = downstream
        .send(&target(), http.get(&world.api_url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(world.calls(), 2);
    // Twice: the tool gets an error it can report.
    world.api.answers.lock().extend([(401, None), (401, None)]);
    match downstream.send(&target(), http.get(&world.api_url)).await {
        Err(ExchangeError::DownstreamRefused { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    let seen = world.api.seen.lock().clone();
    assert_eq!(seen.len(), 5);
    for authorization in &seen {
        assert!(authorization.starts_with("Bearer "), "{authorization}");
        assert!(
            !authorization.contains(&alice),
            "the incoming token was passed through"
        );
    }
    assert_ne!(seen[0], seen[2], "a fresh token after the 401");
}

#[tokio::test]
async fn insufficient_scope_is_a_step_up_only_through_the_mapping() {
    let world = world().await;
    let plain = world.exchanger().build().unwrap();
    let mapped = world
        .exchanger()
        .step_up(API, "holidays:write", ["calendar:write"])
        .build()
        .unwrap();
    let alice = world.user_token("calendar:read");
    let write = Target::audience(API).scopes(["holidays:write"]);

    // Unmapped, the authorization server's invalid_scope is a tool error.
    world.answer_next(Answer::Status(400, json!({"error": "invalid_scope"})));
    let downstream = downstream_for(&world, plain, &alice).await;
    match downstream.token(&write).await {
        Err(ExchangeError::InsufficientScope {
            scopes,
            step_up: None,
            ..
        }) => assert_eq!(scopes, ["holidays:write"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.calls(), 1);
    // Mapped, a caller without calendar:write is asked to step up before anything is sent:
    // the server does not obtain for a caller what the caller could not do here.
    let downstream = downstream_for(&world, mapped.clone(), &alice).await;
    match downstream.token(&write).await {
        Err(ExchangeError::InsufficientScope {
            step_up: Some(step_up),
            ..
        }) => assert!(step_up.missing.contains("calendar:write")),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.calls(), 1);

    // From the API: 403 with an insufficient_scope challenge.
    let downstream = downstream_for(&world, mapped.clone(), &alice).await;
    world.api.answers.lock().push_back((
        403,
        Some("Bearer error=\"insufficient_scope\", scope=\"holidays:write\""),
    ));
    let http = mcp_oauth::testing::http_client();
    match downstream.send(&target(), http.get(&world.api_url)).await {
        Err(ExchangeError::InsufficientScope {
            scopes,
            step_up: Some(step_up),
            ..
        }) => {
            assert_eq!(scopes, ["holidays:write"]);
            assert!(step_up.required.contains("calendar:write"));
        }
        other => panic!("{other:?}"),
    }
    // A token that holds the mapped scope already: asking the client again would loop.
    let writer = world.user_token("calendar:write");
    let downstream = downstream_for(&world, mapped, &writer).await;
    world.answer_next(Answer::Status(400, json!({"error": "invalid_scope"})));
    assert!(matches!(
        downstream.token(&write).await,
        Err(ExchangeError::InsufficientScope { step_up: None, .. })
    ));
}

#[tokio::test]
async fn refusals_and_failures_reach_the_tool_with_a_code() {
    let world = world().await;
    let exchanger = world.exchanger().build().unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger, &alice).await;

    // Not on the allow-list: nothing is sent.
    let elsewhere = Target::audience("https://evil.example.com");
    assert_eq!(
        downstream.token(&elsewhere).await.unwrap_err(),
        ExchangeError::AudienceNotAllowed("https://evil.example.com".into())
    );
    let bad_scope = Target::audience(API).scopes(["two words"]);
    assert!(matches!(
        downstream.token(&bad_scope).await,
        Err(ExchangeError::InvalidScope(_))
    ));
    assert_eq!(world.calls(), 0);

    let cases = [
        (
            Answer::Status(400, json!({"error": "invalid_target"})),
            "invalid_target",
            false,
        ),
        (
            Answer::Status(
                400,
                json!({"error": "interaction_required",
                "error_description": "AADSTS50079: multi-factor authentication is required"}),
            ),
            "interaction_required",
            false,
        ),
        (Answer::Status(503, json!({})), "unavailable", true),
        (
            Answer::Status(400, json!({"no": "error"})),
            "invalid_response",
            false,
        ),
    ];
    for (answer, code, transient) in cases {
        world.answer_next(answer);
        // A different scope each time: a fresh key, never a cached token.
        let target = Target::audience(API).scopes([code]);
        let error = downstream.token(&target).await.unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(error.is_transient(), transient);
    }
    let refused = world
        .audit
        .exchanges()
        .into_iter()
        .filter(|e| e.reason == reason::TOKEN_EXCHANGE_FAILED)
        .map(|e| e.downstream.unwrap().error.unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        refused,
        [
            "audience_not_allowed",
            "invalid_scope",
            "invalid_target",
            "interaction_required",
            "unavailable",
            "invalid_response"
        ]
    );
}

#[tokio::test]
async fn entra_on_behalf_of_sends_the_jwt_bearer_request() {
    let world = world().await;
    let exchanger = TokenExchanger::builder(ClientAuth::SecretPost {
        client_id: SERVER_ID.into(),
        client_secret: SERVER_SECRET.into(),
    })
    .token_endpoint(&world.token_endpoint)
    .subject_issuer(world.issuer.issuer())
    .allow_audience("api://holidays")
    .entra_on_behalf_of()
    .clock(world.clock.clone())
    .build()
    .unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger, &alice).await;
    let target = Target::audience("api://holidays").scopes(["Holidays.Read"]);
    downstream.token(&target).await.unwrap();
    let value = |name: &str| world.sent(0, name);
    assert_eq!(
        value("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(value("assertion").as_deref(), Some(alice.as_str()));
    assert_eq!(
        value("requested_token_use").as_deref(),
        Some("on_behalf_of")
    );
    assert_eq!(
        value("scope").as_deref(),
        Some("api://holidays/Holidays.Read")
    );
    assert_eq!(value("client_id").as_deref(), Some(SERVER_ID));
    assert_eq!(value("client_secret").as_deref(), Some(SERVER_SECRET));
    assert_eq!(value("authorization").as_deref(), None);
}

#[tokio::test]
async fn without_an_exchanger_the_layer_keeps_no_token() {
    let world = world().await;
    let alice = world.user_token("calendar:read");
    let (downstream, authorization_seen) = world.downstream(world.layer(None), &alice).await;
    assert!(downstream.is_none());
    assert!(!authorization_seen);
}

#[test]
fn a_failed_exchange_is_a_tool_error_or_the_mapped_step_up() {
    use mcp_oauth::ScopeSet;
    use mcp_oauth::tools::InsufficientScope;
    use rmcp::handler::server::tool::IntoCallToolResult;
    use rmcp::model::CallToolResponse;

    let refused = ExchangeError::Refused {
        status: 400,
        error: "invalid_target".into(),
        description: Some("unknown audience".into()),
    };
    let Ok(CallToolResponse::Complete(result)) = refused.into_call_tool_result() else {
        panic!("a refusal is a tool result")
    };
    assert_eq!(result.is_error, Some(true));
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["error"], "invalid_target");
    assert_eq!(structured["retryable"], false);

    let step_up = ExchangeError::InsufficientScope {
        audience: API.into(),
        scopes: vec!["holidays:write".into()],
        step_up: Some(InsufficientScope {
            required: ScopeSet::from_space_separated("calendar:write"),
            missing: ScopeSet::from_space_separated("calendar:write"),
        }),
    };
    let error = step_up.into_call_tool_result().unwrap_err();
    assert_eq!(
        error.code.0,
        mcp_oauth::challenge::INSUFFICIENT_SCOPE_ERROR_CODE
    );
    assert_eq!(error.data.unwrap()["scope"], "calendar:write");

    let unmapped = ExchangeError::InsufficientScope {
        audience: API.into(),
        scopes: vec!["holidays:write".into()],
        step_up: None,
    };
    assert!(matches!(
        unmapped.into_call_tool_result(),
        Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true)
    ));
}

#[tokio::test]
async fn nothing_is_sent_for_another_issuers_token_an_expired_one_or_an_entra_scope_of_another_api()
{
    let world = world().await;
    let alice = world.user_token("calendar:read");

    // An exchanger for another issuer's tokens: this one is never sent there.
    let elsewhere = TokenExchanger::builder(ClientAuth::SecretBasic {
        client_id: SERVER_ID.into(),
        client_secret: SERVER_SECRET.into(),
    })
    .token_endpoint(&world.token_endpoint)
    .subject_issuer("https://another-issuer.example.com")
    .allow_audience(API)
    .build()
    .unwrap();
    let downstream = downstream_for(&world, elsewhere, &alice).await;
    assert_eq!(
        downstream.token(&target()).await.unwrap_err().code(),
        "issuer_not_accepted"
    );

    // Expired since the request was verified (a tool that kept its Downstream).
    let downstream = downstream_for(&world, world.exchanger().build().unwrap(), &alice).await;
    world.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        downstream.token(&target()).await.unwrap_err(),
        ExchangeError::SubjectExpired
    );

    // Entra names the API in the scopes: one naming another API would pass the allow-list.
    let entra = world.exchanger().entra_on_behalf_of().build().unwrap();
    world
        .clock
        .set(mcp_oauth::clock::SystemClock.now_duration());
    let downstream = downstream_for(&world, entra, &alice).await;
    let graph = Target::audience(API).scopes(["https://graph.microsoft.com/Mail.Send"]);
    assert!(matches!(
        downstream.token(&graph).await,
        Err(ExchangeError::InvalidScope(scope)) if scope.contains("graph")
    ));
    assert_eq!(world.calls(), 0);
}

#[tokio::test]
async fn with_caching_off_each_call_exchanges_and_concurrent_ones_still_share() {
    let world = world().await;
    let exchanger = world.exchanger().cache_capacity(0).build().unwrap();
    let alice = world.user_token("calendar:read");
    let downstream = downstream_for(&world, exchanger, &alice).await;
    *world.server.delay.lock() = Duration::from_millis(300);
    let target = target();
    let answers = futures::future::join_all((0..6).map(|_| downstream.token(&target))).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(world.calls(), 1);
    *world.server.delay.lock() = Duration::ZERO;
    assert!(!downstream.token(&target).await.unwrap().from_cache());
    assert_eq!(world.calls(), 2);
}
