//! The cross-stack run (issue 18, items 3 and 4): the calendar example against the servers a
//! TypeScript or a Python developer would write (`bench/cross-stack/`), all fed RS256 tokens
//! by one authorization server, all driven by one load generator (`oha`); then the example
//! again while a second client floods it with forged tokens from another address.
//!
//! ```sh
//! cargo build --release --example calendar
//! cargo run -p mcp-oauth-bench --release --bin crossstack -- [--seconds 10] [--rounds 3] [--connections 32]
//! ```
//!
//! BENCHMARKS.md ("Against the other MCP stacks") says how to install `oha`, the npm and the
//! Python dependencies. Everything listens on loopback. Nothing here is asserted: the tables
//! are printed (Markdown) and written to `target/…/mcp-oauth-bench/crossstack.json`.

#[path = "../../../examples/common/logging.rs"]
mod logging;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth_bench::Args;
use serde_json::{Value, json};

const USAGE: &str = "usage: crossstack [--seconds 10] [--rounds 3] [--connections 32] [--warmup 3]
                  [--stacks ours,ts,py] [--only table|pressure]
                  [--flood-connections 32] [--failed-auth-per-minute 60]
                  [--oha PATH] [--calendar PATH] [--node PATH] [--python PATH]
                  [--cross-stack DIR]   (default: ./bench/cross-stack; run from the workspace root)
       crossstack serve-unguarded PORT   (internal: the calendar without the layer)";

/// The stacks, in the order of the interleaved rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stack {
    Ours,
    Ts,
    Py,
}

impl Stack {
    fn key(self) -> &'static str {
        match self {
            Stack::Ours => "ours",
            Stack::Ts => "ts",
            Stack::Py => "py",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Stack::Ours => "mcp-oauth (calendar example, rmcp)",
            Stack::Ts => "TypeScript SDK + requireBearerAuth + jose",
            Stack::Py => "Python SDK (MCPServer, ex-FastMCP) + PyJWT",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve-unguarded") {
        let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            eprintln!("{USAGE}");
            std::process::exit(2)
        });
        serve_unguarded(port);
        return;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    run(&Args(args));
}

// ---------------------------------------------------------------------------------------------
// Our server without its auth: the calendar's tools behind rmcp as the example configures it,
// with its logging, and no layer. `#[mcp_tool]` still checks scopes inside the tools, so each request is handed
// an identity verified once at startup (as `loadgen e2e` does for its unguarded variant).

fn serve_unguarded(port: u16) {
    use mcp_oauth_bench::calendar::Calendar;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    // The example's logging, the very same setup.
    logging::init();
    // The example's runtime: `#[tokio::main]`, a worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        // Bound first: the issuer below takes a port of its own, never this one.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let issuer = mcp_oauth_bench::Issuer::start(mcp_oauth_bench::AUDIENCE).await;
        let validator = issuer.validator(false).await;
        let identity = validator
            .validate(&issuer.token(mcp_oauth_bench::Alg::RS256))
            .await
            .expect("a valid token");
        let calendar = Calendar::new();
        // As `OAuthServer::streamable_http_config` makes it: rmcp's defaults, the loopback
        // hosts, JSON responses.
        let mut config = StreamableHttpServerConfig::default();
        config.allowed_hosts = vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "::1".to_owned(),
        ];
        config.json_response = true;
        let service = StreamableHttpService::new(
            move || Ok(calendar.clone()),
            LocalSessionManager::default().into(),
            config,
        );
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: axum::extract::Request| {
                request.extensions_mut().insert(identity.clone());
                request
            })
            .service(service);
        let router = axum::Router::new().route_service("/mcp", service);
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        println!("ready");
        axum::serve(listener, router).await.expect("serve");
    });
}

// ---------------------------------------------------------------------------------------------
// The servers

/// What one server is sent: its stateless form of `tools/call list_events`.
struct RequestShape {
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
}

/// The calendar example serves the 2026-07-28 form without a session (per-request protocol
/// version and capabilities in `_meta`, SEP-2243 headers), as `loadgen memory` sends it.
fn ours_request() -> RequestShape {
    RequestShape {
        headers: vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_events"),
        ],
        body: r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_events","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    }
}

/// The TypeScript and Python SDKs' stateless mode: a plain `tools/call` with no session and the
/// protocol version header.
fn sdk_request() -> RequestShape {
    RequestShape {
        headers: vec![("mcp-protocol-version", "2025-06-18")],
        body: r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_events","arguments":{}}}"#,
    }
}

struct Server {
    stack: Stack,
    auth: bool,
    port: u16,
    child: Child,
    request: RequestShape,
    /// The server's stderr, emptied before each run (for ours with auth: its audit lines,
    /// counted per run).
    log: PathBuf,
}

impl Server {
    fn name(&self) -> String {
        format!(
            "{} {}",
            self.stack.key(),
            if self.auth { "auth on" } else { "auth off" }
        )
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Tools {
    oha: PathBuf,
    calendar: PathBuf,
    node: PathBuf,
    python: PathBuf,
    dir: PathBuf,
    me: PathBuf,
}

fn find_tools(args: &Args, stacks: &[Stack]) -> Tools {
    // `bench/cross-stack` of the work tree it is run from (the workspace root), else of the
    // tree it was built from.
    let dir = args
        .string("--cross-stack")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Some(PathBuf::from("bench/cross-stack"))
                .filter(|d| d.join("ts-server.mjs").is_file())
                .and_then(|d| d.canonicalize().ok())
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("cross-stack"))
        });
    let on_path = |name: &str| -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    };
    let oha = args
        .string("--oha")
        .map(PathBuf::from)
        .or_else(|| Some(dir.join("tools/bin/oha")).filter(|p| p.is_file()))
        .or_else(|| on_path("oha"));
    let calendar = args
        .string("--calendar")
        .map(PathBuf::from)
        .unwrap_or_else(|| mcp_oauth_bench::target_dir().join("release/examples/calendar"));
    let node = args
        .string("--node")
        .map(PathBuf::from)
        .or_else(|| on_path("node"));
    let python = args
        .string("--python")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(".venv/bin/python"));
    let mut missing = Vec::new();
    if oha.is_none() {
        missing.push(format!(
            "oha: cargo install oha --locked --root {}",
            dir.join("tools").display()
        ));
    }
    if !calendar.is_file() {
        missing.push(format!(
            "the calendar example at {}: cargo build --release --example calendar (or --calendar PATH)",
            calendar.display()
        ));
    }
    if stacks.contains(&Stack::Ts) {
        if node.is_none() {
            missing.push("node (20 or newer) on PATH, or --node PATH".to_owned());
        }
        if !dir.join("node_modules/@modelcontextprotocol/sdk").is_dir() {
            missing.push(format!(
                "the npm packages: npm ci --prefix {}",
                dir.display()
            ));
        }
    }
    if stacks.contains(&Stack::Py) && !python.is_file() {
        missing.push(format!(
            "the Python venv: python3 -m venv {0}/.venv && {0}/.venv/bin/pip install -r {0}/requirements.lock",
            dir.display()
        ));
    }
    if !missing.is_empty() {
        eprintln!("crossstack needs:");
        for m in &missing {
            eprintln!("  {m}");
        }
        std::process::exit(2);
    }
    Tools {
        oha: oha.expect("checked"),
        calendar,
        node: node.unwrap_or_default(),
        python,
        dir,
        me: std::env::current_exe().expect("own path"),
    }
}

/// Starts one server and waits until its port accepts connections.
fn start_server(
    tools: &Tools,
    issuer: &TestIssuer,
    stack: Stack,
    auth: bool,
    failed_auth_per_minute: u32,
    logs: &Path,
) -> Server {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let log = logs.join(format!(
        "{}-{}.log",
        stack.key(),
        if auth { "on" } else { "off" }
    ));
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let mut command = match (stack, auth) {
        (Stack::Ours, true) => {
            let mut c = Command::new(&tools.calendar);
            c.env("MCP_OAUTH_RESOURCE", &resource)
                .env("MCP_OAUTH_ISSUER", issuer.issuer())
                .env(
                    "MCP_OAUTH_FAILED_AUTH_PER_MINUTE",
                    failed_auth_per_minute.to_string(),
                );
            c
        }
        (Stack::Ours, false) => {
            let mut c = Command::new(&tools.me);
            c.arg("serve-unguarded").arg(port.to_string());
            c
        }
        (Stack::Ts, _) => {
            let mut c = Command::new(&tools.node);
            c.arg(tools.dir.join("ts-server.mjs"));
            c
        }
        (Stack::Py, _) => {
            let mut c = Command::new(&tools.python);
            c.arg(tools.dir.join("py_server.py"));
            c
        }
    };
    command
        .current_dir(&tools.dir)
        .env("PORT", port.to_string())
        .env("RESOURCE", &resource)
        .env("ISSUER", issuer.issuer())
        .env("JWKS_URI", issuer.jwks_uri())
        .env("AUTH", if auth { "on" } else { "off" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot start {stack:?}: {e}");
    });
    let mut server = Server {
        stack,
        auth,
        port,
        child,
        request: if stack == Stack::Ours {
            ours_request()
        } else {
            sdk_request()
        },
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if StdStream::connect(server.addr()).is_ok() {
            break;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{} exited ({status}) before listening; see {}",
                server.name(),
                server.log.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not listen within 60 s",
            server.name()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

// ---------------------------------------------------------------------------------------------
// One request by hand (checks before the runs)

async fn post(addr: SocketAddr, shape: &RequestShape, token: Option<&str>) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = http::Request::post("/mcp")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream");
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in &shape.headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(shape.body.as_bytes())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Every server answers the call with the calendar's event (and, with auth, refuses a missing
/// and a forged token with 401) before anything is measured.
fn check_servers(
    rt: &tokio::runtime::Runtime,
    servers: &[Server],
    tokens: &BTreeMap<Stack, String>,
    forged: &str,
) {
    for server in servers {
        let token = &tokens[&server.stack];
        let (status, body) = rt.block_on(post(server.addr(), &server.request, Some(token)));
        let good = status == 200
            && body.contains("Stand-up")
            && !body.contains("\"isError\":true")
            && !body.contains("\"error\"");
        eprintln!(
            "check {:<12} with its token: {status} {}",
            server.name(),
            short(&body)
        );
        assert!(good, "{} does not answer the call", server.name());
        if server.auth {
            let (none, _) = rt.block_on(post(server.addr(), &server.request, None));
            let (bad, _) = rt.block_on(post(server.addr(), &server.request, Some(forged)));
            eprintln!(
                "check {:<12} without a token: {none}, forged: {bad}",
                server.name()
            );
            assert!(
                none == 401 && bad == 401,
                "{} does not refuse",
                server.name()
            );
        }
    }
}

fn short(body: &str) -> String {
    let body = body.replace('\n', " ");
    if body.chars().count() > 140 {
        format!("{}…", body.chars().take(140).collect::<String>())
    } else {
        body
    }
}

// ---------------------------------------------------------------------------------------------
// oha

/// CPU time (user + system) of a process so far, in seconds (`/proc/<pid>/stat`, 10 ms ticks).
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let Some(close) = stat.rfind(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(14) + field(15)) as f64 / 100.0
}

#[derive(Debug, Clone, Default)]
struct Run {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_seconds: f64,
    cpu_us_per_request: f64,
    statuses: BTreeMap<String, u64>,
    error_kinds: BTreeMap<String, u64>,
    audit_lines: Option<u64>,
}

impl Run {
    fn failed(&self) -> bool {
        self.non_2xx > 0 || self.errors > 0 || self.ok == 0
    }

    fn json(&self) -> Value {
        json!({
            "ok": self.ok, "non_2xx": self.non_2xx, "errors": self.errors,
            "seconds": self.seconds, "rps": self.rps, "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms, "cpu_seconds": self.cpu_seconds,
            "cpu_us_per_request": self.cpu_us_per_request, "statuses": self.statuses,
            "error_kinds": self.error_kinds, "audit_lines": self.audit_lines,
        })
    }
}

fn oha(tools: &Tools, server: &Server, token: &str, seconds: u64, connections: usize) -> Run {
    let mut command = Command::new(&tools.oha);
    command
        .arg("-z")
        .arg(format!("{seconds}s"))
        .arg("-c")
        .arg(connections.to_string())
        .arg("-w")
        .arg("--no-tui")
        .arg("--output-format")
        .arg("json")
        .arg("-m")
        .arg("POST")
        .arg("-T")
        .arg("application/json")
        .arg("-H")
        .arg("Accept: application/json, text/event-stream")
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"));
    for (name, value) in &server.request.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command
        .arg("-d")
        .arg(server.request.body)
        .arg(server.url())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // This run's log only (for the example, its audit lines are counted): the server appends,
    // so the file can be emptied, and the logs of a long run do not fill the disk.
    let _ = OpenOptions::new()
        .write(true)
        .open(&server.log)
        .map(|f| f.set_len(0));
    let cpu_before = process_cpu(server.pid());
    let output = command.output().expect("run oha");
    let cpu = process_cpu(server.pid()) - cpu_before;
    assert!(
        output.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "oha's output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(400)])
        )
    });
    let mut run = Run {
        seconds: report["summary"]["total"].as_f64().unwrap_or(f64::NAN),
        p50_ms: report["latencyPercentiles"]["p50"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * 1e3,
        p99_ms: report["latencyPercentiles"]["p99"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * 1e3,
        cpu_seconds: cpu,
        ..Run::default()
    };
    if let Some(statuses) = report["statusCodeDistribution"].as_object() {
        for (status, count) in statuses {
            let count = count.as_u64().unwrap_or(0);
            if status.starts_with('2') {
                run.ok += count;
            } else {
                run.non_2xx += count;
            }
            run.statuses.insert(status.clone(), count);
        }
    }
    if let Some(errors) = report["errorDistribution"].as_object() {
        for (kind, count) in errors {
            let count = count.as_u64().unwrap_or(0);
            run.errors += count;
            run.error_kinds.insert(kind.clone(), count);
        }
    }
    run.rps = run.ok as f64 / run.seconds;
    run.cpu_us_per_request = cpu * 1e6 / (run.ok + run.non_2xx).max(1) as f64;
    if server.stack == Stack::Ours && server.auth {
        let mut text = String::new();
        let _ = File::open(&server.log).and_then(|mut f| f.read_to_string(&mut text));
        run.audit_lines = Some(
            text.lines()
                .filter(|l| l.contains("mcp_oauth::audit") || l.starts_with('{'))
                .count() as u64,
        );
    }
    run
}

fn median(values: &[f64]) -> f64 {
    let mut values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The run

fn run(args: &Args) {
    let seconds: u64 = args.value("--seconds", 10);
    let rounds: usize = args.value("--rounds", 3);
    let connections: usize = args.value("--connections", 32);
    let warmup: u64 = args.value("--warmup", 3);
    let flood_connections: usize = args.value("--flood-connections", 32);
    let failed_auth_per_minute: u32 = args.value("--failed-auth-per-minute", 60);
    let only = args.string("--only");
    let stacks: Vec<Stack> = args
        .string("--stacks")
        .unwrap_or_else(|| "ours,ts,py".to_owned())
        .split(',')
        .map(|s| match s.trim() {
            "ours" => Stack::Ours,
            "ts" => Stack::Ts,
            "py" => Stack::Py,
            other => panic!("unknown stack {other:?} (ours, ts, py)"),
        })
        .collect();
    let stacks: Vec<Stack> = if only.as_deref() == Some("pressure") {
        vec![Stack::Ours]
    } else {
        stacks
    };
    let tools = find_tools(args, &stacks);

    // The one authorization server: RS256 keys in its JWKS, RFC 8414 metadata, on loopback.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("crossstack")
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(
        TestIssuer::builder()
            .algorithm(SigningAlgorithm::RS256)
            .start(),
    );
    let logs = mcp_oauth_bench::report_dir().join("crossstack-logs");
    std::fs::create_dir_all(&logs).expect("log directory");

    let mut servers = Vec::new();
    for &stack in &stacks {
        for auth in [true, false] {
            if only.as_deref() == Some("pressure") && !auth {
                continue;
            }
            servers.push(start_server(
                &tools,
                &issuer,
                stack,
                auth,
                failed_auth_per_minute,
                &logs,
            ));
        }
    }
    // One token per server's audience, alike but for `aud`: RS256, `typ` at+jwt, a `kid`,
    // `iss`, `sub`, `client_id`, `iat`, `exp` (12 h), `jti`, `scope`.
    let mint = |audience: &str, key: Option<&SigningKey>| {
        let builder = issuer
            .token()
            .audience(audience)
            .subject("bench-user")
            .scope("calendar:read calendar:write")
            .expires_in(Duration::from_secs(12 * 3600));
        match key {
            Some(key) => builder.key(key).sign(),
            None => builder.sign(),
        }
    };
    let mut tokens = BTreeMap::new();
    for server in &servers {
        tokens
            .entry(server.stack)
            .or_insert_with(|| mint(&server.url(), None));
    }
    // Forged: the same shape for our audience and the published key's `kid`, signed by a key
    // the issuer never published. Distinct tokens (distinct `jti`), so that no cache helps.
    let ours_url = servers
        .iter()
        .find(|s| s.stack == Stack::Ours)
        .map(Server::url)
        .expect("ours");
    let attacker = SigningKey::generate(SigningAlgorithm::RS256, issuer.signing_key().kid());
    let forged: Vec<String> = (0..1024)
        .map(|_| mint(&ours_url, Some(&attacker)))
        .collect();
    check_servers(&rt, &servers, &tokens, &forged[0]);

    let started = chrono_now();
    let head = git_head();
    eprintln!(
        "crossstack: HEAD {head}, {started}, load average {}, {} connections, {rounds} rounds of {seconds} s",
        load_average(),
        connections
    );
    let mut report = json!({
        "head": head, "date": started, "seconds": seconds, "rounds": rounds,
        "connections": connections, "load_average_start": load_average(),
        "token_bytes": tokens.get(&Stack::Ours).map(String::len),
    });

    if only.as_deref() != Some("pressure") {
        table(
            &tools,
            &servers,
            &tokens,
            seconds,
            rounds,
            connections,
            warmup,
            &mut report,
        );
    }
    if only.as_deref() != Some("table") {
        let ours = servers
            .iter()
            .find(|s| s.stack == Stack::Ours && s.auth)
            .expect("ours with auth");
        pressure(
            &tools,
            ours,
            &tokens[&Stack::Ours],
            Arc::new(forged),
            seconds,
            rounds,
            connections,
            flood_connections,
            failed_auth_per_minute,
            &mut report,
        );
    }
    report["load_average_end"] = json!(load_average());
    eprintln!("load average at the end: {}", load_average());
    mcp_oauth_bench::write_report("crossstack", &report);
    drop(servers);
    rt.block_on(issuer.shutdown());
}

fn chrono_now() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn git_head() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn us(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1e3)
    }
}

#[allow(clippy::too_many_arguments)]
fn table(
    tools: &Tools,
    servers: &[Server],
    tokens: &BTreeMap<Stack, String>,
    seconds: u64,
    rounds: usize,
    connections: usize,
    warmup: u64,
    report: &mut Value,
) {
    // Warm-up (JIT, keys fetched, caches): not measured.
    for server in servers {
        let run = oha(tools, server, &tokens[&server.stack], warmup, connections);
        eprintln!(
            "warm-up {:<12} {:>8.0} req/s{}",
            server.name(),
            run.rps,
            if run.failed() { " (FAILED)" } else { "" }
        );
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        // A B C A B C …: each stack in turn, with and without its auth.
        for (i, server) in servers.iter().enumerate() {
            let run = oha(tools, server, &tokens[&server.stack], seconds, connections);
            eprintln!(
                "round {} {:<12} {:>8.0} req/s  p50 {:>9}  p99 {:>9}  CPU {:>7.1} µs/req  {:?}{}{}",
                round + 1,
                server.name(),
                run.rps,
                us(run.p50_ms),
                us(run.p99_ms),
                run.cpu_us_per_request,
                run.statuses,
                if run.errors > 0 {
                    format!(" errors {:?}", run.error_kinds)
                } else {
                    String::new()
                },
                run.audit_lines
                    .map(|n| format!(" audit lines {n}"))
                    .unwrap_or_default(),
            );
            runs[i].push(run);
        }
    }

    struct Summary {
        rps: f64,
        p50: f64,
        p99: f64,
        cpu: f64,
        cores: f64,
        failed: usize,
    }
    let summaries: Vec<Summary> = runs
        .iter()
        .map(|runs| Summary {
            rps: median(&runs.iter().map(|r| r.rps).collect::<Vec<_>>()),
            p50: median(&runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
            p99: median(&runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>()),
            cpu: median(
                &runs
                    .iter()
                    .map(|r| r.cpu_us_per_request)
                    .collect::<Vec<_>>(),
            ),
            cores: median(
                &runs
                    .iter()
                    .map(|r| r.cpu_seconds / r.seconds)
                    .collect::<Vec<_>>(),
            ),
            failed: runs.iter().filter(|r| r.failed()).count(),
        })
        .collect();

    println!();
    println!(
        "`tools/call list_events`, {connections} connections, {rounds} rounds × {seconds} s per server, interleaved; medians over rounds"
    );
    println!();
    println!(
        "| server | auth | req/s | p50 | p99 | server CPU per request | server CPU (cores) | failed runs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (server, s) in servers.iter().zip(&summaries) {
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.1} µs | {:.2} | {}/{} |",
            server.stack.label(),
            if server.auth { "on" } else { "off" },
            s.rps,
            us(s.p50),
            us(s.p99),
            s.cpu,
            s.cores,
            s.failed,
            rounds
        );
    }

    // Ratios within each round, then their median.
    let index = |stack: Stack, auth: bool| {
        servers
            .iter()
            .position(|s| s.stack == stack && s.auth == auth)
    };
    let per_round = |a: usize, b: usize, f: &dyn Fn(&Run, &Run) -> f64| {
        median(
            &runs[a]
                .iter()
                .zip(&runs[b])
                .map(|(x, y)| f(x, y))
                .collect::<Vec<_>>(),
        )
    };
    let mut ratios = Vec::new();
    println!();
    println!("| ratio (median of the per-round ratios) | auth on | auth off | target (auth on) |");
    println!("|---|---|---|---|");
    for other in [Stack::Ts, Stack::Py] {
        let (Some(ours_on), Some(other_on), Some(ours_off), Some(other_off)) = (
            index(Stack::Ours, true),
            index(other, true),
            index(Stack::Ours, false),
            index(other, false),
        ) else {
            continue;
        };
        let rps_on = per_round(ours_on, other_on, &|a, b| a.rps / b.rps);
        let rps_off = per_round(ours_off, other_off, &|a, b| a.rps / b.rps);
        let p99_on = per_round(ours_on, other_on, &|a, b| b.p99_ms / a.p99_ms);
        let p99_off = per_round(ours_off, other_off, &|a, b| b.p99_ms / a.p99_ms);
        let cpu_on = per_round(ours_on, other_on, &|a, b| {
            b.cpu_us_per_request / a.cpu_us_per_request
        });
        let cpu_off = per_round(ours_off, other_off, &|a, b| {
            b.cpu_us_per_request / a.cpu_us_per_request
        });
        let name = other.key();
        let target = |value: f64| {
            if other == Stack::Ts {
                format!(
                    "≥ 10×: {}",
                    if value >= 10.0 { "met" } else { "**missed**" }
                )
            } else {
                "(reported)".to_owned()
            }
        };
        println!(
            "| req/s, ours ÷ {name} | {rps_on:.2}× | {rps_off:.2}× | {} |",
            target(rps_on)
        );
        println!(
            "| p99, {name} ÷ ours | {p99_on:.2}× | {p99_off:.2}× | {} |",
            target(p99_on)
        );
        println!(
            "| server CPU per request, {name} ÷ ours | {cpu_on:.2}× | {cpu_off:.2}× | (reported) |"
        );
        ratios.push(json!({
            "other": name, "rps_on": rps_on, "rps_off": rps_off, "p99_on": p99_on,
            "p99_off": p99_off, "cpu_on": cpu_on, "cpu_off": cpu_off,
        }));
    }
    println!();
    println!("| server | auth on ÷ auth off (req/s) | auth's server CPU per request |");
    println!("|---|---|---|");
    for &stack in &[Stack::Ours, Stack::Ts, Stack::Py] {
        let (Some(on), Some(off)) = (index(stack, true), index(stack, false)) else {
            continue;
        };
        let ratio = per_round(on, off, &|a, b| a.rps / b.rps);
        let cost = per_round(on, off, &|a, b| a.cpu_us_per_request - b.cpu_us_per_request);
        println!("| {} | {ratio:.2}× | {cost:.1} µs |", stack.label());
    }
    report["table"] = json!({
        "servers": servers.iter().zip(&runs).map(|(s, runs)| json!({
            "stack": s.stack.key(), "auth": s.auth,
            "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "ratios": ratios,
    });
}

// ---------------------------------------------------------------------------------------------
// Under pressure: forged tokens from 127.0.0.2

#[derive(Default)]
struct FloodCounts {
    unauthorized: AtomicU64,
    too_many: AtomicU64,
    other: AtomicU64,
    errors: AtomicU64,
}

async fn flood_worker(
    addr: SocketAddr,
    tokens: Arc<Vec<String>>,
    first: usize,
    stride: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<FloodCounts>,
) {
    let shape = ours_request();
    let mut index = first;
    while !stop.load(Ordering::Relaxed) {
        let connected = async {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind("127.0.0.2:0".parse().expect("addr")).ok()?;
            let stream = socket.connect(addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(connection);
            Some(sender)
        }
        .await;
        let Some(mut sender) = connected else {
            counts.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            if sender.ready().await.is_err() {
                break;
            }
            let token = &tokens[index % tokens.len()];
            index += stride;
            let mut request = http::Request::post("/mcp")
                .header(HOST, addr.to_string())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/event-stream")
                .header(AUTHORIZATION, format!("Bearer {token}"));
            for (name, value) in &shape.headers {
                request = request.header(*name, *value);
            }
            let request = request
                .body(Full::new(Bytes::from_static(shape.body.as_bytes())))
                .expect("request");
            match sender.send_request(request).await {
                Ok(response) => {
                    let counter = match response.status().as_u16() {
                        401 => &counts.unauthorized,
                        429 => &counts.too_many,
                        _ => &counts.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = response.into_body().collect().await;
                }
                Err(_) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pressure(
    tools: &Tools,
    ours: &Server,
    token: &str,
    forged: Arc<Vec<String>>,
    seconds: u64,
    rounds: usize,
    connections: usize,
    flood_connections: usize,
    failed_auth_per_minute: u32,
    report: &mut Value,
) {
    // The flooder's own runtime: one thread, as a single attacking process would have.
    let flood_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("flood")
        .enable_all()
        .build()
        .expect("runtime");
    let mut calm = Vec::new();
    let mut flooded = Vec::new();
    let mut floods = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for with_flood in order {
            if !with_flood {
                let run = oha(tools, ours, token, seconds, connections);
                eprintln!(
                    "pressure round {} calm:    {:>8.0} req/s  p50 {:>9}  p99 {:>9}  {:?}",
                    round + 1,
                    run.rps,
                    us(run.p50_ms),
                    us(run.p99_ms),
                    run.statuses
                );
                calm.push(run);
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let counts = Arc::new(FloodCounts::default());
            let workers: Vec<_> = (0..flood_connections)
                .map(|w| {
                    flood_rt.spawn(flood_worker(
                        ours.addr(),
                        forged.clone(),
                        w,
                        flood_connections,
                        stop.clone(),
                        counts.clone(),
                    ))
                })
                .collect();
            // The flood runs a second alone first, then through the whole legitimate run.
            std::thread::sleep(Duration::from_secs(1));
            let before = (
                counts.unauthorized.load(Ordering::Relaxed),
                counts.too_many.load(Ordering::Relaxed),
                counts.other.load(Ordering::Relaxed),
                counts.errors.load(Ordering::Relaxed),
            );
            let flood_started = Instant::now();
            let run = oha(tools, ours, token, seconds, connections);
            let flood_seconds = flood_started.elapsed().as_secs_f64();
            let after = (
                counts.unauthorized.load(Ordering::Relaxed),
                counts.too_many.load(Ordering::Relaxed),
                counts.other.load(Ordering::Relaxed),
                counts.errors.load(Ordering::Relaxed),
            );
            stop.store(true, Ordering::Relaxed);
            flood_rt.block_on(async {
                for worker in workers {
                    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
                }
            });
            let flood = json!({
                "seconds": flood_seconds,
                "unauthorized": after.0 - before.0,
                "too_many": after.1 - before.1,
                "other": after.2 - before.2,
                "errors": after.3 - before.3,
                "first_second": { "unauthorized": before.0, "too_many": before.1,
                                  "other": before.2, "errors": before.3 },
            });
            eprintln!(
                "pressure round {} flooded: {:>8.0} req/s  p50 {:>9}  p99 {:>9}  {:?}; flood {}",
                round + 1,
                run.rps,
                us(run.p50_ms),
                us(run.p99_ms),
                run.statuses,
                flood
            );
            flooded.push(run);
            floods.push(flood);
        }
    }
    let col =
        |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let total = |key: &str| {
        floods
            .iter()
            .map(|f| f[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let flood_seconds: f64 = floods
        .iter()
        .map(|f| f["seconds"].as_f64().unwrap_or(0.0))
        .sum();
    let (unauthorized, too_many, other, errors) = (
        total("unauthorized"),
        total("too_many"),
        total("other"),
        total("errors"),
    );
    let answered = (unauthorized + too_many + other).max(1) as f64;
    let first = |key: &str| {
        floods
            .iter()
            .map(|f| f["first_second"][key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    println!();
    println!(
        "The calendar example (auth on, audit on, MCP_OAUTH_FAILED_AUTH_PER_MINUTE={failed_auth_per_minute}): \
         {connections} legitimate connections from 127.0.0.1 (oha), with and without {flood_connections} \
         flooding connections from 127.0.0.2 sending forged tokens (published `kid`, unpublished key), \
         {rounds} rounds × {seconds} s each, interleaved; medians over rounds"
    );
    println!();
    println!("| legitimate client | req/s | p50 | p99 | server CPU (cores) | failed runs |");
    println!("|---|---|---|---|---|---|");
    for (label, runs) in [("no flood", &calm), ("under the flood", &flooded)] {
        println!(
            "| {label} | {:.0} | {} | {} | {:.2} | {}/{} |",
            col(runs, &|r| r.rps),
            us(col(runs, &|r| r.p50_ms)),
            us(col(runs, &|r| r.p99_ms)),
            col(runs, &|r| r.cpu_seconds / r.seconds),
            runs.iter().filter(|r| r.failed()).count(),
            runs.len()
        );
    }
    let rps_ratio = median(
        &calm
            .iter()
            .zip(&flooded)
            .map(|(c, f)| f.rps / c.rps)
            .collect::<Vec<_>>(),
    );
    let p99_ratio = median(
        &calm
            .iter()
            .zip(&flooded)
            .map(|(c, f)| f.p99_ms / c.p99_ms)
            .collect::<Vec<_>>(),
    );
    println!();
    println!(
        "Under the flood ÷ without: req/s {rps_ratio:.2}×, p99 {p99_ratio:.2}×. \
         The flood, over the legitimate runs ({flood_seconds:.0} s in all, after each flood's first second): \
         {:.0} answers/s, {unauthorized} × 401 ({:.2} %), {too_many} × 429 ({:.2} %), {other} other, {errors} connection errors. \
         In the floods' first seconds (before the legitimate runs): {} × 401, {} × 429.",
        answered / flood_seconds,
        100.0 * unauthorized as f64 / answered,
        100.0 * too_many as f64 / answered,
        first("unauthorized"),
        first("too_many"),
    );
    report["pressure"] = json!({
        "failed_auth_per_minute": failed_auth_per_minute,
        "flood_connections": flood_connections,
        "calm": calm.iter().map(Run::json).collect::<Vec<_>>(),
        "flooded": flooded.iter().map(Run::json).collect::<Vec<_>>(),
        "floods": floods,
        "rps_ratio": rps_ratio, "p99_ratio": p99_ratio,
    });
}
