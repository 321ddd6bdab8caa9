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

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::clock::rfc3339;
use crate::scopes::ScopeSet;
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

    /// [`Self::to_json`], written directly (keys in `serde_json`'s order).
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"act\":");
        json::opt_str(out, self.act.as_deref());
        out.extend_from_slice(b",\"audience\":");
        json::str(out, &self.audience);
        out.extend_from_slice(b",\"error\":");
        json::opt_str(out, self.error.as_deref());
        out.extend_from_slice(b",\"scopes\":");
        json::strs(out, &self.scopes);
        out.extend_from_slice(b",\"token_fingerprint\":");
        json::fingerprint(out, self.token_fingerprint);
        out.push(b'}');
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
///
/// The event borrows what the layer already holds (the verified identity's names, the
/// request id, the tools and methods read from the body) instead of copying it, so building
/// one allocates nothing but a DPoP thumbprint: `'a` is the decision's lifetime. A sink that
/// keeps events past [`AuditSink::record`] (a queue, a test collecting them) keeps
/// [`into_owned`](Self::into_owned) copies, `AuditEvent<'static>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
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
    pub http_method: Cow<'a, str>,
    /// The verified token's issuer.
    pub issuer: Option<Cow<'a, str>>,
    /// The verified token's subject.
    pub subject: Option<Cow<'a, str>>,
    /// The verified token's client id.
    pub client_id: Option<Cow<'a, str>>,
    /// The tools the body calls (empty when the body was not read or calls none).
    pub tools: Cow<'a, [String]>,
    /// The JSON-RPC methods of the body (empty when the body was not read).
    pub rpc_methods: Cow<'a, [String]>,
    /// The scopes the operation needs, once the layer knew them (a [`ScopeSet`] is shared,
    /// not copied: cloning one is a reference count).
    pub required_scopes: Option<ScopeSet>,
    /// The verified token's scopes.
    pub granted_scopes: Option<ScopeSet>,
    /// The fingerprint of the presented bearer token (never the token).
    pub fingerprint: Option<TokenFingerprint>,
    /// The scheme the token was presented with (`Bearer` or `DPoP`).
    pub scheme: Option<&'static str>,
    /// The DPoP proof key's thumbprint (base64url), once the proof verified.
    pub dpop_jkt: Option<String>,
    /// The request id (from `X-Request-Id`, or generated).
    pub request_id: Cow<'a, str>,
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

impl<'a> AuditEvent<'a> {
    /// An event with nothing but the essentials (time: now), for tests of custom sinks.
    pub fn new(
        outcome: Outcome,
        reason: &'static str,
        status: u16,
        request_id: impl Into<Cow<'a, str>>,
    ) -> Self {
        Self {
            time: SystemTime::now(),
            outcome,
            reason,
            status,
            http_method: Cow::Borrowed(""),
            issuer: None,
            subject: None,
            client_id: None,
            tools: Cow::Borrowed(&[]),
            rpc_methods: Cow::Borrowed(&[]),
            required_scopes: None,
            granted_scopes: None,
            fingerprint: None,
            scheme: None,
            dpop_jkt: None,
            request_id: request_id.into(),
            remote_addr: None,
            retry_after: None,
            rate_limit_fallback: false,
            downstream: None,
        }
    }

    /// The event with everything it borrows copied: one a sink may keep.
    pub fn into_owned(self) -> AuditEvent<'static> {
        fn own(value: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(value.into_owned())
        }
        AuditEvent {
            time: self.time,
            outcome: self.outcome,
            reason: self.reason,
            status: self.status,
            http_method: own(self.http_method),
            issuer: self.issuer.map(own),
            subject: self.subject.map(own),
            client_id: self.client_id.map(own),
            tools: Cow::Owned(self.tools.into_owned()),
            rpc_methods: Cow::Owned(self.rpc_methods.into_owned()),
            required_scopes: self.required_scopes,
            granted_scopes: self.granted_scopes,
            fingerprint: self.fingerprint,
            scheme: self.scheme,
            dpop_jkt: self.dpop_jkt,
            request_id: own(self.request_id),
            remote_addr: self.remote_addr,
            retry_after: self.retry_after,
            rate_limit_fallback: self.rate_limit_fallback,
            downstream: self.downstream,
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
            "required_scopes": self.required_scopes.as_ref().map(scope_list),
            "granted_scopes": self.granted_scopes.as_ref().map(scope_list),
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

    /// Appends the event to `out` as one line of JSON, ending in `\n`: the object of
    /// [`to_json`](Self::to_json), byte for byte as `serde_json` writes it (the same keys in
    /// the same order), written directly with no intermediate map and no formatting
    /// machinery. What [`JsonLinesSink`] writes.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.reserve(JSON_LINE_CAPACITY);
        out.extend_from_slice(b"{\"client_id\":");
        json::opt_str(out, self.client_id.as_deref());
        out.extend_from_slice(b",\"downstream\":");
        match &self.downstream {
            Some(downstream) => downstream.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"dpop_jkt\":");
        json::opt_str(out, self.dpop_jkt.as_deref());
        out.extend_from_slice(b",\"fingerprint\":");
        json::fingerprint(out, self.fingerprint);
        out.extend_from_slice(b",\"granted_scopes\":");
        json::opt_scopes(out, self.granted_scopes.as_ref());
        out.extend_from_slice(b",\"http_method\":");
        json::str(out, &self.http_method);
        out.extend_from_slice(b",\"issuer\":");
        json::opt_str(out, self.issuer.as_deref());
        out.extend_from_slice(b",\"outcome\":");
        json::str(out, self.outcome.as_str());
        out.extend_from_slice(b",\"rate_limit_fallback\":");
        out.extend_from_slice(if self.rate_limit_fallback {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"reason\":");
        json::str(out, self.reason);
        out.extend_from_slice(b",\"remote_addr\":");
        json::ip(out, self.remote_addr);
        out.extend_from_slice(b",\"request_id\":");
        json::str(out, &self.request_id);
        out.extend_from_slice(b",\"required_scopes\":");
        json::opt_scopes(out, self.required_scopes.as_ref());
        out.extend_from_slice(b",\"retry_after_secs\":");
        match self.retry_after {
            Some(after) => json::uint(out, after.as_secs()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"rpc_methods\":");
        json::strs(out, self.rpc_methods.iter());
        out.extend_from_slice(b",\"scheme\":");
        json::opt_str(out, self.scheme);
        out.extend_from_slice(b",\"status\":");
        json::uint(out, u64::from(self.status));
        out.extend_from_slice(b",\"subject\":");
        json::opt_str(out, self.subject.as_deref());
        out.extend_from_slice(b",\"time\":");
        let since_epoch = self.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        match crate::clock::rfc3339_bytes(since_epoch) {
            Some(time) => {
                out.push(b'"');
                out.extend_from_slice(&time);
                out.push(b'"');
            }
            None => json::str(out, &rfc3339(since_epoch)),
        }
        out.extend_from_slice(b",\"tools\":");
        json::strs(out, self.tools.iter());
        out.extend_from_slice(b"}\n");
    }
}

/// A scope set as the JSON array `to_json` writes.
fn scope_list(scopes: &ScopeSet) -> Vec<&str> {
    scopes.iter().collect()
}

/// What a JSON line is reserved at: an allowed `tools/call` event with a subject, a client
/// and a few scopes is 450–600 bytes.
const JSON_LINE_CAPACITY: usize = 768;

/// JSON written straight into a byte buffer, as `serde_json` writes it (compact; strings
/// escaped as its `to_string` escapes them: `"`, `\\`, and the control characters, `\b \f
/// \n \r \t` by name, the others as `\u00XX`; everything else, Unicode included, as is).
mod json {
    use std::net::IpAddr;

    use crate::crypto::hex_digits;
    use crate::scopes::ScopeSet;
    use crate::validation::TokenFingerprint;

    /// For each byte: 0 copied as is, else the escape (`b'u'` for `\u00XX`).
    static ESCAPE: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut i = 0;
        while i < 0x20 {
            table[i] = b'u';
            i += 1;
        }
        table[0x08] = b'b';
        table[0x09] = b't';
        table[0x0a] = b'n';
        table[0x0c] = b'f';
        table[0x0d] = b'r';
        table[b'"' as usize] = b'"';
        table[b'\\' as usize] = b'\\';
        table
    };

    /// Whether any of the eight bytes of `word` is a control character, `"` or `\`: the
    /// usual zero-byte tests (exact for "any"), so that a run of plain text is skipped eight
    /// bytes at a time.
    fn any_escaped(word: u64) -> bool {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        below_space | zero(quote) | zero(backslash) != 0
    }

    /// Whether `bytes` holds a byte that must be escaped: eight bytes at a time, then the
    /// tail from the table.
    fn needs_escaping(bytes: &[u8]) -> bool {
        let (words, tail) = bytes.as_chunks::<8>();
        words
            .iter()
            .any(|word| any_escaped(u64::from_le_bytes(*word)))
            || tail.iter().any(|&byte| ESCAPE[usize::from(byte)] != 0)
    }

    pub(super) fn str(out: &mut Vec<u8>, value: &str) {
        let bytes = value.as_bytes();
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        if needs_escaping(bytes) {
            escaped(out, bytes);
        } else {
            // What every identifier, scope and name of a well-behaved client takes.
            out.extend_from_slice(bytes);
        }
        out.push(b'"');
    }

    /// `bytes` with each byte the table names escaped.
    fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
        let mut start = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            let escape = ESCAPE[usize::from(byte)];
            if escape == 0 {
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            match escape {
                b'u' => {
                    out.extend_from_slice(b"\\u00");
                    out.extend_from_slice(&hex_digits(byte));
                }
                other => out.extend_from_slice(&[b'\\', other]),
            }
            start = i + 1;
        }
        out.extend_from_slice(&bytes[start..]);
    }

    pub(super) fn opt_str(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            Some(value) => str(out, value),
            None => out.extend_from_slice(b"null"),
        }
    }

    pub(super) fn strs<S: AsRef<str>>(out: &mut Vec<u8>, values: impl IntoIterator<Item = S>) {
        out.push(b'[');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            str(out, value.as_ref());
        }
        out.push(b']');
    }

    pub(super) fn opt_scopes(out: &mut Vec<u8>, values: Option<&ScopeSet>) {
        match values {
            Some(values) => strs(out, values),
            None => out.extend_from_slice(b"null"),
        }
    }

    pub(super) fn uint(out: &mut Vec<u8>, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    }

    /// 16 hex digits, quoted, or `null`.
    pub(super) fn fingerprint(out: &mut Vec<u8>, value: Option<TokenFingerprint>) {
        let Some(fingerprint) = value else {
            out.extend_from_slice(b"null");
            return;
        };
        out.push(b'"');
        out.extend_from_slice(&fingerprint.hex());
        out.push(b'"');
    }

    /// An address as `IpAddr`'s `Display` writes it (no escaping needed), or `null`.
    pub(super) fn ip(out: &mut Vec<u8>, value: Option<IpAddr>) {
        match value {
            Some(IpAddr::V4(v4)) => {
                out.push(b'"');
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    uint(out, u64::from(octet));
                }
                out.push(b'"');
            }
            Some(v6) => {
                let mut text = Stack::<64>::default();
                let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{v6}"));
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }

    /// A fixed buffer `Display` writes into; what does not fit is cut (never the case for
    /// the values written here).
    struct Stack<const N: usize> {
        bytes: [u8; N],
        len: usize,
    }

    impl<const N: usize> Default for Stack<N> {
        fn default() -> Self {
            Self {
                bytes: [0; N],
                len: 0,
            }
        }
    }

    impl<const N: usize> Stack<N> {
        fn as_bytes(&self) -> &[u8] {
            &self.bytes[..self.len]
        }
    }

    impl<const N: usize> std::fmt::Write for Stack<N> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            if end > N {
                return Err(std::fmt::Error);
            }
            self.bytes[self.len..end].copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
}

/// Where audit events go. Called once per decision, on the request's task: keep it quick
/// (buffer, or hand off to a channel) and never panic.
///
/// Before building an event (and copying the names of the tools and methods from the body
/// for it), the layer asks [`enabled`](Self::enabled); a sink that would drop the event says
/// so there and saves that work. The default says `true`. The event borrows from the
/// request: a sink that keeps it keeps [`AuditEvent::into_owned`].
///
/// ```
/// use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome};
/// use std::sync::Mutex;
///
/// /// Keeps refusals only: allowed requests cost no event at all.
/// #[derive(Default)]
/// struct Refusals(Mutex<Vec<AuditEvent<'static>>>);
///
/// impl AuditSink for Refusals {
///     fn enabled(&self, outcome: Outcome) -> bool {
///         outcome == Outcome::Refused
///     }
///     fn record(&self, event: &AuditEvent<'_>) {
///         if event.outcome == Outcome::Refused {
///             // The event borrows from the request: keep an owned copy.
///             self.0.lock().unwrap().push(event.clone().into_owned());
///         }
///     }
/// }
///
/// let sink = Refusals::default();
/// assert!(!sink.enabled(Outcome::Allowed));
/// sink.record(&AuditEvent::new(Outcome::Refused, "no_credentials", 401, "r1"));
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
    fn record(&self, event: &AuditEvent<'_>);
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn enabled(&self, outcome: Outcome) -> bool {
        (**self).enabled(outcome)
    }

    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Box<T> {
    fn enabled(&self, outcome: Outcome) -> bool {
        (**self).enabled(outcome)
    }

    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event)
    }
}

/// Records into both; enabled when either is.
impl<A: AuditSink, B: AuditSink> AuditSink for (A, B) {
    fn enabled(&self, outcome: Outcome) -> bool {
        self.0.enabled(outcome) || self.1.enabled(outcome)
    }

    fn record(&self, event: &AuditEvent<'_>) {
        self.0.record(event);
        self.1.record(event);
    }
}

/// Records into all three; enabled when any is.
impl<A: AuditSink, B: AuditSink, C: AuditSink> AuditSink for (A, B, C) {
    fn enabled(&self, outcome: Outcome) -> bool {
        self.0.enabled(outcome) || self.1.enabled(outcome) || self.2.enabled(outcome)
    }

    fn record(&self, event: &AuditEvent<'_>) {
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

    fn record(&self, event: &AuditEvent<'_>) {
        // Called inside a tuple whose other sink listens: nothing to format for `tracing`.
        if !Self::listening() {
            return;
        }
        let join = |values: &[String]| values.join(" ");
        let time = event.time_rfc3339();
        let tools = (!event.tools.is_empty()).then(|| join(&event.tools));
        let rpc_methods = (!event.rpc_methods.is_empty()).then(|| join(&event.rpc_methods));
        let required = event
            .required_scopes
            .as_ref()
            .map(ScopeSet::to_space_separated);
        let granted = event
            .granted_scopes
            .as_ref()
            .map(ScopeSet::to_space_separated);
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

/// Writes each event as one line of JSON ([`AuditEvent::write_json_line`]: the object of
/// [`AuditEvent::to_json`], written directly into a reused, pre-sized buffer) to a writer.
///
/// Two modes:
///
/// - [`new`](Self::new): the line is written and the writer flushed before
///   [`record`](AuditSink::record) returns (so before the response leaves). The request pays
///   the write: for a file or a pipe, a system call.
/// - [`non_blocking`](Self::non_blocking): the line is appended to a bounded in-memory buffer
///   and a thread of the sink (`mcp-oauth-audit`) writes what has gathered, about every
///   millisecond under load. A request never waits for the writer: it holds a lock only to
///   copy its line in. When the buffer is full (the writer cannot keep up, or is stuck) the
///   event is **dropped and counted** ([`dropped`](Self::dropped)), and the writer thread
///   reports the count through `tracing` (target `mcp_oauth::audit::sink`, `WARN`); a
///   request is never blocked for it. Dropping the sink (or [`into_inner`](Self::into_inner))
///   writes what is buffered and flushes the writer; a process that exits without dropping
///   it loses at most the last millisecond's lines.
///
/// A write error is reported once through `tracing` (target `mcp_oauth::audit::sink`) and
/// the events are dropped: the request is not failed for it.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// use mcp_oauth::audit::{JsonLinesSink, TracingSink};
///
/// let file = std::fs::OpenOptions::new().create(true).append(true).open("audit.jsonl")?;
/// let sink = (TracingSink, JsonLinesSink::non_blocking(file)?);
/// // OAuthLayer::builder(config, validator).audit_sink(sink)
/// # Ok(()) }
/// ```
pub struct JsonLinesSink<W> {
    mode: Mode<W>,
}

enum Mode<W> {
    Direct {
        /// The writer, and the line buffer reused for every event.
        writer: Mutex<(W, Vec<u8>)>,
        failed: AtomicBool,
    },
    Background(Background<W>),
}

impl<W> fmt::Debug for JsonLinesSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.mode {
            Mode::Direct { .. } => "direct",
            Mode::Background(_) => "non_blocking",
        };
        f.debug_struct("JsonLinesSink")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

/// What a non-blocking sink buffers by default before it drops events: about 2,000 lines.
pub const DEFAULT_BUFFER_BYTES: usize = 1 << 20;

/// How long the writer thread lets lines gather after the first one wakes it.
const GATHER: Duration = Duration::from_millis(1);

impl<W: Write + Send + 'static> JsonLinesSink<W> {
    /// A sink writing each line to `writer` and flushing it before the request goes on.
    pub fn new(writer: W) -> Self {
        Self {
            mode: Mode::Direct {
                writer: Mutex::new((writer, Vec::with_capacity(JSON_LINE_CAPACITY))),
                failed: AtomicBool::new(false),
            },
        }
    }

    /// A sink whose lines are written by its own thread, off the request path, buffering at
    /// most [`DEFAULT_BUFFER_BYTES`]; see the type's docs. Fails only when the thread cannot
    /// be started.
    pub fn non_blocking(writer: W) -> std::io::Result<Self> {
        Self::non_blocking_with_capacity(writer, DEFAULT_BUFFER_BYTES)
    }

    /// [`non_blocking`](Self::non_blocking), buffering at most `bytes` of lines (at least one
    /// line's worth).
    pub fn non_blocking_with_capacity(writer: W, bytes: usize) -> std::io::Result<Self> {
        Ok(Self {
            mode: Mode::Background(Background::start(writer, bytes)?),
        })
    }

    /// How many events were dropped because the buffer of a non-blocking sink was full (0
    /// for a sink made with [`new`](Self::new)).
    pub fn dropped(&self) -> u64 {
        match &self.mode {
            Mode::Direct { .. } => 0,
            Mode::Background(background) => background.queue.dropped.load(Ordering::Relaxed),
        }
    }

    /// The writer back, after every buffered line was written and the writer flushed.
    pub fn into_inner(self) -> W {
        match self.mode {
            Mode::Direct { writer, .. } => writer.into_inner().0,
            Mode::Background(mut background) => background.stop().expect("stopped once"),
        }
    }
}

impl<W: Write + Send + 'static> AuditSink for JsonLinesSink<W> {
    fn record(&self, event: &AuditEvent<'_>) {
        match &self.mode {
            Mode::Direct { writer, failed } => {
                let mut guard = writer.lock();
                let (writer, line) = &mut *guard;
                let result = with_line(line, event, |line| {
                    writer.write_all(line).and_then(|()| writer.flush())
                });
                drop(guard);
                if let Err(error) = result {
                    report_write_error(failed, &error);
                }
            }
            Mode::Background(background) => background.record(event),
        }
    }
}

/// Writes `event`'s line into the reused buffer `line` and hands it to `consume`; memory an
/// unusually long line took is given back afterwards.
fn with_line<R>(line: &mut Vec<u8>, event: &AuditEvent, consume: impl FnOnce(&[u8]) -> R) -> R {
    line.clear();
    event.write_json_line(line);
    let answer = consume(line);
    if line.capacity() > 4 * JSON_LINE_CAPACITY {
        *line = Vec::with_capacity(JSON_LINE_CAPACITY);
    }
    answer
}

fn report_write_error(failed: &AtomicBool, error: &std::io::Error) {
    if !failed.swap(true, Ordering::Relaxed) {
        tracing::error!(target: "mcp_oauth::audit::sink", %error, "the audit log cannot be written; events are dropped");
    }
}

/// The buffer a non-blocking sink's requests append to and its thread empties.
struct Queue {
    pending: Mutex<Vec<u8>>,
    capacity: usize,
    dropped: AtomicU64,
    closed: AtomicBool,
}

struct Background<W> {
    queue: Arc<Queue>,
    /// The writer thread, woken when the first line lands in an empty buffer.
    thread: std::thread::Thread,
    join: Option<std::thread::JoinHandle<W>>,
}

thread_local! {
    /// Each request thread's line buffer: the line is written outside the lock.
    static LINE: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(JSON_LINE_CAPACITY));
}

impl<W: Write + Send + 'static> Background<W> {
    fn start(writer: W, capacity: usize) -> std::io::Result<Self> {
        let capacity = capacity.max(JSON_LINE_CAPACITY);
        let queue = Arc::new(Queue {
            pending: Mutex::new(Vec::with_capacity(capacity.min(64 * 1024))),
            capacity,
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let join = std::thread::Builder::new()
            .name("mcp-oauth-audit".into())
            .spawn({
                let queue = queue.clone();
                move || write_lines(&queue, writer)
            })?;
        Ok(Self {
            queue,
            thread: join.thread().clone(),
            join: Some(join),
        })
    }

    fn record(&self, event: &AuditEvent<'_>) {
        let appended = LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                // Re-entered from inside a write (a `Display` of the event recording another
                // event): a fresh buffer.
                let mut line = Vec::with_capacity(JSON_LINE_CAPACITY);
                event.write_json_line(&mut line);
                return self.queue.append(&line);
            };
            with_line(&mut line, event, |line| self.queue.append(line))
        });
        match appended {
            Appended::First => self.thread.unpark(),
            Appended::More => {}
            Appended::Dropped => {
                self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes what is buffered, stops the thread and returns the writer (`None` when the
    /// thread panicked, or was stopped already).
    fn stop(&mut self) -> Option<W> {
        let join = self.join.take()?;
        self.queue.closed.store(true, Ordering::Release);
        self.thread.unpark();
        join.join().ok()
    }
}

impl<W> Drop for Background<W> {
    fn drop(&mut self) {
        if let Some(join) = self.join.take() {
            self.queue.closed.store(true, Ordering::Release);
            self.thread.unpark();
            let _ = join.join();
        }
    }
}

enum Appended {
    /// Into an empty buffer: the writer thread may be asleep.
    First,
    More,
    Dropped,
}

impl Queue {
    fn append(&self, line: &[u8]) -> Appended {
        let mut pending = self.pending.lock();
        if pending.len() + line.len() > self.capacity {
            return Appended::Dropped;
        }
        let first = pending.is_empty();
        pending.extend_from_slice(line);
        if first {
            Appended::First
        } else {
            Appended::More
        }
    }
}

/// The writer thread: takes the gathered lines (swapping buffers under the lock, never
/// writing under it), writes and flushes them, and sleeps when there is nothing.
fn write_lines<W: Write>(queue: &Queue, mut writer: W) -> W {
    let mut batch: Vec<u8> = Vec::with_capacity(queue.capacity.min(64 * 1024));
    let failed = AtomicBool::new(false);
    let mut reported_drops = 0;
    loop {
        std::mem::swap(&mut *queue.pending.lock(), &mut batch);
        if batch.is_empty() {
            let dropped = queue.dropped.load(Ordering::Relaxed);
            if dropped > reported_drops {
                tracing::warn!(
                    target: "mcp_oauth::audit::sink",
                    dropped = dropped - reported_drops,
                    total = dropped,
                    "the audit log's buffer was full: events were dropped"
                );
                reported_drops = dropped;
            }
            if queue.closed.load(Ordering::Acquire) {
                if let Err(error) = writer.flush() {
                    report_write_error(&failed, &error);
                }
                return writer;
            }
            std::thread::park();
            if !queue.closed.load(Ordering::Acquire) {
                std::thread::sleep(GATHER);
            }
            continue;
        }
        if let Err(error) = writer.write_all(&batch).and_then(|()| writer.flush()) {
            report_write_error(&failed, &error);
        }
        batch.clear();
        if batch.capacity() > queue.capacity {
            batch = Vec::with_capacity(queue.capacity.min(64 * 1024));
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

    fn record(&self, _event: &AuditEvent<'_>) {}
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
        let mut event = AuditEvent::new(Outcome::Refused, reason::NO_CREDENTIALS, 401, "r1");
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

    /// Every field set, with strings that need escaping: control characters, quotes,
    /// backslashes, DEL, non-ASCII and astral characters.
    fn full_event(text: &str) -> AuditEvent<'_> {
        let mut event = AuditEvent::new(Outcome::Allowed, reason::ALLOWED, 200, text);
        event.time = UNIX_EPOCH + Duration::from_millis(1_796_000_000_123);
        event.http_method = "POST".into();
        event.issuer = Some(format!("https://issuer.example/{text}").into());
        event.subject = Some(text.into());
        event.client_id = Some("".into());
        event.tools = vec![text.to_owned(), "list_events".into()].into();
        event.rpc_methods = vec!["tools/call".into()].into();
        event.required_scopes = Some(ScopeSet::from_iter(["calendar:read", text]));
        event.granted_scopes = Some(ScopeSet::new());
        event.fingerprint = Some(TokenFingerprint::of(text));
        event.scheme = Some("DPoP");
        event.dpop_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
        event.remote_addr = Some("2001:db8::1".parse().unwrap());
        event.retry_after = Some(Duration::from_secs(u64::MAX));
        event.rate_limit_fallback = true;
        let mut downstream = DownstreamAudit::new(text, vec!["a".into(), text.into()]);
        downstream.act = Some(r#"{"sub":"calendar-server"}"#.into());
        downstream.token_fingerprint = Some(TokenFingerprint::of("x"));
        event.downstream = Some(downstream);
        event
    }

    #[test]
    fn the_direct_json_line_is_serde_jsons_byte_for_byte() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let texts = [
            String::new(),
            "alice".to_owned(),
            every_control,
            "quote \" backslash \\ slash / del \u{7f} nul \u{0}".to_owned(),
            "é ü 漢字 \u{2028}\u{2029} \u{1F600} \u{FEFF}".to_owned(),
            "\u{1b}[31mred\u{1b}[0m\r\nforged: line".to_owned(),
        ];
        // Each byte class at every position of a 17-byte text (the escaping scans 8 bytes
        // at a time): the edges of the control range, the two escaped characters and their
        // neighbours, DEL, and a multi-byte character.
        let classes = [
            "\u{0}", "\u{1f}", " ", "!", "\"", "#", "[", "\\", "]", "\u{7f}", "é",
        ];
        let texts = texts.into_iter().chain(classes.iter().flat_map(|class| {
            (0..17).map(move |at| format!("{}{class}{}", "a".repeat(at), "b".repeat(16 - at)))
        }));
        for text in &texts.collect::<Vec<_>>() {
            let mut minimal =
                AuditEvent::new(Outcome::Refused, reason::NO_CREDENTIALS, 401, text.clone());
            minimal.remote_addr = Some("192.168.10.254".parse().unwrap());
            minimal.retry_after = Some(Duration::from_secs(0));
            for event in [full_event(text), minimal] {
                let mut line = Vec::new();
                event.write_json_line(&mut line);
                let line = String::from_utf8(line).unwrap();
                assert_eq!(line, format!("{}\n", event.to_json()), "{text:?}");
                assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
                let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(parsed, event.to_json());
                assert_eq!(parsed["request_id"], text.as_str());
            }
        }
    }

    #[test]
    fn a_non_blocking_sink_writes_every_line_by_the_time_it_is_dropped() {
        let sink = JsonLinesSink::non_blocking(Vec::new()).unwrap();
        let event = full_event("bob");
        for _ in 0..1000 {
            sink.record(&event);
        }
        assert_eq!(sink.dropped(), 0);
        let written = String::from_utf8(sink.into_inner()).unwrap();
        let mut expected = Vec::new();
        event.write_json_line(&mut expected);
        assert_eq!(written.lines().count(), 1000);
        assert!(
            written
                .lines()
                .all(|line| line.as_bytes() == &expected[..expected.len() - 1])
        );
    }

    /// A writer whose writes wait until the gate opens.
    struct Gated(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, changed) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_drops_and_counts_events_and_never_blocks() {
        let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let event = full_event("carol");
        let mut line = Vec::new();
        event.write_json_line(&mut line);
        let sink =
            JsonLinesSink::non_blocking_with_capacity(Gated(gate.clone()), 3 * line.len()).unwrap();
        // The writer takes the first lines and waits in its write; three more fill the
        // buffer, and every one after them is dropped at once.
        for _ in 0..10_000 {
            sink.record(&event);
        }
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            sink.record(&event);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(sink.dropped() >= 10_000, "{}", sink.dropped());
        assert!(sink.dropped() <= 20_000 - 3);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(sink);
    }
}
