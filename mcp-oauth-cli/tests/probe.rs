//! `mcp-oauth probe` run as a process: against the calendar example (every check passes),
//! and against small servers built here, each correct but for one flaw, which the probe must
//! report as the failure it is.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const PROBE: &str = env!("CARGO_BIN_EXE_mcp-oauth");

/// Runs the probe with `args`, time-boxed.
async fn probe(args: &[&str]) -> Output {
    probe_with_env(args, &[]).await
}

/// Runs the probe with `args` and only the given credential variables (those of the
/// environment the tests run in are removed).
async fn probe_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(PROBE)
            .arg("probe")
            .args(&args)
            .env_remove("MCP_OAUTH_TOKEN")
            .env_remove("MCP_OAUTH_TOKEN_LOW")
            .env_remove("MCP_OAUTH_CLIENT_SECRET")
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .expect("run the probe")
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the probe finishes within 60 s")
        .expect("the probe's thread")
}

/// The `--json` report: stdout must be exactly one JSON document.
fn json_report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut documents = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let report = documents
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout: {stdout}"))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    assert!(
        documents.next().is_none(),
        "stdout holds more than one JSON document: {stdout}"
    );
    report
}

fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn failed_ids(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The calendar example.

/// The calendar example binary, built into this test's target directory by the very command
/// CI and the root package's tests use (`cargo build --workspace --examples`: a no-op when
/// they ran it, and the same feature set, so nothing is built twice); `cargo test -p
/// mcp-oauth-cli` alone does not build the root package's examples.
fn calendar_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--examples",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .expect("run cargo build --workspace --examples");
    assert!(
        status.success(),
        "cargo build --workspace --examples failed"
    );
    profile_dir
        .join("examples")
        .join(format!("calendar{}", std::env::consts::EXE_SUFFIX))
}

/// A running calendar example, killed when dropped.
struct Calendar {
    child: Child,
    url: String,
    read: String,
    write: String,
}

impl Drop for Calendar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn start_calendar(env: &[(&str, &str)]) -> Calendar {
    let binary = calendar_binary();
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MCP_OAUTH_") {
            command.env_remove(key);
        }
    }
    command
        .env("MCP_OAUTH_RESOURCE", &url)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("start the calendar example");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut calendar = Calendar {
        child,
        url,
        read: String::new(),
        write: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the calendar prints `ready` within 30 s");
        let value = |label: &str| {
            line.trim_start()
                .strip_prefix(label)
                .map(|v| v.trim().to_owned())
        };
        if let Some(token) = value("read-only token (calendar:read):") {
            calendar.read = token;
        } else if let Some(token) = value("read-write token (calendar:write):") {
            calendar.write = token;
        } else if line == "ready" {
            break;
        }
    }
    assert!(!calendar.read.is_empty() && !calendar.write.is_empty());
    calendar
}

/// No token appears in the probe's output, in full or by its signature.
fn assert_no_token(output: &Output, tokens: &[&str]) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!all.contains(signature), "the probe printed a token");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calendar_example_passes_every_check() {
    let calendar = start_calendar(&[]);
    let (url, read, write) = (
        calendar.url.as_str(),
        calendar.read.as_str(),
        calendar.write.as_str(),
    );

    let output = probe(&[
        url,
        "--token",
        write,
        "--token-low",
        read,
        "--call",
        "--json",
    ])
    .await;
    let report = json_report(&output);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_no_token(&output, &[read, write]);
    for id in [
        "metadata.path_inserted",
        "metadata.root",
        "metadata.resource",
        "as.pkce_s256",
        "challenge.resource_metadata",
        "challenge.no_error",
        "challenge.scope",
        "forged.alg_none",
        "forged.huge",
        "forged.no_echo",
        "rebinding.origin",
        "rebinding.host",
        "session.initialize",
        "session.tools_list",
        "session.mcp_name",
        "step_up.tool.create_event",
        "step_up.tool.delete_calendar",
        "step_up.prompt.plan_week",
    ] {
        assert_eq!(status_of(&report, id), "pass", "{id}: {report:#}");
    }
    // list_events needs calendar:read, which the low token holds: not called.
    assert_eq!(status_of(&report, "step_up.tool.list_events"), "skip");
    let tools = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "session.tools_list")
        .unwrap();
    assert!(
        tools["detail"]
            .as_str()
            .unwrap()
            .contains("create_event [calendar:write]"),
        "{tools}"
    );

    // The readable form, and without a token: the token checks are skipped, nothing fails.
    let output = probe(&[url]).await;
    let human = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{human}");
    assert!(human.contains("skip  `Mcp-Method`/`Mcp-Name`"), "{human}");
    assert!(human.contains(" 0 failed"), "{human}");
    assert!(!human.contains('\x1b'), "no colour when piped");
}

#[tokio::test(flavor = "multi_thread")]
async fn dpop_checks_run_when_the_metadata_advertises_dpop() {
    let calendar = start_calendar(&[("MCP_OAUTH_DPOP", "allowed")]);
    let output = probe(&[&calendar.url, "--token", &calendar.write, "--json"]).await;
    let report = json_report(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    for id in [
        "dpop.no_proof",
        "dpop.bad_signature",
        "dpop.wrong_htu",
        "dpop.unbound_token",
    ] {
        assert_eq!(status_of(&report, id), "pass", "{id}: {report:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_exits_with_2() {
    let port = free_port(); // released: nothing listens there
    let output = probe(&[&format!("http://127.0.0.1:{port}/mcp"), "--json"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

// ---------------------------------------------------------------------------------------------
// Servers with one flaw each.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// The metadata only at `/mcp/.well-known/oauth-protected-resource` (suffix, not inserted).
    MetadataAtWrongUrl,
    /// `error="invalid_token"` in the credential-less 401.
    ErrorInDiscovery,
    /// The metadata names another resource.
    WrongResource,
    /// A tool called without its scopes answers 200.
    NoStepUp,
    /// Any token is accepted (`alg: none` included).
    AcceptsAnything,
    /// The first two POSTs get 429 `Retry-After: 1`.
    RateLimitedFirst,
    /// The first three POSTs (reachability, the challenge's metadata URL, the 401 check)
    /// get 429 with a `Retry-After` of u64::MAX seconds.
    HugeRetryAfter,
    /// `initialize` with the good token fails, its body repeating the token (and a terminal
    /// escape).
    ReflectsToken,
    /// The challenges are one `WWW-Authenticate` value: `DPoP algs="ES256", Bearer …`.
    CombinedChallenge,
    /// The metadata is served only at `/meta/prm`, which the challenge names.
    CustomMetadataUrl,
    /// The challenge names the root well-known URL, which serves nothing.
    NamesAbsentRoot,
}

struct Fake {
    flaw: Flaw,
    base: String,
    posts: AtomicU32,
}

const GOOD: &str = "good-token";
const LOW: &str = "low-token";

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl Fake {
    fn metadata(&self) -> Response {
        let resource = if self.flaw == Flaw::WrongResource {
            format!("{}/other", self.base)
        } else {
            format!("{}/mcp", self.base)
        };
        let body = json!({
            "resource": resource,
            "authorization_servers": [self.base],
            "scopes_supported": ["read", "write"],
        });
        let mut response = json_response(StatusCode::OK, body);
        response
            .headers_mut()
            .insert("access-control-allow-origin", "*".parse().unwrap());
        response
    }

    fn challenge(&self, status: StatusCode, params: &str) -> Response {
        let metadata = if self.flaw == Flaw::CustomMetadataUrl {
            format!("{}/meta/prm", self.base)
        } else if self.flaw == Flaw::NamesAbsentRoot {
            format!("{}/.well-known/oauth-protected-resource", self.base)
        } else {
            format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
        };
        let mut value = format!("Bearer {params}resource_metadata=\"{metadata}\"");
        if self.flaw == Flaw::CombinedChallenge {
            value = format!("DPoP algs=\"ES256\", {value}");
        }
        let mut response = json_response(status, json!({"error": "refused"}));
        response
            .headers_mut()
            .insert("www-authenticate", value.parse().unwrap());
        response
    }

    fn handle(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let path = uri.path();
        let metadata_paths: &[&str] = if self.flaw == Flaw::MetadataAtWrongUrl {
            &["/mcp/.well-known/oauth-protected-resource"]
        } else if self.flaw == Flaw::CustomMetadataUrl {
            &["/meta/prm"]
        } else if self.flaw == Flaw::NamesAbsentRoot {
            &["/.well-known/oauth-protected-resource/mcp"]
        } else {
            &[
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource",
            ]
        };
        if metadata_paths.contains(&path) {
            return self.metadata();
        }
        if path == "/.well-known/oauth-authorization-server" {
            return json_response(
                StatusCode::OK,
                json!({
                    "issuer": self.base,
                    "jwks_uri": format!("{}/jwks", self.base),
                    "token_endpoint": format!("{}/token", self.base),
                    "authorization_endpoint": format!("{}/authorize", self.base),
                    "registration_endpoint": format!("{}/register", self.base),
                    "code_challenge_methods_supported": ["S256"],
                }),
            );
        }
        if path == "/token" && method == Method::POST {
            return token_endpoint(headers, body);
        }
        if path != "/mcp" || method != Method::POST {
            return StatusCode::NOT_FOUND.into_response();
        }
        if self.flaw == Flaw::RateLimitedFirst && self.posts.fetch_add(1, Ordering::SeqCst) < 2 {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
        }
        if self.flaw == Flaw::HugeRetryAfter && self.posts.fetch_add(1, Ordering::SeqCst) < 3 {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "18446744073709551615")],
            )
                .into_response();
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host_ok = header("host").is_some_and(|h| h.starts_with("127.0.0.1:"));
        let origin_ok = header("origin").is_none_or(|o| o == self.base);
        if !host_ok || !origin_ok {
            return StatusCode::FORBIDDEN.into_response();
        }
        let Some(authorization) = header("authorization") else {
            let params = if self.flaw == Flaw::ErrorInDiscovery {
                "error=\"invalid_token\", scope=\"read\", "
            } else {
                "scope=\"read\", "
            };
            return self.challenge(StatusCode::UNAUTHORIZED, params);
        };
        let token = authorization.strip_prefix("Bearer ").unwrap_or("");
        let token68 = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
        let held: &[&str] = match token {
            GOOD => &["read", "write"],
            LOW => &[],
            _ if self.flaw == Flaw::AcceptsAnything => &["read", "write"],
            _ if !token68 => {
                return self.challenge(StatusCode::BAD_REQUEST, "error=\"invalid_request\", ");
            }
            _ => return self.challenge(StatusCode::UNAUTHORIZED, "error=\"invalid_token\", "),
        };
        let Ok(message) = serde_json::from_slice::<Value>(body) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let id = message["id"].clone();
        let result = |result: Value| {
            json_response(
                StatusCode::OK,
                json!({"jsonrpc": "2.0", "id": id, "result": result}),
            )
        };
        let name = message["params"]["name"].as_str().unwrap_or("");
        if let Some(header_name) = header("mcp-name")
            && header_name != name
        {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32020, "message": "header mismatch"}}),
            );
        }
        let scoped = |scopes: &[&str]| json!({"rs.mcp-oauth/authorization": {"scopes": scopes}});
        match message["method"].as_str().unwrap_or("") {
            "initialize" if self.flaw == Flaw::ReflectsToken && token == GOOD => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no session for token {token}\u{1b}[2J"),
            )
                .into_response(),
            "initialize" => {
                let mut response = result(json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "fake", "version": "1"},
                }));
                response
                    .headers_mut()
                    .insert("mcp-session-id", "s-1".parse().unwrap());
                response
            }
            "notifications/initialized" => StatusCode::ACCEPTED.into_response(),
            "tools/list" => result(json!({"tools": [
                {"name": "read_notes", "inputSchema": {"type": "object"}, "_meta": scoped(&["read"])},
                {"name": "write_note", "inputSchema": {"type": "object"}, "_meta": scoped(&["write"])},
            ]})),
            "tools/call" => {
                let needed = match name {
                    "read_notes" => "read",
                    "write_note" => "write",
                    _ => {
                        return json_response(
                            StatusCode::OK,
                            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "no such tool"}}),
                        );
                    }
                };
                if !held.contains(&needed) && self.flaw != Flaw::NoStepUp {
                    return self.challenge(
                        StatusCode::FORBIDDEN,
                        &format!("error=\"insufficient_scope\", scope=\"{needed}\", "),
                    );
                }
                result(json!({"content": [{"type": "text", "text": "done"}]}))
            }
            _ => json_response(
                StatusCode::OK,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}),
            ),
        }
    }
}

const CLIENT_ID: &str = "probe client";
const CLIENT_SECRET: &str = "s3cret/with:colon";

/// The fakes' token endpoint: client credentials with `client_secret_basic`, id and secret
/// form-encoded (RFC 6749 §2.3.1), and `resource=` (RFC 8707).
fn token_endpoint(headers: &HeaderMap, body: &[u8]) -> Response {
    use base64::Engine as _;
    let encode = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(CLIENT_ID),
            encode(CLIENT_SECRET)
        ))
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let has = |k: &str| form.iter().any(|(name, _)| name == k);
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized
        || !has("resource")
        || !form.contains(&("grant_type".into(), "client_credentials".into()))
    {
        return json_response(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    json_response(
        StatusCode::OK,
        json!({"access_token": GOOD, "token_type": "Bearer", "expires_in": 300}),
    )
}

/// Serves a fake with `flaw` on 127.0.0.1; returns its MCP endpoint URL.
async fn serve(flaw: Flaw) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake {
        flaw,
        base: format!("http://{addr}"),
        posts: AtomicU32::new(0),
    });
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let fake = Arc::clone(&fake);
            async move { fake.handle(&method, &uri, &headers, &body) }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

async fn probe_fake(flaw: Flaw) -> (Output, Value) {
    let url = serve(flaw).await;
    let output = probe(&[
        &url,
        "--token",
        GOOD,
        "--token-low",
        LOW,
        "--call",
        "--json",
    ])
    .await;
    let report = json_report(&output);
    (output, report)
}

/// Probes a fake with `flaw`: exit status 1, and `id` among the failed checks.
async fn assert_fails(flaw: Flaw, ids: &[&str]) -> Value {
    let (output, report) = probe_fake(flaw).await;
    assert_eq!(output.status.code(), Some(1), "{flaw:?}: {report:#}");
    for id in ids {
        assert_eq!(status_of(&report, id), "fail", "{flaw:?}, {id}: {report:#}");
    }
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_fake_passes() {
    let (output, report) = probe_fake(Flaw::None).await;
    assert_eq!(failed_ids(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(status_of(&report, "step_up.tool.write_note"), "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_at_the_wrong_url_fails() {
    let report = assert_fails(
        Flaw::MetadataAtWrongUrl,
        &["metadata.path_inserted", "metadata.root"],
    )
    .await;
    assert_eq!(status_of(&report, "metadata.resource"), "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_in_the_discovery_challenge_fails() {
    let report = assert_fails(Flaw::ErrorInDiscovery, &["challenge.no_error"]).await;
    assert_eq!(failed_ids(&report), ["challenge.no_error"], "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_resource_fails() {
    let report = assert_fails(Flaw::WrongResource, &["metadata.resource"]).await;
    assert_eq!(failed_ids(&report), ["metadata.resource"], "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_step_up_fails() {
    let report = assert_fails(
        Flaw::NoStepUp,
        &["step_up.tool.read_notes", "step_up.tool.write_note"],
    )
    .await;
    let failed = failed_ids(&report);
    assert!(
        failed.iter().all(|id| id.starts_with("step_up.")),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_accepting_any_token_fails() {
    assert_fails(
        Flaw::AcceptsAnything,
        &[
            "forged.unsigned",
            "forged.alg_none",
            "forged.bad_signature",
            "forged.huge",
            "forged.non_token68",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_waited_out() {
    let started = Instant::now();
    let (output, report) = probe_fake(Flaw::RateLimitedFirst).await;
    assert_eq!(failed_ids(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(status_of(&report, "probe.rate_limited"), "pass");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_retry_after_neither_panics_nor_waits() {
    let started = Instant::now();
    let (output, report) = probe_fake(Flaw::HugeRetryAfter).await;
    assert_ne!(output.status.code(), Some(101), "panicked: {report:#}");
    assert_eq!(failed_ids(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(status_of(&report, "challenge.status"), "skip", "{report:#}");
    assert_eq!(status_of(&report, "probe.rate_limited"), "pass");
    let note = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "probe.rate_limited")
        .unwrap();
    assert!(
        note["detail"].as_str().unwrap().contains("3 not retried"),
        "{note}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not waited for"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_reflected_by_the_server_is_redacted() {
    let url = serve(Flaw::ReflectsToken).await;
    let output = probe(&[&url, "--token", GOOD]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no session for token [token "), "{stdout}");
    assert!(!stdout.contains(GOOD), "the token printed: {stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "a terminal escape printed: {stdout}"
    );
    let output = probe(&[&url, "--token", GOOD, "--junit"]).await;
    let junit = String::from_utf8_lossy(&output.stdout);
    assert!(!junit.contains(GOOD) && !junit.contains('\x1b'), "{junit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_combined_challenge_value_is_read() {
    let (output, report) = probe_fake(Flaw::CombinedChallenge).await;
    assert_eq!(failed_ids(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(output.status.code(), Some(0));
    for id in [
        "challenge.resource_metadata",
        "challenge.no_error",
        "challenge.scope",
        "forged.alg_none",
    ] {
        assert_eq!(status_of(&report, id), "pass", "{id}: {report:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_naming_a_custom_metadata_url_is_followed() {
    let (output, report) = probe_fake(Flaw::CustomMetadataUrl).await;
    // Not at the well-known URLs, but MCP lets the challenge name it: the document there is
    // read and judged, and the well-known URLs' absence is a warning.
    for id in ["metadata.path_inserted", "metadata.root"] {
        assert_eq!(status_of(&report, id), "warn", "{id}: {report:#}");
    }
    for id in [
        "challenge.resource_metadata",
        "metadata.resource",
        "metadata.authorization_servers",
        "as.pkce_s256",
    ] {
        assert_eq!(status_of(&report, id), "pass", "{id}: {report:#}");
    }
    assert_eq!(failed_ids(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(output.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_naming_a_url_that_serves_nothing_fails() {
    let report = assert_fails(Flaw::NamesAbsentRoot, &["challenge.resource_metadata"]).await;
    assert_eq!(status_of(&report, "metadata.path_inserted"), "pass");
    // The root is a fallback: with the document at the path-inserted URL, its absence is a
    // warning; the challenge naming it is the failure.
    assert_eq!(status_of(&report, "metadata.root"), "warn");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_get_a_token_from_the_advertised_server() {
    let url = serve(Flaw::None).await;
    let output = probe(&[
        &url,
        "--client-credentials",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--json",
    ])
    .await;
    let report = json_report(&output);
    assert_eq!(
        status_of(&report, "token.client_credentials"),
        "pass",
        "{report:#}"
    );
    assert_eq!(
        status_of(&report, "session.initialize"),
        "pass",
        "{report:#}"
    );
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let all = String::from_utf8_lossy(&output.stdout);
    assert!(!all.contains(CLIENT_SECRET) && !all.contains(GOOD), "{all}");
}

/// Tokens may come from the environment, which `ps` does not show.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_may_come_from_the_environment() {
    let url = serve(Flaw::None).await;
    let output = probe_with_env(
        &[&url, "--call", "--json"],
        &[("MCP_OAUTH_TOKEN", GOOD), ("MCP_OAUTH_TOKEN_LOW", LOW)],
    )
    .await;
    let report = json_report(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(
        status_of(&report, "session.initialize"),
        "pass",
        "{report:#}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(GOOD),
        "the token is never printed"
    );
}
