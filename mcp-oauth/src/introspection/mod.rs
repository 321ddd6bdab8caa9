//! RFC 7662 token introspection: the second verifier in the chain, for opaque access tokens.
//!
//! A [`Validator`](crate::Validator) configured with an [`Introspection`] sends each token
//! that is not JWT-shaped (three dot-separated segments with a JSON header) — or, in
//! [`IntrospectionMode::AllTokens`], also each JWT naming the introspection's issuer — to
//! exactly **one** introspection endpoint, that of one configured issuer (given explicitly, or
//! discovered from the issuer's RFC 8414 metadata `introspection_endpoint`). An opaque token is
//! never sent anywhere else: with several issuers, sending it around would leak it to the wrong
//! authorization server. JWT-shaped tokens are judged by the issuer policies and never
//! introspected unless configured.
//!
//! What an answer means:
//!
//! | response | result |
//! |---|---|
//! | `active: false` | 401 `invalid_token` ([`TokenError::Inactive`]) |
//! | `active: true` | still checked like a JWT: `iss` (when present) is the configured issuer; not a refresh token (`token_type`/`token_use`); no `cnf`; `aud` names the resource (canonically; required unless [`accept_missing_audience`](IntrospectionBuilder::accept_missing_audience)); `exp` (required unless [`max_lifetime_without_exp`](IntrospectionBuilder::max_lifetime_without_exp)), `nbf`, `iat` within leeway; then `scope`, `client_id`, `sub`, `username` are read into the [`VerifiedToken`] |
//! | unreachable, timeout, non-200 status, not JSON, no boolean `active`, too many calls in flight | 503 with `Retry-After` ([`TokenError::IntrospectionUnavailable`]): a valid token is not thrown away as invalid |
//!
//! Opaque garbage does not turn into a flood of outbound calls: the HTTP layer's
//! failed-authentication limiter runs before the validator; calls are **single-flight per
//! token** (a thousand concurrent requests with one token make one call) and **capped in
//! concurrency** (a semaphore; a caller waits at most [`queue_timeout`](IntrospectionBuilder::queue_timeout)
//! for a slot, then gets 503). Answers are **cached** by SHA-256 of the token and the
//! validator's identity — never the token — bounded in entries and bytes, each entry kept no
//! longer than the token's `exp` nor the cache TTL. Negative answers are cached only when
//! [`negative_cache_ttl`](IntrospectionBuilder::negative_cache_ttl) says so (off by default).
//! Failures are logged under the `mcp_oauth::introspection` target with the token's
//! [`TokenFingerprint`], never the token.
//!
//! ```no_run
//! # async fn demo(bearer: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth::introspection::Introspection;
//! use mcp_oauth::{IssuerPolicy, Validator};
//!
//! let validator = Validator::builder()
//!     // JWTs of this issuer are verified locally...
//!     .issuer(
//!         IssuerPolicy::builder("https://auth.example.com")
//!             .audience("https://calendar.example.com/mcp")
//!             .build()?,
//!     )
//!     // ...and its opaque tokens are introspected (endpoint found by discovery).
//!     .introspection(
//!         Introspection::builder("https://auth.example.com")
//!             .audience("https://calendar.example.com/mcp")
//!             .client_secret_basic("calendar-rs", "s3cret")
//!             .build()?,
//!     )
//!     .build()?;
//! let identity = validator.validate(bearer).await?;
//! println!("{:?} via {}", identity.subject(), identity.verification().as_str());
//! # Ok(()) }
//! ```

mod judge;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use crate::clock::Clock;
use crate::http_client;
use crate::http_client::{FetchError, discover_endpoint, read_capped, request_error};
use crate::loopback::is_https_or_loopback_http;
use crate::store::StoreFuture;
use crate::token::jws::{self, TokenShape};
use crate::token::{
    Claim, MAX_LEEWAY, RequiredClaims, ScopeClaim, TokenError, TokenFingerprint, VerifiedToken,
};
use crate::token_cache::{CacheEntry, CacheKey, TokenCache, TokenCacheConfig};
use judge::{Judgement, judge};

const LOG_TARGET: &str = "mcp_oauth::introspection";

/// The longest negative-cache lifetime accepted: a revoked-then-reissued token must not stay
/// refused for long, and a mistaken "inactive" must heal quickly.
pub const MAX_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(60);

/// Which tokens go to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntrospectionMode {
    /// Only tokens that are not JWT-shaped (the default). JWTs go to the issuer policies.
    #[default]
    OpaqueOnly,
    /// Opaque tokens, and JWTs whose (unverified) `iss` is the introspection's issuer — e.g.
    /// to notice revocation before `exp`. JWTs naming any other issuer still go to that
    /// issuer's policy, never to this endpoint.
    AllTokens,
}

/// How the resource server authenticates to the introspection endpoint (RFC 7662 §2.1,
/// RFC 6749 §2.3.1). `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    SecretBasic {
        /// The resource server's client id.
        client_id: String,
        /// Its secret.
        client_secret: String,
    },
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    SecretPost {
        /// The resource server's client id.
        client_id: String,
        /// Its secret.
        client_secret: String,
    },
}

impl ClientAuth {
    /// The client id.
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuth::SecretBasic { client_id, .. }
            | ClientAuth::SecretPost { client_id, .. } => client_id,
        }
    }

    /// The RFC 8414 name of the method (`client_secret_basic`, `client_secret_post`).
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::SecretBasic { .. } => "client_secret_basic",
            ClientAuth::SecretPost { .. } => "client_secret_post",
        }
    }

    /// Authenticates `request` to the authorization server: a `Basic` header, or the
    /// credentials added to `form` (the request's form body).
    pub(crate) fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut url::form_urlencoded::Serializer<'_, String>,
    ) -> reqwest::RequestBuilder {
        match self {
            ClientAuth::SecretBasic {
                client_id,
                client_secret,
            } => {
                // RFC 6749 §2.3.1: each part form-urlencoded before joining.
                let encode = |part: &str| {
                    url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>()
                };
                let credentials = format!("{}:{}", encode(client_id), encode(client_secret));
                let mut value = reqwest::header::HeaderValue::try_from(format!(
                    "Basic {}",
                    STANDARD.encode(credentials)
                ))
                .expect("base64 is a valid header value");
                value.set_sensitive(true);
                request.header(reqwest::header::AUTHORIZATION, value)
            }
            ClientAuth::SecretPost {
                client_id,
                client_secret,
            } => {
                form.append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret);
                request
            }
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method())
            .field("client_id", &self.client_id())
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Why an [`Introspection`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionConfigError {
    /// The issuer does not parse as an https (or loopback http) URL.
    #[error("the introspection issuer must be an https URL (or http to a loopback host)")]
    InvalidIssuer,
    /// The endpoint does not parse as an https (or loopback http) URL.
    #[error("the introspection endpoint must be an https URL (or http to a loopback host)")]
    InvalidEndpoint,
    /// No audience: the response's `aud` must be checked against this resource.
    #[error("at least one audience (the resource URL) is required")]
    NoAudience,
    /// No client authentication: introspection endpoints authenticate their callers.
    #[error("client authentication (client_secret_basic or client_secret_post) is required")]
    NoClientAuthentication,
    /// Leeway above [`MAX_LEEWAY`].
    #[error("leeway above {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
    /// A negative-cache TTL above [`MAX_NEGATIVE_CACHE_TTL`], or a zero lifetime or limit.
    #[error("an introspection limit is out of range: {0}")]
    OutOfRange(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The configuration of the introspection verifier: one issuer, one endpoint, how to
/// authenticate, what to check, how to cache. Built with [`Introspection::builder`]; see the
/// [module](self) documentation.
///
/// ```
/// use mcp_oauth::introspection::{Introspection, IntrospectionMode};
///
/// let config = Introspection::builder("https://auth.example.com")
///     .audience("https://calendar.example.com/mcp")
///     .client_secret_post("calendar-rs", "s3cret")
///     .build()
///     .unwrap();
/// assert_eq!(config.mode(), IntrospectionMode::OpaqueOnly);
/// assert_eq!(config.endpoint(), None); // discovered from the issuer's metadata
/// assert_eq!(config.client_auth().method(), "client_secret_post");
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// // Introspection endpoints authenticate their callers: no credentials, no configuration.
/// assert!(Introspection::builder("https://auth.example.com")
///     .audience("https://calendar.example.com/mcp")
///     .build()
///     .is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Introspection {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) endpoint: Option<Url>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) mode: IntrospectionMode,
    pub(crate) leeway: Duration,
    pub(crate) required: RequiredClaims,
    pub(crate) scope_claim: ScopeClaim,
    pub(crate) accept_missing_audience: bool,
    pub(crate) max_lifetime_without_exp: Option<Duration>,
    pub(crate) cache: Option<TokenCacheConfig>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) max_concurrent_calls: usize,
    pub(crate) queue_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) retry_after: Duration,
    pub(crate) shared_answers: Option<SharedAnswers>,
}

/// Where introspection answers are shared by the replicas of one deployment, so that one
/// replica's call serves all (Redis: [`crate::redis`]). Keyed by the full SHA-256 of the
/// token, never the token; an entry holds the endpoint's response body, which each replica
/// judges again under its own configuration and clock, so a positive answer never outlives
/// the token's `exp`. A store that cannot answer in time answers `None` (the endpoint is
/// called) and drops a `put`: shared answers save calls, they never decide alone.
pub trait SharedIntrospectionCache: Send + Sync + 'static {
    /// The response body stored for the token whose SHA-256 is `token_hash`, with the time
    /// it has left (a replica keeps it no longer than that, so sharing never lengthens how
    /// long an answer is served).
    fn get<'a>(&'a self, token_hash: &'a [u8; 32]) -> StoreFuture<'a, Option<(Vec<u8>, Duration)>>;
    /// Stores `body` for `ttl`.
    fn put<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
        body: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;
}

/// A [`SharedIntrospectionCache`] in the configuration (which is `Debug` and `Clone`).
#[derive(Clone)]
pub(crate) struct SharedAnswers(pub(crate) Arc<dyn SharedIntrospectionCache>);

impl fmt::Debug for SharedAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedIntrospectionCache")
    }
}

impl Introspection {
    /// Starts the configuration for the introspection endpoint of `issuer` (exactly as its
    /// tokens' `iss`, and as its metadata's `issuer`).
    pub fn builder(issuer: impl Into<String>) -> IntrospectionBuilder {
        IntrospectionBuilder {
            config: Introspection {
                issuer: issuer.into(),
                audiences: Vec::new(),
                endpoint: None,
                client_auth: ClientAuth::SecretBasic {
                    client_id: String::new(),
                    client_secret: String::new(),
                },
                mode: IntrospectionMode::default(),
                leeway: Duration::from_secs(60),
                required: RequiredClaims::NONE,
                scope_claim: ScopeClaim::default(),
                accept_missing_audience: false,
                max_lifetime_without_exp: None,
                cache: Some(default_cache()),
                negative_ttl: None,
                max_concurrent_calls: 16,
                queue_timeout: Duration::from_millis(500),
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                max_response_bytes: 64 * 1024,
                retry_after: Duration::from_secs(5),
                shared_answers: None,
            },
            endpoint: None,
            client_auth: None,
        }
    }

    /// The issuer whose endpoint this is.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured endpoint; `None` when it is discovered.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_ref().map(Url::as_str)
    }

    /// Which tokens are introspected.
    pub fn mode(&self) -> IntrospectionMode {
        self.mode
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// How the resource server authenticates.
    pub fn client_auth(&self) -> &ClientAuth {
        &self.client_auth
    }
}

fn default_cache() -> TokenCacheConfig {
    TokenCacheConfig {
        max_entries: 10_000,
        max_bytes: 16 * 1024 * 1024,
        ttl: Duration::from_secs(60),
    }
}

/// Builds an [`Introspection`]; from [`Introspection::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct IntrospectionBuilder {
    config: Introspection,
    endpoint: Option<String>,
    client_auth: Option<ClientAuth>,
}

impl IntrospectionBuilder {
    /// Accepts tokens whose `aud` names `audience` (the MCP endpoint URL); call again for
    /// several. Compared as on the JWT path: scheme and host case-insensitive.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.config.audiences.push(audience.into());
        self
    }

    /// The introspection endpoint (https, or http to a loopback host). Without it, the
    /// endpoint is discovered once from the issuer's metadata (`introspection_endpoint` of
    /// RFC 8414, then OpenID Connect discovery; the document's `issuer` must match).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Authenticates with `client_secret_basic` (HTTP Basic).
    pub fn client_secret_basic(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_auth = Some(ClientAuth::SecretBasic {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// Authenticates with `client_secret_post` (credentials in the form body).
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_auth = Some(ClientAuth::SecretPost {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// Which tokens are introspected (default [`IntrospectionMode::OpaqueOnly`]).
    pub fn mode(mut self, mode: IntrospectionMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most [`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway = leeway;
        self
    }

    /// Requires a response member: [`Claim::Subject`], [`Claim::ClientId`],
    /// [`Claim::IssuedAt`], [`Claim::JwtId`] or [`Claim::Issuer`] (all optional in RFC 7662
    /// and by default; when present, `iss` must always be the configured issuer). `exp` and
    /// `aud` are required unless relaxed by their own settings.
    pub fn require_claim(mut self, claim: Claim) -> Self {
        self.config.required = self.config.required.with(claim);
        self
    }

    /// Where the response's scopes live (default `scope`, space-separated, as RFC 7662).
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.config.scope_claim = claim;
        self
    }

    /// Accepts an active response without `aud` (or with an empty one). Weaker: the resource
    /// server then relies on the authorization server to have checked that the token was
    /// issued for it. A present `aud` is still checked.
    pub fn accept_missing_audience(mut self) -> Self {
        self.config.accept_missing_audience = true;
        self
    }

    /// Accepts an active response without `exp`, trusting it for at most `lifetime` (and
    /// never longer than the cache TTL). Without this, a response without `exp` is refused.
    pub fn max_lifetime_without_exp(mut self, lifetime: Duration) -> Self {
        self.config.max_lifetime_without_exp = Some(lifetime);
        self
    }

    /// Bounds and TTL of the answer cache (default 10,000 entries, 16 MiB, 60 s). An entry
    /// never outlives the token's `exp`.
    pub fn cache(mut self, config: TokenCacheConfig) -> Self {
        self.config.cache = Some(config);
        self
    }

    /// Shares answers with the other replicas of the deployment through `cache` (checked on a
    /// local miss, before the endpoint is called; see [`SharedIntrospectionCache`]).
    pub fn shared_cache(mut self, cache: Arc<dyn SharedIntrospectionCache>) -> Self {
        self.config.shared_answers = Some(SharedAnswers(cache));
        self
    }

    /// Turns the answer cache off: every validation calls the endpoint (still single-flight).
    pub fn without_cache(mut self) -> Self {
        self.config.cache = None;
        self
    }

    /// Caches refusals (inactive tokens, and active ones our checks refuse) for `ttl`, at most
    /// [`MAX_NEGATIVE_CACHE_TTL`]. Off by default.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_ttl = Some(ttl);
        self
    }

    /// At most this many calls to the endpoint in flight at once (default 16).
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.config.max_concurrent_calls = calls;
        self
    }

    /// How long a validation waits for a free call slot before it is answered 503 (default
    /// 500 ms).
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.config.queue_timeout = timeout;
        self
    }

    /// TCP connect timeout (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Total timeout of one call (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Largest accepted response body (default 64 KiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.config.max_response_bytes = bytes;
        self
    }

    /// The `Retry-After` of a 503 when the endpoint is unavailable (default 5 s); also how
    /// long a failed discovery is not retried.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.config.retry_after = retry_after;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Introspection, IntrospectionConfigError> {
        let IntrospectionBuilder {
            mut config,
            endpoint,
            client_auth,
        } = self;
        let allowed = |raw: &str| Url::parse(raw).ok().filter(is_https_or_loopback_http);
        allowed(&config.issuer).ok_or(IntrospectionConfigError::InvalidIssuer)?;
        if let Some(endpoint) = endpoint {
            config.endpoint =
                Some(allowed(&endpoint).ok_or(IntrospectionConfigError::InvalidEndpoint)?);
        }
        if config.audiences.is_empty() {
            return Err(IntrospectionConfigError::NoAudience);
        }
        config.client_auth = client_auth
            .filter(|auth| !auth.client_id().is_empty())
            .ok_or(IntrospectionConfigError::NoClientAuthentication)?;
        if config.leeway > MAX_LEEWAY {
            return Err(IntrospectionConfigError::LeewayTooLarge);
        }
        let out_of_range = IntrospectionConfigError::OutOfRange;
        if config
            .negative_ttl
            .is_some_and(|ttl| ttl.is_zero() || ttl > MAX_NEGATIVE_CACHE_TTL)
        {
            return Err(out_of_range("negative_cache_ttl"));
        }
        if config.max_lifetime_without_exp.is_some_and(|l| l.is_zero()) {
            return Err(out_of_range("max_lifetime_without_exp"));
        }
        if config.max_concurrent_calls == 0 {
            return Err(out_of_range("max_concurrent_calls"));
        }
        if config.max_response_bytes == 0 {
            return Err(out_of_range("max_response_bytes"));
        }
        if config.retry_after.is_zero() {
            return Err(out_of_range("retry_after"));
        }
        Ok(config)
    }
}

/// Counters of an [`Introspector`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntrospectionStats {
    /// Calls sent to the endpoint.
    pub calls: u64,
    /// Calls that failed: unreachable, timeout, error status, not an RFC 7662 answer.
    pub failures: u64,
    /// Answers `active: true` that passed every check.
    pub accepted: u64,
    /// Answers `active: false`, or `active: true` refused by a check.
    pub refused: u64,
    /// Validations answered from the cache.
    pub cache_hits: u64,
    /// Validations the cache could not answer.
    pub cache_misses: u64,
    /// Validations that joined a call already in flight for the same token.
    pub coalesced: u64,
    /// Validations answered 503 because every call slot stayed busy.
    pub over_capacity: u64,
    /// Discovery attempts of the endpoint (0 when configured explicitly).
    pub discoveries: u64,
    /// Total time spent in calls, in microseconds (divide by `calls` for the mean).
    pub call_micros: u64,
}

type Outcome = Result<VerifiedToken, TokenError>;

/// The introspection verifier of a [`Validator`](crate::Validator): endpoint, cache,
/// single-flight table, call slots, counters. Cheap to clone; from
/// [`Validator::introspector`](crate::Validator::introspector).
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    config: Introspection,
    policy: u64,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    endpoint: ArcSwapOption<Url>,
    discovery: tokio::sync::Mutex<()>,
    discovery_failed_at: AtomicU64,
    cache: Option<TokenCache>,
    in_flight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Outcome>>>>,
    slots: Semaphore,
    calls: AtomicU64,
    failures: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    coalesced: AtomicU64,
    over_capacity: AtomicU64,
    discoveries: AtomicU64,
    call_micros: AtomicU64,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.inner.config.issuer)
            .field("endpoint", &self.endpoint())
            .field("mode", &self.inner.config.mode)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Introspector {
    pub(crate) fn new(
        config: Introspection,
        policy: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IntrospectionConfigError> {
        // No redirects: a POST carrying a token is never replayed to another URL.
        let client = http_client::build(config.connect_timeout, config.request_timeout, 0)
            .map_err(|error| IntrospectionConfigError::Client(error.to_string()))?;
        let cache = config.cache.as_ref().map(TokenCache::new);
        let endpoint = ArcSwapOption::new(config.endpoint.clone().map(Arc::new));
        let slots = Semaphore::new(config.max_concurrent_calls);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                policy,
                clock,
                client,
                endpoint,
                discovery: tokio::sync::Mutex::new(()),
                discovery_failed_at: AtomicU64::new(0),
                cache,
                in_flight: Mutex::new(HashMap::new()),
                slots,
                calls: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                over_capacity: AtomicU64::new(0),
                discoveries: AtomicU64::new(0),
                call_micros: AtomicU64::new(0),
            }),
        })
    }

    /// The issuer whose endpoint this is.
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The endpoint: configured, or discovered (`None` until discovery succeeded).
    pub fn endpoint(&self) -> Option<String> {
        self.inner
            .endpoint
            .load()
            .as_ref()
            .map(|url| url.to_string())
    }

    /// The configuration.
    pub fn config(&self) -> &Introspection {
        &self.inner.config
    }

    /// Counters.
    pub fn stats(&self) -> IntrospectionStats {
        let inner = &self.inner;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let cache_stats = inner
            .cache
            .as_ref()
            .map(TokenCache::stats)
            .unwrap_or_default();
        IntrospectionStats {
            calls: load(&inner.calls),
            failures: load(&inner.failures),
            accepted: load(&inner.accepted),
            refused: load(&inner.refused),
            cache_hits: cache_stats.hits,
            cache_misses: cache_stats.misses,
            coalesced: load(&inner.coalesced),
            over_capacity: load(&inner.over_capacity),
            discoveries: load(&inner.discoveries),
            call_micros: load(&inner.call_micros),
        }
    }

    /// Entries held by the answer cache.
    pub fn cached_entries(&self) -> u64 {
        self.inner
            .cache
            .as_ref()
            .map_or(0, |cache| cache.stats().entries)
    }

    /// Drops every cached answer (e.g. after a revocation you learnt about out of band).
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
    }

    /// Whether `token` goes to this verifier rather than to the issuer policies.
    pub(crate) fn handles(&self, token: &str) -> bool {
        match jws::shape(token) {
            TokenShape::Opaque => true,
            TokenShape::Jwe => false,
            TokenShape::Jws { payload } => match self.inner.config.mode {
                IntrospectionMode::OpaqueOnly => false,
                IntrospectionMode::AllTokens => {
                    unverified_issuer(payload).is_some_and(|iss| iss == self.inner.config.issuer)
                }
            },
        }
    }

    /// Introspects `token` (whose SHA-256 is `hash`): from the cache, or by joining the call
    /// in flight for it, or by making that call.
    pub(crate) async fn introspect(&self, token: &str, hash: [u8; 32]) -> Outcome {
        let inner = &*self.inner;
        let key = CacheKey {
            policy: inner.policy,
            token_hash: hash,
        };
        if let Some(answer) = inner.cached(&key, true) {
            return answer;
        }
        let cell = {
            let mut flights = inner.in_flight.lock();
            match flights.get(&hash) {
                Some(cell) => {
                    inner.coalesced.fetch_add(1, Ordering::Relaxed);
                    cell.clone()
                }
                None => {
                    // A call that just finished stored its answer before leaving the table.
                    if let Some(answer) = inner.cached(&key, false) {
                        return answer;
                    }
                    let cell = Arc::new(OnceCell::new());
                    flights.insert(hash, cell.clone());
                    cell
                }
            }
        };
        let _flight = Flight {
            inner,
            hash,
            cell: &cell,
        };
        cell.get_or_init(|| inner.call(token, key)).await.clone()
    }
}

/// Removes a call's entry from the in-flight table once it has an answer, or when its last
/// waiter gives up (so a cancelled call does not stay in the table).
struct Flight<'a> {
    inner: &'a Inner,
    hash: [u8; 32],
    cell: &'a Arc<OnceCell<Outcome>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.inner.in_flight.lock();
        if let Some(current) = flights.get(&self.hash)
            && Arc::ptr_eq(current, self.cell)
            && (self.cell.initialized() || Arc::strong_count(self.cell) <= 2)
        {
            flights.remove(&self.hash);
        }
    }
}

fn unverified_issuer(payload: &str) -> Option<String> {
    let bytes = jws::decode(payload).ok()?;
    let view = crate::json::ObjectView::parse(&bytes)?;
    view.string("iss")
        .ok()
        .flatten()
        .map(|iss| iss.into_owned())
}

/// Why a call produced no usable answer (logged; never contains the token).
enum CallError {
    OverCapacity,
    Discovery,
    Request(String),
    Timeout,
    Status(u16),
    TooLarge,
    Garbage(&'static str),
}

impl CallError {
    fn describe(&self) -> String {
        match self {
            CallError::OverCapacity => "every call slot stayed busy".into(),
            CallError::Discovery => "no introspection_endpoint could be discovered".into(),
            CallError::Request(error) => format!("request failed: {error}"),
            CallError::Timeout => "the call timed out".into(),
            CallError::Status(status) => format!("unexpected status {status}"),
            CallError::TooLarge => "the response is too large".into(),
            CallError::Garbage(why) => why.to_string(),
        }
    }

    /// The metrics label.
    fn outcome(&self) -> &'static str {
        match self {
            CallError::Timeout => "timeout",
            _ => "error",
        }
    }
}

impl Inner {
    fn unavailable(&self) -> TokenError {
        TokenError::IntrospectionUnavailable {
            retry_after: self.config.retry_after,
        }
    }

    /// A servable cached answer (counted as a cache hit or miss when `count`); entries past
    /// their time are removed.
    fn cached(&self, key: &CacheKey, count: bool) -> Option<Outcome> {
        let cache = self.cache.as_ref()?;
        let now = self.clock.now();
        let entry = if count {
            cache.get(key, now, |_| true)
        } else {
            cache.peek(key, now)
        };
        entry.map(|entry| entry.answer.clone())
    }

    fn store(&self, key: CacheKey, answer: &Outcome, valid_until: Duration, weight: usize) {
        let Some(cache) = &self.cache else {
            return;
        };
        let now = self.clock.now();
        let valid_until = valid_until.min(now.saturating_add(cache.ttl()));
        if valid_until <= now {
            return;
        }
        cache.insert(
            key,
            CacheEntry {
                answer: answer.clone(),
                signed_by: None,
                valid_until,
                weight: (weight + 256) as u64,
            },
        );
    }

    /// An answer another replica stored, judged again here (`None`: none, or not usable).
    async fn shared_answer(&self, key: &CacheKey) -> Option<Outcome> {
        let shared = self.config.shared_answers.as_ref()?;
        let (body, left) = shared.0.get(&key.token_hash).await?;
        let now = self.clock.now();
        let shared_until = now.saturating_add(left);
        match judge(&body, &self.config, now, &key.token_hash) {
            Judgement::Garbage(_) => None,
            Judgement::Valid { token, valid_until } => {
                let answer = Ok(token);
                self.store(*key, &answer, valid_until.min(shared_until), body.len());
                Some(answer)
            }
            Judgement::Invalid(error) => {
                let answer = Err(error);
                if let Some(ttl) = self.config.negative_ttl {
                    let until = now.saturating_add(ttl).min(shared_until);
                    self.store(*key, &answer, until, 0);
                }
                Some(answer)
            }
        }
    }

    fn share(&self, key: &CacheKey, body: &[u8], ttl: Duration) {
        if let Some(shared) = &self.config.shared_answers
            && !ttl.is_zero()
        {
            // Not awaited by the request: sharing saves the other replicas a call, it never
            // decides this one.
            let shared = shared.0.clone();
            let (hash, body) = (key.token_hash, body.to_vec());
            tokio::spawn(async move { shared.put(&hash, &body, ttl).await });
        }
    }

    /// One call: the shared answers, a slot, the endpoint, the POST, the judgement, the
    /// caches.
    async fn call(&self, token: &str, key: CacheKey) -> Outcome {
        if let Some(answer) = self.shared_answer(&key).await {
            return answer;
        }
        let fingerprint = TokenFingerprint::of(token);
        let started = Instant::now();
        let result = self.call_endpoint(token).await;
        let elapsed = started.elapsed();
        let body = match result {
            Ok(body) => body,
            Err(error) => return Err(self.failed(&error, fingerprint, elapsed)),
        };
        let now = self.clock.now();
        match judge(&body, &self.config, now, &key.token_hash) {
            Judgement::Garbage(why) => {
                Err(self.failed(&CallError::Garbage(why), fingerprint, elapsed))
            }
            Judgement::Valid { token, valid_until } => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                record(elapsed, "active");
                let answer = Ok(token);
                self.store(key, &answer, valid_until, body.len());
                let ttl = self.cache.as_ref().map_or(valid_until, |cache| {
                    valid_until.min(now.saturating_add(cache.ttl()))
                });
                self.share(&key, &body, ttl.saturating_sub(now));
                answer
            }
            Judgement::Invalid(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                record(
                    elapsed,
                    if error == TokenError::Inactive {
                        "inactive"
                    } else {
                        "refused"
                    },
                );
                tracing::debug!(target: LOG_TARGET, %fingerprint, reason = error.reason(), "introspected token refused");
                let answer = Err(error);
                if let Some(ttl) = self.config.negative_ttl {
                    self.store(key, &answer, now.saturating_add(ttl), 0);
                    self.share(&key, &body, ttl);
                }
                answer
            }
        }
    }

    fn failed(
        &self,
        error: &CallError,
        fingerprint: TokenFingerprint,
        elapsed: Duration,
    ) -> TokenError {
        match error {
            CallError::OverCapacity => {
                self.over_capacity.fetch_add(1, Ordering::Relaxed);
            }
            CallError::Discovery => {}
            _ => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                record(elapsed, error.outcome());
            }
        }
        tracing::warn!(
            target: LOG_TARGET,
            issuer = %self.config.issuer,
            %fingerprint,
            error = %error.describe(),
            "token introspection unavailable"
        );
        self.unavailable()
    }

    async fn call_endpoint(&self, token: &str) -> Result<Vec<u8>, CallError> {
        let endpoint = self.endpoint().await?;
        let _slot = tokio::time::timeout(self.config.queue_timeout, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(CallError::OverCapacity)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.post(&endpoint, token).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.call_micros.fetch_add(micros, Ordering::Relaxed);
        result
    }

    async fn post(&self, endpoint: &Url, token: &str) -> Result<Vec<u8>, CallError> {
        let mut request = self.client.post(endpoint.clone());
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token)
                .append_pair("token_type_hint", "access_token");
            request = self.config.client_auth.authenticate(request, &mut form);
            form.finish()
        };
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| CallError::from(request_error(error)))?;
        read_body(response, self.config.max_response_bytes).await
    }

    /// The endpoint: configured, already discovered, or discovered now (single-flight, not
    /// retried within `retry_after` of a failure).
    async fn endpoint(&self) -> Result<Arc<Url>, CallError> {
        if let Some(url) = self.endpoint.load_full() {
            return Ok(url);
        }
        let _flight = self.discovery.lock().await;
        if let Some(url) = self.endpoint.load_full() {
            return Ok(url);
        }
        let now = self.clock.now();
        let failed_at = Duration::from_nanos(self.discovery_failed_at.load(Ordering::Acquire));
        if !failed_at.is_zero() && now < failed_at.saturating_add(self.config.retry_after) {
            return Err(CallError::Discovery);
        }
        self.discoveries.fetch_add(1, Ordering::Relaxed);
        match self.discover().await {
            Some(url) => {
                tracing::debug!(target: LOG_TARGET, issuer = %self.config.issuer, endpoint = %url, "introspection endpoint discovered");
                let url = Arc::new(url);
                self.endpoint.store(Some(url.clone()));
                Ok(url)
            }
            None => {
                let nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX).max(1);
                self.discovery_failed_at.store(nanos, Ordering::Release);
                Err(CallError::Discovery)
            }
        }
    }

    async fn discover(&self) -> Option<Url> {
        let issuer = &self.config.issuer;
        match discover_endpoint(&self.client, issuer, "introspection_endpoint").await {
            Ok(url) => Some(url),
            Err(misses) => {
                for miss in misses {
                    tracing::warn!(target: LOG_TARGET, url = %miss.url, why = %miss.why, "discovery candidate failed");
                }
                None
            }
        }
    }
}

/// A 200 response's body, read up to `limit` bytes.
async fn read_body(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, CallError> {
    match read_capped(response, limit).await? {
        (reqwest::StatusCode::OK, body) => Ok(body),
        (status, _) => Err(CallError::Status(status.as_u16())),
    }
}

impl From<FetchError> for CallError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Request(text) => CallError::Request(text),
            FetchError::Timeout => CallError::Timeout,
            FetchError::TooLarge => CallError::TooLarge,
        }
    }
}

fn record(elapsed: Duration, outcome: &'static str) {
    crate::metrics::record_introspection(elapsed, outcome);
}
