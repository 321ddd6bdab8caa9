//! `mcp-oauth token inspect` (decode a token and explain the validator's verdict on it, check
//! by check) and `mcp-oauth token get` (client credentials, or authorization code + PKCE with
//! a loopback redirect, against the resource's advertised authorization server).
//!
//! A token is never printed back by `inspect`: it shows the decoded header and claims and the
//! fingerprint audit events carry (`TokenFingerprint`). `get` prints the access token alone on
//! standard output, for `--token "$(mcp-oauth token get …)"`; everything else goes to standard
//! error.

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::clock::span_in_words;
use mcp_oauth::validation::diagnose::Outcome;
use mcp_oauth::validation::{IssuerPolicy, TokenFingerprint, Validator, diagnose};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::fetch::{self, ClientAuth, TokenResponse};
use crate::metadata::{self, ResourceMismatch, indent, pretty};
use crate::report::{self, Check, Format, Report, Status};

/// How long `token get --authorization-code` waits for the browser's redirect.
const REDIRECT_WAIT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// inspect

/// What a token says about itself, unverified.
struct Decoded {
    header: Value,
    claims: Value,
    /// Why it could not be decoded as a JWT, if so.
    note: Option<String>,
}

fn decode_segment(segment: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| "not base64url (without padding)".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|_| "not JSON".to_owned())
}

fn decode(token: &str) -> Decoded {
    let segments: Vec<&str> = token.split('.').collect();
    let note = match segments.len() {
        3 => None,
        5 => Some("five segments: an encrypted JWT (JWE); only its header is readable".to_owned()),
        n => {
            return Decoded {
                header: Value::Null,
                claims: Value::Null,
                note: Some(format!(
                    "{n} segment(s), not a JWT: an opaque token (only its issuer's \
                     introspection endpoint can say what it is)"
                )),
            };
        }
    };
    let header = decode_segment(segments[0]);
    let claims = if note.is_none() {
        decode_segment(segments[1])
    } else {
        Err("encrypted".to_owned())
    };
    let mut notes: Vec<String> = note.into_iter().collect();
    if let Err(e) = &header {
        notes.push(format!("header: {e}"));
    }
    if let (Err(e), 3) = (&claims, segments.len()) {
        notes.push(format!("claims: {e}"));
    }
    Decoded {
        header: header.unwrap_or(Value::Null),
        claims: claims.unwrap_or(Value::Null),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// The token from the argument, or standard input for `-` or none; a `Bearer ` prefix (as
/// copied from a header) is dropped.
fn read_token(argument: Option<String>) -> Result<String, String> {
    let text = match argument.as_deref() {
        None | Some("-") => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading the token from standard input (end with Ctrl-D)…");
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
            text
        }
        Some(token) => token.to_owned(),
    };
    let mut token = text.trim();
    if let Some((scheme, rest)) = token.split_once(' ')
        && (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
    {
        token = rest.trim();
    }
    if token.is_empty() {
        return Err("no token given".into());
    }
    Ok(token.to_owned())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `exp`, `nbf`, `iat`, `auth_time` relative to now, for the readable output.
fn times(claims: &Value) -> Vec<String> {
    let now = now_secs();
    ["exp", "nbf", "iat", "auth_time"]
        .into_iter()
        .filter_map(|name| {
            let at = claims.get(name)?.as_u64()?;
            let relative = if at >= now {
                format!("in {}", span_in_words(at - now))
            } else {
                format!("{} ago", span_in_words(now - at))
            };
            Some(format!("{name} {at}: {relative}"))
        })
        .collect()
}

/// The validator `inspect` judges by: one issuer and audience, or every issuer a resource's
/// metadata advertises with the resource as audience.
async fn validator_for(args: &crate::InspectArgs) -> Result<Option<(Validator, String)>, String> {
    let (issuers, audience) = match (&args.resource, &args.issuer, &args.audience) {
        (Some(resource), _, _) => {
            let client = crate::http_client(Duration::from_secs(10))?;
            let document =
                metadata::resource_metadata(&client, resource, ResourceMismatch::Refuse).await?;
            let issuers = metadata::authorization_servers(&document.json);
            if issuers.is_empty() {
                return Err(format!(
                    "the metadata at {} names no authorization server",
                    document.url
                ));
            }
            (issuers, resource.clone())
        }
        (None, Some(issuer), Some(audience)) => (vec![issuer.clone()], audience.clone()),
        _ => return Ok(None),
    };
    let mut builder = Validator::builder().without_token_cache();
    for issuer in &issuers {
        let policy = IssuerPolicy::builder(issuer.as_str())
            .audience(audience.as_str())
            .build()
            .map_err(|e| format!("issuer {issuer}: {e}"))?;
        builder = builder.issuer(policy);
    }
    let validator = builder.build().map_err(|e| e.to_string())?;
    let against = format!(
        "issuer {} (strict RFC 9068 policy), audience {audience}",
        issuers.join(", ")
    );
    Ok(Some((validator, against)))
}

pub async fn inspect(args: crate::InspectArgs) -> Result<ExitCode, String> {
    let token = read_token(args.token.clone())?;
    let fingerprint = TokenFingerprint::of(&token).to_string();
    let decoded = decode(&token);
    let mut report = Report::new(format!("token {fingerprint}"));
    let validator = validator_for(&args).await?;
    let against = validator.as_ref().map(|(_, against)| against.clone());
    match &validator {
        Some((validator, _)) => {
            for finding in diagnose(validator, &token).await.findings {
                let status = match finding.outcome {
                    Outcome::Passed => Status::Pass,
                    Outcome::Failed(_) => Status::Fail,
                    _ => Status::Skip,
                };
                report.push(Check::new(
                    format!("token.{}", finding.check),
                    finding.title,
                    status,
                    finding.detail,
                    finding.spec,
                ));
            }
        }
        None => report.push(Check::new(
            "token.validation",
            "validation",
            Status::Skip,
            "give --resource URL, or --issuer and --audience, to run the validator",
            "",
        )),
    }

    let format = args.output.format();
    match format {
        Format::Json => {
            let mut document: Map<String, Value> =
                serde_json::from_str(&report.json()).map_err(|e| e.to_string())?;
            document.insert(
                "token".into(),
                serde_json::json!({
                    "fingerprint": fingerprint,
                    "bytes": token.len(),
                    "header": decoded.header,
                    "claims": decoded.claims,
                    "note": decoded.note,
                    "validated_against": against,
                }),
            );
            println!("{}", pretty(&Value::Object(document)));
        }
        Format::Human => {
            println!(
                "fingerprint  {fingerprint}  (as audit events show it; the token itself is \
                 never printed)"
            );
            println!("size         {} bytes", token.len());
            if let Some(note) = &decoded.note {
                println!("note         {note}");
            }
            if !decoded.header.is_null() {
                println!("header\n{}", indent(&pretty(&decoded.header)));
            }
            if !decoded.claims.is_null() {
                println!("claims\n{}", indent(&pretty(&decoded.claims)));
                for line in times(&decoded.claims) {
                    println!("  {line}");
                }
            }
            if let Some(against) = &against {
                println!("validated against {against}");
            }
            println!();
            report::print(&report, format, "token inspect");
        }
        Format::Junit => report::print(&report, format, "token inspect"),
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ---------------------------------------------------------------------------------------------
// get

/// 32 random bytes, base64url: PKCE verifiers and `state`.
fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn string_member<'a>(document: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    document.get(name).and_then(Value::as_str)
}

/// POSTs `form` to the server's token endpoint through [`fetch::token_request`] (the
/// endpoint checked `https` or loopback first), authenticating the client as the server
/// supports ([`ClientAuth::for_server`]).
async fn token_request(
    client: &reqwest::Client,
    server: &Map<String, Value>,
    args: &crate::GetArgs,
    form: Vec<(&str, String)>,
) -> Result<TokenResponse, String> {
    let endpoint = string_member(server, "token_endpoint")
        .ok_or("the authorization server's metadata has no token_endpoint")?;
    let auth = ClientAuth::for_server(server, &args.client_id, args.client_secret.as_deref());
    fetch::token_request(client, endpoint, auth, form).await
}

/// How long one connection to the redirect listener may take to send its request: an idle
/// connection is dropped after it, so it cannot hold up the wait for the browser.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads an HTTP request's head (at most 16 KiB) from `stream`, giving up after
/// [`REQUEST_READ_TIMEOUT`]; returns its target (`/callback?…`), or "" when none came.
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> String {
    let mut request = Vec::new();
    let read = async {
        let mut buffer = [0; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
    };
    if tokio::time::timeout(REQUEST_READ_TIMEOUT, read)
        .await
        .is_err()
    {
        return String::new();
    }
    let text = String::from_utf8_lossy(&request);
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or("")
        .to_owned()
}

/// Writes a small HTML page with `status` (a status line such as `200 OK`) and closes.
async fn answer(stream: &mut tokio::net::TcpStream, status: &str, page: &str) {
    let html = format!("<!doctype html><title>mcp-oauth</title><p>{page}</p>");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = tokio::time::timeout(REQUEST_READ_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Waits on `listener` for the browser's `GET /callback?…` carrying our `state`, answers it
/// and returns its query parameters. Anything else (another path, a favicon, a callback with
/// another or no `state`: an attacker's or a stale one) is answered 400 and the wait goes on,
/// so only the caller's overall deadline ends it. Each connection gets
/// [`REQUEST_READ_TIMEOUT`] to send its request.
async fn wait_for_redirect(
    listener: &TcpListener,
    state: &str,
) -> Result<Vec<(String, String)>, String> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("the redirect listener: {e}"))?;
        let target = read_request_target(&mut stream).await;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let ours = path == "/callback"
            && params
                .iter()
                .find(|(k, _)| k == "state")
                .is_some_and(|(_, v)| v == state);
        if !ours {
            if path == "/callback" {
                eprintln!("ignored a redirect whose state is not ours (answered 400)");
            }
            answer(
                &mut stream,
                "400 Bad Request",
                "Not the answer to this authorization request.",
            )
            .await;
            continue;
        }
        let page = if params.iter().any(|(k, _)| k == "error") {
            "Authorization refused. You can close this window; see the terminal."
        } else {
            "Authorization received. You can close this window and return to the terminal."
        };
        answer(&mut stream, "200 OK", page).await;
        return Ok(params);
    }
}

async fn authorization_code(
    client: &reqwest::Client,
    issuer: &str,
    server: &Map<String, Value>,
    args: &crate::GetArgs,
) -> Result<TokenResponse, String> {
    let endpoint = string_member(server, "authorization_endpoint")
        .ok_or("the authorization server's metadata has no authorization_endpoint")?;
    fetch::require_https_or_loopback(endpoint)
        .map_err(|e| format!("authorization_endpoint {e}"))?;
    // Checked before the browser is sent anywhere, so the user's consent is not wasted.
    let token_endpoint = string_member(server, "token_endpoint")
        .ok_or("the authorization server's metadata has no token_endpoint")?;
    fetch::require_https_or_loopback(token_endpoint).map_err(|e| format!("token_endpoint {e}"))?;
    if fetch::lists(server.get("code_challenge_methods_supported"), "S256") != Some(true) {
        return Err(
            "the authorization server does not list S256 in code_challenge_methods_supported: \
             MCP clients must not proceed without PKCE"
                .into(),
        );
    }
    let listener = TcpListener::bind(("127.0.0.1", args.redirect_port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.redirect_port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = random_text();
    let state = random_text();
    let mut url =
        url::Url::parse(endpoint).map_err(|e| format!("authorization_endpoint {endpoint}: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &args.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &s256(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &args.resource);
        if let Some(scope) = &args.scope {
            query.append_pair("scope", scope);
        }
    }
    eprintln!("Open this URL in a browser to authorize:\n\n  {url}\n");
    eprintln!("Waiting for the redirect to {redirect_uri} …");
    let params = tokio::time::timeout(REDIRECT_WAIT, wait_for_redirect(&listener, &state))
        .await
        .map_err(|_| format!("no redirect within {} s", REDIRECT_WAIT.as_secs()))??;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("state") != Some(state.as_str()) {
        return Err("the redirect's state is not ours: not the answer to this request".into());
    }
    // RFC 9207: the authorization server names itself, so a mix-up is caught.
    match param("iss") {
        Some(iss) if iss != issuer => {
            return Err(format!(
                "the redirect names issuer {iss}, not {issuer}: refused (RFC 9207)"
            ));
        }
        None if server.get("authorization_response_iss_parameter_supported")
            == Some(&Value::Bool(true)) =>
        {
            return Err(
                "the redirect has no iss, which the server says it sends (RFC 9207)".into(),
            );
        }
        _ => {}
    }
    if let Some(error) = param("error") {
        return Err(format!(
            "authorization refused: {error}{}",
            param("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ));
    }
    let code = param("code").ok_or("the redirect has no code")?;
    eprintln!("Got an authorization code; exchanging it.");
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("resource", args.resource.clone()),
    ];
    token_request(client, server, args, form).await
}

pub async fn get(args: crate::GetArgs) -> Result<ExitCode, String> {
    let client = crate::http_client(Duration::from_secs(30))?;
    let resource =
        metadata::resource_metadata(&client, &args.resource, ResourceMismatch::Refuse).await?;
    let issuers = metadata::authorization_servers(&resource.json);
    let issuer = issuers.first().ok_or_else(|| {
        format!(
            "the metadata at {} names no authorization server",
            resource.url
        )
    })?;
    if issuers.len() > 1 {
        eprintln!(
            "the resource names {} authorization servers; using the first",
            issuers.len()
        );
    }
    fetch::require_https_or_loopback(issuer).map_err(|e| format!("issuer {e}"))?;
    let server = metadata::authorization_server_metadata(&client, issuer).await?;
    eprintln!("authorization server {issuer} (metadata at {})", server.url);
    let response = if args.authorization_code {
        authorization_code(&client, issuer, &server.json, &args).await?
    } else {
        if args.client_secret.is_none() {
            return Err(
                "client credentials need --client-secret (or MCP_OAUTH_CLIENT_SECRET); \
                 or use --authorization-code"
                    .into(),
            );
        }
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("resource", args.resource.clone()),
        ];
        if let Some(scope) = &args.scope {
            form.push(("scope", scope.clone()));
        }
        token_request(&client, &server.json, &args, form).await?
    };
    let TokenResponse {
        access_token: token,
        json: response,
    } = response;
    let token_type = string_member(&response, "token_type").unwrap_or("(no token_type)");
    let mut summary = format!(
        "got a {token_type} access token, fingerprint {}",
        TokenFingerprint::of(&token)
    );
    if let Some(expires_in) = response.get("expires_in").and_then(Value::as_u64) {
        summary.push_str(&format!(", expires in {}", span_in_words(expires_in)));
    }
    if let Some(scope) = string_member(&response, "scope") {
        summary.push_str(&format!(", scope \"{scope}\""));
    }
    if response.contains_key("refresh_token") {
        summary.push_str(" (a refresh token too, not printed)");
    }
    eprintln!("{summary}");
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
