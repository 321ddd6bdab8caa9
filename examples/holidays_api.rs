//! The downstream API of the calendar example's `public_holidays` tool:
//! `cargo run --example holidays_api`, beside `cargo run --example calendar`.
//!
//! It accepts only tokens whose audience is its own URL: the calendar's own token (audience
//! the MCP endpoint) is refused, so the calendar must exchange it (RFC 8693) for one meant
//! for this API. Each request prints the token's fingerprint, its subject and its `act`
//! claim (the calendar server acting for the user): never the token.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CALENDAR_HOLIDAYS_API` | `http://127.0.0.1:8081` | its URL: the audience it accepts, and where it listens |
//! | `MCP_OAUTH_ISSUER` | the first authorization server of the calendar at `MCP_OAUTH_RESOURCE` (default `http://127.0.0.1:8080/mcp`) | the issuer whose tokens it accepts |

use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth::validation::TokenFingerprint;
use mcp_oauth::{IssuerPolicy, Validator};
use serde_json::{Value, json};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = var("CALENDAR_HOLIDAYS_API", "http://127.0.0.1:8081");
    let parsed = url::Url::parse(&url).map_err(|e| format!("CALENDAR_HOLIDAYS_API: {e}"))?;
    let issuer = match std::env::var("MCP_OAUTH_ISSUER") {
        Ok(issuer) => issuer,
        Err(_) => calendar_issuer(&var("MCP_OAUTH_RESOURCE", "http://127.0.0.1:8080/mcp")).await?,
    };
    let policy = IssuerPolicy::builder(&issuer).audience(&url).build()?;
    let validator = Arc::new(Validator::new(policy)?);
    let bind = (
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port_or_known_default().unwrap_or(80),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("holidays API: {url} (the audience it accepts), tokens from {issuer}");
    println!("ready");
    let app = axum::Router::new()
        .route("/holidays", axum::routing::get(holidays))
        .with_state(validator);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The calendar's authorization server, from its RFC 9728 metadata.
async fn calendar_issuer(resource: &str) -> Result<String, String> {
    let resource = url::Url::parse(resource).map_err(|e| format!("MCP_OAUTH_RESOURCE: {e}"))?;
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource{}",
        resource.origin().ascii_serialization(),
        resource.path()
    );
    let unreachable = |e: &dyn std::fmt::Display| {
        format!("{metadata}: {e}: start the calendar example first, or set MCP_OAUTH_ISSUER")
    };
    let body = reqwest::get(&metadata)
        .await
        .map_err(|e| unreachable(&e))?
        .text()
        .await
        .map_err(|e| unreachable(&e))?;
    let document: Value = serde_json::from_str(&body).map_err(|e| unreachable(&e))?;
    document["authorization_servers"][0]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| unreachable(&"no authorization server"))
}

async fn holidays(State(validator): State<Arc<Validator>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        println!("no bearer token: 401");
        return challenge(StatusCode::UNAUTHORIZED, "Bearer");
    };
    let fingerprint = TokenFingerprint::of(token);
    let verified = match validator.validate(token).await {
        Ok(verified) => verified,
        Err(error) => {
            println!("token {fingerprint}: refused ({error}): 401");
            return challenge(StatusCode::UNAUTHORIZED, r#"Bearer error="invalid_token""#);
        }
    };
    let act = verified
        .claim("act")
        .map_or("none".to_owned(), |act| act.to_string());
    let subject = verified.subject().unwrap_or("-");
    if !verified.scopes().contains("calendar:read") {
        println!("token {fingerprint}: sub={subject} act={act}, without calendar:read: 403");
        let value = r#"Bearer error="insufficient_scope", scope="calendar:read""#;
        return challenge(StatusCode::FORBIDDEN, value);
    }
    println!("token {fingerprint}: sub={subject} act={act}: 200");
    axum::Json(json!({
        "country": "FR",
        "year": 2026,
        "holidays": [
            { "date": "2026-01-01", "name": "Jour de l'an" },
            { "date": "2026-05-01", "name": "Fête du Travail" },
            { "date": "2026-07-14", "name": "Fête nationale" },
            { "date": "2026-12-25", "name": "Noël" },
        ],
    }))
    .into_response()
}

fn challenge(status: StatusCode, value: &'static str) -> Response {
    (status, [(header::WWW_AUTHENTICATE, value)]).into_response()
}
