//! Audit events: one structured [`AuditEvent`] for every decision the HTTP layer makes on
//! the guarded route.
//!
//! Each request to the MCP endpoint ends in exactly one event: `allowed` (the request was
//! passed to the endpoint; `status` is the endpoint's answer) or `refused` (the layer
//! answered itself; `status` is its answer). CORS preflights, the metadata documents and
//! routes the layer does not guard produce no event.
//!
//! Events go to an [`AuditSink`], set with
//! [`OAuthLayerBuilder::audit_sink`](crate::http::OAuthLayerBuilder::audit_sink). The
//! default, [`TracingSink`], emits each one as a `tracing` event at `INFO` under the target
//! [`TARGET`] (`mcp_oauth::audit`) with the fields below, so `RUST_LOG=mcp_oauth::audit=info`
//! turns the audit trail on and `mcp_oauth::audit=off` turns it off. [`JsonLinesSink`] writes
//! one JSON object per line to any `Write + Send` (a file, a pipe); several sinks combine as a
//! tuple: `.audit_sink((TracingSink, JsonLinesSink::new(file)))`.
//!
//! | field | tracing field | JSON key | what |
//! |---|---|---|---|
//! | [`time`](AuditEvent::time) | `time` | `time` | when the request reached the layer: RFC 3339, UTC, milliseconds (`2026-07-28T12:00:00.123Z`) |
//! | [`outcome`](AuditEvent::outcome) | `outcome` | `outcome` | `allowed` or `refused` |
//! | [`reason`](AuditEvent::reason) | `reason` | `reason` | a stable snake_case code, see [`reason`]; for a refused token, [`TokenError::reason`](crate::TokenError::reason) |
//! | [`status`](AuditEvent::status) | `status` | `status` | the HTTP status sent |
//! | [`http_method`](AuditEvent::http_method) | `http_method` | `http_method` | `POST`, `GET`, `DELETE` |
//! | [`issuer`](AuditEvent::issuer), [`subject`](AuditEvent::subject), [`client_id`](AuditEvent::client_id) | same | same | from the *verified* token; absent before verification |
//! | [`tools`](AuditEvent::tools) | `tools` (space-separated) | `tools` (array) | the tools a `tools/call` body names (every call of a batch), once the body was read |
//! | [`rpc_methods`](AuditEvent::rpc_methods) | `rpc_methods` | `rpc_methods` | the JSON-RPC methods of the body |
//! | [`required_scopes`](AuditEvent::required_scopes) | `required_scopes` | `required_scopes` | the scopes the operation needs, once known |
//! | [`granted_scopes`](AuditEvent::granted_scopes) | `granted_scopes` | `granted_scopes` | the verified token's scopes |
//! | [`fingerprint`](AuditEvent::fingerprint) | `fingerprint` | `fingerprint` | 16 hex digits: the first 8 bytes of the token's SHA-256, never the token |
//! | [`scheme`](AuditEvent::scheme) | `scheme` | `scheme` | the `Authorization` scheme the token came with: `Bearer` or `DPoP` |
//! | [`dpop_jkt`](AuditEvent::dpop_jkt) | `dpop_jkt` | `dpop_jkt` | for a DPoP request whose proof verified, the proof key's RFC 7638 thumbprint (base64url, the token's `cnf.jkt`) |
//! | [`request_id`](AuditEvent::request_id) | `request_id` | `request_id` | the request's `X-Request-Id` (when it is 1–128 visible ASCII characters), else a generated one; echoed in the response |
//! | [`remote_addr`](AuditEvent::remote_addr) | `remote_addr` | `remote_addr` | the client address, when known (see [`ClientAddress`](crate::http::ClientAddress)) |
//! | [`retry_after`](AuditEvent::retry_after) | `retry_after_secs` | `retry_after_secs` | for 429 and 503, the `Retry-After` sent |
//! | [`rate_limit_fallback`](AuditEvent::rate_limit_fallback) | `rate_limit_fallback` (only when `true`) | `rate_limit_fallback` | the shared rate-limit store was unreachable: this replica applied its local share of each budget (see [`crate::rate_limit::RateLimitStore::is_degraded`]) |
//! | [`downstream`](AuditEvent::downstream) | `downstream_audience`, `downstream_scopes`, `act`, `downstream_error`, `downstream_fingerprint` | `downstream` (object) | only in token-exchange events, below |
//!
//! **Token exchange.** A tool that obtains a token for a downstream API on the caller's
//! behalf ([`crate::exchange`]) adds one event per exchange to the request's trail, with the
//! request's `request_id`, `issuer`, `subject`, `client_id` and `fingerprint` (the incoming
//! token's), and [`downstream`](AuditEvent::downstream): the audience asked for, the scopes
//! granted (or asked for, when refused), the exchanged token's `act` claim (who acts for
//! the subject: this server) as compact JSON, the authorization server's error code when
//! refused, and the exchanged token's fingerprint. Its `reason` is
//! [`reason::TOKEN_EXCHANGED`], [`reason::TOKEN_EXCHANGE_CACHED`] (no call made: `status` 0)
//! or [`reason::TOKEN_EXCHANGE_FAILED`]; `status` is the token endpoint's answer.
//!
//! The raw token never reaches an event: only its fingerprint does. Subject, client id and
//! scopes come from a token whose signature verified, never from a refused one.

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::clock::rfc3339;
use crate::validation::TokenFingerprint;

/// The `tracing` target of every audit event.
pub const TARGET: &str = "mcp_oauth::audit";

/// The reason codes of the layer's own decisions. A refused token carries
/// [`TokenError::reason`](crate::TokenError::reason) instead (`expired`, `invalid_signature`,
/// `keys_unavailable`, …). Codes are stable: dashboards and alerts may match them.
pub mod reason {
    /// Allowed: passed to the endpoint.
    pub const ALLOWED: &str = "allowed";
    /// 401 with the discovery challenge: no `Authorization` header, or another scheme.
    pub const NO_CREDENTIALS: &str = "no_credentials";
    /// 401 with the discovery challenge: a `Bearer` credential where DPoP is required (it is
    /// not looked at).
    pub const BEARER_NOT_ACCEPTED: &str = "bearer_not_accepted";
    /// 400: more than one `Authorization` header.
    pub const MULTIPLE_AUTHORIZATION_HEADERS: &str = "multiple_authorization_headers";
    /// 400: `Bearer` with an empty value or one that is not a token68.
    pub const MALFORMED_BEARER: &str = "malformed_bearer";
    /// 403: the browser `Origin` is not allowed (decided before any token work).
    pub const ORIGIN_REFUSED: &str = "origin_refused";
    /// 403: the `Host` is not a name the endpoint is reached by (DNS rebinding: for a
    /// loopback resource, any non-loopback name), decided before any token work.
    pub const HOST_REFUSED: &str = "host_refused";
    /// 404: the `Mcp-Session-Id` is unknown or belongs to another principal.
    pub const SESSION_NOT_BOUND: &str = "session_not_bound_to_principal";
    /// 400: the `Mcp-Session-Id` header is not visible ASCII.
    pub const INVALID_SESSION_ID: &str = "invalid_session_id";
    /// 413: the body exceeds the configured bound.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// 400: the body could not be read.
    pub const BODY_UNREADABLE: &str = "body_unreadable";
    /// 400: a token in the `Authorization` header and another in a form body.
    pub const TOKEN_IN_HEADER_AND_BODY: &str = "token_in_header_and_body";
    /// 400: the body is not a JSON-RPC message the layer can judge.
    pub const UNREADABLE_JSONRPC: &str = "unreadable_jsonrpc";
    /// 200 with an empty event stream (what rmcp answers for an id it cannot resume): the
    /// `Last-Event-ID` was not issued to this principal (another's, forged, or from a token
    /// naming no one), so nothing is replayed.
    pub const EVENT_ID_NOT_BOUND: &str = "event_id_not_bound_to_principal";
    /// 500: the failed-authentication budget is on and the client's address cannot be
    /// learned (no connect info, `PeerAddr` or configured source): refused, never waved
    /// through.
    pub const CLIENT_ADDRESS_UNKNOWN: &str = "client_address_unknown";
    /// 415: a `POST` body with a `Content-Encoding` other than `identity`, which the layer
    /// cannot judge as the server would read it.
    pub const UNSUPPORTED_CONTENT_ENCODING: &str = "unsupported_content_encoding";
    /// 400: `Mcp-Method` or `Mcp-Name` disagrees with the body.
    pub const MCP_HEADERS_DISAGREE: &str = "mcp_headers_disagree_with_body";
    /// 403: a tool, prompt or resource without scope annotation, under the deny policy.
    pub const UNANNOTATED_TOOL_DENIED: &str = "unannotated_tool_denied";
    /// 403 `insufficient_scope`: the token lacks scopes the operation needs.
    pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
    /// A handler refused for want of scopes (a step-up raised from inside the handler), and
    /// the layer answered 403 with the challenge.
    pub const HANDLER_STEP_UP: &str = "handler_step_up";
    /// 429: the verified principal spent its request budget.
    pub const RATE_LIMITED_PRINCIPAL: &str = "rate_limited_principal";
    /// 429: the client address spent its failed-authentication budget; the token was not
    /// looked at.
    pub const RATE_LIMITED_FAILED_AUTH: &str = "rate_limited_failed_auth";
    /// 503: the shared session store could not say whose the presented session is (fail
    /// closed; see [`crate::http::SessionCheck::Unavailable`]).
    pub const SESSION_STORE_UNAVAILABLE: &str = "session_store_unavailable";
    /// A token exchange: the authorization server issued a token for a downstream API (see
    /// [`crate::exchange`]).
    pub const TOKEN_EXCHANGED: &str = "token_exchanged";
    /// A token exchange answered from the cache (no call to the authorization server).
    pub const TOKEN_EXCHANGE_CACHED: &str = "token_exchange_cached";
    /// A token exchange that produced no token: refused by the authorization server, or
    /// the server unreachable, or the downstream audience not allowed; the `downstream`
    /// object's `error` says which.
    pub const TOKEN_EXCHANGE_FAILED: &str = "token_exchange_failed";
}

/// What a token exchange asked for and obtained; the [`downstream`](AuditEvent::downstream)
/// of an exchange event. Never holds a token, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownstreamAudit {
    /// The downstream audience (the `audience`/`resource` values, space-separated).
    pub audience: String,
    /// The scopes granted (or asked for, when the exchange failed).
    pub scopes: Vec<String>,
    /// The exchanged token's `act` claim as compact JSON (`{"sub":"calendar-server"}`),
    /// when the token is a JWT that carries one.
    pub act: Option<String>,
    /// Why the exchange failed: the authorization server's error code (`invalid_grant`,
    /// `invalid_target`, …) or this library's (`audience_not_allowed`, `unavailable`, …).
    pub error: Option<String>,
    /// The exchanged token's fingerprint (never the token).
    pub token_fingerprint: Option<TokenFingerprint>,
}

impl DownstreamAudit {
    /// An exchange of `audience` for `scopes`, nothing else known yet.
    pub fn new(audience: impl Into<String>, scopes: Vec<String>) -> Self {
        Self {
            audience: audience.into(),
            scopes,
            act: None,
            error: None,
            token_fingerprint: None,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "audience": self.audience,
            "scopes": self.scopes,
            "act": self.act,
            "error": self.error,
            "token_fingerprint": self.token_fingerprint.map(|f| f.to_string()),
        })
    }
}

/// Whether the request went to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Passed to the endpoint.
    Allowed,
    /// Answered by the layer.
    Refused,
}

impl Outcome {
    /// `allowed` or `refused`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision of the layer; see the module docs for each field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the request reached the layer (read from the layer's clock).
    pub time: SystemTime,
    /// Allowed or refused.
    pub outcome: Outcome,
    /// A stable snake_case code: [`reason::ALLOWED`], another [`reason`] constant, or a
    /// [`TokenError::reason`](crate::TokenError::reason).
    pub reason: &'static str,
    /// The HTTP status sent (for an allowed request, the endpoint's).
    pub status: u16,
    /// The HTTP method.
    pub http_method: String,
    /// The verified token's issuer.
    pub issuer: Option<String>,
    /// The verified token's subject.
    pub subject: Option<String>,
    /// The verified token's client id.
    pub client_id: Option<String>,
    /// The tools the body calls (empty when the body was not read or calls none).
    pub tools: Vec<String>,
    /// The JSON-RPC methods of the body (empty when the body was not read).
    pub rpc_methods: Vec<String>,
    /// The scopes the operation needs, once the layer knew them.
    pub required_scopes: Option<Vec<String>>,
    /// The verified token's scopes.
    pub granted_scopes: Option<Vec<String>>,
    /// The fingerprint of the presented bearer token (never the token).
    pub fingerprint: Option<TokenFingerprint>,
    /// The scheme the token was presented with (`Bearer` or `DPoP`).
    pub scheme: Option<&'static str>,
    /// The DPoP proof key's thumbprint (base64url), once the proof verified.
    pub dpop_jkt: Option<String>,
    /// The request id (from `X-Request-Id`, or generated).
    pub request_id: String,
    /// The client address, when known.
    pub remote_addr: Option<IpAddr>,
    /// The `Retry-After` sent with a 429 or 503.
    pub retry_after: Option<Duration>,
    /// The rate limits were decided on this replica's local share of each budget: the
    /// shared store was unreachable.
    pub rate_limit_fallback: bool,
    /// For a token-exchange event, what was exchanged (see the module docs).
    pub downstream: Option<DownstreamAudit>,
}

impl AuditEvent {
    /// An event with nothing but the essentials (time: now), for tests of custom sinks.
    pub fn new(outcome: Outcome, reason: &'static str, status: u16, request_id: String) -> Self {
        Self {
            time: SystemTime::now(),
            outcome,
            reason,
            status,
            http_method: String::new(),
            issuer: None,
            subject: None,
            client_id: None,
            tools: Vec::new(),
            rpc_methods: Vec::new(),
            required_scopes: None,
            granted_scopes: None,
            fingerprint: None,
            scheme: None,
            dpop_jkt: None,
            request_id,
            remote_addr: None,
            retry_after: None,
            rate_limit_fallback: false,
            downstream: None,
        }
    }

    /// [`time`](Self::time) as RFC 3339 in UTC with milliseconds.
    pub fn time_rfc3339(&self) -> String {
        rfc3339(self.time.duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// The event as the JSON object [`JsonLinesSink`] writes (keys as in the module docs;
    /// unknown values are `null`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "time": self.time_rfc3339(),
            "outcome": self.outcome.as_str(),
            "reason": self.reason,
            "status": self.status,
            "http_method": self.http_method,
            "issuer": self.issuer,
            "subject": self.subject,
            "client_id": self.client_id,
            "tools": self.tools,
            "rpc_methods": self.rpc_methods,
            "required_scopes": self.required_scopes,
            "granted_scopes": self.granted_scopes,
            "fingerprint": self.fingerprint.map(|f| f.to_string()),
            "scheme": self.scheme,
            "dpop_jkt": self.dpop_jkt,
            "request_id": self.request_id,
            "remote_addr": self.remote_addr.map(|a| a.to_string()),
            "retry_after_secs": self.retry_after.map(|d| d.as_secs()),
            "rate_limit_fallback": self.rate_limit_fallback,
            "downstream": self.downstream.as_ref().map(DownstreamAudit::to_json),
        })
    }
}

/// Where audit events go. Called once per decision, on the request's task: keep it quick
/// (buffer, or hand off to a channel) and never panic.
///
/// Before building an event (copying the identity's strings, the tools, the scopes), the
/// layer asks [`enabled`](Self::enabled); a sink that would drop the event says so there and
/// saves that work. The default says `true`.
///
/// ```
/// use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome};
/// use std::sync::Mutex;
///
/// /// Keeps refusals only: allowed requests cost no event at all.
/// #[derive(Default)]
/// struct Refusals(Mutex<Vec<AuditEvent>>);
///
/// impl AuditSink for Refusals {
///     fn enabled(&self, outcome: Outcome) -> bool {
///         outcome == Outcome::Refused
///     }
///     fn record(&self, event: &AuditEvent) {
///         if event.outcome == Outcome::Refused {
///             self.0.lock().unwrap().push(event.clone());
///         }
///     }
/// }
///
/// let sink = Refusals::default();
/// assert!(!sink.enabled(Outcome::Allowed));
/// sink.record(&AuditEvent::new(Outcome::Refused, "no_credentials", 401, "r1".into()));
/// assert_eq!(sink.0.lock().unwrap().len(), 1);
/// ```
pub trait AuditSink: Send + Sync + 'static {
    /// Whether an event of this `outcome` would be recorded now. When `false` the layer does
    /// not build the event (the decision is still counted in the
    /// [`metrics`](crate::metrics)); when `true` it builds it and calls
    /// [`record`](Self::record). Answer cheaply, and `true` when unsure: `false` loses the
    /// event. [`record`](Self::record) may still be called after a `false` (a tuple of sinks
    /// records into each when one of them is enabled). Defaults to `true`.
    fn enabled(&self, outcome: Outcome) -> bool {
        let _ = outcome;
        true
    }

    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn enabled(&self, outcome: Outcome) -> bool {
        (**self).enabled(outcome)
    }

    fn record(&self, event: &AuditEvent) {
        (**self).record(event)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Box<T> {
    fn enabled(&self, outcome: Outcome) -> bool {
        (**self).enabled(outcome)
    }

    fn record(&self, event: &AuditEvent) {
        (**self).record(event)
    }
}

/// Records into both; enabled when either is.
impl<A: AuditSink, B: AuditSink> AuditSink for (A, B) {
    fn enabled(&self, outcome: Outcome) -> bool {
        self.0.enabled(outcome) || self.1.enabled(outcome)
    }

    fn record(&self, event: &AuditEvent) {
        self.0.record(event);
        self.1.record(event);
    }
}

/// Records into all three; enabled when any is.
impl<A: AuditSink, B: AuditSink, C: AuditSink> AuditSink for (A, B, C) {
    fn enabled(&self, outcome: Outcome) -> bool {
        self.0.enabled(outcome) || self.1.enabled(outcome) || self.2.enabled(outcome)
    }

    fn record(&self, event: &AuditEvent) {
        self.0.record(event);
        self.1.record(event);
        self.2.record(event);
    }
}

/// The default sink: a `tracing` event at `INFO` under [`TARGET`], message `access allowed`
/// or `access refused`, with the fields of the module docs (absent values are not recorded).
///
/// It is [`enabled`](AuditSink::enabled) when the current `tracing` subscriber wants `INFO`
/// events of [`TARGET`] (so with `mcp_oauth::audit=off`, or a subscriber that takes nothing
/// below `WARN`, no event is built or formatted), or when a `log` logger would take an
/// `INFO` record of [`TARGET`]: `tracing` hands events to the `log` crate before any
/// subscriber is set (its `log` feature), or always (`log-always`). With neither listening
/// (no subscriber and no logger, or both filtering the target out) the sink is off.
///
/// ```
/// use mcp_oauth::audit::{AuditSink, Outcome, TracingSink};
///
/// // A subscriber that takes warnings and errors only.
/// let subscriber = tracing_subscriber::fmt()
///     .with_max_level(tracing::Level::WARN)
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     assert!(!TracingSink.enabled(Outcome::Allowed));
/// });
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl TracingSink {
    /// Whether the current subscriber or the `log` logger takes the events.
    fn listening() -> bool {
        // The callsite asked about carries the event's kind, target, level and field names,
        // so a filter on any of them answers as it would for the event itself.
        tracing::enabled!(
            kind: tracing::metadata::Kind::EVENT,
            target: TARGET,
            tracing::Level::INFO,
            time,
            outcome,
            reason,
            status,
            http_method,
            issuer,
            subject,
            client_id,
            tools,
            rpc_methods,
            required_scopes,
            granted_scopes,
            fingerprint,
            scheme,
            dpop_jkt,
            request_id,
            remote_addr,
            retry_after_secs,
            rate_limit_fallback,
            downstream_audience,
            downstream_scopes,
            act,
            downstream_error,
            downstream_fingerprint,
            message
        ) || log::log_enabled!(target: TARGET, log::Level::Info)
    }
}

impl AuditSink for TracingSink {
    fn enabled(&self, _outcome: Outcome) -> bool {
        Self::listening()
    }

    fn record(&self, event: &AuditEvent) {
        // Called inside a tuple whose other sink listens: nothing to format for `tracing`.
        if !Self::listening() {
            return;
        }
        let join = |values: &[String]| values.join(" ");
        let time = event.time_rfc3339();
        let tools = (!event.tools.is_empty()).then(|| join(&event.tools));
        let rpc_methods = (!event.rpc_methods.is_empty()).then(|| join(&event.rpc_methods));
        let required = event.required_scopes.as_deref().map(join);
        let granted = event.granted_scopes.as_deref().map(join);
        let fingerprint = event.fingerprint.map(|f| f.to_string());
        let remote_addr = event.remote_addr.map(|a| a.to_string());
        let retry_after = event.retry_after.map(|d| d.as_secs());
        let downstream = event.downstream.as_ref();
        let downstream_scopes = downstream.map(|d| join(&d.scopes));
        let downstream_fingerprint = downstream
            .and_then(|d| d.token_fingerprint)
            .map(|f| f.to_string());
        macro_rules! emit {
            ($message:literal) => {
                tracing::info!(
                    target: TARGET,
                    time = %time,
                    outcome = event.outcome.as_str(),
                    reason = event.reason,
                    status = event.status,
                    http_method = %event.http_method,
                    issuer = event.issuer.as_deref(),
                    subject = event.subject.as_deref(),
                    client_id = event.client_id.as_deref(),
                    tools = tools.as_deref(),
                    rpc_methods = rpc_methods.as_deref(),
                    required_scopes = required.as_deref(),
                    granted_scopes = granted.as_deref(),
                    fingerprint = fingerprint.as_deref(),
                    scheme = event.scheme,
                    dpop_jkt = event.dpop_jkt.as_deref(),
                    request_id = %event.request_id,
                    remote_addr = remote_addr.as_deref(),
                    retry_after_secs = retry_after,
                    rate_limit_fallback = event.rate_limit_fallback.then_some(true),
                    downstream_audience = downstream.map(|d| d.audience.as_str()),
                    downstream_scopes = downstream_scopes.as_deref(),
                    act = downstream.and_then(|d| d.act.as_deref()),
                    downstream_error = downstream.and_then(|d| d.error.as_deref()),
                    downstream_fingerprint = downstream_fingerprint.as_deref(),
                    $message
                )
            };
        }
        match (event.outcome, downstream.is_some()) {
            (Outcome::Allowed, false) => emit!("access allowed"),
            (Outcome::Refused, false) => emit!("access refused"),
            (Outcome::Allowed, true) => emit!("token exchanged"),
            (Outcome::Refused, true) => emit!("token exchange failed"),
        }
    }
}

/// Writes each event as one line of JSON ([`AuditEvent::to_json`]) to a writer, flushing
/// after each line. A write error is reported once through `tracing` (target
/// `mcp_oauth::audit::sink`) and the event is dropped: the request is not failed for it.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// use mcp_oauth::audit::{JsonLinesSink, TracingSink};
///
/// let file = std::fs::OpenOptions::new().create(true).append(true).open("audit.jsonl")?;
/// let sink = (TracingSink, JsonLinesSink::new(file));
/// // OAuthLayer::builder(config, validator).audit_sink(sink)
/// # Ok(()) }
/// ```
pub struct JsonLinesSink<W> {
    writer: Mutex<W>,
    failed: std::sync::atomic::AtomicBool,
}

impl<W> fmt::Debug for JsonLinesSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> JsonLinesSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> Self {
        Self {
            writer: Mutex::new(writer),
            failed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }
}

impl<W: Write + Send + 'static> AuditSink for JsonLinesSink<W> {
    fn record(&self, event: &AuditEvent) {
        let mut line = event.to_json().to_string();
        line.push('\n');
        let mut writer = self.writer.lock();
        let result = writer
            .write_all(line.as_bytes())
            .and_then(|()| writer.flush());
        drop(writer);
        if let Err(error) = result
            && !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::error!(target: "mcp_oauth::audit::sink", %error, "the audit log cannot be written; events are dropped");
        }
    }
}

/// A sink that drops every event (audit off).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn enabled(&self, _outcome: Outcome) -> bool {
        false
    }

    fn record(&self, _event: &AuditEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Duration::from_millis(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn the_json_line_has_every_key() {
        let mut event = AuditEvent::new(Outcome::Refused, reason::NO_CREDENTIALS, 401, "r1".into());
        event.time = UNIX_EPOCH;
        event.fingerprint = Some(TokenFingerprint::of("abc"));
        let json = event.to_json();
        assert_eq!(json["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["reason"], "no_credentials");
        assert_eq!(json["status"], 401);
        assert_eq!(json["request_id"], "r1");
        assert_eq!(json["fingerprint"].as_str().unwrap().len(), 16);
        assert!(json["subject"].is_null());
        let sink = JsonLinesSink::new(Vec::new());
        sink.record(&event);
        sink.record(&event);
        let written = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(written.lines().count(), 2);
        assert!(written.ends_with('\n'));
    }
}
