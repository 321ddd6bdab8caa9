//! End-to-end tests of the calendar example's configuration: every `MCP_OAUTH_*` variable it
//! reads, every way startup refuses a configuration, and its shutdown on SIGTERM and SIGINT.
//! The example runs as the process a user starts; issuers are [`TestIssuer`]s on 127.0.0.1
//! (provider presets whose issuers are elsewhere get their keys from a local JWKS through
//! `MCP_OAUTH_ISSUER_JWKS_URI`, so nothing leaves the machine).
//!
//! The binary comes from `target/<profile>/examples/`: a plain `cargo test` builds it; before
//! `cargo test --test example_settings`, run `cargo build --examples`.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mcp_oauth::testing::TestIssuer;
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{EXIT_TIMEOUT, Reply, Running, example_command, free_port, http_client};

const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long a stopped example may take to exit.
const SIGNAL_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an audit event may take to reach its sink.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The one secret these tests hand the example; no output may ever show it.
const SECRET: &str = "s3cr3t-value";
/// The burst of the example's failed-authentication budget, whatever its rate.
const FAILED_AUTH_BURST: usize = 60;

// ---------------------------------------------------------------------------------------
// Starting the example.

/// The calendar example with these variables (and no other `MCP_OAUTH_*`).
fn calendar(vars: &[(&str, &str)]) -> Command {
    let mut command = example_command("calendar");
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

/// Starts the calendar example and waits for `ready`.
fn start(vars: &[(&str, &str)]) -> Running {
    Running::start_example("calendar", calendar(vars))
}

/// `http://127.0.0.1:<free port>/mcp`.
fn loopback_resource() -> String {
    format!("http://127.0.0.1:{}/mcp", free_port())
}

/// A free port on ::1.
fn free_port_v6() -> u16 {
    TcpListener::bind("[::1]:0")
        .and_then(|l| l.local_addr())
        .expect("bind [::1]:0")
        .port()
}

/// Runs the example with a configuration it must refuse, and checks the refusal: exit code
/// 2, an `error: ` line on stderr naming every one of `names`, no panic, no `ready`, and
/// never the secret. Returns stderr.
fn refused(vars: &[(&str, &str)], names: &[&str]) -> String {
    let (status, stdout, stderr) =
        Running::spawn("calendar", calendar(vars)).wait_for_exit(EXIT_TIMEOUT);
    let context = format!("with {vars:?}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}");
    assert_eq!(status.code(), Some(2), "exit status {status}, {context}");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error: ` line on stderr, {context}"));
    for name in names {
        assert!(
            error.contains(name),
            "the error does not name {name}, {context}"
        );
    }
    assert!(!stderr.contains("panicked"), "a panic, {context}");
    assert!(!stdout.lines().any(|l| l == "ready"), "`ready`, {context}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret in the output, {context}"
    );
    stderr
}

// ---------------------------------------------------------------------------------------
// HTTP.

fn initialize_message() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "example_settings", "version": "1" },
        },
    })
}

/// A POST of `message` to `url` with `token` and extra `headers`.
async fn post(url: &str, token: Option<&str>, headers: &[(&str, &str)], message: &Value) -> Reply {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(message.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.expect("the example answers")).await
}

/// An `initialize` POST with `token`.
async fn initialize(url: &str, token: &str) -> Reply {
    post(url, Some(token), &[], &initialize_message()).await
}

/// Asserts that `token` is accepted: `initialize` answers 200 with a session.
async fn assert_accepted(url: &str, token: &str, what: &str) {
    let reply = initialize(url, token).await;
    assert_eq!(reply.status, 200, "{what}: {}", reply.describe());
    assert!(
        reply.header("mcp-session-id").is_some(),
        "{what}: no session: {}",
        reply.describe()
    );
    assert_eq!(
        reply.json()["result"]["protocolVersion"],
        PROTOCOL_VERSION,
        "{what}: {}",
        reply.describe()
    );
}

/// Asserts that `token` is refused as invalid: 401 `invalid_token`.
async fn assert_invalid(url: &str, token: &str, what: &str) {
    let reply = initialize(url, token).await;
    assert_eq!(reply.status, 401, "{what}: {}", reply.describe());
    let challenge = reply.challenge();
    assert!(
        challenge
            .iter()
            .any(|(n, v)| n == "error" && v == "invalid_token"),
        "{what}: {challenge:?}"
    );
}

/// The RFC 9728 metadata URL of `resource` at `origin` (the resource's own by default).
fn metadata_url(resource: &str, origin: Option<&str>) -> String {
    let url = url::Url::parse(resource).expect("a resource URL");
    let origin = origin
        .map(str::to_owned)
        .unwrap_or_else(|| url.origin().ascii_serialization());
    format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        url.path()
    )
}

async fn get_json(url: &str) -> Value {
    let reply = Reply::read(http_client().get(url).send().await.expect("GET")).await;
    assert_eq!(reply.status, 200, "GET {url}: {}", reply.describe());
    reply.json()
}

/// `initialize`, `notifications/initialized`, then `tools/list`: the tool names.
async fn list_tools(url: &str, token: &str) -> Vec<String> {
    let reply = initialize(url, token).await;
    assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
    let session = reply
        .header("mcp-session-id")
        .expect("an Mcp-Session-Id")
        .to_owned();
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", PROTOCOL_VERSION),
    ];
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let reply = post(url, Some(token), &headers, &initialized).await;
    assert_eq!(reply.status, 202, "initialized: {}", reply.describe());
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    let reply = post(url, Some(token), &headers, &list).await;
    assert_eq!(reply.status, 200, "tools/list: {}", reply.describe());
    let message = reply.json();
    let mut names: Vec<String> = message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {message}"))
        .iter()
        .map(|tool| tool["name"].as_str().expect("a tool name").to_owned())
        .collect();
    names.sort();
    names
}

/// Waits up to `timeout` for `probe` to return `Some`.
async fn eventually<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh path in the temporary directory (removed when dropped).
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "mcp-oauth-example-settings-{}-{nanos}-{name}",
            std::process::id()
        )))
    }

    fn as_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Startup errors.

#[test]
fn a_resource_that_is_not_a_url_stops_startup() {
    refused(
        &[("MCP_OAUTH_RESOURCE", "not a url")],
        &["MCP_OAUTH_RESOURCE"],
    );
}

#[test]
fn a_misspelt_variable_stops_startup_with_the_nearest_name() {
    let resource = loopback_resource();
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", &resource),
            ("MCP_OAUTH_ISUER", "http://127.0.0.1:9"),
        ],
        &["MCP_OAUTH_ISUER", "did you mean MCP_OAUTH_ISSUER?"],
    );
    // A misspelt secret: named, its value never echoed (`refused` checks).
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", &resource),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRT", SECRET),
        ],
        &[
            "MCP_OAUTH_INTROSPECTION_CLIENT_SECRT",
            "did you mean MCP_OAUTH_INTROSPECTION_CLIENT_SECRET?",
        ],
    );
    // Far from every setting: no suggestion.
    let stderr = refused(
        &[
            ("MCP_OAUTH_RESOURCE", &resource),
            ("MCP_OAUTH_COLOUR_SCHEME", "dark"),
        ],
        &["MCP_OAUTH_COLOUR_SCHEME"],
    );
    assert!(!stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn a_failed_auth_budget_that_is_not_a_number_stops_startup() {
    let resource = loopback_resource();
    for value in ["ten", "-1", "1.5"] {
        refused(
            &[
                ("MCP_OAUTH_RESOURCE", &resource),
                ("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", value),
            ],
            &["MCP_OAUTH_FAILED_AUTH_PER_MINUTE"],
        );
    }
}

#[test]
fn a_non_loopback_resource_without_an_issuer_stops_startup() {
    let bind = format!("127.0.0.1:{}", free_port());
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", "https://calendar.example.com/mcp"),
            ("MCP_OAUTH_BIND", &bind),
        ],
        &["no issuer is configured", "MCP_OAUTH_ISSUER"],
    );
}

#[test]
fn a_wildcard_bind_without_an_issuer_stops_startup_before_listening() {
    let port = free_port();
    let stderr = refused(
        &[
            (
                "MCP_OAUTH_RESOURCE",
                &format!("http://127.0.0.1:{port}/mcp"),
            ),
            ("MCP_OAUTH_BIND", &format!("0.0.0.0:{port}")),
        ],
        &["no issuer is configured", "MCP_OAUTH_ISSUER"],
    );
    assert!(
        !stderr.contains("cannot listen"),
        "decided before binding: {stderr}"
    );
    // The same for the IPv6 wildcard.
    refused(
        &[
            (
                "MCP_OAUTH_RESOURCE",
                &format!("http://127.0.0.1:{port}/mcp"),
            ),
            ("MCP_OAUTH_BIND", &format!("[::]:{port}")),
        ],
        &["no issuer is configured"],
    );
}

#[test]
fn a_missing_client_secret_file_stops_startup() {
    let missing = TempPath::new("no-such-secret");
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", &loopback_resource()),
            ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9"),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
            (
                "MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE",
                missing.as_str(),
            ),
        ],
        &["MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE"],
    );
}

#[test]
fn a_client_secret_given_twice_stops_startup() {
    let file = TempPath::new("secret");
    std::fs::write(&file.0, "file-s3cr3t-value").unwrap();
    let stderr = refused(
        &[
            ("MCP_OAUTH_RESOURCE", &loopback_resource()),
            ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9"),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET", SECRET),
            ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", file.as_str()),
        ],
        &["MCP_OAUTH_INTROSPECTION_CLIENT_SECRET"],
    );
    assert!(!stderr.contains("file-s3cr3t-value"), "{stderr}");
}

#[test]
fn a_secret_never_appears_in_a_startup_error() {
    let resource = loopback_resource();
    let secret = ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET", SECRET);
    let issuer = ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9");
    let cases: [(&[(&str, &str)], &str); 4] = [
        // An invalid companion: the endpoint.
        (
            &[
                issuer,
                ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
                ("MCP_OAUTH_INTROSPECTION_ENDPOINT", "not a url"),
                secret,
            ],
            "MCP_OAUTH_INTROSPECTION_ENDPOINT",
        ),
        // A secret without its client id.
        (&[issuer, secret], "MCP_OAUTH_INTROSPECTION_CLIENT_ID"),
        // An unrelated invalid setting.
        (
            &[
                issuer,
                ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
                ("MCP_OAUTH_REQUESTS_PER_MINUTE", "lots"),
                secret,
            ],
            "MCP_OAUTH_REQUESTS_PER_MINUTE",
        ),
        // Introspection without any issuer to introspect for.
        (
            &[
                ("MCP_OAUTH_RESOURCE", "https://calendar.example.com/mcp"),
                ("MCP_OAUTH_BIND", "127.0.0.1:1"),
                ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
                secret,
            ],
            "no issuer is configured",
        ),
    ];
    for (vars, named) in cases {
        let mut vars = vars.to_vec();
        if !vars.iter().any(|(n, _)| *n == "MCP_OAUTH_RESOURCE") {
            vars.push(("MCP_OAUTH_RESOURCE", &resource));
        }
        // `refused` checks that neither stdout nor stderr holds the secret.
        refused(&vars, &[named]);
    }
}

#[test]
fn a_provider_variable_without_a_provider_stops_startup() {
    let resource = loopback_resource();
    let cases = [
        ("MCP_OAUTH_AUTH0_DOMAIN", "acme.us.auth0.com"),
        (
            "MCP_OAUTH_ENTRA_TENANT",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ),
        ("MCP_OAUTH_ENTRA_VERSION", "2"),
        (
            "MCP_OAUTH_ENTRA_ALLOWED_TENANTS",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ),
        ("MCP_OAUTH_KEYCLOAK_URL", "http://127.0.0.1:9"),
        ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
        ("MCP_OAUTH_OKTA_DOMAIN", "acme.okta.com"),
        ("MCP_OAUTH_OKTA_AUTHORIZATION_SERVER", "default"),
        ("MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL", "http://127.0.0.1:9"),
    ];
    for (name, value) in cases {
        refused(&[("MCP_OAUTH_RESOURCE", &resource), (name, value)], &[name]);
    }
    // Another provider's variable is no less ignored.
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", &resource),
            ("MCP_OAUTH_PROVIDER", "keycloak"),
            ("MCP_OAUTH_KEYCLOAK_URL", "http://127.0.0.1:9"),
            ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
            ("MCP_OAUTH_OKTA_DOMAIN", "acme.okta.com"),
        ],
        &["MCP_OAUTH_OKTA_DOMAIN"],
    );
}

#[test]
fn an_https_resource_without_a_bind_address_stops_startup() {
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", "https://calendar.example.com/mcp"),
            ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9"),
        ],
        &["MCP_OAUTH_BIND"],
    );
}

#[test]
fn an_audit_log_that_cannot_be_opened_stops_startup() {
    let dir = TempPath::new("no-such-dir");
    let path = dir.0.join("audit.jsonl");
    refused(
        &[
            ("MCP_OAUTH_RESOURCE", &loopback_resource()),
            ("MCP_OAUTH_AUDIT_LOG", path.to_str().unwrap()),
        ],
        &["MCP_OAUTH_AUDIT_LOG"],
    );
}

#[test]
fn every_variable_refuses_an_invalid_value() {
    // Presets whose issuer is elsewhere get a local (dead) JWKS, so that a configuration
    // wrongly accepted never makes the example fetch keys off this machine.
    let jwks = ("MCP_OAUTH_ISSUER_JWKS_URI", "http://127.0.0.1:9/jwks");
    let issuer = ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9");
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("MCP_OAUTH_RESOURCE", "ftp://127.0.0.1/mcp")],
            "MCP_OAUTH_RESOURCE",
        ),
        (vec![("MCP_OAUTH_BIND", "not-an-address")], "MCP_OAUTH_BIND"),
        (
            vec![("MCP_OAUTH_BIND", "127.0.0.1:99999")],
            "MCP_OAUTH_BIND",
        ),
        (
            vec![("MCP_OAUTH_ISSUER", "auth.example.com")],
            "MCP_OAUTH_ISSUER",
        ),
        (
            vec![("MCP_OAUTH_ISSUER", "http://127.0.0.1:9,not a url")],
            "MCP_OAUTH_ISSUER",
        ),
        (vec![("MCP_OAUTH_PROVIDER", "github")], "MCP_OAUTH_PROVIDER"),
        (
            vec![("MCP_OAUTH_PROVIDER", "auth0"), jwks],
            "MCP_OAUTH_AUTH0_DOMAIN",
        ),
        (
            vec![("MCP_OAUTH_PROVIDER", "entra"), jwks],
            "MCP_OAUTH_ENTRA_TENANT",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "entra"),
                ("MCP_OAUTH_ENTRA_TENANT", tenant),
                ("MCP_OAUTH_ENTRA_VERSION", "3"),
                jwks,
            ],
            "MCP_OAUTH_ENTRA_VERSION",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "entra"),
                ("MCP_OAUTH_ENTRA_TENANT", "multi"),
                jwks,
            ],
            "MCP_OAUTH_ENTRA_ALLOWED_TENANTS",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "entra"),
                ("MCP_OAUTH_ENTRA_TENANT", "acme"),
                jwks,
            ],
            "MCP_OAUTH_ENTRA_TENANT",
        ),
        (
            // One tenant is already the only one.
            vec![
                ("MCP_OAUTH_PROVIDER", "entra"),
                ("MCP_OAUTH_ENTRA_TENANT", tenant),
                ("MCP_OAUTH_ENTRA_ALLOWED_TENANTS", tenant),
                jwks,
            ],
            "MCP_OAUTH_ENTRA_ALLOWED_TENANTS",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "entra"),
                ("MCP_OAUTH_ENTRA_TENANT", "multi"),
                ("MCP_OAUTH_ENTRA_ALLOWED_TENANTS", "acme"),
                jwks,
            ],
            "MCP_OAUTH_ENTRA_ALLOWED_TENANTS",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "keycloak"),
                ("MCP_OAUTH_KEYCLOAK_URL", "http://127.0.0.1:9"),
                ("MCP_OAUTH_KEYCLOAK_REALM", "acme/../master"),
            ],
            "MCP_OAUTH_KEYCLOAK_REALM",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "okta"),
                ("MCP_OAUTH_OKTA_DOMAIN", "acme.okta.com"),
                ("MCP_OAUTH_OKTA_AUTHORIZATION_SERVER", "default/../x"),
                jwks,
            ],
            "MCP_OAUTH_OKTA_AUTHORIZATION_SERVER",
        ),
        (
            // The provider names another issuer than the one given.
            vec![
                ("MCP_OAUTH_PROVIDER", "keycloak"),
                ("MCP_OAUTH_KEYCLOAK_URL", "http://127.0.0.1:9"),
                ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
                ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9/realms/other"),
            ],
            "MCP_OAUTH_ISSUER",
        ),
        (
            vec![("MCP_OAUTH_ISSUER", "http://127.0.0.1:9,http://127.0.0.1:9")],
            "MCP_OAUTH_ISSUER",
        ),
        (
            vec![("MCP_OAUTH_REQUESTS_PER_MINUTE", "0")],
            "MCP_OAUTH_REQUESTS_PER_MINUTE",
        ),
        (
            vec![("MCP_OAUTH_ISSUER_FILE", "/nonexistent/mcp-oauth/issuer")],
            "MCP_OAUTH_ISSUER_FILE",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "keycloak"),
                ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
            ],
            "MCP_OAUTH_KEYCLOAK_URL",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "keycloak"),
                ("MCP_OAUTH_KEYCLOAK_URL", "http://127.0.0.1:9"),
            ],
            "MCP_OAUTH_KEYCLOAK_REALM",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "keycloak"),
                ("MCP_OAUTH_KEYCLOAK_URL", "not a url"),
                ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
            ],
            "MCP_OAUTH_KEYCLOAK_URL",
        ),
        (
            vec![("MCP_OAUTH_PROVIDER", "okta"), jwks],
            "MCP_OAUTH_OKTA_DOMAIN",
        ),
        (
            vec![("MCP_OAUTH_PROVIDER", "scalekit")],
            "MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL",
        ),
        (
            vec![
                ("MCP_OAUTH_PROVIDER", "scalekit"),
                ("MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL", "not a url"),
            ],
            "MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL",
        ),
        (
            vec![issuer, ("MCP_OAUTH_ISSUER_JWKS_URI", "not a url")],
            "MCP_OAUTH_ISSUER_JWKS_URI",
        ),
        (
            // One JWKS for two issuers cannot be right.
            vec![
                ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9,http://127.0.0.1:10"),
                ("MCP_OAUTH_ISSUER_JWKS_URI", "http://127.0.0.1:9/jwks"),
            ],
            "MCP_OAUTH_ISSUER_JWKS_URI",
        ),
        (
            vec![("MCP_OAUTH_ALLOWED_ORIGINS", "not an origin")],
            "MCP_OAUTH_ALLOWED_ORIGINS",
        ),
        (
            vec![("MCP_OAUTH_ALLOWED_HOSTS", "bad host/name")],
            "MCP_OAUTH_ALLOWED_HOSTS",
        ),
        (
            vec![("MCP_OAUTH_TRUSTED_PROXIES", "not-an-address")],
            "MCP_OAUTH_TRUSTED_PROXIES",
        ),
        (
            vec![("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "ten")],
            "MCP_OAUTH_FAILED_AUTH_PER_MINUTE",
        ),
        (
            vec![("MCP_OAUTH_REQUESTS_PER_MINUTE", "many")],
            "MCP_OAUTH_REQUESTS_PER_MINUTE",
        ),
        (
            vec![("MCP_OAUTH_FILTER_TOOLS", "maybe")],
            "MCP_OAUTH_FILTER_TOOLS",
        ),
        (
            vec![
                issuer,
                ("MCP_OAUTH_INTROSPECTION_ENDPOINT", "not a url"),
                ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar"),
                ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET", SECRET),
            ],
            "MCP_OAUTH_INTROSPECTION_ENDPOINT",
        ),
        (
            // A client id without a secret.
            vec![issuer, ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar")],
            "MCP_OAUTH_INTROSPECTION_CLIENT_SECRET",
        ),
        (
            // An endpoint without credentials.
            vec![
                issuer,
                (
                    "MCP_OAUTH_INTROSPECTION_ENDPOINT",
                    "http://127.0.0.1:9/introspect",
                ),
            ],
            "MCP_OAUTH_INTROSPECTION_CLIENT_ID",
        ),
        (
            vec![
                issuer,
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "calendar-server"),
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_CLIENT_SECRET",
        ),
        (
            vec![
                issuer,
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "calendar-server"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", SECRET),
            ],
            "MCP_OAUTH_EXCHANGE_AUDIENCES",
        ),
        (
            // Audiences alone configure token exchange with the embedded dev server only.
            vec![
                issuer,
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_CLIENT_ID",
        ),
        (
            // Which issuer's token endpoint?
            vec![
                ("MCP_OAUTH_ISSUER", "http://127.0.0.1:9,http://127.0.0.1:10"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "calendar-server"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", SECRET),
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT",
        ),
        (
            // The secret and the users' tokens in the clear.
            vec![
                issuer,
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "calendar-server"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", SECRET),
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
                (
                    "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT",
                    "http://auth.example.com/token",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT",
        ),
        (
            vec![
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
                ("MCP_OAUTH_EXCHANGE_GRANT", "saml2-bearer"),
            ],
            "MCP_OAUTH_EXCHANGE_GRANT",
        ),
        (
            // The embedded dev server speaks RFC 8693, not Entra's on-behalf-of flow.
            vec![
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
                ("MCP_OAUTH_EXCHANGE_GRANT", "entra-obo"),
            ],
            "MCP_OAUTH_EXCHANGE_GRANT",
        ),
        (
            // The dev server's client for MCP clients is not this server's.
            vec![
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "dev-client"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", SECRET),
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_CLIENT_ID",
        ),
        (
            // The embedded dev server's token endpoint is the one.
            vec![
                ("MCP_OAUTH_EXCHANGE_CLIENT_ID", "calendar-server"),
                ("MCP_OAUTH_EXCHANGE_CLIENT_SECRET", SECRET),
                (
                    "MCP_OAUTH_EXCHANGE_AUDIENCES",
                    "https://holidays.example.com",
                ),
                (
                    "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT",
                    "http://127.0.0.1:9/token",
                ),
            ],
            "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT",
        ),
    ];
    let resource = loopback_resource();
    let mut failures = Vec::new();
    for (mut vars, named) in cases {
        if !vars.iter().any(|(n, _)| *n == "MCP_OAUTH_RESOURCE") {
            vars.push(("MCP_OAUTH_RESOURCE", &resource));
        }
        // Collect every failure: one wrong case must not hide the others.
        if let Err(panic) = std::panic::catch_unwind(|| refused(&vars, &[named])) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------
// Working settings.

#[test]
fn with_no_issuer_a_loopback_resource_gets_the_dev_server_and_its_banner() {
    let resource = loopback_resource();
    let calendar = start(&[("MCP_OAUTH_RESOURCE", &resource)]);
    assert_eq!(calendar.banner_value("MCP endpoint:"), resource);
    assert_eq!(
        calendar.banner_value("metadata:"),
        metadata_url(&resource, None)
    );
    let issuer = calendar.banner_value("issuer:");
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    // Token exchange for the holidays API, with a client the dev server registered.
    assert_eq!(
        calendar.banner_value("public_holidays:"),
        "calls http://127.0.0.1:8081 with a token exchanged for it"
    );
    assert_eq!(calendar.banner_value("exchange client:"), "calendar-server");
    assert!(
        calendar
            .banner_value("holidays API:")
            .contains("cargo run --example holidays_api")
    );
    for label in [
        "dev client id:",
        "dev client secret:",
        "read-only token (calendar:read):",
        "read-write token (calendar:write):",
        "admin token (calendar:admin):",
    ] {
        assert!(!calendar.banner_value(label).is_empty(), "{label}");
    }
    assert_eq!(calendar.banner.last().map(String::as_str), Some("ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_variable_may_be_given_as_a_file() {
    let resource = loopback_resource();
    let file = TempPath::new("resource");
    std::fs::write(&file.0, format!("{resource}\n")).unwrap();
    let calendar = start(&[("MCP_OAUTH_RESOURCE_FILE", file.as_str())]);
    assert_eq!(calendar.banner_value("MCP endpoint:"), resource);
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "the banner token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_issuers_are_all_trusted_advertised_and_named() {
    let resource = loopback_resource();
    let first = TestIssuer::builder().audience(&resource).start().await;
    let second = TestIssuer::builder().audience(&resource).start().await;
    let stranger = TestIssuer::builder().audience(&resource).start().await;
    let issuers = format!("{},{}", first.issuer(), second.issuer());
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", &issuers),
    ]);
    let named: Vec<String> = calendar
        .banner_value("issuer:")
        .split(',')
        .map(|issuer| issuer.trim().to_owned())
        .collect();
    assert_eq!(named, [first.issuer(), second.issuer()]);
    assert!(
        !calendar.banner.iter().any(|l| l.contains("dev client")),
        "no dev server with issuers:\n{}",
        calendar.banner.join("\n")
    );
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(metadata["resource"], resource.as_str(), "{metadata}");
    assert_eq!(
        metadata["authorization_servers"],
        json!([first.issuer(), second.issuer()]),
        "{metadata}"
    );
    let token = |issuer: &TestIssuer| {
        issuer
            .token()
            .subject("alice")
            .scope("calendar:read")
            .sign()
    };
    assert_accepted(&resource, &token(&first), "the first issuer's token").await;
    assert_accepted(&resource, &token(&second), "the second issuer's token").await;
    assert_invalid(
        &resource,
        &token(&stranger),
        "an unconfigured issuer's token",
    )
    .await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_provider_takes_the_issuer_with_the_strict_profile() {
    let resource = loopback_resource();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "generic"),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), issuer.issuer());
    assert_accepted(
        &resource,
        &issuer.token().scope("calendar:read").sign(),
        "an RFC 9068 token",
    )
    .await;
    // RFC 9068 strictly: `typ` must be `at+jwt`.
    let plain_jwt = issuer.token().typ("JWT").scope("calendar:read").sign();
    assert_invalid(&resource, &plain_jwt, "a `typ: JWT` token").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keycloak_preset_trusts_the_realm_with_keycloaks_conventions() {
    let resource = loopback_resource();
    let realm = TestIssuer::builder()
        .audience(&resource)
        .path("/realms/acme")
        .start()
        .await;
    let base = format!("http://127.0.0.1:{}", realm.addr().port());
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "keycloak"),
        ("MCP_OAUTH_KEYCLOAK_URL", &base),
        ("MCP_OAUTH_KEYCLOAK_REALM", "acme"),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), realm.issuer());
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([realm.issuer()]),
        "{metadata}"
    );
    assert_accepted(
        &resource,
        &realm.token().scope("calendar:read").sign(),
        "the realm's token",
    )
    .await;
    // Keycloak's own shape: `typ: JWT`, the client in `azp`.
    let keycloak_token = realm
        .token()
        .typ("JWT")
        .without_claim("client_id")
        .claim("azp", "calendar-app")
        .scope("calendar:read")
        .sign();
    assert_accepted(&resource, &keycloak_token, "a Keycloak-shaped token").await;
    // Another realm of the same server is not trusted.
    let other = realm
        .token()
        .issuer(format!("{base}/realms/other"))
        .scope("calendar:read")
        .sign();
    assert_invalid(&resource, &other, "another realm's token").await;
    drop(calendar);
}

/// A TestIssuer whose keys sign for a preset's (remote) issuer: its JWKS is handed to the
/// example with `MCP_OAUTH_ISSUER_JWKS_URI`.
async fn local_keys(resource: &str) -> TestIssuer {
    TestIssuer::builder()
        .audience(resource)
        .no_discovery()
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth0_preset_trusts_the_tenant_domain() {
    let resource = loopback_resource();
    let keys = local_keys(&resource).await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "auth0"),
        ("MCP_OAUTH_AUTH0_DOMAIN", "acme.us.auth0.com"),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    let issuer = "https://acme.us.auth0.com/";
    assert_eq!(calendar.banner_value("issuer:"), issuer);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer]),
        "{metadata}"
    );
    // Auth0's shape: `typ: JWT`, the client in `azp`, scopes in `permissions`.
    let token = keys
        .token()
        .issuer(issuer)
        .typ("JWT")
        .without_claim("client_id")
        .claim("azp", "calendar-app")
        .claim("permissions", json!(["calendar:read"]))
        .sign();
    assert_accepted(&resource, &token, "an Auth0 token").await;
    let other = keys.token().issuer("https://other.us.auth0.com/").sign();
    assert_invalid(&resource, &other, "another tenant's token").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_okta_preset_trusts_the_named_authorization_server() {
    let resource = loopback_resource();
    let keys = local_keys(&resource).await;
    let okta_token = |issuer: &str| {
        keys.token()
            .issuer(issuer)
            .typ("JWT")
            .without_claim("client_id")
            .claim("cid", "calendar-app")
            .claim("scp", json!(["calendar:read"]))
            .sign()
    };
    let default_server = "https://acme.okta.com/oauth2/default";
    let custom_server = "https://acme.okta.com/oauth2/aus9calendar";

    // Without MCP_OAUTH_OKTA_AUTHORIZATION_SERVER: the `default` server.
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "okta"),
        ("MCP_OAUTH_OKTA_DOMAIN", "acme.okta.com"),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), default_server);
    assert_accepted(
        &resource,
        &okta_token(default_server),
        "the default server's token",
    )
    .await;
    assert_invalid(
        &resource,
        &okta_token(custom_server),
        "a custom server's token",
    )
    .await;
    drop(calendar);

    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "okta"),
        ("MCP_OAUTH_OKTA_DOMAIN", "acme.okta.com"),
        ("MCP_OAUTH_OKTA_AUTHORIZATION_SERVER", "aus9calendar"),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), custom_server);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([custom_server]),
        "{metadata}"
    );
    // The tokens' audience is this resource, not the first one.
    let okta_token = |issuer: &str| {
        keys.token()
            .issuer(issuer)
            .audience(&resource)
            .typ("JWT")
            .without_claim("client_id")
            .claim("cid", "calendar-app")
            .claim("scp", json!(["calendar:read"]))
            .sign()
    };
    assert_accepted(
        &resource,
        &okta_token(custom_server),
        "the custom server's token",
    )
    .await;
    assert_invalid(
        &resource,
        &okta_token(default_server),
        "the default server's token",
    )
    .await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entra_preset_trusts_one_tenant_in_either_token_version() {
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let keys = local_keys("unused").await;
    let entra_token = |issuer: &str, client_claim: &str, audience: &str| {
        keys.token()
            .issuer(issuer)
            .audience(audience)
            .typ("JWT")
            .without_claim("client_id")
            .claim(client_claim, "calendar-app")
            .claim("tid", TENANT)
            .claim("scp", "calendar:read")
            .sign()
    };
    let v2 = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let v1 = format!("https://sts.windows.net/{TENANT}/");

    // Version 2 by default.
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "entra"),
        ("MCP_OAUTH_ENTRA_TENANT", TENANT),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), v2);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(metadata["authorization_servers"], json!([v2]), "{metadata}");
    let token = entra_token(&v2, "azp", &resource);
    assert_accepted(&resource, &token, "a v2 token").await;
    let token = entra_token(&v1, "appid", &resource);
    assert_invalid(&resource, &token, "a v1 token").await;
    drop(calendar);

    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "entra"),
        ("MCP_OAUTH_ENTRA_TENANT", TENANT),
        ("MCP_OAUTH_ENTRA_VERSION", "1"),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), v1);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(metadata["authorization_servers"], json!([v1]), "{metadata}");
    let token = entra_token(&v1, "appid", &resource);
    assert_accepted(&resource, &token, "a v1 token").await;
    let token = entra_token(&v2, "azp", &resource);
    assert_invalid(&resource, &token, "a v2 token").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multi_tenant_entra_preset_accepts_only_the_allowed_tenants() {
    const ALLOWED: [&str; 2] = [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    ];
    const OTHER: &str = "33333333-3333-4333-8333-333333333333";
    let resource = loopback_resource();
    let keys = local_keys(&resource).await;
    let tenants = ALLOWED.join(",");
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "entra"),
        ("MCP_OAUTH_ENTRA_TENANT", "multi"),
        ("MCP_OAUTH_ENTRA_ALLOWED_TENANTS", &tenants),
        ("MCP_OAUTH_ISSUER_JWKS_URI", keys.jwks_uri()),
    ]);
    // Clients discover the `organizations` issuer; nothing advertises a placeholder.
    let organizations = "https://login.microsoftonline.com/organizations/v2.0";
    assert_eq!(calendar.banner_value("issuer:"), organizations);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([organizations]),
        "{metadata}"
    );
    let token = |tenant: &str| {
        keys.token()
            .issuer(format!("https://login.microsoftonline.com/{tenant}/v2.0"))
            .typ("JWT")
            .without_claim("client_id")
            .claim("azp", "calendar-app")
            .claim("tid", tenant)
            .claim("scp", "calendar:read")
            .sign()
    };
    for tenant in ALLOWED {
        assert_accepted(&resource, &token(tenant), tenant).await;
    }
    assert_invalid(&resource, &token(OTHER), "a tenant not allowed").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scalekit_preset_trusts_the_environment() {
    let resource = loopback_resource();
    let environment = TestIssuer::builder().audience(&resource).start().await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_PROVIDER", "scalekit"),
        ("MCP_OAUTH_SCALEKIT_ENVIRONMENT_URL", environment.issuer()),
    ]);
    assert_eq!(calendar.banner_value("issuer:"), environment.issuer());
    // Scalekit's shape: `typ: JWT`, scopes in `permissions`.
    let token = environment
        .token()
        .typ("JWT")
        .claim("permissions", json!(["calendar:read"]))
        .sign();
    assert_accepted(&resource, &token, "a Scalekit token").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_stands_in_for_discovery() {
    let resource = loopback_resource();
    let issuer = local_keys(&resource).await;
    let token = issuer.token().scope("calendar:read").sign();

    // Without it, the keys of an issuer that serves no discovery cannot be found.
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
    ]);
    let reply = initialize(&resource, &token).await;
    assert_ne!(
        reply.status,
        200,
        "no keys, no access: {}",
        reply.describe()
    );
    assert!(matches!(reply.status, 401 | 503), "{}", reply.describe());
    drop(calendar);

    let resource = loopback_resource();
    let token = issuer
        .token()
        .audience(&resource)
        .scope("calendar:read")
        .sign();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
        ("MCP_OAUTH_ISSUER_JWKS_URI", issuer.jwks_uri()),
    ]);
    assert_accepted(&resource, &token, "with the JWKS URI").await;
    assert!(issuer.jwks_requests() > 0);
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_audience_replaces_the_resource_url() {
    const AUDIENCE: &str = "api://calendar";
    let resource = loopback_resource();
    let issuer = TestIssuer::builder().audience(AUDIENCE).start().await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
        ("MCP_OAUTH_AUDIENCE", AUDIENCE),
    ]);
    let metadata = get_json(&metadata_url(&resource, None)).await;
    assert_eq!(metadata["resource"], resource.as_str(), "{metadata}");
    assert_accepted(
        &resource,
        &issuer.token().scope("calendar:read").sign(),
        "a token for the configured audience",
    )
    .await;
    let for_resource = issuer
        .token()
        .audience(&resource)
        .scope("calendar:read")
        .sign();
    assert_invalid(&resource, &for_resource, "a token for the resource URL").await;
    drop(calendar);
}

/// An https resource served behind a TLS-terminating proxy: the example listens on a
/// loopback `MCP_OAUTH_BIND` and the issuer's tokens name the public URL.
struct BehindProxy {
    calendar: Running,
    issuer: TestIssuer,
    /// Where the example listens: `http://127.0.0.1:<port>`.
    origin: String,
    /// Its MCP endpoint there: `http://127.0.0.1:<port>/mcp`.
    local: String,
}

const PUBLIC_RESOURCE: &str = "https://calendar.example.com/mcp";

async fn behind_proxy(extra: &[(&str, &str)]) -> BehindProxy {
    let issuer = TestIssuer::builder()
        .audience(PUBLIC_RESOURCE)
        .start()
        .await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut vars = vec![
        ("MCP_OAUTH_RESOURCE", PUBLIC_RESOURCE),
        ("MCP_OAUTH_BIND", bind.as_str()),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
    ];
    vars.extend_from_slice(extra);
    let calendar = start(&vars);
    BehindProxy {
        calendar,
        issuer,
        origin: format!("http://127.0.0.1:{port}"),
        local: format!("http://127.0.0.1:{port}/mcp"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_resource_is_served_on_its_bind_address() {
    let served = behind_proxy(&[]).await;
    assert_eq!(
        served.calendar.banner_value("MCP endpoint:"),
        PUBLIC_RESOURCE
    );
    assert_eq!(
        served.calendar.banner_value("metadata:"),
        metadata_url(PUBLIC_RESOURCE, None)
    );
    let metadata = get_json(&metadata_url(PUBLIC_RESOURCE, Some(&served.origin))).await;
    assert_eq!(metadata["resource"], PUBLIC_RESOURCE, "{metadata}");
    let token = served.issuer.token().scope("calendar:read").sign();
    assert_accepted(&served.local, &token, "a token for the public URL").await;
    // The proxy forwards the public host name.
    let reply = post(
        &served.local,
        Some(&token),
        &[("host", "calendar.example.com")],
        &initialize_message(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_origins_are_added_to_the_resources_own() {
    let served = behind_proxy(&[(
        "MCP_OAUTH_ALLOWED_ORIGINS",
        "https://app.example.com,http://localhost:5173",
    )])
    .await;
    let token = served.issuer.token().scope("calendar:read").sign();
    let with_origin = async |origin: &str, token: Option<&str>| {
        post(
            &served.local,
            token,
            &[("origin", origin)],
            &initialize_message(),
        )
        .await
    };
    for origin in [
        "https://app.example.com",
        "http://localhost:5173",
        "https://calendar.example.com",
    ] {
        let reply = with_origin(origin, Some(&token)).await;
        assert_eq!(reply.status, 200, "{origin}: {}", reply.describe());
        let reply = with_origin(origin, None).await;
        assert_eq!(
            reply.status,
            401,
            "{origin} without a token: {}",
            reply.describe()
        );
    }
    for origin in ["https://evil.example.com", "http://localhost:5174"] {
        let reply = with_origin(origin, Some(&token)).await;
        assert_eq!(reply.status, 403, "{origin}: {}", reply.describe());
        let reply = with_origin(origin, None).await;
        assert_eq!(
            reply.status,
            403,
            "{origin} without a token: {}",
            reply.describe()
        );
    }
    drop(served);

    // Without the setting, the extra origin is refused like any other.
    let served = behind_proxy(&[]).await;
    let token = served.issuer.token().scope("calendar:read").sign();
    let reply = post(
        &served.local,
        Some(&token),
        &[("origin", "https://app.example.com")],
        &initialize_message(),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_are_added_to_the_loopback_names() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        (
            "MCP_OAUTH_ALLOWED_HOSTS",
            "calendar.internal,mcp.example.net",
        ),
    ]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    let with_host = async |host: &str| {
        post(
            &resource,
            Some(&token),
            &[("host", host)],
            &initialize_message(),
        )
        .await
    };
    for host in [
        format!("calendar.internal:{port}"),
        "calendar.internal".to_owned(),
        format!("mcp.example.net:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let reply = with_host(&host).await;
        assert_eq!(reply.status, 200, "Host: {host}: {}", reply.describe());
    }
    for host in [
        format!("evil.example.com:{port}"),
        "rebind.example".to_owned(),
    ] {
        let reply = with_host(&host).await;
        assert_eq!(reply.status, 403, "Host: {host}: {}", reply.describe());
    }
    drop(calendar);

    // Without the setting, only the loopback names.
    let resource = loopback_resource();
    let calendar = start(&[("MCP_OAUTH_RESOURCE", &resource)]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    let reply = post(
        &resource,
        Some(&token),
        &[("host", "calendar.internal")],
        &initialize_message(),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.describe());
}

/// Sends `count` requests with invalid tokens "from" `forwarded` (an `X-Forwarded-For`
/// value, or none); returns the statuses.
async fn failed_authentications(
    resource: &str,
    forwarded: Option<&str>,
    count: usize,
    tag: &str,
) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(count);
    for n in 0..count {
        let headers: Vec<(&str, &str)> = forwarded
            .map(|address| ("x-forwarded-for", address))
            .into_iter()
            .collect();
        let token = format!("not-a-valid-token-{tag}-{n}");
        let reply = post(resource, Some(&token), &headers, &initialize_message()).await;
        if reply.status == 429 {
            assert!(
                reply.header("retry-after").is_some(),
                "{}",
                reply.describe()
            );
        }
        statuses.push(reply.status);
    }
    statuses
}

/// The statuses a budget of [`FAILED_AUTH_BURST`] gives `count` failures: 401 until it is
/// spent, then 429.
fn spent_after_burst(count: usize) -> Vec<u16> {
    (0..count)
        .map(|n| if n < FAILED_AUTH_BURST { 401 } else { 429 })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_give_each_forwarded_client_its_own_failed_auth_budget() {
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_TRUSTED_PROXIES", "127.0.0.1"),
        ("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "1"),
    ]);
    let count = FAILED_AUTH_BURST + 1;
    let first = failed_authentications(&resource, Some("203.0.113.7"), count, "a").await;
    assert_eq!(first, spent_after_burst(count), "from 203.0.113.7");
    // Another forwarded client, and the proxy itself, still have their budgets.
    let second = failed_authentications(&resource, Some("198.51.100.9"), 1, "b").await;
    assert_eq!(second, [401], "from 198.51.100.9");
    let direct = failed_authentications(&resource, None, 1, "c").await;
    assert_eq!(direct, [401], "from the proxy itself");
    // Rightmost untrusted: a spoofed entry to the left does not buy a fresh budget.
    let spoofed = failed_authentications(&resource, Some("192.0.2.1, 203.0.113.7"), 1, "d").await;
    assert_eq!(spoofed, [429], "spoofed left of 203.0.113.7");
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "1"),
    ]);
    let count = FAILED_AUTH_BURST + 1;
    let first = failed_authentications(&resource, Some("203.0.113.7"), count, "a").await;
    assert_eq!(first, spent_after_burst(count), "from 203.0.113.7");
    // The header is the client's word: the peer's (spent) budget applies.
    let second = failed_authentications(&resource, Some("198.51.100.9"), 1, "b").await;
    assert_eq!(second, [429], "\"from\" 198.51.100.9");
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_auth_budget_of_zero_turns_the_limit_off() {
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_FAILED_AUTH_PER_MINUTE", "0"),
    ]);
    let count = FAILED_AUTH_BURST + 20;
    let statuses = failed_authentications(&resource, None, count, "z").await;
    assert_eq!(statuses, vec![401; count]);
    // And a valid token still works.
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "the banner token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_limit_each_principal() {
    let resource = loopback_resource();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
        ("MCP_OAUTH_REQUESTS_PER_MINUTE", "3"),
    ]);
    let alice = issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .sign();
    let bob = issuer.token().subject("bob").scope("calendar:read").sign();
    for n in 1..=3 {
        assert_accepted(&resource, &alice, &format!("alice's request {n}")).await;
    }
    let reply = initialize(&resource, &alice).await;
    assert_eq!(
        reply.status,
        429,
        "alice's 4th request: {}",
        reply.describe()
    );
    assert!(
        reply.header("retry-after").is_some(),
        "{}",
        reply.describe()
    );
    // A fresh token of the same principal shares the budget.
    let alice_again = issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .sign();
    let reply = initialize(&resource, &alice_again).await;
    assert_eq!(reply.status, 429, "alice's new token: {}", reply.describe());
    assert_accepted(&resource, &bob, "bob's first request").await;
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_tools_hides_the_tools_a_token_may_not_call() {
    let all = [
        "create_event",
        "delete_calendar",
        "delete_event",
        "list_events",
        "public_holidays",
        "whoami",
    ];

    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_FILTER_TOOLS", "1"),
    ]);
    let read = calendar.banner_value("read-only token (calendar:read):");
    let write = calendar.banner_value("read-write token (calendar:write):");
    let admin = calendar.banner_value("admin token (calendar:admin):");
    assert_eq!(
        list_tools(&resource, &read).await,
        ["list_events", "public_holidays", "whoami"]
    );
    assert_eq!(
        list_tools(&resource, &write).await,
        [
            "create_event",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    assert_eq!(list_tools(&resource, &admin).await, all);
    drop(calendar);

    // Without it (the default), every tool is listed.
    let resource = loopback_resource();
    let calendar = start(&[("MCP_OAUTH_RESOURCE", &resource)]);
    let read = calendar.banner_value("read-only token (calendar:read):");
    assert_eq!(list_tools(&resource, &read).await, all);
    drop(calendar);
}

/// The JSON objects among `text`'s lines.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(Value::is_object)
        .collect()
}

/// Whether `events` hold an `allowed` and a `refused` event.
fn has_both_outcomes(events: &[Value]) -> bool {
    ["allowed", "refused"]
        .iter()
        .all(|outcome| events.iter().any(|e| e["outcome"] == *outcome))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_goes_to_a_json_lines_file_without_tokens() {
    let log = TempPath::new("audit.jsonl");
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_AUDIT_LOG", log.as_str()),
    ]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    let forged = format!("{token}x");
    assert_accepted(&resource, &token, "the banner token").await;
    assert_invalid(&resource, &forged, "a forged token").await;
    let text = eventually(AUDIT_TIMEOUT, || {
        let text = std::fs::read_to_string(&log.0).ok()?;
        has_both_outcomes(&json_lines(&text)).then_some(text)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no allowed and refused events in {}: {:?}\n{}",
            log.as_str(),
            std::fs::read_to_string(&log.0),
            calendar.output()
        )
    });
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(event.get("outcome").is_some(), "{line}");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !text.contains(signature),
        "a token in the audit log:\n{text}"
    );
    // Not on stderr instead.
    assert!(
        !json_lines(&calendar.stderr())
            .iter()
            .any(|e| e.get("outcome").is_some()),
        "{}",
        calendar.stderr()
    );
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_goes_to_stderr_as_json_lines() {
    let resource = loopback_resource();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_AUDIT_LOG", "stderr"),
    ]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "the banner token").await;
    assert_invalid(&resource, &format!("{token}x"), "a forged token").await;
    let stderr = eventually(AUDIT_TIMEOUT, || {
        let stderr = calendar.stderr();
        has_both_outcomes(&json_lines(&stderr)).then_some(stderr)
    })
    .await
    .unwrap_or_else(|| panic!("no JSON audit events on stderr\n{}", calendar.output()));
    let signature = token.rsplit('.').next().unwrap();
    assert!(!stderr.contains(signature), "a token on stderr:\n{stderr}");
    drop(calendar);

    // By default, audit events are `tracing` events: no JSON lines.
    let resource = loopback_resource();
    let calendar = start(&[("MCP_OAUTH_RESOURCE", &resource)]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "the banner token").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !json_lines(&calendar.stderr())
            .iter()
            .any(|e| e.get("outcome").is_some()),
        "{}",
        calendar.stderr()
    );
}

/// A minimal RFC 7662 introspection endpoint on 127.0.0.1: it answers `active` for
/// `OPAQUE_TOKEN` when the caller authenticates with `client_id` and `secret`, and 401
/// otherwise. It records the credentials it was sent.
struct Introspector {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

const OPAQUE_TOKEN: &str = "opaque-access-token-0123456789";

impl Introspector {
    async fn start(issuer: &str, audience: &str, client_id: &str, secret: &str) -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let issuer = issuer.to_owned();
        let audience = audience.to_owned();
        let handler = move |headers: HeaderMap, body: String| {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            log.lock().push(authorization.clone());
            let token = url::form_urlencoded::parse(body.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let answer = if authorization != expected {
                (
                    StatusCode::UNAUTHORIZED,
                    json!({ "error": "invalid_client" }),
                )
            } else if token.as_deref() == Some(OPAQUE_TOKEN) {
                (
                    StatusCode::OK,
                    json!({
                        "active": true, "iss": issuer, "aud": audience,
                        "sub": "opaque-user", "client_id": "opaque-client",
                        "scope": "calendar:read", "iat": now, "exp": now + 300,
                        "jti": "opaque-1", "token_type": "Bearer",
                    }),
                )
            } else {
                (StatusCode::OK, json!({ "active": false }))
            };
            async move { (answer.0, axum::Json(answer.1)) }
        };
        let router = axum::Router::new().route("/introspect", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, seen, server }
    }
}

impl Drop for Introspector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the calendar with introspection (the secret given by `secret`, a variable and its
/// value) and checks that an opaque token is accepted through it.
async fn introspection_works(secret_var: &str, secret_value: &str) {
    let resource = loopback_resource();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let introspector = Introspector::start(issuer.issuer(), &resource, "calendar-rs", SECRET).await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
        ("MCP_OAUTH_INTROSPECTION_ENDPOINT", &introspector.url),
        ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar-rs"),
        (secret_var, secret_value),
    ]);
    assert_accepted(&resource, OPAQUE_TOKEN, "the opaque token").await;
    assert_invalid(&resource, "another-opaque-token", "an inactive token").await;
    // JWTs are still verified locally.
    assert_accepted(
        &resource,
        &issuer.token().scope("calendar:read").sign(),
        "a JWT",
    )
    .await;
    assert!(
        !introspector.seen.lock().is_empty(),
        "the introspection endpoint was called"
    );
    assert!(
        !calendar.output().contains(SECRET),
        "the secret in the output:\n{}",
        calendar.output()
    );
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_authenticates_with_the_client_secret() {
    introspection_works("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET", SECRET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_reads_the_client_secret_from_its_file() {
    let file = TempPath::new("client-secret");
    std::fs::write(&file.0, SECRET).unwrap();
    introspection_works("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE", file.as_str()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_with_a_wrong_secret_never_accepts_the_opaque_token() {
    // The control of the two tests above: the endpoint insists on the right secret.
    let resource = loopback_resource();
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let introspector = Introspector::start(issuer.issuer(), &resource, "calendar-rs", SECRET).await;
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_ISSUER", issuer.issuer()),
        ("MCP_OAUTH_INTROSPECTION_ENDPOINT", &introspector.url),
        ("MCP_OAUTH_INTROSPECTION_CLIENT_ID", "calendar-rs"),
        ("MCP_OAUTH_INTROSPECTION_CLIENT_SECRET", "wrong-secret"),
    ]);
    let reply = initialize(&resource, OPAQUE_TOKEN).await;
    assert_ne!(reply.status, 200, "{}", reply.describe());
    assert!(!introspector.seen.lock().is_empty());
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bind_address_may_differ_from_the_resource_port() {
    let resource = loopback_resource();
    let bind_port = free_port();
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_BIND", &format!("127.0.0.1:{bind_port}")),
    ]);
    assert_eq!(calendar.banner_value("MCP endpoint:"), resource);
    let local_origin = format!("http://127.0.0.1:{bind_port}");
    let metadata = get_json(&metadata_url(&resource, Some(&local_origin))).await;
    assert_eq!(metadata["resource"], resource.as_str(), "{metadata}");
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&format!("{local_origin}/mcp"), &token, "on the bind port").await;
    // Challenges point at the resource's metadata, not at the bind address.
    let reply = post(
        &format!("{local_origin}/mcp"),
        None,
        &[],
        &initialize_message(),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.describe());
    let challenge = reply.challenge();
    let expected = metadata_url(&resource, None);
    assert!(
        challenge
            .iter()
            .any(|(n, v)| n == "resource_metadata" && *v == expected),
        "{challenge:?}"
    );
    drop(calendar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_loopback_resource_gets_the_dev_server() {
    let port = free_port_v6();
    let resource = format!("http://[::1]:{port}/mcp");
    let calendar = start(&[
        ("MCP_OAUTH_RESOURCE", &resource),
        ("MCP_OAUTH_BIND", &format!("[::1]:{port}")),
    ]);
    assert_eq!(calendar.banner_value("MCP endpoint:"), resource);
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "over ::1").await;
    drop(calendar);
}

// ---------------------------------------------------------------------------------------
// Shutdown.

/// Sends `signal` (`TERM`, `INT`) to the example and checks that it stops by itself: exit
/// status 0 within [`SIGNAL_EXIT_TIMEOUT`], no panic, its port closed.
fn assert_stops_on(calendar: Running, resource: &str, signal: &str) {
    let pid = calendar.pid().to_string();
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
    let started = Instant::now();
    let (status, _stdout, stderr) = calendar.wait_for_exit(SIGNAL_EXIT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(0),
        "after SIG{signal} ({:?}): {status}\n--- stderr ---\n{stderr}",
        started.elapsed()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let address = url::Url::parse(resource)
        .unwrap()
        .socket_addrs(|| None)
        .unwrap()[0];
    assert!(
        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_err(),
        "still listening after SIG{signal}"
    );
}

/// Starts the example, checks that it serves, then stops it with `signal`.
async fn stops_on(signal: &str) {
    let resource = loopback_resource();
    let calendar = start(&[("MCP_OAUTH_RESOURCE", &resource)]);
    let token = calendar.banner_value("read-only token (calendar:read):");
    assert_accepted(&resource, &token, "before the signal").await;
    assert_stops_on(calendar, &resource, signal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_example_with_status_0() {
    stops_on("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_example_with_status_0() {
    stops_on("INT").await;
}

/// `ready` means a supervisor may stop the server from then on: a signal sent the moment
/// it is printed must still be a graceful stop. The signal comes from a shell started
/// beforehand (`kill` is its builtin), so that it follows `ready` within microseconds;
/// several rounds, as the window of a late signal handler would be short.
#[test]
fn a_signal_right_after_ready_still_stops_the_example_with_status_0() {
    use std::io::Write as _;
    for round in 0..10 {
        for signal in ["TERM", "INT"] {
            let resource = loopback_resource();
            let mut calendar =
                Running::spawn("calendar", calendar(&[("MCP_OAUTH_RESOURCE", &resource)]));
            let mut sender = Command::new("sh")
                .arg("-c")
                .arg(format!("read _ && kill -{signal} {}", calendar.pid()))
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("start sh");
            calendar.wait_for_line(|line| line == "ready", support::READY_TIMEOUT);
            let mut trigger = sender.stdin.take().expect("piped stdin");
            trigger.write_all(b"go\n").expect("trigger the signal");
            drop(trigger);
            let sent = support::wait_timeout(&mut sender, SIGNAL_EXIT_TIMEOUT);
            assert!(
                sent.is_some_and(|s| s.success()),
                "round {round}: kill -{signal}: {sent:?}"
            );
            let started = Instant::now();
            let (status, _stdout, stderr) = calendar.wait_for_exit(SIGNAL_EXIT_TIMEOUT);
            assert_eq!(
                status.code(),
                Some(0),
                "round {round}: SIG{signal} right after `ready` ({:?}): {status}\n--- stderr \
                 ---\n{stderr}",
                started.elapsed()
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}
