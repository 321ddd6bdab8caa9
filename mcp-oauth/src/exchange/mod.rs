//! Calling downstream APIs on the user's behalf: token exchange (RFC 8693), and Microsoft
//! Entra ID's on-behalf-of flow as a preset.
//!
//! A tool that calls another API must not pass the client's token on (token passthrough is
//! forbidden: the token's audience is this server, and the downstream API would have to
//! accept tokens meant for someone else). It asks the authorization server for a token of
//! its own, for that API's audience, with the scopes it needs, presenting the incoming token
//! as the `subject_token` and authenticating as this server's own confidential client. The
//! token it gets back names the user as `sub` and this server in `act` (RFC 8693 §4.1).
//!
//! - [`TokenExchanger`]: the configured client of the token endpoint, with an allow-list of
//!   the downstream audiences it may ask for (fail closed: an exchanger allows none until
//!   told) and a cache.
//! - The cache is keyed by the incoming token's **full** SHA-256 with the audience and the
//!   scopes (never the short fingerprint: a collision would hand one user's downstream token
//!   to another); an entry never outlives either token (it ends at the earlier `exp`, less a
//!   margin); concurrent calls for the same key make one request (single-flight), and share
//!   its answer, failure included; failures are not cached past that.
//! - [`IncomingToken`]: the incoming token, kept by the HTTP layer only when an exchanger is
//!   configured ([`OAuthLayerBuilder::token_exchange`](crate::http::OAuthLayerBuilder::token_exchange)),
//!   sealed: it never prints, logs or serialises, and only the exchanger reads it.
//! - [`Downstream`]: what a tool asks, per request (with rmcp, a tool parameter like
//!   [`Authenticated`](crate::rmcp::Authenticated)): [`token`](Downstream::token) for a
//!   downstream token, [`send`](Downstream::send) to call the API with one (a `401` from the
//!   API drops the cached token and tries once more with a fresh one; a `403
//!   insufficient_scope` becomes an [`ExchangeError::InsufficientScope`]). Each exchange adds
//!   an audit event to the request's trail, with the downstream audience and the issued
//!   token's `act` ([`crate::audit`]).
//! - Errors a client can act on ([`ExchangeError`]): an `insufficient_scope` from upstream
//!   concerns the *downstream* API's scopes, so it becomes a step-up on this resource only
//!   through a mapping you configure ([`TokenExchangerBuilder::step_up`]); otherwise it is a
//!   tool error, as are a refused exchange and an unreachable server. With rmcp, a tool may
//!   return `Result<_, ExchangeError>` directly.
//!
//! ```no_run
//! use mcp_oauth::exchange::{ClientAuth, Target, TokenExchanger};
//!
//! # fn demo() -> Result<(), mcp_oauth::exchange::ExchangeConfigError> {
//! let exchanger = TokenExchanger::builder(ClientAuth::SecretBasic {
//!     client_id: "calendar-server".into(),
//!     client_secret: std::env::var("CALENDAR_SERVER_SECRET").unwrap_or_default(),
//! })
//! .issuer("https://auth.example.com") // the token endpoint from its metadata
//! .allow_audience("https://holidays.example.com")
//! // A 403 insufficient_scope for holidays:write downstream asks the client for calendar:write.
//! .step_up("https://holidays.example.com", "holidays:write", ["calendar:write"])
//! .build()?;
//! // OAuthLayer::builder(config, validator).token_exchange(exchanger)
//! const HOLIDAYS: fn() -> Target =
//!     || Target::audience("https://holidays.example.com").scopes(["holidays:read"]);
//! # Ok(()) }
//! ```
//!
//! Entra ID: [`TokenExchangerBuilder::entra_on_behalf_of`] sends the on-behalf-of request
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `requested_token_use=on_behalf_of`),
//! naming the downstream API through the scopes (`api://calendar/Events.Read`; a short scope
//! is prefixed with the target's audience; none asks for `.default`). Entra's
//! `interaction_required` and `consent_required` become
//! [`ExchangeError::InteractionRequired`].

mod incoming;
mod protocol;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use tokio::sync::OnceCell;
use url::Url;

use crate::audit::{AuditEvent, AuditSink, DownstreamAudit, Outcome, reason};
use crate::clock::{Clock, SystemClock};
use crate::crypto::sha256;
use crate::http_client::{discover_endpoint, read_capped, request_error};
/// How the server authenticates to the token endpoint (the type introspection uses too).
pub use crate::introspection::ClientAuth;
use crate::scopes::{ScopeHierarchy, ScopeSet, is_valid_scope_token};
use crate::tools::InsufficientScope;
use crate::validation::{TokenFingerprint, VerifiedToken};
pub use incoming::IncomingToken;

const LOG_TARGET: &str = "mcp_oauth::exchange";

/// The default bound of the exchange cache, in entries.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// The default margin before either token's expiry at which a cached token is no longer
/// handed out (the downstream call must still find it valid).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// The default timeout of one call to the token endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed discovery of the token endpoint, how long exchanges fail at once.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// The bound of a token endpoint's answer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Which token request the exchanger sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// RFC 8693 token exchange (Keycloak, Okta, Auth0's custom token exchange, Scalekit,
    /// the dev authorization server).
    TokenExchange,
    /// Microsoft Entra ID's on-behalf-of flow.
    EntraOnBehalfOf,
}

/// The downstream API a token is asked for: its audience (RFC 8693 `audience`, a logical
/// name) or resource (`resource`, an absolute URI), and the scopes. What the cache keys on
/// with the incoming token.
///
/// ```
/// use mcp_oauth::exchange::Target;
///
/// let holidays = Target::audience("https://holidays.example.com").scopes(["holidays:read"]);
/// assert_eq!(holidays.name(), "https://holidays.example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    audiences: Vec<String>,
    resources: Vec<String>,
    /// Sorted and deduplicated: the same request, whatever the order written.
    scopes: Vec<String>,
}

impl Target {
    /// A token for this audience (sent as `audience`).
    pub fn audience(audience: impl Into<String>) -> Self {
        Self {
            audiences: vec![audience.into()],
            resources: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// A token for this resource URI (sent as `resource`, RFC 8707).
    pub fn resource(resource: impl Into<String>) -> Self {
        Self {
            audiences: Vec::new(),
            resources: vec![resource.into()],
            scopes: Vec::new(),
        }
    }

    /// With these scopes (none: the authorization server's default for the audience).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self.scopes.sort();
        self.scopes.dedup();
        self
    }

    /// The audience or resource, for logs and audit (the first, when there are several).
    pub fn name(&self) -> &str {
        self.audiences
            .first()
            .or(self.resources.first())
            .map_or("", String::as_str)
    }

    /// The scopes asked for, sorted.
    pub fn requested_scopes(&self) -> &[String] {
        &self.scopes
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.audiences.iter().chain(&self.resources)
    }

    /// Every audience and resource, space-separated (the audit's `audience`).
    fn joined_names(&self) -> String {
        self.names()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// An unambiguous encoding of the target, for the cache key.
    fn key_material(&self) -> Vec<u8> {
        let mut material = Vec::new();
        for (tag, list) in [
            (b'a', &self.audiences),
            (b'r', &self.resources),
            (b's', &self.scopes),
        ] {
            for item in list {
                material.push(tag);
                material.extend_from_slice(&(item.len() as u64).to_be_bytes());
                material.extend_from_slice(item.as_bytes());
            }
        }
        material
    }
}

/// A token for a downstream API, from an exchange or the cache. `Debug` shows its
/// fingerprint, never the token; [`authorize`](Self::authorize) puts it on a request.
#[derive(Clone)]
pub struct DownstreamToken {
    token: Arc<str>,
    audience: String,
    scopes: Vec<String>,
    expires_at: u64,
    act: Option<String>,
    from_cache: bool,
}

impl DownstreamToken {
    /// The token, to send to the downstream API (and nowhere else).
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// `request` with `Authorization: Bearer <token>` (marked sensitive, so that reqwest
    /// and hyper keep it out of their debug output).
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.token)) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.header(reqwest::header::AUTHORIZATION, value)
            }
            // Not a header value: the downstream API answers 401, the caller sees why.
            Err(_) => request,
        }
    }

    /// The audience (or resource) the token was asked for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The scopes granted (what was asked for, when the server did not say).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Until when this library hands the token out: the earlier of its own expiry and the
    /// incoming token's, seconds since the Unix epoch (`0`: unknown, never cached).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The token's `act` claim as compact JSON, when it is a JWT that carries one.
    pub fn act(&self) -> Option<&str> {
        self.act.as_deref()
    }

    /// Whether this came from the cache rather than a call to the authorization server.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The token's fingerprint, as the audit log shows it.
    pub fn fingerprint(&self) -> TokenFingerprint {
        TokenFingerprint::of(&self.token)
    }
}

impl fmt::Debug for DownstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownstreamToken")
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("fingerprint", &self.fingerprint())
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

/// Why no downstream token (or no downstream answer) was obtained. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// No exchanger is configured on the HTTP layer, so the request's token was not kept
    /// ([`OAuthLayerBuilder::token_exchange`](crate::http::OAuthLayerBuilder::token_exchange)).
    #[error("token exchange is not configured on this server")]
    NotConfigured,
    /// The exchanger is not allowed to ask for this audience
    /// ([`TokenExchangerBuilder::allow_audience`]); nothing was sent.
    #[error("the downstream audience {0:?} is not allowed")]
    AudienceNotAllowed(String),
    /// A scope of the target is not a scope token (RFC 6749 §3.3), or (Entra) names another
    /// API than the target; nothing was sent.
    #[error("the scope {0:?} is not a valid scope for this target")]
    InvalidScope(String),
    /// The incoming token's issuer is not one this exchanger sends tokens to (only the
    /// authorization server that issued a token may see it); nothing was sent.
    #[error("tokens of issuer {0:?} are not exchanged here")]
    IssuerNotAccepted(String),
    /// The incoming token has expired; nothing was sent.
    #[error("the incoming token has expired")]
    SubjectExpired,
    /// The downstream API's scopes are not granted: the authorization server answered
    /// `invalid_scope`, or the API `403 insufficient_scope`. `step_up` is what this
    /// resource's client must obtain for it, when a configured mapping says so and the
    /// token lacks it; `None`: a tool error.
    #[error("the downstream API {audience:?} needs scopes that are not granted: {}", scopes.join(" "))]
    InsufficientScope {
        /// The downstream audience.
        audience: String,
        /// The downstream scopes that were refused (or asked for).
        scopes: Vec<String>,
        /// The step-up on this resource, from the configured mapping.
        step_up: Option<InsufficientScope>,
    },
    /// The user must interact with the authorization server (consent, multi-factor
    /// authentication): Entra's `interaction_required` / `consent_required`.
    #[error("the user must sign in again or consent at the authorization server ({error})")]
    InteractionRequired {
        /// The error code.
        error: String,
        /// The server's description.
        description: Option<String>,
    },
    /// The authorization server refused the exchange (`invalid_grant`, `invalid_target`,
    /// `unauthorized_client`, …).
    // The description is the server's text: logged, never part of what a model reads.
    #[error("the authorization server refused the token exchange: {error}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The RFC 6749 error code.
        error: String,
        /// The server's description, stripped of control characters and bounded.
        description: Option<String>,
    },
    /// The authorization server could not be reached or failed (timeout, 5xx, no token
    /// endpoint discovered); try again later.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
    /// The authorization server's answer cannot be used.
    #[error("the token exchange answer is unusable: {0}")]
    InvalidResponse(String),
    /// The downstream API refused the exchanged token (again, after a fresh exchange).
    #[error("the downstream API {audience:?} refused the token with status {status}")]
    DownstreamRefused {
        /// The downstream audience.
        audience: String,
        /// Its status.
        status: u16,
    },
    /// The request to the downstream API failed.
    #[error("the downstream API {audience:?} could not be reached: {why}")]
    DownstreamUnavailable {
        /// The downstream audience.
        audience: String,
        /// Why.
        why: String,
    },
}

impl ExchangeError {
    /// A stable snake_case code: the authorization server's error code for
    /// [`Refused`](Self::Refused) and [`InteractionRequired`](Self::InteractionRequired),
    /// else this library's (`not_configured`, `audience_not_allowed`, `insufficient_scope`,
    /// `unavailable`, …). The audit's `downstream.error`.
    pub fn code(&self) -> &str {
        match self {
            ExchangeError::NotConfigured => "not_configured",
            ExchangeError::AudienceNotAllowed(_) => "audience_not_allowed",
            ExchangeError::InvalidScope(_) => "invalid_scope",
            ExchangeError::IssuerNotAccepted(_) => "issuer_not_accepted",
            ExchangeError::SubjectExpired => "subject_expired",
            ExchangeError::InsufficientScope { .. } => "insufficient_scope",
            ExchangeError::InteractionRequired { error, .. } => error,
            ExchangeError::Refused { error, .. } => error,
            ExchangeError::Unavailable(_) => "unavailable",
            ExchangeError::InvalidResponse(_) => "invalid_response",
            ExchangeError::DownstreamRefused { .. } => "downstream_refused",
            ExchangeError::DownstreamUnavailable { .. } => "downstream_unavailable",
        }
    }

    /// Whether trying again later may succeed (the server or the API was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExchangeError::Unavailable(_) | ExchangeError::DownstreamUnavailable { .. }
        )
    }
}

/// Why a [`TokenExchanger`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeConfigError {
    /// Neither a token endpoint nor an issuer to discover it from.
    #[error("token exchange needs a token endpoint or an issuer to discover it from")]
    NoEndpoint,
    /// The token endpoint or issuer is not https (plain http only on loopback): the
    /// client secret and the user's token would travel in the clear.
    #[error("{0:?} is not https (plain http only on a loopback host)")]
    NotHttps(String),
    /// Only a token endpoint is configured: which issuer's tokens may be sent to it is not
    /// known ([`TokenExchangerBuilder::subject_issuer`]).
    #[error(
        "token exchange with a configured token endpoint needs the issuer whose tokens it exchanges (subject_issuer)"
    )]
    NoSubjectIssuer,
    /// An allowed audience is empty or holds whitespace, or a step-up mapping names an
    /// audience that is not allowed.
    #[error("{0:?} is not a usable downstream audience here")]
    InvalidAudience(String),
    /// No downstream audience is allowed: every exchange would be refused.
    #[error("token exchange allows no downstream audience: add them with allow_audience")]
    NoAudience,
    /// The client id or secret is empty.
    #[error("token exchange needs the server's client id and secret")]
    NoClientCredentials,
    /// A step-up mapping names a scope that is not a scope token.
    #[error("the step-up mapping names an invalid scope {0:?}")]
    InvalidScope(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
}

/// One configured step-up: a downstream scope that this resource's scopes stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StepUpRule {
    audience: String,
    downstream_scope: String,
    local: ScopeSet,
}

impl StepUpRule {
    /// Whether this rule maps the downstream `scope` of an API named in `names`.
    fn maps<N: AsRef<str>>(&self, scope: &str, mut names: impl Iterator<Item = N>) -> bool {
        self.downstream_scope == scope && names.any(|name| name.as_ref() == self.audience)
    }
}

/// Configures a [`TokenExchanger`]; from [`TokenExchanger::builder`].
#[must_use = "call .build() to get the exchanger"]
pub struct TokenExchangerBuilder {
    client_auth: ClientAuth,
    endpoint: Option<String>,
    issuer: Option<String>,
    subject_issuers: Vec<String>,
    grant: Grant,
    allowed: Vec<String>,
    step_ups: Vec<StepUpRule>,
    actor: Option<(String, String)>,
    capacity: usize,
    refresh_margin: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TokenExchangerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangerBuilder")
            .field("client_auth", &self.client_auth)
            .field("endpoint", &self.endpoint)
            .field("issuer", &self.issuer)
            .field("grant", &self.grant)
            .field("allowed", &self.allowed)
            .field("step_ups", &self.step_ups)
            .field("actor", &self.actor.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl TokenExchangerBuilder {
    /// The token endpoint (else discovered from [`issuer`](Self::issuer)'s metadata).
    pub fn token_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The authorization server whose RFC 8414 / OpenID metadata names the token endpoint
    /// (discovered on first use; after a failure, again after a pause). Its tokens are the
    /// ones exchanged ([`subject_issuer`](Self::subject_issuer)).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.subject_issuers.push(issuer.clone());
        self.issuer = Some(issuer);
        self
    }

    /// Exchanges tokens of this issuer (the `iss` of the incoming token): required with a
    /// configured [`token_endpoint`](Self::token_endpoint), implied by
    /// [`issuer`](Self::issuer). A token of any other issuer is never sent: the server at
    /// the endpoint could replay it to this resource.
    pub fn subject_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.subject_issuers.push(issuer.into());
        self
    }

    /// Sends Entra ID's on-behalf-of request instead of RFC 8693's (see the module docs).
    pub fn entra_on_behalf_of(mut self) -> Self {
        self.grant = Grant::EntraOnBehalfOf;
        self
    }

    /// Allows asking for tokens for this downstream audience or resource. An exchanger
    /// allows none until told: a tool cannot obtain tokens for arbitrary APIs.
    pub fn allow_audience(mut self, audience: impl Into<String>) -> Self {
        self.allowed.push(audience.into());
        self
    }

    /// [`allow_audience`](Self::allow_audience) for each.
    pub fn allow_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// When `audience` refuses for want of `downstream_scope` (the authorization server's
    /// `invalid_scope`, or the API's `403 insufficient_scope`), the client of this resource
    /// is asked to step up to `local` (a 403 challenge on this resource), unless its token
    /// holds them already. Without a mapping the refusal is a tool error: a downstream
    /// scope means nothing to this resource's clients.
    pub fn step_up<I, S>(
        mut self,
        audience: impl Into<String>,
        downstream_scope: impl Into<String>,
        local: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.step_ups.push(StepUpRule {
            audience: audience.into(),
            downstream_scope: downstream_scope.into(),
            local: local.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Sends this `actor_token` (of `actor_token_type`, e.g.
    /// `urn:ietf:params:oauth:token-type:jwt`) with every RFC 8693 exchange: the server's own
    /// credential as the actor, for authorization servers that want one.
    pub fn actor_token(mut self, token: impl Into<String>, token_type: impl Into<String>) -> Self {
        self.actor = Some((token.into(), token_type.into()));
        self
    }

    /// The cache's bound, in entries (default [`DEFAULT_CACHE_CAPACITY`]; 0 turns caching
    /// off: each call exchanges, concurrent calls for the same key still share one).
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.capacity = entries;
        self
    }

    /// How long before either token's expiry a cached token stops being handed out
    /// (default [`DEFAULT_REFRESH_MARGIN`]).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The timeout of one call to the token endpoint (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock the cache's expiry reads (tests use a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the configuration and builds the exchanger.
    pub fn build(self) -> Result<TokenExchanger, ExchangeConfigError> {
        let https = |url: &str| match Url::parse(url) {
            Ok(parsed) if crate::is_https_or_loopback(&parsed) && parsed.host().is_some() => {
                Ok(parsed)
            }
            _ => Err(ExchangeConfigError::NotHttps(url.to_owned())),
        };
        let endpoint = self.endpoint.as_deref().map(https).transpose()?;
        if let Some(issuer) = &self.issuer {
            https(issuer)?;
        }
        if endpoint.is_none() && self.issuer.is_none() {
            return Err(ExchangeConfigError::NoEndpoint);
        }
        if self.subject_issuers.is_empty() {
            return Err(ExchangeConfigError::NoSubjectIssuer);
        }
        if self.allowed.is_empty() {
            return Err(ExchangeConfigError::NoAudience);
        }
        if let Some(audience) = self
            .allowed
            .iter()
            .find(|a| a.is_empty() || a.chars().any(char::is_whitespace))
            .or_else(|| {
                self.step_ups
                    .iter()
                    .map(|rule| &rule.audience)
                    .find(|a| !self.allowed.contains(a))
            })
        {
            return Err(ExchangeConfigError::InvalidAudience(audience.clone()));
        }
        let (ClientAuth::SecretBasic {
            client_id,
            client_secret,
        }
        | ClientAuth::SecretPost {
            client_id,
            client_secret,
        }) = &self.client_auth;
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(ExchangeConfigError::NoClientCredentials);
        }
        if let Some(scope) = self
            .step_ups
            .iter()
            .flat_map(|rule| {
                std::iter::once(rule.downstream_scope.as_str()).chain(rule.local.iter())
            })
            .find(|scope| !is_valid_scope_token(scope))
        {
            return Err(ExchangeConfigError::InvalidScope(scope.to_owned()));
        }
        let client = crate::http_client::build(self.timeout, self.timeout, 0)
            .map_err(|error| ExchangeConfigError::HttpClient(error.to_string()))?;
        let discovered = OnceCell::new_with(endpoint);
        Ok(TokenExchanger(Arc::new(Inner {
            client_auth: self.client_auth,
            issuer: self.issuer,
            subject_issuers: self.subject_issuers,
            discovery_failed_at: parking_lot::Mutex::new(None),
            endpoint: discovered,
            grant: self.grant,
            allowed: self.allowed,
            step_ups: self.step_ups,
            actor: self.actor,
            cache: Cache::new(self.capacity.max(1)),
            caching: self.capacity > 0,
            refresh_margin: self.refresh_margin.as_secs(),
            client,
            clock: self.clock,
        })))
    }
}

/// Obtains tokens for downstream APIs in exchange for the incoming token, with a cache; see
/// the [module docs](self). Cheap to clone (one shared cache).
#[derive(Clone)]
pub struct TokenExchanger(Arc<Inner>);

struct Inner {
    client_auth: ClientAuth,
    issuer: Option<String>,
    subject_issuers: Vec<String>,
    /// When discovery last failed: callers within [`DISCOVERY_RETRY`] fail at once.
    discovery_failed_at: parking_lot::Mutex<Option<Instant>>,
    endpoint: OnceCell<Url>,
    grant: Grant,
    allowed: Vec<String>,
    step_ups: Vec<StepUpRule>,
    actor: Option<(String, String)>,
    cache: Cache<[u8; 32], Arc<Flight>>,
    caching: bool,
    refresh_margin: u64,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

/// One exchange's answer, kept for the requests that waited on it and, when it is a token,
/// for later ones until it nears expiry.
struct Flight {
    answer: Result<DownstreamToken, ExchangeError>,
    /// When the call ended (waiters that started before it take the answer, failures
    /// included; later callers only a token still valid).
    landed: Instant,
    /// The status the token endpoint answered (0: none reached).
    status: u16,
}

impl fmt::Debug for TokenExchanger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchanger")
            .field("client_id", &self.0.client_auth.client_id())
            .field("grant", &self.0.grant)
            .field("endpoint", &self.0.endpoint.get().map(Url::as_str))
            .field("issuer", &self.0.issuer)
            .field("allowed", &self.0.allowed)
            .field("cached", &self.0.cache.len())
            .finish_non_exhaustive()
    }
}

/// What one exchange produced, for the audit event of the request it served.
pub(crate) struct Exchanged {
    pub(crate) answer: Result<DownstreamToken, ExchangeError>,
    pub(crate) status: u16,
}

impl TokenExchanger {
    /// Starts a configuration: the server authenticates to the token endpoint with
    /// `client_auth` (its own confidential client).
    pub fn builder(client_auth: ClientAuth) -> TokenExchangerBuilder {
        TokenExchangerBuilder {
            client_auth,
            endpoint: None,
            issuer: None,
            subject_issuers: Vec::new(),
            grant: Grant::TokenExchange,
            allowed: Vec::new(),
            step_ups: Vec::new(),
            actor: None,
            capacity: DEFAULT_CACHE_CAPACITY,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }

    /// The client id the server authenticates with (the `act.sub` of the tokens it gets).
    pub fn client_id(&self) -> &str {
        self.0.client_auth.client_id()
    }

    /// The grant it sends.
    pub fn grant(&self) -> Grant {
        self.0.grant
    }

    /// The downstream audiences it may ask for.
    pub fn allowed_audiences(&self) -> &[String] {
        &self.0.allowed
    }

    /// The number of cached answers.
    pub fn cached_entries(&self) -> usize {
        self.0.cache.len()
    }

    /// Drops every cached token.
    pub fn clear_cache(&self) {
        self.0.cache.clear();
    }

    /// A token for `target` in exchange for `incoming`: from the cache, or one call to the
    /// token endpoint shared by every concurrent caller with the same key.
    pub async fn exchange(
        &self,
        incoming: &IncomingToken,
        target: &Target,
    ) -> Result<DownstreamToken, ExchangeError> {
        self.exchange_recorded(incoming, target).await.answer
    }

    pub(crate) async fn exchange_recorded(
        &self,
        incoming: &IncomingToken,
        target: &Target,
    ) -> Exchanged {
        let refused = |error| Exchanged {
            answer: Err(error),
            status: 0,
        };
        if let Some(error) = self.refusal(incoming, target) {
            return refused(error);
        }
        let key = cache_key(incoming, target);
        let started = Instant::now();
        let now = self.now();
        let margin = self.0.refresh_margin;
        let caching = self.0.caching;
        let usable = |flight: &Flight| {
            flight.landed >= started
                || (caching
                    && matches!(&flight.answer, Ok(token) if token.expires_at > now.saturating_add(margin)))
        };
        let guard = match self
            .0
            .cache
            .entry_async(&key, |_, flight| {
                if usable(flight) {
                    EntryAction::Retain(flight.clone())
                } else {
                    EntryAction::ReplaceWithGuard
                }
            })
            .await
        {
            EntryResult::Retained(flight) => return shared(&flight),
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => guard,
            // Only with a wait timeout, which is not set; and a removal, which is not asked.
            EntryResult::Removed(..) | EntryResult::Timeout => {
                return refused(ExchangeError::Unavailable("cache contention".into()));
            }
        };
        // A lifetime counts from when the request left, not from when the answer came.
        let sent_at = self.now();
        let (answer, status) = self.call(incoming, target).await;
        let answer = answer.map(|issued| self.downstream_token(issued, incoming, target, sent_at));
        // Kept even with caching off: the callers waiting on this call take it from there.
        let flight = Arc::new(Flight {
            answer: answer.clone(),
            landed: Instant::now(),
            status,
        });
        let _ = guard.insert(flight);
        Exchanged { answer, status }
    }

    /// What is refused before anything is sent: another issuer's token, an expired one, an
    /// audience off the allow-list, a scope that is no scope token or (Entra) names another
    /// API.
    fn refusal(&self, incoming: &IncomingToken, target: &Target) -> Option<ExchangeError> {
        // The incoming token goes only to its own issuer: any other could replay it here.
        if !self
            .0
            .subject_issuers
            .iter()
            .any(|i| i == incoming.issuer())
        {
            return Some(ExchangeError::IssuerNotAccepted(
                incoming.issuer().to_owned(),
            ));
        }
        if incoming.expires_at() <= self.now() {
            return Some(ExchangeError::SubjectExpired);
        }
        if let Some(name) = target.names().find(|name| !self.0.allowed.contains(name)) {
            return Some(ExchangeError::AudienceNotAllowed(name.clone()));
        }
        if target.names().next().is_none() {
            return Some(ExchangeError::AudienceNotAllowed(String::new()));
        }
        if let Some(scope) = target.scopes.iter().find(|s| !is_valid_scope_token(s)) {
            return Some(ExchangeError::InvalidScope(scope.clone()));
        }
        // Entra names the API through the scopes: one naming another API than the target
        // would fetch a token for it, past the allow-list.
        if self.0.grant == Grant::EntraOnBehalfOf {
            let prefix = format!("{}/", target.name().trim_end_matches('/'));
            if let Some(scope) = target
                .scopes
                .iter()
                .find(|s| s.contains('/') && !s.starts_with(&prefix))
            {
                return Some(ExchangeError::InvalidScope(scope.clone()));
            }
        }
        None
    }

    /// Forgets the cached token for `target`, e.g. after the downstream API refused it.
    pub fn forget(&self, incoming: &IncomingToken, target: &Target) {
        self.0.cache.remove(&cache_key(incoming, target));
    }

    fn now(&self) -> u64 {
        self.0.clock.now().as_secs()
    }

    fn downstream_token(
        &self,
        issued: protocol::Issued,
        incoming: &IncomingToken,
        target: &Target,
        now: u64,
    ) -> DownstreamToken {
        // Unknown lifetime: never cached past the waiters (0), the token still handed out.
        let own_expiry = match (issued.expires_in, issued.jwt_expires_at) {
            (Some(lifetime), Some(exp)) => now.saturating_add(lifetime.as_secs()).min(exp),
            (Some(lifetime), None) => now.saturating_add(lifetime.as_secs()),
            (None, Some(exp)) => exp,
            (None, None) => 0,
        };
        DownstreamToken {
            token: issued.access_token.into(),
            audience: target.joined_names(),
            scopes: issued.scopes.unwrap_or_else(|| target.scopes.clone()),
            expires_at: own_expiry.min(incoming.expires_at()),
            act: issued.act,
            from_cache: false,
        }
    }

    async fn endpoint(&self) -> Result<&Url, ExchangeError> {
        let issuer = self.0.issuer.as_deref().unwrap_or_default();
        let unavailable = || {
            ExchangeError::Unavailable(format!(
                "no token_endpoint could be discovered for {issuer}"
            ))
        };
        if let Some(endpoint) = self.0.endpoint.get() {
            return Ok(endpoint);
        }
        // Queued callers would each try every discovery URL again: a pause after a failure.
        let recently_failed =
            |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < DISCOVERY_RETRY);
        if recently_failed(&self.0.discovery_failed_at.lock()) {
            return Err(unavailable());
        }
        self.0
            .endpoint
            .get_or_try_init(|| async {
                if recently_failed(&self.0.discovery_failed_at.lock()) {
                    return Err(unavailable());
                }
                discover_endpoint(&self.0.client, issuer, "token_endpoint")
                    .await
                    .map_err(|misses| {
                        for miss in &misses {
                            tracing::warn!(target: LOG_TARGET, url = %miss.url, why = %miss.why, "token endpoint discovery candidate failed");
                        }
                        *self.0.discovery_failed_at.lock() = Some(Instant::now());
                        unavailable()
                    })
            })
            .await
    }

    /// One call to the token endpoint: the answer and the status (0 when none came).
    async fn call(
        &self,
        incoming: &IncomingToken,
        target: &Target,
    ) -> (Result<protocol::Issued, ExchangeError>, u16) {
        let endpoint = match self.endpoint().await {
            Ok(endpoint) => endpoint.clone(),
            Err(error) => return (Err(error), 0),
        };
        // The form serializer is not `Sync`: it must not live across an await, or a tool's
        // future (which rmcp needs `Send`) would not be.
        let request = {
            let mut form = protocol::form(
                self.0.grant,
                incoming.expose(),
                target,
                self.0.actor.as_ref(),
            );
            let request = self.0.client.post(endpoint);
            let request = self.0.client_auth.authenticate(request, &mut form);
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(form.finish())
        };
        let response = request.send().await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                let why = request_error(error).describe();
                return (Err(ExchangeError::Unavailable(why)), 0);
            }
        };
        let (status, body) = match read_capped(response, MAX_RESPONSE_BYTES).await {
            Ok(answer) => answer,
            Err(error) => return (Err(ExchangeError::Unavailable(error.describe())), 0),
        };
        let code = status.as_u16();
        if status == reqwest::StatusCode::OK {
            return (protocol::issued(&body, incoming.expose()), code);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return (
                Err(ExchangeError::Unavailable(format!(
                    "the token endpoint answered {status}"
                ))),
                code,
            );
        }
        let Some(error) = protocol::oauth_error(&body) else {
            return (
                Err(ExchangeError::InvalidResponse(format!(
                    "the token endpoint answered {status} without an OAuth error"
                ))),
                code,
            );
        };
        if error.error == "invalid_client" {
            tracing::error!(target: LOG_TARGET, client_id = self.client_id(), "the authorization server does not accept this server's client credentials for token exchange");
        }
        let error = match error.error.as_str() {
            "invalid_scope" => ExchangeError::InsufficientScope {
                audience: target.joined_names(),
                scopes: target.scopes.clone(),
                step_up: None,
            },
            "interaction_required" | "consent_required" | "login_required" => {
                ExchangeError::InteractionRequired {
                    error: error.error,
                    description: error.description,
                }
            }
            _ => ExchangeError::Refused {
                status: code,
                error: error.error,
                description: error.description,
            },
        };
        (Err(error), code)
    }

    /// What the caller lacks of the scopes of this resource that the mapping ties to the
    /// downstream scopes `target` asks for (`None`: nothing, or no mapping applies).
    fn unearned(
        &self,
        target: &Target,
        identity: &VerifiedToken,
        hierarchy: &ScopeHierarchy,
    ) -> Option<InsufficientScope> {
        let mut required = ScopeSet::new();
        for rule in &self.0.step_ups {
            if target
                .scopes
                .iter()
                .any(|scope| rule.maps(scope, target.names()))
            {
                required.extend(rule.local.iter());
            }
        }
        lacking(required, identity, hierarchy)
    }

    /// The step-up on this resource that stands for the downstream `scopes` of `audience`:
    /// every one of them must be mapped, and the identity must lack some of the result
    /// (else asking the client again would not help).
    fn step_up_for(
        &self,
        audience: &str,
        scopes: &[String],
        identity: &VerifiedToken,
        hierarchy: &ScopeHierarchy,
    ) -> Option<InsufficientScope> {
        if scopes.is_empty() {
            return None;
        }
        let mut required = ScopeSet::new();
        for scope in scopes {
            let rule = self
                .0
                .step_ups
                .iter()
                .find(|rule| rule.maps(scope, audience.split(' ')))?;
            required.extend(rule.local.iter());
        }
        lacking(required, identity, hierarchy)
    }
}

/// `required` as a step-up, when the identity lacks any of it (after the hierarchy).
fn lacking(
    required: ScopeSet,
    identity: &VerifiedToken,
    hierarchy: &ScopeHierarchy,
) -> Option<InsufficientScope> {
    let missing = identity.scopes().missing(&required, hierarchy);
    (!missing.is_empty()).then_some(InsufficientScope { required, missing })
}

/// What a waiter or a later caller gets from a flight: the token marked as not fetched for
/// it (no call was made for this caller), or the failure with the status that caused it.
fn shared(flight: &Flight) -> Exchanged {
    match &flight.answer {
        Ok(token) => {
            let mut token = token.clone();
            token.from_cache = true;
            Exchanged {
                answer: Ok(token),
                status: 0,
            }
        }
        Err(error) => Exchanged {
            answer: Err(error.clone()),
            status: flight.status,
        },
    }
}

/// The full SHA-256 of the incoming token's SHA-256 with the target: never the short
/// fingerprint, which an attacker could aim a collision at.
fn cache_key(incoming: &IncomingToken, target: &Target) -> [u8; 32] {
    let mut material = incoming.sha256().to_vec();
    material.extend_from_slice(&target.key_material());
    sha256(&material)
}

/// Where a request's exchange events go: the layer's audit sink, with the request's id.
#[derive(Clone)]
#[cfg_attr(not(feature = "layer"), allow(dead_code))]
pub(crate) struct AuditTrail {
    pub(crate) sink: Arc<dyn AuditSink>,
    pub(crate) request_id: String,
    pub(crate) remote_addr: Option<IpAddr>,
    pub(crate) http_method: String,
    /// The layer's clock (the audit's time, as for the layer's own events).
    pub(crate) clock: Arc<dyn Clock>,
}

/// Token exchange for one request: the exchanger, the request's sealed token and verified
/// identity, and its audit trail. The HTTP layer puts it in the request's extensions when
/// an exchanger is configured; with rmcp a tool takes it as a parameter, like
/// [`Authenticated`](crate::rmcp::Authenticated) (extraction fails when the layer keeps no
/// token: [`ExchangeError::NotConfigured`]).
///
/// ```no_run
/// # #[cfg(feature = "rmcp")] {
/// use mcp_oauth::exchange::{Downstream, ExchangeError, Target};
/// use rmcp::model::{CallToolResult, ContentBlock};
///
/// async fn holidays(downstream: Downstream) -> Result<CallToolResult, ExchangeError> {
///     let target = Target::audience("https://holidays.example.com").scopes(["holidays:read"]);
///     let request = reqwest::Client::new().get("https://holidays.example.com/v1/holidays");
///     let response = downstream.send(&target, request).await?;
///     let text = response.text().await.unwrap_or_default();
///     Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Downstream {
    exchanger: TokenExchanger,
    incoming: IncomingToken,
    identity: VerifiedToken,
    hierarchy: ScopeHierarchy,
    trail: AuditTrail,
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream")
            .field("exchanger", &self.exchanger)
            .field("incoming", &self.incoming)
            .field("request_id", &self.trail.request_id)
            .finish_non_exhaustive()
    }
}

impl Downstream {
    #[cfg_attr(not(feature = "layer"), allow(dead_code))]
    pub(crate) fn new(
        exchanger: TokenExchanger,
        incoming: IncomingToken,
        identity: VerifiedToken,
        hierarchy: ScopeHierarchy,
        trail: AuditTrail,
    ) -> Self {
        Self {
            exchanger,
            incoming,
            identity,
            hierarchy,
            trail,
        }
    }

    /// The request's verified identity.
    pub fn identity(&self) -> &VerifiedToken {
        &self.identity
    }

    /// A token for `target` (cached, or exchanged now), recorded in the audit trail. A
    /// downstream scope the step-up mapping ties to scopes of this resource is asked for
    /// only when the caller's token holds them: the server must not obtain for a caller
    /// what the caller could not do here (an authorization server may grant by the
    /// exchanging client's rights alone).
    pub async fn token(&self, target: &Target) -> Result<DownstreamToken, ExchangeError> {
        if let Some(step_up) = self
            .exchanger
            .unearned(target, &self.identity, &self.hierarchy)
        {
            let error = ExchangeError::InsufficientScope {
                audience: target.joined_names(),
                scopes: target.scopes.clone(),
                step_up: Some(step_up),
            };
            self.record(target, &Err(error.clone()), 0);
            return Err(error);
        }
        let exchanged = self
            .exchanger
            .exchange_recorded(&self.incoming, target)
            .await;
        let answer = exchanged.answer.map_err(|error| self.with_step_up(error));
        self.record(target, &answer, exchanged.status);
        answer
    }

    /// Sends `request` to the downstream API with a token for `target` (the request's URL
    /// must be that API's: the token goes wherever the request goes). A `401` drops the
    /// cached token and, when the request can be cloned (no streaming body), tries once
    /// more with a fresh one; a `401` again is [`ExchangeError::DownstreamRefused`]. A `403`
    /// whose challenge says `insufficient_scope` is [`ExchangeError::InsufficientScope`]
    /// (with the step-up the mapping gives). Any other answer is the caller's to read.
    pub async fn send(
        &self,
        target: &Target,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ExchangeError> {
        let retry = request.try_clone();
        let response = self.send_once(target, request).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return self.judge(target, response);
        }
        self.exchanger.forget(&self.incoming, target);
        let Some(retry) = retry else {
            return self.judge(target, response);
        };
        let response = self.send_once(target, retry).await?;
        self.judge(target, response)
    }

    async fn send_once(
        &self,
        target: &Target,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ExchangeError> {
        let token = self.token(target).await?;
        token.authorize(request).send().await.map_err(|error| {
            ExchangeError::DownstreamUnavailable {
                audience: target.joined_names(),
                why: request_error(error).describe(),
            }
        })
    }

    fn judge(
        &self,
        target: &Target,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, ExchangeError> {
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ExchangeError::DownstreamRefused {
                audience: target.joined_names(),
                status: status.as_u16(),
            });
        }
        if status == reqwest::StatusCode::FORBIDDEN
            && let Some(scopes) = insufficient_scope(response.headers())
        {
            let scopes = if scopes.is_empty() {
                target.scopes.clone()
            } else {
                scopes
            };
            let error = ExchangeError::InsufficientScope {
                audience: target.joined_names(),
                scopes,
                step_up: None,
            };
            let error = self.with_step_up(error);
            self.record(target, &Err(error.clone()), status.as_u16());
            return Err(error);
        }
        Ok(response)
    }

    fn with_step_up(&self, error: ExchangeError) -> ExchangeError {
        match error {
            ExchangeError::InsufficientScope {
                audience, scopes, ..
            } => {
                let step_up =
                    self.exchanger
                        .step_up_for(&audience, &scopes, &self.identity, &self.hierarchy);
                ExchangeError::InsufficientScope {
                    audience,
                    scopes,
                    step_up,
                }
            }
            other => other,
        }
    }

    fn record(
        &self,
        target: &Target,
        answer: &Result<DownstreamToken, ExchangeError>,
        status: u16,
    ) {
        let (outcome, reason) = match answer {
            Ok(token) if token.from_cache => (Outcome::Allowed, reason::TOKEN_EXCHANGE_CACHED),
            Ok(_) => (Outcome::Allowed, reason::TOKEN_EXCHANGED),
            Err(_) => (Outcome::Refused, reason::TOKEN_EXCHANGE_FAILED),
        };
        crate::metrics::record_token_exchange(reason);
        match answer {
            Ok(token) => {
                tracing::debug!(target: LOG_TARGET, audience = %token.audience, cached = token.from_cache, fingerprint = %token.fingerprint(), "downstream token");
            }
            Err(error) => {
                tracing::warn!(target: LOG_TARGET, audience = %target.joined_names(), subject = self.identity.subject(), %error, "token exchange failed");
            }
        }
        if !self.trail.sink.enabled(outcome) {
            return;
        }
        let mut event = AuditEvent::new(outcome, reason, status, self.trail.request_id.as_str());
        event.time = UNIX_EPOCH + self.trail.clock.now();
        event.http_method = Cow::Borrowed(&self.trail.http_method);
        event.issuer = Some(Cow::Borrowed(self.identity.issuer()));
        event.subject = self.identity.subject().map(Cow::Borrowed);
        event.client_id = self.identity.client_id().map(Cow::Borrowed);
        event.fingerprint = Some(self.incoming.fingerprint());
        event.remote_addr = self.trail.remote_addr;
        let downstream = match answer {
            Ok(token) => {
                let mut audit = DownstreamAudit::new(&token.audience, token.scopes.clone());
                audit.act = token.act.clone();
                audit.token_fingerprint = Some(token.fingerprint());
                audit
            }
            Err(error) => {
                let mut audit = DownstreamAudit::new(target.joined_names(), target.scopes.clone());
                audit.error = Some(error.code().to_owned());
                audit
            }
        };
        event.downstream = Some(downstream);
        self.trail.sink.record(&event);
    }
}

/// The scopes of a `Bearer error="insufficient_scope"` challenge (empty when it names
/// none); `None` when the answer carries no such challenge.
fn insufficient_scope(headers: &reqwest::header::HeaderMap) -> Option<Vec<String>> {
    for value in headers.get_all(reqwest::header::WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for (scheme, params) in crate::challenge::parse_all(text) {
            let param = |name: &str| {
                params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.as_str())
            };
            if scheme.eq_ignore_ascii_case("Bearer") && param("error") == Some("insufficient_scope")
            {
                let scopes = param("scope")
                    .map(|scope| {
                        scope
                            .split(' ')
                            .filter(|s| is_valid_scope_token(s))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(scopes);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tools run on rmcp, which needs their futures `Send`.
    #[allow(dead_code)]
    fn the_futures_a_tool_awaits_are_send(downstream: &Downstream, target: &Target) {
        fn send<T: Send>(_: T) {}
        send(downstream.token(target));
        send(downstream.send(target, reqwest::Client::new().get("http://127.0.0.1:9/")));
    }

    #[test]
    fn targets_key_the_same_whatever_the_order_of_scopes() {
        let a = Target::audience("https://api").scopes(["b", "a"]);
        let b = Target::audience("https://api").scopes(["a", "b", "a"]);
        assert_eq!(a.key_material(), b.key_material());
        // An audience is not a resource, and a scope is not part of the name.
        let resource = Target::resource("https://api").scopes(["a", "b"]);
        assert_ne!(a.key_material(), resource.key_material());
        let joined = Target::audience("https://apia").scopes(["b"]);
        assert_ne!(a.key_material(), joined.key_material());
    }

    #[test]
    fn an_exchanger_allowing_no_audience_or_sending_secrets_in_the_clear_is_refused() {
        let auth = || ClientAuth::SecretBasic {
            client_id: "server".into(),
            client_secret: "secret".into(),
        };
        assert_eq!(
            TokenExchanger::builder(auth())
                .token_endpoint("https://as.example.com/token")
                .allow_audience("https://api")
                .build()
                .unwrap_err(),
            ExchangeConfigError::NoSubjectIssuer,
            "a bare endpoint: whose tokens may go there?"
        );
        assert_eq!(
            TokenExchanger::builder(auth())
                .issuer("https://as.example.com")
                .build()
                .unwrap_err(),
            ExchangeConfigError::NoAudience
        );
        assert_eq!(
            TokenExchanger::builder(auth())
                .issuer("https://as.example.com")
                .allow_audience("https://api")
                .step_up("https://other", "a", ["b"])
                .build()
                .unwrap_err(),
            ExchangeConfigError::InvalidAudience("https://other".into())
        );
        assert!(matches!(
            TokenExchanger::builder(auth())
                .token_endpoint("http://as.example.com/token")
                .allow_audience("https://api")
                .build()
                .unwrap_err(),
            ExchangeConfigError::NotHttps(_)
        ));
        assert_eq!(
            TokenExchanger::builder(auth())
                .allow_audience("https://api")
                .build()
                .unwrap_err(),
            ExchangeConfigError::NoEndpoint
        );
        assert_eq!(
            TokenExchanger::builder(ClientAuth::SecretPost {
                client_id: "server".into(),
                client_secret: String::new(),
            })
            .issuer("https://as.example.com")
            .allow_audience("https://api")
            .build()
            .unwrap_err(),
            ExchangeConfigError::NoClientCredentials
        );
        assert!(
            TokenExchanger::builder(auth())
                .token_endpoint("http://127.0.0.1:9/token")
                .subject_issuer("https://as.example.com")
                .allow_audience("https://api")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn a_step_up_needs_every_downstream_scope_mapped_and_something_missing() {
        let exchanger = TokenExchanger::builder(ClientAuth::SecretBasic {
            client_id: "server".into(),
            client_secret: "secret".into(),
        })
        .issuer("https://as.example.com")
        .allow_audience("https://api")
        .step_up("https://api", "events:write", ["calendar:write"])
        .build()
        .unwrap();
        let hierarchy = ScopeHierarchy::default();
        let reader = VerifiedToken::for_tests("calendar:read");
        let writer = VerifiedToken::for_tests("calendar:write");
        let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let step_up = exchanger
            .step_up_for(
                "https://api",
                &scopes(&["events:write"]),
                &reader,
                &hierarchy,
            )
            .unwrap();
        assert!(step_up.missing.contains("calendar:write"));
        // Held already: asking again would loop.
        assert!(
            exchanger
                .step_up_for(
                    "https://api",
                    &scopes(&["events:write"]),
                    &writer,
                    &hierarchy
                )
                .is_none()
        );
        // One unmapped scope: a tool error.
        assert!(
            exchanger
                .step_up_for(
                    "https://api",
                    &scopes(&["events:write", "events:admin"]),
                    &reader,
                    &hierarchy
                )
                .is_none()
        );
        // Another audience's scope of the same name.
        assert!(
            exchanger
                .step_up_for(
                    "https://other",
                    &scopes(&["events:write"]),
                    &reader,
                    &hierarchy
                )
                .is_none()
        );
    }
}
