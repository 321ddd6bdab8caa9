//! The calendar example wired by hand with the low-level builders (`ResourceConfig`,
//! `IssuerPolicy`, `Validator`, `OAuthLayer`, rmcp's `StreamableHttpService`, axum): what
//! `examples/calendar` does in one call with `Calendar::oauth()`, for programs that need a
//! piece this does not expose. `cargo run --example low_level` needs no configuration.
//!
//! It reads a few variables itself:
//!
//! | variable | meaning |
//! |---|---|
//! | `MCP_OAUTH_RESOURCE` | the endpoint URL clients use (default `http://127.0.0.1:8080/mcp`) |
//! | `MCP_OAUTH_BIND` | the address to listen on (default: host and port of the resource URL; required for an https resource, whose TLS a proxy terminates) |
//! | `MCP_OAUTH_ISSUER` | an external authorization server; without it the embedded dev server runs |
//! | `MCP_OAUTH_ISSUER_JWKS_URI` | the issuer's JWKS URL (default: discovered from the issuer) |
//! | `MCP_OAUTH_AUDIENCE` | the audience tokens carry (default: the resource URL) |
//! | `MCP_OAUTH_ALLOWED_ORIGINS` | extra browser origins allowed to call the endpoint (comma-separated) |
//! | `MCP_OAUTH_FAILED_AUTH_PER_MINUTE` | failed authentications allowed per client address and minute, after a burst of 60 (default 60; `0` turns the limit off) |
//! | `MCP_OAUTH_FILTER_TOOLS` | `1`: `tools/list` shows each caller only the tools its token may call (SEP-1881) |

#[path = "../calendar/server.rs"]
mod server;

#[path = "../common/logging.rs"]
mod logging;

use std::process::ExitCode;
use std::time::Duration;

use mcp_oauth::dev::DevAuthorizationServer;
use mcp_oauth::http::{OAuthLayer, OriginPolicy};
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::{IssuerPolicy, Validator};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use server::Calendar;

const DEFAULT_RESOURCE: &str = "http://127.0.0.1:8080/mcp";

/// The configuration read from the environment.
struct Settings {
    resource: String,
    bind: String,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    audience: Option<String>,
    origins: Vec<String>,
    filter_tools: bool,
    failed_auth_per_minute: Option<u32>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn check_url(name: &str, value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{name}={value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{name}={value:?} must be an http(s) URL with a host"
        ));
    }
    Ok(url)
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let resource = var("MCP_OAUTH_RESOURCE").unwrap_or_else(|| DEFAULT_RESOURCE.to_owned());
        let url = check_url("MCP_OAUTH_RESOURCE", &resource)?;
        let bind = match var("MCP_OAUTH_BIND") {
            Some(bind) => bind,
            None if url.scheme() == "https" => {
                return Err(
                    "MCP_OAUTH_BIND is required when MCP_OAUTH_RESOURCE is https \
                            (TLS is terminated in front of this server)"
                        .into(),
                );
            }
            None => {
                let host = url
                    .host_str()
                    .unwrap_or("127.0.0.1")
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let port = url.port_or_known_default().unwrap_or(80);
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
        };
        let issuer = var("MCP_OAUTH_ISSUER");
        if let Some(issuer) = &issuer {
            check_url("MCP_OAUTH_ISSUER", issuer)?;
        }
        let jwks_uri = var("MCP_OAUTH_ISSUER_JWKS_URI");
        if let Some(uri) = &jwks_uri {
            check_url("MCP_OAUTH_ISSUER_JWKS_URI", uri)?;
            if issuer.is_none() {
                return Err("MCP_OAUTH_ISSUER_JWKS_URI needs MCP_OAUTH_ISSUER".into());
            }
        }
        let audience = var("MCP_OAUTH_AUDIENCE");
        let origins = var("MCP_OAUTH_ALLOWED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let filter_tools = match var("MCP_OAUTH_FILTER_TOOLS").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => return Err(format!("MCP_OAUTH_FILTER_TOOLS={other:?} must be 1 or 0")),
        };
        let failed_auth_per_minute = match var("MCP_OAUTH_FAILED_AUTH_PER_MINUTE") {
            None => Some(60),
            Some(value) => match value.parse::<u32>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(format!(
                        "MCP_OAUTH_FAILED_AUTH_PER_MINUTE={value:?} must be a whole number"
                    ));
                }
            },
        };
        Ok(Self {
            resource,
            bind,
            issuer,
            jwks_uri,
            audience,
            origins,
            filter_tools,
            failed_auth_per_minute,
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
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e} (is another server using the port? set MCP_OAUTH_RESOURCE or MCP_OAUTH_BIND)", settings.bind))?;

    // The embedded dev authorization server, unless an external issuer is configured.
    let scopes = <Calendar as mcp_oauth::resource::ProtectedResource>::DECLARATION.scopes;
    let dev = match &settings.issuer {
        Some(_) => None,
        None => Some(
            DevAuthorizationServer::builder()
                .resource(
                    settings
                        .audience
                        .clone()
                        .unwrap_or_else(|| settings.resource.clone()),
                )
                .scopes(scopes.iter().copied())
                // Banner tokens are pasted by hand: give them an hour instead of five minutes.
                .access_token_ttl(Duration::from_secs(3600))
                .start()
                .await
                .map_err(|e| format!("cannot start the dev authorization server: {e}"))?,
        ),
    };
    let issuer = match (&settings.issuer, &dev) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(dev)) => dev.issuer().to_owned(),
        (None, None) => unreachable!("the dev server runs when no issuer is configured"),
    };
    let audience = settings
        .audience
        .clone()
        .unwrap_or_else(|| settings.resource.clone());

    let config = ResourceConfig::of::<Calendar>()
        .resource(&settings.resource)
        .authorization_servers([issuer.clone()]);
    let mut policy = IssuerPolicy::builder(&issuer).audience(&audience);
    if let Some(uri) = settings.jwks_uri.as_ref().or(dev
        .as_ref()
        .map(|d| d.jwks_uri())
        .map(str::to_owned)
        .as_ref())
    {
        policy = policy.jwks_uri(uri);
    }
    let validator = Validator::new(
        policy
            .build()
            .map_err(|e| format!("invalid issuer policy: {e}"))?,
    )
    .map_err(|e| format!("invalid issuer configuration: {e}"))?;
    if let Err(error) = validator.preload().await {
        tracing::warn!(%error, "the issuer's keys could not be loaded yet; requests will retry");
    }

    // The resource's own origin (for a loopback URL, every loopback alias on its port) and
    // the configured extras.
    let mut origins = OriginPolicy::for_resource(&settings.resource);
    for origin in &settings.origins {
        origins = origins.and(origin);
    }
    let layer = OAuthLayer::builder(config, validator)
        .tools(mcp_oauth::rmcp::tool_table(&Calendar::tool_router()))
        .origins(origins)
        .rate_limits(match settings.failed_auth_per_minute {
            Some(per_minute) => mcp_oauth::rate_limit::RateLimits::default()
                .failed_auth(mcp_oauth::rate_limit::Budget::per_minute(per_minute).burst(60)),
            None => mcp_oauth::rate_limit::RateLimits::default().without_failed_auth_limit(),
        })
        .build()
        .map_err(|e| format!("invalid configuration: {e}"))?;

    let calendar = Calendar::new().filtering_tools(settings.filter_tools);
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = true;
    // The layer checks `Host` (for a loopback resource URL, loopback names only) before rmcp
    // sees the request; rmcp's own check would refuse a public name behind a proxy.
    mcp_config.allowed_hosts = Vec::new();
    let mcp = StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let router = axum::Router::new().route_service(layer.route(), mcp);
    let app = tower::Layer::layer(&layer, router);

    print_banner(&settings, &layer, &issuer, dev.as_ref());
    println!("ready");
    // TCP_NODELAY: a streamed response written in pieces must not wait for delayed ACKs.
    // Connect info gives the layer each client's address for the failed-auth budget.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            std::net::SocketAddr,
        >(app),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| format!("server error: {e}"))
}

fn print_banner(
    settings: &Settings,
    layer: &OAuthLayer,
    issuer: &str,
    dev: Option<&DevAuthorizationServer>,
) {
    println!("mcp-oauth calendar example");
    println!("  MCP endpoint:      {}", settings.resource);
    println!("  metadata:          {}", layer.metadata_url());
    println!("  issuer:            {issuer}");
    let Some(dev) = dev else {
        println!("  tokens:            from {issuer}");
        return;
    };
    let client = dev.dev_client();
    println!("  dev client id:     {}", client.id);
    println!("  dev client secret: {}", client.secret);
    let read = dev.mint_access_token(dev.dev_user(), &client.id, &["calendar:read"]);
    let write = dev.mint_access_token(dev.dev_user(), &client.id, &["calendar:write"]);
    let admin = dev.mint_access_token(dev.dev_user(), &client.id, &["calendar:admin"]);
    println!();
    println!("Dev tokens (valid one hour):");
    println!("  read-only token (calendar:read):   {read}");
    println!("  read-write token (calendar:write): {write}");
    println!("  admin token (calendar:admin):      {admin}");
    println!();
    println!("Try it:");
    println!("  curl -s {}", layer.metadata_url());
    println!("  curl -si -X POST {} \\", settings.resource);
    println!(
        "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\"
    );
    println!("    -H 'Authorization: Bearer {read}' \\");
    println!(
        "    -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'"
    );
    println!(
        "  Client credentials: POST {} with grant_type=client_credentials, the client id/secret above,",
        dev.token_endpoint()
    );
    println!("    and resource={}", settings.resource);
}
