//! The embedded development authorization server on its own: `cargo run --example dev_server`.
//!
//! It issues RFC 9068 JWT access tokens for one MCP resource, so that an MCP server configured
//! with an external issuer (e.g. the calendar example with `MCP_OAUTH_ISSUER`) and real MCP
//! clients can be tried against it. A development tool: plain HTTP on 127.0.0.1, every
//! authorization request approved for the dev user, all state in memory.
//!
//! | variable | meaning |
//! |---|---|
//! | `MCP_OAUTH_DEV_PORT` | the port on 127.0.0.1 (default 0: an ephemeral port) |
//! | `MCP_OAUTH_DEV_RESOURCE` | the resource (token audience) it issues tokens for (default `http://127.0.0.1:8080/mcp`) |
//! | `MCP_OAUTH_DEV_SCOPES` | the scopes it grants, comma-separated (default the calendar's: `calendar:read,calendar:write,calendar:admin`) |
//!
//! Once listening it prints `issuer: <url>`, `client_id: <id>` and `client_secret: <secret>`
//! (the pre-registered confidential client, for `client_credentials`), a few informational
//! lines, then `ready`, and serves until killed. A bad environment value is reported on stderr
//! with exit code 2.

#[path = "common/logging.rs"]
mod logging;

use std::process::ExitCode;

use mcp_oauth::dev::DevAuthorizationServer;

const DEFAULT_RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const DEFAULT_SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "calendar:admin"];

/// The configuration read from the environment.
struct Settings {
    port: u16,
    resource: String,
    scopes: Vec<String>,
}

fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value.trim().to_owned()).filter(|v| !v.is_empty())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let port = match var("MCP_OAUTH_DEV_PORT")? {
            None => 0,
            Some(port) => port.parse::<u16>().map_err(|_| {
                format!(
                    "MCP_OAUTH_DEV_PORT={port:?} is not a port number (0-65535; 0 picks a free one)"
                )
            })?,
        };
        let resource =
            var("MCP_OAUTH_DEV_RESOURCE")?.unwrap_or_else(|| DEFAULT_RESOURCE.to_owned());
        let url = url::Url::parse(&resource)
            .map_err(|e| format!("MCP_OAUTH_DEV_RESOURCE={resource:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || url.fragment().is_some()
        {
            return Err(format!(
                "MCP_OAUTH_DEV_RESOURCE={resource:?} must be an http(s) URL with a host and no fragment"
            ));
        }
        let scopes = match var("MCP_OAUTH_DEV_SCOPES")? {
            None => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => {
                let scopes: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if scopes.is_empty() {
                    return Err(format!("MCP_OAUTH_DEV_SCOPES={list:?} names no scope"));
                }
                // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
                if let Some(bad) = scopes.iter().find(|s| {
                    !s.bytes()
                        .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
                }) {
                    return Err(format!(
                        "MCP_OAUTH_DEV_SCOPES: {bad:?} is not a valid scope"
                    ));
                }
                scopes
            }
        };
        Ok(Self {
            port,
            resource,
            scopes,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env()?;
    let server = DevAuthorizationServer::builder()
        .port(settings.port)
        .resource(&settings.resource)
        .scopes(settings.scopes.iter().cloned())
        .start()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => format!("invalid configuration: {e}"),
            _ => format!(
                "cannot listen on 127.0.0.1:{}: {e} (is another server using the port? set MCP_OAUTH_DEV_PORT)",
                settings.port
            ),
        })?;

    let client = server.dev_client();
    println!("issuer: {}", server.issuer());
    println!("client_id: {}", client.id);
    println!("client_secret: {}", client.secret);
    println!("resource: {}", server.resource());
    println!("scopes: {}", server.scopes().join(" "));
    println!("metadata: {}", server.metadata_url());
    println!("token_endpoint: {}", server.token_endpoint());
    println!("registration_endpoint: {}", server.registration_endpoint());
    println!("ready");

    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    server.shutdown().await;
    Ok(())
}
