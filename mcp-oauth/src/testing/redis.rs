//! A real Redis server for tests (features `testing` and `redis`): `redis-server` from the
//! `PATH` (Debian: `apt-get install -y redis-server`), on a free loopback port, without
//! persistence, killed when dropped. It can be stopped and started again on the same port,
//! and paused, to test what a deployment does when its Redis goes away or turns slow.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use parking_lot::Mutex;

/// A `redis-server` child process on 127.0.0.1; see the [module docs](self).
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use mcp_oauth::testing::RedisServer;
///
/// let redis = RedisServer::start().await?;
/// let url = redis.url(); // redis://127.0.0.1:<port>/
/// redis.stop();           // an outage...
/// redis.restart().await?; // ...and the same server back, empty
/// # drop(url);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING` (at most 10 s).
    pub async fn start() -> io::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let server = Self {
            port,
            child: Mutex::new(None),
        };
        server.restart().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (an outage: connections drop, new ones are refused).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: it keeps nothing on disk), and waits
    /// until it answers.
    pub async fn restart(&self) -> io::Result<()> {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot start redis-server ({error}): install it, e.g. \
                         `apt-get install -y redis-server`"
                    ),
                )
            })?;
        *self.child.lock() = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.command(&["PING"]).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "redis-server on port {} did not answer within 10 s",
                    self.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes the server hold every client's commands for `duration` (`CLIENT PAUSE … ALL`):
    /// a Redis that answers slowly.
    pub async fn pause(&self, duration: Duration) -> io::Result<()> {
        let millis = duration.as_millis().to_string();
        self.command(&["CLIENT", "PAUSE", &millis, "ALL"])
            .await
            .map(drop)
    }

    /// Runs one command on a fresh connection and returns its reply as text (for tests
    /// that look at keys).
    pub async fn command(&self, args: &[&str]) -> io::Result<::redis::Value> {
        let client = ::redis::Client::open(self.url()).map_err(io::Error::other)?;
        let mut connection = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| io::Error::other("no connection within 2 s"))?
        .map_err(io::Error::other)?;
        let mut command = ::redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command
            .query_async(&mut connection)
            .await
            .map_err(io::Error::other)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
