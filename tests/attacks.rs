//! Black-box attack suite (issue 6 §2): the calendar example, run as a process and configured
//! through the environment only, against an authorization server this test controls (a
//! `TestIssuer`), attacked over HTTP. One test per attack; each asserts the exact status and
//! challenge parameters, that the server still answers and never panicked, and that its logs
//! (at `RUST_LOG=trace`) hold no raw token and no signature segment, only fingerprints.
//!
//! One calendar process serves every test (started once, killed when the test binary exits);
//! no test changes its state except by attacks that must fail, and each test checks that the
//! calendar's seeded event is still there where an attack would have deleted it.
//!
//! The binary comes from `target/<profile>/examples/`: a plain `cargo test` builds it; before
//! `cargo test --test attacks`, run `cargo build --examples`.

#[path = "support/harness.rs"]
mod harness;
#[path = "../examples/calendar/server.rs"]
#[allow(dead_code)]
mod server;
mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use harness::{
    Calendar, STATELESS_VERSION, calendar_resource, initialize_message, kill_on_exit,
    on_background, params, raw_exchange, raw_status, start_calendar, tool_call,
};
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth::validation::{TokenError, TokenFingerprint};
use serde_json::{Value, json};
use support::{Reply, http_client};

/// The scopes a 401 challenge asks for: the calendar's narrowest scope (`calendar:write` and
/// `calendar:admin` imply `calendar:read`).
const CHALLENGE_SCOPE: &str = "calendar:read";
/// The seeded event of the calendar; a successful forbidden `delete_calendar` would remove it.
const SEED_EVENT: &str = "Stand-up";

// ---------------------------------------------------------------------------------------
// The target: one calendar process, the issuer it trusts, another issuer, a sink.

struct Target {
    /// The authorization server the calendar trusts (RS256 `key-1`).
    issuer: TestIssuer,
    /// Another authorization server (ES256), minting tokens for the same audience.
    other: TestIssuer,
    calendar: Mutex<Calendar>,
    resource: String,
    /// `127.0.0.1:PORT` of the calendar.
    addr: String,
    metadata_url: String,
    /// `http://127.0.0.1:PORT` of a listener that must never be connected to.
    sink_url: String,
    sink_connections: Arc<AtomicUsize>,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let resource = calendar_resource();
    let audience = resource.clone();
    let (issuer, other) = on_background(async move {
        let issuer = TestIssuer::builder().audience(&audience).start().await;
        let other = TestIssuer::builder()
            .audience(&audience)
            .algorithm(SigningAlgorithm::ES256)
            .start()
            .await;
        (issuer, other)
    });
    let (sink_url, sink_connections) = start_sink();
    let calendar = start_calendar(&resource, &issuer, "trace");
    kill_on_exit(calendar.pid);
    let addr = url::Url::parse(&resource)
        .map(|u| format!("127.0.0.1:{}", u.port().unwrap()))
        .unwrap();
    let metadata_url = calendar.metadata_url.clone();
    Target {
        issuer,
        other,
        calendar: Mutex::new(calendar),
        resource,
        addr,
        metadata_url,
        sink_url,
        sink_connections,
    }
});

fn target() -> &'static Target {
    &TARGET
}

/// A TCP listener counting the connections it receives (every one is a failure: the server
/// must never fetch a URL a token names).
fn start_sink() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut stream) = stream {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut [0u8; 1024]);
            }
        }
    });
    (url, count)
}

impl Target {
    fn output(&self) -> String {
        self.calendar.lock().unwrap().process.output()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(&self, scope: &str) -> String {
        self.issuer.token().scope(scope).sign()
    }
}

// ---------------------------------------------------------------------------------------
// One attack: the requests it sends, the tokens it used, and the checks every attack ends
// with.

struct Attack {
    t: &'static Target,
    http: reqwest::Client,
    /// Tokens sent: none may appear in the logs, nor their signature or claims segment.
    sent: Vec<String>,
    /// Tokens the validator judged and refused: their fingerprint must be in the audit log.
    fingerprinted: Vec<String>,
}

/// A request to the MCP endpoint, described.
struct Call<'a> {
    token: Option<&'a str>,
    body: Value,
    version: &'a str,
    session: Option<&'a str>,
    mcp_name: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A stateless (2026-07-28) `tools/call` of `list_events`, with its SEP-2243 headers.
    fn list_events(token: &'a str) -> Self {
        Self {
            token: Some(token),
            body: tool_call(1, "list_events", json!({}), STATELESS_VERSION),
            version: STATELESS_VERSION,
            session: None,
            mcp_name: Some("list_events"),
        }
    }
}

impl Attack {
    /// A new attack, from its own loopback address (`127.0.1.N`): each attack's failed
    /// authentications stay in their own per-address budget if the server rate-limits them.
    fn new() -> Self {
        static NEXT_ADDRESS: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT_ADDRESS.fetch_add(1, Ordering::SeqCst);
        let address = std::net::Ipv4Addr::new(127, 0, 1, (n % 250) as u8 + 1);
        Self {
            t: target(),
            http: reqwest::Client::builder()
                .no_proxy()
                .local_address(std::net::IpAddr::V4(address))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            sent: Vec::new(),
            fingerprinted: Vec::new(),
        }
    }

    fn request(&self, call: &Call<'_>) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.t.resource)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", call.version)
            .body(call.body.to_string());
        if let Some(method) = call.body.get("method").and_then(Value::as_str)
            && call.version >= STATELESS_VERSION
        {
            request = request.header("mcp-method", method);
        }
        if let Some(name) = call.mcp_name {
            request = request.header("mcp-name", name);
        }
        if let Some(session) = call.session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(token) = call.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request
    }

    async fn call(&mut self, call: Call<'_>) -> Reply {
        if let Some(token) = call.token {
            self.sent.push(token.to_owned());
        }
        let request = self.request(&call);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::read(request.send().await.expect("the server answers")).await
    }

    /// `token` (the credential after `Bearer `) gets 401 `invalid_token` with `error`'s
    /// description, the challenge scope and the metadata URL: nothing else.
    async fn refused(&mut self, label: &str, token: &str, error: TokenError) {
        let reply = self.call(Call::list_events(token)).await;
        self.fingerprinted.push(token.to_owned());
        assert_eq!(reply.status, 401, "{label}: {}", reply.describe());
        assert_eq!(
            reply.challenge(),
            params(&[
                ("error", "invalid_token"),
                ("error_description", error.description()),
                ("scope", CHALLENGE_SCOPE),
                ("resource_metadata", &self.t.metadata_url),
            ]),
            "{label}: {}",
            reply.describe()
        );
        assert_eq!(
            reply.json()["error"],
            "invalid_token",
            "{label}: {}",
            reply.describe()
        );
    }

    /// `token` gets 200 and the tool's result (the seeded event listed).
    async fn accepted(&mut self, label: &str, token: &str) {
        let reply = self.call(Call::list_events(token)).await;
        assert_eq!(reply.status, 200, "{label}: {}", reply.describe());
        let message = reply.json();
        let text = message["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{label}: no tool result: {message}"));
        assert!(text.contains(SEED_EVENT), "{label}: {text}");
    }

    /// The discovery challenge: 401 with `resource_metadata` and `scope`, no `error`.
    fn assert_discovery(&self, label: &str, reply: &Reply) {
        assert_eq!(reply.status, 401, "{label}: {}", reply.describe());
        assert_eq!(
            reply.challenge(),
            params(&[
                ("scope", CHALLENGE_SCOPE),
                ("resource_metadata", &self.t.metadata_url),
            ]),
            "{label}"
        );
    }

    /// 400 `invalid_request` with this description and the metadata URL.
    fn assert_invalid_request(&self, label: &str, reply: &Reply, description: &str) {
        assert_eq!(reply.status, 400, "{label}: {}", reply.describe());
        assert_eq!(
            reply.challenge(),
            params(&[
                ("error", "invalid_request"),
                ("error_description", description),
                ("resource_metadata", &self.t.metadata_url),
            ]),
            "{label}"
        );
    }

    /// 403 `insufficient_scope` naming exactly `scope`.
    fn assert_insufficient_scope(&self, label: &str, reply: &Reply, scope: &str) {
        assert_eq!(reply.status, 403, "{label}: {}", reply.describe());
        assert_eq!(
            reply.challenge(),
            params(&[
                ("error", "insufficient_scope"),
                (
                    "error_description",
                    "The token lacks scopes this operation needs"
                ),
                ("scope", scope),
                ("resource_metadata", &self.t.metadata_url),
            ]),
            "{label}"
        );
    }

    /// A 400 the layer answers without a challenge (the request, not the token, is wrong):
    /// its JSON body.
    fn bad_request_body(label: &str, reply: &Reply) -> serde_json::Value {
        assert_eq!(reply.status, 400, "{label}: {}", reply.describe());
        assert!(
            reply.header("www-authenticate").is_none(),
            "{label}: {}",
            reply.describe()
        );
        reply.json()
    }

    /// A plain 400 `invalid_request` with `description`.
    fn assert_plain_bad_request(&self, label: &str, reply: &Reply, description: &str) {
        let body = Self::bad_request_body(label, reply);
        assert_eq!(body["error"], "invalid_request", "{label}: {body}");
        assert_eq!(body["error_description"], description, "{label}: {body}");
    }

    /// 400 with the JSON-RPC error -32020 (SEP-2243): the headers disagree with the body.
    fn assert_header_mismatch(&self, label: &str, reply: &Reply) {
        let body = Self::bad_request_body(label, reply);
        assert_eq!(body["jsonrpc"], "2.0", "{label}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{label}: {body}");
    }

    /// The seeded event is still there (no forbidden call ran), read with a read-only token.
    async fn assert_calendar_intact(&mut self) {
        let token = self.t.token("calendar:read");
        self.accepted("the calendar still holds its seeded event", &token)
            .await;
    }

    /// Every attack ends here: the server still answers, never panicked, connected to no
    /// URL a token named, and logged fingerprints, never tokens.
    async fn finish(self) {
        // Wait until the log shows a marker request sent now: everything logged while
        // handling this attack's earlier requests is then in the captured output.
        let marker = format!("log-marker-{:016x}", rand_u64());
        let marker_fingerprint = TokenFingerprint::of(&marker).to_string();
        let reply = self
            .send(
                self.http
                    .post(&self.t.resource)
                    .header("authorization", format!("Bearer {marker}"))
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await;
        assert_eq!(reply.status, 401, "marker: {}", reply.describe());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut output = self.t.output();
        while !output.contains(&marker_fingerprint) {
            assert!(
                Instant::now() < deadline,
                "the audit log never showed the marker's fingerprint {marker_fingerprint}\n{}",
                tail(&output)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            output = self.t.output();
        }

        if let Ok(path) = std::env::var("ATTACKS_DUMP_LOG") {
            std::fs::write(path, &output).unwrap();
        }
        // Still answers.
        let metadata = self.send(self.http.get(&self.t.metadata_url)).await;
        assert_eq!(metadata.status, 200, "{}", metadata.describe());
        assert!(
            !output.contains("panicked"),
            "the calendar panicked:\n{}",
            tail(&output)
        );
        assert_eq!(
            self.t.sink_connections.load(Ordering::SeqCst),
            0,
            "the server connected to a URL named by a token"
        );

        // Nothing in the logs but fingerprints.
        for token in &self.sent {
            assert!(
                !output.contains(token.as_str()),
                "a raw token is in the logs: {}…",
                token.chars().take(40).collect::<String>()
            );
            let segments: Vec<&str> = token.split('.').collect();
            for (index, segment) in segments.iter().enumerate().skip(1) {
                // Claims and signature segments are unique per token; short or empty ones
                // (e.g. an `alg: none` token's) carry nothing worth finding.
                if segment.len() >= 24 {
                    assert!(
                        !output.contains(segment),
                        "segment {index} of a token is in the logs: {}…",
                        &segment[..24]
                    );
                }
            }
        }
        for token in &self.fingerprinted {
            let fingerprint = TokenFingerprint::of(token).to_string();
            assert!(
                output.contains(&fingerprint),
                "the refusal of a token was not logged with its fingerprint {fingerprint}"
            );
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// The last lines of a log, for failure messages.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly these header and claims bytes (which `serde_json::Value`
/// could not hold: duplicate members, invalid UTF-8, deep nesting).
fn sign_raw(header: &[u8], claims: &[u8], key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// The header and claims text of a valid token of the trusted issuer with `scope`, the
/// claims without their closing `}` so that members can be appended.
fn open_claims(t: &Target, scope: &str) -> (String, String) {
    let builder = t.issuer.token().scope(scope);
    let header = builder.header_json().to_string();
    let mut claims = builder.claims_json().to_string();
    assert_eq!(claims.pop(), Some('}'));
    (header, claims)
}

// ---------------------------------------------------------------------------------------
// Controls.

#[tokio::test]
async fn control_a_valid_token_is_accepted_and_a_missing_one_gets_the_discovery_challenge() {
    let mut attack = Attack::new();
    let token = attack.t.token("calendar:read");
    attack.accepted("a valid read token", &token).await;
    let reply = attack
        .call(Call {
            token: None,
            ..Call::list_events("")
        })
        .await;
    attack.assert_discovery("no Authorization", &reply);
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Algorithms and keys.

#[tokio::test]
async fn alg_none_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = t
            .issuer
            .token()
            .scope("calendar:admin")
            .alg_header(alg)
            .unsigned();
        attack
            .refused(
                &format!("alg {alg}, empty signature"),
                &unsigned,
                TokenError::UnsupportedAlgorithm,
            )
            .await;
    }
    // `none` over a real signature of the trusted key: still refused.
    let signed = t
        .issuer
        .token()
        .scope("calendar:admin")
        .alg_header("none")
        .sign();
    attack
        .refused(
            "alg none, real signature",
            &signed,
            TokenError::UnsupportedAlgorithm,
        )
        .await;
    // No alg at all.
    let no_alg = t
        .issuer
        .token()
        .scope("calendar:admin")
        .without_header("alg")
        .sign();
    attack
        .refused("no alg", &no_alg, TokenError::Malformed)
        .await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let key = t.issuer.signing_key();
    let pem = key.public_key_pem().expect("an RSA key has a PEM");
    let jwk_text = key.public_jwk().to_string();
    let n = key.public_jwk()["n"].as_str().unwrap().to_owned();
    let secrets: [(&str, Vec<u8>); 4] = [
        ("PEM", pem.clone().into_bytes()),
        (
            "PEM without its final newline",
            pem.trim_end().as_bytes().to_vec(),
        ),
        ("JWK text", jwk_text.into_bytes()),
        ("modulus", URL_SAFE_NO_PAD.decode(n).unwrap()),
    ];
    for (what, secret) in secrets {
        let forger = SigningKey::hmac(&secret, key.kid());
        let forged = t.issuer.token().scope("calendar:admin").key(&forger).sign();
        attack
            .refused(
                &format!("HS256 keyed with the {what}"),
                &forged,
                TokenError::UnsupportedAlgorithm,
            )
            .await;
    }
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn a_kid_naming_another_issuers_key_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    // The other issuer publishes a key under a kid the trusted issuer never used.
    let foreign = SigningKey::generate(SigningAlgorithm::ES256, "other-issuer-key");
    t.other.publish(&foreign);
    assert!(
        t.other
            .published_kids()
            .contains(&"other-issuer-key".to_owned())
    );
    // Our issuer's claims, the other issuer's key and kid: the key must be looked for in
    // our issuer's set only.
    let token = t
        .issuer
        .token()
        .scope("calendar:admin")
        .key(&foreign)
        .sign();
    attack
        .refused("iss ours, kid theirs", &token, TokenError::UnknownKey)
        .await;
    // The other issuer's key under our issuer's kid: bound to RS256, so ES256 mismatches.
    let under_our_kid = t
        .issuer
        .token()
        .scope("calendar:admin")
        .key(&foreign)
        .kid(t.issuer.signing_key().kid())
        .sign();
    attack
        .refused(
            "iss ours, our kid, their ES256 key",
            &under_our_kid,
            TokenError::KeyAlgorithmMismatch,
        )
        .await;
    // The same, claiming RS256: the signature is checked with our key, and fails.
    let claiming_rs256 = t
        .issuer
        .token()
        .scope("calendar:admin")
        .key(&foreign)
        .kid(t.issuer.signing_key().kid())
        .alg_header("RS256")
        .sign();
    attack
        .refused(
            "iss ours, our kid, alg RS256, their signature",
            &claiming_rs256,
            TokenError::InvalidSignature,
        )
        .await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn jku_and_x5u_are_never_fetched() {
    let mut attack = Attack::new();
    let t = attack.t;
    let rogue = SigningKey::generate(SigningAlgorithm::ES256, "rogue");
    let rogue_jwks = format!("{}/jwks.json", t.sink_url);
    for (member, value) in [
        ("jku", json!(rogue_jwks)),
        ("x5u", json!(format!("{}/cert.pem", t.sink_url))),
        ("jku", json!(t.other.jwks_uri())),
    ] {
        // Signed by the rogue key the URL would serve…
        let rogue_token = t
            .issuer
            .token()
            .scope("calendar:admin")
            .key(&rogue)
            .header(member, value.clone())
            .sign();
        attack
            .refused(
                &format!("{member} {value} with the rogue key"),
                &rogue_token,
                TokenError::EmbeddedKeyReference,
            )
            .await;
        // …and even signed by the trusted key: a token naming its own key URL is refused.
        let trusted_key = t
            .issuer
            .token()
            .scope("calendar:read")
            .header(member, value.clone())
            .sign();
        attack
            .refused(
                &format!("{member} {value} with the trusted key"),
                &trusted_key,
                TokenError::EmbeddedKeyReference,
            )
            .await;
    }
    // `finish` checks that the sink was never connected to; the other issuer's JWKS too.
    assert!(
        !t.other
            .request_log()
            .iter()
            .any(|path| path.ends_with("/jwks")),
        "the other issuer's JWKS was fetched: {:?}",
        t.other.request_log()
    );
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn an_embedded_jwk_is_never_used() {
    let mut attack = Attack::new();
    let t = attack.t;
    let rogue = SigningKey::generate(SigningAlgorithm::ES256, "rogue-embedded");
    let with_jwk = t
        .issuer
        .token()
        .scope("calendar:admin")
        .key(&rogue)
        .header("jwk", rogue.public_jwk())
        .sign();
    attack
        .refused(
            "jwk header, rogue key",
            &with_jwk,
            TokenError::EmbeddedKeyReference,
        )
        .await;
    // Without a kid, an implementation falling back to the embedded key would accept it.
    let without_kid = t
        .issuer
        .token()
        .scope("calendar:admin")
        .key(&rogue)
        .without_header("kid")
        .header("jwk", rogue.public_jwk())
        .sign();
    attack
        .refused(
            "jwk header, no kid",
            &without_kid,
            TokenError::EmbeddedKeyReference,
        )
        .await;
    // The trusted key's own public JWK embedded: refused all the same.
    let own = t
        .issuer
        .token()
        .scope("calendar:read")
        .header("jwk", t.issuer.signing_key().public_jwk())
        .sign();
    attack
        .refused(
            "jwk header naming the trusted key",
            &own,
            TokenError::EmbeddedKeyReference,
        )
        .await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Encodings and sizes.

#[tokio::test]
async fn an_oversize_token_is_refused_before_decoding() {
    let mut attack = Attack::new();
    let t = attack.t;
    for size in [17 * 1024, 64 * 1024] {
        let token = t
            .issuer
            .token()
            .scope("calendar:read")
            .claim("padding", "p".repeat(size * 3 / 4))
            .sign();
        assert!(token.len() > 16 * 1024);
        attack
            .refused(
                &format!("a {}-byte signed token", token.len()),
                &token,
                TokenError::TooLarge,
            )
            .await;
    }
    // Garbage that is not even a JWS: refused by size before anything else.
    let junk = "A".repeat(40 * 1024);
    attack
        .refused("40 KiB of one letter", &junk, TokenError::TooLarge)
        .await;
    attack.finish().await;
}

#[tokio::test]
async fn a_five_segment_jwe_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let header = b64(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "key-1"}).to_string());
    let jwe = format!(
        "{header}.{}.{}.{}.{}",
        b64([7u8; 256]),
        b64([1u8; 12]),
        b64(t
            .issuer
            .token()
            .scope("calendar:admin")
            .claims_json()
            .to_string()),
        b64([2u8; 16])
    );
    attack
        .refused("a five-segment JWE", &jwe, TokenError::Encrypted)
        .await;
    // `enc` in the protected header of a three-segment token: a JWE in disguise.
    let disguised = t
        .issuer
        .token()
        .scope("calendar:admin")
        .header("enc", "A256GCM")
        .sign();
    attack
        .refused("enc in a JWS header", &disguised, TokenError::Encrypted)
        .await;
    // Nested: `cty: JWT`.
    let nested = t
        .issuer
        .token()
        .scope("calendar:admin")
        .header("cty", "JWT")
        .sign();
    attack.refused("cty JWT", &nested, TokenError::Nested).await;
    // Four and six segments: not a JWS either.
    let valid = t.token("calendar:read");
    attack
        .refused(
            "four segments",
            &format!("{valid}.{}", b64("x")),
            TokenError::Malformed,
        )
        .await;
    attack
        .refused(
            "six segments",
            &format!("{valid}.a.b.c"),
            TokenError::Malformed,
        )
        .await;
    attack.finish().await;
}

#[tokio::test]
async fn bad_base64_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let valid = t.token("calendar:read");
    let parts: Vec<&str> = valid.split('.').collect();
    let (header, claims, signature) = (parts[0], parts[1], parts[2]);
    // The standard alphabet's `+` and `/`, and `~`: token68 characters, not base64url.
    let std_header = STANDARD.encode(
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "key-1", "x": "\u{fbff}\u{fbff}"})
            .to_string(),
    );
    assert!(std_header.contains('+') || std_header.contains('/'));
    let cases = [
        (
            "standard-alphabet header",
            format!("{}.{claims}.{signature}", std_header.trim_end_matches('=')),
        ),
        (
            "a `~` in the claims",
            format!("{header}.~{claims}.{signature}"),
        ),
        (
            "a claims segment one character too long",
            format!("{header}.{claims}A.{signature}"),
        ),
        (
            "a padded signature",
            format!("{header}.{claims}.{signature}=="),
        ),
        (
            "a signature with non-zero trailing bits",
            format!(
                "{header}.{claims}.{}",
                with_trailing_bits(signature).expect("a signature with unused bits")
            ),
        ),
        ("an empty claims segment", format!("{header}..{signature}")),
        ("an empty signature", format!("{header}.{claims}.")),
        (
            "claims that are not JSON",
            format!("{header}.{}.{signature}", b64("not json")),
        ),
        (
            "a JSON array as claims",
            format!("{header}.{}.{signature}", b64("[1,2]")),
        ),
    ];
    for (label, token) in &cases {
        attack.refused(label, token, TokenError::Malformed).await;
    }
    // `=` inside the credentials is not a token68: the request itself is malformed.
    let padded_inside = format!("{header}=.{claims}.{signature}");
    let reply = attack.call(Call::list_events(&padded_inside)).await;
    attack.assert_invalid_request(
        "padding inside the token",
        &reply,
        "The bearer credentials are not a valid token",
    );
    attack.finish().await;
}

/// `segment` with the unused low bits of its last character set: the same bytes under a
/// lenient decoder, a different string (a second encoding of one signature).
fn with_trailing_bits(segment: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused_bits = match segment.len() % 4 {
        2 => 4,
        3 => 2,
        _ => return None,
    };
    let last = *segment.as_bytes().last()?;
    let value = ALPHABET.iter().position(|c| *c == last)?;
    assert_eq!(value & ((1 << unused_bits) - 1), 0, "a canonical encoding");
    // The lowest bit is unused: set, it encodes the same bytes for a lenient decoder.
    let tweaked = ALPHABET[value ^ 1];
    Some(format!(
        "{}{}",
        &segment[..segment.len() - 1],
        tweaked as char
    ))
}

#[tokio::test]
async fn duplicated_json_keys_in_the_header_are_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let key = t.issuer.signing_key();
    let (_, open) = open_claims(t, "calendar:read");
    let claims = format!("{open}}}");
    // Control: the raw signer produces a token the server accepts.
    let header_ok = r#"{"alg":"RS256","typ":"at+jwt","kid":"key-1"}"#;
    let control = sign_raw(header_ok.as_bytes(), claims.as_bytes(), &key);
    attack.accepted("raw-signed control", &control).await;
    for header in [
        r#"{"alg":"RS256","typ":"at+jwt","kid":"key-1","alg":"none"}"#,
        r#"{"alg":"none","typ":"at+jwt","kid":"key-1","alg":"RS256"}"#,
        r#"{"alg":"RS256","typ":"at+jwt","kid":"key-1","kid":"other"}"#,
        r#"{"alg":"RS256","typ":"JWT","kid":"key-1","typ":"at+jwt"}"#,
        r#"{"alg":"RS256","typ":"at+jwt","kid":"key-1","\u0061lg":"HS256"}"#,
        r#"{"alg":"RS256","typ":"at+jwt","kid":"key-1","crit":[],"crit":["exp"]}"#,
    ] {
        let token = sign_raw(header.as_bytes(), claims.as_bytes(), &key);
        attack.refused(header, &token, TokenError::Malformed).await;
    }
    attack.finish().await;
}

#[tokio::test]
async fn duplicated_json_keys_in_the_claims_are_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let key = t.issuer.signing_key();
    let (header, open) = open_claims(t, "calendar:read");
    let other_audience = "http://127.0.0.1:9/other";
    for extra in [
        r#""scope":"calendar:admin""#.to_owned(),
        r#""sc\u006fpe":"calendar:admin""#.to_owned(),
        format!(r#""aud":"{other_audience}""#),
        format!(r#""iss":"{}""#, t.other.issuer()),
        r#""sub":"admin""#.to_owned(),
        r#""exp":4102444800"#.to_owned(),
    ] {
        let claims = format!("{open},{extra}}}");
        let token = sign_raw(header.as_bytes(), claims.as_bytes(), &key);
        attack
            .refused(&format!("claims + {extra}"), &token, TokenError::Malformed)
            .await;
    }
    // The admin scope first and the read scope last: whichever one a lenient parser keeps,
    // the token must not be accepted at all.
    let claims = format!(r#"{{"scope":"calendar:admin",{}}}"#, &open[1..]);
    let token = sign_raw(header.as_bytes(), claims.as_bytes(), &key);
    let reply = attack
        .call(Call {
            body: tool_call(7, "delete_calendar", json!({}), STATELESS_VERSION),
            mcp_name: Some("delete_calendar"),
            ..Call::list_events(&token)
        })
        .await;
    attack.fingerprinted.push(token.clone());
    assert_eq!(reply.status, 401, "{}", reply.describe());
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn huge_claims_are_handled_within_the_size_cap() {
    let mut attack = Attack::new();
    let t = attack.t;
    let key = t.issuer.signing_key();
    let (header, open) = open_claims(t, "calendar:read");
    // A validly signed token just under the 16 KiB cap, made of one large claim: accepted.
    let large = t
        .issuer
        .token()
        .scope("calendar:read")
        .claim("padding", "p".repeat(11_000))
        .sign();
    assert!(large.len() < 16 * 1024, "{}", large.len());
    attack.accepted("a 15 KiB token", &large).await;
    // Hundreds of claims.
    let mut many = open.clone();
    for i in 0..700 {
        many.push_str(&format!(r#","c{i}":{i}"#));
    }
    many.push('}');
    let token = sign_raw(header.as_bytes(), many.as_bytes(), &key);
    assert!(token.len() < 16 * 1024, "{}", token.len());
    attack.accepted("700 extra claims", &token).await;
    // Deeply nested arrays (the JSON parsers' recursion limits must not turn into a crash).
    let depth = 5_000;
    let deep = format!(
        r#"{open},"deep":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let token = sign_raw(header.as_bytes(), deep.as_bytes(), &key);
    assert!(token.len() < 16 * 1024, "{}", token.len());
    attack.accepted("5,000 nested arrays", &token).await;
    // The same nesting in an unknown member of the header: ignored, as unknown members are.
    let deep_header = format!(
        r#"{{"alg":"RS256","typ":"at+jwt","kid":"key-1","deep":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let token = sign_raw(deep_header.as_bytes(), format!("{open}}}").as_bytes(), &key);
    attack
        .accepted("5,000 nested arrays in an unknown header member", &token)
        .await;
    // A scope claim of 1,500 scopes: parsed, and the one needed is found.
    let mut scopes: Vec<String> = (0..1_500).map(|i| format!("s:{i}")).collect();
    scopes.push("calendar:read".into());
    let token = t.issuer.token().scope(scopes.join(" ")).sign();
    assert!(token.len() < 16 * 1024, "{}", token.len());
    attack.accepted("1,501 scopes", &token).await;
    attack.finish().await;
}

#[tokio::test]
async fn non_utf8_bytes_are_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let valid = t.token("calendar:read");
    // Raw bytes above 0x7F in the Authorization header value itself.
    let mut raw = b"Bearer ".to_vec();
    raw.extend_from_slice(valid.as_bytes());
    raw.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    let value = reqwest::header::HeaderValue::from_bytes(&raw).expect("obs-text is allowed");
    let request = attack
        .request(&Call {
            token: None,
            ..Call::list_events("")
        })
        .header("authorization", value);
    attack.sent.push(valid.clone());
    let reply = attack.send(request).await;
    attack.assert_invalid_request(
        "non-UTF-8 Authorization",
        &reply,
        "The bearer credentials are not a valid token",
    );
    // Invalid UTF-8 inside the claims, validly signed (the header: see
    // `invalid_utf8_in_an_unknown_header_member_is_refused`).
    let key = t.issuer.signing_key();
    let (header, open) = open_claims(t, "calendar:read");
    let mut bad_claims = format!(r#"{open},"name":""#).into_bytes();
    bad_claims.extend_from_slice(&[0xed, 0xa0, 0x80]); // an encoded surrogate
    bad_claims.extend_from_slice(br#""}"#);
    let token = sign_raw(header.as_bytes(), &bad_claims, &key);
    attack
        .refused("invalid UTF-8 in the claims", &token, TokenError::Malformed)
        .await;
    for name in ["sub", "scope", "client_id"] {
        let mut claims = t
            .issuer
            .token()
            .scope("calendar:read")
            .without_claim(name)
            .claims_json()
            .to_string()
            .into_bytes();
        claims.pop();
        claims.extend_from_slice(format!(r#","{name}":"x"#).as_bytes());
        claims.extend_from_slice(&[0xff]);
        claims.extend_from_slice(br#""}"#);
        let token = sign_raw(header.as_bytes(), &claims, &key);
        attack
            .refused(
                &format!("invalid UTF-8 in {name}"),
                &token,
                TokenError::Malformed,
            )
            .await;
    }
    // A lone surrogate escape in `sub`: valid JSON text, not a string.
    let mut lone = t
        .issuer
        .token()
        .scope("calendar:read")
        .without_claim("sub")
        .claims_json()
        .to_string();
    lone.pop();
    lone.push_str(r#","sub":"\ud800"}"#);
    let token = sign_raw(header.as_bytes(), lone.as_bytes(), &key);
    attack
        .refused("a lone surrogate in sub", &token, TokenError::InvalidClaim)
        .await;
    // Non-UTF-8 Mcp-Name: the headers cannot agree with the body.
    let read = t.token("calendar:read");
    let request = attack
        .request(&Call {
            mcp_name: None,
            ..Call::list_events(&read)
        })
        .header(
            "mcp-name",
            reqwest::header::HeaderValue::from_bytes(b"list_events\xff").unwrap(),
        );
    attack.sent.push(read.clone());
    let reply = attack.send(request).await;
    attack.assert_header_mismatch("non-UTF-8 Mcp-Name", &reply);
    attack.finish().await;
}

/// RFC 7515 §5.2 (step 4): the decoded header must be UTF-8 and a valid JSON object. Bytes
/// that are not UTF-8 inside a member the validator does not read are skipped unchecked by
/// serde_json's `IgnoredAny`, so such a header is accepted: two JOSE parsers (this one and a
/// strict one) disagree on whether the token is well-formed.
#[tokio::test]
async fn invalid_utf8_in_an_unknown_header_member_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let key = t.issuer.signing_key();
    let (_, open) = open_claims(t, "calendar:read");
    let mut bad_header = br#"{"alg":"RS256","typ":"at+jwt","kid":"key-1","x":""#.to_vec();
    bad_header.extend_from_slice(&[0xff, 0xc0, 0x80]);
    bad_header.extend_from_slice(br#""}"#);
    assert!(std::str::from_utf8(&bad_header).is_err());
    let token = sign_raw(&bad_header, format!("{open}}}").as_bytes(), &key);
    attack
        .refused("invalid UTF-8 in the header", &token, TokenError::Malformed)
        .await;
    attack.finish().await;
}

#[tokio::test]
async fn cr_lf_and_quotes_in_kid_reach_no_header_and_no_log() {
    let mut attack = Attack::new();
    let t = attack.t;
    let marker = format!("XInjected{:08x}", rand_u64() as u32);
    for kid in [
        format!("key-1\r\n{marker}: yes"),
        format!("key-1\", error=\"none\", {marker}=\""),
        format!("\n\r\n{marker}\u{0}\u{7f}\\\"'"),
        format!("../../{marker}/jwks?x=\"y\""),
    ] {
        let token = t
            .issuer
            .token()
            .scope("calendar:admin")
            .kid(kid.clone())
            .sign();
        let reply = attack.call(Call::list_events(&token)).await;
        attack.fingerprinted.push(token.clone());
        // A kid never seen: condemned right after a refresh made for it (401), or, while the
        // unknown-kid cooldown runs (other tests share this process), not condemned yet (503 +
        // Retry-After: it might be a key the issuer just started using). Refused either way.
        match reply.status {
            401 => assert_eq!(
                reply.challenge(),
                params(&[
                    ("error", "invalid_token"),
                    ("error_description", TokenError::UnknownKey.description()),
                    ("scope", CHALLENGE_SCOPE),
                    ("resource_metadata", &t.metadata_url),
                ]),
                "{kid:?}"
            ),
            503 => {
                assert!(
                    reply.header("retry-after").is_some(),
                    "{kid:?}: {}",
                    reply.describe()
                );
                assert!(reply.header("www-authenticate").is_none(), "{kid:?}");
            }
            other => panic!("{kid:?}: status {other}: {}", reply.describe()),
        }
        for (name, value) in &reply.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !name.as_str().contains(&marker.to_ascii_lowercase()) && !value.contains(&marker),
                "the kid reached a response header: {name}: {value}"
            );
        }
        assert!(!reply.body.contains(&marker), "{}", reply.body);
    }
    // Too long a kid.
    let long = t
        .issuer
        .token()
        .scope("calendar:admin")
        .kid(format!("{marker}{}", "k".repeat(300)))
        .sign();
    attack
        .refused("a 300-character kid", &long, TokenError::Malformed)
        .await;
    attack.finish().await;
    let output = t.output();
    assert!(
        !output.contains(&marker),
        "the kid (untrusted input) is in the logs:\n{}",
        output
            .lines()
            .filter(|l| l.contains(&marker))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Tokens that are valid, but not for us (or not any more).

#[tokio::test]
async fn a_valid_token_for_another_audience_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let slash = format!("{}/", t.resource);
    let other_port = t.resource.replace("/mcp", "0/mcp");
    for audience in [
        "https://calendar.example.com/mcp",
        slash.as_str(),
        other_port.as_str(),
        "http://127.0.0.1/mcp",
        "",
    ] {
        let token = t
            .issuer
            .token()
            .scope("calendar:admin")
            .audience(audience)
            .sign();
        attack
            .refused(
                &format!("aud {audience:?}"),
                &token,
                TokenError::AudienceMismatch,
            )
            .await;
    }
    let several = t
        .issuer
        .token()
        .scope("calendar:admin")
        .audiences(["https://a.example/mcp", "https://b.example/mcp"])
        .sign();
    attack
        .refused(
            "two other audiences",
            &several,
            TokenError::AudienceMismatch,
        )
        .await;
    // Control: an array naming us among others is ours (SPEC vector 9).
    let among = t
        .issuer
        .token()
        .scope("calendar:read")
        .audiences(["https://a.example/mcp", t.resource.as_str()])
        .sign();
    attack.accepted("an array containing ours", &among).await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn a_valid_token_from_another_authorization_server_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    // Valid in every respect for the other server, and for our audience.
    let theirs = t.other.token().scope("calendar:admin").sign();
    attack
        .refused(
            "the other issuer's token",
            &theirs,
            TokenError::UnknownIssuer,
        )
        .await;
    // The issuer URL with a trailing slash, or in upper case: not the configured issuer.
    for iss in [
        format!("{}/", t.issuer.issuer()),
        t.issuer.issuer().to_uppercase(),
    ] {
        let token = t.other.token().scope("calendar:admin").issuer(&iss).sign();
        attack
            .refused(&format!("iss {iss}"), &token, TokenError::UnknownIssuer)
            .await;
    }
    // Their token rewritten to claim our issuer, kid dropped: no ES256 key of ours exists.
    let forged = t
        .other
        .token()
        .scope("calendar:admin")
        .issuer(t.issuer.issuer())
        .without_header("kid")
        .sign();
    attack
        .refused(
            "our iss, their key, no kid",
            &forged,
            TokenError::UnknownKey,
        )
        .await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn a_token_replayed_after_expiry_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    // The validator allows 60 s of leeway: a token whose `exp` is 52 s past is accepted
    // for about eight more seconds (and cached), then must be refused. (Eight, not three:
    // the two acceptances must land inside that window on a loaded CI machine too.)
    let now = Target::now();
    let exp = now - 52;
    let token = t
        .issuer
        .token()
        .scope("calendar:read")
        .issued_at(now - 300)
        .expires_at(exp)
        .sign();
    attack.accepted("within the leeway", &token).await;
    attack
        .accepted("within the leeway, again (cached)", &token)
        .await;
    while Target::now() < exp + 60 + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    attack
        .refused("replayed after expiry", &token, TokenError::Expired)
        .await;
    // Long expired, never seen before.
    let old = t.issuer.token().scope("calendar:read").expired().sign();
    attack
        .refused("expired an hour ago", &old, TokenError::Expired)
        .await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Where the token travels.

#[tokio::test]
async fn query_string_tokens_are_ignored() {
    let mut attack = Attack::new();
    let t = attack.t;
    let token = t.token("calendar:read");
    attack.sent.push(token.clone());
    let call = Call {
        token: None,
        ..Call::list_events("")
    };
    for query in [
        format!("access_token={token}"),
        format!("access_token={token}&access_token={token}"),
        format!("token={token}"),
    ] {
        let request = attack.request(&call);
        let request = request
            .build()
            .map(|mut r| {
                r.url_mut().set_query(Some(&query));
                r
            })
            .unwrap();
        let reply = Reply::read(attack.http.execute(request).await.unwrap()).await;
        attack.assert_discovery(&format!("POST ?{}", &query[..12]), &reply);
    }
    let reply = attack
        .send(
            attack
                .http
                .get(format!("{}?access_token={token}", t.resource))
                .header("accept", "text/event-stream"),
        )
        .await;
    attack.assert_discovery("GET ?access_token", &reply);
    // With a valid header token the request goes through; the query token rides along in
    // the URI to the MCP server, and must not end up in its logs either.
    let header_token = t.token("calendar:read");
    let query_token = t.token("calendar:admin");
    attack.sent.push(query_token.clone());
    let request = attack
        .request(&Call::list_events(&header_token))
        .build()
        .map(|mut r| {
            r.url_mut()
                .set_query(Some(&format!("access_token={query_token}")));
            r
        })
        .unwrap();
    attack.sent.push(header_token.clone());
    let reply = Reply::read(attack.http.execute(request).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    attack.finish().await;
}

#[tokio::test]
async fn form_body_tokens_are_not_accepted() {
    let mut attack = Attack::new();
    let t = attack.t;
    let token = t.token("calendar:admin");
    attack.sent.push(token.clone());
    // A form body carrying the token, no header: no credentials.
    let reply = attack
        .send(
            attack
                .http
                .post(&t.resource)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("access_token={token}")),
        )
        .await;
    attack.assert_discovery("form-body token only", &reply);
    // Header and form body: two methods at once.
    let header_token = t.token("calendar:read");
    attack.sent.push(header_token.clone());
    let reply = attack
        .send(
            attack
                .http
                .post(&t.resource)
                .header("authorization", format!("Bearer {header_token}"))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(format!("x=1&access_token={token}")),
        )
        .await;
    attack.assert_invalid_request(
        "header and form body",
        &reply,
        "The token was sent by more than one method",
    );
    // A JSON body with an access_token member and no header: no credentials either.
    let mut body = tool_call(1, "delete_calendar", json!({}), STATELESS_VERSION);
    body["access_token"] = json!(token);
    let reply = attack
        .call(Call {
            token: None,
            body,
            mcp_name: Some("delete_calendar"),
            ..Call::list_events("")
        })
        .await;
    attack.assert_discovery("JSON-body token only", &reply);
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Step-up: the body decides, whatever the headers say.

/// Under `version`: `Mcp-Name: list_events` over a body calling `delete_calendar` with a
/// read-only token. Legacy versions run inside an initialized session (so a call the layer
/// let through would reach the tool); the stateless version needs none.
async fn mcp_name_over_a_forbidden_body(version: &str) {
    let mut attack = Attack::new();
    let t = attack.t;
    let read = t.token("calendar:read");
    let session = if version < STATELESS_VERSION {
        Some(initialize(&mut attack, &read, version).await)
    } else {
        None
    };
    let call = |body: Value, name: Option<&'static str>| Call {
        token: Some(&read),
        body,
        version,
        session: session.as_deref(),
        mcp_name: name,
    };
    let forbidden = tool_call(2, "delete_calendar", json!({}), version);
    let lying = attack
        .request(&call(forbidden.clone(), Some("list_events")))
        .header("mcp-method", "tools/call");
    attack.sent.push(read.clone());
    let reply = attack.send(lying).await;
    attack.assert_header_mismatch(
        &format!("{version}: Mcp-Name list_events over delete_calendar"),
        &reply,
    );
    // Base64-encoded (SEP-2243), and twice: still the body decides.
    let encoded = format!("=?base64?{}?=", STANDARD.encode("list_events"));
    let request = attack
        .request(&call(forbidden.clone(), None))
        .header("mcp-method", "tools/call")
        .header("mcp-name", encoded);
    let reply = attack.send(request).await;
    attack.assert_header_mismatch(&format!("{version}: base64 Mcp-Name"), &reply);
    let request = attack
        .request(&call(forbidden.clone(), Some("delete_calendar")))
        .header("mcp-method", "tools/call")
        .header("mcp-name", "list_events");
    let reply = attack.send(request).await;
    attack.assert_header_mismatch(&format!("{version}: two Mcp-Name headers"), &reply);
    // Mcp-Method naming a harmless method over the forbidden call.
    let request = attack
        .request(&call(forbidden.clone(), None))
        .header("mcp-method", "tools/list");
    let reply = attack.send(request).await;
    attack.assert_header_mismatch(&format!("{version}: Mcp-Method tools/list"), &reply);
    // Honest headers, or none: the step-up challenge for the scope the body's tool needs.
    for name in [Some("delete_calendar"), None] {
        let reply = attack.call(call(forbidden.clone(), name)).await;
        // 2026-07-28: what is needed; 2025-x: the read token's scope repeated beside it.
        let challenged = if version >= "2026-07-28" {
            "calendar:admin"
        } else {
            "calendar:admin calendar:read"
        };
        attack.assert_insufficient_scope(
            &format!("{version}: delete_calendar, Mcp-Name {name:?}"),
            &reply,
            challenged,
        );
    }
    // Control: the harmless call, honestly named, runs under this version.
    let reply = attack
        .call(call(
            tool_call(3, "list_events", json!({}), version),
            Some("list_events"),
        ))
        .await;
    assert_eq!(reply.status, 200, "{version}: {}", reply.describe());
    let text = reply.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains(SEED_EVENT), "{version}: {}", reply.describe());
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

/// `initialize` then `notifications/initialized` under `version`; the session id.
async fn initialize(attack: &mut Attack, token: &str, version: &str) -> String {
    let reply = attack
        .call(Call {
            token: Some(token),
            body: initialize_message(version),
            version,
            session: None,
            mcp_name: None,
        })
        .await;
    assert_eq!(
        reply.status,
        200,
        "initialize {version}: {}",
        reply.describe()
    );
    assert_eq!(reply.json()["result"]["protocolVersion"], version);
    let session = reply
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let reply = attack
        .call(Call {
            token: Some(token),
            body: json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
            version,
            session: Some(&session),
            mcp_name: None,
        })
        .await;
    assert_eq!(reply.status, 202, "initialized: {}", reply.describe());
    session
}

#[tokio::test]
async fn mcp_name_naming_a_harmless_tool_over_a_forbidden_call_2025_06_18() {
    mcp_name_over_a_forbidden_body("2025-06-18").await;
}

#[tokio::test]
async fn mcp_name_naming_a_harmless_tool_over_a_forbidden_call_2025_11_25() {
    mcp_name_over_a_forbidden_body("2025-11-25").await;
}

#[tokio::test]
async fn mcp_name_naming_a_harmless_tool_over_a_forbidden_call_2026_07_28() {
    mcp_name_over_a_forbidden_body("2026-07-28").await;
}

#[tokio::test]
async fn a_batch_hiding_a_forbidden_call_is_refused_whole() {
    let mut attack = Attack::new();
    let t = attack.t;
    let read = t.token("calendar:read");
    let harmless = tool_call(1, "list_events", json!({}), STATELESS_VERSION);
    let forbidden = tool_call(2, "delete_calendar", json!({}), STATELESS_VERSION);
    let notification =
        json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": {} });
    let batches = [
        json!([harmless.clone(), forbidden.clone()]),
        json!([forbidden.clone(), harmless.clone()]),
        json!([
            notification.clone(),
            harmless.clone(),
            harmless.clone(),
            forbidden.clone()
        ]),
    ];
    for (i, batch) in batches.into_iter().enumerate() {
        let reply = attack
            .call(Call {
                body: batch,
                mcp_name: None,
                ..Call::list_events(&read)
            })
            .await;
        attack.assert_insufficient_scope(
            &format!("batch {i}"),
            &reply,
            "calendar:admin calendar:read",
        );
    }
    // The forbidden name spelled with a JSON escape, as rmcp would decode it.
    let escaped = format!(
        r#"[{},{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"delete\u005fcalendar","arguments":{{}}}}}}]"#,
        harmless
    );
    let request = attack
        .request(&Call {
            mcp_name: None,
            ..Call::list_events(&read)
        })
        .body(escaped);
    attack.sent.push(read.clone());
    let reply = attack.send(request).await;
    attack.assert_insufficient_scope("escaped name", &reply, "calendar:admin calendar:read");
    // A duplicated `name` in one call of the batch: refused as unreadable.
    let duplicated = format!(
        r#"[{},{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"list_events","name":"delete_calendar","arguments":{{}}}}}}]"#,
        harmless
    );
    let request = attack
        .request(&Call {
            mcp_name: None,
            ..Call::list_events(&read)
        })
        .body(duplicated);
    let reply = attack.send(request).await;
    attack.assert_plain_bad_request(
        "duplicated name",
        &reply,
        "The body is not a JSON-RPC message",
    );
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Oversize bodies (the layer reads at most 4 MiB to decide step-up).

const MAX_BODY: usize = 4 * 1024 * 1024;

fn raw_head(t: &Target, token: &str, framing: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-protocol-version: {STATELESS_VERSION}\r\n{framing}\r\n",
        t.addr
    )
    .into_bytes()
}

#[tokio::test]
async fn an_oversize_body_with_content_length_is_413() {
    let mut attack = Attack::new();
    let t = attack.t;
    let token = t.token("calendar:admin");
    attack.sent.push(token.clone());
    let declared = MAX_BODY + 1;
    let head = raw_head(t, &token, &format!("content-length: {declared}\r\n"));
    // The whole body is offered; the server may answer before reading it.
    let mut left = declared;
    let response = raw_exchange(
        &t.addr,
        head,
        move |_| {
            if left == 0 {
                return None;
            }
            let n = left.min(64 * 1024);
            left -= n;
            Some(vec![b' '; n])
        },
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        raw_status(&response),
        Some(413),
        "{}",
        String::from_utf8_lossy(&response[..response.len().min(400)])
    );
    let text = String::from_utf8_lossy(&response);
    assert!(text.contains("Request body too large"), "{text}");
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

#[tokio::test]
async fn an_oversize_chunked_body_without_content_length_is_413() {
    let mut attack = Attack::new();
    let t = attack.t;
    let token = t.token("calendar:admin");
    attack.sent.push(token.clone());
    let head = raw_head(t, &token, "transfer-encoding: chunked\r\n");
    // A forbidden call padded with whitespace to 4 MiB + 256 KiB, in 64 KiB chunks.
    let call = tool_call(1, "delete_calendar", json!({}), STATELESS_VERSION).to_string();
    let chunk_size = 64 * 1024;
    let chunks = (MAX_BODY + 256 * 1024) / chunk_size;
    let response = raw_exchange(
        &t.addr,
        head,
        move |index| {
            if index > chunks {
                return None;
            }
            let data = if index == 0 {
                call.clone().into_bytes()
            } else if index == chunks {
                return Some(b"0\r\n\r\n".to_vec());
            } else {
                vec![b' '; chunk_size]
            };
            let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
            framed.extend_from_slice(&data);
            framed.extend_from_slice(b"\r\n");
            Some(framed)
        },
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        raw_status(&response),
        Some(413),
        "{}",
        String::from_utf8_lossy(&response[..response.len().min(400)])
    );
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Sessions, origins, and credentials smuggled around the parser.

#[tokio::test]
async fn a_session_id_presented_by_another_principal_is_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let version = "2025-06-18";
    let alice = t
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:read")
        .sign();
    let session = initialize(&mut attack, &alice, version).await;
    // Bob (another subject, more scopes), and Alice through another client.
    let bob = t
        .issuer
        .token()
        .subject("bob")
        .scope("calendar:admin")
        .sign();
    let alice_elsewhere = t
        .issuer
        .token()
        .subject("alice")
        .client_id("another-client")
        .scope("calendar:read")
        .sign();
    for (who, token) in [
        ("bob", &bob),
        ("alice via another client", &alice_elsewhere),
    ] {
        let reply = attack
            .call(Call {
                token: Some(token),
                body: tool_call(5, "list_events", json!({}), version),
                version,
                session: Some(&session),
                mcp_name: None,
            })
            .await;
        assert_eq!(reply.status, 404, "{who}: {}", reply.describe());
        assert!(reply.header("www-authenticate").is_none(), "{who}");
        assert_eq!(
            reply.json()["error_description"],
            "Session not found",
            "{who}"
        );
    }
    // The owner still can.
    let reply = attack
        .call(Call {
            token: Some(&alice),
            body: tool_call(6, "list_events", json!({}), version),
            version,
            session: Some(&session),
            mcp_name: None,
        })
        .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    attack.finish().await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_any_token_work() {
    let mut attack = Attack::new();
    let t = attack.t;
    let token = t.token("calendar:admin");
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1",
        "http://localhost:1",
    ] {
        let request = attack
            .request(&Call::list_events(&token))
            .header("origin", origin);
        attack.sent.push(token.clone());
        let reply = attack.send(request).await;
        assert_eq!(reply.status, 403, "{origin}: {}", reply.describe());
        assert!(reply.header("www-authenticate").is_none(), "{origin}");
        assert_eq!(
            reply.json()["error_description"],
            "This Origin is not allowed"
        );
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // The endpoint's own origin is allowed.
    let own = t.resource.trim_end_matches("/mcp").to_owned();
    let request = attack
        .request(&Call::list_events(&token))
        .header("origin", &own);
    let reply = attack.send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(own.as_str())
    );
    attack.finish().await;
}

#[tokio::test]
async fn credentials_smuggled_past_the_parser_are_refused() {
    let mut attack = Attack::new();
    let t = attack.t;
    let valid = t.token("calendar:admin");
    let forged = t
        .issuer
        .token()
        .scope("calendar:admin")
        .alg_header("none")
        .unsigned();
    attack.sent.extend([valid.clone(), forged.clone()]);
    // Two Authorization headers, in either order.
    for (first, second) in [(&valid, &forged), (&forged, &valid)] {
        let request = attack
            .request(&Call {
                token: None,
                ..Call::list_events("")
            })
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"));
        let reply = attack.send(request).await;
        attack.assert_invalid_request(
            "two Authorization headers",
            &reply,
            "More than one Authorization header",
        );
    }
    // Two tokens in one header, and other separators.
    for value in [
        format!("Bearer {valid} {forged}"),
        format!("Bearer {valid},{forged}"),
        format!("Bearer {forged}, Bearer {valid}"),
    ] {
        let request = attack
            .request(&Call {
                token: None,
                ..Call::list_events("")
            })
            .header("authorization", value);
        let reply = attack.send(request).await;
        attack.assert_invalid_request(
            "two tokens in one header",
            &reply,
            "The bearer credentials are not a valid token",
        );
    }
    // Another scheme carrying a valid token: no credentials as far as Bearer goes.
    for scheme in ["DPoP", "Token", "Bearer-", "Basic"] {
        let request = attack
            .request(&Call {
                token: None,
                ..Call::list_events("")
            })
            .header("authorization", format!("{scheme} {valid}"));
        let reply = attack.send(request).await;
        attack.assert_discovery(scheme, &reply);
    }
    // A sender-constrained (DPoP-bound) token presented as a bearer token.
    let bound = t
        .issuer
        .token()
        .scope("calendar:admin")
        .claim(
            "cnf",
            json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
        )
        .sign();
    attack
        .refused(
            "cnf-bound token as Bearer",
            &bound,
            TokenError::SenderConstrained,
        )
        .await;
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

// ---------------------------------------------------------------------------------------
// Paths the layer does not guard.

#[tokio::test]
async fn other_spellings_of_the_endpoint_path_reach_nothing_unguarded() {
    let mut attack = Attack::new();
    let t = attack.t;
    let base = t.resource.trim_end_matches("/mcp").to_owned();
    for path in [
        "/mcp/", "/mcp/x", "//mcp", "/MCP", "/%6Dcp", "/mcp%2F", "/./mcp", "/mcp/.", "/mcp;x",
    ] {
        let reply = attack
            .send(
                attack
                    .http
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", STATELESS_VERSION)
                    .body(
                        tool_call(1, "delete_calendar", json!({}), STATELESS_VERSION).to_string(),
                    ),
            )
            .await;
        assert!(
            reply.status == 404 || reply.status == 401,
            "{path}: {}",
            reply.describe()
        );
    }
    attack.assert_calendar_intact().await;
    attack.finish().await;
}

/// Wired as the `mcp_oauth::http` module docs show, `Router::new().nest_service("/mcp", …)`,
/// axum also routes `/mcp/` and `/mcp/<anything>` to the MCP service: the layer must guard
/// them too. (It once guarded only `path == route`, letting an unauthenticated `initialize`
/// and `tools/list` through; the `#[mcp_tool]` guards still refused tool calls.)
#[tokio::test]
async fn the_documented_nest_service_wiring_guards_nested_paths() {
    use mcp_oauth::http::OAuthLayer;
    use mcp_oauth::resource::ResourceConfig;
    use mcp_oauth::{IssuerPolicy, Validator};
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    use server::Calendar;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let policy = IssuerPolicy::builder(issuer.issuer())
        .audience(&resource)
        .jwks_uri(issuer.jwks_uri())
        .build()
        .unwrap();
    let config = ResourceConfig::of::<Calendar>()
        .resource(&resource)
        .authorization_servers([issuer.issuer().to_owned()]);
    let layer = OAuthLayer::builder(config, Validator::new(policy).unwrap())
        .tools(mcp_oauth::rmcp::tool_table(&Calendar::tool_router()))
        .build()
        .unwrap();
    let calendar = Calendar::new();
    let mcp = StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let app = tower::Layer::layer(&layer, axum::Router::new().nest_service("/mcp", mcp));
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(app),
        )
        .await
        .unwrap();
    });
    let http = http_client();
    let list = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": { "_meta": harness::request_meta(STATELESS_VERSION) },
    });
    for path in ["/mcp", "/mcp/", "/mcp/x"] {
        for (method, body) in [
            ("tools/list", list.clone()),
            ("initialize", initialize_message("2025-06-18")),
        ] {
            let response = http
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", STATELESS_VERSION)
                .header("mcp-method", method)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let reply = Reply::read(response).await;
            assert_eq!(
                reply.status,
                401,
                "{method} at {path} without a token: {}",
                reply.describe()
            );
        }
    }
}
