//! Helpers of the adversarial tests (`attacks`, `key_set_faults`, `soak`): a tokio runtime
//! that outlives any one test (for issuers shared by several tests), the calendar example
//! pointed at a [`TestIssuer`] through the environment, raw HTTP, resident memory.
//!
//! Included with `#[path = "support/harness.rs"] mod harness;` next to `mod support;`.

#![allow(dead_code)] // each test crate uses a different subset

use std::future::Future;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use mcp_oauth::testing::TestIssuer;
use serde_json::{Value, json};

use crate::support::{Running, example_command, free_port};

/// The stateless protocol version (SEP-2567: no sessions, per-request `_meta`).
pub const STATELESS_VERSION: &str = "2026-07-28";

// ---------------------------------------------------------------------------------------
// A runtime for things several tests share.

/// A multi-threaded runtime that lives as long as the test binary: servers started on it
/// (issuers, sinks) outlive the `#[tokio::test]` runtime of whichever test started them.
static BACKGROUND: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("shared-servers")
        .enable_all()
        .build()
        .expect("a background runtime")
});

/// Runs `future` to completion on the background runtime, from any thread (also from inside
/// another runtime: the caller's thread blocks until it is done, as a `LazyLock`
/// initializer does anyway).
pub fn on_background<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || BACKGROUND.block_on(future))
        .join()
        .expect("the background task panicked")
}

// ---------------------------------------------------------------------------------------
// Processes.

/// Makes sure the process `pid` dies when this test binary exits, however it exits: a
/// `sh` watcher blocks reading its stdin, a pipe whose only writer is this process, and
/// kills `pid` at end of file. For children kept in statics, which are never dropped.
pub fn kill_on_exit(pid: u32) {
    static WATCHERS: Mutex<Vec<Child>> = Mutex::new(Vec::new());
    let watcher = Command::new("sh")
        .arg("-c")
        .arg(format!("cat >/dev/null; kill -9 {pid} 2>/dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a sh watcher");
    // Keep the watcher (and its stdin's write end) for the life of this process.
    WATCHERS.lock().unwrap().push(watcher);
}

/// The resident memory (`VmRSS`) of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// The calendar example configured through the environment only, against an external
/// issuer; its logs at `rust_log` go to its stderr, which [`Running`] collects.
pub struct Calendar {
    pub process: Running,
    pub pid: u32,
    /// `http://127.0.0.1:PORT/mcp`
    pub resource: String,
    /// The path-inserted metadata URL challenges must name.
    pub metadata_url: String,
}

/// A free port and the resource URL of a calendar that will listen on it: start the issuer
/// with this audience, then [`start_calendar`].
pub fn calendar_resource() -> String {
    format!("http://127.0.0.1:{}/mcp", free_port())
}

/// Starts the calendar example for `resource` with `issuer` as its external authorization
/// server (`MCP_OAUTH_ISSUER`, `MCP_OAUTH_ISSUER_JWKS_URI`) and `RUST_LOG=rust_log`.
pub fn start_calendar(resource: &str, issuer: &TestIssuer, rust_log: &str) -> Calendar {
    start_calendar_with(resource, issuer, rust_log, &[])
}

/// [`start_calendar`] with extra environment variables.
pub fn start_calendar_with(
    resource: &str,
    issuer: &TestIssuer,
    rust_log: &str,
    env: &[(&str, &str)],
) -> Calendar {
    let mut command = example_command("calendar");
    command.envs(env.iter().copied());
    command
        .env("MCP_OAUTH_RESOURCE", resource)
        .env("MCP_OAUTH_ISSUER", issuer.issuer())
        .env("MCP_OAUTH_ISSUER_JWKS_URI", issuer.jwks_uri())
        .env("RUST_LOG", rust_log)
        .env("RUST_BACKTRACE", "1");
    let process = Running::start_example("calendar", command);
    let metadata_url = process.banner_value("metadata:");
    let pid = process.pid();
    Calendar {
        process,
        pid,
        resource: resource.to_owned(),
        metadata_url,
    }
}

// ---------------------------------------------------------------------------------------
// HTTP.

/// Sorted `(name, value)` pairs, to compare with [`Reply::challenge`](crate::support::Reply::challenge).
pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    params.sort();
    params
}

/// A JSON-RPC `tools/call` of `tool`. For the stateless version the request carries the
/// per-request `_meta` (protocol version, client capabilities and info).
pub fn tool_call(id: u64, tool: &str, arguments: Value, version: &str) -> Value {
    let mut params = json!({ "name": tool, "arguments": arguments });
    if version >= STATELESS_VERSION {
        params["_meta"] = request_meta(version);
    }
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params })
}

/// The per-request `_meta` of SEP-2567 requests.
pub fn request_meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "attacks", "version": "1" },
    })
}

/// An `initialize` request for a legacy version.
pub fn initialize_message(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "attacks", "version": "1" },
        },
    })
}

/// Sends raw bytes to `addr` and reads what comes back until the peer closes or `timeout`
/// passes; the writing and the reading run concurrently, and a write error (the server
/// refusing the rest of a large body) ends the writing, not the exchange.
pub async fn raw_exchange(
    addr: &str,
    head: Vec<u8>,
    body: impl FnMut(usize) -> Option<Vec<u8>> + Send + 'static,
    timeout: Duration,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut reader, mut writer) = stream.into_split();
    let mut body = body;
    let writing = tokio::spawn(async move {
        if writer.write_all(&head).await.is_err() {
            return;
        }
        let mut index = 0;
        while let Some(chunk) = body(index) {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
            index += 1;
        }
        let _ = writer.flush().await;
        // Keep the write half open: closing it could end the exchange early.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(writer);
    });
    let mut received = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, reader.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                received.extend_from_slice(&buffer[..n]);
                if complete_response(&received) {
                    break;
                }
            }
        }
    }
    writing.abort();
    received
}

/// Whether `bytes` hold a whole HTTP/1.1 response with a `Content-Length` body.
fn complete_response(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|length| bytes.len() >= end + 4 + length)
}

/// The status code of a raw HTTP/1.1 response.
pub fn raw_status(response: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(response);
    let line = text.lines().next()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Writes a line to stderr immediately (test output the harness shows with `--nocapture`).
pub fn report(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
