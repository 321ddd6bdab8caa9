//! RFC 7662 introspection as the second verifier: against a scripted responder on loopback
//! (which counts calls and can misbehave) and against the dev authorization server's real
//! `/introspect` endpoint.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::AUDIENCE;
use mcp_oauth::introspection::{Introspection, IntrospectionBuilder, IntrospectionMode};
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::token_cache::TokenCacheConfig;
use mcp_oauth::validation::{Claim, ErrorCode, TokenError, Verification};
use mcp_oauth::{Clock, IssuerPolicy, ManualClock, Validator};
use parking_lot::Mutex;
use serde_json::{Value, json};

const CLIENT_ID: &str = "calendar rs";
const CLIENT_SECRET: &str = "s3cret:+/ü";

// ---------------------------------------------------------------------------------------
// A scripted introspection endpoint.

#[derive(Clone, Debug)]
enum Fault {
    None,
    Status(u16),
    Body(&'static str),
    Delay(Duration),
}

#[derive(Default)]
struct Script {
    answers: HashMap<String, Value>,
    fault: Option<Fault>,
    delay: Duration,
    requests: Vec<Captured>,
    metadata_issuer: Option<String>,
}

#[derive(Clone, Debug)]
struct Captured {
    form: HashMap<String, String>,
    authorization: Option<String>,
}

#[derive(Clone)]
struct Responder {
    issuer: String,
    script: Arc<Mutex<Script>>,
    calls: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    discovery_requests: Arc<AtomicUsize>,
}

impl Responder {
    async fn start() -> Responder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let responder = Responder {
            issuer,
            script: Arc::default(),
            calls: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            discovery_requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/introspect", axum::routing::post(introspect))
            .route(
                "/.well-known/oauth-authorization-server",
                axum::routing::get(metadata),
            )
            .with_state(responder.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        responder
    }

    fn endpoint(&self) -> String {
        format!("{}/introspect", self.issuer)
    }

    fn answer(&self, token: &str, response: Value) {
        self.script
            .lock()
            .answers
            .insert(token.to_owned(), response);
    }

    fn fault(&self, fault: Fault) {
        self.script.lock().fault = Some(fault);
    }

    fn delay(&self, delay: Duration) {
        self.script.lock().delay = delay;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Captured> {
        self.script.lock().requests.clone()
    }

    /// An `active: true` answer for our audience, valid for `lifetime` from `now`.
    fn active(&self, now: u64, lifetime: u64) -> Value {
        json!({
            "active": true,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-1",
            "client_id": "client-1",
            "username": "alice",
            "scope": "calendar:read calendar:write",
            "token_type": "Bearer",
            "iat": now,
            "exp": now + lifetime,
            "jti": "at-1",
        })
    }

    /// The introspection configuration for this endpoint (basic auth, our audience).
    fn introspection(&self) -> IntrospectionBuilder {
        Introspection::builder(&self.issuer)
            .audience(AUDIENCE)
            .endpoint(self.endpoint())
            .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
    }
}

async fn introspect(
    State(responder): State<Responder>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    responder.calls.fetch_add(1, Ordering::SeqCst);
    let now = responder.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    responder.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let (answer, fault, delay) = {
        let mut script = responder.script.lock();
        script.requests.push(Captured {
            form: form.clone(),
            authorization,
        });
        let token = form.get("token").cloned().unwrap_or_default();
        let answer = script
            .answers
            .get(&token)
            .cloned()
            .unwrap_or(json!({"active": false}));
        (answer, script.fault.clone(), script.delay)
    };
    tokio::time::sleep(delay).await;
    let response = match fault {
        None | Some(Fault::None) => axum::Json(answer).into_response(),
        Some(Fault::Status(status)) => {
            (StatusCode::from_u16(status).unwrap(), "boom").into_response()
        }
        Some(Fault::Body(body)) => ([("content-type", "application/json")], body).into_response(),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            axum::Json(answer).into_response()
        }
    };
    responder.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn metadata(State(responder): State<Responder>) -> Response {
    responder.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let issuer = responder
        .script
        .lock()
        .metadata_issuer
        .clone()
        .unwrap_or_else(|| responder.issuer.clone());
    axum::Json(json!({
        "issuer": issuer,
        "introspection_endpoint": responder.endpoint(),
        "token_endpoint": format!("{}/token", responder.issuer),
    }))
    .into_response()
}

fn validator(clock: &ManualClock, introspection: Introspection) -> Validator {
    Validator::builder()
        .clock(Arc::new(clock.clone()))
        .introspection(introspection)
        .build()
        .unwrap()
}

fn unavailable(result: Result<mcp_oauth::VerifiedToken, TokenError>) -> Duration {
    match result {
        Err(error @ TokenError::IntrospectionUnavailable { .. }) => {
            assert_eq!(error.error_code(), ErrorCode::TemporarilyUnavailable);
            assert_eq!(error.error_code().status(), 503);
            assert_eq!(error.reason(), "introspection_unavailable");
            error.retry_after().expect("a Retry-After")
        }
        other => panic!("expected IntrospectionUnavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Active, inactive, and what an active answer must still satisfy.

#[tokio::test]
async fn an_active_opaque_token_yields_the_verified_identity() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    responder.answer("opaque-1", responder.active(now, 300));
    let validator = validator(&clock, responder.introspection().build().unwrap());

    let identity = validator.validate("opaque-1").await.expect("active");
    assert_eq!(identity.verification(), Verification::Introspection);
    assert_eq!(identity.issuer(), responder.issuer);
    assert_eq!(identity.subject(), Some("user-1"));
    assert_eq!(identity.client_id(), Some("client-1"));
    assert_eq!(identity.username(), Some("alice"));
    assert_eq!(identity.jwt_id(), Some("at-1"));
    assert_eq!(identity.audiences(), [AUDIENCE]);
    assert_eq!(identity.expires_at(), now + 300);
    assert!(
        identity.scopes().contains("calendar:read") && identity.scopes().contains("calendar:write")
    );
    assert_eq!(identity.claim("token_type"), Some(json!("Bearer")));

    // The request: form-encoded token with a hint, client_secret_basic with form-encoded parts.
    let requests = responder.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].form["token"], "opaque-1");
    assert_eq!(requests[0].form["token_type_hint"], "access_token");
    assert!(!requests[0].form.contains_key("client_secret"));
    let basic = requests[0].authorization.as_deref().unwrap();
    let decoded = String::from_utf8(
        STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap(),
    )
    .unwrap();
    let (id, secret) = decoded.split_once(':').unwrap();
    let form_decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(
        (form_decode(id), form_decode(secret)),
        (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())
    );

    // Cached: the same verification, no second call.
    let again = validator.validate("opaque-1").await.unwrap();
    assert!(again.is_same_verification(&identity));
    assert_eq!(responder.calls(), 1);
    let stats = validator.introspector().unwrap().stats();
    assert_eq!((stats.calls, stats.accepted, stats.cache_hits), (1, 1, 1));
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    responder.answer("opaque-1", responder.active(clock.now().as_secs(), 300));
    let config = Introspection::builder(&responder.issuer)
        .audience(AUDIENCE)
        .endpoint(responder.endpoint())
        .client_secret_post(CLIENT_ID, CLIENT_SECRET)
        .build()
        .unwrap();
    assert_eq!(config.client_auth().method(), "client_secret_post");
    assert!(
        !format!("{config:?}").contains(CLIENT_SECRET),
        "Debug redacts the secret"
    );
    validator(&clock, config)
        .validate("opaque-1")
        .await
        .unwrap();
    let request = &responder.requests()[0];
    assert_eq!(request.authorization, None);
    assert_eq!(request.form["client_id"], CLIENT_ID);
    assert_eq!(request.form["client_secret"], CLIENT_SECRET);
}

#[tokio::test]
async fn an_inactive_token_is_invalid_token() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    let validator = validator(&clock, responder.introspection().build().unwrap());
    let error = validator.validate("revoked-or-unknown").await.unwrap_err();
    assert_eq!(error, TokenError::Inactive);
    assert_eq!(error.error_code(), ErrorCode::InvalidToken);
    assert_eq!(error.error_code().status(), 401);
    assert_eq!(error.reason(), "inactive");
    // Negative answers are not cached by default.
    validator.validate("revoked-or-unknown").await.unwrap_err();
    assert_eq!(responder.calls(), 2);
}

#[tokio::test]
async fn an_active_answer_is_still_checked_like_a_jwt() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    let base = responder.active(now, 300);
    let with = |name: &str, value: Value| {
        let mut answer = base.clone();
        answer[name] = value;
        answer
    };
    let without = |name: &str| {
        let mut answer = base.clone();
        answer.as_object_mut().unwrap().remove(name);
        answer
    };
    let cases: Vec<(&str, Value, Result<(), TokenError>)> = vec![
        (
            "aud-other",
            with("aud", json!("https://other.example.com/mcp")),
            Err(TokenError::AudienceMismatch),
        ),
        (
            "aud-array",
            with("aud", json!(["https://other.example.com", AUDIENCE])),
            Ok(()),
        ),
        (
            "aud-canonical",
            with("aud", json!("HTTPS://MCP.EXAMPLE.COM/mcp")),
            Ok(()),
        ),
        (
            "aud-path-case",
            with("aud", json!("https://mcp.example.com/MCP")),
            Err(TokenError::AudienceMismatch),
        ),
        (
            "aud-missing",
            without("aud"),
            Err(TokenError::MissingClaim(Claim::Audience)),
        ),
        (
            "aud-empty",
            with("aud", json!([])),
            Err(TokenError::MissingClaim(Claim::Audience)),
        ),
        (
            "exp-passed",
            with("exp", json!(now - 61)),
            Err(TokenError::Expired),
        ),
        ("exp-in-leeway", with("exp", json!(now - 30)), Ok(())),
        (
            "exp-missing",
            without("exp"),
            Err(TokenError::MissingClaim(Claim::Expiry)),
        ),
        (
            "exp-string",
            with("exp", json!("soon")),
            Err(TokenError::InvalidClaim),
        ),
        (
            "nbf-future",
            with("nbf", json!(now + 120)),
            Err(TokenError::NotYetValid),
        ),
        (
            "iat-future",
            with("iat", json!(now + 120)),
            Err(TokenError::IssuedInFuture),
        ),
        (
            "iss-other",
            with("iss", json!("https://other.example.com")),
            Err(TokenError::UnknownIssuer),
        ),
        ("iss-missing", without("iss"), Ok(())),
        (
            "refresh-token",
            with("token_type", json!("refresh_token")),
            Err(TokenError::InvalidType),
        ),
        (
            "keycloak-refresh",
            with("typ", json!("Refresh")),
            Err(TokenError::InvalidType),
        ),
        // A DPoP-bound answer is not a bearer token (the DPoP verifier accepts it with its
        // proof: see `an_introspected_dpop_binding_is_enforced_like_a_jwts`).
        (
            "sender-constrained",
            with(
                "cnf",
                json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
            ),
            Err(TokenError::SenderConstrained),
        ),
        (
            "jkt-malformed",
            with("cnf", json!({"jkt": "abc"})),
            Err(TokenError::InvalidClaim),
        ),
        (
            "mtls-bound",
            with(
                "cnf",
                json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
            ),
            Err(TokenError::SenderConstrained),
        ),
        (
            "dpop-type-without-cnf",
            with("token_type", json!("DPoP")),
            Err(TokenError::SenderConstrained),
        ),
        (
            "scope-array",
            with("scope", json!(["calendar:read"])),
            Err(TokenError::InvalidClaim),
        ),
        (
            "sub-number",
            with("sub", json!(42)),
            Err(TokenError::InvalidClaim),
        ),
    ];
    for (token, answer, _) in &cases {
        responder.answer(token, answer.clone());
    }
    let validator = validator(&clock, responder.introspection().build().unwrap());
    for (token, _, expected) in cases {
        let result = validator.validate(token).await.map(|_| ());
        assert_eq!(result, expected, "{token}");
    }
}

#[tokio::test]
async fn a_missing_exp_is_accepted_only_with_a_maximum_lifetime() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    let mut answer = responder.active(now, 300);
    answer.as_object_mut().unwrap().remove("exp");
    responder.answer("no-exp", answer);

    let strict = validator(&clock, responder.introspection().build().unwrap());
    assert_eq!(
        strict.validate("no-exp").await.unwrap_err(),
        TokenError::MissingClaim(Claim::Expiry)
    );

    let bounded = validator(
        &clock,
        responder
            .introspection()
            .max_lifetime_without_exp(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    let identity = bounded.validate("no-exp").await.unwrap();
    assert_eq!(identity.expires_at(), now + 30);
    let calls = responder.calls();
    bounded.validate("no-exp").await.unwrap();
    assert_eq!(responder.calls(), calls, "cached within the lifetime");
    clock.advance(Duration::from_secs(31));
    bounded.validate("no-exp").await.unwrap();
    assert_eq!(
        responder.calls(),
        calls + 1,
        "asked again after the lifetime"
    );
}

/// Issue #10 finding 5: durations configured as large as `Duration::MAX` (the lifetime of
/// answers without `exp`, the cache TTL, the retry delay, the queue timeout) saturate: no
/// time arithmetic panics, and the lifetime ends at the latest NumericDate (year 9999).
#[tokio::test]
async fn huge_configured_durations_do_not_panic() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    let mut answer = responder.active(now, 300);
    answer.as_object_mut().unwrap().remove("exp");
    responder.answer("no-exp", answer);
    let huge = |builder: IntrospectionBuilder| {
        builder
            .max_lifetime_without_exp(Duration::MAX)
            .cache(TokenCacheConfig {
                ttl: Duration::MAX,
                ..TokenCacheConfig::default()
            })
            .retry_after(Duration::MAX)
            .queue_timeout(Duration::MAX)
            .build()
            .unwrap()
    };
    let bounded = validator(&clock, huge(responder.introspection()));
    let identity = bounded.validate("no-exp").await.unwrap();
    assert_eq!(identity.expires_at(), 253_402_300_799);
    clock.advance(Duration::MAX);
    bounded.validate("no-exp").await.unwrap();
    assert_eq!(responder.calls(), 1, "served from the cache");

    // A failed discovery is not retried for `retry_after`, however long.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let issuer = format!("http://127.0.0.1:{port}");
    let discovering = validator(
        &clock,
        huge(
            Introspection::builder(&issuer)
                .audience(AUDIENCE)
                .client_secret_basic("rs", "secret"),
        ),
    );
    assert_eq!(
        unavailable(discovering.validate("opaque").await),
        Duration::MAX
    );
    unavailable(discovering.validate("opaque").await);
    assert_eq!(discovering.introspector().unwrap().stats().discoveries, 1);
}

#[tokio::test]
async fn a_missing_audience_is_accepted_only_when_configured() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    let mut answer = responder.active(clock.now().as_secs(), 300);
    answer.as_object_mut().unwrap().remove("aud");
    responder.answer("no-aud", answer.clone());
    answer["aud"] = json!("https://other.example.com/mcp");
    responder.answer("other-aud", answer);
    let lax = validator(
        &clock,
        responder
            .introspection()
            .accept_missing_audience()
            .build()
            .unwrap(),
    );
    assert!(lax.validate("no-aud").await.unwrap().audiences().is_empty());
    assert_eq!(
        lax.validate("other-aud").await.unwrap_err(),
        TokenError::AudienceMismatch,
        "a present aud is still checked"
    );
}

#[tokio::test]
async fn required_members_can_be_added() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    let mut answer = responder.active(clock.now().as_secs(), 300);
    answer.as_object_mut().unwrap().remove("sub");
    responder.answer("no-sub", answer);
    let lenient = validator(&clock, responder.introspection().build().unwrap());
    assert_eq!(lenient.validate("no-sub").await.unwrap().subject(), None);
    let strict = validator(
        &clock,
        responder
            .introspection()
            .require_claim(Claim::Subject)
            .build()
            .unwrap(),
    );
    assert_eq!(
        strict.validate("no-sub").await.unwrap_err(),
        TokenError::MissingClaim(Claim::Subject)
    );
}

// ---------------------------------------------------------------------------------------
// The cache.

#[tokio::test]
async fn a_cached_answer_never_outlives_the_tokens_exp() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    responder.answer("short", responder.active(now, 30));
    // The cache TTL (300 s) is longer than the token's life (30 s).
    let validator = validator(
        &clock,
        responder
            .introspection()
            .cache(TokenCacheConfig {
                ttl: Duration::from_secs(300),
                ..TokenCacheConfig::default()
            })
            .build()
            .unwrap(),
    );
    validator.validate("short").await.unwrap();
    clock.advance(Duration::from_secs(29));
    validator.validate("short").await.unwrap();
    assert_eq!(responder.calls(), 1, "served from the cache before exp");

    // At exp the entry is gone: the endpoint is asked again, and (like a real authorization
    // server) now says the token is no longer active.
    clock.advance(Duration::from_secs(1));
    responder.answer("short", json!({"active": false}));
    assert_eq!(
        validator.validate("short").await.unwrap_err(),
        TokenError::Inactive
    );
    assert_eq!(responder.calls(), 2);
    assert_eq!(validator.introspector().unwrap().cached_entries(), 0);
}

#[tokio::test]
async fn the_cache_ttl_bounds_long_lived_tokens() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    responder.answer("long", responder.active(clock.now().as_secs(), 3600));
    let validator = validator(&clock, responder.introspection().build().unwrap());
    validator.validate("long").await.unwrap();
    clock.advance(Duration::from_secs(59));
    validator.validate("long").await.unwrap();
    assert_eq!(responder.calls(), 1);
    clock.advance(Duration::from_secs(2));
    validator.validate("long").await.unwrap();
    assert_eq!(responder.calls(), 2, "the default TTL is 60 s");
}

#[tokio::test]
async fn negative_caching_is_off_by_default_and_short_when_on() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    let validator = validator(
        &clock,
        responder
            .introspection()
            .negative_cache_ttl(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        assert_eq!(
            validator.validate("bad").await.unwrap_err(),
            TokenError::Inactive
        );
    }
    assert_eq!(responder.calls(), 1);
    clock.advance(Duration::from_secs(10));
    validator.validate("bad").await.unwrap_err();
    assert_eq!(responder.calls(), 2);

    assert!(
        responder
            .introspection()
            .negative_cache_ttl(Duration::from_secs(600))
            .build()
            .is_err(),
        "negative caching is short"
    );
}

#[tokio::test]
async fn the_cache_is_keyed_by_token_and_validator() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    responder.answer("a", responder.active(now, 300));
    responder.answer("b", responder.active(now, 300));
    let one = validator(&clock, responder.introspection().build().unwrap());
    let two = validator(&clock, responder.introspection().build().unwrap());
    one.validate("a").await.unwrap();
    one.validate("b").await.unwrap();
    two.validate("a").await.unwrap();
    assert_eq!(responder.calls(), 3);
}

// ---------------------------------------------------------------------------------------
// Failures are 503, never 401.

#[tokio::test]
async fn an_unavailable_endpoint_is_503_with_retry_after_and_nothing_is_cached() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    responder.answer("good", responder.active(clock.now().as_secs(), 300));
    let validator = validator(
        &clock,
        responder
            .introspection()
            // Short enough for the delayed answer to time out, long enough for the others
            // (the last one must succeed) to arrive on a loaded machine.
            .request_timeout(Duration::from_secs(2))
            .max_response_bytes(1024)
            .retry_after(Duration::from_secs(7))
            .build()
            .unwrap(),
    );
    let garbage_answers = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(401),
        Fault::Body("<html>oops</html>"),
        Fault::Body(r#"{"active":"true"}"#),
        Fault::Body(r#"{"scope":"x"}"#),
        Fault::Body(r#"{"active":true,"active":false}"#),
        Fault::Body(r#"[{"active":true}]"#),
        Fault::Delay(Duration::from_secs(30)),
    ];
    for fault in garbage_answers {
        responder.fault(fault.clone());
        let retry = unavailable(validator.validate("good").await);
        assert_eq!(retry, Duration::from_secs(7), "{fault:?}");
    }
    let big =
        Box::leak(format!(r#"{{"active":false,"pad":"{}"}}"#, "x".repeat(4096)).into_boxed_str());
    responder.fault(Fault::Body(big));
    unavailable(validator.validate("good").await);

    // Nothing of that was cached: once the endpoint recovers, the token is accepted.
    responder.fault(Fault::None);
    validator
        .validate("good")
        .await
        .expect("accepted once the endpoint answers");
    let stats = validator.introspector().unwrap().stats();
    assert_eq!(stats.failures, 10);
    assert_eq!(stats.accepted, 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_503() {
    let clock = ManualClock::starting_now();
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let issuer = format!("http://127.0.0.1:{port}");
    let validator = validator(
        &clock,
        Introspection::builder(&issuer)
            .audience(AUDIENCE)
            .endpoint(format!("{issuer}/introspect"))
            .client_secret_basic("rs", "secret")
            .build()
            .unwrap(),
    );
    assert_eq!(
        unavailable(validator.validate("opaque").await),
        Duration::from_secs(5)
    );
    // Discovery failing is the same: 503, and not retried at once.
    let discovering = validator_discovering(&clock, &issuer);
    unavailable(discovering.validate("opaque").await);
    unavailable(discovering.validate("opaque").await);
    assert_eq!(discovering.introspector().unwrap().stats().discoveries, 1);
}

fn validator_discovering(clock: &ManualClock, issuer: &str) -> Validator {
    validator(
        clock,
        Introspection::builder(issuer)
            .audience(AUDIENCE)
            .client_secret_basic("rs", "secret")
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn the_endpoint_is_discovered_from_the_issuers_metadata() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    responder.answer("a", responder.active(now, 300));
    responder.answer("b", responder.active(now, 300));
    let validator = validator_discovering(&clock, &responder.issuer);
    validator.validate("a").await.unwrap();
    validator.validate("b").await.unwrap();
    let introspector = validator.introspector().unwrap();
    assert_eq!(
        introspector.endpoint().as_deref(),
        Some(responder.endpoint().as_str())
    );
    assert_eq!(introspector.stats().discoveries, 1);
    assert_eq!(responder.discovery_requests.load(Ordering::SeqCst), 1);

    // A metadata document naming another issuer is not ours: nothing is sent anywhere.
    let impostor = Responder::start().await;
    impostor.script.lock().metadata_issuer = Some("https://someone-else.example".into());
    let validator = validator_discovering(&clock, &impostor.issuer);
    unavailable(validator.validate("a").await);
    assert_eq!(impostor.calls(), 0);
}

// ---------------------------------------------------------------------------------------
// Outbound calls: single-flight, capped.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_one_token_make_one_call() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    responder.answer("popular", responder.active(clock.now().as_secs(), 300));
    responder.delay(Duration::from_millis(300));
    let validator = validator(&clock, responder.introspection().build().unwrap());
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let validator = validator.clone();
            tokio::spawn(async move { validator.validate("popular").await })
        })
        .collect();
    let mut identities = Vec::new();
    for task in tasks {
        identities.push(task.await.unwrap().expect("active"));
    }
    assert_eq!(responder.calls(), 1, "exactly one introspection call");
    assert!(
        identities
            .iter()
            .all(|i| i.is_same_verification(&identities[0]))
    );
    let stats = validator.introspector().unwrap().stats();
    assert_eq!(stats.calls, 1);
    assert_eq!(stats.coalesced + stats.cache_hits, 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_are_capped_and_the_overflow_is_503() {
    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    for i in 0..8 {
        responder.answer(&format!("t{i}"), responder.active(now, 300));
    }
    // Far longer than the queue timeout: the six queued calls time out well before a
    // permit frees up, even when a loaded machine starts some of them late.
    responder.delay(Duration::from_secs(2));
    let validator = validator(
        &clock,
        responder
            .introspection()
            .max_concurrent_calls(2)
            .queue_timeout(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let validator = validator.clone();
            tokio::spawn(async move { validator.validate(&format!("t{i}")).await })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(error) => {
                assert_eq!(error.error_code().status(), 503, "{error:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(responder.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!((accepted, refused), (2, 6));
    assert_eq!(validator.introspector().unwrap().stats().over_capacity, 6);
}

// ---------------------------------------------------------------------------------------
// Which tokens are introspected.

#[tokio::test]
async fn jwt_shaped_tokens_are_never_introspected_unless_configured() {
    let clock = ManualClock::starting_now();
    let issuer = common::issuer(&clock).await;
    let responder = Responder::start().await;
    let validator = Validator::builder()
        .clock(Arc::new(clock.clone()))
        .issuer(common::policy(&issuer).build().unwrap())
        .introspection(responder.introspection().build().unwrap())
        .build()
        .unwrap();

    let valid = issuer.token().sign();
    assert_eq!(
        validator.validate(&valid).await.unwrap().verification(),
        Verification::Signature
    );
    // Change the signature's first character: every bit of it is significant (the last one
    // may carry padding bits, and may already be the replacement).
    let valid_again = issuer.token().sign();
    let signature_start = valid_again.rfind('.').unwrap() + 1;
    let replacement = if valid_again[signature_start..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    let mut forged = valid_again.clone();
    forged.replace_range(signature_start..signature_start + 1, replacement);
    assert_ne!(forged, valid_again);
    assert!(validator.validate(&forged).await.is_err());
    let unknown_issuer = issuer
        .token()
        .issuer("https://elsewhere.example.com")
        .sign();
    assert_eq!(
        validator.validate(&unknown_issuer).await.unwrap_err(),
        TokenError::UnknownIssuer
    );
    // Naming the introspection's issuer does not make a JWT introspected in the default mode.
    let naming_it = issuer.token().issuer(&responder.issuer).sign();
    assert_eq!(
        validator.validate(&naming_it).await.unwrap_err(),
        TokenError::UnknownIssuer
    );
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    assert_eq!(
        validator
            .validate(&format!("{header}.a.b.c.d"))
            .await
            .unwrap_err(),
        TokenError::Encrypted
    );
    assert_eq!(responder.calls(), 0, "no JWT-shaped token was introspected");

    // An opaque token is.
    assert_eq!(
        validator.validate("opaque").await.unwrap_err(),
        TokenError::Inactive
    );
    // So is something that merely has two dots.
    assert_eq!(
        validator.validate("a.b.c").await.unwrap_err(),
        TokenError::Inactive
    );
    assert_eq!(responder.calls(), 2);
}

#[tokio::test]
async fn all_tokens_mode_introspects_the_issuers_jwts_only() {
    let clock = ManualClock::starting_now();
    let issuer = common::issuer(&clock).await;
    let responder = Responder::start().await;
    let validator = Validator::builder()
        .clock(Arc::new(clock.clone()))
        .issuer(common::policy(&issuer).build().unwrap())
        .introspection(
            responder
                .introspection()
                .mode(IntrospectionMode::AllTokens)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    // A JWT naming the introspection's issuer goes to its endpoint (here: revoked).
    let theirs = issuer.token().issuer(&responder.issuer).sign();
    assert_eq!(
        validator.validate(&theirs).await.unwrap_err(),
        TokenError::Inactive
    );
    assert_eq!(responder.calls(), 1);
    // A JWT of another issuer is never sent there.
    let other = issuer.token().sign();
    assert_eq!(
        validator.validate(&other).await.unwrap().verification(),
        Verification::Signature
    );
    assert_eq!(responder.calls(), 1);
}

#[tokio::test]
async fn with_several_issuers_an_opaque_token_goes_to_one_endpoint_only() {
    let clock = ManualClock::starting_now();
    let configured = Responder::start().await;
    let other = Responder::start().await;
    let other_jwt_issuer = TestIssuer::builder().audience(AUDIENCE).start().await;
    // The other JWT issuer's metadata advertises the other endpoint; it must never be used.
    other_jwt_issuer.set_metadata_field("introspection_endpoint", json!(other.endpoint()));
    let validator = Validator::builder()
        .clock(Arc::new(clock.clone()))
        .issuer(
            IssuerPolicy::builder(other_jwt_issuer.issuer())
                .audience(AUDIENCE)
                .build()
                .unwrap(),
        )
        .issuer(
            IssuerPolicy::builder(&other.issuer)
                .audience(AUDIENCE)
                .jwks_uri(other_jwt_issuer.jwks_uri())
                .build()
                .unwrap(),
        )
        .introspection(configured.introspection().build().unwrap())
        .build()
        .unwrap();
    for token in ["opaque-1", "opaque-2", "opaque-3"] {
        assert_eq!(
            validator.validate(token).await.unwrap_err(),
            TokenError::Inactive
        );
    }
    assert_eq!(configured.calls(), 3);
    assert_eq!(other.calls(), 0);
    assert_eq!(other.discovery_requests.load(Ordering::SeqCst), 0);
    assert_eq!(
        validator.advertised_issuers(),
        [
            other_jwt_issuer.issuer(),
            other.issuer.as_str(),
            configured.issuer.as_str()
        ]
    );
}

#[tokio::test]
async fn an_introspection_only_validator_needs_no_issuer_policy() {
    let clock = ManualClock::starting_now();
    let responder = Responder::start().await;
    let validator = validator(&clock, responder.introspection().build().unwrap());
    assert_eq!(validator.policies().count(), 0);
    let jwt = TestIssuer::start().await.token().sign();
    assert_eq!(
        validator.validate(&jwt).await.unwrap_err(),
        TokenError::UnknownIssuer
    );
    assert_eq!(responder.calls(), 0);
}

#[test]
fn configuration_is_checked() {
    let base = || Introspection::builder("https://as.example.com").audience(AUDIENCE);
    assert!(base().build().is_err(), "client authentication is required");
    assert!(
        Introspection::builder("https://as.example.com")
            .client_secret_basic("rs", "s")
            .build()
            .is_err(),
        "an audience is required"
    );
    assert!(
        base()
            .client_secret_basic("rs", "s")
            .endpoint("http://as.example.com/introspect")
            .build()
            .is_err(),
        "plain http only to loopback"
    );
    assert!(
        Introspection::builder("http://as.example.com")
            .audience(AUDIENCE)
            .client_secret_basic("rs", "s")
            .build()
            .is_err()
    );
    assert!(
        base()
            .client_secret_basic("rs", "s")
            .max_concurrent_calls(0)
            .build()
            .is_err()
    );
    assert!(
        base()
            .client_secret_basic("rs", "s")
            .leeway(Duration::from_secs(301))
            .build()
            .is_err()
    );
    let config = base().client_secret_basic("rs", "s").build().unwrap();
    assert_eq!(config.mode(), IntrospectionMode::OpaqueOnly);
    assert_eq!(config.endpoint(), None);
}

// ---------------------------------------------------------------------------------------
// Against the dev authorization server's endpoint.

#[cfg(feature = "dev")]
mod dev_server {
    use super::*;
    use mcp_oauth::dev::DevAuthorizationServer;

    const RESOURCE: &str = "http://127.0.0.1:8080/mcp";

    fn http() -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let builder = {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.tls_backend_preconfigured(config)
        };
        builder.build().unwrap()
    }

    async fn server(clock: &ManualClock) -> DevAuthorizationServer {
        DevAuthorizationServer::builder()
            .resource(RESOURCE)
            .scopes(["calendar:read", "calendar:write"])
            .access_token_ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .start()
            .await
            .unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// A client-credentials access token from the token endpoint.
    async fn access_token(server: &DevAuthorizationServer) -> String {
        let client = server.dev_client();
        let response = http()
            .post(server.token_endpoint())
            .basic_auth(&client.id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("scope", "calendar:read"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    fn introspecting(server: &DevAuthorizationServer, clock: &ManualClock) -> Validator {
        let client = server.dev_client();
        validator(
            clock,
            Introspection::builder(server.issuer())
                .audience(RESOURCE)
                .client_secret_basic(&client.id, &client.secret)
                .mode(IntrospectionMode::AllTokens)
                .build()
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn active_tokens_are_accepted_with_their_claims() {
        let clock = ManualClock::starting_now();
        let server = server(&clock).await;
        let token = access_token(&server).await;
        let validator = introspecting(&server, &clock);
        let identity = validator.validate(&token).await.expect("active");
        assert_eq!(identity.verification(), Verification::Introspection);
        assert_eq!(identity.subject(), Some(server.dev_client().id.as_str()));
        assert_eq!(identity.client_id(), Some(server.dev_client().id.as_str()));
        assert_eq!(identity.scopes().to_space_separated(), "calendar:read");
        let introspector = validator.introspector().unwrap();
        assert_eq!(
            introspector.endpoint().as_deref(),
            Some(server.introspection_endpoint()),
            "discovered from the RFC 8414 metadata"
        );
        // client_secret_post works against it too.
        let client = server.dev_client();
        let post = validator_post(&server, &clock, &client.id, &client.secret);
        post.validate(&token).await.expect("client_secret_post");
    }

    fn validator_post(
        server: &DevAuthorizationServer,
        clock: &ManualClock,
        id: &str,
        secret: &str,
    ) -> Validator {
        validator(
            clock,
            Introspection::builder(server.issuer())
                .audience(RESOURCE)
                .endpoint(server.introspection_endpoint())
                .client_secret_post(id, secret)
                .mode(IntrospectionMode::AllTokens)
                .build()
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn inactive_tokens_are_refused() {
        let clock = ManualClock::starting_now();
        let server = server(&clock).await;
        let validator = introspecting(&server, &clock);
        assert_eq!(
            validator
                .validate("not-a-token-of-this-server")
                .await
                .unwrap_err(),
            TokenError::Inactive
        );
        // A JWT of this issuer that the server never issued (signed by another key).
        let forged = TestIssuer::builder()
            .audience(RESOURCE)
            .start()
            .await
            .token()
            .issuer(server.issuer())
            .sign();
        assert_eq!(
            validator.validate(&forged).await.unwrap_err(),
            TokenError::Inactive
        );
    }

    #[tokio::test]
    async fn an_expired_token_leaves_the_cache_at_exp() {
        let clock = ManualClock::starting_now();
        let server = server(&clock).await;
        let token = access_token(&server).await;
        let validator = introspecting(&server, &clock);
        validator.validate(&token).await.unwrap();
        clock.advance(Duration::from_secs(59));
        validator.validate(&token).await.unwrap();
        let stats = validator.introspector().unwrap().stats();
        assert_eq!((stats.calls, stats.cache_hits), (1, 1));
        clock.advance(Duration::from_secs(1));
        // At exp the entry is gone; the server, asked again, says the token is not active.
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            TokenError::Inactive
        );
        assert_eq!(validator.introspector().unwrap().stats().calls, 2);
    }

    #[tokio::test]
    async fn a_refresh_token_is_not_an_access_token() {
        let clock = ManualClock::starting_now();
        let server = server(&clock).await;
        let client = server.dev_client();
        // The authorization-code flow, for a refresh token (opaque and introspectable).
        let verifier = "a".repeat(43);
        let challenge = {
            use sha2::Digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let query = form(&[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ]);
        let authorize = http()
            .get(format!("{}?{query}", server.authorization_endpoint()))
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(authorize.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let tokens = http()
            .post(server.token_endpoint())
            .basic_auth(&client.id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://127.0.0.1/callback"),
                ("code_verifier", verifier.as_str()),
            ]))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let tokens: Value = serde_json::from_slice(&tokens).unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap();
        let validator = introspecting(&server, &clock);
        assert_eq!(
            validator.validate(refresh_token).await.unwrap_err(),
            TokenError::InvalidType,
            "active, but a refresh token"
        );
        assert_eq!(validator.introspector().unwrap().stats().calls, 1);
    }

    #[tokio::test]
    async fn wrong_credentials_or_a_stopped_server_are_503() {
        let clock = ManualClock::starting_now();
        let server = server(&clock).await;
        let token = access_token(&server).await;
        let wrong = validator_post(&server, &clock, &server.dev_client().id, "wrong-secret");
        unavailable(wrong.validate(&token).await);

        let validator = introspecting(&server, &clock);
        server.shutdown().await;
        unavailable(validator.validate(&token).await);
    }
}

// ---------------------------------------------------------------------------------------
// DPoP: an introspection answer's `cnf.jkt` is enforced like a JWT's (RFC 9449 §6.2).

#[tokio::test]
async fn an_introspected_dpop_binding_is_enforced_like_a_jwts() {
    use mcp_oauth::dpop::{
        DpopConfig, DpopError, DpopMode, DpopRequest, DpopVerifier, proof_algorithms,
    };
    use mcp_oauth::testing::DpopKey;

    let clock = ManualClock::starting_now();
    let now = clock.now().as_secs();
    let responder = Responder::start().await;
    let key = DpopKey::es256();
    let mut bound = responder.active(now, 300);
    bound["cnf"] = json!({ "jkt": key.jkt() });
    bound["token_type"] = json!("DPoP");
    responder.answer("opaque-bound", bound);
    let validator = validator(&clock, responder.introspection().build().unwrap());
    let verifier = DpopVerifier::new(
        DpopMode::Required,
        proof_algorithms(["ES256"]).unwrap(),
        AUDIENCE,
        DpopConfig::default().clock(Arc::new(clock.clone())),
    )
    .unwrap();
    let verify = |proof: String| {
        let verifier = &verifier;
        let validator = &validator;
        async move {
            let proofs = [proof.as_str()];
            verifier
                .verify(
                    validator,
                    DpopRequest {
                        method: "POST",
                        path: "/mcp",
                        access_token: "opaque-bound",
                        proofs: &proofs,
                    },
                )
                .await
        }
    };

    // As a bearer token: refused, however it is asked.
    assert_eq!(
        validator.validate("opaque-bound").await.unwrap_err(),
        TokenError::SenderConstrained
    );
    // With a proof by the bound key: accepted, the binding in the identity.
    let verified = verify(key.proof("POST", AUDIENCE, Some("opaque-bound")))
        .await
        .expect("bound and proven");
    assert_eq!(verified.jkt(), key.jkt());
    assert_eq!(verified.token.verification(), Verification::Introspection);
    // With a proof by another key: the token is not bound to it.
    let other = DpopKey::es256();
    assert_eq!(
        verify(other.proof("POST", AUDIENCE, Some("opaque-bound")))
            .await
            .unwrap_err(),
        DpopError::KeyMismatch
    );
    // The cached answer keeps the binding: still refused as a bearer token.
    assert_eq!(
        validator.validate("opaque-bound").await.unwrap_err(),
        TokenError::SenderConstrained
    );
    assert_eq!(responder.calls(), 1, "one introspection, cached after");
}
