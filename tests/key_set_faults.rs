//! Faults around the key set, at the HTTP level (issue 6 §4): the calendar MCP server (the
//! example's own `server.rs`, in-process so that the key-set timings can be shortened) behind
//! the layer, over real HTTP on loopback, while its authorization server (a `TestIssuer`)
//! goes down, serves garbage, or rotates its keys under load.
//!
//! Counts are printed (`cargo test --test key_set_faults -- --nocapture` shows them).

#[path = "support/harness.rs"]
mod harness;
#[path = "../examples/calendar/server.rs"]
#[allow(dead_code)]
mod server;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{STATELESS_VERSION, report, tool_call};
use mcp_oauth::http::OAuthLayer;
use mcp_oauth::key_set::KeySetConfig;
use mcp_oauth::rate_limit::RateLimits;
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::{Fault, SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth::validation::TokenError;
use mcp_oauth::{IssuerPolicy, ManualClock, Validator};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use server::Calendar;
use support::{Reply, http_client as http};

// ---------------------------------------------------------------------------------------
// The server.

struct Server {
    issuer: TestIssuer,
    validator: Validator,
    resource: String,
}

/// Key-set timings of a test: network timeouts shorter than the defaults, yet long enough
/// for a loopback fetch on a loaded 2-core machine serving 32 clients (an 800 ms timeout made
/// a slow but healthy fetch count as a failure there), and whatever the test changes.
fn quick_config() -> KeySetConfig {
    KeySetConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        ..KeySetConfig::default()
    }
}

/// Starts an ES256 issuer and the calendar behind the layer, keys preloaded. `clock`, when
/// given, is read by both the issuer (token times) and the validator.
async fn start(config: KeySetConfig, clock: Option<ManualClock>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let mut builder = TestIssuer::builder()
        .audience(&resource)
        .algorithm(SigningAlgorithm::ES256);
    if let Some(clock) = &clock {
        builder = builder.clock(clock.clone());
    }
    let issuer = builder.start().await;
    let policy = IssuerPolicy::builder(issuer.issuer())
        .audience(&resource)
        .jwks_uri(issuer.jwks_uri())
        .key_set_config(config)
        .build()
        .unwrap();
    let mut validator = Validator::builder().issuer(policy);
    if let Some(clock) = &clock {
        validator = validator.clock(Arc::new(clock.clone()));
    }
    let validator = validator.build().unwrap();
    validator.preload().await.expect("the keys load");

    let config = ResourceConfig::of::<Calendar>()
        .resource(&resource)
        .authorization_servers([issuer.issuer().to_owned()]);
    // These tests measure the key set: the failed-authentication budget (per client
    // address) would turn their hundreds of deliberate refusals into 429s.
    let layer = OAuthLayer::builder(config, validator.clone())
        .tools(mcp_oauth::rmcp::tool_table(&Calendar::tool_router()))
        .rate_limits(RateLimits::disabled())
        .build()
        .unwrap();
    let calendar = Calendar::new();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.allowed_hosts = Vec::new();
    let mcp = StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let router = axum::Router::new().route_service(layer.route(), mcp);
    let app = tower::Layer::layer(&layer, router);
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(app),
        )
        .await
        .unwrap();
    });
    Server {
        issuer,
        validator,
        resource,
    }
}

/// What the server answered a `list_events` call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 200 with the tool's result.
    Ok,
    /// 401 with this error description.
    Refused(String),
    /// 503 with `Retry-After`: not judged yet (an unknown kid while no refresh can be made).
    RetryLater,
    /// Anything else.
    Other(u16, String),
}

impl Server {
    fn keys(&self) -> &mcp_oauth::key_set::RemoteKeySet {
        self.validator
            .key_set(self.issuer.issuer())
            .expect("the issuer's key set")
    }

    fn token_with(&self, key: &SigningKey) -> String {
        self.issuer.token().scope("calendar:read").key(key).sign()
    }

    fn token(&self) -> String {
        self.issuer.token().scope("calendar:read").sign()
    }

    /// A stateless `tools/call` of `list_events` with `token`.
    async fn call(&self, http: &reqwest::Client, token: &str) -> Outcome {
        let response = http
            .post(&self.resource)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", STATELESS_VERSION)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "list_events")
            .bearer_auth(token)
            .body(tool_call(1, "list_events", json!({}), STATELESS_VERSION).to_string())
            .send()
            .await;
        let reply = match response {
            Ok(response) => Reply::read(response).await,
            Err(error) => return Outcome::Other(0, error.to_string()),
        };
        match reply.status {
            200 if reply.json()["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.contains("Stand-up")) =>
            {
                Outcome::Ok
            }
            503 if reply.header("retry-after").is_some() => Outcome::RetryLater,
            401 => Outcome::Refused(
                reply
                    .challenge()
                    .into_iter()
                    .find(|(name, _)| name == "error_description")
                    .map(|(_, value)| value)
                    .unwrap_or_default(),
            ),
            status => Outcome::Other(status, reply.describe()),
        }
    }
}

/// Which key signed the token a call presented.
type Tag = u8;

/// Runs up to `total` calls from `clients` concurrent clients (each its own connection);
/// call `i` presents `token(i)`, tagged (`None`: stop). Returns every outcome with its tag
/// and when it was sent, in call order.
async fn load(
    server: &Arc<Server>,
    clients: usize,
    total: usize,
    token: Arc<dyn Fn(usize) -> Option<(String, Tag)> + Send + Sync>,
) -> Vec<Call> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (server, next, token) = (server.clone(), next.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let http = http();
            let mut calls = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= total {
                    break;
                }
                let Some((token, tag)) = token(index) else {
                    break;
                };
                let sent = Instant::now();
                let outcome = server.call(&http, &token).await;
                calls.push(Call {
                    index,
                    tag,
                    sent,
                    outcome,
                });
            }
            calls
        }));
    }
    let mut calls = Vec::new();
    for worker in workers {
        calls.extend(worker.await.expect("a load worker"));
    }
    calls.sort_by_key(|call| call.index);
    calls
}

/// One call of a load run.
#[derive(Debug)]
struct Call {
    index: usize,
    tag: Tag,
    sent: Instant,
    outcome: Outcome,
}

/// A load of one pool of tokens, all tagged 0.
fn pool(tokens: Vec<String>) -> Arc<dyn Fn(usize) -> Option<(String, Tag)> + Send + Sync> {
    Arc::new(move |i| Some((tokens[i % tokens.len()].clone(), 0)))
}

fn refusals(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|call| call.outcome != Outcome::Ok)
        .collect()
}

/// Polls `condition` every 20 ms for up to `timeout`.
async fn eventually(timeout: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

// ---------------------------------------------------------------------------------------
// The authorization server down, or serving garbage.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_down_for_the_whole_test_known_keys_still_accepted() {
    let clock = ManualClock::starting_now();
    let server = Arc::new(start(quick_config(), Some(clock.clone())).await);
    let http = http();
    let seen = server.token();
    assert_eq!(server.call(&http, &seen).await, Outcome::Ok);
    let fetches = server.keys().stats().fetches;

    server.issuer.shutdown().await;
    let dead = http.get(server.issuer.jwks_uri()).send().await;
    assert!(dead.is_err(), "the issuer still answers: {dead:?}");

    // A token already verified (cached), and tokens never seen, signed by the loaded key.
    assert_eq!(server.call(&http, &seen).await, Outcome::Ok);
    let fresh: Vec<String> = (0..200).map(|_| server.token()).collect();
    let outcomes = load(&server, 16, 400, pool(fresh)).await;
    let refused = refusals(&outcomes);
    report(&format!(
        "issuer down: {} requests, {} refused",
        outcomes.len(),
        refused.len()
    ));
    assert!(
        refused.is_empty(),
        "refused while down: {:?}",
        &refused[..refused.len().min(5)]
    );

    // An unknown kid while down: the refresh fails, so the kid can be neither found nor
    // ruled out: 503 with Retry-After (the set in use stays, and known keys still work).
    let unknown = server.token_with(&SigningKey::generate(SigningAlgorithm::ES256, "never"));
    assert_eq!(server.call(&http, &unknown).await, Outcome::RetryLater);
    assert!(server.keys().stats().failures >= 1);

    // Past the set's expiry (5 min) the set is stale, and still used (stale-if-error) for
    // up to `max_stale` (24 h): new tokens keep being accepted while refreshes fail.
    let mut elapsed = 0;
    for hours in [1u64, 12, 23] {
        clock.advance(Duration::from_secs((hours - elapsed) * 3600));
        elapsed = hours;
        let token = server.token();
        assert_eq!(
            server.call(&http, &token).await,
            Outcome::Ok,
            "{hours} h after loading, issuer down"
        );
    }
    assert!(
        server.keys().stats().fetches > fetches,
        "no refresh was attempted"
    );
    // Beyond expiry + max_stale: the keys are unavailable, the token is not judged (503).
    clock.advance(Duration::from_secs(2 * 3600));
    let token = server.token();
    match server.call(&http, &token).await {
        Outcome::RetryLater => {}
        other => panic!("expected 503 once the keys are too stale, got {other:?}"),
    }
}

/// Test vector 17 over HTTP: forged tokens naming made-up kids, sent right after the keys
/// loaded, cost one refresh and are all answered 401 `invalid_token`, never 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_kids_after_a_successful_refresh_are_all_401_never_503() {
    let server = Arc::new(start(quick_config(), None).await);
    let forged: Vec<String> = (0..200)
        .map(|i| {
            let key = SigningKey::generate(SigningAlgorithm::ES256, format!("forged-{i}"));
            server.token_with(&key)
        })
        .collect();
    let outcomes = load(&server, 16, forged.len(), pool(forged)).await;
    report(&format!(
        "forged kids: {} requests, {} refused 401, {} unknown-kid refresh(es)",
        outcomes.len(),
        refusals(&outcomes).len(),
        server.keys().stats().unknown_kid_refreshes
    ));
    assert_eq!(outcomes.len(), 200);
    for call in &outcomes {
        assert_eq!(
            call.outcome,
            Outcome::Refused(TokenError::UnknownKey.description().into()),
            "{call:?}"
        );
    }
    assert_eq!(server.keys().stats().unknown_kid_refreshes, 1);
    assert_eq!(
        server.keys().stats().fetches,
        2,
        "the preload and one refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_serving_garbage_known_keys_still_accepted() {
    let clock = ManualClock::starting_now();
    let config = KeySetConfig {
        // Every unknown kid may cause a refresh, so each fault below is really fetched.
        unknown_kid_cooldown: Duration::ZERO,
        ..quick_config()
    };
    let server = Arc::new(start(config, Some(clock.clone())).await);
    let http = http();
    // Valid for the whole test (the clock moves an hour per fault).
    let seen = server
        .issuer
        .token()
        .scope("calendar:read")
        .expires_in(Duration::from_secs(24 * 3600))
        .sign();
    assert_eq!(server.call(&http, &seen).await, Outcome::Ok);

    let faults = [
        Fault::Garbage,
        Fault::Status(500),
        Fault::Status(404),
        Fault::Oversize(2 * 1024 * 1024),
        Fault::OversizeChunked(2 * 1024 * 1024),
        // Longer than the request timeout.
        Fault::Delay(Duration::from_secs(6)),
        Fault::NoUsableKeys,
    ];
    for fault in faults {
        server.issuer.set_fault(fault.clone());
        let failures = server.keys().stats().failures;
        // An unknown kid forces a fetch, which fails: the set in use stays, and the token
        // is not condemned (503 + Retry-After).
        let unknown = server.token_with(&SigningKey::generate(SigningAlgorithm::ES256, "nope"));
        assert_eq!(
            server.call(&http, &unknown).await,
            Outcome::RetryLater,
            "{fault:?}"
        );
        assert!(
            server.keys().stats().failures > failures,
            "{fault:?}: the fetch did not fail"
        );
        // Past expiry: a background refresh is attempted, fails, and the stale set serves.
        clock.advance(Duration::from_secs(3600));
        let fresh: Vec<String> = (0..50).map(|_| server.token()).collect();
        let outcomes = load(&server, 8, 100, pool(fresh)).await;
        let refused = refusals(&outcomes);
        report(&format!(
            "{fault:?}: {} requests, {} refused, key-set failures {}",
            outcomes.len(),
            refused.len(),
            server.keys().stats().failures
        ));
        assert!(
            refused.is_empty(),
            "{fault:?}: {:?}",
            &refused[..refused.len().min(5)]
        );
        assert_eq!(server.call(&http, &seen).await, Outcome::Ok, "{fault:?}");
    }

    // The issuer recovers: a rotated key is picked up by the next unknown-kid refresh.
    server.issuer.set_fault(Fault::None);
    let rotated = server.issuer.rotate(SigningAlgorithm::ES256);
    let token = server.token_with(&rotated);
    assert_eq!(server.call(&http, &token).await, Outcome::Ok);
}

// ---------------------------------------------------------------------------------------
// Rotation under load.

const CLIENTS: usize = 32;
/// Requests with the new key per rotation (after some hundreds with the old one).
const NEW_KEY_REQUESTS: usize = 1_500;
/// An upper bound of any load run.
const MAX_REQUESTS: usize = 50_000;

/// Old-key calls before a rotation.
const OLD_KEY_REQUESTS: usize = 300;

/// The state of a [`switching`] token source.
#[derive(Default)]
struct Switch {
    /// Calls issued so far.
    issued: AtomicUsize,
    /// Whether the new key signs the tokens sent from now on.
    switched: AtomicBool,
    /// New-key calls issued so far.
    new_sent: AtomicUsize,
}

/// A token source: `old` (tagged `old_tag`) until `state.switched`, then `new` (`new_tag`)
/// for `NEW_KEY_REQUESTS` calls, then stop. With `switch_at`, the call numbered
/// `OLD_KEY_REQUESTS` runs the action (a publication) and switches, before any call with a
/// later number may proceed: the first new-key token is sent the moment its key appears.
fn switching(
    old: Arc<Vec<String>>,
    new: Arc<Vec<String>>,
    (old_tag, new_tag): (Tag, Tag),
    state: Arc<Switch>,
    switch_at: Option<Box<dyn Fn() + Send + Sync>>,
) -> Arc<dyn Fn(usize) -> Option<(String, Tag)> + Send + Sync> {
    let once = std::sync::Once::new();
    Arc::new(move |i| {
        state.issued.fetch_add(1, Ordering::SeqCst);
        if let Some(action) = &switch_at
            && i >= OLD_KEY_REQUESTS
        {
            once.call_once(|| {
                action();
                state.switched.store(true, Ordering::SeqCst);
            });
        }
        if !state.switched.load(Ordering::SeqCst) {
            return Some((old[i % old.len()].clone(), old_tag));
        }
        let k = state.new_sent.fetch_add(1, Ordering::SeqCst);
        (k < NEW_KEY_REQUESTS).then(|| (new[k % new.len()].clone(), new_tag))
    })
}

/// Pre-minted tokens of one key, so that the load measures the server, not the signer.
fn mint(server: &Server, key: &SigningKey, count: usize) -> Arc<Vec<String>> {
    Arc::new((0..count).map(|_| server.token_with(key)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_published_before_it_is_used_causes_no_refusal_under_load() {
    // Providers publish a key well before signing with it; resource servers pick it up on
    // their next scheduled refresh. Here the schedule is one second.
    let config = KeySetConfig {
        min_ttl: Duration::from_secs(1),
        ..quick_config()
    };
    let server = Arc::new(start(config, None).await);
    server.issuer.set_cache_control(Some("max-age=1"));
    let old_key = server.issuer.signing_key();
    let new_key = SigningKey::generate(SigningAlgorithm::ES256, "key-next");
    let old_tokens = mint(&server, &old_key, 300);
    let new_tokens = mint(&server, &new_key, 1_000);

    // An unknown kid first, so that the unknown-kid refresh is cooling down (30 s) for the
    // whole test: the new key must not depend on it.
    let http = http();
    let stranger = server.token_with(&SigningKey::generate(SigningAlgorithm::ES256, "x"));
    assert_eq!(
        server.call(&http, &stranger).await,
        Outcome::Refused(TokenError::UnknownKey.description().into())
    );

    let state = Arc::new(Switch::default());
    let token = switching(old_tokens, new_tokens, (0, 1), state.clone(), None);
    let driver = {
        let server = server.clone();
        tokio::spawn(async move {
            let started = eventually(Duration::from_secs(20), || {
                state.issued.load(Ordering::SeqCst) >= OLD_KEY_REQUESTS
            })
            .await;
            assert!(started, "the load never got going");
            server.issuer.publish(&new_key);
            let published = Instant::now();
            let picked_up = eventually(Duration::from_secs(10), || {
                server.keys().current().is_some_and(|set| set.len() == 2)
            })
            .await;
            assert!(picked_up, "the scheduled refresh never brought the new key");
            report(&format!(
                "pre-published key picked up {:?} after publication, under load",
                published.elapsed()
            ));
            server.issuer.set_default_key(&new_key);
            state.switched.store(true, Ordering::SeqCst);
        })
    };
    let calls = load(&server, CLIENTS, MAX_REQUESTS, token).await;
    driver.await.unwrap();
    let with_new_key = calls.iter().filter(|call| call.tag == 1).count();
    let refused = refusals(&calls);
    report(&format!(
        "pre-published rotation: {} requests ({with_new_key} with the new key) from {CLIENTS} \
         clients, {} refused",
        calls.len(),
        refused.len()
    ));
    assert_eq!(with_new_key, NEW_KEY_REQUESTS);
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(5)]);
}

/// Phases of the abrupt-rotation test: which key signs the tokens sent now.
const KEY_1: Tag = 1;
const KEY_2: Tag = 2;
const KEY_3: Tag = 3;
/// The stop signal of a phase.
const STOP: usize = usize::MAX;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abrupt_rotation_under_load_is_refused_at_most_for_the_cooldown() {
    // The production cooldown is 30 s; the mechanism is the same with 3 s.
    const COOLDOWN: Duration = Duration::from_secs(3);
    let config = KeySetConfig {
        unknown_kid_cooldown: COOLDOWN,
        ..quick_config()
    };
    let server = Arc::new(start(config, None).await);
    let key_1 = server.issuer.signing_key();
    let key_2 = SigningKey::generate(SigningAlgorithm::ES256, "key-2");
    let key_3 = SigningKey::generate(SigningAlgorithm::ES256, "key-3");
    let (tokens_1, tokens_2, tokens_3) = (
        mint(&server, &key_1, 300),
        mint(&server, &key_2, 1_000),
        mint(&server, &key_3, 1_000),
    );

    // Phase A. Nothing has refreshed for an unknown kid yet. key-2 is published and used at
    // the same instant: the first key-2 token triggers the single-flight refresh, which
    // starts after the publication, so it finds the key. Justified bound: zero refusals.
    let publish = {
        let (issuer, key_2) = (server.issuer.clone(), key_2.clone());
        Box::new(move || {
            issuer.publish(&key_2);
            issuer.set_default_key(&key_2);
        })
    };
    let token = switching(
        tokens_1,
        tokens_2.clone(),
        (KEY_1, KEY_2),
        Arc::new(Switch::default()),
        Some(publish),
    );
    let calls = load(&server, CLIENTS, MAX_REQUESTS, token).await;
    let key_2_calls = calls.iter().filter(|c| c.tag == KEY_2).count();
    let refused = refusals(&calls);
    report(&format!(
        "abrupt rotation, no cooldown armed: {} requests ({key_2_calls} with the new key), {} refused",
        calls.len(),
        refused.len()
    ));
    assert_eq!(key_2_calls, NEW_KEY_REQUESTS);
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(5)]);
    assert_eq!(server.keys().stats().unknown_kid_refreshes, 1);

    // Phase B. Let phase A's cooldown pass, then have a token with an unknown kid arrive
    // just before the next abrupt rotation: its refresh (finding nothing new) arms the
    // cooldown, and key-3 tokens are refused without a fetch until it ends: as invalid
    // tokens (401), since a refresh succeeded within the cooldown and lacked the key, which
    // the issuer published less than a cooldown before using it (providers must publish at
    // least one cooldown ahead). The first key-3 token after it refreshes and finds the key.
    // Justified bound: every refused call was sent before (end of the stranger's refresh) +
    // cooldown, and none after.
    tokio::time::sleep(COOLDOWN + Duration::from_millis(200)).await;
    let phase = Arc::new(AtomicUsize::new(KEY_2 as usize));
    let token: Arc<dyn Fn(usize) -> Option<(String, Tag)> + Send + Sync> = {
        let phase = phase.clone();
        Arc::new(move |i| match phase.load(Ordering::SeqCst) {
            STOP => None,
            tag if tag == KEY_2 as usize => Some((tokens_2[i % tokens_2.len()].clone(), KEY_2)),
            _ => Some((tokens_3[i % tokens_3.len()].clone(), KEY_3)),
        })
    };
    let window_end = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let driver = {
        let (server, phase, key_3) = (server.clone(), phase.clone(), key_3.clone());
        let window_end = window_end.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let stranger =
                server.token_with(&SigningKey::generate(SigningAlgorithm::ES256, "stranger"));
            assert_eq!(
                server.call(&http(), &stranger).await,
                Outcome::Refused(TokenError::UnknownKey.description().into())
            );
            let armed_until = Instant::now() + COOLDOWN;
            *window_end.lock() = Some(armed_until);
            server.issuer.publish(&key_3);
            phase.store(KEY_3 as usize, Ordering::SeqCst);
            // Keep the load going a second past the cooldown, then stop it.
            tokio::time::sleep_until((armed_until + Duration::from_secs(1)).into()).await;
            phase.store(STOP, Ordering::SeqCst);
        })
    };
    let calls = load(&server, CLIENTS, MAX_REQUESTS, token).await;
    driver.await.unwrap();
    let window_end = window_end.lock().expect("the stranger was refused");
    let key_3_calls: Vec<&Call> = calls.iter().filter(|c| c.tag == KEY_3).collect();
    let refused = refusals(&calls);
    let accepted_after = key_3_calls
        .iter()
        .filter(|c| c.sent >= window_end && c.outcome == Outcome::Ok)
        .count();
    report(&format!(
        "abrupt rotation, cooldown ({COOLDOWN:?}) armed just before: {} requests ({} with the \
         new key), {} answered 401 (none 503), all sent within the cooldown; \
         {accepted_after} new-key calls accepted after it",
        calls.len(),
        key_3_calls.len(),
        refused.len()
    ));
    for call in &refused {
        assert_eq!(call.tag, KEY_3, "a refusal of a known key: {call:?}");
        // The refresh within the cooldown succeeded: an invalid token, never a 503 (which
        // would have load balancers eject a healthy backend).
        assert_eq!(
            call.outcome,
            Outcome::Refused(TokenError::UnknownKey.description().into()),
            "{call:?}"
        );
        assert!(
            call.sent < window_end,
            "refused {:?} after the cooldown ended: {call:?}",
            call.sent - window_end
        );
    }
    assert!(accepted_after > 0, "no key-3 call after the cooldown");
    assert_eq!(server.keys().stats().unknown_kid_refreshes, 3);
}
