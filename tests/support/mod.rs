//! Helpers shared by the tests that run the examples as processes (`mod support;`).
//!
//! The example binaries are the ones `cargo test` (or `cargo build --examples`) left next to
//! the test binary, in `target/<profile>/examples/`. Every child process is time-boxed and
//! killed when its guard is dropped, so a hang fails the test instead of hanging CI.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// How long a server may take to print `ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process that should stop by itself may run.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The path of an example binary built for the profile of this test binary
/// (`target/<profile>/deps/<test>` → `target/<profile>/examples/<name>`).
///
/// Panics with instructions if it is missing, or if it is older than the sources it is built
/// from (`cargo test --test <name>` does not rebuild examples, `cargo test` does).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()));
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let Ok(built) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
        panic!(
            "the example binary {} is missing: run `cargo build --examples` (or a plain \
             `cargo test`, which builds the examples) before `cargo test --test …`",
            path.display()
        );
    };
    if let Some((source, changed)) = newest_dependency(&path) {
        assert!(
            changed <= built,
            "the example binary {} is older than {}: run `cargo build --examples` (`cargo test \
             --test …` does not rebuild examples; a plain `cargo test` does)",
            path.display(),
            source.display()
        );
    }
    path
}

/// The most recently modified source file the binary was built from, per the dep-info file
/// cargo writes next to it (`<binary>.d`: `<binary>: <source> <source> …`, spaces in paths
/// escaped with `\`). `None` if there is no such file.
fn newest_dependency(binary: &Path) -> Option<(PathBuf, SystemTime)> {
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let first = dep_info.replace("\\\n", " ");
    let first = first.lines().next()?;
    let (_, deps) = first.split_once(": ")?;
    let mut newest: Option<(PathBuf, SystemTime)> = None;
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    let mut paths = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap()),
            ' ' => paths.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    paths.push(current);
    for path in paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
    {
        if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified())
            && newest.as_ref().is_none_or(|(_, t)| modified > *t)
        {
            newest = Some((path, modified));
        }
    }
    newest
}

/// A command for an example binary with every `MCP_OAUTH_*` variable of this process removed,
/// and stdin closed.
pub fn example_command(name: &str) -> Command {
    let mut command = Command::new(example_binary(name));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MCP_OAUTH_") {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// A free port on 127.0.0.1 for a child process to bind. Taken below Linux's ephemeral
/// range (32768-60999), which the kernel hands to every `bind(:0)` (test issuers, clients):
/// a port picked there and released could be handed to another test's server before the
/// child binds it. Below it only this allocator hands ports out: a per-process sequence from
/// a pid-dependent start, each checked to be bindable.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % COUNT;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Collects a child's output stream on a thread; lines are also sent down a channel.
struct Collector {
    text: Arc<Mutex<String>>,
}

impl Collector {
    fn spawn(stream: impl Read + Send + 'static, lines: Option<mpsc::Sender<String>>) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        sink.lock().unwrap().push_str(&line);
                        if let Some(tx) = &lines {
                            let _ = tx.send(line.trim_end().to_owned());
                        }
                    }
                }
            }
        });
        Self { text }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }
}

/// A running child process, killed when dropped.
pub struct Running {
    name: String,
    child: Child,
    stdout: Collector,
    stderr: Collector,
    lines: Receiver<String>,
    /// The stdout lines read by [`Running::wait_for_line`] so far.
    pub banner: Vec<String>,
}

impl Running {
    /// Spawns `command` with piped stdout and stderr.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = Collector::spawn(child.stdout.take().expect("piped stdout"), Some(tx));
        let stderr = Collector::spawn(child.stderr.take().expect("piped stderr"), None);
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            lines,
            banner: Vec::new(),
        }
    }

    /// Starts an example and waits until it prints `ready`.
    pub fn start_example(name: &str, command: Command) -> Self {
        Self::start_example_until(name, command, |line| line == "ready")
    }

    /// Starts an example and waits until it prints a line that `ready` accepts.
    pub fn start_example_until(name: &str, command: Command, ready: impl Fn(&str) -> bool) -> Self {
        let mut running = Self::spawn(name, command);
        running.wait_for_line(ready, READY_TIMEOUT);
        running
    }

    /// Reads stdout lines (kept in `banner`) until one matches; panics with the output so far
    /// if the process exits first or the time is up.
    pub fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.banner.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "{} printed no expected line within {timeout:?}\n{}",
                        self.name,
                        self.output()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_timeout(&mut self.child, Duration::from_secs(5));
                    panic!(
                        "{} stopped before printing the expected line ({status:?})\n{}",
                        self.name,
                        self.output()
                    );
                }
            }
        }
    }

    /// The value of the first banner line that starts (after indentation) with `label`.
    pub fn banner_value(&self, label: &str) -> String {
        self.banner
            .iter()
            .find_map(|line| {
                line.trim_start()
                    .strip_prefix(label)
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} printed no `{label}` line:\n{}",
                    self.name,
                    self.banner.join("\n")
                )
            })
    }

    /// Everything the process printed so far, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.stdout.text(),
            self.name,
            self.stderr.text()
        )
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits for the process to exit by itself (killing it after `timeout`), then returns its
    /// status, stdout and stderr.
    pub fn wait_for_exit(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let status = wait_timeout(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "{} did not exit within {timeout:?}\n{}",
                self.name,
                self.output()
            )
        });
        // The collector threads finish at end of stream; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && Arc::strong_count(&self.stderr.text) > 1 {
            thread::sleep(Duration::from_millis(10));
        }
        while Instant::now() < deadline && Arc::strong_count(&self.stdout.text) > 1 {
            thread::sleep(Duration::from_millis(10));
        }
        (status, self.stdout.text(), self.stderr.text())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits up to `timeout` for the child to exit; kills it (and returns `None`) otherwise.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Starts the calendar example with the embedded dev authorization server on a free port.
pub fn start_calendar_with_dev_server() -> (Running, String) {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut command = example_command("calendar");
    command.env("MCP_OAUTH_RESOURCE", &resource);
    (Running::start_example("calendar", command), resource)
}

/// The name of a Node.js tool on this platform (`npm` is `npm.cmd` on Windows).
pub fn node_tool(name: &str) -> String {
    if cfg!(windows) && name == "npm" {
        "npm.cmd".to_owned()
    } else {
        name.to_owned()
    }
}

/// Panics with a clear message unless `name --version` runs (`node`, `npm`): the interop tests
/// fail, never skip, without Node.js, so that CI cannot silently lose them.
pub fn require_node_tool(name: &str) {
    match Command::new(node_tool(name)).arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`{name} --version` failed ({}): these interop tests need Node.js 20+ and npm on PATH\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run `{name}` ({error}): these interop tests need Node.js 20+ and npm on PATH \
             (they fail rather than skip, so that CI cannot silently lose them)"
        ),
    }
}

/// How long `npm ci` may take.
pub const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

/// Installs the pinned packages of the Node.js project in `dir` with `npm ci`, once per test
/// process and directory, then returns a shared lock on its `package-lock.json` to hold while
/// node runs from `dir`.
///
/// `npm ci` runs under an exclusive lock on the same file, so that it never replaces a
/// `node_modules` that another test (of this process or another one) is using. Panics with
/// npm's output if the install fails, and if node or npm is missing.
pub fn npm_installed(dir: &Path) -> std::fs::File {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    type Install = Arc<OnceLock<Result<(), String>>>;
    static INSTALLS: OnceLock<Mutex<HashMap<PathBuf, Install>>> = OnceLock::new();
    let lock_path = dir.join("package-lock.json");
    let open = || {
        std::fs::File::open(&lock_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()))
    };
    // One install per directory; installs of different directories run in parallel.
    let install = INSTALLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(dir.to_owned())
        .or_default()
        .clone();
    let result = install.get_or_init(|| {
        require_node_tool("node");
        require_node_tool("npm");
        let lock = open();
        lock.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        let mut command = Command::new(node_tool("npm"));
        command
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdin(Stdio::null());
        let (status, stdout, stderr) =
            Running::spawn("npm ci", command).wait_for_exit(NPM_CI_TIMEOUT);
        drop(lock);
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`npm ci` in {} failed ({status})\n{stdout}\n{stderr}",
                dir.display()
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
    let lock = open();
    lock.lock_shared()
        .unwrap_or_else(|e| panic!("a shared lock on {}: {e}", lock_path.display()));
    lock
}

/// Runs `node <script> <args>` in `dir` (its npm packages installed first, see
/// [`npm_installed`]) with `env`, for at most `timeout`; asserts it succeeds and returns its
/// JSON summary, the last non-empty line it printed.
pub fn run_node_script(
    dir: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Value {
    let _installed = npm_installed(dir);
    let mut command = Command::new(node_tool("node"));
    command
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let (status, stdout, stderr) =
        Running::spawn(&format!("node {script}"), command).wait_for_exit(timeout);
    assert!(
        status.success(),
        "node {script} {args:?} failed ({status})\nstdout: {stdout}\nstderr: {stderr}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("node {script} printed nothing\nstderr: {stderr}"));
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("node {script}: not a JSON summary ({e}): {line}"))
}

/// The protected-resource metadata URL of `resource` (RFC 9728 §3.1: the well-known path
/// inserted before the resource's path), computed here, apart from the library's.
pub fn metadata_url(resource: &str) -> String {
    let url = url::Url::parse(resource).unwrap();
    format!(
        "{}/.well-known/oauth-protected-resource{}",
        url.origin().ascii_serialization(),
        url.path()
    )
}

impl Running {
    /// The process id of the child (for `/proc/<pid>/…`, and for `harness::kill_on_exit`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

// ---------------------------------------------------------------------------------------
// HTTP.

/// An HTTP client for loopback tests: no proxy, bounded in time.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON body, or the JSON-RPC message of an SSE body (its first non-empty `data:`).
    pub fn json(&self) -> Value {
        let is_sse = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let text = if is_sse {
            self.body
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim)
                .find(|data| !data.is_empty())
                .unwrap_or_else(|| panic!("no data in the event stream: {:?}", self.body))
        } else {
            self.body.as_str()
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
    }

    /// The parameters of the `WWW-Authenticate` challenge, parsed by
    /// [`mcp_oauth::challenge::parse`], sorted by name.
    pub fn challenge(&self) -> Vec<(String, String)> {
        let header = self
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("no WWW-Authenticate: {}", self.describe()));
        let mut params = mcp_oauth::challenge::parse(header)
            .unwrap_or_else(|| panic!("not a well-formed Bearer challenge: {header:?}"));
        params.sort();
        params
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {:?} {}",
            self.status,
            self.header("www-authenticate"),
            self.body.chars().take(600).collect::<String>()
        )
    }
}
