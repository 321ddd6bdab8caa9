//! Fixtures shared by the criterion benches (`benches/micro.rs`), the load generator
//! (`src/bin/loadgen.rs`) and the summary printer (`src/bin/summary.rs`).
//!
//! Everything talks to 127.0.0.1 only: the issuer is `mcp_oauth::testing::TestIssuer`, the MCP
//! servers are bound to loopback ports chosen by the OS.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth::token_cache::TokenCacheConfig;
use mcp_oauth::{IssuerPolicy, Validator};
use serde_json::Value;

#[cfg(feature = "peers")]
pub mod peers;

/// The example's calendar server (`examples/calendar/server.rs`), compiled here unchanged, so
/// the end-to-end runs serve exactly the example's tools.
#[path = "../../examples/calendar/server.rs"]
#[allow(missing_docs, clippy::all)]
pub mod calendar;

/// The audience of every benchmark token (the micro-benchmarks' resource URL).
pub const AUDIENCE: &str = "https://calendar.example.com/mcp";

/// The scopes every benchmark token carries.
pub const SCOPES: &str = "calendar:read calendar:write";

/// Tokens live this long, so that a long benchmark run never sees one expire.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The algorithms of the cold-validation benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 SHA-256, 2048-bit key.
    RS256,
    /// RSASSA-PSS SHA-256, 2048-bit key.
    PS256,
    /// ECDSA P-256 SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// Every algorithm benchmarked, in report order.
    pub const ALL: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        self.signing().name()
    }

    /// The test kit's signing algorithm.
    pub fn signing(self) -> SigningAlgorithm {
        match self {
            Alg::RS256 => SigningAlgorithm::RS256,
            Alg::PS256 => SigningAlgorithm::PS256,
            Alg::ES256 => SigningAlgorithm::ES256,
            Alg::EdDSA => SigningAlgorithm::EdDSA,
        }
    }

    fn aws_lc(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::EdDSA => &signature::ED25519,
        }
    }
}

/// An issuer publishing one key per benchmarked algorithm, on 127.0.0.1.
pub struct Issuer {
    /// The running test issuer (serves discovery and the JWKS).
    pub issuer: TestIssuer,
    /// One key per [`Alg::ALL`] entry, published in the JWKS.
    pub keys: Vec<(Alg, SigningKey)>,
}

impl Issuer {
    /// Starts the issuer (inside a tokio runtime) with audience [`AUDIENCE`].
    pub async fn start(audience: &str) -> Issuer {
        let issuer = TestIssuer::builder().audience(audience).start().await;
        let keys = Alg::ALL
            .into_iter()
            .map(|alg| (alg, issuer.add_key(alg.signing())))
            .collect();
        Issuer { issuer, keys }
    }

    /// The key published for `alg`.
    pub fn key(&self, alg: Alg) -> &SigningKey {
        &self
            .keys
            .iter()
            .find(|(a, _)| *a == alg)
            .expect("one key per algorithm")
            .1
    }

    /// A valid access token signed with `alg`: `typ` `at+jwt`, `kid`; `iss`, `sub`, `aud`,
    /// `client_id`, `iat`, `exp` (12 h), a random `jti` and two scopes. About 750 bytes with
    /// RS256, 490 with ES256.
    pub fn token(&self, alg: Alg) -> String {
        self.issuer
            .token()
            .key(self.key(alg))
            .scope(SCOPES)
            .expires_in(TOKEN_LIFETIME)
            .sign()
    }

    /// Like [`token`](Self::token), with `sub` = `subject`.
    pub fn token_for(&self, alg: Alg, subject: &str) -> String {
        self.issuer
            .token()
            .key(self.key(alg))
            .subject(subject)
            .scope(SCOPES)
            .expires_in(TOKEN_LIFETIME)
            .sign()
    }

    /// A valid token padded with a private claim to exactly `bytes` bytes (± 1 for base64).
    pub fn token_of_size(&self, alg: Alg, bytes: usize) -> String {
        let base = self.token(alg).len();
        // The claim `"pad":"xxx…"` adds 9 bytes plus its value, times 4/3 for base64url.
        let mut pad = (bytes.saturating_sub(base) * 3 / 4).saturating_sub(9);
        loop {
            let token = self
                .issuer
                .token()
                .key(self.key(alg))
                .scope(SCOPES)
                .expires_in(TOKEN_LIFETIME)
                .claim("pad", "x".repeat(pad))
                .sign();
            if token.len() >= bytes || pad > bytes {
                return token;
            }
            pad += 1;
        }
    }

    /// mcp-oauth's validator for this issuer: strict defaults, keys from the JWKS URL,
    /// preloaded. `cache` selects the verified-token cache (default bounds) or none.
    pub async fn validator(&self, cache: bool) -> Validator {
        let policy = IssuerPolicy::builder(self.issuer.issuer())
            .audience(self.issuer.audience())
            .jwks_uri(self.issuer.jwks_uri())
            .build()
            .expect("policy");
        let builder = Validator::builder().issuer(policy);
        let builder = if cache {
            builder.token_cache(TokenCacheConfig::default())
        } else {
            builder.without_token_cache()
        };
        let validator = builder.build().expect("validator");
        validator.preload().await.expect("keys load");
        validator
    }

    /// The JWKS document the issuer serves.
    pub fn jwks_json(&self) -> String {
        self.issuer.jwks().to_string()
    }
}

/// The floor: aws-lc-rs verifying a signature under a key parsed once, the signing input
/// already split off and the signature already base64url-decoded. No JSON, no claims.
pub struct Floor {
    key: ParsedPublicKey,
    /// `header.payload` of the token.
    pub signing_input: String,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl Floor {
    /// The floor for `token`, signed by `key` (whose public JWK is parsed here, once).
    pub fn new(alg: Alg, key: &SigningKey, token: &str) -> Floor {
        let jwk = key.public_jwk();
        let bytes = public_key_bytes(&jwk);
        let key = ParsedPublicKey::new(alg.aws_lc(), bytes).expect("aws-lc parses the key");
        let (signing_input, signature) = token.rsplit_once('.').expect("compact JWS");
        Floor {
            key,
            signing_input: signing_input.to_owned(),
            signature: URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
        }
    }

    /// One verification.
    pub fn verify(&self) -> bool {
        self.key
            .verify_sig(self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

fn b64_member(jwk: &Value, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(jwk[name].as_str().expect("JWK member"))
        .expect("base64url")
}

/// The bytes aws-lc-rs parses for a JWK: a DER `RSAPublicKey`, an uncompressed SEC 1 point,
/// or the raw Ed25519 key.
fn public_key_bytes(jwk: &Value) -> Vec<u8> {
    match jwk["kty"].as_str() {
        Some("RSA") => {
            let mut body = Vec::new();
            der_integer(&mut body, &b64_member(jwk, "n"));
            der_integer(&mut body, &b64_member(jwk, "e"));
            let mut der = vec![0x30];
            der_length(&mut der, body.len());
            der.extend_from_slice(&body);
            der
        }
        Some("EC") => {
            let mut point = vec![0x04];
            point.extend_from_slice(&b64_member(jwk, "x"));
            point.extend_from_slice(&b64_member(jwk, "y"));
            point
        }
        Some("OKP") => b64_member(jwk, "x"),
        other => panic!("unexpected kty {other:?}"),
    }
}

fn der_integer(out: &mut Vec<u8>, value: &[u8]) {
    let first = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let value = &value[first..];
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(out, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// A JSON-RPC `tools/call` body of about `bytes` bytes: the call of `list_events` with a
/// padded string argument (what a client sends with a large tool input).
pub fn tools_call_body(bytes: usize) -> String {
    let empty = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_events","arguments":{"note":""}}}"#;
    let pad = bytes.saturating_sub(empty.len());
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"list_events","arguments":{{"note":"{}"}}}}}}"#,
        "x".repeat(pad)
    )
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

/// Drives `future` to completion on this thread (no runtime: a validation with loaded keys
/// completes on its first poll; a contended lock parks the thread until woken).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            thread::park();
        }
    })
}

/// Where the reports go: `$CARGO_TARGET_DIR` (or the workspace's `target/`), then
/// `mcp-oauth-bench/`.
pub fn report_dir() -> PathBuf {
    target_dir().join("mcp-oauth-bench")
}

/// `$CARGO_TARGET_DIR`; else the target directory this binary was built in (the parent of
/// its `release/` or `debug/`); else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let built_in = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?;
        let name = profile_dir.file_name()?.to_str()?;
        matches!(name, "release" | "debug").then(|| profile_dir.parent().map(PathBuf::from))?
    });
    built_in.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
    })
}

/// Writes `value` as `<report_dir>/<name>.json`.
pub fn write_report(name: &str, value: &Value) {
    let dir = report_dir();
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {error}", dir.display());
        return;
    }
    let path = dir.join(format!("{name}.json"));
    match std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap_or_default()) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(error) => eprintln!("cannot write {}: {error}", path.display()),
    }
}

/// The service every layer under test wraps: answers 200 with an empty body at once.
pub fn ok_service<B: Send + 'static>() -> impl tower::Service<
    http::Request<B>,
    Response = http::Response<http_body_util::Full<bytes::Bytes>>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_request: http::Request<B>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::new(),
        )))
    })
}

/// `GET /mcp` on [`AUDIENCE`]'s host with `Authorization: Bearer <token>`.
pub fn get_mcp(token: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get("https://calendar.example.com/mcp")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .extension(client_peer())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request")
}

/// The connection's peer, as a server stack hands it to the layer: the failed-authentication
/// budget is on by default and refuses a request whose client address it cannot learn.
fn client_peer() -> mcp_oauth::http::PeerAddr {
    mcp_oauth::http::PeerAddr(std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)))
}

/// `POST /mcp` with the token and a JSON-RPC `body`, as an MCP client sends it.
pub fn post_mcp(
    token: &str,
    body: bytes::Bytes,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::post("https://calendar.example.com/mcp")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .extension(client_peer())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(http_body_util::Full::new(body))
        .expect("request")
}

/// The response type of mcp-oauth's layer.
pub type McpLayerService = tower::util::BoxCloneService<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    http::Response<mcp_oauth::http::ResponseBody>,
    std::convert::Infallible,
>;

/// mcp-oauth's layer as the example configures it (the calendar's declaration and tool table,
/// resource [`AUDIENCE`]), around [`ok_service`].
pub fn mcp_layer(issuer: &Issuer, validator: Validator) -> McpLayerService {
    use calendar::Calendar;
    use mcp_oauth::http::OAuthLayer;
    use mcp_oauth::resource::ResourceConfig;

    let config = ResourceConfig::of::<Calendar>()
        .resource(issuer.issuer.audience())
        .authorization_servers([issuer.issuer.issuer().to_owned()]);
    let layer = OAuthLayer::builder(config, validator)
        .tools(mcp_oauth::rmcp::tool_table(&Calendar::tool_router()))
        .build()
        .expect("layer");
    tower::util::BoxCloneService::new(tower::Layer::layer(&layer, ok_service()))
}

/// The command-line arguments of the bench binaries after the command: `--name value` pairs.
pub struct Args(pub Vec<String>);

impl Args {
    /// The value after `name`, parsed; `default` when absent (a value that does not parse
    /// stops the run: it is the operator's typo).
    pub fn value<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.string(name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("bad value for {name}: {v}"))
            })
            .unwrap_or(default)
    }

    /// The value after `name`, as given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|arg| arg == name)
            .and_then(|i| self.0.get(i + 1))
            .cloned()
    }
}
