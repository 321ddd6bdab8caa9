//! End-to-end tests of the examples, run as the processes a user would start: the calendar
//! MCP server (with its embedded dev authorization server, or with `dev_server` as an external
//! issuer) driven over raw HTTP.
//!
//! The binaries come from `target/<profile>/examples/`: a plain `cargo test` builds them;
//! before `cargo test --test example_e2e`, run `cargo build --examples`.

mod support;

use serde_json::{Value, json};
use support::{EXIT_TIMEOUT, Reply, Running, example_command, free_port, http_client as http};

const PROTOCOL_VERSION: &str = "2025-06-18";

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Raw Streamable HTTP calls to one MCP endpoint.
struct Mcp {
    http: reqwest::Client,
    url: String,
}

/// An initialized MCP session (bound by the server to the principal of its token).
struct Session {
    id: String,
    next_id: u64,
}

impl Mcp {
    fn new(url: &str) -> Self {
        Self {
            http: http(),
            url: url.to_owned(),
        }
    }

    fn metadata_url(&self) -> String {
        let url = url::Url::parse(&self.url).unwrap();
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            url.origin().ascii_serialization(),
            url.path()
        )
    }

    async fn post(&self, token: Option<&str>, session: Option<&str>, message: &Value) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        Reply::read(request.send().await.expect("POST to the MCP endpoint")).await
    }

    fn initialize_message() -> Value {
        json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "example_e2e", "version": "1" },
            },
        })
    }

    /// `initialize` then `notifications/initialized`, with `token`.
    async fn initialize(&self, token: &str) -> Session {
        let reply = self
            .post(Some(token), None, &Self::initialize_message())
            .await;
        assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
        let result = &reply.json()["result"];
        assert_eq!(
            result["protocolVersion"], PROTOCOL_VERSION,
            "initialize: {result}"
        );
        assert!(
            result["capabilities"]["tools"].is_object(),
            "initialize: {result}"
        );
        let id = reply
            .header("mcp-session-id")
            .expect("an Mcp-Session-Id")
            .to_owned();
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let reply = self.post(Some(token), Some(&id), &initialized).await;
        assert_eq!(
            reply.status,
            202,
            "notifications/initialized: {}",
            reply.describe()
        );
        Session { id, next_id: 1 }
    }

    async fn call_tool(
        &self,
        session: &mut Session,
        token: &str,
        name: &str,
        arguments: Value,
    ) -> Reply {
        session.next_id += 1;
        let message = json!({
            "jsonrpc": "2.0", "id": session.next_id, "method": "tools/call",
            "params": { "name": name, "arguments": arguments },
        });
        self.post(Some(token), Some(&session.id), &message).await
    }

    /// Calls a tool that must succeed; returns the JSON its text content holds.
    async fn call_ok(
        &self,
        session: &mut Session,
        token: &str,
        name: &str,
        arguments: Value,
    ) -> Value {
        let reply = self.call_tool(session, token, name, arguments).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.describe());
        let message = reply.json();
        assert_eq!(message["id"], session.next_id, "{name}: {message}");
        let result = &message["result"];
        assert_eq!(result["isError"], false, "{name}: {message}");
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no text content: {message}"));
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{name}: text is not JSON ({e}): {text}"))
    }

    /// Calls a tool with a token that lacks `needed`: a 403 `insufficient_scope` step-up
    /// challenge naming it, before the tool runs.
    async fn call_refused(
        &self,
        session: &mut Session,
        token: &str,
        name: &str,
        arguments: Value,
        // The challenge's scope: for this 2025-x client, the token's scopes and the call's.
        challenged: &str,
    ) {
        let needed = challenged;
        let reply = self.call_tool(session, token, name, arguments).await;
        assert_eq!(
            reply.status,
            403,
            "{name} without {needed}: {}",
            reply.describe()
        );
        let challenge = reply.challenge();
        assert_eq!(
            param(&challenge, "error"),
            Some("insufficient_scope"),
            "{name}: {challenge:?}"
        );
        assert_eq!(
            param(&challenge, "scope"),
            Some(needed),
            "{name}: {challenge:?}"
        );
        assert_eq!(
            param(&challenge, "resource_metadata"),
            Some(self.metadata_url().as_str()),
            "{name}: {challenge:?}"
        );
    }

    async fn get_json(&self, url: &str) -> Value {
        let reply = Reply::read(self.http.get(url).send().await.expect("GET")).await;
        assert_eq!(reply.status, 200, "GET {url}: {}", reply.describe());
        reply.json()
    }
}

/// A `client_credentials` token from an authorization server found by RFC 8414 discovery.
async fn client_credentials_token(
    issuer: &str,
    client_id: &str,
    client_secret: &str,
    resource: &str,
    scope: Option<&str>,
) -> Value {
    let http = http();
    let metadata_url = format!("{issuer}/.well-known/oauth-authorization-server");
    let metadata: Value = Reply::read(
        http.get(&metadata_url)
            .send()
            .await
            .expect("GET AS metadata"),
    )
    .await
    .json();
    assert_eq!(metadata["issuer"], issuer, "{metadata}");
    let token_endpoint = metadata["token_endpoint"]
        .as_str()
        .expect("a token_endpoint");
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .append_pair("resource", resource);
    if let Some(scope) = scope {
        form.append_pair("scope", scope);
    }
    let reply = Reply::read(
        http.post(token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .expect("POST to the token endpoint"),
    )
    .await;
    assert_eq!(reply.status, 200, "token request: {}", reply.describe());
    reply.json()
}

/// Registers a confidential client with no scope at all (RFC 7591) and gets a token for it:
/// a valid token that carries no `scope`.
async fn token_without_scopes(issuer: &str, resource: &str) -> String {
    let http = http();
    let metadata: Value = Reply::read(
        http.get(format!("{issuer}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .expect("GET AS metadata"),
    )
    .await
    .json();
    let registration_endpoint = metadata["registration_endpoint"]
        .as_str()
        .expect("a registration_endpoint");
    let request = json!({
        "client_name": "example_e2e without scopes",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "",
    });
    let reply = Reply::read(
        http.post(registration_endpoint)
            .header("content-type", "application/json")
            .body(request.to_string())
            .send()
            .await
            .expect("POST to the registration endpoint"),
    )
    .await;
    assert_eq!(reply.status, 201, "registration: {}", reply.describe());
    let client = reply.json();
    let id = client["client_id"].as_str().expect("a client_id");
    let secret = client["client_secret"].as_str().expect("a client_secret");
    let token = client_credentials_token(issuer, id, secret, resource, None).await;
    assert!(token.get("scope").is_none_or(|s| s == ""), "{token}");
    token["access_token"]
        .as_str()
        .expect("an access_token")
        .to_owned()
}

#[tokio::test]
async fn the_example_runs_with_no_configuration() {
    const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
    const METADATA: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp";
    // The one test that uses the example's fixed default port.
    if let Err(error) = std::net::TcpListener::bind("127.0.0.1:8080") {
        panic!(
            "port 8080 on 127.0.0.1 is busy ({error}): this test runs the calendar example with \
             no configuration, which listens there; stop whatever uses the port and rerun"
        );
    }
    let calendar = Running::start_example("calendar", example_command("calendar"));
    assert_eq!(calendar.banner_value("MCP endpoint:"), RESOURCE);
    assert_eq!(calendar.banner_value("metadata:"), METADATA);
    let issuer = calendar.banner_value("issuer:");
    let read = calendar.banner_value("read-only token (calendar:read):");
    let write = calendar.banner_value("read-write token (calendar:write):");
    let admin = calendar.banner_value("admin token (calendar:admin):");
    let mcp = Mcp::new(RESOURCE);
    assert_eq!(mcp.metadata_url(), METADATA);

    // The RFC 9728 metadata document names the endpoint, the embedded issuer and the scopes.
    let metadata = mcp.get_json(METADATA).await;
    assert_eq!(metadata["resource"], RESOURCE, "{metadata}");
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer]),
        "{metadata}"
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!(["calendar:read", "calendar:write", "calendar:admin"]),
        "{metadata}"
    );

    // No token: 401 with a discovery challenge (no error code, RFC 6750 §3.1).
    let reply = mcp.post(None, None, &Mcp::initialize_message()).await;
    assert_eq!(reply.status, 401, "no token: {}", reply.describe());
    let challenge = reply.challenge();
    assert_eq!(
        param(&challenge, "resource_metadata"),
        Some(METADATA),
        "{challenge:?}"
    );
    assert_eq!(param(&challenge, "error"), None, "{challenge:?}");

    // The banner tokens share one principal (dev-user via dev-client), hence one session.
    let mut session = mcp.initialize(&read).await;

    let events = mcp
        .call_ok(&mut session, &read, "list_events", json!({}))
        .await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "the seeded event: {events}"
    );

    mcp.call_refused(
        &mut session,
        &read,
        "create_event",
        json!({ "title": "Lunch", "when": "12:00" }),
        "calendar:read calendar:write",
    )
    .await;
    let created = mcp
        .call_ok(
            &mut session,
            &write,
            "create_event",
            json!({ "title": "Lunch", "when": "12:00" }),
        )
        .await;
    assert_eq!(created["title"], "Lunch", "{created}");
    assert_eq!(created["created_by"], "dev-user", "{created}");
    let id = created["id"].as_u64().expect("an event id");
    let events = mcp
        .call_ok(&mut session, &read, "list_events", json!({}))
        .await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(2),
        "the refused call created nothing: {events}"
    );

    mcp.call_refused(
        &mut session,
        &read,
        "delete_event",
        json!({ "id": id }),
        "calendar:read calendar:write",
    )
    .await;
    let deleted = mcp
        .call_ok(&mut session, &write, "delete_event", json!({ "id": id }))
        .await;
    assert_eq!(deleted, json!({ "deleted": 1 }));

    mcp.call_refused(
        &mut session,
        &read,
        "delete_calendar",
        json!({}),
        "calendar:admin calendar:read",
    )
    .await;
    mcp.call_refused(
        &mut session,
        &write,
        "delete_calendar",
        json!({}),
        "calendar:admin calendar:write",
    )
    .await;
    let events = mcp
        .call_ok(&mut session, &read, "list_events", json!({}))
        .await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "refused calls deleted nothing: {events}"
    );
    let deleted = mcp
        .call_ok(&mut session, &admin, "delete_calendar", json!({}))
        .await;
    assert_eq!(deleted, json!({ "deleted": 1 }));
    // calendar:admin implies calendar:write implies calendar:read.
    let events = mcp
        .call_ok(&mut session, &admin, "list_events", json!({}))
        .await;
    assert_eq!(events, json!([]));

    let me = mcp.call_ok(&mut session, &read, "whoami", json!({})).await;
    assert_eq!(me["subject"], "dev-user", "{me}");
    assert_eq!(me["client_id"], "dev-client", "{me}");
    assert_eq!(me["scopes"], json!(["calendar:read"]), "{me}");

    // Every banner token has calendar:read (directly or implied); a token with no scope at
    // all, from a client registered without any, is refused list_events but may call whoami,
    // which needs no scope. It is another principal, so it needs its own session.
    let bare = token_without_scopes(&issuer, RESOURCE).await;
    let mut bare_session = mcp.initialize(&bare).await;
    mcp.call_refused(
        &mut bare_session,
        &bare,
        "list_events",
        json!({}),
        "calendar:read",
    )
    .await;
    let me = mcp
        .call_ok(&mut bare_session, &bare, "whoami", json!({}))
        .await;
    assert_eq!(me["scopes"], json!([]), "{me}");
    assert!(
        me["client_id"].as_str().is_some_and(|c| c != "dev-client"),
        "{me}"
    );

    // A session belongs to the principal that created it.
    let reply = mcp
        .call_tool(&mut session, &bare, "whoami", json!({}))
        .await;
    assert!(
        matches!(reply.status, 403 | 404),
        "another principal's session: {}",
        reply.describe()
    );

    drop(calendar);
}

#[tokio::test]
async fn the_example_uses_an_external_issuer_from_the_environment() {
    let resource = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut dev = example_command("dev_server");
    dev.env("MCP_OAUTH_DEV_RESOURCE", &resource);
    let dev = Running::start_example("dev_server", dev);
    let issuer = dev.banner_value("issuer:");
    let client_id = dev.banner_value("client_id:");
    let client_secret = dev.banner_value("client_secret:");
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    assert_eq!(dev.banner_value("resource:"), resource);

    let mut calendar = example_command("calendar");
    calendar
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("MCP_OAUTH_ISSUER", &issuer);
    // With an external issuer the calendar's banner ends with `tokens: from <issuer>` and
    // (so far) no `ready` line; it listens before it prints the banner either way.
    let calendar = Running::start_example_until("calendar", calendar, |line| {
        line == "ready" || line.trim_start().starts_with("tokens:")
    });
    assert_eq!(calendar.banner_value("MCP endpoint:"), resource);
    assert_eq!(calendar.banner_value("tokens:"), format!("from {issuer}"));
    assert_eq!(
        calendar.banner_value("issuer:"),
        issuer,
        "the banner names the external issuer"
    );
    assert!(
        !calendar.banner.iter().any(|l| l.contains("dev client")),
        "no embedded dev server with an external issuer:\n{}",
        calendar.banner.join("\n")
    );

    let mcp = Mcp::new(&resource);
    let metadata = mcp.get_json(&mcp.metadata_url()).await;
    assert_eq!(metadata["resource"], resource, "{metadata}");
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer]),
        "{metadata}"
    );

    let token = client_credentials_token(
        &issuer,
        &client_id,
        &client_secret,
        &resource,
        Some("calendar:write"),
    )
    .await;
    assert_eq!(token["token_type"], "Bearer", "{token}");
    assert_eq!(token["scope"], "calendar:write", "{token}");
    let token = token["access_token"].as_str().expect("an access_token");

    let mut session = mcp.initialize(token).await;
    let created = mcp
        .call_ok(
            &mut session,
            token,
            "create_event",
            json!({ "title": "Review", "when": "Friday" }),
        )
        .await;
    assert_eq!(
        created["created_by"], client_id,
        "a client_credentials token's subject is the client: {created}"
    );
    mcp.call_refused(
        &mut session,
        token,
        "delete_calendar",
        json!({}),
        "calendar:admin calendar:write",
    )
    .await;

    // A token of the same issuer for another resource is refused (RFC 8707 audience).
    let elsewhere = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut other_dev = example_command("dev_server");
    other_dev.env("MCP_OAUTH_DEV_RESOURCE", &elsewhere);
    let other_dev = Running::start_example("dev_server", other_dev);
    let foreign = client_credentials_token(
        &other_dev.banner_value("issuer:"),
        &other_dev.banner_value("client_id:"),
        &other_dev.banner_value("client_secret:"),
        &elsewhere,
        None,
    )
    .await;
    let reply = mcp
        .post(
            foreign["access_token"].as_str(),
            None,
            &Mcp::initialize_message(),
        )
        .await;
    assert_eq!(
        reply.status,
        401,
        "a token from another issuer: {}",
        reply.describe()
    );
    assert_eq!(
        param(&reply.challenge(), "error"),
        Some("invalid_token"),
        "{}",
        reply.describe()
    );

    drop(calendar);
    drop(dev);
}

#[test]
fn a_bad_environment_value_stops_startup_with_a_clear_message() {
    // Not a URL.
    let mut command = example_command("calendar");
    command.env("MCP_OAUTH_RESOURCE", "not a url");
    let (status, stdout, stderr) = Running::spawn("calendar", command).wait_for_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("MCP_OAUTH_RESOURCE"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(!stdout.lines().any(|l| l == "ready"), "stdout: {stdout}");

    // An issuer that is not a URL.
    let mut command = example_command("calendar");
    command
        .env(
            "MCP_OAUTH_RESOURCE",
            format!("http://127.0.0.1:{}/mcp", free_port()),
        )
        .env("MCP_OAUTH_ISSUER", "auth.example.com");
    let (status, stdout, stderr) = Running::spawn("calendar", command).wait_for_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("MCP_OAUTH_ISSUER"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");

    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = taken.local_addr().unwrap().port();
    let mut command = example_command("calendar");
    command.env("MCP_OAUTH_RESOURCE", format!("http://127.0.0.1:{port}/mcp"));
    let (status, stdout, stderr) = Running::spawn("calendar", command).wait_for_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("cannot listen"), "stderr: {stderr}");
    assert!(
        stderr.contains(&port.to_string()),
        "stderr names the address: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    drop(taken);
}

#[test]
fn the_dev_server_example_refuses_a_bad_environment_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = taken.local_addr().unwrap().port().to_string();
    let cases: [(&str, &str, &str); 5] = [
        ("MCP_OAUTH_DEV_PORT", "eighty", "MCP_OAUTH_DEV_PORT"),
        ("MCP_OAUTH_DEV_PORT", "65536", "MCP_OAUTH_DEV_PORT"),
        (
            "MCP_OAUTH_DEV_RESOURCE",
            "not a url",
            "MCP_OAUTH_DEV_RESOURCE",
        ),
        (
            "MCP_OAUTH_DEV_SCOPES",
            "calendar:read, bad\"scope",
            "MCP_OAUTH_DEV_SCOPES",
        ),
        ("MCP_OAUTH_DEV_PORT", &port, "cannot listen"),
    ];
    for (name, value, expected) in cases {
        let mut command = example_command("dev_server");
        command.env(name, value);
        let (status, stdout, stderr) =
            Running::spawn("dev_server", command).wait_for_exit(EXIT_TIMEOUT);
        assert_eq!(
            status.code(),
            Some(2),
            "{name}={value:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{name}={value:?}: stderr: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{name}={value:?}: stderr: {stderr}"
        );
        assert!(
            !stdout.lines().any(|l| l == "ready"),
            "{name}={value:?}: stdout: {stdout}"
        );
    }
    drop(taken);
}

#[tokio::test]
async fn the_examples_failed_auth_budget_answers_429_after_the_budget_from_one_address() {
    // The budget is on in the example and applies per client address (connect info): a
    // small budget, then forged tokens from this one address until it is spent.
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut command = example_command("calendar");
    command
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "3");
    let calendar = Running::start_example("calendar", command);
    let http = http();
    let forged = |n: usize| {
        format!(
            "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im5vLXN1Y2gta2V5In0.eyJzdWIiOiJ4In0.c2ln{n}"
        )
    };
    let mut statuses = Vec::new();
    for n in 0..80 {
        let reply = Reply::read(
            http.post(&resource)
                .bearer_auth(forged(n))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Mcp::initialize_message().to_string())
                .send()
                .await
                .expect("the example answers"),
        )
        .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert!(
                reply.header("retry-after").is_some(),
                "{}",
                reply.describe()
            );
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.describe());
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "no 429 within 80 forged tokens: {statuses:?}"
    );
    // The burst is 60 (the example's), whatever the per-minute rate: 429 comes right after it.
    assert!(statuses.len() <= 62, "{statuses:?}");
    // While the budget is spent, the address gets 429 before any token is looked at, a
    // valid one included.
    let read = calendar.banner_value("read-only token (calendar:read):");
    let reply = Reply::read(
        http.post(&resource)
            .bearer_auth(&read)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Mcp::initialize_message().to_string())
            .send()
            .await
            .expect("the example answers"),
    )
    .await;
    assert_eq!(reply.status, 429, "{}", reply.describe());
    drop(calendar);
}

/// Every kind of operation can be tried against the example: its prompt and its resource
/// template have scopes of their own, and deleting someone else's event steps up from inside
/// the tool; here as a 2026-07-28 client sends them (no session, `Mcp-Method`/`Mcp-Name`).
#[tokio::test]
async fn the_examples_prompt_resource_template_and_handler_step_up_have_their_scopes() {
    let (calendar, resource) = support::start_calendar_with_dev_server();
    let read = calendar.banner_value("read-only token (calendar:read):");
    let write = calendar.banner_value("read-write token (calendar:write):");
    let admin = calendar.banner_value("admin token (calendar:admin):");
    let send = |token: &str, method: &str, name: &str, mut params: Value| {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
        });
        let body = json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params});
        let mut request = http()
            .post(&resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if !name.is_empty() {
            request = request.header("mcp-name", name);
        }
        async move { Reply::read(request.body(body.to_string()).send().await.unwrap()).await }
    };
    let scope = |reply: &Reply| param(&reply.challenge(), "scope").map(str::to_owned);

    // The prompt needs calendar:write; 2026-07-28 challenges name only what is needed.
    let prompt = json!({"name": "plan_week", "arguments": {"focus": "launch"}});
    let reply = send(&read, "prompts/get", "plan_week", prompt.clone()).await;
    assert_eq!(reply.status, 403, "{}", reply.describe());
    assert_eq!(scope(&reply).as_deref(), Some("calendar:write"));
    let reply = send(&write, "prompts/get", "plan_week", prompt).await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(
        reply.json()["result"]["messages"][0]["content"]["text"]
            .as_str()
            .is_some_and(|text| text.contains("launch"))
    );

    // The resource template `calendar://events/{id}` needs calendar:read.
    let reply = send(
        &read,
        "resources/read",
        "calendar://events/1",
        json!({"uri": "calendar://events/1"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(
        reply.json()["result"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("Stand-up"))
    );
    let templates = send(&read, "resources/templates/list", "", json!({})).await;
    let result = &templates.json()["result"];
    assert_eq!(
        result["resourceTemplates"][0]["uriTemplate"], "calendar://events/{id}",
        "{result}"
    );
    assert_eq!(result["cacheScope"], "private", "{result}");

    // The seeded event is not the dev user's: deleting it needs calendar:admin, which the
    // tool itself decides, and the client gets a real 403 challenge.
    let delete = json!({"name": "delete_event", "arguments": {"id": 1}});
    let reply = send(&write, "tools/call", "delete_event", delete.clone()).await;
    assert_eq!(reply.status, 403, "{}", reply.describe());
    assert_eq!(
        scope(&reply).as_deref(),
        Some("calendar:admin calendar:write")
    );
    let reply = send(&admin, "tools/call", "delete_event", delete).await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(
        reply.json()["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("\"deleted\":1"))
    );
    drop(calendar);
}
