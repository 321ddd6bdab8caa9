//! Interop with a third-party, certified authorization server: `oidc-provider` (pinned in
//! `tests/interop/oidc-provider/package.json`, started by `server.mjs` there) issues RFC 9068
//! JWT access tokens bound to the calendar's resource (RFC 8707) through client_credentials,
//! signed with RS256 or ES256; the calendar example runs as a separate process, pointed at it
//! through `MCP_OAUTH_RESOURCE` and `MCP_OAUTH_ISSUER` only (its key set is discovered from
//! the provider's OpenID Connect discovery document). Clients: the official TypeScript MCP SDK
//! (`tests/interop/ts-client/`), and raw HTTP.
//!
//! DPoP (RFC 9449): a token request with a proof by a [`DpopKey`] gets a DPoP-bound token
//! (`cnf.jkt`); the calendar, started with `MCP_OAUTH_DPOP=required`, `allowed` or without it,
//! takes it with a fresh proof per request, or refuses it.
//!
//! Needs Node.js and npm (the tests fail, never skip, without them); `npm ci` runs once per
//! test process and directory. The calendar binary comes from `target/<profile>/examples/`:
//! a plain `cargo test` builds it; before `cargo test --test oidc_provider`, run
//! `cargo build --examples`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcp_oauth::testing::DpopKey;
use serde_json::{Value, json};
use support::{
    READY_TIMEOUT, Reply, Running, example_command, free_port, http_client as http, metadata_url,
    node_tool, workspace_root,
};

const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long a TypeScript client script may run (each also stops itself after 45 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the provider process may live (it also exits by itself after this, and when the
/// test process closes its stdin).
const PROVIDER_LIFETIME: Duration = Duration::from_secs(120);
/// A resource the provider also issues tokens for: not the calendar.
const OTHER_RESOURCE: &str = "http://127.0.0.1:9/other-mcp";
const ALL_SCOPES: &str = "calendar:read calendar:write calendar:admin";
/// The access-token lifetime `server.mjs` configures.
const ACCESS_TOKEN_TTL: u64 = 300;

fn provider_dir() -> PathBuf {
    workspace_root().join("tests/interop/oidc-provider")
}

fn ts_dir() -> PathBuf {
    workspace_root().join("tests/interop/ts-client")
}

/// oidc-provider running `server.mjs`, killed on drop.
struct OidcProvider {
    running: Running,
    issuer: String,
    client_id: String,
    es256_client_id: String,
    client_secret: String,
    /// A shared lock on the package lock: no `npm ci` replaces `node_modules` meanwhile.
    _installed: std::fs::File,
}

impl OidcProvider {
    /// Starts it on a free port, issuing tokens for `resources`.
    fn start(resources: &[&str]) -> Self {
        let installed = support::npm_installed(&provider_dir());
        let port = free_port();
        let mut command = Command::new(node_tool("node"));
        command
            .args(["server.mjs", "--exit-with-stdin"])
            .current_dir(provider_dir())
            .env("PORT", port.to_string())
            .env("RESOURCES", resources.join(" "))
            .env("LIFETIME_MS", PROVIDER_LIFETIME.as_millis().to_string())
            // Its stdin stays open as long as the child handle: a killed test process closes it.
            .stdin(Stdio::piped());
        let mut running = Running::spawn("oidc-provider", command);
        running.wait_for_line(|line| line == "ready", READY_TIMEOUT);
        let issuer = running.banner_value("issuer:");
        assert_eq!(issuer, format!("http://127.0.0.1:{port}"));
        Self {
            issuer,
            client_id: running.banner_value("client id:"),
            es256_client_id: running.banner_value("es256 client id:"),
            client_secret: running.banner_value("client secret:"),
            running,
            _installed: installed,
        }
    }

    /// How many requests each `METHOD /path` of the provider received so far.
    async fn requests(&self) -> BTreeMap<String, u64> {
        let body = get_json(&format!("{}/admin/requests", self.issuer)).await;
        serde_json::from_value(body).expect("request counts")
    }

    async fn jwks_fetches(&self) -> u64 {
        self.requests().await.get("GET /jwks").copied().unwrap_or(0)
    }

    /// Adds a new RS256 and a new ES256 key in front of the key set (see `server.mjs`).
    async fn rotate(&self) {
        let reply = Reply::read(
            http()
                .post(format!("{}/admin/rotate", self.issuer))
                .send()
                .await
                .expect("POST /admin/rotate"),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "rotate: {}\n{}",
            reply.describe(),
            self.running.output()
        );
    }

    /// The provider's OpenID Connect discovery document.
    async fn discovery(&self) -> Value {
        let metadata = get_json(&format!("{}/.well-known/openid-configuration", self.issuer)).await;
        assert_eq!(metadata["issuer"], self.issuer, "{metadata}");
        metadata
    }

    /// The published keys: kid → (kty, alg).
    async fn published_keys(&self) -> BTreeMap<String, (String, String)> {
        let jwks_uri = self.discovery().await["jwks_uri"]
            .as_str()
            .expect("a jwks_uri")
            .to_owned();
        let jwks = get_json(&jwks_uri).await;
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| {
                let field = |name: &str| k[name].as_str().unwrap_or_default().to_owned();
                (field("kid"), (field("kty"), field("alg")))
            })
            .collect()
    }

    /// A client_credentials token (client_secret_basic) for `resource`, if any; DPoP-bound to
    /// `dpop`'s key when given (the request carries its proof for the token endpoint).
    async fn token(
        &self,
        client_id: &str,
        scope: &str,
        resource: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Value {
        let token_endpoint = self.discovery().await["token_endpoint"]
            .as_str()
            .expect("a token_endpoint")
            .to_owned();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("scope", scope);
        if let Some(resource) = resource {
            form.append_pair("resource", resource);
        }
        let mut request = http()
            .post(&token_endpoint)
            .basic_auth(client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        if let Some(key) = dpop {
            // RFC 9449 §5: htm POST, htu the token endpoint, no `ath` (no token yet).
            request = request.header("dpop", key.proof("POST", &token_endpoint, None));
        }
        let reply = Reply::read(request.send().await.expect("POST to the token endpoint")).await;
        assert_eq!(
            reply.status,
            200,
            "token request: {}\n{}",
            reply.describe(),
            self.running.output()
        );
        reply.json()
    }

    /// A JWT (bearer) access token for the calendar `resource`.
    async fn access_token(&self, client_id: &str, scope: &str, resource: &str) -> Jwt {
        self.jwt_access_token(client_id, scope, resource, None)
            .await
    }

    /// A JWT access token for `resource` bound to `key` (`token_type: DPoP`, `cnf.jkt`).
    async fn dpop_access_token(
        &self,
        client_id: &str,
        scope: &str,
        resource: &str,
        key: &DpopKey,
    ) -> Jwt {
        self.jwt_access_token(client_id, scope, resource, Some(key))
            .await
    }

    async fn jwt_access_token(
        &self,
        client_id: &str,
        scope: &str,
        resource: &str,
        dpop: Option<&DpopKey>,
    ) -> Jwt {
        let response = self.token(client_id, scope, Some(resource), dpop).await;
        let token_type = if dpop.is_some() { "DPoP" } else { "Bearer" };
        assert_eq!(response["token_type"], token_type, "{response}");
        assert_eq!(response["expires_in"], ACCESS_TOKEN_TTL, "{response}");
        assert_eq!(response["scope"], scope, "{response}");
        Jwt::parse(response["access_token"].as_str().expect("an access_token"))
    }
}

/// The calendar example pointed at `issuer`, on a resource URL chosen beforehand, with `env`
/// (`MCP_OAUTH_DPOP`, …) besides.
fn start_calendar(resource: &str, issuer: &str, env: &[(&str, &str)]) -> Running {
    let mut command = example_command("calendar");
    command
        .env("MCP_OAUTH_RESOURCE", resource)
        .env("MCP_OAUTH_ISSUER", issuer)
        .envs(env.iter().copied());
    let calendar = Running::start_example("calendar", command);
    assert_eq!(calendar.banner_value("issuer:"), issuer);
    assert_eq!(calendar.banner_value("tokens:"), format!("from {issuer}"));
    calendar
}

/// A fresh calendar resource URL, the provider issuing tokens for it, and the calendar
/// (started with `env`).
fn start_both(env: &[(&str, &str)]) -> (OidcProvider, Running, String) {
    let resource = format!("http://127.0.0.1:{}/mcp", free_port());
    let provider = OidcProvider::start(&[&resource, OTHER_RESOURCE]);
    let calendar = start_calendar(&resource, &provider.issuer, env);
    (provider, calendar, resource)
}

/// Asserts the calendar's logs hold none of the tokens, not even a signature.
fn assert_not_logged(calendar: &Running, tokens: &[&Jwt]) {
    let logs = calendar.output();
    for token in tokens {
        let signature = token.raw.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "a token (or its signature) was logged:\n{logs}"
        );
    }
}

// --- A JWT, decoded for inspection (not verified: the calendar does that) ---

/// base64url without padding (RFC 7515 §2), as JWS compact serialization uses.
fn base64url_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {text:?}"),
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c) << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

struct Jwt {
    raw: String,
    header: Value,
    claims: Value,
}

impl Jwt {
    fn parse(raw: &str) -> Self {
        let parts: Vec<&str> = raw.split('.').collect();
        assert_eq!(parts.len(), 3, "a JWS in compact serialization: {raw}");
        let part = |i: usize| -> Value {
            serde_json::from_slice(&base64url_decode(parts[i]))
                .unwrap_or_else(|e| panic!("JWT part {i} is not JSON ({e}): {raw}"))
        };
        Self {
            raw: raw.to_owned(),
            header: part(0),
            claims: part(1),
        }
    }

    fn kid(&self) -> &str {
        self.header["kid"].as_str().expect("a kid")
    }

    /// `Authorization: DPoP` with this token and a fresh proof by `key` for each request.
    fn dpop<'a>(&'a self, key: &'a DpopKey) -> Auth<'a> {
        Auth::Dpop(&self.raw, key)
    }

    /// Asserts the RFC 9068 shape oidc-provider gives its JWT access tokens; with `jkt`, a
    /// DPoP-bound one (RFC 9449 §6.1: `cnf.jkt`, the proof key's thumbprint).
    fn assert_rfc9068(
        &self,
        alg: &str,
        issuer: &str,
        resource: &str,
        client_id: &str,
        jkt: Option<&str>,
    ) {
        let header = &self.header;
        assert_eq!(header["alg"], alg, "{header}");
        assert_eq!(header["typ"], "at+jwt", "RFC 9068 §2.1: {header}");
        assert!(header["kid"].is_string(), "{header}");
        let keys: BTreeSet<&str> = header
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["alg", "typ", "kid"]), "{header}");

        let claims = &self.claims;
        assert_eq!(claims["iss"], issuer, "{claims}");
        assert_eq!(claims["aud"], resource, "RFC 8707: {claims}");
        assert_eq!(claims["client_id"], client_id, "{claims}");
        assert_eq!(
            claims["sub"], client_id,
            "a client_credentials token's subject is the client: {claims}"
        );
        assert!(
            claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
            "{claims}"
        );
        let iat = claims["iat"].as_u64().expect("iat");
        assert_eq!(
            claims["exp"].as_u64(),
            Some(iat + ACCESS_TOKEN_TTL),
            "{claims}"
        );
        assert!(claims["scope"].is_string(), "{claims}");
        let names: BTreeSet<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = BTreeSet::from([
            "iss",
            "aud",
            "sub",
            "client_id",
            "jti",
            "iat",
            "exp",
            "scope",
        ]);
        if let Some(jkt) = jkt {
            expected.insert("cnf");
            assert_eq!(claims["cnf"], json!({ "jkt": jkt }), "{claims}");
        }
        assert_eq!(names, expected, "{claims}");
    }
}

// --- Raw HTTP ---

async fn get_json(url: &str) -> Value {
    let reply = Reply::read(http().get(url).send().await.expect("GET")).await;
    assert_eq!(reply.status, 200, "GET {url}: {}", reply.describe());
    reply.json()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every `WWW-Authenticate` challenge of a reply, in order: its scheme and parameters.
fn challenges(reply: &Reply) -> Vec<(String, Vec<(String, String)>)> {
    reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|value| {
            let text = value.to_str().expect("a visible-ASCII challenge");
            let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
            // `challenge::parse` reads a Bearer challenge's parameters; a DPoP challenge's
            // have the same syntax (RFC 9449 §7.1).
            let params = mcp_oauth::challenge::parse(&format!("Bearer {rest}"))
                .unwrap_or_else(|| panic!("not a well-formed challenge: {text:?}"));
            (scheme.to_owned(), params)
        })
        .collect()
}

/// Asserts a 401 whose challenges are, in order, `expected` (scheme, `error`): each names the
/// resource's metadata, and each `DPoP` one the proof algorithms (ES256 among them).
fn assert_401(reply: &Reply, resource: &str, expected: &[(&str, Option<&str>)]) {
    assert_eq!(reply.status, 401, "{}", reply.describe());
    let challenges = challenges(reply);
    let found: Vec<(&str, Option<&str>)> = challenges
        .iter()
        .map(|(scheme, params)| (scheme.as_str(), param(params, "error")))
        .collect();
    assert_eq!(found, expected, "{challenges:?}\n{}", reply.describe());
    for (scheme, params) in &challenges {
        assert_eq!(
            param(params, "resource_metadata"),
            Some(metadata_url(resource).as_str()),
            "{challenges:?}"
        );
        let algs = param(params, "algs");
        if scheme == "DPoP" {
            assert!(
                algs.is_some_and(|algs| algs.split(' ').any(|alg| alg == "ES256")),
                "{challenges:?}"
            );
        } else {
            assert_eq!(algs, None, "{challenges:?}");
        }
    }
}

/// How a request presents its access token.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` with a fresh proof by the key (htm POST, htu the MCP URL,
    /// `ath` of the token).
    Dpop(&'a str, &'a DpopKey),
    /// `Authorization: DPoP <token>` with exactly these `DPoP` headers (none, a replayed one).
    DpopWith(&'a str, &'a [&'a str]),
}

impl Auth<'_> {
    fn token(&self) -> &str {
        match self {
            Auth::Bearer(token) | Auth::Dpop(token, _) | Auth::DpopWith(token, _) => token,
        }
    }

    /// The scheme its challenges come in.
    fn scheme(&self) -> &'static str {
        match self {
            Auth::Bearer(_) => "Bearer",
            Auth::Dpop(..) | Auth::DpopWith(..) => "DPoP",
        }
    }
}

impl<'a> From<&'a Jwt> for Auth<'a> {
    fn from(token: &'a Jwt) -> Self {
        Auth::Bearer(&token.raw)
    }
}

impl<'a> From<&'a str> for Auth<'a> {
    fn from(token: &'a str) -> Self {
        Auth::Bearer(token)
    }
}

/// The `kid` of a JWT's header, for messages (`none` for an opaque token).
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap_or_default();
    serde_json::from_slice::<Value>(&base64url_decode(header))
        .ok()
        .and_then(|header| header["kid"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".to_owned())
}

/// Raw Streamable HTTP calls to the calendar.
struct Mcp {
    http: reqwest::Client,
    url: String,
}

/// An initialized MCP session with the token (and DPoP key) that opened it.
struct Session<'a> {
    mcp: &'a Mcp,
    auth: Auth<'a>,
    id: String,
    next_id: u64,
}

impl Mcp {
    fn new(url: &str) -> Self {
        Self {
            http: http(),
            url: url.to_owned(),
        }
    }

    async fn post(&self, auth: Auth<'_>, session: Option<&str>, message: &Value) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(message.to_string());
        request = match auth {
            Auth::Bearer(token) => request.header("authorization", format!("Bearer {token}")),
            Auth::Dpop(token, key) => request
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", key.proof("POST", &self.url, Some(token))),
            Auth::DpopWith(token, proofs) => proofs.iter().fold(
                request.header("authorization", format!("DPoP {token}")),
                |request, proof| request.header("dpop", *proof),
            ),
        };
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        Reply::read(request.send().await.expect("POST to the MCP endpoint")).await
    }

    fn initialize_message() -> Value {
        json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "oidc_provider", "version": "1" },
            },
        })
    }

    /// `initialize` with `auth` (a bearer token, or a DPoP-bound one), whatever the answer.
    async fn try_initialize<'a>(&self, auth: impl Into<Auth<'a>>) -> Reply {
        self.post(auth.into(), None, &Self::initialize_message())
            .await
    }

    /// `initialize` then `notifications/initialized`, with `auth` (which must be accepted).
    async fn initialize<'a>(&'a self, auth: impl Into<Auth<'a>>, what: &str) -> Session<'a> {
        let auth = auth.into();
        let reply = self.try_initialize(auth).await;
        assert_eq!(
            reply.status,
            200,
            "initialize with {what} (kid {}): {}",
            kid_of(auth.token()),
            reply.describe()
        );
        let id = reply
            .header("mcp-session-id")
            .expect("an Mcp-Session-Id")
            .to_owned();
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let reply = self.post(auth, Some(&id), &initialized).await;
        assert_eq!(
            reply.status,
            202,
            "notifications/initialized: {}",
            reply.describe()
        );
        Session {
            mcp: self,
            auth,
            id,
            next_id: 1,
        }
    }
}

impl Session<'_> {
    async fn call_tool(&mut self, name: &str, arguments: Value) -> Reply {
        self.call_tool_as(self.auth, name, arguments).await
    }

    /// A `tools/call` in this session with other credentials (a replayed proof, …).
    async fn call_tool_as(&mut self, auth: Auth<'_>, name: &str, arguments: Value) -> Reply {
        self.next_id += 1;
        let message = json!({
            "jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": { "name": name, "arguments": arguments },
        });
        self.mcp.post(auth, Some(&self.id), &message).await
    }

    /// `tools/list`: the names of the tools, sorted.
    async fn list_tools(&mut self) -> Vec<String> {
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": self.next_id, "method": "tools/list" });
        let reply = self.mcp.post(self.auth, Some(&self.id), &message).await;
        assert_eq!(reply.status, 200, "tools/list: {}", reply.describe());
        let message = reply.json();
        assert_eq!(message["id"], self.next_id, "tools/list: {message}");
        let mut names: Vec<String> = message["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list: no tools: {message}"))
            .iter()
            .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Calls a tool that must succeed; returns the JSON its text content holds.
    async fn call_ok(&mut self, name: &str, arguments: Value) -> Value {
        let reply = self.call_tool(name, arguments).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.describe());
        let message = reply.json();
        assert_eq!(message["id"], self.next_id, "{name}: {message}");
        let result = &message["result"];
        assert_eq!(result["isError"], false, "{name}: {message}");
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no text content: {message}"));
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{name}: text is not JSON ({e}): {text}"))
    }

    /// Calls a tool the token's scopes do not cover: 403 `insufficient_scope` naming `needed`.
    async fn call_refused(&mut self, name: &str, needed: &str) {
        let reply = self.call_tool(name, json!({})).await;
        assert_eq!(
            reply.status,
            403,
            "{name} without {needed}: {}",
            reply.describe()
        );
        let challenges = challenges(&reply);
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        let (scheme, challenge) = &challenges[0];
        assert_eq!(scheme, self.auth.scheme(), "{challenges:?}");
        assert_eq!(
            param(challenge, "error"),
            Some("insufficient_scope"),
            "{challenge:?}"
        );
        assert_eq!(param(challenge, "scope"), Some(needed), "{challenge:?}");
        assert_eq!(
            param(challenge, "resource_metadata"),
            Some(metadata_url(&self.mcp.url).as_str()),
            "{challenge:?}"
        );
    }

    async fn whoami(&mut self) -> Value {
        self.call_ok("whoami", json!({})).await
    }
}

// --- The TypeScript SDK client ---

/// Runs `node <script>` in the TypeScript client's directory with `env`; asserts it succeeds
/// and returns its JSON summary (its last line).
fn run_ts_script(script: &str, env: &[(&str, &str)]) -> Value {
    support::run_node_script(&ts_dir(), script, &[], env, SCRIPT_TIMEOUT)
}

/// Asserts the first exchanges are the discovery a client does from a 401 alone: the
/// challenge, the protected-resource metadata it points to, then the RFC 8414 metadata of the
/// issuer that document names (oidc-provider serves it next to its OpenID Connect discovery).
fn assert_discovery_from_the_401(http: &Value, resource: &str, issuer: &str) {
    let http = http.as_array().expect("an HTTP log");
    let exchanges: Vec<String> = http
        .iter()
        .take(4)
        .map(|e| format!("{} {} {}", e["method"], e["url"], e["status"]))
        .collect();
    let first = &http[0];
    assert_eq!(
        (first["method"].as_str(), first["url"].as_str()),
        (Some("POST"), Some(resource)),
        "{exchanges:?}"
    );
    assert_eq!(first["status"], 401, "{first}");
    let header = first["www_authenticate"].as_str().expect("a challenge");
    let params = mcp_oauth::challenge::parse(header).expect("a Bearer challenge");
    assert_eq!(
        param(&params, "resource_metadata"),
        Some(metadata_url(resource).as_str()),
        "{params:?}"
    );
    assert_eq!(param(&params, "error"), None, "{params:?}");
    let expected = [
        ("GET", metadata_url(resource), 200),
        (
            "GET",
            format!("{issuer}/.well-known/oauth-authorization-server"),
            200,
        ),
    ];
    for (exchange, (method, url, status)) in http[1..].iter().zip(expected) {
        assert_eq!(
            (
                exchange["method"].as_str(),
                exchange["url"].as_str(),
                exchange["status"].as_u64()
            ),
            (Some(method), Some(url.as_str()), Some(status)),
            "{exchanges:?}"
        );
    }
}

fn token_requests(log: &Value) -> Vec<&Value> {
    log.as_array()
        .expect("an HTTP log")
        .iter()
        .filter(|e| e["form"]["grant_type"].is_string())
        .collect()
}

#[test]
fn the_typescript_sdk_discovers_oidc_provider_from_a_401_and_calls_each_tool() {
    let (provider, calendar, resource) = start_both(&[]);
    let summary = run_ts_script(
        "client_credentials.mjs",
        &[
            ("MCP_URL", &resource),
            ("CLIENT_ID", &provider.client_id),
            ("CLIENT_SECRET", &provider.client_secret),
            ("ISSUER", &provider.issuer),
            ("SCOPE", ALL_SCOPES),
        ],
    );
    assert_discovery_from_the_401(&summary["http"], &resource, &provider.issuer);

    let requests = token_requests(&summary["http"]);
    assert_eq!(requests.len(), 1, "{summary}");
    let request = requests[0];
    assert_eq!(
        request["url"],
        format!("{}/token", provider.issuer),
        "{summary}"
    );
    assert_eq!(request["status"], 200, "{summary}");
    assert_eq!(
        request["form"]["grant_type"], "client_credentials",
        "{summary}"
    );
    assert_eq!(
        request["form"]["resource"], resource,
        "RFC 8707 resource = the MCP URL: {summary}"
    );
    assert_eq!(request["form"]["scope"], ALL_SCOPES, "{summary}");
    assert_eq!(
        summary["granted_scopes"],
        json!(["calendar:read", "calendar:write", "calendar:admin"]),
        "{summary}"
    );

    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tools,
        [
            "create_event",
            "delete_calendar",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    let calls: Vec<&str> = summary["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["tool"].as_str())
        .collect();
    assert_eq!(
        calls,
        [
            "list_events",
            "create_event",
            "delete_event",
            "whoami",
            "delete_calendar"
        ],
        "every tool is called: {summary}"
    );
    assert_eq!(summary["skipped"], json!([]), "{summary}");
    let whoami = &summary["calls"][3]["result"];
    assert_eq!(whoami["client_id"], provider.client_id, "{summary}");
    assert_eq!(whoami["subject"], provider.client_id, "{summary}");
    assert_eq!(
        summary["calls"][1]["result"]["created_by"], provider.client_id,
        "{summary}"
    );
    assert_eq!(
        summary["calls"][2]["result"],
        json!({ "deleted": 1 }),
        "{summary}"
    );
    assert_eq!(
        summary["calls"][4]["result"],
        json!({ "deleted": 1 }),
        "the seeded event: {summary}"
    );

    let mcp: Vec<(&str, u64)> = summary["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["url"] == resource.as_str())
        .filter_map(|e| Some((e["rpc"].as_str().unwrap_or("GET"), e["status"].as_u64()?)))
        .collect();
    assert!(
        mcp.iter().skip(1).all(|(_, s)| *s < 300),
        "once authorized, nothing is refused: {mcp:?}\n{}",
        calendar.output()
    );
    drop(calendar);
    drop(provider);
}

#[test]
fn the_typescript_sdk_is_refused_with_a_calendar_read_token_and_succeeds_with_calendar_admin() {
    let (provider, calendar, resource) = start_both(&[]);
    let summary = run_ts_script(
        "step_up_static_client.mjs",
        &[
            ("MCP_URL", &resource),
            ("CLIENT_ID", &provider.client_id),
            ("CLIENT_SECRET", &provider.client_secret),
            ("ISSUER", &provider.issuer),
        ],
    );
    let narrow = &summary["narrow"];
    assert_discovery_from_the_401(&narrow["http"], &resource, &provider.issuer);
    assert_eq!(
        narrow["granted_scopes"],
        json!(["calendar:read"]),
        "{summary}"
    );
    assert_eq!(
        narrow["whoami"]["scopes"],
        json!(["calendar:read"]),
        "{summary}"
    );
    assert!(narrow["list_events"].is_array(), "{summary}");
    for request in token_requests(&narrow["http"]) {
        assert_eq!(request["status"], 200, "{summary}");
        assert_eq!(request["form"]["scope"], "calendar:read", "{summary}");
        assert_eq!(request["form"]["resource"], resource, "{summary}");
    }
    // SDK 1.32.2 re-runs auth() once on the 403 (a client-credentials provider asks for its
    // configured scope again), retries, then gives up with a StreamableHTTPError.
    assert_eq!(narrow["error"]["name"], "StreamableHTTPError", "{summary}");
    assert_eq!(narrow["error"]["code"], 403, "{summary}");
    let challenges = narrow["challenges"].as_array().expect("the 403 challenges");
    assert!(!challenges.is_empty(), "{summary}");
    for challenge in challenges {
        assert_eq!(challenge["error"], "insufficient_scope", "{summary}");
        assert_eq!(
            challenge["scope"], "calendar:admin calendar:read",
            "{summary}"
        );
        assert_eq!(
            challenge["resource_metadata"],
            metadata_url(&resource),
            "{summary}"
        );
    }

    let broad = &summary["broad"];
    assert_eq!(
        broad["granted_scopes"],
        json!(["calendar:admin"]),
        "{summary}"
    );
    let requests = token_requests(&broad["http"]);
    assert_eq!(requests.len(), 1, "{summary}");
    assert_eq!(requests[0]["form"]["scope"], "calendar:admin", "{summary}");
    assert_eq!(
        broad["delete_calendar"],
        json!({ "deleted": 1 }),
        "{summary}"
    );
    assert_eq!(broad["list_events"], json!([]), "{summary}");
    drop(calendar);
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_access_tokens_from_oidc_provider_are_both_accepted() {
    let (provider, calendar, resource) = start_both(&[]);
    let published = provider.published_keys().await;
    let issuer = provider.issuer.as_str();

    let rs256 = provider
        .access_token(
            &provider.client_id,
            "calendar:read calendar:write",
            &resource,
        )
        .await;
    rs256.assert_rfc9068("RS256", issuer, &resource, &provider.client_id, None);
    assert_eq!(
        published.get(rs256.kid()),
        Some(&("RSA".to_owned(), "RS256".to_owned()))
    );
    let es256 = provider
        .access_token(&provider.es256_client_id, "calendar:admin", &resource)
        .await;
    es256.assert_rfc9068("ES256", issuer, &resource, &provider.es256_client_id, None);
    assert_eq!(
        published.get(es256.kid()),
        Some(&("EC".to_owned(), "ES256".to_owned()))
    );

    let mcp = Mcp::new(&resource);
    let mut session = mcp.initialize(&rs256, "the RS256 token").await;
    assert_eq!(
        session.whoami().await,
        json!({
            "subject": provider.client_id,
            "client_id": provider.client_id,
            "scopes": ["calendar:read", "calendar:write"],
        })
    );
    let created = session
        .call_ok("create_event", json!({ "title": "Interop", "when": "now" }))
        .await;
    assert_eq!(created["created_by"], provider.client_id, "{created}");
    session
        // A 2025-x client: the challenge repeats what the token holds.
        .call_refused(
            "delete_calendar",
            "calendar:admin calendar:read calendar:write",
        )
        .await;

    let mut session = mcp.initialize(&es256, "the ES256 token").await;
    assert_eq!(
        session.whoami().await,
        json!({
            "subject": provider.es256_client_id,
            "client_id": provider.es256_client_id,
            "scopes": ["calendar:admin"],
        })
    );
    assert_eq!(
        session.call_ok("delete_calendar", json!({})).await,
        json!({ "deleted": 2 })
    );

    // The same provider's token for another resource: refused (RFC 8707 audience).
    let other = provider
        .access_token(&provider.client_id, ALL_SCOPES, OTHER_RESOURCE)
        .await;
    assert_eq!(other.claims["aud"], OTHER_RESOURCE);
    let reply = mcp.try_initialize(&other).await;
    assert_eq!(reply.status, 401, "{}", reply.describe());
    assert_eq!(
        param(&reply.challenge(), "error"),
        Some("invalid_token"),
        "{}",
        reply.describe()
    );
    // Without a resource indicator oidc-provider issues an opaque token: refused as well.
    let opaque = provider
        .token(&provider.client_id, ALL_SCOPES, None, None)
        .await;
    let opaque = opaque["access_token"].as_str().expect("an access_token");
    assert_eq!(opaque.split('.').count(), 1, "an opaque token: {opaque}");
    let reply = mcp.try_initialize(opaque).await;
    assert_eq!(reply.status, 401, "{}", reply.describe());
    assert_eq!(
        param(&reply.challenge(), "error"),
        Some("invalid_token"),
        "{}",
        reply.describe()
    );

    assert_not_logged(&calendar, &[&rs256, &es256, &other]);
    drop(calendar);
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_rotated_mid_test_is_picked_up_with_one_key_set_refresh_and_old_tokens_still_pass()
 {
    let (provider, calendar, resource) = start_both(&[]);
    let mcp = Mcp::new(&resource);
    let before = provider.published_keys().await;
    assert_eq!(before.len(), 2, "{before:?}");

    // Tokens signed by the first keys; one is used before the rotation, the others only after.
    let old_used = provider
        .access_token(&provider.client_id, "calendar:read", &resource)
        .await;
    let old_unused = provider
        .access_token(&provider.client_id, "calendar:read", &resource)
        .await;
    let old_es256 = provider
        .access_token(&provider.es256_client_id, "calendar:read", &resource)
        .await;
    assert!(before.contains_key(old_used.kid()) && before.contains_key(old_es256.kid()));
    mcp.initialize(&old_used, "a token of the first RS256 key")
        .await
        .whoami()
        .await;
    let fetches = provider.jwks_fetches().await;
    assert_eq!(
        fetches, 2,
        "the calendar loaded the key set once at startup, the test read it once"
    );

    // The provider's key set gains a new RS256 and a new ES256 key, which sign from now on;
    // the previous keys stay published.
    provider.rotate().await;
    let after = provider.published_keys().await;
    let added: BTreeMap<&String, &(String, String)> = after
        .iter()
        .filter(|(kid, _)| !before.contains_key(*kid))
        .collect();
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(
        before.keys().all(|kid| after.contains_key(kid)),
        "{after:?}"
    );
    let mut algs: Vec<&str> = added.values().map(|(_, alg)| alg.as_str()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "RS256"], "{after:?}");

    let new_rs256 = provider
        .access_token(&provider.client_id, "calendar:read", &resource)
        .await;
    new_rs256.assert_rfc9068(
        "RS256",
        &provider.issuer,
        &resource,
        &provider.client_id,
        None,
    );
    assert!(
        added.contains_key(&new_rs256.kid().to_owned()),
        "signed by the new key: {}",
        new_rs256.header
    );
    let fetches = provider.jwks_fetches().await;

    // The unknown kid makes the calendar refresh its key set once.
    let mut session = mcp
        .initialize(&new_rs256, "a token of the new RS256 key")
        .await;
    assert_eq!(session.whoami().await["subject"], provider.client_id);
    let refreshed = provider.jwks_fetches().await;
    assert_eq!(
        refreshed,
        fetches + 1,
        "exactly one key-set refresh for the new kid\n{}",
        calendar.output()
    );

    // Everything else needs no further fetch: the new ES256 key came with the same refresh,
    // and the old keys are still published.
    let new_es256 = provider
        .access_token(&provider.es256_client_id, "calendar:read", &resource)
        .await;
    assert!(
        added.contains_key(&new_es256.kid().to_owned()),
        "signed by the new key: {}",
        new_es256.header
    );
    let another_new = provider
        .access_token(&provider.client_id, "calendar:read", &resource)
        .await;
    let fetches = provider.jwks_fetches().await;
    for (token, what) in [
        (&new_es256, "a token of the new ES256 key"),
        (&old_unused, "an unused token of the old RS256 key"),
        (&old_es256, "an unused token of the old ES256 key"),
        (&old_used, "a token of the old RS256 key, again"),
        (&another_new, "another token of the new RS256 key"),
    ] {
        let mut session = mcp.initialize(token, what).await;
        assert_eq!(
            session.call_ok("list_events", json!({})).await[0]["id"],
            1,
            "{what}"
        );
    }
    assert_eq!(
        provider.jwks_fetches().await,
        fetches,
        "no fetch for known keys\n{}",
        calendar.output()
    );

    assert_not_logged(
        &calendar,
        &[&old_used, &old_unused, &old_es256, &new_rs256, &new_es256],
    );
    drop(calendar);
    drop(provider);
}

// --- DPoP (RFC 9449) ---

const DPOP_REQUIRED: &[(&str, &str)] = &[("MCP_OAUTH_DPOP", "required")];
const DPOP_ALLOWED: &[(&str, &str)] = &[("MCP_OAUTH_DPOP", "allowed")];

/// The calendar's DPoP metadata members: `dpop_signing_alg_values_supported` and
/// `dpop_bound_access_tokens_required` (RFC 9449 §5.2), `null` when absent.
async fn dpop_metadata(resource: &str) -> (Value, Value) {
    let metadata = get_json(&metadata_url(resource)).await;
    (
        metadata["dpop_signing_alg_values_supported"].clone(),
        metadata["dpop_bound_access_tokens_required"].clone(),
    )
}

fn includes_es256(algs: &Value) -> bool {
    algs.as_array()
        .is_some_and(|algs| algs.iter().any(|alg| alg == "ES256"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_bound_token_from_oidc_provider_is_accepted_with_a_fresh_proof_per_request_when_dpop_is_required()
 {
    let (provider, calendar, resource) = start_both(DPOP_REQUIRED);
    let discovery = provider.discovery().await;
    assert!(
        includes_es256(&discovery["dpop_signing_alg_values_supported"]),
        "the provider takes ES256 proofs: {discovery}"
    );
    let (algs, required) = dpop_metadata(&resource).await;
    assert!(includes_es256(&algs), "{algs}");
    assert_eq!(required, true);

    // The token request carries a proof by the client's key: the token is bound to it.
    let key = DpopKey::es256();
    let token = provider
        .dpop_access_token(
            &provider.client_id,
            "calendar:read calendar:write",
            &resource,
            &key,
        )
        .await;
    token.assert_rfc9068(
        "RS256",
        &provider.issuer,
        &resource,
        &provider.client_id,
        Some(&key.jkt()),
    );

    // Every request of the session with a fresh proof: initialize, the notification,
    // tools/list, tools/call.
    let mcp = Mcp::new(&resource);
    let mut session = mcp
        .initialize(token.dpop(&key), "the DPoP-bound token")
        .await;
    assert_eq!(
        session.list_tools().await,
        [
            "create_event",
            "delete_calendar",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    assert_eq!(
        session.whoami().await,
        json!({
            "subject": provider.client_id,
            "client_id": provider.client_id,
            "scopes": ["calendar:read", "calendar:write"],
        })
    );
    let created = session
        .call_ok("create_event", json!({ "title": "DPoP", "when": "now" }))
        .await;
    assert_eq!(created["created_by"], provider.client_id, "{created}");
    // Step-up works as with a bearer token, in the DPoP scheme.
    session
        .call_refused(
            "delete_calendar",
            "calendar:admin calendar:read calendar:write",
        )
        .await;

    // The same token as a bearer token: DPoP is required, so `Bearer` is answered like no
    // credentials, with a DPoP challenge.
    assert_401(
        &mcp.try_initialize(&token).await,
        &resource,
        &[("DPoP", None)],
    );
    // No proof.
    assert_401(
        &mcp.try_initialize(Auth::DpopWith(&token.raw, &[])).await,
        &resource,
        &[("DPoP", Some("invalid_dpop_proof"))],
    );
    // A proof is good for one request: used once, then replayed in the same session.
    let proof = key.proof("POST", &resource, Some(&token.raw));
    let proofs = [proof.as_str()];
    let once = Auth::DpopWith(&token.raw, &proofs);
    let reply = session.call_tool_as(once, "list_events", json!({})).await;
    assert_eq!(
        reply.status,
        200,
        "the proof's first use: {}",
        reply.describe()
    );
    let reply = session.call_tool_as(once, "list_events", json!({})).await;
    assert_401(&reply, &resource, &[("DPoP", Some("invalid_dpop_proof"))]);
    // A valid proof by another key: the token is bound to the first one.
    let other = DpopKey::es256();
    assert_401(
        &mcp.try_initialize(token.dpop(&other)).await,
        &resource,
        &[("DPoP", Some("invalid_token"))],
    );

    // None of that disturbed the session.
    let events = session.call_ok("list_events", json!({})).await;
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");

    assert_not_logged(&calendar, &[&token]);
    drop(calendar);
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dpop_allowed_a_bearer_token_and_a_dpop_bound_token_from_oidc_provider_work_side_by_side()
 {
    let (provider, calendar, resource) = start_both(DPOP_ALLOWED);
    let (algs, required) = dpop_metadata(&resource).await;
    assert!(includes_es256(&algs), "{algs}");
    assert_ne!(required, true);

    let key = DpopKey::es256();
    let bearer = provider
        .access_token(&provider.client_id, "calendar:read", &resource)
        .await;
    bearer.assert_rfc9068(
        "RS256",
        &provider.issuer,
        &resource,
        &provider.client_id,
        None,
    );
    let bound = provider
        .dpop_access_token(&provider.es256_client_id, "calendar:admin", &resource, &key)
        .await;
    bound.assert_rfc9068(
        "ES256",
        &provider.issuer,
        &resource,
        &provider.es256_client_id,
        Some(&key.jkt()),
    );

    let mcp = Mcp::new(&resource);
    let mut plain = mcp.initialize(&bearer, "the bearer token").await;
    let mut dpop = mcp
        .initialize(bound.dpop(&key), "the DPoP-bound token")
        .await;
    assert_eq!(
        plain.whoami().await,
        json!({
            "subject": provider.client_id,
            "client_id": provider.client_id,
            "scopes": ["calendar:read"],
        })
    );
    assert_eq!(
        dpop.whoami().await,
        json!({
            "subject": provider.es256_client_id,
            "client_id": provider.es256_client_id,
            "scopes": ["calendar:admin"],
        })
    );
    assert_eq!(
        plain.call_ok("list_events", json!({})).await[0]["id"],
        1,
        "the seeded event"
    );
    plain
        .call_refused("delete_calendar", "calendar:admin calendar:read")
        .await;
    assert_eq!(
        dpop.call_ok("delete_calendar", json!({})).await,
        json!({ "deleted": 1 })
    );
    assert_eq!(plain.call_ok("list_events", json!({})).await, json!([]));
    assert_eq!(
        dpop.list_tools().await,
        plain.list_tools().await,
        "the same tools either way"
    );

    // Crossed over: the bound token without its proof is refused (RFC 9449 §7.2), and so is
    // the bearer token presented as DPoP-bound, proof or not; each 401 names both schemes.
    assert_401(
        &mcp.try_initialize(&bound).await,
        &resource,
        &[("Bearer", Some("invalid_token")), ("DPoP", None)],
    );
    assert_401(
        &mcp.try_initialize(bearer.dpop(&key)).await,
        &resource,
        &[("DPoP", Some("invalid_token")), ("Bearer", None)],
    );

    assert_not_logged(&calendar, &[&bearer, &bound]);
    drop(calendar);
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dpop_disabled_a_dpop_bound_token_from_oidc_provider_is_refused_as_bearer_and_as_dpop()
{
    let (provider, calendar, resource) = start_both(&[]);
    assert_eq!(
        dpop_metadata(&resource).await,
        (Value::Null, Value::Null),
        "no DPoP member"
    );
    let key = DpopKey::es256();
    let bound = provider
        .dpop_access_token(&provider.client_id, ALL_SCOPES, &resource, &key)
        .await;
    bound.assert_rfc9068(
        "RS256",
        &provider.issuer,
        &resource,
        &provider.client_id,
        Some(&key.jkt()),
    );

    let mcp = Mcp::new(&resource);
    // As a bearer token: its binding cannot be checked, so it is refused.
    assert_401(
        &mcp.try_initialize(&bound).await,
        &resource,
        &[("Bearer", Some("invalid_token"))],
    );
    // With its proof: the `DPoP` scheme is unknown here, answered like no credentials
    // (RFC 6750 §3.1: no error code).
    assert_401(
        &mcp.try_initialize(bound.dpop(&key)).await,
        &resource,
        &[("Bearer", None)],
    );

    // A bearer token of the same provider is still accepted.
    let bearer = provider
        .access_token(&provider.client_id, ALL_SCOPES, &resource)
        .await;
    let mut session = mcp.initialize(&bearer, "a bearer token").await;
    assert_eq!(session.whoami().await["client_id"], provider.client_id);

    assert_not_logged(&calendar, &[&bound, &bearer]);
    drop(calendar);
    drop(provider);
}
