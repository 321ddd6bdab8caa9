//! Three replicas of the calendar example sharing one Redis (`MCP_OAUTH_REDIS_URL`), run as
//! the processes a deployment behind a load balancer runs: one resource URL, three listening
//! ports, one issuer. What one replica learns, the others must know:
//!
//! - the per-principal request budget is one budget, not one per replica;
//! - the failed-authentication budget of a client address is shared (each replica's gate
//!   reads a local view that the shared store's replies keep current, so a replica that has
//!   not heard that the bucket is empty lets one more failure through);
//! - a DPoP proof accepted by one replica is a replay on every other;
//! - a session made on one replica works on every other, for its principal only;
//! - a token revoked at the authorization server is refused by every replica within a second.
//!
//! The issuer is a [`DevAuthorizationServer`] in this process whose revocation endpoint feeds
//! a [`Revocations`] list shared through Redis like the replicas' own. Redis is a real
//! `redis-server` ([`RedisServer`]). Everything is started once for all the tests of this
//! file (the replicas concurrently) and killed when the test binary exits; each test uses its
//! own principals and its own client address (`127.0.2.N`), so that neither budget of one
//! test is spent by another.
//!
//! The binary comes from `target/<profile>/examples/`: a plain `cargo test` builds it; before
//! `cargo test --test replicas`, run `cargo build --workspace --examples`.

#[path = "support/harness.rs"]
mod harness;
mod support;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use harness::{STATELESS_VERSION, kill_on_exit, on_background, tool_call};
use mcp_oauth::dev::DevAuthorizationServer;
use mcp_oauth::dpop::ProofError;
use mcp_oauth::redis::{RedisConfig, RedisState};
use mcp_oauth::revocation::Revocations;
use mcp_oauth::testing::{DpopKey, RedisServer};
use mcp_oauth::validation::TokenError;
use serde_json::{Value, json};
use support::{Reply, Running, example_command, free_port};

/// How many calendar processes share the Redis.
const REPLICAS: usize = 3;
/// `MCP_OAUTH_REQUESTS_PER_MINUTE`: per principal, with a burst of the same size.
const REQUESTS_PER_MINUTE: usize = 10;
/// `MCP_OAUTH_FAILED_AUTH_PER_MINUTE`: one unit a minute, so that no unit comes back while a
/// test runs.
const FAILED_AUTH_PER_MINUTE: usize = 1;
/// The burst of the failed-authentication budget, whatever its rate (`FAILED_AUTH_BURST` in
/// mcp-oauth/src/app.rs).
const FAILED_AUTH_BURST: usize = 60;
/// `MCP_OAUTH_REDIS_TIMEOUT_MS`: generous, so that a loaded machine does not make a replica
/// fall back to its local share of the budgets (which these tests would see as a failure).
const REDIS_TIMEOUT_MS: u64 = 2_000;
/// How soon after the revocation endpoint's answer every replica must refuse the token.
const REVOCATION_DEADLINE: Duration = Duration::from_secs(1);
/// The protocol version of session-based requests.
const SESSION_VERSION: &str = "2025-06-18";
const SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "calendar:admin"];

// ---------------------------------------------------------------------------------------
// The deployment: Redis, the issuer, three replicas.

struct Deployment {
    /// `http://127.0.0.1:<port of replica 0>/mcp`: every replica's resource URL.
    resource: String,
    /// The metadata URL every challenge names (the resource's).
    metadata_url: String,
    dev: DevAuthorizationServer,
    replicas: Vec<Replica>,
    /// Kept for the life of the test binary: the server, and this process's share of the
    /// revocation list (its subscription task lives as long as the state).
    _redis: RedisServer,
    _state: RedisState,
    _revocations: Revocations,
}

struct Replica {
    /// `http://127.0.0.1:<its own port>/mcp`: where the load balancer would send requests.
    url: String,
    process: Mutex<Running>,
}

static DEPLOYMENT: LazyLock<Deployment> = LazyLock::new(start_deployment);

fn deployment() -> &'static Deployment {
    &DEPLOYMENT
}

fn start_deployment() -> Deployment {
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let resource = format!("http://127.0.0.1:{}/mcp", ports[0]);
    let revocations = Revocations::new();
    let (redis, state, dev, redis_pid) = on_background({
        let resource = resource.clone();
        let revocations = revocations.clone();
        async move {
            let redis = RedisServer::start().await.expect("redis-server starts");
            let redis_pid = redis_pid(&redis).await;
            let config =
                RedisConfig::new(redis.url()).timeout(Duration::from_millis(REDIS_TIMEOUT_MS));
            let state = RedisState::connect(config).expect("a Redis URL");
            assert!(
                state.ready(Duration::from_secs(10)).await,
                "Redis answers the test process"
            );
            state.share_revocations(&revocations);
            let dev = DevAuthorizationServer::builder()
                .resource(&resource)
                .scopes(SCOPES)
                .revocations(revocations)
                .start()
                .await
                .expect("the dev authorization server starts");
            (redis, state, dev, redis_pid)
        }
    });
    kill_on_exit(redis_pid);

    // The replicas start concurrently (each takes seconds on a loaded machine).
    let starting: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let mut command = example_command("calendar");
            command
                .env("MCP_OAUTH_RESOURCE", &resource)
                .env("MCP_OAUTH_BIND", format!("127.0.0.1:{port}"))
                .env("MCP_OAUTH_ISSUER", dev.issuer())
                .env("MCP_OAUTH_ISSUER_JWKS_URI", dev.jwks_uri())
                .env("MCP_OAUTH_REDIS_URL", redis.url())
                .env("MCP_OAUTH_REDIS_TIMEOUT_MS", REDIS_TIMEOUT_MS.to_string())
                .env("MCP_OAUTH_REPLICAS", REPLICAS.to_string())
                .env(
                    "MCP_OAUTH_REQUESTS_PER_MINUTE",
                    REQUESTS_PER_MINUTE.to_string(),
                )
                .env(
                    "MCP_OAUTH_FAILED_AUTH_PER_MINUTE",
                    FAILED_AUTH_PER_MINUTE.to_string(),
                )
                .env("MCP_OAUTH_DPOP", "allowed")
                .env("RUST_LOG", "info")
                .env("RUST_BACKTRACE", "1");
            let url = format!("http://127.0.0.1:{port}/mcp");
            std::thread::spawn(move || {
                let process = Running::start_example(&format!("calendar replica {index}"), command);
                kill_on_exit(process.pid());
                Replica {
                    url,
                    process: Mutex::new(process),
                }
            })
        })
        .collect();
    let replicas: Vec<Replica> = starting
        .into_iter()
        .map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .collect();
    let metadata_url = replicas[0]
        .process
        .lock()
        .unwrap()
        .banner_value("metadata:");
    for replica in &replicas {
        assert_eq!(
            replica.process.lock().unwrap().banner_value("metadata:"),
            metadata_url,
            "every replica serves the one resource"
        );
    }
    Deployment {
        resource,
        metadata_url,
        dev,
        replicas,
        _redis: redis,
        _state: state,
        _revocations: revocations,
    }
}

/// The pid of the `redis-server` (from `INFO server`), to kill it when the test binary
/// exits: the deployment lives in a static, which is never dropped.
async fn redis_pid(redis: &RedisServer) -> u32 {
    let info = redis
        .command(&["INFO", "server"])
        .await
        .expect("INFO server");
    // The reply is a bulk string; its Debug form holds the text (this crate does not name
    // the redis crate's types).
    let text = format!("{info:?}");
    let start = text
        .find("process_id:")
        .unwrap_or_else(|| panic!("no process_id in INFO server: {text}"))
        + "process_id:".len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("process_id in INFO server ({e}): {text}"))
}

impl Deployment {
    /// A bearer token of the dev issuer for `subject` (client `dev-client`).
    fn token(&self, subject: &str, scopes: &[&str]) -> String {
        self.dev
            .mint_access_token(subject, &self.dev.dev_client().id, scopes)
    }

    /// The replicas' warnings that Redis did not answer (they then fall back to a local
    /// share of each budget, which these tests would see as a failure): for failure messages.
    fn outages(&self) -> Vec<String> {
        self.replicas
            .iter()
            .enumerate()
            .flat_map(|(index, replica)| {
                let stderr = replica.process.lock().unwrap().stderr();
                stderr
                    .lines()
                    .filter(|line| line.contains("shared store (Redis) is unavailable"))
                    .map(|line| format!("replica {index}: {line}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What every replica printed so far, for failure messages.
    fn output(&self) -> String {
        self.replicas
            .iter()
            .map(|replica| replica.process.lock().unwrap().output())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------------
// A client: its own loopback address, requests to any replica.

struct Client {
    http: reqwest::Client,
    t: &'static Deployment,
}

impl Client {
    /// A client on its own loopback address (`127.0.2.N`): the replicas charge its failed
    /// authentications to a bucket of its own.
    fn new() -> Self {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let address = std::net::Ipv4Addr::new(127, 0, 2, n);
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .local_address(std::net::IpAddr::V4(address))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            t: deployment(),
        }
    }

    /// POSTs `message` to replica `replica` with these headers (`Authorization` among them).
    async fn post(&self, replica: usize, headers: &[(&str, &str)], message: &Value) -> Reply {
        let mut request = self
            .http
            .post(&self.t.replicas[replica].url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!(
                "replica {replica} does not answer: {e}\n{}",
                self.t.output()
            )
        });
        Reply::read(response).await
    }

    /// A stateless (MCP 2026-07-28) `tools/call` of `list_events` on `replica`, with
    /// `authorization` (and a `DPoP` proof, if given).
    async fn list_events(&self, replica: usize, authorization: &str, proof: Option<&str>) -> Reply {
        let message = tool_call(1, "list_events", json!({}), STATELESS_VERSION);
        let mut headers = vec![
            ("authorization", authorization),
            ("mcp-protocol-version", STATELESS_VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_events"),
        ];
        if let Some(proof) = proof {
            headers.push(("dpop", proof));
        }
        self.post(replica, &headers, &message).await
    }

    /// A request with a session (`Mcp-Session-Id`) on `replica`.
    async fn in_session(
        &self,
        replica: usize,
        token: &str,
        session: &str,
        message: &Value,
    ) -> Reply {
        let authorization = bearer(token);
        let headers = [
            ("authorization", authorization.as_str()),
            ("mcp-session-id", session),
            ("mcp-protocol-version", SESSION_VERSION),
        ];
        self.post(replica, &headers, message).await
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a 200 whose tool result lists the calendar's events.
fn assert_listed(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.describe());
    let message = reply.json();
    assert_eq!(message["result"]["isError"], false, "{what}: {message}");
    assert!(
        message["result"]["content"][0]["text"].is_string(),
        "{what}: no tool result: {message}"
    );
}

/// Asserts a 429 with a `Retry-After` of whole seconds, at least one.
fn assert_too_many(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 429, "{what}: {}", reply.describe());
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: a 429 without Retry-After: {}", reply.describe()))
        .parse()
        .unwrap_or_else(|e| panic!("{what}: Retry-After is not seconds ({e})"));
    assert!(retry_after >= 1, "{what}: Retry-After {retry_after}");
    assert_eq!(reply.json()["error"], "too_many_requests", "{what}");
}

/// The value of parameter `name` of the first `WWW-Authenticate` challenge in `scheme`.
fn challenge_param(reply: &Reply, scheme: &str, name: &str) -> Option<String> {
    let header = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| {
            value
                .split_once(' ')
                .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme))
        })?;
    // The parser reads Bearer challenges; the parameters of a DPoP one are the same.
    let (_, params) = header.split_once(' ')?;
    mcp_oauth::challenge::parse(&format!("Bearer {params}"))?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// A token of the dev issuer whose signature is wrong: a byte in the middle of the signature
/// changed (never in the last characters, whose padding bits may not count).
fn forged(token: &str) -> String {
    let signature_start = token.rfind('.').expect("a JWT") + 1;
    let middle = signature_start + (token.len() - signature_start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// How many units of a budget of `per_minute` come back in `elapsed`.
fn refills(elapsed: Duration, per_minute: usize) -> usize {
    (elapsed.as_secs_f64() * per_minute as f64 / 60.0).floor() as usize
}

// ---------------------------------------------------------------------------------------
// The tests.

/// `MCP_OAUTH_REQUESTS_PER_MINUTE=N` is one budget for the deployment: 3N calls round-robin
/// to the three replicas with one principal's token get N answers (the first N), and 429
/// with `Retry-After` for the rest; another principal is not affected.
#[tokio::test]
async fn the_per_principal_budget_is_shared_by_the_replicas() {
    let client = Client::new();
    let t = client.t;
    let token = bearer(&t.token("budget-user", &["calendar:read"]));
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..REPLICAS * REQUESTS_PER_MINUTE {
        let replica = i % REPLICAS;
        let reply = client.list_events(replica, &token, None).await;
        let what = format!("call {i} on replica {replica}");
        match reply.status {
            200 => assert_listed(&reply, &what),
            _ => assert_too_many(&reply, &what),
        }
        statuses.push(reply.status);
    }
    let elapsed = started.elapsed();
    let answered = statuses.iter().filter(|s| **s == 200).count();
    // A unit comes back every 60/N seconds: none does unless the calls took that long.
    let extra = refills(elapsed, REQUESTS_PER_MINUTE);
    assert!(
        answered >= REQUESTS_PER_MINUTE && answered <= REQUESTS_PER_MINUTE + extra,
        "{answered} of {} calls answered in {elapsed:?} with a budget of {REQUESTS_PER_MINUTE} \
         a minute shared by {REPLICAS} replicas (at most {extra} unit(s) refilled): \
         {statuses:?}; Redis outages: {:?}",
        statuses.len(),
        t.outages()
    );
    assert!(
        statuses[..REQUESTS_PER_MINUTE].iter().all(|s| *s == 200),
        "the burst is served first: {statuses:?}"
    );
    // Another principal has a budget of its own, on every replica.
    let other = bearer(&t.token("budget-other-user", &["calendar:read"]));
    for replica in 0..REPLICAS {
        let reply = client.list_events(replica, &other, None).await;
        assert_listed(&reply, &format!("another principal on replica {replica}"));
    }
    harness::report(&format!(
        "per-principal budget: {answered} of {} answered in {elapsed:?}",
        statuses.len()
    ));
}

/// The failed-authentication budget of a client address is shared: forged tokens sent
/// round-robin get 401 for the shared burst, plus one per replica that had not heard the
/// bucket was empty (each replica's gate reads a local view that only the shared store's
/// replies to its own failures update; the replica whose failure took the last unit learns
/// at once), then 429 with `Retry-After` from every replica. Another address is not affected.
#[tokio::test]
async fn the_failed_authentication_budget_is_shared_by_the_replicas() {
    let client = Client::new();
    let t = client.t;
    // The exact bound for one client sending one request at a time: the burst, then one
    // failure on each of the other replicas (their gates open until a reply says empty).
    let bound = FAILED_AUTH_BURST + REPLICAS - 1;
    let after = 2 * REPLICAS;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..bound + after {
        let replica = i % REPLICAS;
        let token = forged(&t.token(&format!("forger-{i}"), &["calendar:read"]));
        let reply = client.list_events(replica, &bearer(&token), None).await;
        let what = format!("forged token {i} on replica {replica}");
        match reply.status {
            401 => assert_eq!(
                challenge_param(&reply, "Bearer", "error").as_deref(),
                Some("invalid_token"),
                "{what}: {}",
                reply.describe()
            ),
            _ => assert_too_many(&reply, &what),
        }
        statuses.push(reply.status);
    }
    let elapsed = started.elapsed();
    let refused = statuses.iter().take_while(|s| **s == 401).count();
    let extra = refills(elapsed, FAILED_AUTH_PER_MINUTE);
    if extra == 0 {
        assert_eq!(
            refused,
            bound,
            "401s before the first 429 (burst {FAILED_AUTH_BURST}, {REPLICAS} replicas): \
             {statuses:?}; Redis outages: {:?}",
            t.outages()
        );
        assert!(
            statuses[bound..].iter().all(|s| *s == 429),
            "every replica refuses the address once the shared bucket is empty: {statuses:?}"
        );
    } else {
        // A unit came back during the test (a very slow machine): one more 401 each time.
        let unauthorized = statuses.iter().filter(|s| **s == 401).count();
        assert!(
            refused >= FAILED_AUTH_BURST && unauthorized <= bound + extra * REPLICAS,
            "{unauthorized} 401s in {elapsed:?} ({extra} unit(s) refilled): {statuses:?}"
        );
    }
    // The gate refuses before any token work: a valid token from this address waits too.
    let valid = bearer(&t.token("locked-out-user", &["calendar:read"]));
    for replica in 0..REPLICAS {
        let reply = client.list_events(replica, &valid, None).await;
        assert_too_many(
            &reply,
            &format!("a valid token from the address, replica {replica}"),
        );
    }
    // Another address has a budget of its own.
    let other = Client::new();
    for replica in 0..REPLICAS {
        let reply = other.list_events(replica, &valid, None).await;
        assert_listed(&reply, &format!("another address on replica {replica}"));
    }
    harness::report(&format!(
        "failed-authentication budget: {refused} 401s before the first 429 in {elapsed:?}"
    ));
}

/// With `MCP_OAUTH_DPOP=allowed`, a DPoP proof accepted by one replica is refused as a
/// replay by the others (401 `invalid_dpop_proof`); a fresh proof for the same token is
/// accepted there. The proof names the resource URL (`htu`) whatever replica serves it.
#[tokio::test]
async fn a_dpop_proof_is_accepted_once_by_the_deployment() {
    let client = Client::new();
    let t = client.t;
    let key = DpopKey::es256();
    let dev_client = t.dev.dev_client();
    let response = client
        .http
        .post(t.dev.token_endpoint())
        .basic_auth(&dev_client.id, Some(&dev_client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", key.proof("POST", t.dev.token_endpoint(), None))
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("scope", "calendar:read"),
            ("resource", &t.resource),
        ]))
        .send()
        .await
        .expect("the token endpoint answers");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 200, "token: {}", reply.describe());
    let body = reply.json();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().expect("an access token");
    let authorization = format!("DPoP {token}");

    let proof = key.proof("POST", &t.resource, Some(token));
    let reply = client.list_events(0, &authorization, Some(&proof)).await;
    assert_listed(&reply, "the proof on replica 0");
    for replica in 1..REPLICAS {
        let reply = client
            .list_events(replica, &authorization, Some(&proof))
            .await;
        let what = format!("the proof replayed to replica {replica}");
        assert_eq!(reply.status, 401, "{what}: {}", reply.describe());
        assert_eq!(
            challenge_param(&reply, "DPoP", "error").as_deref(),
            Some("invalid_dpop_proof"),
            "{what}: {:?}",
            reply.headers
        );
        assert_eq!(
            challenge_param(&reply, "DPoP", "error_description").as_deref(),
            Some(ProofError::Replayed.description()),
            "{what}: {:?}",
            reply.headers
        );
        assert_eq!(
            challenge_param(&reply, "DPoP", "resource_metadata").as_deref(),
            Some(t.metadata_url.as_str()),
            "{what}: {:?}",
            reply.headers
        );
        // The token is fine: a fresh proof is accepted by the same replica.
        let fresh = key.proof("POST", &t.resource, Some(token));
        let reply = client
            .list_events(replica, &authorization, Some(&fresh))
            .await;
        assert_listed(&reply, &format!("a fresh proof on replica {replica}"));
    }
}

/// A session made on one replica (stateful rmcp, MCP 2025-06-18) works on another for the
/// principal it is bound to (rmcp restores it from the shared store), and is not found (404)
/// for any other principal, on any replica.
#[tokio::test]
async fn a_session_follows_its_principal_across_the_replicas() {
    let client = Client::new();
    let t = client.t;
    let alice = t.token("session-alice", &["calendar:read"]);
    let bob = t.token("session-bob", &["calendar:read"]);

    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": SESSION_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "replicas", "version": "1" },
        },
    });
    let reply = client
        .post(0, &[("authorization", &bearer(&alice))], &initialize)
        .await;
    assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
    let session = reply
        .header("mcp-session-id")
        .unwrap_or_else(|| panic!("no Mcp-Session-Id: {}", reply.describe()))
        .to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let reply = client.in_session(0, &alice, &session, &initialized).await;
    assert_eq!(
        reply.status,
        202,
        "notifications/initialized: {}",
        reply.describe()
    );

    let call = |id: u64| {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "list_events", "arguments": {} },
        })
    };
    let reply = client.in_session(1, &alice, &session, &call(1)).await;
    assert_listed(&reply, "the session's principal on replica 1");
    assert_eq!(reply.json()["id"], 1);

    for replica in [2, 0] {
        let reply = client.in_session(replica, &bob, &session, &call(2)).await;
        assert_eq!(
            reply.status,
            404,
            "another principal with the session on replica {replica}: {}",
            reply.describe()
        );
    }
    // The session is still the principal's, on every replica.
    let reply = client.in_session(2, &alice, &session, &call(3)).await;
    assert_listed(&reply, "the session's principal on replica 2");
    assert_eq!(reply.json()["id"], 3);
}

/// A token revoked at the authorization server (`POST /revoke`, authenticated as the client
/// it was issued to) is refused (401 `invalid_token`) by every replica within a second of
/// the endpoint's answer; another token is not affected.
#[tokio::test]
async fn a_revoked_token_is_refused_by_every_replica_within_a_second() {
    let client = Client::new();
    let t = client.t;
    let token = t.token("revoked-user", &["calendar:read"]);
    let authorization = bearer(&token);
    for replica in 0..REPLICAS {
        let reply = client.list_events(replica, &authorization, None).await;
        assert_listed(
            &reply,
            &format!("the token before revocation, replica {replica}"),
        );
    }

    let dev_client = t.dev.dev_client();
    let response = client
        .http
        .post(t.dev.revocation_endpoint())
        .basic_auth(&dev_client.id, Some(&dev_client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("token", &token),
            ("token_type_hint", "access_token"),
        ]))
        .send()
        .await
        .expect("the revocation endpoint answers");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 200, "revoke: {}", reply.describe());
    let revoked = Instant::now();
    let deadline = revoked + REVOCATION_DEADLINE;

    // Each replica is polled until it refuses the token; a request sent before the deadline
    // must be refused. (Until then a 200 or, once the principal's budget is spent, a 429.)
    let poll = |replica: usize| {
        let client = &client;
        let authorization = &authorization;
        async move {
            let mut answers = Vec::new();
            loop {
                let sent = Instant::now();
                assert!(
                    sent < deadline,
                    "replica {replica} still accepts the revoked token {:?} after the \
                     revocation: {answers:?}\n{}",
                    REVOCATION_DEADLINE,
                    t.output()
                );
                let reply = client.list_events(replica, authorization, None).await;
                if reply.status == 401 {
                    assert_eq!(
                        challenge_param(&reply, "Bearer", "error").as_deref(),
                        Some("invalid_token"),
                        "replica {replica}: {}",
                        reply.describe()
                    );
                    assert_eq!(
                        challenge_param(&reply, "Bearer", "error_description").as_deref(),
                        Some(TokenError::Revoked.description()),
                        "replica {replica}: {}",
                        reply.describe()
                    );
                    return sent - revoked;
                }
                assert!(
                    matches!(reply.status, 200 | 429),
                    "replica {replica}: {}",
                    reply.describe()
                );
                answers.push(reply.status);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let (a, b, c) = tokio::join!(poll(0), poll(1), poll(2));
    harness::report(&format!(
        "revocation: refused by the replicas after {a:?}, {b:?}, {c:?}"
    ));

    let other = bearer(&t.token("not-revoked-user", &["calendar:read"]));
    for replica in 0..REPLICAS {
        let reply = client.list_events(replica, &other, None).await;
        assert_listed(&reply, &format!("another token, replica {replica}"));
    }
}
