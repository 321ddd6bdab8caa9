//! [`TestIssuer`]: a local authorization server that serves discovery and a JWKS on
//! 127.0.0.1, and [`TokenBuilder`], which mints any token, valid or not.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::keys::{SigningAlgorithm, SigningKey, compact_jws};
use super::listener::ClosingListener;
use crate::clock::{Clock, SystemClock};
use crate::crypto::random_id;

/// The audience minted tokens carry unless told otherwise.
const DEFAULT_AUDIENCE: &str = "https://mcp.example.com/mcp";
/// The `Cache-Control` header of the JWKS unless told otherwise.
const DEFAULT_CACHE_CONTROL: &str = "max-age=300";
/// How long [`TestIssuer::shutdown`] waits for open connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A misbehaviour of an endpoint of a [`TestIssuer`], set with [`TestIssuer::set_fault`]
/// (the JWKS) or [`TestIssuer::set_discovery_fault`] (the discovery documents).
///
/// A fault lasts until another one (or [`Fault::None`]) is set. Requests are counted whatever
/// the fault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Answer with this status code and a short `text/plain` body.
    Status(u16),
    /// Answer `200` with `Content-Type: application/json` and a body that is not JSON.
    Garbage,
    /// Answer `200` with the real document padded (with a `"padding"` member) to this many
    /// bytes, announced by `Content-Length`. A size too small to hold the document and an
    /// empty padding member yields the unpadded document.
    Oversize(usize),
    /// As [`Fault::Oversize`], but sent with chunked transfer encoding and no
    /// `Content-Length`, so only a client that limits what it *reads* notices.
    OversizeChunked(usize),
    /// Sleep this long, then answer normally. Other requests are not held up.
    Delay(Duration),
    /// On the JWKS: answer `200` with a key set whose only key is a symmetric (`oct`) one,
    /// which a resource server must never use. On discovery: serve the document without
    /// `jwks_uri`.
    NoUsableKeys,
}

/// Configures and starts a [`TestIssuer`]; from [`TestIssuer::builder`].
#[must_use = "call .start().await to run the issuer"]
pub struct TestIssuerBuilder {
    path: String,
    audience: String,
    algorithm: SigningAlgorithm,
    initial_key: Option<SigningKey>,
    serve_rfc8414: bool,
    serve_openid_configuration: bool,
    serve_openid_configuration_path_inserted: bool,
    advertised_issuer: Option<String>,
    publish_alg: bool,
    cache_control: Option<String>,
    port: u16,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TestIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuerBuilder")
            .field("path", &self.path)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm.name())
            .field(
                "initial_key",
                &self.initial_key.as_ref().map(SigningKey::kid),
            )
            .field("serve_rfc8414", &self.serve_rfc8414)
            .field(
                "serve_openid_configuration",
                &self.serve_openid_configuration,
            )
            .field(
                "serve_openid_configuration_path_inserted",
                &self.serve_openid_configuration_path_inserted,
            )
            .field("advertised_issuer", &self.advertised_issuer)
            .field("publish_alg", &self.publish_alg)
            .field("cache_control", &self.cache_control)
            .field("port", &self.port)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for TestIssuerBuilder {
    fn default() -> Self {
        Self {
            path: String::new(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            algorithm: SigningAlgorithm::RS256,
            initial_key: None,
            serve_rfc8414: true,
            serve_openid_configuration: true,
            serve_openid_configuration_path_inserted: false,
            advertised_issuer: None,
            publish_alg: true,
            cache_control: Some(DEFAULT_CACHE_CONTROL.to_owned()),
            port: 0,
            clock: Arc::new(SystemClock),
        }
    }
}

impl TestIssuerBuilder {
    /// Gives the issuer URL a path, e.g. `"/realms/test"` for
    /// `http://127.0.0.1:PORT/realms/test`, to exercise path-aware discovery. A missing leading
    /// `/` is added and a trailing `/` dropped; `""` or `"/"` means no path (the default).
    pub fn path(mut self, path: &str) -> Self {
        let trimmed = path.trim_end_matches('/');
        self.path = if trimmed.is_empty() {
            String::new()
        } else if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// The `aud` of minted tokens (default `https://mcp.example.com/mcp`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The algorithm of the generated initial key `key-1` (default RS256).
    pub fn algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Starts with this key (published, default) instead of generating one. Sharing one key
    /// between issuers saves key generation, and tests that keys stay bound to their issuer.
    pub fn initial_key(mut self, key: SigningKey) -> Self {
        self.initial_key = Some(key);
        self
    }

    /// Whether to serve the RFC 8414 document at
    /// `/.well-known/oauth-authorization-server[/path]` (default `true`).
    pub fn serve_rfc8414(mut self, serve: bool) -> Self {
        self.serve_rfc8414 = serve;
        self
    }

    /// Whether to serve the OpenID document at `<issuer>/.well-known/openid-configuration`
    /// (default `true`).
    pub fn serve_openid_configuration(mut self, serve: bool) -> Self {
        self.serve_openid_configuration = serve;
        self
    }

    /// Whether, for an issuer with a path, to also serve the OpenID document at the
    /// path-inserted URL `/.well-known/openid-configuration/path` (RFC 8414 §5; default
    /// `false`, as most real identity providers do not). Without a path this URL is the one
    /// of [`serve_openid_configuration`](Self::serve_openid_configuration).
    pub fn serve_openid_configuration_path_inserted(mut self, serve: bool) -> Self {
        self.serve_openid_configuration_path_inserted = serve;
        self
    }

    /// Serves no discovery document at all (only the JWKS).
    pub fn no_discovery(self) -> Self {
        self.serve_rfc8414(false)
            .serve_openid_configuration(false)
            .serve_openid_configuration_path_inserted(false)
    }

    /// Puts this `issuer` in the discovery documents instead of the real one (a mix-up
    /// attack: clients must discard such a document). Tokens are still minted with the real
    /// issuer.
    pub fn advertised_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.advertised_issuer = Some(issuer.into());
        self
    }

    /// Whether published JWKs carry `alg` (default `true`; Entra ID omits it).
    pub fn publish_alg(mut self, publish: bool) -> Self {
        self.publish_alg = publish;
        self
    }

    /// The initial `Cache-Control` of the JWKS; see [`TestIssuer::set_cache_control`].
    ///
    /// # Panics
    ///
    /// At [`start`](Self::start) if the value is not a valid header value.
    pub fn cache_control(mut self, value: Option<&str>) -> Self {
        self.cache_control = value.map(str::to_owned);
        self
    }

    /// Listens on this port of 127.0.0.1 instead of an ephemeral one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The clock minted tokens read `iat` and `exp` from (default: the system clock). Pass the
    /// [`ManualClock`](crate::clock::ManualClock) the validator uses to keep both in step.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Binds 127.0.0.1 and serves on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if the port cannot be bound (see
    /// [`try_start`](Self::try_start)).
    pub async fn start(self) -> TestIssuer {
        match self.try_start().await {
            Ok(issuer) => issuer,
            Err(error) => panic!("TestIssuer: cannot listen on 127.0.0.1: {error}"),
        }
    }

    /// As [`start`](Self::start), but returns the error of binding the port.
    pub async fn try_start(self) -> io::Result<TestIssuer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}{}", self.path);
        let cache_control = self.cache_control.as_deref().map(|value| {
            HeaderValue::from_str(value)
                .unwrap_or_else(|_| panic!("invalid Cache-Control value {value:?}"))
        });
        let key = self
            .initial_key
            .unwrap_or_else(|| SigningKey::generate(self.algorithm, "key-1"));
        let mut overrides = Map::new();
        if let Some(advertised) = self.advertised_issuer {
            overrides.insert("issuer".to_owned(), Value::String(advertised));
        }
        let shared = Arc::new(Shared {
            jwks_uri: format!("{issuer}/jwks"),
            jwks_path: format!("{}/jwks", self.path),
            rfc8414_path: format!("/.well-known/oauth-authorization-server{}", self.path),
            oidc_path: format!("{}/.well-known/openid-configuration", self.path),
            oidc_inserted_path: format!("/.well-known/openid-configuration{}", self.path),
            issuer,
            addr,
            audience: self.audience,
            clock: self.clock,
            serve_rfc8414: self.serve_rfc8414,
            serve_oidc: self.serve_openid_configuration,
            serve_oidc_inserted: self.serve_openid_configuration_path_inserted,
            publish_alg: AtomicBool::new(self.publish_alg),
            keys: Mutex::new(KeyState {
                default: key.clone(),
                published: vec![key],
                raw: Vec::new(),
            }),
            next_kid: AtomicUsize::new(2),
            cache_control: Mutex::new(cache_control),
            jwks_fault: Mutex::new(Fault::None),
            discovery_fault: Mutex::new(Fault::None),
            metadata_overrides: Mutex::new(overrides),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            request_log: Mutex::new(Vec::new()),
        });

        let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let listener = ClosingListener::new(listener, closed_tx);
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        // Stops on `shutdown()` and also once every handle is gone (the sender is dropped).
        let signal = async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await;
            stopped_tx.send_replace(true);
        });
        Ok(TestIssuer {
            shared,
            server: Arc::new(Server {
                shutdown: shutdown_tx,
                closed: closed_rx,
                stopped: stopped_rx,
            }),
        })
    }
}

/// A local authorization server for tests: RFC 8414 and OpenID discovery plus a JWKS on
/// 127.0.0.1, token minting, key rotation, request counters and injectable faults.
///
/// Clones are cheap handles onto the same server. The server runs on the tokio runtime that
/// started it until [`shutdown`](Self::shutdown), until the last handle is dropped, or until
/// the runtime ends.
///
/// Endpoints, for an issuer `http://127.0.0.1:PORT/p` (`/p` optional, see
/// [`TestIssuerBuilder::path`]):
///
/// | URL | serves |
/// |---|---|
/// | `/.well-known/oauth-authorization-server/p` | RFC 8414 metadata |
/// | `/p/.well-known/openid-configuration` | OpenID discovery |
/// | `/.well-known/openid-configuration/p` | OpenID discovery, only if enabled |
/// | `/p/jwks` | the JWKS (`Cache-Control: max-age=300` unless changed) |
///
/// ```
/// use mcp_oauth::testing::{Fault, SigningAlgorithm, SigningKey, TestIssuer};
///
/// tokio::runtime::Runtime::new().unwrap().block_on(async {
///     let issuer = TestIssuer::builder().path("/realms/test").start().await;
///     assert!(issuer.issuer().ends_with("/realms/test"));
///     assert_eq!(issuer.jwks_uri(), format!("{}/jwks", issuer.issuer()));
///
///     // A valid RFC 9068 access token for the default audience, signed by `key-1`.
///     let token = issuer.token().scope("files:read").sign();
///     assert_eq!(token.split('.').count(), 3);
///
///     // An expired one, and one from a key the issuer never published.
///     let _expired = issuer.token().expired().sign();
///     let rogue_key = SigningKey::generate(SigningAlgorithm::ES256, "rogue");
///     let _rogue = issuer.token().key(&rogue_key).sign();
///
///     // Rotation: the new key signs from now on; the old one stays published.
///     let new_key = issuer.rotate(SigningAlgorithm::ES256);
///     assert_eq!(issuer.signing_key().kid(), new_key.kid());
///     assert_eq!(issuer.published_kids(), ["key-1", new_key.kid()]);
///
///     issuer.set_fault(Fault::Status(503));
///     issuer.shutdown().await;
/// });
/// ```
#[derive(Clone)]
pub struct TestIssuer {
    shared: Arc<Shared>,
    server: Arc<Server>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.shared.issuer)
            .field("jwks_uri", &self.shared.jwks_uri)
            .field("published_kids", &self.published_kids())
            .finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// Starts an issuer with the defaults: no path, an RS256 key `key-1`, both discovery
    /// documents. Same as `TestIssuer::builder().start()`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if 127.0.0.1 cannot be bound.
    pub async fn start() -> TestIssuer {
        Self::builder().start().await
    }

    /// A builder for an issuer with a path, another algorithm, other discovery documents...
    pub fn builder() -> TestIssuerBuilder {
        TestIssuerBuilder::default()
    }

    /// The issuer identifier: `http://127.0.0.1:PORT` plus the path, if any.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The URL of the JWKS: `<issuer>/jwks`.
    pub fn jwks_uri(&self) -> &str {
        &self.shared.jwks_uri
    }

    /// The RFC 8414 metadata URL: `http://127.0.0.1:PORT/.well-known/oauth-authorization-server[/path]`.
    pub fn rfc8414_url(&self) -> String {
        format!("http://{}{}", self.shared.addr, self.shared.rfc8414_path)
    }

    /// The OpenID discovery URL: `<issuer>/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        format!("http://{}{}", self.shared.addr, self.shared.oidc_path)
    }

    /// The address the issuer listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The default audience of minted tokens.
    pub fn audience(&self) -> &str {
        &self.shared.audience
    }

    /// A builder for a valid RFC 9068 access token from this issuer, signed by the default
    /// key: header `typ` `at+jwt`, `alg` and `kid` of the key; claims `iss`, `sub`
    /// (`user-123`), `aud` (the default audience), `client_id` (`test-client`), `iat` (now),
    /// `exp` (now + 300 s) and a random `jti`. No `scope` unless set.
    pub fn token(&self) -> TokenBuilder {
        let now = self.now();
        let key = self.signing_key();
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(self.shared.issuer));
        claims.insert("sub".to_owned(), json!("user-123"));
        claims.insert("aud".to_owned(), json!(self.shared.audience));
        claims.insert("client_id".to_owned(), json!("test-client"));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + 300));
        claims.insert("jti".to_owned(), json!(random_id()));
        let mut header = Map::new();
        header.insert("typ".to_owned(), json!("at+jwt"));
        TokenBuilder {
            header,
            claims,
            key: key.clone(),
            now,
        }
        .key(&key)
    }

    /// The current default signing key.
    pub fn signing_key(&self) -> SigningKey {
        self.shared.keys.lock().default.clone()
    }

    /// Generates a key with a fresh `kid` (`key-2`, `key-3`...) and publishes it, without making
    /// it the default.
    pub fn add_key(&self, algorithm: SigningAlgorithm) -> SigningKey {
        let n = self.shared.next_kid.fetch_add(1, Ordering::SeqCst);
        let key = SigningKey::generate(algorithm, format!("key-{n}"));
        self.publish(&key);
        key
    }

    /// Generates and publishes a key (as [`add_key`](Self::add_key)) and makes it the default;
    /// the previous keys stay published.
    pub fn rotate(&self, algorithm: SigningAlgorithm) -> SigningKey {
        let key = self.add_key(algorithm);
        self.set_default_key(&key);
        key
    }

    /// Publishes `key` in the JWKS, replacing a published key with the same `kid`.
    pub fn publish(&self, key: &SigningKey) {
        let mut keys = self.shared.keys.lock();
        match keys.published.iter_mut().find(|k| k.kid() == key.kid()) {
            Some(slot) => *slot = key.clone(),
            None => keys.published.push(key.clone()),
        }
    }

    /// Removes every published key and raw entry with this `kid` from the JWKS; returns whether
    /// there was one. The default key stays the default (its tokens will stop validating).
    pub fn unpublish(&self, kid: &str) -> bool {
        let mut keys = self.shared.keys.lock();
        let before = keys.published.len() + keys.raw.len();
        keys.published.retain(|k| k.kid() != kid);
        keys.raw
            .retain(|jwk| jwk.get("kid").and_then(Value::as_str) != Some(kid));
        keys.published.len() + keys.raw.len() != before
    }

    /// Makes `key` the default signing key of [`token`](Self::token), without publishing it.
    pub fn set_default_key(&self, key: &SigningKey) {
        self.shared.keys.lock().default = key.clone();
    }

    /// The published keys (not the raw entries), in JWKS order.
    pub fn published_keys(&self) -> Vec<SigningKey> {
        self.shared.keys.lock().published.clone()
    }

    /// The `kid`s of the published keys (not the raw entries), in JWKS order.
    pub fn published_kids(&self) -> Vec<String> {
        let keys = self.shared.keys.lock();
        keys.published.iter().map(|k| k.kid().to_owned()).collect()
    }

    /// Appends a JSON entry to the JWKS as is, after the published keys: a malformed key, an
    /// `oct` key, a duplicate `kid`... [`unpublish`](Self::unpublish) removes it by `kid`.
    pub fn add_raw_jwk(&self, jwk: Value) {
        self.shared.keys.lock().raw.push(jwk);
    }

    /// Whether published JWKs carry `alg`.
    pub fn set_publish_alg(&self, publish: bool) {
        self.shared.publish_alg.store(publish, Ordering::SeqCst);
    }

    /// The JWKS as served when no fault is set.
    pub fn jwks(&self) -> Value {
        self.shared.jwks_document()
    }

    /// The discovery document as served when no fault is set.
    pub fn metadata(&self) -> Value {
        self.shared.metadata()
    }

    /// Overrides a member of the discovery documents (`issuer`, `jwks_uri`...); `Value::Null`
    /// removes it.
    pub fn set_metadata_field(&self, name: &str, value: Value) {
        self.shared
            .metadata_overrides
            .lock()
            .insert(name.to_owned(), value);
    }

    /// The `Cache-Control` header of the JWKS response; `None` sends none. The default is
    /// `max-age=300`.
    ///
    /// # Panics
    ///
    /// If `value` is not a valid header value.
    pub fn set_cache_control(&self, value: Option<&str>) {
        let value = value.map(|v| {
            HeaderValue::from_str(v).unwrap_or_else(|_| panic!("invalid Cache-Control value {v:?}"))
        });
        *self.shared.cache_control.lock() = value;
    }

    /// Makes the JWKS endpoint misbehave, until another fault is set.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.jwks_fault.lock() = fault;
    }

    /// Makes the discovery endpoints misbehave, until another fault is set.
    pub fn set_discovery_fault(&self, fault: Fault) {
        *self.shared.discovery_fault.lock() = fault;
    }

    /// How many requests reached the JWKS endpoint (any method, any fault), counted on arrival.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many requests reached a discovery URL, whether or not that document is served,
    /// counted on arrival.
    pub fn discovery_requests(&self) -> usize {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// The paths of all requests received, in order of arrival, unknown ones included.
    pub fn request_log(&self) -> Vec<String> {
        self.shared.request_log.lock().clone()
    }

    /// Zeroes the counters and clears the request log.
    pub fn reset_counters(&self) {
        self.shared.jwks_requests.store(0, Ordering::SeqCst);
        self.shared.discovery_requests.store(0, Ordering::SeqCst);
        self.shared.request_log.lock().clear();
    }

    /// Stops listening: once this returns, new connections are refused. Open connections
    /// are closed gracefully (idle ones at once, in-flight requests after answering); this
    /// waits up to a second for them. Idempotent.
    pub async fn shutdown(&self) {
        self.server.shutdown.send_replace(true);
        let mut closed = self.server.closed.clone();
        let _ = closed.wait_for(|closed| *closed).await;
        let mut stopped = self.server.stopped.clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, stopped.wait_for(|stopped| *stopped)).await;
    }

    fn now(&self) -> u64 {
        self.shared.clock.now().as_secs()
    }
}

/// A token being minted; from [`TestIssuer::token`]. Every method overrides what was there;
/// finish with [`sign`](Self::sign) or [`unsigned`](Self::unsigned).
///
/// Times are Unix seconds; "now" is the issuer's clock when [`TestIssuer::token`] was called.
#[derive(Clone)]
#[must_use = "finish with .sign() or .unsigned()"]
pub struct TokenBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: SigningKey,
    now: u64,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("header", &self.header)
            .field("claims", &self.claims)
            .field("key", &self.key.kid())
            .finish()
    }
}

impl TokenBuilder {
    /// Sets `sub`.
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", subject.into())
    }

    /// Sets `client_id`.
    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        self.claim("client_id", client_id.into())
    }

    /// Sets `aud` to one string.
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.claim("aud", audience.into())
    }

    /// Sets `aud` to an array of strings.
    pub fn audiences<I, S>(self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<Value> = audiences
            .into_iter()
            .map(|a| Value::String(a.into()))
            .collect();
        self.claim("aud", list)
    }

    /// Sets `scope` (space-separated, e.g. `"files:read files:write"`).
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// Sets `iss`.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.claim("iss", issuer.into())
    }

    /// Sets `jti`.
    pub fn jti(self, jti: impl Into<String>) -> Self {
        self.claim("jti", jti.into())
    }

    /// Sets `exp` to now + `lifetime` (whole seconds).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        let exp = self.now.saturating_add(lifetime.as_secs());
        self.claim("exp", exp)
    }

    /// Makes the token expired an hour ago (`exp` = now − 3600); `iat` moves before `exp` if
    /// needed.
    pub fn expired(self) -> Self {
        let exp = self.now.saturating_sub(3600);
        let iat_after_exp = self
            .claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat >= exp);
        let token = self.claim("exp", exp);
        if iat_after_exp {
            token.claim("iat", exp.saturating_sub(300))
        } else {
            token
        }
    }

    /// Sets `exp`.
    pub fn expires_at(self, unix_seconds: u64) -> Self {
        self.claim("exp", unix_seconds)
    }

    /// Sets `iat`.
    pub fn issued_at(self, unix_seconds: u64) -> Self {
        self.claim("iat", unix_seconds)
    }

    /// Sets `nbf`.
    pub fn not_before(self, unix_seconds: u64) -> Self {
        self.claim("nbf", unix_seconds)
    }

    /// Sets any claim to any JSON value (`json!(..)`, a string, a number...).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets any header parameter (`crit`, `jku`, `x5u`, `jwk`...).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header parameter.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets the header `typ` (e.g. `"JWT"`, `"application/at+jwt"`).
    pub fn typ(self, typ: impl Into<String>) -> Self {
        self.header("typ", typ.into())
    }

    /// Sets the header `kid` (the signing key stays the same).
    pub fn kid(self, kid: impl Into<String>) -> Self {
        self.header("kid", kid.into())
    }

    /// Signs with `key`, and sets the header `alg` and `kid` to the key's; override them
    /// afterwards with [`alg_header`](Self::alg_header) or [`kid`](Self::kid).
    pub fn key(mut self, key: &SigningKey) -> Self {
        self.key = key.clone();
        self.header("alg", key.algorithm().name())
            .header("kid", key.kid())
    }

    /// Sets the header `alg` string only (e.g. `"none"`); the signature is still made with the
    /// key's own algorithm.
    pub fn alg_header(self, alg: impl Into<String>) -> Self {
        self.header("alg", alg.into())
    }

    /// The claims as they stand.
    pub fn claims_json(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    /// The header as it stands.
    pub fn header_json(&self) -> Value {
        Value::Object(self.header.clone())
    }

    /// The compact JWS: `header.claims.signature`, signed by the key.
    pub fn sign(self) -> String {
        compact_jws(&self.header_json(), &self.claims_json(), &self.key)
    }

    /// `header.claims.` with an empty signature, as for `alg` `none` (the header is used as
    /// is: add `.alg_header("none")` for a textbook `none` token).
    pub fn unsigned(self) -> String {
        let header = URL_SAFE_NO_PAD.encode(self.header_json().to_string());
        let claims = URL_SAFE_NO_PAD.encode(self.claims_json().to_string());
        format!("{header}.{claims}.")
    }
}

/// State shared by the handles and the request handler.
struct Shared {
    issuer: String,
    jwks_uri: String,
    addr: SocketAddr,
    audience: String,
    clock: Arc<dyn Clock>,
    jwks_path: String,
    rfc8414_path: String,
    oidc_path: String,
    oidc_inserted_path: String,
    serve_rfc8414: bool,
    serve_oidc: bool,
    serve_oidc_inserted: bool,
    publish_alg: AtomicBool,
    keys: Mutex<KeyState>,
    next_kid: AtomicUsize,
    cache_control: Mutex<Option<HeaderValue>>,
    jwks_fault: Mutex<Fault>,
    discovery_fault: Mutex<Fault>,
    metadata_overrides: Mutex<Map<String, Value>>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
    request_log: Mutex<Vec<String>>,
}

struct KeyState {
    default: SigningKey,
    published: Vec<SigningKey>,
    raw: Vec<Value>,
}

/// The running server's controls; dropping the last handle drops `shutdown`, which stops it.
struct Server {
    shutdown: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
    stopped: watch::Receiver<bool>,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Jwks,
    Discovery { served: bool },
}

impl Shared {
    fn endpoint(&self, path: &str) -> Option<Endpoint> {
        if path == self.jwks_path {
            Some(Endpoint::Jwks)
        } else if path == self.rfc8414_path {
            Some(Endpoint::Discovery {
                served: self.serve_rfc8414,
            })
        } else if path == self.oidc_path {
            Some(Endpoint::Discovery {
                served: self.serve_oidc,
            })
        } else if path == self.oidc_inserted_path {
            Some(Endpoint::Discovery {
                served: self.serve_oidc_inserted,
            })
        } else {
            None
        }
    }

    fn jwks_document(&self) -> Value {
        let with_alg = self.publish_alg.load(Ordering::SeqCst);
        let keys = self.keys.lock();
        let mut list: Vec<Value> = keys
            .published
            .iter()
            .map(|k| {
                if with_alg {
                    k.public_jwk()
                } else {
                    k.public_jwk_without_alg()
                }
            })
            .collect();
        list.extend(keys.raw.iter().cloned());
        json!({ "keys": list })
    }

    fn metadata(&self) -> Value {
        let issuer = &self.issuer;
        let mut algs: Vec<&'static str> = Vec::new();
        for key in &self.keys.lock().published {
            let name = key.algorithm().name();
            if !algs.contains(&name) {
                algs.push(name);
            }
        }
        let mut doc = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        });
        if let Value::Object(members) = &mut doc {
            for (name, value) in self.metadata_overrides.lock().iter() {
                if value.is_null() {
                    members.remove(name);
                } else {
                    members.insert(name.clone(), value.clone());
                }
            }
        }
        doc
    }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    shared.request_log.lock().push(path.to_owned());
    let Some(endpoint) = shared.endpoint(path) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let fault = match endpoint {
        Endpoint::Jwks => {
            shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
            shared.jwks_fault.lock().clone()
        }
        Endpoint::Discovery { served } => {
            shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
            if !served {
                return text(StatusCode::NOT_FOUND, "not found");
            }
            shared.discovery_fault.lock().clone()
        }
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let is_jwks = matches!(endpoint, Endpoint::Jwks);
    let document = || {
        if is_jwks {
            shared.jwks_document()
        } else {
            shared.metadata()
        }
    };
    let body = match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return text(status, &format!("injected fault: status {code}"));
        }
        Fault::Garbage => {
            return json(
                Body::from("<html><body>Bad Gateway</body></html> {not json"),
                None,
            );
        }
        Fault::None | Fault::Delay(_) => Body::from(document().to_string()),
        Fault::Oversize(size) => Body::from(padded(&document(), size)),
        Fault::OversizeChunked(size) => {
            Body::from_stream(Body::from(padded(&document(), size)).into_data_stream())
        }
        Fault::NoUsableKeys if is_jwks => Body::from(
            json!({ "keys": [{
                "kty": "oct",
                "kid": "oct-1",
                "alg": "HS256",
                "use": "sig",
                "k": URL_SAFE_NO_PAD.encode(b"a symmetric key nobody may trust"),
            }] })
            .to_string(),
        ),
        Fault::NoUsableKeys => {
            let mut doc = document();
            if let Value::Object(members) = &mut doc {
                members.remove("jwks_uri");
            }
            Body::from(doc.to_string())
        }
    };
    let cache_control = if is_jwks {
        shared.cache_control.lock().clone()
    } else {
        None
    };
    json(body, cache_control)
}

/// `document` (an object) with a `"padding"` member making it exactly `size` bytes long, or
/// unpadded if it cannot be that short.
fn padded(document: &Value, size: usize) -> Vec<u8> {
    let mut text = document.to_string();
    let Some(members) = text.strip_suffix('}') else {
        return text.into_bytes();
    };
    let separator = if members.len() > 1 { "," } else { "" };
    let opening = format!("{separator}\"padding\":\"");
    let fixed = members.len() + opening.len() + 2;
    if size < fixed {
        return text.into_bytes();
    }
    text.pop();
    text.push_str(&opening);
    text.push_str(&"x".repeat(size - fixed));
    text.push_str("\"}");
    text.into_bytes()
}

fn json(body: Body, cache_control: Option<HeaderValue>) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = cache_control {
        headers.insert(CACHE_CONTROL, value);
    }
    response
}

fn text(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(message.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
