//! The load generator: end-to-end throughput and latency of the example's MCP endpoint,
//! guarded against unguarded in the same run; resident memory of the example binary; the
//! unknown-kid stampede; and fixed workloads for callgrind. Loopback only, bounded loops.
//!
//! ```sh
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- e2e
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- memory --example target/release/examples/calendar
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- unknown-kid
//! valgrind --tool=callgrind target/release/loadgen cost cold-RS256 2000
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- guard
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- dpop
//! cargo run -p mcp-oauth-bench --release --bin loadgen -- redis
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mcp_oauth::VerifiedToken;
use mcp_oauth::dpop::{Freshness, InMemoryReplayStore, ReplayStore};
use mcp_oauth::http::{InMemorySessionBindings, Principal, SessionBindings, SessionCheck};
use mcp_oauth::http::{OAuthLayer, OAuthLayerBuilder};
use mcp_oauth::rate_limit::{
    Budget, InMemoryRateLimitStore, PrincipalKey, RateDecision, RateLimitKey, RateLimitStore,
    RateLimits,
};
use mcp_oauth::redis::{RedisConfig, RedisState};
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::RedisServer;
use mcp_oauth_bench::calendar::Calendar;
use mcp_oauth_bench::{AUDIENCE, Alg, Args, Issuer, block_on, report_dir, write_report};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: loadgen <command> [options]
  e2e          [--concurrency 16] [--seconds 5] [--rounds 3] [--tokens 1000]
               [--server-threads 1] [--client-threads 1] [--nodelay true] [--only VARIANT]
  memory       --example PATH [--tokens 100000] [--concurrency 16]
  unknown-kid  [--tasks 1000]
  paired       [--rounds 30] [--ms 20]   interleaved ratios on thread CPU time
  dpop         [--rounds 30] [--ms 20]   DPoP (token + proof) against bearer and two bare verifications
               [--profile-warm N]        (only N warm DPoP verifications, for perf)
  redis        [--rounds 10] [--ops 3000] [--local-ops 100000] [--keys 10000]
               [--seconds 5] [--e2e-rounds 5] [--tokens 1000] [--concurrency 16]
               [--only stores|e2e]       shared state on Redis against the in-memory stores
  guard        [--rounds 30] [--ms 50]   the guard's own CPU per tools/call, in process, paired
  cost         <cold-RS256|floor-RS256|jsonwebtoken-RS256|warm-1KiB|layer-warm|call-guarded|call-audited|call-unguarded> [iterations]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let args = Args(args[1..].to_vec());
    match command.as_str() {
        "e2e" => e2e(&args),
        "memory" => memory(&args),
        "unknown-kid" => unknown_kid(&args),
        "cost" => cost(&args),
        "paired" => paired(&args),
        "guard" => guard(&args),
        "dpop" => dpop(&args),
        "redis" => redis(&args),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    named_runtime(threads, "loadgen")
}

/// A runtime whose threads are all named `name`, so [`cpu_seconds`] can tell them apart.
fn named_runtime(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// CPU time (user + system, seconds) used so far by this process's threads named `name`
/// (`/proc/self/task/*/stat`, clock ticks of 10 ms). Robust to other processes' load, unlike
/// throughput: the guard's cost per request is the server threads' CPU per request.
fn cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        // After the comm: state(3) ppid(4) … utime(14) stime(15).
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
    }
    ticks as f64 / 100.0
}

/// Mints `count` distinct RS256 tokens (distinct `sub` and `jti`), on every core.
fn mint(issuer: &Issuer, count: usize) -> Vec<String> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| issuer.token_for(Alg::RS256, &format!("user-{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("minting thread"))
            .collect()
    });
    eprintln!(
        "minted {} RS256 tokens ({} bytes each) in {:.1} s",
        tokens.len(),
        tokens[0].len(),
        started.elapsed().as_secs_f64()
    );
    tokens
}

// ---------------------------------------------------------------------------------------------
// End to end

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Unguarded,
    CacheOn,
    CacheOff,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Unguarded => "unguarded",
            Variant::CacheOn => "guarded, token cache on",
            Variant::CacheOff => "guarded, token cache off",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Variant::Unguarded => "unguarded",
            Variant::CacheOn => "guarded_cache_on",
            Variant::CacheOff => "guarded_cache_off",
        }
    }
}

/// The example's MCP service, stateless (`legacy_session_mode = false`) so that every
/// `tools/call` is independent of the others, and answering in JSON (`json_response`) as the
/// example does (`OAuthServer::streamable_http_config`); the Host check is the layer's.
fn mcp_service() -> StreamableHttpService<Calendar, LocalSessionManager> {
    let calendar = Calendar::new();
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.allowed_hosts = Vec::new();
    StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        config,
    )
}

/// The example's app: the MCP route behind the layer, the layer built as the example builds it.
fn guarded_app(
    issuer: &Issuer,
    validator: mcp_oauth::Validator,
) -> mcp_oauth::http::OAuthService<axum::Router> {
    guarded_app_with(issuer, validator, |builder| builder)
}

/// [`guarded_app`] with more settings on the layer (rate limits, shared state).
fn guarded_app_with(
    issuer: &Issuer,
    validator: mcp_oauth::Validator,
    customize: impl FnOnce(OAuthLayerBuilder) -> OAuthLayerBuilder,
) -> mcp_oauth::http::OAuthService<axum::Router> {
    let config = ResourceConfig::of::<Calendar>()
        .resource(AUDIENCE)
        .authorization_servers([issuer.issuer.issuer().to_owned()]);
    let builder = OAuthLayer::builder(config, validator)
        .tools(mcp_oauth::rmcp::tool_table(&Calendar::tool_router()));
    let layer = customize(builder).build().expect("layer");
    let router = axum::Router::new().route_service(layer.route(), mcp_service());
    tower::Layer::layer(&layer, router)
}

/// The same route without the layer. The tools still check their scopes (`#[mcp_tool]`), so a
/// one-line `map_request` hands them an identity verified once at startup: the tools do the
/// same work as behind the layer, and no request is authenticated.
fn unguarded_app(identity: VerifiedToken) -> axum::Router {
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: Request| {
            request.extensions_mut().insert(identity.clone());
            request
        })
        .service(mcp_service());
    axum::Router::new().route_service("/mcp", service)
}

/// Serves `app` on a fresh loopback port, as the example does, except that accepted sockets
/// get `TCP_NODELAY` (unless `nodelay` is false): an answer rmcp streams (SSE) is written in
/// several small pieces, and without it Nagle's algorithm meets the client's delayed ACK and
/// such a response waits ~40 ms.
async fn serve<S>(app: S, nodelay: bool) -> SocketAddr
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        if nodelay {
            let _ = tcp.set_nodelay(true);
        }
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(app),
        )
        .await
        .expect("server");
    });
    addr
}

fn tools_call(id: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"list_events","arguments":{{}}}}}}"#
    ))
}

struct WorkerResult {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// One connection sending `tools/call` back to back until `deadline` (or `limit` requests),
/// each with the next token of its share of `tokens`.
#[allow(clippy::too_many_arguments)]
async fn worker(
    addr: SocketAddr,
    tokens: Arc<Vec<String>>,
    first: usize,
    stride: usize,
    deadline: Instant,
    limit: u64,
    extra_headers: Arc<Vec<(&'static str, &'static str)>>,
    body: Bytes,
    expect: &'static str,
) -> WorkerResult {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let host = addr.to_string();
    let mut result = WorkerResult {
        ok: 0,
        errors: 0,
        latencies_us: Vec::with_capacity(64 * 1024),
    };
    let mut index = first;
    let mut sent = 0u64;
    while sent < limit && Instant::now() < deadline {
        let token = &tokens[index % tokens.len()];
        index += stride;
        sent += 1;
        let mut request = http::Request::post("/mcp")
            .header(HOST, &host)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header(AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in extra_headers.iter() {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.clone())).expect("request");
        if sender.ready().await.is_err() {
            result.errors += 1;
            break;
        }
        let started = Instant::now();
        let Ok(response) = sender.send_request(request).await else {
            result.errors += 1;
            break;
        };
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let elapsed = started.elapsed();
        let body_ok = bytes.windows(expect.len()).any(|w| w == expect.as_bytes());
        if status.is_success() && body_ok {
            result.ok += 1;
            result
                .latencies_us
                .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        } else {
            if result.errors == 0 {
                eprintln!(
                    "unexpected answer {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
                );
            }
            result.errors += 1;
        }
    }
    result
}

/// A `limit_per_worker` of [`load`]: send each token exactly once.
const ONCE: u64 = u64::MAX - 1;

struct Load {
    ok: u64,
    errors: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
}

#[allow(clippy::too_many_arguments)]
async fn load(
    addr: SocketAddr,
    tokens: Arc<Vec<String>>,
    concurrency: usize,
    duration: Duration,
    limit_per_worker: u64,
    extra_headers: Arc<Vec<(&'static str, &'static str)>>,
    body: Bytes,
    expect: &'static str,
) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            // `u64::MAX - 1`: every token exactly once, spread over the connections.
            let limit = if limit_per_worker == ONCE {
                tokens.len().saturating_sub(w).div_ceil(concurrency) as u64
            } else {
                limit_per_worker
            };
            tokio::spawn(worker(
                addr,
                tokens.clone(),
                w,
                concurrency,
                deadline,
                limit,
                extra_headers.clone(),
                body.clone(),
                expect,
            ))
        })
        .collect();
    let mut total = Load {
        ok: 0,
        errors: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let result = task.await.expect("worker");
        total.ok += result.ok;
        total.errors += result.errors;
        total.latencies_us.extend(result.latencies_us);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn e2e(args: &Args) {
    let concurrency: usize = args.value("--concurrency", 16);
    let seconds: f64 = args.value("--seconds", 5.0);
    let rounds: usize = args.value("--rounds", 3);
    let token_count: usize = args.value("--tokens", 1000);
    let server_threads: usize = args.value("--server-threads", 1);
    let client_threads: usize = args.value("--client-threads", 1);
    let nodelay: bool = args.value("--nodelay", true);
    // `--only guarded_cache_on` (or another variant key) runs one variant, for a profiler.
    let only = args.string("--only");

    let server = named_runtime(server_threads, "server");
    let client = named_runtime(client_threads, "client");
    let issuer = server.block_on(Issuer::start(AUDIENCE));
    let tokens = Arc::new(mint(&issuer, token_count));
    let (addrs, identity) = server.block_on(async {
        let cache_on = issuer.validator(true).await;
        let cache_off = issuer.validator(false).await;
        let identity = cache_off.validate(&tokens[0]).await.expect("valid token");
        let unguarded = serve(unguarded_app(identity.clone()), nodelay).await;
        let on = serve(guarded_app(&issuer, cache_on), nodelay).await;
        let off = serve(guarded_app(&issuer, cache_off), nodelay).await;
        (
            [
                (Variant::Unguarded, unguarded),
                (Variant::CacheOn, on),
                (Variant::CacheOff, off),
            ],
            identity,
        )
    });
    drop(identity);
    let no_headers = Arc::new(Vec::new());
    let body = tools_call(1);
    eprintln!(
        "e2e: tools/call list_events, {concurrency} connections, {rounds} rounds of {seconds} s per variant, \
         {token_count} distinct tokens, server {server_threads} thread(s), client {client_threads} thread(s)"
    );
    // Warm-up: every token once through every server (fills the cache-on server's cache, as a
    // client's session would after its first request), then one second of load each.
    for (variant, addr) in addrs {
        let warm = client.block_on(load(
            addr,
            tokens.clone(),
            concurrency,
            Duration::from_secs(60),
            ONCE,
            no_headers.clone(),
            body.clone(),
            "Stand-up",
        ));
        assert_eq!(warm.errors, 0, "{}: warm-up errors", variant.name());
        client.block_on(load(
            addr,
            tokens.clone(),
            concurrency,
            Duration::from_secs(1),
            u64::MAX,
            no_headers.clone(),
            body.clone(),
            "Stand-up",
        ));
    }
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); 3];
    let mut ratio_on = Vec::new();
    let mut ratio_off = Vec::new();
    let mut cpu: Vec<(f64, u64)> = vec![(0.0, 0); 3];
    let mut errors = 0;
    for round in 0..rounds {
        let mut this_round = [0.0; 3];
        // Rotate the order each round so no variant always runs first or last.
        for step in 0..3 {
            let i = (round + step) % 3;
            let (variant, addr) = addrs[i];
            if only.as_deref().is_some_and(|o| o != variant.key()) {
                continue;
            }
            let cpu_before = cpu_seconds("server");
            let result = client.block_on(load(
                addr,
                tokens.clone(),
                concurrency,
                Duration::from_secs_f64(seconds),
                u64::MAX,
                no_headers.clone(),
                body.clone(),
                "Stand-up",
            ));
            cpu[i].0 += cpu_seconds("server") - cpu_before;
            cpu[i].1 += result.ok;
            errors += result.errors;
            let r = result.ok as f64 / result.seconds;
            eprintln!(
                "  round {} {:<26} {:>8.0} req/s ({} ok, {} errors)",
                round + 1,
                variant.name(),
                r,
                result.ok,
                result.errors
            );
            this_round[i] = r;
            rps[i].push(r);
            latencies[i].extend(result.latencies_us);
        }
        if only.is_none() {
            ratio_on.push(this_round[1] / this_round[0]);
            ratio_off.push(this_round[2] / this_round[0]);
        }
    }
    let mut report = serde_json::Map::new();
    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>9} {:>14} {:>12}",
        "e2e tools/call", "req/s", "p50 µs", "p99 µs", "ratio", "server CPU/req", "CPU ratio"
    );
    let cpu_per_request: Vec<f64> = cpu
        .iter()
        .map(|(seconds, requests)| seconds * 1e6 / *requests as f64)
        .collect();
    for (i, (variant, _)) in addrs.iter().enumerate() {
        let mut sorted = std::mem::take(&mut latencies[i]);
        sorted.sort_unstable();
        let median_rps = median(&mut rps[i]);
        let ratio = match variant {
            Variant::Unguarded => 1.0,
            Variant::CacheOn => median(&mut ratio_on),
            Variant::CacheOff => median(&mut ratio_off),
        };
        let (p50, p99) = (percentile(&sorted, 50.0), percentile(&sorted, 99.0));
        // The capacity ratio of a CPU-bound server: unguarded CPU per request ÷ this one's.
        let cpu_ratio = cpu_per_request[0] / cpu_per_request[i];
        println!(
            "{:<26} {:>10.0} {:>10.0} {:>10.0} {:>8.3}× {:>11.1} µs {:>11.3}×",
            variant.name(),
            median_rps,
            p50,
            p99,
            ratio,
            cpu_per_request[i],
            cpu_ratio
        );
        report.insert(
            variant.key().to_owned(),
            json!({
                "rps": median_rps, "rps_rounds": rps[i], "p50_us": p50, "p99_us": p99,
                "ratio": ratio, "server_cpu_us_per_request": cpu_per_request[i],
                "cpu_ratio": cpu_ratio,
            }),
        );
    }
    println!("(ratio: median over rounds of guarded req/s ÷ unguarded req/s of the same round;");
    println!(" server CPU/req: CPU time of the server's threads per request, all rounds;");
    println!(
        " CPU ratio: unguarded server CPU/req ÷ this variant's, the capacity ratio of a CPU-bound server)"
    );
    report.insert(
        "config".into(),
        json!({
            "concurrency": concurrency, "seconds": seconds, "rounds": rounds, "tokens": token_count,
            "token_bytes": tokens[0].len(), "server_threads": server_threads,
            "client_threads": client_threads, "errors": errors, "server_nodelay": nodelay,
        }),
    );
    if only.is_none() {
        write_report("e2e", &Value::Object(report));
    }
    assert_eq!(errors, 0, "requests failed");
}

// ---------------------------------------------------------------------------------------------
// Memory of the example binary

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A `tools/call` the example serves without a session even in its legacy session mode: the
/// 2026-07-28 form (per-request protocol version and capabilities in `_meta`, SEP-2243 headers).
const STATELESS_HEADERS: [(&str, &str); 3] = [
    ("mcp-protocol-version", "2026-07-28"),
    ("mcp-method", "tools/call"),
    ("mcp-name", "list_events"),
];

fn stateless_tools_call() -> Bytes {
    Bytes::from_static(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_events","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    )
}

fn memory(args: &Args) {
    let Some(example) = args.string("--example") else {
        eprintln!(
            "memory needs --example PATH (build it: cargo build --release --example calendar)"
        );
        std::process::exit(2);
    };
    let token_count: usize = args.value("--tokens", 100_000);
    let concurrency: usize = args.value("--concurrency", 16);
    let rt = runtime(2);
    let issuer = rt.block_on(async {
        let port = free_port().await;
        let resource = format!("http://127.0.0.1:{port}/mcp");
        (Issuer::start(&resource).await, port)
    });
    let (issuer, port) = issuer;
    let tokens = Arc::new(mint(&issuer, token_count));
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = tokio::process::Command::new(&example);
    child
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("MCP_OAUTH_ISSUER", issuer.issuer.issuer())
        .env("MCP_OAUTH_ISSUER_JWKS_URI", issuer.issuer.jwks_uri())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let (mut child, pid) = rt.block_on(async {
        let mut child = child.spawn().expect("spawn the example");
        let pid = child.id().expect("pid");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "the example did not print `ready`");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, pid)
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kib(pid);
    eprintln!("example pid {pid}: idle RSS {} KiB", idle.0);
    let headers = Arc::new(STATELESS_HEADERS.to_vec());
    let mut samples = vec![json!({ "tokens": 0, "rss_kib": idle.0, "hwm_kib": idle.1 })];
    let mut done = 0usize;
    let started = Instant::now();
    for checkpoint in [
        1_000, 10_000, 25_000, 50_000, 75_000, 100_000, 200_000, 400_000,
    ]
    .into_iter()
    .filter(|c| *c <= token_count)
    .chain(std::iter::once(token_count))
    {
        if checkpoint <= done {
            continue;
        }
        let slice: Arc<Vec<String>> = Arc::new(tokens[done..checkpoint].to_vec());
        let result = rt.block_on(load(
            addr,
            slice.clone(),
            concurrency.min(slice.len()),
            Duration::from_secs(3600),
            ONCE,
            headers.clone(),
            stateless_tools_call(),
            "Stand-up",
        ));
        assert_eq!(result.errors, 0, "requests failed");
        assert_eq!(result.ok as usize, slice.len());
        done = checkpoint;
        std::thread::sleep(Duration::from_millis(500));
        let (rss, hwm) = rss_kib(pid);
        eprintln!(
            "  after {done:>7} distinct tokens: RSS {rss} KiB (peak {hwm} KiB), {:.0} s",
            started.elapsed().as_secs_f64()
        );
        samples.push(json!({ "tokens": done, "rss_kib": rss, "hwm_kib": hwm }));
    }
    // The same tokens again: the cache is bounded (10,000 entries), so memory must not grow.
    let again: Arc<Vec<String>> = Arc::new(tokens[..token_count.min(20_000)].to_vec());
    let result = rt.block_on(load(
        addr,
        again.clone(),
        concurrency,
        Duration::from_secs(3600),
        ONCE,
        headers,
        stateless_tools_call(),
        "Stand-up",
    ));
    assert_eq!(result.errors, 0);
    let (rss, hwm) = rss_kib(pid);
    eprintln!(
        "  after {} repeated tokens: RSS {rss} KiB (peak {hwm} KiB)",
        again.len()
    );
    let _ = rt.block_on(child.kill());
    println!();
    println!("example RSS idle: {:.1} MiB", idle.0 as f64 / 1024.0);
    for sample in &samples[1..] {
        println!(
            "example RSS after {:>7} distinct tokens: {:.1} MiB (peak {:.1} MiB)",
            sample["tokens"],
            sample["rss_kib"].as_u64().unwrap_or(0) as f64 / 1024.0,
            sample["hwm_kib"].as_u64().unwrap_or(0) as f64 / 1024.0
        );
    }
    write_report(
        "memory",
        &json!({
            "idle_rss_kib": idle.0,
            "samples": samples,
            "after_repeat_rss_kib": rss,
            "peak_kib": hwm,
            "token_bytes": tokens[0].len(),
            "tokens": token_count,
        }),
    );
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------------------------
// Unknown-kid stampede

fn unknown_kid(args: &Args) {
    let tasks: usize = args.value("--tasks", 1000);
    let rt = runtime(2);
    let (fetches_before, fetches_after, accepted, distinct) = rt.block_on(async {
        let issuer = Issuer::start(AUDIENCE).await;
        let validator = issuer.validator(false).await;
        let before = issuer.issuer.jwks_requests();
        // A key the validator has never seen, then `tasks` distinct tokens naming it.
        let new_key = issuer
            .issuer
            .add_key(mcp_oauth::testing::SigningAlgorithm::ES256);
        let tokens: Vec<String> = (0..tasks)
            .map(|i| {
                issuer
                    .issuer
                    .token()
                    .key(&new_key)
                    .subject(format!("user-{i}"))
                    .expires_in(Duration::from_secs(3600))
                    .sign()
            })
            .collect();
        let distinct = tokens
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        let handles: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let validator = validator.clone();
                tokio::spawn(async move { validator.validate(&token).await.is_ok() })
            })
            .collect();
        let mut accepted = 0;
        for handle in handles {
            accepted += usize::from(handle.await.expect("task"));
        }
        (before, issuer.issuer.jwks_requests(), accepted, distinct)
    });
    let fetches = fetches_after - fetches_before;
    println!(
        "{tasks} concurrent validations ({distinct} distinct tokens) naming an unknown kid: \
         {fetches} JWKS fetch(es), {accepted} accepted"
    );
    write_report(
        "unknown_kid",
        &json!({ "tasks": tasks, "fetches": fetches, "accepted": accepted }),
    );
    assert_eq!(fetches, 1, "exactly one fetch");
    assert_eq!(accepted, tasks);
}

/// The example's app (or the unguarded one) as one type, called in process.
type InProcessApp =
    tower::util::BoxCloneService<Request, axum::response::Response, std::convert::Infallible>;

/// One `tools/call list_events` through `app` in process: the response must be a success and
/// carry the calendar's event, read to its end.
async fn call_list_events(app: &InProcessApp, token: &str, body: &Bytes) {
    use tower::ServiceExt;
    let request = mcp_oauth_bench::post_mcp(token, body.clone()).map(axum::body::Body::new);
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert!(response.status().is_success(), "{}", response.status());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(bytes.windows(8).any(|w| w == b"Stand-up"));
}

// ---------------------------------------------------------------------------------------------
// Fixed workloads, for `valgrind --tool=callgrind` (instruction counts do not depend on load)

fn cost(args: &Args) {
    let name = args.0.first().cloned().unwrap_or_default();
    let iterations: u64 = args.0.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = runtime(1);
    let issuer = rt.block_on(Issuer::start(AUDIENCE));
    let cold = rt.block_on(issuer.validator(false));
    let warm = rt.block_on(issuer.validator(true));
    let token = issuer.token(Alg::RS256);
    let big = issuer.token_of_size(Alg::RS256, 1024);
    assert!(block_on(warm.validate(&big)).is_ok());
    let layer = mcp_oauth_bench::mcp_layer(&issuer, warm.clone());
    let started = Instant::now();
    match name.as_str() {
        "cold-RS256" => {
            for _ in 0..iterations {
                assert!(block_on(cold.validate(&token)).is_ok());
            }
        }
        "floor-RS256" => {
            let floor = mcp_oauth_bench::Floor::new(Alg::RS256, issuer.key(Alg::RS256), &token);
            for _ in 0..iterations {
                assert!(floor.verify());
            }
        }
        #[cfg(feature = "peers")]
        "jsonwebtoken-RS256" => {
            let jwt = mcp_oauth_bench::peers::JsonWebToken::new(&issuer, Alg::RS256);
            for _ in 0..iterations {
                assert!(jwt.decode(&token).is_ok());
            }
        }
        "warm-1KiB" => {
            for _ in 0..iterations {
                assert!(block_on(warm.validate(&big)).is_ok());
            }
        }
        "layer-warm" => {
            use tower::ServiceExt;
            for _ in 0..iterations {
                let response = block_on(layer.clone().oneshot(mcp_oauth_bench::get_mcp(&big)));
                assert!(response.expect("infallible").status().is_success());
            }
        }
        // The end-to-end request without the sockets: `tools/call list_events` through the
        // example's app, guarded (token cached) or not, in process on one runtime thread, the
        // response body read to its end. The difference of the two is the guard's own cost in
        // the running server, minus the few more bytes on the wire.
        "call-guarded" | "call-audited" | "call-unguarded" => {
            let token = issuer.token(Alg::RS256);
            let identity = rt.block_on(warm.validate(&token)).expect("valid token");
            let app = match name.as_str() {
                "call-guarded" => InProcessApp::new(guarded_app(&issuer, warm.clone())),
                // With the example's `MCP_OAUTH_AUDIT_LOG` sink, to `/dev/null`: its writer
                // thread's instructions are counted too.
                "call-audited" => {
                    let devnull = std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/null")
                        .expect("/dev/null");
                    let sink =
                        mcp_oauth::audit::JsonLinesSink::non_blocking(devnull).expect("audit sink");
                    InProcessApp::new(guarded_app_with(&issuer, warm.clone(), move |builder| {
                        builder.audit_sink(sink)
                    }))
                }
                _ => InProcessApp::new(unguarded_app(identity)),
            };
            let body = tools_call(1);
            rt.block_on(async {
                for _ in 0..iterations {
                    call_list_events(&app, &token, &body).await;
                }
            });
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    eprintln!(
        "{name}: {iterations} iterations in {:.3} s ({:.2} µs each)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1e6 / iterations as f64
    );
}

// ---------------------------------------------------------------------------------------------
// Paired, interleaved ratios on thread CPU time (robust to other processes' load)

/// CPU time this thread has run (ns), from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`: unlike
/// wall time it does not grow while another process holds the core. (Not
/// `/proc/thread-self/schedstat`: on an idle machine it is only updated at scheduler ticks.)
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Runs `op` repeatedly for about `budget` of CPU time; returns CPU ns per call.
fn cpu_per_call(op: &mut dyn FnMut(), budget: Duration) -> f64 {
    // Batches grow so that reading the clock stays far below 1 % of the time measured.
    let mut calls = 0u64;
    let start = thread_cpu_ns();
    let budget = budget.as_nanos() as u64;
    let mut batch = 1u64;
    loop {
        for _ in 0..batch {
            op();
        }
        calls += batch;
        let spent = thread_cpu_ns() - start;
        if spent >= budget {
            return spent as f64 / calls as f64;
        }
        batch = (batch * 2).min(4096);
    }
}

struct Contender<'a> {
    name: String,
    op: Box<dyn FnMut() + 'a>,
    samples: Vec<f64>,
}

fn contender<'a>(name: impl Into<String>, op: impl FnMut() + 'a) -> Contender<'a> {
    Contender {
        name: name.into(),
        op: Box::new(op),
        samples: Vec::new(),
    }
}

/// Interleaves the contenders, `rounds` times, each for `budget` of CPU per round: every
/// ratio is taken within a round, so a change of load between rounds cancels out.
fn interleave(contenders: &mut [Contender<'_>], rounds: usize, budget: Duration) {
    for contender in contenders.iter_mut() {
        cpu_per_call(&mut contender.op, budget / 4);
    }
    for round in 0..rounds {
        let n = contenders.len();
        for k in 0..n {
            let contender = &mut contenders[(round + k) % n];
            let per_call = cpu_per_call(&mut contender.op, budget);
            contender.samples.push(per_call);
        }
    }
}

fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&mut ratios)
}

/// The guard's own server CPU per request: `tools/call list_events` through the example's app
/// in process (no sockets, the response body read to its end), guarded with the token cached
/// and unguarded, interleaved on one current-thread runtime so that every task rmcp spawns
/// runs on the measuring thread and is counted in its CPU time. The guarded app is measured
/// twice: with no audit sink listening, and with the example's `MCP_OAUTH_AUDIT_LOG` sink
/// (`JsonLinesSink::non_blocking`) writing every event to `/dev/null` (its writer thread's
/// CPU is not counted here; its figure is criterion's `audit` group).
fn guard(args: &Args) {
    let rounds: usize = args.value("--rounds", 30);
    let budget = Duration::from_millis(args.value("--ms", 50));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(Issuer::start(AUDIENCE));
    let warm = rt.block_on(issuer.validator(true));
    let token = issuer.token(Alg::RS256);
    let identity = rt.block_on(warm.validate(&token)).expect("valid token");
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let sink = mcp_oauth::audit::JsonLinesSink::non_blocking(devnull).expect("audit sink");
    let sink = Arc::new(sink);
    let audited_sink = sink.clone();
    type App =
        tower::util::BoxCloneService<Request, axum::response::Response, std::convert::Infallible>;
    let apps: Vec<(&str, App)> = vec![
        ("unguarded", App::new(unguarded_app(identity))),
        ("guarded", App::new(guarded_app(&issuer, warm.clone()))),
        (
            "guarded, audited",
            App::new(guarded_app_with(&issuer, warm.clone(), move |builder| {
                builder.audit_sink(audited_sink)
            })),
        ),
        (
            "guarded, formatted",
            App::new(guarded_app_with(&issuer, warm.clone(), move |builder| {
                builder.audit_sink(FormatOnly::default())
            })),
        ),
    ];
    let body = tools_call(1);
    let mut contenders: Vec<Contender<'_>> = apps
        .into_iter()
        .map(|(name, app)| {
            let (rt, token, body) = (&rt, &token, &body);
            contender(name, move || {
                rt.block_on(call_list_events(&app, token, body))
            })
        })
        .collect();
    interleave(&mut contenders, rounds, budget);
    let samples = |name: &str| {
        contenders
            .iter()
            .find(|c| c.name == name)
            .expect("contender")
            .samples
            .clone()
    };
    let (unguarded, guarded, audited, formatted) = (
        samples("unguarded"),
        samples("guarded"),
        samples("guarded, audited"),
        samples("guarded, formatted"),
    );
    let diff = |a: &[f64], b: &[f64]| {
        let mut d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        median(&mut d)
    };
    let guard_ns = diff(&guarded, &unguarded);
    let audited_ns = diff(&audited, &unguarded);
    let ratio = median_ratio(&unguarded, &guarded);
    let audited_ratio = median_ratio(&unguarded, &audited);
    let formatted_ns = diff(&formatted, &unguarded);
    let formatted_ratio = median_ratio(&unguarded, &formatted);
    println!(
        "guard, in process: {rounds} rounds × {} ms of thread CPU per contender; medians of per-round values\n",
        budget.as_millis()
    );
    println!(
        "| tools/call list_events | CPU per request | the guard's own | unguarded ÷ guarded |"
    );
    println!("|---|---|---|---|");
    println!(
        "| unguarded | {:.2} µs | – | – |",
        median(&mut unguarded.clone()) / 1e3
    );
    println!(
        "| guarded, token cached, no audit sink | {:.2} µs | {:.2} µs | {ratio:.3}× |",
        median(&mut guarded.clone()) / 1e3,
        guard_ns / 1e3
    );
    println!(
        "| guarded, token cached, audit event built and its JSON line written (not handed off) | {:.2} µs | {:.2} µs | {formatted_ratio:.3}× |",
        median(&mut formatted.clone()) / 1e3,
        formatted_ns / 1e3
    );
    println!(
        "| guarded, token cached, audit to JSON lines (non-blocking) | {:.2} µs | {:.2} µs | {audited_ratio:.3}× |",
        median(&mut audited.clone()) / 1e3,
        audited_ns / 1e3
    );
    println!(
        "\nthe audit per request: {:.2} µs, of which building the event and writing its line {:.2} µs (medians of per-round differences)",
        diff(&audited, &guarded) / 1e3,
        diff(&formatted, &guarded) / 1e3
    );
    println!(
        "\naudit events dropped by the non-blocking sink: {}",
        sink.dropped()
    );
    write_report(
        "guard",
        &json!({
            "unguarded_ns": median(&mut unguarded.clone()),
            "guarded_ns": median(&mut guarded.clone()),
            "audited_ns": median(&mut audited.clone()),
            "formatted_ns": median(&mut formatted.clone()),
            "guard_ns": guard_ns, "guard_audited_ns": audited_ns,
            "guard_formatted_ns": formatted_ns,
            "audit_ns": diff(&audited, &guarded), "audit_formatted_ns": diff(&formatted, &guarded),
            "unguarded_over_guarded": ratio, "unguarded_over_audited": audited_ratio,
            "config": { "rounds": rounds, "budget_ms": budget.as_millis() as u64 },
        }),
    );
}

/// An audit sink that builds every event and writes its JSON line into a reused buffer, then
/// drops it: the audit's cost on the request without the hand-off to the writer thread.
#[derive(Default)]
struct FormatOnly(parking_lot::Mutex<Vec<u8>>);

impl mcp_oauth::audit::AuditSink for FormatOnly {
    fn record(&self, event: &mcp_oauth::audit::AuditEvent<'_>) {
        let mut line = self.0.lock();
        line.clear();
        event.write_json_line(&mut line);
        std::hint::black_box(&*line);
    }
}

/// One operation of the scaling runs, shared by the threads.
type ScalingOp<'a> = Box<dyn Fn() + Sync + 'a>;

fn paired(args: &Args) {
    use tower::ServiceExt;

    let rounds: usize = args.value("--rounds", 30);
    let budget = Duration::from_millis(args.value("--ms", 20));
    let rt = runtime(1);
    let issuer = rt.block_on(Issuer::start(AUDIENCE));
    let cold = rt.block_on(issuer.validator(false));
    let warm = rt.block_on(issuer.validator(true));
    let layer_cold = mcp_oauth_bench::mcp_layer(&issuer, cold.clone());
    #[cfg(feature = "peers")]
    let authorizer = rt.block_on(mcp_oauth_bench::peers::jwt_authorizer(&issuer));
    #[cfg(feature = "peers")]
    let tower_oauth2 = rt.block_on(mcp_oauth_bench::peers::tower_oauth2(&issuer));
    let mut report = serde_json::Map::new();
    println!(
        "paired, interleaved: {rounds} rounds × {} ms of thread CPU per contender; medians of per-round values\n",
        budget.as_millis()
    );
    println!(
        "| cold validation (thread CPU) | mcp-oauth | floor | jsonwebtoken | jwt-authorizer | ours ÷ floor | jsonwebtoken ÷ ours | jwt-authorizer ÷ ours | mcp-oauth layer | tower-oauth2 layer | theirs ÷ ours (layer) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for alg in Alg::ALL {
        let token = issuer.token(alg);
        let floor = mcp_oauth_bench::Floor::new(alg, issuer.key(alg), &token);
        let mut contenders = vec![
            contender("mcp-oauth", || {
                assert!(block_on(cold.validate(&token)).is_ok());
            }),
            contender("floor", || assert!(floor.verify())),
            contender("mcp-oauth-layer", || {
                let response =
                    block_on(layer_cold.clone().oneshot(mcp_oauth_bench::get_mcp(&token)));
                assert!(response.expect("infallible").status().is_success());
            }),
        ];
        #[cfg(feature = "peers")]
        {
            let jwt = mcp_oauth_bench::peers::JsonWebToken::new(&issuer, alg);
            let (authorizer, tower_oauth2, token) = (&authorizer, &tower_oauth2, &token);
            contenders.push(contender("jsonwebtoken", move || {
                assert!(jwt.decode(token).is_ok());
            }));
            contenders.push(contender("jwt-authorizer", move || {
                assert!(block_on(authorizer.check_auth(token)).is_ok());
            }));
            contenders.push(contender("tower-oauth2-layer", move || {
                let response = block_on(
                    tower_oauth2
                        .clone()
                        .oneshot(mcp_oauth_bench::get_mcp(token)),
                );
                assert!(response.expect("infallible").status().is_success());
            }));
        }
        interleave(&mut contenders, rounds, budget);
        let get = |name: &str| {
            contenders
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.samples.clone())
        };
        let ours = get("mcp-oauth").expect("ours");
        let floor = get("floor").expect("floor");
        let ours_layer = get("mcp-oauth-layer").expect("ours");
        let jwt = get("jsonwebtoken");
        let authorizer = get("jwt-authorizer");
        let tower_layer = get("tower-oauth2-layer");
        let med = |v: &Option<Vec<f64>>| v.as_ref().map(|v| median(&mut v.clone()));
        let fmt_us =
            |v: Option<f64>| v.map_or("–".to_owned(), |ns| format!("{:.2} µs", ns / 1e3));
        let fmt_r = |v: Option<f64>| v.map_or("–".to_owned(), |r| format!("{r:.3}×"));
        let over_floor = median_ratio(&ours, &floor);
        let jwt_ratio = jwt.as_ref().map(|j| median_ratio(j, &ours));
        let authorizer_ratio = authorizer.as_ref().map(|a| median_ratio(a, &ours));
        let layer_ratio = tower_layer.as_ref().map(|t| median_ratio(t, &ours_layer));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            alg.name(),
            fmt_us(med(&Some(ours.clone()))),
            fmt_us(med(&Some(floor.clone()))),
            fmt_us(med(&jwt)),
            fmt_us(med(&authorizer)),
            fmt_r(Some(over_floor)),
            fmt_r(jwt_ratio),
            fmt_r(authorizer_ratio),
            fmt_us(med(&Some(ours_layer.clone()))),
            fmt_us(med(&tower_layer)),
            fmt_r(layer_ratio),
        );
        report.insert(
            alg.name().to_owned(),
            json!({
                "mcp_oauth_ns": med(&Some(ours)), "floor_ns": med(&Some(floor)),
                "jsonwebtoken_ns": med(&jwt), "jwt_authorizer_ns": med(&authorizer),
                "mcp_oauth_layer_ns": med(&Some(ours_layer)), "tower_oauth2_layer_ns": med(&tower_layer),
                "over_floor": over_floor, "jsonwebtoken_over_ours": jwt_ratio,
                "jwt_authorizer_over_ours": authorizer_ratio, "tower_oauth2_over_ours_layer": layer_ratio,
            }),
        );
    }

    // The warm hit, on thread CPU too.
    let big = issuer.token_of_size(Alg::RS256, 1024);
    assert!(block_on(warm.validate(&big)).is_ok());
    let mut contenders = vec![contender("warm", || {
        assert!(block_on(warm.validate(&big)).is_ok());
    })];
    interleave(&mut contenders, rounds, budget);
    let hit = median(&mut contenders[0].samples);
    println!("\nwarm hit, 1 KiB token (thread CPU): {:.0} ns", hit);
    report.insert("warm_hit_ns".into(), json!(hit));

    // Scaling: the same cold validations on 1 thread, then on 2 threads at once. Wall time
    // per validation, and how much CPU the threads actually got (a loaded machine gives two
    // threads less than two cores, and the wall-time scaling then says more about the load).
    let token = issuer.token(Alg::RS256);
    let iterations: u64 = args.value("--scaling-iterations", 4000);
    let mut scaling = serde_json::Map::new();
    println!(
        "\n| RS256 cold, {iterations} validations per thread | 1 thread wall/op | 2 threads wall/op | scaling 2·t₁/t₂ | CPU per op, 1 thread | CPU per op, 2 threads | CPU scaling 2·c₁/c₂ | CPU share of the 2-thread run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    #[cfg_attr(not(feature = "peers"), allow(unused_mut))]
    let mut scaling_ops: Vec<(&str, ScalingOp<'_>)> = vec![(
        "mcp-oauth",
        Box::new(|| assert!(block_on(cold.validate(&token)).is_ok())),
    )];
    #[cfg(feature = "peers")]
    {
        let jwt = mcp_oauth_bench::peers::JsonWebToken::new(&issuer, Alg::RS256);
        let (authorizer, token) = (&authorizer, &token);
        scaling_ops.push((
            "jwt-authorizer",
            Box::new(move || assert!(block_on(authorizer.check_auth(token)).is_ok())),
        ));
        scaling_ops.push((
            "jsonwebtoken",
            Box::new(move || assert!(jwt.decode(token).is_ok())),
        ));
    }
    for (name, op) in &scaling_ops {
        let run = |threads: usize| -> (f64, f64) {
            let barrier = std::sync::Barrier::new(threads + 1);
            let cpu = std::sync::Mutex::new(0u64);
            let wall = std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        barrier.wait();
                        let start = thread_cpu_ns();
                        for _ in 0..iterations {
                            op();
                        }
                        *cpu.lock().expect("cpu") += thread_cpu_ns() - start;
                    });
                }
                barrier.wait();
                Instant::now()
            })
            .elapsed();
            let cpu = *cpu.lock().expect("cpu") as f64;
            (
                wall.as_nanos() as f64 / iterations as f64,
                cpu / (threads as f64 * iterations as f64),
            )
        };
        let mut walls1 = Vec::new();
        let mut walls2 = Vec::new();
        let mut cpus1 = Vec::new();
        let mut cpus2 = Vec::new();
        for _ in 0..5 {
            let (w1, c1) = run(1);
            let (w2, c2) = run(2);
            walls1.push(w1);
            walls2.push(w2);
            cpus1.push(c1);
            cpus2.push(c2);
        }
        let wall_scaling = 2.0 * median_ratio(&walls1, &walls2);
        let cpu_scaling = 2.0 * median_ratio(&cpus1, &cpus2);
        let (w1, w2) = (median(&mut walls1), median(&mut walls2));
        let (c1, c2) = (median(&mut cpus1), median(&mut cpus2));
        let share = 2.0 * c2 / (2.0 * w2);
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.2}× | {:.2} µs | {:.2} µs | {:.2}× | {:.0} % |",
            w1 / 1e3,
            w2 / 1e3,
            wall_scaling,
            c1 / 1e3,
            c2 / 1e3,
            cpu_scaling,
            share * 100.0
        );
        scaling.insert(
            (*name).to_owned(),
            json!({
                "wall_1t_ns": w1, "wall_2t_ns": w2, "wall_scaling": wall_scaling,
                "cpu_1t_ns": c1, "cpu_2t_ns": c2, "cpu_scaling": cpu_scaling, "cpu_share_2t": share,
            }),
        );
    }
    report.insert("scaling_RS256".into(), Value::Object(scaling));
    report.insert(
        "config".into(),
        json!({ "rounds": rounds, "budget_ms": budget.as_millis() as u64 }),
    );
    write_report("paired", &Value::Object(report));
}

/// A replay store for benchmarks: the real in-memory store, with each key salted by how many
/// times the pool of pre-signed proofs has been gone through, so that reusing the pool costs
/// what fresh proofs would (one set-if-absent in a growing table) without being a replay.
struct CyclingReplayStore {
    inner: mcp_oauth::dpop::InMemoryReplayStore,
    calls: std::sync::atomic::AtomicU64,
    pool: u64,
}

impl mcp_oauth::dpop::ReplayStore for CyclingReplayStore {
    fn remember(
        &self,
        mut key: [u8; 32],
        expires_at: u64,
        now: u64,
    ) -> mcp_oauth::dpop::ReplayFuture<'_> {
        let cycle = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            / self.pool;
        for (byte, salt) in key.iter_mut().zip(cycle.to_le_bytes()) {
            *byte ^= salt;
        }
        self.inner.remember(key, expires_at, now)
    }
}

/// DPoP's cost: a DPoP-bound token with a fresh ES256 proof per request through
/// `DpopVerifier::verify` (token cache off and on), against the bearer validation of a token
/// of the same size and against the two bare signature verifications (the token's and the
/// proof's, aws-lc-rs with pre-parsed keys). Paired and interleaved on thread CPU time.
fn dpop(args: &Args) {
    use mcp_oauth::dpop::{DpopConfig, DpopMode, DpopRequest, DpopVerifier, proof_algorithms};
    use mcp_oauth::testing::DpopKey;

    const POOL: usize = 2048;
    let rounds: usize = args.value("--rounds", 30);
    let budget = Duration::from_millis(args.value("--ms", 20));
    let rt = runtime(1);
    let issuer = rt.block_on(Issuer::start(AUDIENCE));
    let cold = rt.block_on(issuer.validator(false));
    let warm = rt.block_on(issuer.validator(true));
    let key = DpopKey::es256();
    let verifier = |pool: u64| {
        DpopVerifier::new(
            DpopMode::Required,
            proof_algorithms(["ES256"]).expect("ES256"),
            AUDIENCE,
            DpopConfig::default().replay_store(CyclingReplayStore {
                inner: mcp_oauth::dpop::InMemoryReplayStore::new(50_000_000),
                calls: std::sync::atomic::AtomicU64::new(0),
                pool,
            }),
        )
        .expect("verifier")
    };
    let mut report = serde_json::Map::new();
    println!(
        "dpop, paired and interleaved: {rounds} rounds × {} ms of thread CPU per contender; ES256 proofs\n",
        budget.as_millis()
    );
    println!(
        "| token alg | DPoP, cache off | DPoP, cache on | bearer, cache off | floor: token + proof | DPoP cold ÷ floors (≤ 1.15×) | DPoP cold ÷ bearer cold | DPoP warm ÷ proof floor |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for alg in [Alg::RS256, Alg::ES256] {
        let token = issuer
            .issuer
            .token()
            .key(issuer.key(alg))
            .scope(mcp_oauth_bench::SCOPES)
            .expires_in(mcp_oauth_bench::TOKEN_LIFETIME)
            .claim("cnf", json!({ "jkt": key.jkt() }))
            .sign();
        let bearer = issuer.token(alg);
        let proofs: Vec<String> = (0..POOL)
            .map(|_| key.proof("POST", AUDIENCE, Some(&token)))
            .collect();
        let (cold_verifier, warm_verifier) = (verifier(POOL as u64), verifier(POOL as u64));
        let verify = |verifier: &DpopVerifier, validator: &mcp_oauth::Validator, i: usize| {
            let proofs = [proofs[i % POOL].as_str()];
            let request = DpopRequest {
                method: "POST",
                path: "/mcp",
                access_token: &token,
                proofs: &proofs,
            };
            let result = block_on(verifier.verify(validator, request));
            assert!(result.is_ok(), "{result:?}");
        };
        if let Some(iterations) = args.string("--profile-warm") {
            // A fixed workload for perf: the warm DPoP path only.
            let iterations: usize = iterations.parse().expect("--profile-warm N");
            for i in 0..iterations {
                verify(&warm_verifier, &warm, i);
            }
            return;
        }
        let floor_token = mcp_oauth_bench::Floor::new(alg, issuer.key(alg), &token);
        // The proofs' floor goes through the same pool as the DPoP contenders (distinct
        // signatures and inputs, not one hot one).
        let floor_proofs: Vec<mcp_oauth_bench::Floor> = proofs
            .iter()
            .map(|proof| mcp_oauth_bench::Floor::new(Alg::ES256, key.signing_key(), proof))
            .collect();
        let floor_proof = &floor_proofs[0];
        assert!(floor_token.verify() && floor_proof.verify());
        let jwk = key.public_jwk();
        let coordinate = |name: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("coordinate"))
                .expect("base64url")
        };
        let ours_proof_key = mcp_oauth::crypto::VerifyingKey::new(
            mcp_oauth::crypto::Algorithm::ES256,
            mcp_oauth::crypto::PublicKeyMaterial::Ec {
                curve: mcp_oauth::crypto::Curve::P256,
                x: &coordinate("x"),
                y: &coordinate("y"),
            },
        )
        .expect("P-256 key");
        let (mut i_cold, mut i_warm, mut i_floor) = (0usize, 0usize, 0usize);
        let mut contenders = vec![
            contender("dpop-cold", || {
                verify(&cold_verifier, &cold, i_cold);
                i_cold += 1;
            }),
            contender("dpop-warm", || {
                verify(&warm_verifier, &warm, i_warm);
                i_warm += 1;
            }),
            contender("bearer-cold", || {
                assert!(block_on(cold.validate(&bearer)).is_ok());
            }),
            contender("floor-token", || assert!(floor_token.verify())),
            // The proof's signature through mcp-oauth's own verifying key: what the proof
            // check costs beyond the floor is then not the crypto's.
            contender("ours-proof-signature", || {
                assert!(
                    ours_proof_key
                        .verify(floor_proof.signing_input.as_bytes(), &floor_proof.signature)
                        .is_ok()
                )
            }),
            contender("floor-proof", || {
                assert!(floor_proofs[i_floor % POOL].verify());
                i_floor += 1;
            }),
        ];
        interleave(&mut contenders, rounds, budget);
        let samples = |name: &str| {
            contenders
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.samples.clone())
                .expect("contender")
        };
        let (dpop_cold, dpop_warm, bearer_cold) = (
            samples("dpop-cold"),
            samples("dpop-warm"),
            samples("bearer-cold"),
        );
        let floors: Vec<f64> = samples("floor-token")
            .iter()
            .zip(samples("floor-proof"))
            .map(|(t, p)| t + p)
            .collect();
        let over_floors = median_ratio(&dpop_cold, &floors);
        let over_bearer = median_ratio(&dpop_cold, &bearer_cold);
        let warm_over_proof = median_ratio(&dpop_warm, &samples("floor-proof"));
        let signature_over_floor =
            median_ratio(&samples("ours-proof-signature"), &samples("floor-proof"));
        println!(
            "  ({}: the proof's signature alone through mcp-oauth's key ÷ the floor's: {signature_over_floor:.3}×)",
            alg.name()
        );
        let us = |v: &[f64]| format!("{:.2} µs", median(&mut v.to_vec()) / 1e3);
        println!(
            "| {} | {} | {} | {} | {} | {over_floors:.3}× | {over_bearer:.3}× | {warm_over_proof:.3}× |",
            alg.name(),
            us(&dpop_cold),
            us(&dpop_warm),
            us(&bearer_cold),
            us(&floors),
        );
        report.insert(
            alg.name().to_owned(),
            json!({
                "dpop_cold_ns": median(&mut dpop_cold.clone()),
                "dpop_warm_ns": median(&mut dpop_warm.clone()),
                "bearer_cold_ns": median(&mut bearer_cold.clone()),
                "floors_ns": median(&mut floors.clone()),
                "over_floors": over_floors,
                "over_bearer": over_bearer,
                "warm_over_proof_floor": warm_over_proof,
            }),
        );
    }
    report.insert(
        "config".into(),
        json!({ "rounds": rounds, "budget_ms": budget.as_millis() as u64, "proof_alg": "ES256" }),
    );
    write_report("dpop", &Value::Object(report));
}

// ---------------------------------------------------------------------------------------------
// Shared state on Redis (issue 15)

/// The Redis server's counters, from one `INFO cpu stats commandstats`.
#[derive(Debug, Clone, Default)]
struct RedisCounters {
    /// `used_cpu_sys` + `used_cpu_user` (seconds): the whole server process.
    cpu_seconds: f64,
    /// Calls per command (`cmdstat_<name>:calls=`); commands a script runs are counted too.
    calls: BTreeMap<String, u64>,
    net_in: u64,
    net_out: u64,
}

impl RedisCounters {
    fn parse(info: &str) -> Self {
        let mut counters = Self::default();
        for line in info.lines() {
            let Some((name, value)) = line.trim().split_once(':') else {
                continue;
            };
            match name {
                "used_cpu_sys" | "used_cpu_user" => {
                    counters.cpu_seconds += value.parse::<f64>().unwrap_or(0.0);
                }
                "total_net_input_bytes" => counters.net_in = value.parse().unwrap_or(0),
                "total_net_output_bytes" => counters.net_out = value.parse().unwrap_or(0),
                _ => {
                    if let Some(command) = name.strip_prefix("cmdstat_") {
                        let calls = value
                            .split(',')
                            .find_map(|field| field.strip_prefix("calls="))
                            .and_then(|calls| calls.parse().ok())
                            .unwrap_or(0);
                        counters.calls.insert(command.to_owned(), calls);
                    }
                }
            }
        }
        counters
    }

    /// What the server did from `self` to `after` (the probe's own `INFO` left out).
    fn until(&self, after: &Self) -> RedisCounters {
        let calls = after
            .calls
            .iter()
            .filter(|(command, _)| command.as_str() != "info")
            .map(|(command, calls)| {
                let before = self.calls.get(command).copied().unwrap_or(0);
                (command.clone(), calls.saturating_sub(before))
            })
            .filter(|(_, calls)| *calls > 0)
            .collect();
        RedisCounters {
            cpu_seconds: after.cpu_seconds - self.cpu_seconds,
            calls,
            net_in: after.net_in.saturating_sub(self.net_in),
            net_out: after.net_out.saturating_sub(self.net_out),
        }
    }

    fn add(&mut self, other: &RedisCounters) {
        self.cpu_seconds += other.cpu_seconds;
        for (command, calls) in &other.calls {
            *self.calls.entry(command.clone()).or_default() += calls;
        }
        self.net_in += other.net_in;
        self.net_out += other.net_out;
    }

    /// Commands per operation, as JSON (`{"evalsha": 1.0, …}`).
    fn calls_per(&self, ops: u64) -> Value {
        let ops = ops.max(1) as f64;
        Value::Object(
            self.calls
                .iter()
                .map(|(command, calls)| (command.clone(), json!(*calls as f64 / ops)))
                .collect(),
        )
    }
}

/// A connection of the benchmark's own to the Redis server, for its counters and key sizes
/// (never used by the stores under test).
struct RedisProbe(redis::aio::MultiplexedConnection);

impl RedisProbe {
    async fn connect(url: &str) -> Self {
        let client = redis::Client::open(url).expect("a Redis URL");
        Self(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("a connection to Redis"),
        )
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> T {
        let mut connection = self.0.clone();
        command
            .query_async(&mut connection)
            .await
            .expect("Redis answers")
    }

    async fn counters(&self) -> RedisCounters {
        let info: String = self
            .query(
                redis::cmd("INFO")
                    .arg("cpu")
                    .arg("stats")
                    .arg("commandstats"),
            )
            .await;
        RedisCounters::parse(&info)
    }

    async fn info_field(&self, section: &str, field: &str) -> String {
        let info: String = self.query(redis::cmd("INFO").arg(section)).await;
        info.lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    }

    async fn used_memory(&self) -> u64 {
        self.info_field("memory", "used_memory")
            .await
            .parse()
            .expect("used_memory")
    }

    /// `MEMORY USAGE key SAMPLES 0`: the key, its value and the server's overhead for it.
    async fn memory_usage(&self, key: &str) -> Option<u64> {
        self.query(
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0),
        )
        .await
    }

    async fn dbsize(&self) -> u64 {
        self.query(&redis::cmd("DBSIZE")).await
    }

    async fn flushall(&self) {
        let () = self.query(&redis::cmd("FLUSHALL")).await;
    }
}

/// One operation the layer makes on its stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum StoreOp {
    /// The per-principal budget: `RateLimitStore::acquire`.
    Acquire,
    /// The failed-authentication gate for a request whose token verifies.
    GateSuccess,
    /// The failed-authentication gate for a failure.
    GateFailure,
    /// DPoP `jti` replay: `ReplayStore::remember`.
    Remember,
    /// `SessionBindings::check` for a session this replica has seen.
    SessionSeen,
    /// `SessionBindings::check` for a session made on another replica.
    SessionUnseen,
}

const STORE_OPS: [StoreOp; 6] = [
    StoreOp::Acquire,
    StoreOp::GateSuccess,
    StoreOp::GateFailure,
    StoreOp::Remember,
    StoreOp::SessionSeen,
    StoreOp::SessionUnseen,
];

impl StoreOp {
    fn key(self) -> &'static str {
        match self {
            StoreOp::Acquire => "acquire",
            StoreOp::GateSuccess => "gate_success",
            StoreOp::GateFailure => "gate_failure",
            StoreOp::Remember => "remember",
            StoreOp::SessionSeen => "session_seen",
            StoreOp::SessionUnseen => "session_unseen",
        }
    }

    fn label(self) -> &'static str {
        match self {
            StoreOp::Acquire => "per-principal acquire",
            StoreOp::GateSuccess => "failed-auth gate, token verifies",
            StoreOp::GateFailure => "failed-auth gate, failure",
            StoreOp::Remember => "DPoP replay remember",
            StoreOp::SessionSeen => "session check, seen here",
            StoreOp::SessionUnseen => "session check, made elsewhere",
        }
    }

    /// Whether the Redis store asks Redis for this operation.
    fn asks_redis(self) -> bool {
        matches!(
            self,
            StoreOp::Acquire | StoreOp::GateFailure | StoreOp::Remember | StoreOp::SessionUnseen
        )
    }

    /// The in-memory operation a Redis one is compared with: a session made on another
    /// replica is compared with the in-memory check of a known session (one replica alone
    /// knows every session it serves).
    fn baseline(self) -> StoreOp {
        match self {
            StoreOp::SessionUnseen => StoreOp::SessionSeen,
            other => other,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Backend {
    Memory,
    Redis,
}

/// The stores under test and what the operations are made on.
struct StoreBench {
    /// The replica whose operations are measured.
    redis: RedisState,
    /// Another replica of the same deployment (same prefix): makes the sessions the measured
    /// one has not seen.
    other_replica: RedisState,
    memory_limits: InMemoryRateLimitStore,
    memory_replay: InMemoryReplayStore,
    memory_sessions: InMemorySessionBindings,
    /// Large enough never to refuse, as in the end-to-end run.
    budget: Budget,
    /// Bucket keys of distinct principals (verified tokens of distinct subjects), in rotation.
    principals: Vec<RateLimitKey>,
    /// Failed-authentication bucket keys of distinct client addresses, in rotation.
    addresses: Vec<RateLimitKey>,
    owner: Principal,
    /// Sessions bound on both backends (the measured replica made them).
    seen: Vec<String>,
    proofs: AtomicU64,
    sessions: AtomicU64,
    salt: u64,
    /// The replay stores' clock at the start (Unix seconds).
    epoch: u64,
}

fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
}

/// A session id shaped like rmcp's (a UUID's 36 characters), distinct for each `n`.
fn session_id(n: u64, salt: u64) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest([n.to_le_bytes(), salt.to_le_bytes()].concat());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl StoreBench {
    fn limits(&self, backend: Backend) -> &dyn RateLimitStore {
        match backend {
            Backend::Memory => &self.memory_limits,
            Backend::Redis => &self.redis,
        }
    }

    fn replay(&self, backend: Backend) -> &dyn ReplayStore {
        match backend {
            Backend::Memory => &self.memory_replay,
            Backend::Redis => &self.redis,
        }
    }

    fn sessions(&self, backend: Backend) -> &dyn SessionBindings {
        match backend {
            Backend::Memory => &self.memory_sessions,
            Backend::Redis => &self.redis,
        }
    }

    /// A fresh proof id, and the clock the replay stores are given: 1,000 proofs per
    /// (simulated) second, each remembered as the layer remembers a proof issued now (until
    /// the default `iat` window is over: 301 s), so that the in-memory table holds a steady
    /// ≈ 300,000 ids (a server taking 1,000 DPoP requests a second) however long the run.
    /// Redis is given the same lifetime (plus its clock-skew margin).
    fn proof(&self) -> ([u8; 32], u64) {
        let n = self.proofs.fetch_add(1, Ordering::Relaxed);
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&n.to_le_bytes());
        key[8..16].copy_from_slice(&self.salt.to_le_bytes());
        (key, self.epoch + n / 1000)
    }

    fn fresh_sessions(&self, count: usize) -> Vec<String> {
        let first = self.sessions.fetch_add(count as u64, Ordering::Relaxed);
        (first..first + count as u64)
            .map(|n| session_id(n, self.salt))
            .collect()
    }

    /// One operation, as the layer makes it (the clock read included); panics on an
    /// unexpected answer.
    async fn one(&self, op: StoreOp, backend: Backend, i: usize, unseen: &[String]) {
        let now = unix_now();
        match op {
            StoreOp::Acquire => {
                let key = &self.principals[i % self.principals.len()];
                let decision = self.limits(backend).acquire(key, self.budget, now).await;
                assert_eq!(decision, RateDecision::Allowed);
            }
            StoreOp::GateSuccess | StoreOp::GateFailure => {
                let store = self.limits(backend);
                let key = &self.addresses[i % self.addresses.len()];
                let decision = store.reserve(key, self.budget, now).await;
                assert_eq!(decision, RateDecision::Allowed);
                store
                    .settle(key, self.budget, now, op == StoreOp::GateFailure)
                    .await;
            }
            StoreOp::Remember => {
                let (key, now) = self.proof();
                let until = now + mcp_oauth::dpop::DEFAULT_IAT_WINDOW.as_secs() + 1;
                let answer = self.replay(backend).remember(key, until, now).await;
                assert_eq!(answer, Ok(Freshness::Fresh));
            }
            StoreOp::SessionSeen => {
                let id = &self.seen[i % self.seen.len()];
                let check = self.sessions(backend).check(id, self.owner).await;
                assert_eq!(check, SessionCheck::Owner);
            }
            StoreOp::SessionUnseen => {
                assert_eq!(backend, Backend::Redis);
                let check = self.sessions(backend).check(&unseen[i], self.owner).await;
                assert_eq!(check, SessionCheck::Owner);
            }
        }
    }
}

/// Binds `ids` to the owner on the other replica (64 at a time): sessions the measured
/// replica has never seen.
async fn bind_on_other_replica(bench: &Arc<StoreBench>, ids: &Arc<Vec<String>>) {
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let (bench, ids) = (bench.clone(), ids.clone());
            tokio::spawn(async move {
                for i in (t..ids.len()).step_by(64) {
                    bench.other_replica.bind(&ids[i], bench.owner).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bind task");
    }
}

struct StoreBatch {
    wall: Duration,
    cpu_ns: u64,
    latencies_ns: Vec<u32>,
}

/// `ops` operations, `concurrency` at a time (tasks on this thread's runtime, whose Redis
/// commands are pipelined over the one multiplexed connection); per-operation latencies when
/// `record`.
async fn store_batch(
    bench: &Arc<StoreBench>,
    op: StoreOp,
    backend: Backend,
    concurrency: usize,
    ops: usize,
    unseen: &Arc<Vec<String>>,
    record: bool,
) -> StoreBatch {
    let cpu = thread_cpu_ns();
    let started = Instant::now();
    let mut latencies_ns = Vec::new();
    if concurrency <= 1 {
        if record {
            latencies_ns.reserve(ops);
        }
        for i in 0..ops {
            if record {
                let sent = Instant::now();
                bench.one(op, backend, i, unseen).await;
                latencies_ns.push(sent.elapsed().as_nanos().min(u32::MAX as u128) as u32);
            } else {
                bench.one(op, backend, i, unseen).await;
            }
        }
    } else {
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let (bench, unseen) = (bench.clone(), unseen.clone());
                tokio::spawn(async move {
                    let mut latencies_ns = Vec::new();
                    for i in (t..ops).step_by(concurrency) {
                        if record {
                            let sent = Instant::now();
                            bench.one(op, backend, i, &unseen).await;
                            latencies_ns
                                .push(sent.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                        } else {
                            bench.one(op, backend, i, &unseen).await;
                        }
                    }
                    latencies_ns
                })
            })
            .collect();
        for task in tasks {
            latencies_ns.extend(task.await.expect("operation task"));
        }
    }
    StoreBatch {
        wall: started.elapsed(),
        cpu_ns: thread_cpu_ns() - cpu,
        latencies_ns,
    }
}

/// Everything measured of one contender (operation, backend, concurrency) over the rounds.
#[derive(Clone, Default)]
struct StoreSamples {
    wall_ns: Vec<f64>,
    cpu_ns: Vec<f64>,
    redis_cpu_ns: Vec<f64>,
    ops_per_s: Vec<f64>,
    latencies_ns: Vec<u32>,
    redis: RedisCounters,
    ops: u64,
}

/// The sizes of the keys the stores write: `MEMORY USAGE` of one key of each kind, and the
/// growth of the server's `used_memory` per key over `count` keys of that kind (the keys'
/// share of the server's tables and expiry index included).
async fn key_memory(
    bench: &Arc<StoreBench>,
    probe: &RedisProbe,
    keys: &[RateLimitKey],
    count: usize,
) -> Value {
    // Budgets whose buckets live an hour (a bucket key expires once the bucket would be full).
    let hour = Budget::new(1, Duration::from_secs(3600));
    let now = unix_now();
    let prefix = REDIS_PREFIX;
    let mut report = serde_json::Map::new();
    probe.flushall().await;
    let count = count.min(keys.len().saturating_sub(1)).max(1);

    // One bucket key, then `count` more.
    assert_eq!(
        bench.redis.acquire(&keys[0], hour, now).await,
        RateDecision::Allowed
    );
    let bucket = format!("{prefix}rl:{}", keys[0]);
    let bucket_bytes = probe.memory_usage(&bucket).await;
    let before = probe.used_memory().await;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let bench = bench.clone();
            let keys: Vec<RateLimitKey> = keys[1..=count]
                .iter()
                .skip(t)
                .step_by(64)
                .copied()
                .collect();
            tokio::spawn(async move {
                for key in &keys {
                    let decision = bench.redis.acquire(key, hour, now).await;
                    assert_eq!(decision, RateDecision::Allowed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bucket task");
    }
    let buckets_growth = probe.used_memory().await as f64 - before as f64;
    report.insert(
        "bucket".into(),
        json!({
            "example_key": bucket, "memory_usage": bucket_bytes,
            "used_memory_per_key": buckets_growth / count as f64, "count": count,
        }),
    );

    // One replay key, then `count` more (remembered for an hour).
    let seconds = now.as_secs();
    let (key, _) = bench.proof();
    let answer = bench.redis.remember(key, seconds + 3600, seconds).await;
    assert_eq!(answer, Ok(Freshness::Fresh));
    let replay = format!("{prefix}dpop:jti:{}", hex(&key));
    let replay_bytes = probe.memory_usage(&replay).await;
    let before = probe.used_memory().await;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let bench = bench.clone();
            tokio::spawn(async move {
                for _ in (t..count).step_by(64) {
                    let (key, _) = bench.proof();
                    let answer = bench.redis.remember(key, seconds + 3600, seconds).await;
                    assert_eq!(answer, Ok(Freshness::Fresh));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("replay task");
    }
    let replay_growth = probe.used_memory().await as f64 - before as f64;
    report.insert(
        "replay".into(),
        json!({
            "example_key": replay, "memory_usage": replay_bytes,
            "used_memory_per_key": replay_growth / count as f64, "count": count,
        }),
    );

    // One session hash (the layer's binding: the principal's 32-byte digest), then `count`
    // more.
    let id = bench.fresh_sessions(1).remove(0);
    bench.redis.bind(&id, bench.owner).await;
    let session = {
        use sha2::Digest as _;
        format!(
            "{prefix}session:{}",
            hex(&sha2::Sha256::digest(id.as_bytes()))
        )
    };
    let session_bytes = probe.memory_usage(&session).await;
    let before = probe.used_memory().await;
    let ids = Arc::new(bench.fresh_sessions(count));
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let (bench, ids) = (bench.clone(), ids.clone());
            tokio::spawn(async move {
                for i in (t..ids.len()).step_by(64) {
                    bench.redis.bind(&ids[i], bench.owner).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("session task");
    }
    let session_growth = probe.used_memory().await as f64 - before as f64;
    report.insert(
        "session".into(),
        json!({
            "example_key": session, "memory_usage": session_bytes,
            "used_memory_per_key": session_growth / count as f64, "count": count,
        }),
    );
    let keys_held = probe.dbsize().await;
    assert_eq!(
        keys_held,
        3 * (count as u64 + 1),
        "every key written is held (an example key not found above means the key names changed)"
    );
    probe.flushall().await;
    Value::Object(report)
}

/// The key prefix of the benchmark's stores (the default one).
const REDIS_PREFIX: &str = "mcp-oauth:";

/// How long the benchmark's stores wait for Redis. A store that waited longer would mark
/// Redis unavailable and answer from its local share, and the figures would be the
/// fallback's: every measurement checks that this did not happen.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared state on Redis against the in-memory stores: each store operation the layer makes,
/// at concurrency 1 and 64, interleaved; the size of each kind of key; and end to end, the
/// example's server guarded with its stores on Redis against unguarded and against guarded
/// with the in-memory stores. Starts its own redis-server on a loopback port.
fn redis(args: &Args) {
    let only = args.string("--only");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(RedisServer::start())
        .expect("a redis-server on a loopback port");
    let url = server.url();
    // With `--only`, the other part of an earlier report is kept.
    let mut report = match &only {
        Some(_) => std::fs::read(report_dir().join("redis.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok())
            .unwrap_or_default(),
        None => serde_json::Map::new(),
    };
    {
        let probe = rt.block_on(RedisProbe::connect(&url));
        let version = rt.block_on(probe.info_field("server", "redis_version"));
        eprintln!("redis-server {version} on {url}");
        report.insert("redis_version".into(), json!(version));
        if only.as_deref() != Some("e2e") {
            let (stores, key_memory) = redis_stores(args, &rt, &url, &probe);
            report.insert("stores".into(), stores);
            report.insert("key_memory".into(), key_memory);
        }
    }
    // The stores' connections and tasks end with their runtime, before the end-to-end run.
    drop(rt);
    if only.as_deref() != Some("stores") {
        report.insert("e2e".into(), redis_e2e(args, &url));
    }
    write_report("redis", &Value::Object(report));
    drop(server);
}

fn redis_stores(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    url: &str,
    probe: &RedisProbe,
) -> (Value, Value) {
    const PRINCIPALS: usize = 1000;
    const ADDRESSES: usize = 256;
    const SEEN: usize = 1000;
    const CONCURRENCY: [usize; 2] = [1, 64];
    let rounds: usize = args.value("--rounds", 10);
    let ops: usize = args.value("--ops", 3000);
    let local_ops: usize = args.value("--local-ops", 100_000);
    let key_count: usize = args.value("--keys", 10_000);

    // Bucket keys of distinct principals: verified tokens of distinct subjects (EdDSA, the
    // cheapest to sign and verify).
    let issuer = rt.block_on(Issuer::start(AUDIENCE));
    let validator = rt.block_on(issuer.validator(false));
    let started = Instant::now();
    let identities: Vec<VerifiedToken> = (0..=key_count.max(PRINCIPALS))
        .map(|i| {
            let token = issuer.token_for(Alg::EdDSA, &format!("user-{i}"));
            rt.block_on(validator.validate(&token))
                .expect("valid token")
        })
        .collect();
    let principals: Vec<RateLimitKey> = identities
        .iter()
        .map(|identity| RateLimitKey::principal(identity, PrincipalKey::Subject))
        .collect();
    let owner = Principal::of(&identities[0]).expect("a subject");
    drop(identities);
    eprintln!(
        "{} principals in {:.1} s",
        principals.len(),
        started.elapsed().as_secs_f64()
    );
    let addresses: Vec<RateLimitKey> = (0..ADDRESSES)
        .map(|i| {
            RateLimitKey::failed_auth(std::net::IpAddr::from([10, 0, (i / 256) as u8, i as u8]))
        })
        .collect();

    let config = || {
        RedisConfig::new(url)
            .prefix(REDIS_PREFIX)
            .timeout(REDIS_TIMEOUT)
    };
    let (redis, other_replica) = rt.block_on(async {
        let redis = RedisState::connect(config()).expect("a Redis URL");
        let other = RedisState::connect(config()).expect("a Redis URL");
        let ready =
            redis.ready(Duration::from_secs(5)).await && other.ready(Duration::from_secs(5)).await;
        assert!(ready, "Redis answers");
        (redis, other)
    });
    let salt = unix_now().as_nanos() as u64;
    let seen: Vec<String> = (0..SEEN as u64).map(|n| session_id(n, salt)).collect();
    let bench = Arc::new(StoreBench {
        redis,
        other_replica,
        memory_limits: InMemoryRateLimitStore::default(),
        memory_replay: InMemoryReplayStore::default(),
        memory_sessions: InMemorySessionBindings::default(),
        budget: Budget::per_second(1_000_000),
        principals: principals[..PRINCIPALS].to_vec(),
        addresses,
        owner,
        seen,
        proofs: AtomicU64::new(0),
        sessions: AtomicU64::new(SEEN as u64),
        salt,
        epoch: unix_now().as_secs(),
    });

    let key_memory = rt.block_on(key_memory(&bench, probe, &principals, key_count));
    eprintln!("key sizes: {key_memory}");
    rt.block_on(async {
        for id in &bench.seen {
            bench.memory_sessions.bind(id, bench.owner).await;
            bench.redis.bind(id, bench.owner).await;
        }
    });

    let mut contenders = Vec::new();
    for concurrency in CONCURRENCY {
        for op in STORE_OPS {
            if op != StoreOp::SessionUnseen {
                contenders.push((op, Backend::Memory, concurrency));
            }
            contenders.push((op, Backend::Redis, concurrency));
        }
    }
    let count_of = |op: StoreOp, backend: Backend, concurrency: usize| {
        if backend == Backend::Redis && op.asks_redis() {
            if concurrency == 1 { ops } else { ops * 10 }
        } else {
            local_ops
        }
    };
    let run = |op: StoreOp, backend: Backend, concurrency: usize, count: usize| {
        rt.block_on(async {
            let unseen = if op == StoreOp::SessionUnseen {
                let ids = Arc::new(bench.fresh_sessions(count));
                bind_on_other_replica(&bench, &ids).await;
                ids
            } else {
                Arc::new(Vec::new())
            };
            let record = backend == Backend::Redis && op.asks_redis();
            let before = probe.counters().await;
            let batch = store_batch(&bench, op, backend, concurrency, count, &unseen, record).await;
            let after = probe.counters().await;
            assert!(
                bench.redis.is_available(),
                "Redis did not answer within {REDIS_TIMEOUT:?}: the store fell back to its local \
                 share, and the figures would be the fallback's"
            );
            (batch, before.until(&after))
        })
    };
    eprintln!(
        "stores: {rounds} rounds; per contender and round {ops} Redis round-trip operations at \
         concurrency 1, {} at 64, {local_ops} local ones",
        ops * 10
    );
    // Warm-up: every contender once (connections made, scripts loaded, tables grown).
    for &(op, backend, concurrency) in &contenders {
        run(
            op,
            backend,
            concurrency,
            count_of(op, backend, concurrency) / 10,
        );
    }
    let mut samples: HashMap<(StoreOp, Backend, usize), StoreSamples> = HashMap::new();
    let n = contenders.len();
    for round in 0..rounds {
        let started = Instant::now();
        for k in 0..n {
            let (op, backend, concurrency) = contenders[(round + k) % n];
            let count = count_of(op, backend, concurrency);
            let (batch, work) = run(op, backend, concurrency, count);
            let s = samples.entry((op, backend, concurrency)).or_default();
            let per_op = |ns: f64| ns / count as f64;
            s.wall_ns.push(per_op(batch.wall.as_nanos() as f64));
            s.cpu_ns.push(per_op(batch.cpu_ns as f64));
            s.redis_cpu_ns.push(per_op(work.cpu_seconds * 1e9));
            s.ops_per_s
                .push(count as f64 / batch.wall.as_secs_f64().max(1e-9));
            s.latencies_ns.extend(batch.latencies_ns);
            s.redis.add(&work);
            s.ops += count as u64;
        }
        eprintln!(
            "  round {}/{rounds}: {:.1} s",
            round + 1,
            started.elapsed().as_secs_f64()
        );
    }

    let mut report = serde_json::Map::new();
    for concurrency in CONCURRENCY {
        println!(
            "\nconcurrency {concurrency} | in-memory wall/op | Redis wall/op | Redis ÷ in-memory | Redis ops/s | Redis p50 / p99 | client CPU/op mem / Redis | Redis server CPU/op | Redis commands/op"
        );
        let mut by_op = serde_json::Map::new();
        for op in STORE_OPS {
            // The in-memory session check is the baseline of both session rows.
            let mut memory = samples
                .get(&(op.baseline(), Backend::Memory, concurrency))
                .cloned()
                .unwrap_or_default();
            let mut redis = samples
                .remove(&(op, Backend::Redis, concurrency))
                .unwrap_or_default();
            let ratio = median_ratio(&redis.wall_ns, &memory.wall_ns);
            let cpu_ratio = median_ratio(&redis.cpu_ns, &memory.cpu_ns);
            let mut extra: Vec<f64> = redis
                .wall_ns
                .iter()
                .zip(&memory.wall_ns)
                .map(|(r, m)| r - m)
                .collect();
            let extra = median(&mut extra);
            let memory_json = store_samples_json(&mut memory);
            let redis_json = store_samples_json(&mut redis);
            let us = |v: &Value| v.as_f64().map_or("–".to_owned(), |v| format!("{v:.2} µs"));
            println!(
                "{:<34} | {} | {} | {ratio:.1}× | {:.0} | {} / {} | {} / {} | {} | {}",
                op.label(),
                us(&memory_json["wall_us"]),
                us(&redis_json["wall_us"]),
                redis_json["ops_per_s"].as_f64().unwrap_or(f64::NAN),
                us(&redis_json["p50_us"]),
                us(&redis_json["p99_us"]),
                us(&memory_json["client_cpu_us"]),
                us(&redis_json["client_cpu_us"]),
                us(&redis_json["redis_cpu_us"]),
                redis_json["calls_per_op"],
            );
            by_op.insert(
                op.key().to_owned(),
                json!({
                    "memory": memory_json, "redis": redis_json,
                    "baseline": op.baseline().key(), "asks_redis": op.asks_redis(),
                    "redis_over_memory": ratio, "redis_over_memory_client_cpu": cpu_ratio,
                    "redis_minus_memory_us": extra / 1e3,
                }),
            );
        }
        report.insert(format!("c{concurrency}"), Value::Object(by_op));
    }
    report.insert(
        "config".into(),
        json!({
            "rounds": rounds, "ops_c1": ops, "ops_c64": ops * 10, "local_ops": local_ops,
            "principals": PRINCIPALS, "addresses": ADDRESSES, "seen_sessions": SEEN,
            "budget": "Budget::per_second(1_000_000)", "timeout_ms": REDIS_TIMEOUT.as_millis() as u64,
        }),
    );
    (Value::Object(report), key_memory)
}

fn store_samples_json(s: &mut StoreSamples) -> Value {
    s.latencies_ns.sort_unstable();
    let latency = |p: f64| {
        if s.latencies_ns.is_empty() {
            Value::Null
        } else {
            json!(percentile(&s.latencies_ns, p) / 1e3)
        }
    };
    let ops = s.ops.max(1) as f64;
    json!({
        "wall_us": median(&mut s.wall_ns.clone()) / 1e3,
        "client_cpu_us": median(&mut s.cpu_ns.clone()) / 1e3,
        "redis_cpu_us": median(&mut s.redis_cpu_ns.clone()) / 1e3,
        "ops_per_s": median(&mut s.ops_per_s.clone()),
        "p50_us": latency(50.0),
        "p99_us": latency(99.0),
        "calls_per_op": s.redis.calls_per(s.ops),
        "net_bytes_in_per_op": s.redis.net_in as f64 / ops,
        "net_bytes_out_per_op": s.redis.net_out as f64 / ops,
        "ops": s.ops,
    })
}

/// End to end with the stores on Redis: the example's server guarded with
/// `.shared_state(redis)` and a per-principal budget that never refuses, against the same
/// layer with the in-memory stores and against unguarded; rounds interleaved.
fn redis_e2e(args: &Args, url: &str) -> Value {
    let concurrency: usize = args.value("--concurrency", 16);
    let seconds: f64 = args.value("--seconds", 5.0);
    let rounds: usize = args.value("--e2e-rounds", 5);
    let token_count: usize = args.value("--tokens", 1000);
    let server = named_runtime(1, "server");
    let client = named_runtime(1, "client");
    let issuer = server.block_on(Issuer::start(AUDIENCE));
    let tokens = Arc::new(mint(&issuer, token_count));
    let budget = Budget::per_second(1_000_000);
    let (variants, state) = server.block_on(async {
        let state = RedisState::connect(
            RedisConfig::new(url)
                .prefix(REDIS_PREFIX)
                .timeout(REDIS_TIMEOUT),
        )
        .expect("a Redis URL");
        assert!(state.ready(Duration::from_secs(5)).await, "Redis answers");
        let identity = issuer
            .validator(false)
            .await
            .validate(&tokens[0])
            .await
            .expect("valid token");
        let limits = || RateLimits::default().per_principal(budget);
        let unguarded = serve(unguarded_app(identity), true).await;
        let memory = guarded_app_with(&issuer, issuer.validator(true).await, |builder| {
            builder.rate_limits(limits())
        });
        let memory = serve(memory, true).await;
        let shared = {
            let state = state.clone();
            guarded_app_with(&issuer, issuer.validator(true).await, move |builder| {
                builder.rate_limits(limits()).shared_state(state)
            })
        };
        let shared = serve(shared, true).await;
        (
            [
                ("unguarded", "unguarded", unguarded),
                ("guarded_memory", "guarded, in-memory stores", memory),
                ("guarded_redis", "guarded, stores on Redis", shared),
            ],
            state,
        )
    });
    let no_headers = Arc::new(Vec::new());
    let body = tools_call(1);
    let load_for = |addr: SocketAddr, duration: Duration, limit: u64| {
        client.block_on(load(
            addr,
            tokens.clone(),
            concurrency,
            duration,
            limit,
            no_headers.clone(),
            body.clone(),
            "Stand-up",
        ))
    };
    eprintln!(
        "e2e with Redis: tools/call list_events, {concurrency} connections, {rounds} rounds of \
         {seconds} s per variant, {token_count} distinct tokens (as many principals), server and \
         client on 1 thread each"
    );
    for (_, label, addr) in variants {
        let warm = load_for(addr, Duration::from_secs(60), ONCE);
        assert_eq!(warm.errors, 0, "{label}: warm-up errors");
        load_for(addr, Duration::from_secs(1), u64::MAX);
    }
    let probe = client.block_on(RedisProbe::connect(url));
    let n = variants.len();
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut server_cpu = vec![0.0f64; n];
    let mut requests = vec![0u64; n];
    let mut work: Vec<RedisCounters> = vec![RedisCounters::default(); n];
    let mut over_unguarded: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut over_memory: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut errors = 0;
    for round in 0..rounds {
        let mut this_round = vec![0.0; n];
        for step in 0..n {
            let i = (round + step) % n;
            let (_, label, addr) = variants[i];
            let cpu_before = cpu_seconds("server");
            let before = client.block_on(probe.counters());
            let result = load_for(addr, Duration::from_secs_f64(seconds), u64::MAX);
            let after = client.block_on(probe.counters());
            server_cpu[i] += cpu_seconds("server") - cpu_before;
            assert!(
                state.is_available(),
                "Redis did not answer within {REDIS_TIMEOUT:?}: the layer fell back to local \
                 shares, and the figures would be the fallback's"
            );
            work[i].add(&before.until(&after));
            requests[i] += result.ok;
            errors += result.errors;
            let r = result.ok as f64 / result.seconds;
            eprintln!(
                "  round {} {label:<26} {r:>8.0} req/s ({} ok, {} errors)",
                round + 1,
                result.ok,
                result.errors
            );
            this_round[i] = r;
            rps[i].push(r);
            latencies[i].extend(result.latencies_us);
        }
        for i in 0..n {
            over_unguarded[i].push(this_round[i] / this_round[0]);
            over_memory[i].push(this_round[i] / this_round[1]);
        }
    }
    let cpu_per_request: Vec<f64> = (0..n)
        .map(|i| server_cpu[i] * 1e6 / requests[i].max(1) as f64)
        .collect();
    let redis_per_request: Vec<f64> = (0..n)
        .map(|i| work[i].cpu_seconds * 1e6 / requests[i].max(1) as f64)
        .collect();
    println!(
        "\n{:<26} {:>8} {:>8} {:>8} {:>12} {:>13} {:>15} {:>15} {:>15}",
        "e2e, stores on Redis",
        "req/s",
        "p50 µs",
        "p99 µs",
        "÷ unguarded",
        "÷ in-memory",
        "server CPU/req",
        "Redis CPU/req",
        "Redis cmds/req"
    );
    let mut report = serde_json::Map::new();
    for (i, (key, label, _)) in variants.iter().enumerate() {
        let mut sorted = std::mem::take(&mut latencies[i]);
        sorted.sort_unstable();
        let (p50, p99) = (percentile(&sorted, 50.0), percentile(&sorted, 99.0));
        let median_rps = median(&mut rps[i].clone());
        let vs_unguarded = median(&mut over_unguarded[i]);
        let vs_memory = median(&mut over_memory[i]);
        let calls = work[i].calls_per(requests[i]);
        println!(
            "{label:<26} {median_rps:>8.0} {p50:>8.0} {p99:>8.0} {vs_unguarded:>11.3}× {vs_memory:>12.3}× {:>12.1} µs {:>12.2} µs {:>15}",
            cpu_per_request[i], redis_per_request[i], calls
        );
        report.insert(
            (*key).to_owned(),
            json!({
                "label": label, "rps": median_rps, "rps_rounds": rps[i], "p50_us": p50, "p99_us": p99,
                "over_unguarded": vs_unguarded, "over_memory": vs_memory,
                "server_cpu_us_per_request": cpu_per_request[i],
                "redis_cpu_us_per_request": redis_per_request[i],
                "cpu_ratio": cpu_per_request[0] / cpu_per_request[i],
                "cpu_ratio_vs_memory": cpu_per_request[1] / cpu_per_request[i],
                "cpu_ratio_with_redis": (cpu_per_request[0] + redis_per_request[0])
                    / (cpu_per_request[i] + redis_per_request[i]),
                "redis_calls_per_request": calls,
                "redis_net_bytes_per_request":
                    (work[i].net_in + work[i].net_out) as f64 / requests[i].max(1) as f64,
            }),
        );
    }
    println!(
        "(÷: medians over rounds of the per-round req/s ratios; server CPU/req: the server \
         thread's CPU time per request; Redis CPU/req: the redis-server process's, from INFO)"
    );
    report.insert(
        "config".into(),
        json!({
            "concurrency": concurrency, "seconds": seconds, "rounds": rounds, "tokens": token_count,
            "token_bytes": tokens[0].len(), "server_threads": 1, "client_threads": 1,
            "errors": errors, "budget": "RateLimits::default().per_principal(Budget::per_second(1_000_000))",
            "timeout_ms": REDIS_TIMEOUT.as_millis() as u64,
        }),
    );
    drop(state);
    assert_eq!(errors, 0, "requests failed");
    Value::Object(report)
}
