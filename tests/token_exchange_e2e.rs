//! Token exchange end to end (#17): the calendar example with its embedded dev authorization
//! server, whose `public_holidays` tool calls a downstream API served here on loopback. The API
//! records every `Authorization` it receives and validates the token with the dev server's
//! keys for its own audience. Shown: the tool answers with the API's data; the API received a
//! token exchanged for it (its `aud`, `act.sub` the server's client, the user's `sub`), never
//! the caller's; a second call reuses it (one exchange in the audit log, then a cache hit);
//! the API's 401s, an audience outside the allow-list and an API that is down are tool errors.
//! Also the demo API of the example (`examples/holidays_api.rs`) against the calendar.
//!
//! The binaries come from `target/<profile>/examples/`: a plain `cargo test` builds them;
//! before `cargo test --test token_exchange_e2e`, run `cargo build --examples`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth::validation::TokenFingerprint;
use mcp_oauth::{IssuerPolicy, Validator, VerifiedToken};
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{Reply, Running, example_command, free_port, http_client};

const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long an audit event may take to reach the collected stderr.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's own client at the dev server when none is configured: `<type>-server`.
const SERVER_CLIENT: &str = "calendar-server";

// ---------------------------------------------------------------------------------------
// The downstream API.

/// What the API received: the whole `Authorization` value, and its verdict on the token.
struct Received {
    authorization: Option<String>,
    verdict: Result<VerifiedToken, String>,
}

#[derive(Clone)]
struct ApiState {
    validator: Arc<Validator>,
    received: Arc<Mutex<Vec<Received>>>,
    /// Answer 401 to everything.
    refuse: Arc<AtomicBool>,
}

/// The downstream API on a loopback port: its URL (the audience) is known before the
/// calendar starts; it serves once [`Api::serve`] has the issuer.
struct Api {
    url: String,
    listener: Option<tokio::net::TcpListener>,
    received: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The data only this API serves.
fn api_data() -> Value {
    json!({ "source": "token_exchange_e2e", "holidays": [{ "date": "2026-07-14" }] })
}

impl Api {
    async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Self {
            url,
            listener: Some(listener),
            received: Arc::default(),
            refuse: Arc::default(),
            stop: None,
            task: None,
        }
    }

    /// Serves `/holidays`, accepting tokens of `issuer` for this API's audience only.
    fn serve(&mut self, issuer: &str) {
        let policy = IssuerPolicy::builder(issuer)
            .audience(&self.url)
            .build()
            .unwrap();
        let state = ApiState {
            validator: Arc::new(Validator::new(policy).unwrap()),
            received: self.received.clone(),
            refuse: self.refuse.clone(),
        };
        let router = axum::Router::new()
            .route("/holidays", axum::routing::get(holidays))
            .with_state(state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = self.listener.take().unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        }));
        self.stop = Some(stop);
    }

    /// Stops serving and closes the port: calls are refused from now on.
    async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }

    fn received(&self) -> parking_lot::MutexGuard<'_, Vec<Received>> {
        self.received.lock()
    }

    /// The tokens received so far, in order.
    fn tokens(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| {
                let authorization = r.authorization.as_deref().expect("an Authorization");
                authorization
                    .strip_prefix("Bearer ")
                    .unwrap_or_else(|| panic!("not a bearer token: {authorization:?}"))
                    .to_owned()
            })
            .collect()
    }
}

async fn holidays(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let verdict = state
        .validator
        .validate(token)
        .await
        .map_err(|e| e.to_string());
    let accepted = verdict.is_ok();
    state.received.lock().push(Received {
        authorization,
        verdict,
    });
    if state.refuse.load(Ordering::SeqCst) || !accepted {
        let challenge = [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)];
        return (StatusCode::UNAUTHORIZED, challenge).into_response();
    }
    axum::Json(api_data()).into_response()
}

// ---------------------------------------------------------------------------------------
// The calendar, and an MCP session with it.

/// The calendar example with its dev server, `public_holidays` pointed at `api`, its audit
/// events on stderr, and `vars`.
fn start_calendar(api: &str, vars: &[(&str, &str)]) -> (Running, String) {
    let resource = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut command = example_command("calendar");
    command
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("CALENDAR_HOLIDAYS_API", api)
        .env("MCP_OAUTH_AUDIT_LOG", "stderr")
        .env("RUST_LOG", "warn");
    command.envs(vars.iter().copied());
    (Running::start_example("calendar", command), resource)
}

/// An initialized MCP session (2025-06-18) with `token`.
struct Session {
    http: reqwest::Client,
    url: String,
    token: String,
    id: String,
    next_id: u64,
}

impl Session {
    async fn post(&self, message: &Value, session: bool) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string());
        if session {
            request = request
                .header("mcp-session-id", &self.id)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        Reply::read(request.send().await.expect("POST to the MCP endpoint")).await
    }

    async fn open(url: &str, token: &str) -> Self {
        let mut session = Self {
            http: http_client(),
            url: url.to_owned(),
            token: token.to_owned(),
            id: String::new(),
            next_id: 1,
        };
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "token_exchange_e2e", "version": "1" },
            },
        });
        let reply = session.post(&initialize, false).await;
        assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
        session.id = reply
            .header("mcp-session-id")
            .expect("an Mcp-Session-Id")
            .to_owned();
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let reply = session.post(&initialized, true).await;
        assert_eq!(reply.status, 202, "initialized: {}", reply.describe());
        session
    }

    /// Calls `tool`; returns the call's `result`.
    async fn call(&mut self, tool: &str) -> Value {
        self.next_id += 1;
        let message = json!({
            "jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": { "name": tool, "arguments": {} },
        });
        let reply = self.post(&message, true).await;
        assert_eq!(reply.status, 200, "{tool}: {}", reply.describe());
        let message = reply.json();
        assert_eq!(message["id"], self.next_id, "{tool}: {message}");
        message["result"].clone()
    }

    /// Calls `public_holidays`, which must succeed; returns the JSON of its text.
    async fn holidays(&mut self) -> Value {
        let result = self.call("public_holidays").await;
        assert_eq!(result["isError"], false, "{result}");
        let text = result["content"][0]["text"].as_str().expect("a text");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Calls `public_holidays`, which must fail as a tool error; returns its structured
    /// content (`error`, `audience`, `retryable`).
    async fn holidays_refused(&mut self) -> Value {
        let result = self.call("public_holidays").await;
        assert_eq!(result["isError"], true, "{result}");
        result["structuredContent"].clone()
    }
}

/// The token-exchange audit events on `calendar`'s stderr once there are `count`.
async fn exchange_events(calendar: &Running, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + AUDIT_TIMEOUT;
    loop {
        let events: Vec<Value> = calendar
            .stderr()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .filter(|event| {
                event["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("token_exchange"))
            })
            .collect();
        if events.len() >= count || Instant::now() > deadline {
            assert_eq!(events.len(), count, "{events:#?}\n{}", calendar.output());
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reasons(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect()
}

fn fingerprint(token: &str) -> String {
    TokenFingerprint::of(token).to_string()
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_calls_the_api_with_an_exchanged_token_never_the_callers_and_reuses_it() {
    let mut api = Api::bind().await;
    let (calendar, resource) = start_calendar(&api.url, &[]);
    let issuer = calendar.banner_value("issuer:");
    assert_eq!(calendar.banner_value("exchange client:"), SERVER_CLIENT);
    api.serve(&issuer);
    let token = calendar.banner_value("read-only token (calendar:read):");
    let mut session = Session::open(&resource, &token).await;

    // The tool answers with the API's data.
    assert_eq!(session.holidays().await, api_data());
    let tokens = api.tokens();
    assert_eq!(tokens.len(), 1, "one call to the API");
    let exchanged = tokens[0].clone();
    assert_ne!(exchanged, token, "the caller's token was passed through");
    assert_ne!(fingerprint(&exchanged), fingerprint(&token));
    {
        let received = api.received();
        let verified = received[0]
            .verdict
            .as_ref()
            .unwrap_or_else(|e| panic!("the API refused the exchanged token: {e}"));
        assert_eq!(verified.issuer(), issuer);
        assert_eq!(verified.audiences(), [api.url.clone()], "aud: the API");
        assert_eq!(verified.subject(), Some("dev-user"), "the user's sub");
        assert_eq!(verified.client_id(), Some(SERVER_CLIENT));
        assert_eq!(
            verified.claim("act"),
            Some(json!({ "sub": SERVER_CLIENT })),
            "act: the server"
        );
        assert!(verified.scopes().contains("calendar:read"));
    }
    // The caller's own token is not for the API: passed through, it would be refused.
    let own = Validator::new(
        IssuerPolicy::builder(&issuer)
            .audience(&api.url)
            .build()
            .unwrap(),
    )
    .unwrap()
    .validate(&token)
    .await;
    assert!(own.is_err(), "the API accepts the caller's token");

    // A second call reuses the exchanged token: one exchange, then a cache hit.
    assert_eq!(session.holidays().await, api_data());
    assert_eq!(api.tokens(), [exchanged.clone(), exchanged.clone()]);
    let events = exchange_events(&calendar, 2).await;
    assert_eq!(
        reasons(&events),
        ["token_exchanged", "token_exchange_cached"]
    );
    for event in &events {
        assert_eq!(event["outcome"], "allowed", "{event}");
        assert_eq!(event["subject"], "dev-user", "{event}");
        assert_eq!(event["fingerprint"], fingerprint(&token), "{event}");
        let downstream = &event["downstream"];
        assert_eq!(downstream["audience"], api.url, "{event}");
        assert_eq!(downstream["scopes"], json!(["calendar:read"]), "{event}");
        let act: Value = serde_json::from_str(downstream["act"].as_str().expect("act")).unwrap();
        assert_eq!(act, json!({ "sub": SERVER_CLIENT }), "{event}");
        assert_eq!(
            downstream["token_fingerprint"],
            fingerprint(&exchanged),
            "{event}"
        );
    }
    assert_eq!(events[0]["status"], 200, "the token endpoint's answer");
    assert_eq!(events[1]["status"], 0, "no call made");

    // The API refuses (401) the cached token, then the fresh one: a tool error.
    api.refuse.store(true, Ordering::SeqCst);
    let error = session.holidays_refused().await;
    assert_eq!(error["error"], "downstream_refused", "{error}");
    assert_eq!(error["audience"], api.url, "{error}");
    let tokens = api.tokens();
    assert_eq!(tokens.len(), 4, "the cached token, then a fresh one");
    assert_eq!(tokens[2], exchanged);
    assert_ne!(tokens[3], exchanged, "a fresh exchange after the 401");
    assert_ne!(tokens[3], token);
    let events = exchange_events(&calendar, 4).await;
    assert_eq!(
        reasons(&events),
        [
            "token_exchanged",
            "token_exchange_cached",
            "token_exchange_cached",
            "token_exchanged"
        ]
    );

    // The API down: a tool error saying so (retryable), and the server goes on.
    api.stop().await;
    let error = session.holidays_refused().await;
    assert_eq!(error["error"], "downstream_unavailable", "{error}");
    assert_eq!(error["retryable"], true, "{error}");
    let me = session.call("whoami").await;
    assert_eq!(me["isError"], false, "{me}");

    // No exchanged token in the calendar's output, and the caller's (which the banner
    // prints) not in its logs and audit events.
    let output = calendar.output();
    for exchanged in api.tokens() {
        let signature = exchanged.rsplit('.').next().unwrap();
        assert!(
            !output.contains(signature),
            "a token in the output:\n{output}"
        );
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!calendar.stderr().contains(signature), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_outside_the_allow_list_is_a_tool_error_and_nothing_is_sent() {
    let mut api = Api::bind().await;
    // The exchanger may ask for another API only: the configured one is not allowed.
    let (calendar, resource) = start_calendar(
        &api.url,
        &[("MCP_OAUTH_EXCHANGE_AUDIENCES", "https://rooms.example.com")],
    );
    api.serve(&calendar.banner_value("issuer:"));
    let token = calendar.banner_value("read-only token (calendar:read):");
    let mut session = Session::open(&resource, &token).await;
    let error = session.holidays_refused().await;
    assert_eq!(error["error"], "audience_not_allowed", "{error}");
    assert_eq!(error["audience"], api.url, "{error}");
    assert!(api.received().is_empty(), "a request reached the API");
    let events = exchange_events(&calendar, 1).await;
    assert_eq!(reasons(&events), ["token_exchange_failed"]);
    assert_eq!(events[0]["outcome"], "refused");
    assert_eq!(
        events[0]["downstream"]["error"], "audience_not_allowed",
        "{}",
        events[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_external_issuer_the_configured_client_exchanges_at_the_discovered_endpoint() {
    const CLIENT: &str = "holidays-caller";
    const SECRET: &str = "a-secret-from-a-file";
    let mut api = Api::bind().await;
    let resource = format!("http://127.0.0.1:{}/mcp", free_port());
    // An authorization server of its own, where this server's client is registered.
    let issuer = mcp_oauth::dev::DevAuthorizationServer::builder()
        .resource(&resource)
        .scopes(["calendar:read", "calendar:write", "calendar:admin"])
        .client(mcp_oauth::dev::DevClient {
            id: CLIENT.into(),
            secret: SECRET.into(),
            scopes: vec!["calendar:read".into()],
            redirect_uris: Vec::new(),
        })
        .resource_server(CLIENT, &resource)
        .exchange_audiences([api.url.clone()])
        .start()
        .await
        .unwrap();
    let secret_file = std::env::temp_dir().join(format!(
        "mcp-oauth-token-exchange-e2e-{}-secret",
        std::process::id()
    ));
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut command = example_command("calendar");
    command
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("MCP_OAUTH_ISSUER", issuer.issuer())
        .env("MCP_OAUTH_EXCHANGE_CLIENT_ID", CLIENT)
        .env("MCP_OAUTH_EXCHANGE_CLIENT_SECRET_FILE", &secret_file)
        .env("MCP_OAUTH_EXCHANGE_AUDIENCES", &api.url)
        .env("CALENDAR_HOLIDAYS_API", &api.url)
        .env("MCP_OAUTH_AUDIT_LOG", "stderr")
        .env("RUST_LOG", "warn");
    let calendar = Running::start_example("calendar", command);
    let _ = std::fs::remove_file(&secret_file);
    assert_eq!(calendar.banner_value("exchange client:"), CLIENT);
    api.serve(issuer.issuer());

    let token = issuer.mint_access_token("alice", "dev-client", &["calendar:read"]);
    let mut session = Session::open(&resource, &token).await;
    assert_eq!(session.holidays().await, api_data());
    let received = api.received();
    let verified = received[0].verdict.as_ref().expect("the API accepts it");
    assert_eq!(verified.subject(), Some("alice"));
    assert_eq!(verified.claim("act"), Some(json!({ "sub": CLIENT })));
    assert!(!calendar.output().contains(SECRET), "{}", calendar.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_holidays_api_accepts_the_exchanged_token_and_refuses_the_callers() {
    let api = format!("http://127.0.0.1:{}", free_port());
    let (calendar, resource) = start_calendar(&api, &[]);
    // Its issuer from the calendar's metadata (MCP_OAUTH_RESOURCE), as a user runs it.
    let mut demo = example_command("holidays_api");
    demo.env("MCP_OAUTH_RESOURCE", &resource)
        .env("CALENDAR_HOLIDAYS_API", &api);
    let mut demo = Running::start_example("holidays_api", demo);
    let token = calendar.banner_value("read-only token (calendar:read):");
    let mut session = Session::open(&resource, &token).await;
    let holidays = session.holidays().await;
    assert_eq!(holidays["country"], "FR", "{holidays}");
    let line = demo.wait_for_line(|line| line.ends_with(": 200"), Duration::from_secs(10));
    assert!(
        line.contains(r#"sub=dev-user act={"sub":"calendar-server"}"#),
        "{line}"
    );

    // The caller's token, passed through, is refused with a challenge.
    let reply = Reply::read(
        http_client()
            .get(format!("{api}/holidays"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.describe());
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let line = demo.wait_for_line(|line| line.ends_with(": 401"), Duration::from_secs(10));
    assert!(line.contains(&fingerprint(&token)), "{line}");
    assert!(!demo.output().contains(token.rsplit('.').next().unwrap()));
}
