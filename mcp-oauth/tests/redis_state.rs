//! The Redis stores against a real `redis-server` (started by each test on a loopback port):
//! two `RedisState`s on one Redis stand for two replicas.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{AUDIENCE, within};
use mcp_oauth::Validator;
use mcp_oauth::dpop::{Freshness, ReplayStore};
use mcp_oauth::http::{Principal, SessionBindings, SessionCheck};
use mcp_oauth::introspection::Introspection;
use mcp_oauth::rate_limit::{Budget, RateDecision, RateLimitKey, RateLimitStore};
use mcp_oauth::redis::{RedisConfig, RedisState};
use mcp_oauth::testing::RedisServer;
use serde_json::json;

/// A replica's state. The timeout is longer than the default 25 ms: a loaded test machine can
/// stall a process that long, and these tests' failures must come from the outages they stage.
async fn replica(redis: &RedisServer) -> RedisState {
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_millis(500));
    let state = RedisState::connect(config).unwrap();
    assert!(state.ready(Duration::from_secs(5)).await);
    state
}

#[tokio::test]
async fn two_replicas_share_one_budget() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let key = RateLimitKey::failed_auth("192.0.2.1".parse().unwrap());
    let budget = Budget::per_minute(4);
    let now = Duration::from_secs(1);
    let mut allowed = 0;
    for i in 0..10 {
        let store = if i % 2 == 0 { &a } else { &b };
        if store.acquire(&key, budget, now).await == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
}

#[tokio::test]
async fn a_proof_id_is_fresh_once_across_replicas() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    assert_eq!(a.remember([7; 32], 1_000, 900).await, Ok(Freshness::Fresh));
    assert_eq!(
        b.remember([7; 32], 1_000, 900).await,
        Ok(Freshness::Replayed)
    );
    redis.stop();
    assert!(
        b.remember([8; 32], 1_000, 900).await.is_err(),
        "fails closed"
    );
}

// ---------------------------------------------------------------------------------------
// Sessions.

#[tokio::test]
async fn a_session_bound_on_one_replica_is_checked_on_another() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (alice, mallory) = (
        Principal::from_bytes([1; 32]),
        Principal::from_bytes([2; 32]),
    );
    a.bind("session-seen", alice).await;
    a.bind("session-unseen", alice).await;

    assert_eq!(b.check("session-seen", alice).await, SessionCheck::Owner);
    assert_eq!(
        b.check("session-seen", mallory).await,
        SessionCheck::OtherPrincipal
    );
    assert_eq!(b.check("never-made", alice).await, SessionCheck::Unknown);

    // Without Redis: what B has seen answers from its own table; what it has not cannot be
    // checked (never "unknown", which would be a 404 for a live session).
    redis.stop();
    assert_eq!(b.check("session-seen", alice).await, SessionCheck::Owner);
    assert_eq!(
        b.check("session-seen", mallory).await,
        SessionCheck::OtherPrincipal
    );
    assert_eq!(
        b.check("session-unseen", alice).await,
        SessionCheck::Unavailable
    );
    assert_eq!(
        b.check("never-made", alice).await,
        SessionCheck::Unavailable
    );
    // A made it: A knows.
    assert_eq!(a.check("session-unseen", alice).await, SessionCheck::Owner);
}

#[tokio::test]
async fn an_unbound_session_is_unknown_on_every_replica() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let alice = Principal::from_bytes([1; 32]);
    a.bind("session-1", alice).await;
    assert_eq!(b.check("session-1", alice).await, SessionCheck::Owner);
    b.unbind("session-1").await;
    assert_eq!(b.check("session-1", alice).await, SessionCheck::Unknown);
    // A third replica, which never saw it.
    let c = replica(&redis).await;
    assert_eq!(c.check("session-1", alice).await, SessionCheck::Unknown);
}

#[cfg(feature = "rmcp")]
#[tokio::test]
async fn rmcps_session_state_is_restored_on_another_replica() {
    use rmcp::model::InitializeRequestParams;
    use rmcp::transport::streamable_http_server::session::store::{SessionState, SessionStore};

    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (store_a, store_b) = (a.session_store(), b.session_store());
    let params: InitializeRequestParams = serde_json::from_value(json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {"roots": {"listChanged": true}},
        "clientInfo": {"name": "claude-code", "version": "2.1.0"}}))
    .unwrap();

    assert!(store_b.load("session-1").await.unwrap().is_none());
    store_a
        .store("session-1", &SessionState::new(params.clone()))
        .await
        .unwrap();
    let loaded = store_b.load("session-1").await.unwrap().expect("stored");
    assert_eq!(loaded.initialize_params, params);
    assert!(store_b.load("session-2").await.unwrap().is_none());

    // One hash holds the binding and the state: storing the state keeps the binding, and
    // deleting the session removes both.
    let alice = Principal::from_bytes([1; 32]);
    a.bind("session-1", alice).await;
    store_a
        .store("session-1", &SessionState::new(params.clone()))
        .await
        .unwrap();
    let c = replica(&redis).await;
    assert_eq!(c.check("session-1", alice).await, SessionCheck::Owner);
    store_b.delete("session-1").await.unwrap();
    assert!(store_a.load("session-1").await.unwrap().is_none());
    let d = replica(&redis).await;
    assert_eq!(d.check("session-1", alice).await, SessionCheck::Unknown);

    // Without Redis the store says so (rmcp answers the client an error), never "none".
    redis.stop();
    assert!(store_b.load("session-1").await.is_err());
    assert!(
        store_b
            .store("session-1", &SessionState::new(params))
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// Introspection answers.

/// An introspection endpoint on loopback that answers every token active (for
/// `subject`) and counts its calls. Returns its issuer URL and the count.
async fn introspection_endpoint(subject: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let calls = Arc::new(AtomicUsize::new(0));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let answer = json!({
        "active": true,
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "client_id": "client-1",
        "scope": "calendar:read",
        "token_type": "Bearer",
        "iat": now,
        "exp": now + 300,
    });
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            async move { axum::Json(answer) }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (issuer, calls)
}

fn introspecting_validator(issuer: &str, state: &RedisState) -> Validator {
    let introspection = Introspection::builder(issuer)
        .audience(AUDIENCE)
        .endpoint(format!("{issuer}/introspect"))
        .client_secret_basic("calendar", "secret")
        .shared_cache(Arc::new(state.clone()))
        .build()
        .unwrap();
    Validator::builder()
        .introspection(introspection)
        .build()
        .unwrap()
}

/// The values of every key matching `pattern`, as `Debug` shows them.
async fn keys_matching(redis: &RedisServer, pattern: &str) -> Vec<String> {
    let keys = redis.command(&["KEYS", pattern]).await.unwrap();
    keys.as_sequence()
        .expect("an array")
        .iter()
        .map(|key| format!("{key:?}"))
        .collect()
}

#[tokio::test]
async fn an_introspection_answer_serves_every_replica() {
    const SUBJECT: &str = "user-5e21";
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (issuer, calls) = introspection_endpoint(SUBJECT).await;
    let (validator_a, validator_b) = (
        introspecting_validator(&issuer, &a),
        introspecting_validator(&issuer, &b),
    );
    let token = "opaque-4f0d8b1c9e7a";

    let identity = validator_a.validate(token).await.expect("active");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The answer is shared in the background; then B needs no call.
    assert!(
        within(Duration::from_secs(5), || async {
            !keys_matching(&redis, "mcp-oauth:introspect:*")
                .await
                .is_empty()
        })
        .await,
        "the answer reached Redis"
    );
    let keys = keys_matching(&redis, "mcp-oauth:introspect:*").await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(token) && !keys[0].contains(SUBJECT));
    // The value is the endpoint's answer, kept as it came (claims included), never the token.
    let stored = redis
        .command(&[
            "EVAL",
            "return redis.call('GET', redis.call('KEYS', ARGV[1])[1])",
            "0",
            "mcp-oauth:introspect:*",
        ])
        .await
        .unwrap();
    let stored = format!("{stored:?}");
    assert!(
        stored.contains("active") && !stored.contains(token),
        "{stored}"
    );
    let again = validator_b.validate(token).await.expect("active");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "B made no call");
    assert_eq!(again.subject(), Some(SUBJECT));
    assert_eq!(again.expires_at(), identity.expires_at());
    assert_eq!(validator_b.introspector().unwrap().stats().calls, 0);

    // Without Redis each replica asks the endpoint: shared answers save calls, never decide.
    redis.stop();
    let other = "opaque-7b3e5a90d2c4";
    validator_a.validate(other).await.expect("active");
    validator_b.validate(other).await.expect("active");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// The revocation subscription belongs to the state: dropping the state ends it (the list
/// does not keep the state alive).
#[tokio::test]
async fn the_revocation_subscription_ends_with_its_state() {
    let redis = RedisServer::start().await.unwrap();
    let subscriptions = || async {
        let clients = redis
            .command(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .await
            .unwrap();
        match clients {
            redis::Value::BulkString(text) => String::from_utf8_lossy(&text).lines().count(),
            redis::Value::VerbatimString { text, .. } => text.lines().count(),
            other => panic!("CLIENT LIST answered {other:?}"),
        }
    };
    let state = replica(&redis).await;
    let list = mcp_oauth::revocation::Revocations::new();
    state.share_revocations(&list);
    assert!(
        within(Duration::from_secs(5), || async {
            subscriptions().await == 1
        })
        .await,
        "the list is subscribed"
    );
    drop(state);
    assert!(
        within(Duration::from_secs(5), || async {
            subscriptions().await == 0
        })
        .await,
        "the subscription ended with the state"
    );
    // Revoking still lists the token here; sharing says the state is gone.
    let token = mcp_oauth::revocation::Revocation::token("t");
    list.revoke(token.clone(), u64::MAX).await.unwrap_err();
    assert!(list.contains(&token, 0));
}
