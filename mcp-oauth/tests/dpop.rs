//! DPoP (RFC 9449) through the HTTP layer, driven in process (the layer's service called
//! directly, the peer address handed over as `PeerAddr`, a recording axum endpoint behind it):
//! one test per broken proof, each asserting the 401, its `WWW-Authenticate` values and the
//! audit reason; the `htu` and `iat` normalisations and window edges that must pass; token
//! binding; replay; the nonce flow and the failed-authentication budget; the three modes
//! side by side (SPEC §6, vector 15); the verified-token cache; a step-up on a DPoP request;
//! what the endpoint sees; EdDSA, RS256 and PS256 proof keys.
#![cfg(feature = "layer")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method, Request, StatusCode};
use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome, reason};
use mcp_oauth::challenge;
use mcp_oauth::dpop::{
    DpopConfig, DpopMode, DpopNonces, ReplayFuture, ReplayStore, ReplayStoreError,
};
use mcp_oauth::http::{OAuthLayer, OAuthService, PeerAddr};
use mcp_oauth::rate_limit::{Budget, RateLimits};
use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
use mcp_oauth::testing::dpop::{ath, thumbprint};
use mcp_oauth::testing::keys::weak_rsa_1024;
use mcp_oauth::testing::{DpopKey, SigningAlgorithm, TestIssuer, compact_jws};
use mcp_oauth::tools::{ToolScopes, ToolTable, UnannotatedToolPolicy};
use mcp_oauth::{Clock, IssuerPolicy, ManualClock, ScopeSet, Validator};
use parking_lot::Mutex;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The harness.

const RESOURCE: &str = "https://mcp.example.com/mcp";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// `DEFAULT_PROOF_ALGORITHMS`, as a challenge's `algs` names them.
const DEFAULT_ALGS: &str = "ES256 ES384 EdDSA PS256 RS256";
/// What a 401 asks for: the least privileged declared scope.
const CHALLENGE_SCOPE: &str = "calendar:read";
const PROTOCOL: &str = "2025-06-18";

const DECLARATION: ResourceDeclaration = ResourceDeclaration {
    scopes: &["calendar:read", "calendar:write"],
    scope_implications: &[("calendar:write", "calendar:read")],
    ..ResourceDeclaration::new("Calendar", RESOURCE, &["http://127.0.0.1/issuer"])
};

/// The default proof algorithms.
static CALENDAR: ResourceDeclaration = DECLARATION;

/// Proofs restricted to ES256.
static CALENDAR_ES256_ONLY: ResourceDeclaration = ResourceDeclaration {
    dpop_signing_alg_values_supported: &["ES256"],
    ..DECLARATION
};

/// Collects every audit event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<AuditEvent<'static>>>>);

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        self.0.lock().push(event.clone().into_owned());
    }
}

impl Collect {
    /// The one event recorded since the last call.
    fn one(&self) -> AuditEvent<'static> {
        let mut events = std::mem::take(&mut *self.0.lock());
        assert_eq!(
            events.len(),
            1,
            "exactly one event per decision: {events:#?}"
        );
        events.pop().unwrap()
    }
}

struct Options {
    mode: DpopMode,
    declaration: &'static ResourceDeclaration,
    dpop: DpopConfig,
    limits: RateLimits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: DpopMode::Allowed,
            declaration: &CALENDAR,
            dpop: DpopConfig::default(),
            limits: RateLimits::default(),
        }
    }
}

struct Server {
    issuer: TestIssuer,
    layer: OAuthLayer,
    app: OAuthService<axum::Router>,
    /// The layer's clock (and so DPoP's); tokens are minted and validated on system time.
    clock: ManualClock,
    events: Collect,
    /// The headers of every request the endpoint received.
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    mode: DpopMode,
    algs: &'static str,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// Every `WWW-Authenticate` value, in order: its scheme and its parameters.
    fn challenges(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|value| {
                let text = value.to_str().expect("a visible-ASCII challenge");
                let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
                // `challenge::parse` reads the parameters of a Bearer challenge; the
                // parameter syntax is the same for DPoP.
                let params = challenge::parse(&format!("Bearer {rest}"))
                    .unwrap_or_else(|| panic!("unparseable challenge: {text}"));
                (scheme.to_owned(), params)
            })
            .collect()
    }

    fn nonce(&self) -> Option<String> {
        self.headers
            .get("dpop-nonce")
            .map(|value| value.to_str().unwrap().to_owned())
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `algs` names the accepted algorithms, in no particular order (RFC 9449 §7.1: a
/// space-delimited list).
fn assert_algs(algs: Option<&str>, expected: &str) {
    let set = |list: &str| {
        let mut names: Vec<String> = list.split(' ').map(str::to_owned).collect();
        names.sort();
        names
    };
    let algs = algs.unwrap_or_else(|| panic!("an algs parameter naming {expected}"));
    assert_eq!(set(algs), set(expected), "algs=\"{algs}\"");
}

fn peer() -> SocketAddr {
    "203.0.113.7:50000".parse().unwrap()
}

async fn start() -> Server {
    start_with(Options::default()).await
}

async fn start_with(options: Options) -> Server {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let config = ResourceConfig::from_declaration(options.declaration)
        .unwrap()
        .resource(RESOURCE)
        .authorization_servers([issuer.issuer()])
        .dpop(options.mode);
    let validator = Validator::new(
        IssuerPolicy::builder(issuer.issuer())
            .audience(RESOURCE)
            .jwks_uri(issuer.jwks_uri())
            .build()
            .unwrap(),
    )
    .unwrap();
    let tools = ToolTable::new([
        ToolScopes::new("list_events", &["calendar:read"]),
        ToolScopes::new("create_event", &["calendar:write"]),
    ])
    .with_policy(UnannotatedToolPolicy::Deny);
    let clock = ManualClock::starting_now();
    let events = Collect::default();
    let layer = OAuthLayer::builder(config, validator)
        .tools(tools)
        .rate_limits(options.limits)
        .clock(Arc::new(clock.clone()))
        .audit_sink(events.clone())
        .dpop(options.dpop)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let endpoint_seen = seen.clone();
    // Answers a result, or, asked with `x-step-up: <scope>`, a handler's step-up error.
    let endpoint = axum::routing::any(move |headers: HeaderMap| {
        let seen = endpoint_seen.clone();
        async move {
            let step_up = headers
                .get("x-step-up")
                .map(|scope| ScopeSet::from_space_separated(scope.to_str().unwrap()));
            seen.lock().push(headers);
            let answer = match step_up {
                Some(needed) => json!({"jsonrpc": "2.0", "id": 7, "error": {
                    "code": challenge::INSUFFICIENT_SCOPE_ERROR_CODE,
                    "message": "insufficient scope",
                    "data": challenge::step_up_error_data(
                        &ScopeSet::from_space_separated("calendar:read"),
                        &needed,
                        &needed,
                    ),
                }}),
                None => json!({"jsonrpc": "2.0", "id": 7, "result": {"content": []}}),
            };
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
        }
    });
    let router = axum::Router::new().route("/mcp", endpoint);
    let app = tower_layer::Layer::layer(&layer, router);
    let algs = match options.declaration.dpop_signing_alg_values_supported {
        [] => DEFAULT_ALGS,
        _ => "ES256",
    };
    Server {
        issuer,
        layer,
        app,
        clock,
        events,
        seen,
        mode: options.mode,
        algs,
    }
}

impl Server {
    /// The layer's now, in Unix seconds (what `iat` is compared with).
    fn now(&self) -> u64 {
        self.clock.now().as_secs()
    }

    /// A `calendar:read` token for alice bound to `key` (`cnf.jkt`).
    fn bound_token(&self, key: &DpopKey) -> String {
        self.issuer
            .token()
            .subject("alice")
            .scope("calendar:read")
            .claim("cnf", json!({ "jkt": key.jkt() }))
            .sign()
    }

    /// A `calendar:read` token for bob, not bound to any key.
    fn unbound_token(&self) -> String {
        self.issuer
            .token()
            .subject("bob")
            .scope("calendar:read")
            .sign()
    }

    /// Correct claims for `method` and `htu` with `ath` of `token`, issued at the layer's now.
    fn claims(&self, key: &DpopKey, method: &str, htu: &str, token: &str) -> Value {
        let mut claims = key.claims(method, htu, Some(token));
        claims["iat"] = json!(self.now());
        claims
    }

    /// A correct proof for a `POST` to the resource with `token`.
    fn proof(&self, key: &DpopKey, token: &str) -> String {
        key.sign(&key.header(), &self.claims(key, "POST", RESOURCE, token))
    }

    async fn call(&self, mut request: Request<Body>) -> Reply {
        request.extensions_mut().insert(PeerAddr(peer()));
        let mut service = self.app.clone();
        std::future::poll_fn(|cx| {
            tower_service::Service::<Request<Body>>::poll_ready(&mut service, cx)
        })
        .await
        .unwrap();
        let response = tower_service::Service::call(&mut service, request)
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A request to the endpoint: `POST` calls `tool`, `GET` has no body.
    async fn send(&self, method: Method, tool: &str, headers: &[(&str, &str)]) -> Reply {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .header("host", "mcp.example.com");
        let body = if method == Method::POST {
            builder = builder
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", PROTOCOL);
            Body::from(
                json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}}})
                .to_string(),
            )
        } else {
            Body::empty()
        };
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.call(builder.body(body).unwrap()).await
    }

    /// `POST` `list_events` with `Authorization: DPoP <token>` and one `DPoP` header per proof.
    async fn dpop(&self, token: &str, proofs: &[&str]) -> Reply {
        self.dpop_call("list_events", token, proofs).await
    }

    async fn dpop_call(&self, tool: &str, token: &str, proofs: &[&str]) -> Reply {
        let authorization = format!("DPoP {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        headers.extend(proofs.iter().map(|proof| ("dpop", *proof)));
        self.send(Method::POST, tool, &headers).await
    }

    async fn bearer(&self, token: &str) -> Reply {
        let authorization = format!("Bearer {token}");
        self.send(
            Method::POST,
            "list_events",
            &[("authorization", authorization.as_str())],
        )
        .await
    }

    async fn metadata(&self) -> Value {
        let request = Request::builder()
            .uri(METADATA_PATH)
            .header("host", "mcp.example.com")
            .body(Body::empty())
            .unwrap();
        let reply = self.call(request).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    fn endpoint_calls(&self) -> usize {
        self.seen.lock().len()
    }
}

// ---------------------------------------------------------------------------------------
// Assertions.

/// A 401 of the DPoP verifier: first the `DPoP` challenge with `error`, `resource_metadata`
/// and `algs`; beside it, in allowed mode only, the `Bearer` discovery challenge.
fn assert_dpop_401(server: &Server, reply: &Reply, error: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert!(
        !challenges.is_empty(),
        "a WWW-Authenticate header: {reply:?}"
    );
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "DPoP", "{challenges:?}");
    assert_eq!(param(params, "error"), Some(error), "{challenges:?}");
    assert!(
        param(params, "error_description").is_some_and(|d| !d.is_empty()),
        "{challenges:?}"
    );
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_algs(param(params, "algs"), server.algs);
    match server.mode {
        DpopMode::Allowed => {
            assert_eq!(challenges.len(), 2, "{challenges:?}");
            let (scheme, params) = &challenges[1];
            assert_eq!(scheme, "Bearer", "{challenges:?}");
            assert_eq!(param(params, "error"), None, "{challenges:?}");
            assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
            assert_eq!(param(params, "scope"), Some(CHALLENGE_SCOPE));
            assert_eq!(param(params, "algs"), None, "{challenges:?}");
        }
        _ => assert_eq!(challenges.len(), 1, "{challenges:?}"),
    }
    assert_eq!(reply.body["error"], error, "{reply:?}");
}

/// The audit event of a refused DPoP request that reached the verifier.
fn assert_refused_event(server: &Server, reason: &str) -> AuditEvent<'static> {
    let event = server.events.one();
    assert_eq!(event.outcome, Outcome::Refused, "{event:#?}");
    assert_eq!(event.reason, reason, "{event:#?}");
    assert_eq!(event.status, 401, "{event:#?}");
    assert_eq!(event.scheme, Some("DPoP"), "{event:#?}");
    assert_eq!(event.dpop_jkt, None, "{event:#?}");
    assert!(event.fingerprint.is_some(), "{event:#?}");
    event
}

/// 401 `invalid_dpop_proof`, audited with `reason`, the endpoint not called.
fn assert_proof_refused(server: &Server, reply: &Reply, reason: &str) {
    assert_dpop_401(server, reply, "invalid_dpop_proof");
    assert_eq!(reply.nonce(), None, "no nonces configured");
    assert_refused_event(server, reason);
    assert_eq!(server.endpoint_calls(), 0);
}

/// 401 `invalid_token` in the DPoP scheme, audited with `reason`.
fn assert_dpop_token_refused(server: &Server, reply: &Reply, reason: &str) {
    assert_dpop_401(server, reply, "invalid_token");
    assert_eq!(reply.nonce(), None, "no nonces configured");
    assert_refused_event(server, reason);
    assert_eq!(server.endpoint_calls(), 0);
}

fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.headers.get("www-authenticate").is_none(), "{reply:?}");
}

/// Starts a server with `options`, binds a token to `key`, sends the proofs
/// `make` writes for it (none, one or several) and asserts the `invalid_dpop_proof` refusal.
async fn refused_with(
    options: Options,
    key: DpopKey,
    make: impl FnOnce(&Server, &DpopKey, &str) -> Vec<String>,
    reason: &str,
) -> Server {
    let server = start_with(options).await;
    let token = server.bound_token(&key);
    let proofs = make(&server, &key, &token);
    let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
    let reply = server.dpop(&token, &proofs).await;
    assert_proof_refused(&server, &reply, reason);
    server
}

async fn refused(make: impl FnOnce(&Server, &DpopKey, &str) -> Vec<String>, reason: &str) {
    refused_with(Options::default(), DpopKey::es256(), make, reason).await;
}

/// A proof signed by `key` with one claim changed (`Value::Null` removes it).
fn with_claim(server: &Server, key: &DpopKey, token: &str, name: &str, value: Value) -> String {
    let mut claims = server.claims(key, "POST", RESOURCE, token);
    match value {
        Value::Null => {
            claims.as_object_mut().unwrap().remove(name);
        }
        value => claims[name] = value,
    }
    key.sign(&key.header(), &claims)
}

/// A proof signed by `key` with one header member changed (`Value::Null` removes it).
fn with_header(server: &Server, key: &DpopKey, token: &str, name: &str, value: Value) -> String {
    let mut header = key.header();
    match value {
        Value::Null => {
            header.as_object_mut().unwrap().remove(name);
        }
        value => header[name] = value,
    }
    key.sign(&header, &server.claims(key, "POST", RESOURCE, token))
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

// ---------------------------------------------------------------------------------------
// Broken proofs: 401 `invalid_dpop_proof`, each with its audit reason.

#[tokio::test]
async fn no_dpop_header_is_refused() {
    refused(|_, _, _| Vec::new(), "dpop_proof_missing").await;
}

#[tokio::test]
async fn two_dpop_headers_are_refused_even_if_both_are_valid() {
    refused(
        |server, key, token| vec![server.proof(key, token), server.proof(key, token)],
        "dpop_proof_multiple",
    )
    .await;
}

#[tokio::test]
async fn a_proof_over_8_kib_is_refused() {
    refused(
        |server, key, token| {
            // Correctly signed in every other respect: only its size is wrong.
            let proof = with_claim(server, key, token, "padding", json!("x".repeat(8 * 1024)));
            assert!(proof.len() > mcp_oauth::dpop::MAX_PROOF_BYTES);
            vec![proof]
        },
        "dpop_proof_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_proof_of_exactly_8_kib_is_read() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let claims = server.claims(&key, "POST", RESOURCE, &token);
    let max = mcp_oauth::dpop::MAX_PROOF_BYTES;
    // Pad the header and the claims (base64url never has 4k + 1 characters, so one part
    // alone cannot hit every length) until the compact proof is exactly the limit.
    let padded = |kid: usize, pad: usize| {
        let mut header = key.header();
        header["kid"] = json!("k".repeat(kid + 1));
        let mut claims = claims.clone();
        claims["padding"] = json!("x".repeat(pad));
        key.sign(&header, &claims)
    };
    let estimate = (max - padded(0, 0).len()) * 3 / 4;
    let proof = (0..4)
        .flat_map(|kid| (estimate - 8..estimate + 8).map(move |pad| (kid, pad)))
        .map(|(kid, pad)| padded(kid, pad))
        .find(|proof| proof.len() == max)
        .expect("a proof of exactly MAX_PROOF_BYTES");
    assert_ok(&server.dpop(&token, &[&proof]).await);
    assert_eq!(server.events.one().reason, reason::ALLOWED);
    // One byte more is too large, whatever it says.
    let over = (0..4)
        .flat_map(|kid| (estimate - 8..estimate + 8).map(move |pad| (kid, pad)))
        .map(|(kid, pad)| padded(kid, pad))
        .find(|proof| proof.len() == max + 1)
        .expect("a proof of MAX_PROOF_BYTES + 1");
    server.seen.lock().clear();
    let reply = server.dpop(&token, &[&over]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_too_large");
}

#[tokio::test]
async fn a_proof_that_is_not_a_jws_is_refused() {
    refused(
        |_, _, _| vec!["this-is-not-a-jws".to_owned()],
        "dpop_proof_malformed",
    )
    .await;
}

#[tokio::test]
async fn a_proof_without_typ_is_refused() {
    refused(
        |server, key, token| vec![with_header(server, key, token, "typ", Value::Null)],
        "dpop_proof_wrong_typ",
    )
    .await;
}

#[tokio::test]
async fn a_proof_typed_jwt_is_refused() {
    refused(
        |server, key, token| vec![with_header(server, key, token, "typ", json!("JWT"))],
        "dpop_proof_wrong_typ",
    )
    .await;
}

#[tokio::test]
async fn an_hs256_proof_with_a_symmetric_key_is_refused() {
    let key = DpopKey::generate(SigningAlgorithm::HS256);
    assert_eq!(key.header()["alg"], "HS256");
    assert_eq!(key.public_jwk()["kty"], "oct");
    refused_with(
        Options::default(),
        key,
        |server, key, token| vec![server.proof(key, token)],
        "dpop_proof_algorithm_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_alg_none_proof_is_refused() {
    refused(
        |server, key, token| {
            let mut header = key.header();
            header["alg"] = json!("none");
            let claims = server.claims(key, "POST", RESOURCE, token);
            vec![format!("{}.{}.", b64(&header), b64(&claims))]
        },
        "dpop_proof_algorithm_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn an_algorithm_outside_the_declared_list_is_refused() {
    // EdDSA is accepted by default, but this resource declares ES256 only.
    let server = refused_with(
        Options {
            declaration: &CALENDAR_ES256_ONLY,
            ..Options::default()
        },
        DpopKey::generate(SigningAlgorithm::EdDSA),
        |server, key, token| vec![server.proof(key, token)],
        "dpop_proof_algorithm_not_allowed",
    )
    .await;
    // The declared algorithm itself passes, and the metadata names only it.
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    assert_ok(&server.dpop(&token, &[&server.proof(&key, &token)]).await);
    server.events.one();
    let metadata = server.metadata().await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256"])
    );
}

#[tokio::test]
async fn a_proof_without_jwk_is_refused() {
    refused(
        |server, key, token| vec![with_header(server, key, token, "jwk", Value::Null)],
        "dpop_proof_invalid_key",
    )
    .await;
}

#[tokio::test]
async fn a_jwk_with_a_private_member_is_refused() {
    refused(
        |server, key, token| {
            let mut jwk = key.public_jwk();
            jwk["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
            vec![with_header(server, key, token, "jwk", jwk)]
        },
        "dpop_proof_private_key",
    )
    .await;
}

#[tokio::test]
async fn a_jwk_of_another_key_than_the_signers_is_a_bad_signature() {
    let named = DpopKey::es256();
    refused_with(
        Options::default(),
        // The token is bound to the key the header names: only the signature is wrong.
        named.clone(),
        |server, named, token| {
            let signer = DpopKey::es256();
            let claims = server.claims(named, "POST", RESOURCE, token);
            vec![signer.sign(&named.header(), &claims)]
        },
        "dpop_proof_bad_signature",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_payload_is_a_bad_signature() {
    refused(
        |server, key, token| {
            let proof = server.proof(key, token);
            let parts: Vec<&str> = proof.split('.').collect();
            // Valid claims in every respect, but not the ones signed.
            let other = server.claims(key, "POST", RESOURCE, token);
            vec![format!("{}.{}.{}", parts[0], b64(&other), parts[2])]
        },
        "dpop_proof_bad_signature",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_critical_header_is_refused() {
    refused(
        |server, key, token| {
            let mut header = key.header();
            header["crit"] = json!(["urn:example:ext"]);
            header["urn:example:ext"] = json!(true);
            vec![key.sign(&header, &server.claims(key, "POST", RESOURCE, token))]
        },
        "dpop_proof_unknown_crit",
    )
    .await;
}

#[tokio::test]
async fn a_jku_header_is_refused() {
    refused(
        |server, key, token| {
            vec![with_header(
                server,
                key,
                token,
                "jku",
                json!("https://attacker.example/jwks.json"),
            )]
        },
        "dpop_proof_invalid_key",
    )
    .await;
}

#[tokio::test]
async fn htm_get_on_a_post_is_refused() {
    refused(
        |server, key, token| vec![with_claim(server, key, token, "htm", json!("GET"))],
        "dpop_proof_wrong_htm",
    )
    .await;
}

#[tokio::test]
async fn htm_is_case_sensitive() {
    refused(
        |server, key, token| vec![with_claim(server, key, token, "htm", json!("post"))],
        "dpop_proof_wrong_htm",
    )
    .await;
}

async fn refused_htu(htu: &'static str) {
    refused(
        move |server, key, token| vec![with_claim(server, key, token, "htu", json!(htu))],
        "dpop_proof_wrong_htu",
    )
    .await;
}

#[tokio::test]
async fn htu_of_another_host_is_refused() {
    refused_htu("https://evil.example.com/mcp").await;
}

#[tokio::test]
async fn htu_of_another_scheme_is_refused() {
    refused_htu("http://mcp.example.com/mcp").await;
}

#[tokio::test]
async fn htu_of_another_port_is_refused() {
    refused_htu("https://mcp.example.com:8443/mcp").await;
}

#[tokio::test]
async fn htu_of_another_path_is_refused() {
    refused_htu("https://mcp.example.com/mcp/other").await;
}

#[tokio::test]
async fn a_proof_without_jti_is_refused() {
    refused(
        |server, key, token| vec![with_claim(server, key, token, "jti", Value::Null)],
        "dpop_proof_missing_claim",
    )
    .await;
}

#[tokio::test]
async fn a_proof_without_iat_is_refused() {
    refused(
        |server, key, token| vec![with_claim(server, key, token, "iat", Value::Null)],
        "dpop_proof_missing_claim",
    )
    .await;
}

#[tokio::test]
async fn a_proof_without_ath_is_refused() {
    refused(
        |server, key, token| vec![with_claim(server, key, token, "ath", Value::Null)],
        "dpop_proof_missing_claim",
    )
    .await;
}

#[tokio::test]
async fn ath_of_another_token_is_refused() {
    refused(
        |server, key, _| {
            let other = server.bound_token(key);
            vec![with_claim(server, key, &other, "ath", json!(ath(&other)))]
        },
        "dpop_proof_wrong_ath",
    )
    .await;
}

#[tokio::test]
async fn a_1024_bit_rsa_proof_key_is_refused() {
    let server = start().await;
    let weak = weak_rsa_1024("dpop");
    let mut jwk = weak.public_jwk_without_alg();
    let members = jwk.as_object_mut().unwrap();
    members.remove("kid");
    members.remove("use");
    // Bound to the weak key: the key's size is the only fault.
    let token = server
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .claim("cnf", json!({ "jkt": thumbprint(&jwk) }))
        .sign();
    let header = json!({ "typ": "dpop+jwt", "alg": "RS256", "jwk": jwk });
    let claims = server.claims(&DpopKey::es256(), "POST", RESOURCE, &token);
    let proof = compact_jws(&header, &claims, &weak);
    let reply = server.dpop(&token, &[&proof]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_invalid_key");
}

#[tokio::test]
async fn a_replayed_proof_is_refused_the_second_time() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let proof = server.proof(&key, &token);
    assert_ok(&server.dpop(&token, &[&proof]).await);
    server.events.one();
    server.seen.lock().clear();
    let reply = server.dpop(&token, &[&proof]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_replayed");
}

#[tokio::test]
async fn one_proof_sent_concurrently_passes_once() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let proof = server.proof(&key, &token);
    let proofs = [proof.as_str()];
    let replies = futures::future::join_all((0..8).map(|_| server.dpop(&token, &proofs))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(server.endpoint_calls(), 1);
}

// ---------------------------------------------------------------------------------------
// What passes: htu normalisation, the iat window's edges, jti per key.

#[tokio::test]
async fn a_request_with_a_query_matches_an_htu_with_or_without_it() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    for htu in [RESOURCE, "https://mcp.example.com/mcp?stream=1"] {
        let proof = key.sign(&key.header(), &server.claims(&key, "GET", htu, &token));
        let request = Request::builder()
            .method(Method::GET)
            .uri("/mcp?stream=1")
            .header("host", "mcp.example.com")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        assert_ok(&server.call(request).await);
        assert_eq!(server.events.one().reason, reason::ALLOWED);
    }
}

async fn accepted_htu(htu: &str) {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let proof = with_claim(&server, &key, &token, "htu", json!(htu));
    assert_ok(&server.dpop(&token, &[&proof]).await);
    assert_eq!(server.events.one().reason, reason::ALLOWED);
}

#[tokio::test]
async fn htu_with_a_query_is_compared_without_it() {
    accepted_htu("https://mcp.example.com/mcp?session=1").await;
}

#[tokio::test]
async fn htu_with_an_uppercase_host_is_accepted() {
    accepted_htu("https://MCP.Example.COM/mcp").await;
}

#[tokio::test]
async fn htu_with_the_explicit_default_port_is_accepted() {
    accepted_htu("https://mcp.example.com:443/mcp").await;
}

async fn window_server() -> Server {
    start_with(Options {
        dpop: DpopConfig::default().iat_window(Duration::from_secs(60)),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn iat_in_the_past_at_the_window_edge_passes_and_one_second_more_is_refused() {
    let server = window_server().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let now = server.now();
    let inside = with_claim(&server, &key, &token, "iat", json!(now - 60));
    assert_ok(&server.dpop(&token, &[&inside]).await);
    server.events.one();
    server.seen.lock().clear();
    let outside = with_claim(&server, &key, &token, "iat", json!(now - 61));
    let reply = server.dpop(&token, &[&outside]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_iat_outside_window");
}

#[tokio::test]
async fn iat_in_the_future_at_the_window_edge_passes_and_one_second_more_is_refused() {
    let server = window_server().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let now = server.now();
    let inside = with_claim(&server, &key, &token, "iat", json!(now + 60));
    assert_ok(&server.dpop(&token, &[&inside]).await);
    server.events.one();
    server.seen.lock().clear();
    let outside = with_claim(&server, &key, &token, "iat", json!(now + 61));
    let reply = server.dpop(&token, &[&outside]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_iat_outside_window");
}

#[tokio::test]
async fn the_window_follows_the_layers_clock() {
    let server = window_server().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let written_at = server.now();
    server.clock.advance(Duration::from_secs(61));
    let stale = with_claim(&server, &key, &token, "iat", json!(written_at));
    let reply = server.dpop(&token, &[&stale]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_iat_outside_window");
}

#[tokio::test]
async fn the_same_jti_under_another_key_is_not_a_replay() {
    let server = start().await;
    let (first, second) = (DpopKey::es256(), DpopKey::es256());
    for key in [&first, &second] {
        let token = server.bound_token(key);
        let proof = with_claim(&server, key, &token, "jti", json!("the-same-jti"));
        assert_ok(&server.dpop(&token, &[&proof]).await);
        let event = server.events.one();
        assert_eq!(event.dpop_jkt, Some(key.jkt()));
    }
    // Under the first key again, it is one.
    let token = server.bound_token(&first);
    let proof = with_claim(&server, &first, &token, "jti", json!("the-same-jti"));
    server.seen.lock().clear();
    let reply = server.dpop(&token, &[&proof]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_replayed");
}

// ---------------------------------------------------------------------------------------
// Token binding: 401 `invalid_token`.

#[tokio::test]
async fn a_token_bound_to_another_key_is_refused() {
    let server = start().await;
    let (holder, thief) = (DpopKey::es256(), DpopKey::es256());
    let token = server.bound_token(&holder);
    // A perfect proof, by the wrong key.
    let reply = server.dpop(&token, &[&server.proof(&thief, &token)]).await;
    assert_dpop_token_refused(&server, &reply, "dpop_key_mismatch");
}

#[tokio::test]
async fn an_unbound_token_with_the_dpop_scheme_is_refused() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.unbound_token();
    let reply = server.dpop(&token, &[&server.proof(&key, &token)]).await;
    assert_dpop_token_refused(&server, &reply, "dpop_token_not_bound");
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused_in_allowed_mode() {
    let server = start().await;
    let key = DpopKey::es256();
    let reply = server.bearer(&server.bound_token(&key)).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "Bearer");
    assert_eq!(param(params, "error"), Some("invalid_token"));
    assert!(param(params, "error_description").is_some_and(|d| !d.is_empty()));
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_eq!(param(params, "scope"), Some(CHALLENGE_SCOPE));
    // The DPoP challenge beside it tells the client how to present the token.
    let (scheme, params) = &challenges[1];
    assert_eq!(scheme, "DPoP");
    assert_eq!(param(params, "error"), None);
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_algs(param(params, "algs"), DEFAULT_ALGS);
    let event = server.events.one();
    assert_eq!(event.outcome, Outcome::Refused);
    assert_eq!(event.reason, "sender_constrained");
    assert_eq!(event.scheme, Some("Bearer"));
    assert_eq!(event.dpop_jkt, None);

    // A valid proof beside it does not make a Bearer credential a DPoP one.
    let token = server.bound_token(&key);
    let authorization = format!("Bearer {token}");
    let proof = server.proof(&key, &token);
    let reply = server
        .send(
            Method::POST,
            "list_events",
            &[
                ("authorization", authorization.as_str()),
                ("dpop", proof.as_str()),
            ],
        )
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.challenges()[0].0, "Bearer");
    assert_eq!(
        param(&reply.challenges()[0].1, "error"),
        Some("invalid_token")
    );
    assert_eq!(server.events.one().reason, "sender_constrained");
    assert_eq!(server.endpoint_calls(), 0);
}

// ---------------------------------------------------------------------------------------
// Nonces and the failed-authentication budget.

fn nonces() -> DpopNonces {
    DpopNonces::new([[7u8; 32]])
        .unwrap()
        .lifetime(Duration::from_secs(40))
}

#[tokio::test]
async fn the_nonce_flow_challenges_then_accepts_and_challenges_again_when_it_expires() {
    let server = start_with(Options {
        dpop: DpopConfig::default().nonces(nonces()),
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);

    // No nonce: 401 use_dpop_nonce with the nonce to use.
    let reply = server.dpop(&token, &[&server.proof(&key, &token)]).await;
    assert_dpop_401(&server, &reply, "use_dpop_nonce");
    let nonce = reply
        .nonce()
        .expect("a DPoP-Nonce header with use_dpop_nonce");
    let event = server.events.one();
    assert_eq!(event.reason, "dpop_nonce_required");
    assert_eq!(event.scheme, Some("DPoP"));

    // A nonce the server never issued: challenged again.
    let bogus = with_claim(&server, &key, &token, "nonce", json!("bogus-nonce"));
    let reply = server.dpop(&token, &[&bogus]).await;
    assert_dpop_401(&server, &reply, "use_dpop_nonce");
    assert_eq!(reply.nonce().as_deref(), Some(nonce.as_str()));
    assert_eq!(server.events.one().reason, "dpop_nonce_invalid");
    assert_eq!(server.endpoint_calls(), 0);

    // The retry with it passes, and the success response carries the next nonce.
    let retry = with_claim(&server, &key, &token, "nonce", json!(nonce));
    let reply = server.dpop(&token, &[&retry]).await;
    assert_ok(&reply);
    assert!(
        reply.nonce().is_some(),
        "DPoP-Nonce on a success: {reply:?}"
    );
    let event = server.events.one();
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.dpop_jkt, Some(key.jkt()));

    // Once the nonce's lifetime has passed it is refused, with a fresh one.
    server.clock.advance(Duration::from_secs(60));
    let expired = with_claim(&server, &key, &token, "nonce", json!(nonce));
    let reply = server.dpop(&token, &[&expired]).await;
    assert_dpop_401(&server, &reply, "use_dpop_nonce");
    let fresh = reply.nonce().expect("a new nonce");
    assert_ne!(fresh, nonce);
    assert_eq!(server.events.one().reason, "dpop_nonce_invalid");
    let retry = with_claim(&server, &key, &token, "nonce", json!(fresh));
    assert_ok(&server.dpop(&token, &[&retry]).await);
    server.events.one();
}

#[tokio::test]
async fn nonce_challenges_do_not_spend_the_failed_auth_budget_but_refused_proofs_do() {
    let server = start_with(Options {
        dpop: DpopConfig::default().nonces(nonces()),
        limits: RateLimits::default().failed_auth(Budget::per_minute(2)),
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    for _ in 0..6 {
        let reply = server.dpop(&token, &[&server.proof(&key, &token)]).await;
        assert_dpop_401(&server, &reply, "use_dpop_nonce");
        assert_eq!(server.events.one().reason, "dpop_nonce_required");
    }
    // A conforming client's next step still goes through.
    let nonce = server
        .dpop(&token, &[&server.proof(&key, &token)])
        .await
        .nonce()
        .unwrap();
    server.events.one();
    let good = with_claim(&server, &key, &token, "nonce", json!(nonce));
    assert_ok(&server.dpop(&token, &[&good]).await);
    server.events.one();

    // A forged nonce and a refused proof are charged: they fill the budget of two, and the
    // next refused proof is stopped before it is looked at.
    let forged = with_claim(&server, &key, &token, "nonce", json!("forged-nonce"));
    let reply = server.dpop(&token, &[&forged]).await;
    assert_dpop_401(&server, &reply, "use_dpop_nonce");
    assert_eq!(server.events.one().reason, "dpop_nonce_invalid");
    let wrong = with_claim(&server, &key, &token, "htm", json!("GET"));
    let reply = server.dpop(&token, &[&wrong]).await;
    assert_dpop_401(&server, &reply, "invalid_dpop_proof");
    assert_eq!(server.events.one().reason, "dpop_proof_wrong_htm");
    let wrong = with_claim(&server, &key, &token, "htm", json!("GET"));
    let reply = server.dpop(&token, &[&wrong]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(reply.headers.get("retry-after").is_some());
    assert_eq!(server.events.one().reason, reason::RATE_LIMITED_FAILED_AUTH);
    // Even a good proof from the spent address waits.
    let good = with_claim(&server, &key, &token, "nonce", json!(nonce));
    assert_eq!(server.dpop(&token, &[&good]).await.status, 429);
    assert_eq!(server.events.one().reason, reason::RATE_LIMITED_FAILED_AUTH);
}

/// A replay store that cannot answer.
struct Unavailable;

impl ReplayStore for Unavailable {
    fn remember(&self, _key: [u8; 32], _expires_at: u64, _now: u64) -> ReplayFuture<'_> {
        Box::pin(std::future::ready(Err(ReplayStoreError(
            "the store is down".into(),
        ))))
    }
}

#[tokio::test]
async fn a_replay_store_that_cannot_answer_is_503_and_not_the_clients_failure() {
    let server = start_with(Options {
        dpop: DpopConfig::default().replay_store(Unavailable),
        limits: RateLimits::default().failed_auth(Budget::per_minute(1)),
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    for _ in 0..3 {
        let reply = server.dpop(&token, &[&server.proof(&key, &token)]).await;
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(reply.headers.get("retry-after").is_some(), "{reply:?}");
        let event = server.events.one();
        assert_eq!(event.reason, "dpop_replay_store_unavailable");
        assert_eq!(event.status, 503);
    }
    assert_eq!(server.endpoint_calls(), 0);
    // The budget of one is still whole: a refused proof spends it.
    let wrong = with_claim(&server, &key, &token, "htm", json!("GET"));
    assert_eq!(server.dpop(&token, &[&wrong]).await.status, 401);
    server.events.one();
    let wrong = with_claim(&server, &key, &token, "htm", json!("GET"));
    assert_eq!(server.dpop(&token, &[&wrong]).await.status, 429);
}

// ---------------------------------------------------------------------------------------
// The modes (SPEC §6).

#[tokio::test]
async fn allowed_mode_serves_both_schemes_side_by_side() {
    let server = start().await;

    let bearer = server.unbound_token();
    assert_ok(&server.bearer(&bearer).await);
    let event = server.events.one();
    assert_eq!(event.scheme, Some("Bearer"));
    assert_eq!(event.dpop_jkt, None);

    let key = DpopKey::es256();
    let bound = server.bound_token(&key);
    let reply = server.dpop(&bound, &[&server.proof(&key, &bound)]).await;
    assert_ok(&reply);
    assert_eq!(reply.nonce(), None, "no nonces configured");
    let event = server.events.one();
    assert_eq!(event.scheme, Some("DPoP"));
    assert_eq!(event.dpop_jkt, Some(key.jkt()));

    // Without credentials: a Bearer challenge first, then a DPoP one with algs.
    let reply = server.send(Method::POST, "list_events", &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "Bearer");
    assert_eq!(param(params, "error"), None);
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_eq!(param(params, "scope"), Some(CHALLENGE_SCOPE));
    let (scheme, params) = &challenges[1];
    assert_eq!(scheme, "DPoP");
    assert_eq!(param(params, "error"), None);
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_algs(param(params, "algs"), DEFAULT_ALGS);
    assert_eq!(server.events.one().reason, reason::NO_CREDENTIALS);

    let metadata = server.metadata().await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );
    assert_ne!(metadata["dpop_bound_access_tokens_required"], json!(true));
}

#[tokio::test]
async fn required_mode_answers_bearer_like_no_credentials_with_a_dpop_challenge_only() {
    let server = start_with(Options {
        mode: DpopMode::Required,
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    for token in [server.unbound_token(), server.bound_token(&key)] {
        let reply = server.bearer(&token).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        let challenges = reply.challenges();
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        let (scheme, params) = &challenges[0];
        assert_eq!(scheme, "DPoP");
        assert_eq!(param(params, "error"), None, "{challenges:?}");
        assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
        assert_algs(param(params, "algs"), DEFAULT_ALGS);
        assert_eq!(server.events.one().reason, reason::BEARER_NOT_ACCEPTED);
    }
    // Without credentials, the same single DPoP challenge.
    let reply = server.send(Method::POST, "list_events", &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert_eq!(challenges[0].0, "DPoP");
    assert_eq!(param(&challenges[0].1, "error"), None);
    assert_eq!(
        param(&challenges[0].1, "resource_metadata"),
        Some(METADATA_URL)
    );
    assert_algs(param(&challenges[0].1, "algs"), DEFAULT_ALGS);
    assert_eq!(server.events.one().reason, reason::NO_CREDENTIALS);
    // A proof problem is answered in the DPoP scheme alone.
    let bound = server.bound_token(&key);
    let reply = server.dpop(&bound, &[]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_missing");
    // And a bound token with its proof passes.
    assert_ok(&server.dpop(&bound, &[&server.proof(&key, &bound)]).await);
    assert_eq!(server.events.one().dpop_jkt, Some(key.jkt()));

    let metadata = server.metadata().await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );
    assert_eq!(metadata["dpop_bound_access_tokens_required"], json!(true));
}

#[tokio::test]
async fn disabled_mode_refuses_bound_tokens_and_does_not_know_the_dpop_scheme() {
    let server = start_with(Options {
        mode: DpopMode::Disabled,
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    let bound = server.bound_token(&key);

    // A valid proof changes nothing: the scheme is answered like no credentials.
    let reply = server.dpop(&bound, &[&server.proof(&key, &bound)]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "Bearer");
    assert_eq!(param(params, "error"), None);
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_eq!(param(params, "scope"), Some(CHALLENGE_SCOPE));
    assert_eq!(param(params, "algs"), None);
    let event = server.events.one();
    assert_eq!(event.reason, reason::NO_CREDENTIALS);
    assert_eq!(event.scheme, None, "no token was presented: {event:#?}");

    // As a bearer token it is a sender-constrained token, refused.
    let reply = server.bearer(&bound).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert_eq!(challenges[0].0, "Bearer");
    assert_eq!(param(&challenges[0].1, "error"), Some("invalid_token"));
    assert_eq!(server.events.one().reason, "sender_constrained");
    assert_eq!(server.endpoint_calls(), 0);

    // Plain bearer tokens work; the metadata says nothing of DPoP.
    assert_ok(&server.bearer(&server.unbound_token()).await);
    server.events.one();
    let metadata = server.metadata().await;
    assert!(metadata.get("dpop_signing_alg_values_supported").is_none());
    assert!(metadata.get("dpop_bound_access_tokens_required").is_none());
}

// ---------------------------------------------------------------------------------------
// The cache, step-up, what the endpoint sees, other key types.

#[tokio::test]
async fn the_verified_token_cache_never_skips_the_proof() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    for _ in 0..2 {
        assert_ok(&server.dpop(&token, &[&server.proof(&key, &token)]).await);
        server.events.one();
    }
    let cache = server
        .layer
        .validator()
        .token_cache()
        .expect("a token cache");
    assert!(
        cache.stats().hits >= 1,
        "the second request was answered by the cache: {:?}",
        cache.stats()
    );
    server.seen.lock().clear();

    // The token is cached as verified; without a proof it is still refused.
    let reply = server.dpop(&token, &[]).await;
    assert_proof_refused(&server, &reply, "dpop_proof_missing");
    // With another key's proof it is still bound to its own key.
    let thief = DpopKey::es256();
    let reply = server.dpop(&token, &[&server.proof(&thief, &token)]).await;
    assert_dpop_token_refused(&server, &reply, "dpop_key_mismatch");
    // And as a bearer token it is still sender-constrained.
    assert_eq!(server.bearer(&token).await.status, 401);
    assert_eq!(server.events.one().reason, "sender_constrained");
}

#[tokio::test]
async fn a_step_up_on_a_dpop_request_is_a_dpop_challenge() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let reply = server
        .dpop_call("create_event", &token, &[&server.proof(&key, &token)])
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(
        challenges.len(),
        1,
        "no second scheme on a 403: {challenges:?}"
    );
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "DPoP");
    assert_eq!(param(params, "error"), Some("insufficient_scope"));
    assert!(
        param(params, "scope").is_some_and(|scope| scope.split(' ').any(|s| s == "calendar:write")),
        "{challenges:?}"
    );
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_algs(param(params, "algs"), DEFAULT_ALGS);
    let event = server.events.one();
    assert_eq!(event.reason, reason::INSUFFICIENT_SCOPE);
    assert_eq!(event.status, 403);
    assert_eq!(event.scheme, Some("DPoP"));
    assert_eq!(event.dpop_jkt, Some(key.jkt()));
    assert_eq!(server.endpoint_calls(), 0);
}

#[tokio::test]
async fn a_handlers_step_up_on_a_dpop_request_is_a_dpop_challenge() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let authorization = format!("DPoP {token}");
    let proof = server.proof(&key, &token);
    let reply = server
        .send(
            Method::POST,
            "list_events",
            &[
                ("authorization", authorization.as_str()),
                ("dpop", proof.as_str()),
                ("x-step-up", "calendar:write"),
            ],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    let (scheme, params) = &challenges[0];
    assert_eq!(scheme, "DPoP");
    assert_eq!(param(params, "error"), Some("insufficient_scope"));
    assert!(
        param(params, "scope").is_some_and(|scope| scope.split(' ').any(|s| s == "calendar:write")),
        "{challenges:?}"
    );
    assert_eq!(param(params, "resource_metadata"), Some(METADATA_URL));
    assert_algs(param(params, "algs"), DEFAULT_ALGS);
    let event = server.events.one();
    assert_eq!(event.reason, reason::HANDLER_STEP_UP);
    assert_eq!(event.status, 403);
    assert_eq!(event.scheme, Some("DPoP"));
    assert_eq!(event.dpop_jkt, Some(key.jkt()));
}

#[tokio::test]
async fn a_proof_refused_by_the_per_principal_limit_is_not_spent() {
    let server = start_with(Options {
        limits: RateLimits::default().per_principal(Budget::per_minute(1)),
        ..Options::default()
    })
    .await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    assert_ok(&server.dpop(&token, &[&server.proof(&key, &token)]).await);
    server.events.one();
    let proof = server.proof(&key, &token);
    let reply = server.dpop(&token, &[&proof]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let event = server.events.one();
    assert_eq!(event.reason, reason::RATE_LIMITED_PRINCIPAL);
    assert_eq!(event.scheme, Some("DPoP"));
    // A minute later (still inside the iat window) the same proof is fresh: the replay store
    // only remembers proofs of requests that passed the limit.
    server.clock.advance(Duration::from_secs(60));
    assert_ok(&server.dpop(&token, &[&proof]).await);
    assert_eq!(server.events.one().reason, reason::ALLOWED);
    // And now it is spent.
    server.clock.advance(Duration::from_secs(60));
    let reply = server.dpop(&token, &[&proof]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(server.events.one().reason, "dpop_proof_replayed");
}

#[tokio::test]
async fn the_endpoint_never_sees_the_token_or_the_proof_and_the_audit_names_the_key() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    for method in [Method::POST, Method::GET] {
        let htu_claims = server.claims(&key, method.as_str(), RESOURCE, &token);
        let proof = key.sign(&key.header(), &htu_claims);
        let authorization = format!("DPoP {token}");
        let reply = server
            .send(
                method.clone(),
                "list_events",
                &[
                    ("authorization", authorization.as_str()),
                    ("dpop", proof.as_str()),
                ],
            )
            .await;
        assert_ok(&reply);
        let seen = server.seen.lock().pop().expect("the endpoint was called");
        assert!(seen.get("authorization").is_none(), "{seen:?}");
        assert!(seen.get("dpop").is_none(), "{seen:?}");
        let event = server.events.one();
        assert_eq!(event.outcome, Outcome::Allowed, "{event:#?}");
        assert_eq!(event.reason, reason::ALLOWED);
        assert_eq!(event.status, 200);
        assert_eq!(event.http_method, method.as_str());
        assert_eq!(event.scheme, Some("DPoP"));
        assert_eq!(event.dpop_jkt, Some(key.jkt()));
        assert_eq!(event.subject.as_deref(), Some("alice"));
    }
}

#[tokio::test]
async fn the_dpop_scheme_name_is_case_insensitive() {
    let server = start().await;
    let key = DpopKey::es256();
    let token = server.bound_token(&key);
    let authorization = format!("dpop {token}");
    let proof = server.proof(&key, &token);
    let reply = server
        .send(
            Method::POST,
            "list_events",
            &[
                ("authorization", authorization.as_str()),
                ("dpop", proof.as_str()),
            ],
        )
        .await;
    assert_ok(&reply);
    assert_eq!(server.events.one().scheme, Some("DPoP"));
}

async fn accepted_key(key: DpopKey) {
    let server = start().await;
    let token = server.bound_token(&key);
    let reply = server.dpop(&token, &[&server.proof(&key, &token)]).await;
    assert_ok(&reply);
    let event = server.events.one();
    assert_eq!(event.dpop_jkt, Some(key.jkt()));
}

#[tokio::test]
async fn an_eddsa_proof_key_is_accepted() {
    accepted_key(DpopKey::generate(SigningAlgorithm::EdDSA)).await;
}

#[tokio::test]
async fn an_rs256_proof_key_is_accepted() {
    accepted_key(DpopKey::generate(SigningAlgorithm::RS256)).await;
}

#[tokio::test]
async fn a_ps256_proof_key_is_accepted() {
    accepted_key(DpopKey::generate(SigningAlgorithm::PS256)).await;
}
