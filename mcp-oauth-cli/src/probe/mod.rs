//! `mcp-oauth probe URL`: a black-box check, from outside, that a deployed MCP endpoint's
//! authorization behaves as the MCP authorization specification and the RFCs it builds on say
//! (RFC 9728 metadata, RFC 8414 discovery, RFC 6750 challenges, RFC 9449 DPoP).
//!
//! The checks run in groups, one file each: [`discovery`] (the metadata documents),
//! [`unauthenticated`] (the credential-less 401, forged and malformed tokens, DNS rebinding),
//! [`dpop`] (when the metadata advertises DPoP), and [`session`] (with a token: the lists,
//! `Mcp-Name`, and with `--call` the step-up). Every request goes through [`Probe::send`],
//! which waits out a 429 with `Retry-After` (at most [`RETRY_BUDGET`] over the whole probe)
//! and tries again. No token is ever printed: reports name tokens by what they are.

mod discovery;
mod dpop;
mod session;
mod unauthenticated;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use mcp_oauth::challenge::{Scheme, parse_all};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::ProbeArgs;
use crate::fetch;
use crate::report::{self, Check, Report, Status};

/// The longest the probe waits, in total, for 429 answers' `Retry-After`.
pub const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// The most of an answer's body the probe reads.
const MAX_BODY: usize = 1024 * 1024;
/// The MCP protocol version the probe asks for (the server may answer an older one).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Runs the probe and prints its report: exit 0 when nothing failed, 1 when a check failed;
/// `Err` (exit 2) when the endpoint cannot be reached at all.
pub async fn run(args: ProbeArgs) -> Result<ExitCode, String> {
    let url = url::Url::parse(&args.url).map_err(|e| format!("{}: not a URL: {e}", args.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{}: not an http(s) URL", args.url));
    }
    let http = crate::http_client(Duration::from_secs(args.timeout.max(1)))?;
    let mut probe = Probe {
        http,
        url: args.url.clone(),
        report: Report::new(args.url.clone()),
        waited: Duration::ZERO,
        retried: 0,
        exhausted: 0,
        progress: std::io::stderr().is_terminal(),
        secrets: Vec::new(),
    };
    for secret in [&args.token, &args.token_low, &args.client_secret]
        .into_iter()
        .flatten()
    {
        probe.secret(secret);
    }
    // Reachable at all? A transport error on the first request is exit status 2.
    probe.progress("connecting");
    let first = probe.initialize_with(&[]).await;
    if let Err(error) = first {
        return Err(format!("cannot reach {}: {error}", args.url));
    }

    probe.progress("metadata");
    let found = discovery::run(&mut probe).await;
    let mut token = args.token.clone();
    if args.client_credentials {
        probe.progress("client credentials");
        token = discovery::client_credentials(&mut probe, &found, &args).await;
        if let Some(token) = &token {
            probe.secret(token);
        }
    }
    probe.progress("credential-less requests");
    unauthenticated::run(&mut probe, &found).await;
    if found.dpop_algs.is_some() {
        probe.progress("DPoP");
    }
    dpop::run(&mut probe, &found, token.as_deref()).await;
    probe.progress("with a token");
    session::run(&mut probe, &found, token.as_deref(), &args).await;

    if probe.retried > 0 || probe.exhausted > 0 {
        let detail = format!(
            "{} answer(s) 429 waited out ({:.1} s in all) and retried{}",
            probe.retried,
            probe.waited.as_secs_f64(),
            if probe.exhausted > 0 {
                format!(
                    "; {} not retried: its Retry-After did not fit in what was left of the \
                     {} s budget (those checks are skipped)",
                    probe.exhausted,
                    RETRY_BUDGET.as_secs()
                )
            } else {
                String::new()
            }
        );
        probe.push(
            "probe.rate_limited",
            "429 Too Many Requests waited out, not a failure",
            Status::Pass,
            detail,
            "RFC 6585 §4, RFC 9110 §10.2.3",
        );
    }
    if probe.progress {
        eprint!("\r\x1b[2K");
    }
    report::print(&probe.report, args.output.format(), "probe");
    Ok(if probe.report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The probe's state: the client, the target, the report and the 429 bookkeeping.
pub struct Probe {
    http: reqwest::Client,
    /// The MCP endpoint URL, as given.
    pub url: String,
    report: Report,
    waited: Duration,
    retried: u32,
    exhausted: u32,
    progress: bool,
    /// The tokens and secrets the report must never show ([`report::sanitize`]).
    secrets: Vec<String>,
}

impl Probe {
    /// A token or secret (given, obtained or minted) that the report names by fingerprint
    /// only, wherever a server's answer repeats it.
    pub fn secret(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    /// Adds a check to the report: its id, title and detail pass through
    /// [`report::sanitize`] (known secrets redacted, control characters escaped).
    pub fn push(
        &mut self,
        id: &str,
        title: &str,
        status: Status,
        detail: impl Into<String>,
        spec: &str,
    ) {
        let clean = |text: &str| report::sanitize(text, &self.secrets);
        let check = Check::new(
            clean(id),
            clean(title),
            status,
            clean(&detail.into()),
            clean(spec),
        );
        self.report.push(check);
    }

    /// Adds a check passing when `ok`, else warning (a SHOULD, MAY or OPTIONAL rule).
    pub fn advise(
        &mut self,
        id: &str,
        title: &str,
        ok: bool,
        detail: impl Into<String>,
        spec: &str,
    ) {
        let status = if ok { Status::Pass } else { Status::Warn };
        self.push(id, title, status, detail, spec);
    }

    /// Adds a check passing when `ok`.
    pub fn verdict(
        &mut self,
        id: &str,
        title: &str,
        ok: bool,
        detail: impl Into<String>,
        spec: &str,
    ) {
        let status = if ok { Status::Pass } else { Status::Fail };
        self.push(id, title, status, detail, spec);
    }

    /// Adds a failed check whose request got no answer (a transport error).
    pub fn unanswered(&mut self, id: &str, title: &str, spec: &str, error: &str) {
        self.push(id, title, Status::Fail, format!("no answer: {error}"), spec);
    }

    /// Whether `reply` is a 429 left after the retry budget; if so the check is skipped.
    pub fn skipped_for_429(&mut self, reply: &Reply, id: &str, title: &str, spec: &str) -> bool {
        if reply.status != 429 {
            return false;
        }
        self.push(
            id,
            title,
            Status::Skip,
            format!(
                "rate limited: 429 after the {} s retry budget was spent",
                RETRY_BUDGET.as_secs()
            ),
            spec,
        );
        true
    }

    /// Shows what the probe is doing, on a terminal only (standard error).
    pub fn progress(&self, what: &str) {
        if self.progress {
            eprint!("\r\x1b[2Kprobing {}: {what}…", self.url);
        }
    }

    /// Sends the request `build` makes, again after each 429 whose `Retry-After` fits in
    /// what is left of [`RETRY_BUDGET`] (a 429 without one is retried after 1 s). Returns the
    /// last answer (a 429 when the budget ran out), or the transport error.
    /// POSTs an MCP `initialize` to the endpoint with `headers` (an `Authorization`, a
    /// proof, a foreign `Origin` or `Host`…): the request most checks start from.
    pub async fn initialize_with(&mut self, headers: &[(&str, &str)]) -> Result<Reply, String> {
        let url = self.url.clone();
        self.send(|http| {
            headers.iter().fold(
                http.post(&url)
                    .header("accept", ACCEPT)
                    .json(&mcp_initialize(1)),
                |request, (name, value)| request.header(*name, *value),
            )
        })
        .await
    }

    pub async fn send(
        &mut self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, String> {
        loop {
            let reply = read_reply(build(&self.http).send().await.map_err(describe)?).await;
            if reply.status != 429 {
                return Ok(reply);
            }
            let wait = reply
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs);
            if !self.wait_for_429(wait).await {
                return Ok(reply);
            }
        }
    }

    /// Waits `wait` (at least 100 ms) for a 429 if it fits in what is left of
    /// [`RETRY_BUDGET`], and says whether it did. Saturating: a hostile
    /// `Retry-After: 18446744073709551615` is only "too long", never an overflow.
    async fn wait_for_429(&mut self, wait: Duration) -> bool {
        let wait = wait.max(Duration::from_millis(100));
        if self.waited.saturating_add(wait) > RETRY_BUDGET {
            self.exhausted = self.exhausted.saturating_add(1);
            return false;
        }
        self.waited = self.waited.saturating_add(wait);
        self.retried = self.retried.saturating_add(1);
        self.progress(&format!("429: waiting {} s", wait.as_secs_f64()));
        tokio::time::sleep(wait).await;
        true
    }

    /// GETs a JSON document with [`fetch::get_json_object`] (a success status, a JSON media
    /// type, a JSON object, at most [`fetch::MAX_DOCUMENT_BYTES`]), tried again after a 429
    /// within [`RETRY_BUDGET`] (1 s apart: the helper does not hand back `Retry-After`).
    pub async fn get_json(&mut self, url: &str) -> Result<Value, GetError> {
        loop {
            match fetch::get_json_object(&self.http, url, fetch::MAX_DOCUMENT_BYTES).await {
                Ok((_, object)) => return Ok(Value::Object(object)),
                Err(text) if text.ends_with("HTTP 429") => {
                    if !self.wait_for_429(Duration::from_secs(1)).await {
                        return Err(GetError {
                            text: format!(
                                "{url}: rate limited: 429 after the {} s retry budget was spent",
                                RETRY_BUDGET.as_secs()
                            ),
                            rate_limited: true,
                        });
                    }
                }
                Err(text) => {
                    return Err(GetError {
                        text,
                        rate_limited: false,
                    });
                }
            }
        }
    }
}

/// Why [`Probe::get_json`] found no document.
#[derive(Debug)]
pub struct GetError {
    /// What was answered, in words (the URL included).
    pub text: String,
    /// A 429 left after the retry budget: the check is skipped, not failed.
    pub rate_limited: bool,
}

fn describe(error: reqwest::Error) -> String {
    fetch::error_chain(&error)
}

/// An answer: status, headers, and the body (at most 1 MiB; for an event stream, up to the
/// first JSON-RPC response).
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text (lossy).
    pub body: String,
}

async fn read_reply(mut response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let stream = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
        // A server may keep the stream open after the response: stop at it.
        if stream && jsonrpc_response(&String::from_utf8_lossy(&body)).is_some() {
            break;
        }
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The first JSON-RPC response (an object with `result` or `error`) in `body`: the body
/// itself when it is JSON, else the `data:` lines of a `text/event-stream`.
pub fn jsonrpc_response(body: &str) -> Option<Value> {
    let is_response =
        |v: &Value| v.is_object() && (v.get("result").is_some() || v.get("error").is_some());
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return match value {
            Value::Array(items) => items.into_iter().find(is_response),
            value => is_response(&value).then_some(value),
        };
    }
    // SSE: an event's data is its `data:` lines joined by newlines; events end at a blank line.
    let mut data = String::new();
    let mut events = Vec::new();
    for line in body.lines() {
        if line.is_empty() {
            events.push(std::mem::take(&mut data));
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    events.push(data);
    events
        .iter()
        .filter_map(|event| serde_json::from_str::<Value>(event).ok())
        .find(is_response)
}

/// A challenge as the library's parser reads it: its scheme and parameters.
pub type ParsedChallenge = (Scheme, Vec<(String, String)>);

impl Reply {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every Bearer or DPoP challenge of every `WWW-Authenticate` value (one value may
    /// carry several: RFC 9110 §11.6.1), read with the library's parser, each with its
    /// value's raw text; a value with neither is `None`.
    pub fn challenges(&self) -> Vec<(String, Option<ParsedChallenge>)> {
        let mut out = Vec::new();
        for value in self.headers.get_all(reqwest::header::WWW_AUTHENTICATE) {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let known: Vec<ParsedChallenge> = parse_all(&text)
                .into_iter()
                .filter_map(|(scheme, params)| {
                    if scheme.eq_ignore_ascii_case("Bearer") {
                        Some((Scheme::Bearer, params))
                    } else if scheme.eq_ignore_ascii_case("DPoP") {
                        Some((Scheme::Dpop, params))
                    } else {
                        None
                    }
                })
                .collect();
            if known.is_empty() {
                out.push((text, None));
            } else {
                out.extend(known.into_iter().map(|c| (text.clone(), Some(c))));
            }
        }
        out
    }

    /// The parameters of the first challenge in `scheme`, if one parses.
    pub fn challenge(&self, scheme: Scheme) -> Option<Vec<(String, String)>> {
        self.challenges()
            .into_iter()
            .find_map(|(_, parsed)| parsed.filter(|(s, _)| *s == scheme).map(|(_, p)| p))
    }

    /// The JSON-RPC response in the body (JSON or event stream).
    pub fn jsonrpc(&self) -> Option<Value> {
        jsonrpc_response(&self.body)
    }

    /// `401 error="…"`-style summary for reports: status, and the challenges' `error`.
    pub fn summary(&self) -> String {
        let errors: Vec<String> = self
            .challenges()
            .into_iter()
            .map(|(raw, parsed)| match parsed {
                Some((scheme, params)) => match param(&params, "error") {
                    Some(error) => format!("{} error=\"{error}\"", scheme.as_str()),
                    None => format!("{} (no error)", scheme.as_str()),
                },
                None => format!("unreadable challenge {:?}", clip(&raw, 80)),
            })
            .collect();
        if errors.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{} {}", self.status, errors.join(", "))
        }
    }
}

/// A challenge parameter's value (names compared case-insensitively).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `text` cut to `max` characters (for details that quote a server).
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// An `initialize` request.
pub fn mcp_initialize(id: u64) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "mcp-oauth-probe", "version": env!("CARGO_PKG_VERSION") },
        },
    })
}

/// The `Accept` header a streamable-HTTP client sends.
pub const ACCEPT: &str = "application/json, text/event-stream";

/// What discovery found, for the later groups.
#[derive(Debug, Default)]
pub struct Found {
    /// The path-inserted metadata URL (RFC 9728 §3.1).
    pub metadata_url: String,
    /// The metadata document used (the one the challenge names, else path-inserted, else root).
    pub metadata: Option<Value>,
    /// `scopes_supported`.
    pub scopes: Vec<String>,
    /// The authorization servers' metadata documents that were found, by issuer.
    pub issuers: Vec<(String, Value)>,
    /// `dpop_signing_alg_values_supported`, when advertised.
    pub dpop_algs: Option<Vec<String>>,
    /// `dpop_bound_access_tokens_required`.
    pub dpop_required: bool,
    /// The metadata URLs fetched that served a document (well-known or the challenge's).
    pub served: Vec<String>,
    /// The metadata URLs fetched that did not, with what they answered.
    pub unserved: Vec<(String, String)>,
}

/// The scopes a JWT's payload names (`scope` or `scp`), read without verification: only to
/// decide which operations a token should be refused. `None` for an opaque token.
pub fn token_scopes(token: &str) -> Option<Vec<String>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Some(scopes)
}

/// Whether the response leaks `secret` (a token or a recognisable part of one) in its body
/// or any header value.
pub fn echoes(reply: &Reply, secret: &str) -> bool {
    !secret.is_empty()
        && (reply.body.contains(secret)
            || reply
                .headers
                .values()
                .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_streams_and_json_bodies_yield_the_response() {
        let sse =
            "data: \nid: 0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert_eq!(jsonrpc_response(sse).unwrap()["id"], 1);
        let json = r#"{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"x"}}"#;
        assert_eq!(jsonrpc_response(json).unwrap()["id"], 2);
        assert!(jsonrpc_response("data: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\n").is_none());
    }

    #[test]
    fn token_scopes_read_scope_or_scp() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!("{}.{}.x", b64("{}"), b64(r#"{"scope":"a b"}"#));
        assert_eq!(token_scopes(&jwt).unwrap(), ["a", "b"]);
        let jwt = format!("{}.{}.x", b64("{}"), b64(r#"{"scp":["c"]}"#));
        assert_eq!(token_scopes(&jwt).unwrap(), ["c"]);
        assert!(token_scopes("opaque").is_none());
    }
}
