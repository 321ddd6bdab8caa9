//! The guarding service.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;

use super::Shared;
use super::bearer::{self, Credentials};
use super::handles::{HandleKey, SealedEventIds, TaskIds, is_event_stream};
use super::jsonrpc;
use super::origin::OriginCheck;
use super::request_id::{self, RequestId};
use super::session::{Principal, SessionCheck};
use crate::audit::{AuditEvent, Outcome, reason};
use crate::challenge::Challenge;
use crate::rate_limit::{RateDecision, RateLimitKey};
use crate::scopes::ScopeSet;
use crate::tools::{ToolRequirement, UnannotatedToolPolicy};
use crate::validation::{ErrorCode, TokenError, TokenFingerprint, VerifiedToken};

const SESSION_HEADER: &str = "mcp-session-id";
const LAST_EVENT_ID_HEADER: &str = "last-event-id";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// The largest form body read before authentication, only to find a second token (RFC 6750
/// §2: one method per request). MCP bodies are JSON; a form body is never the MCP message.
const MAX_FORM_BODY_BYTES: usize = 16 * 1024;

/// The status recorded for an allowed request whose endpoint never answered (the client went
/// away, or the endpoint failed), as common access logs do.
const NO_RESPONSE_STATUS: u16 = 499;

/// The body of every response the layer returns (the inner service's, boxed, or its own).
pub type ResponseBody = axum_core::body::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service [`OAuthLayer`](super::OAuthLayer) wraps around an MCP endpoint.
#[derive(Clone)]
pub struct OAuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for OAuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthService")
            .field("route", &self.shared.route)
            .finish_non_exhaustive()
    }
}

impl<S> OAuthService<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for OAuthService<S>
where
    S: tower_service::Service<Request<ResponseBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: HttpBody<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(handle(shared, inner, request))
    }
}

async fn handle<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    mut request: Request<ReqBody>,
) -> Result<Response<ResponseBody>, S::Error>
where
    S: tower_service::Service<Request<ResponseBody>, Response = Response<ResBody>>,
    ReqBody: HttpBody<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let path = request.uri().path();
    if shared.metadata_paths.iter().any(|served| served == path) {
        return Ok(serve_metadata(&shared, request.method()));
    }
    if !is_guarded(path, &shared.route) {
        let response = inner.call(request.map(ResponseBody::new)).await?;
        return Ok(response.map(ResponseBody::new));
    }

    if !shared.hosts.allows(request.uri(), request.headers()) {
        let decision = Decision::new(&shared, &mut request);
        let response = plain(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This Host is not allowed",
            None,
        );
        return Ok(decision.refuse(&shared, reason::HOST_REFUSED, response));
    }
    let origin = match shared.origins.check(request.headers()) {
        OriginCheck::Refused => {
            let decision = Decision::new(&shared, &mut request);
            let response = plain(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This Origin is not allowed",
                None,
            );
            return Ok(decision.refuse(&shared, reason::ORIGIN_REFUSED, response));
        }
        OriginCheck::Allowed(origin) => HeaderValue::from_str(origin).ok(),
        OriginCheck::NoOrigin => None,
    };
    if request.method() == Method::OPTIONS {
        return Ok(with_cors(preflight(request.headers()), origin.as_ref()));
    }
    let mut decision = Decision::new(&shared, &mut request);
    let response = match authorize(&shared, &mut decision, request).await {
        Ok(Authorized {
            request,
            session,
            principal,
        }) => {
            let method = request.method().clone();
            let request_id = decision.request_id_header.clone();
            let pending = PendingAllowed {
                shared: &shared,
                decision: Some(decision),
            };
            let response = inner.call(request).await?;
            track_session(&shared, &method, session, &response);
            pending.finish(response.status());
            let mut response = match principal {
                // Event ids leave sealed for the principal (see `handles`).
                Some(principal) if is_event_stream(response.headers()) => {
                    let key = shared.handle_key.clone();
                    response.map(|body| {
                        ResponseBody::new(SealedEventIds::new(
                            ResponseBody::new(body),
                            key,
                            principal,
                        ))
                    })
                }
                _ => response.map(ResponseBody::new),
            };
            echo_request_id(request_id.as_ref(), &mut response);
            response
        }
        Err(Refusal { reason, response }) => decision.refuse(&shared, reason, response),
    };
    Ok(with_cors(response, origin.as_ref()))
}

/// Whether `path` is the guarded route or below it. Routers mount services under a prefix
/// (`nest_service("/mcp", …)` also serves `/mcp/` and `/mcp/x`, and rmcp ignores the path),
/// so everything below the route is guarded too: failing closed, never open.
fn is_guarded(path: &str, route: &str) -> bool {
    let route = route.trim_end_matches('/');
    route.is_empty()
        || path == route
        || path
            .strip_prefix(route)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// What is known about a request on the guarded route, for its audit event.
struct Decision {
    /// When the request reached the layer (clock time since the epoch).
    arrived: Duration,
    request_id: RequestId,
    /// The request id as a header value, set on the request and echoed in the response.
    request_id_header: Option<HeaderValue>,
    remote: Option<IpAddr>,
    http_method: Method,
    fingerprint: Option<TokenFingerprint>,
    identity: Option<VerifiedToken>,
    tools: Vec<String>,
    rpc_methods: Vec<String>,
    required: Option<ScopeSet>,
}

impl Decision {
    /// Reads (or assigns) the request id, puts it in the request for the endpoint, and
    /// resolves the client address.
    fn new<B>(shared: &Shared, request: &mut Request<B>) -> Self {
        let request_id = request_id::of(request.headers());
        let request_id_header = HeaderValue::from_str(request_id.as_str()).ok();
        if let Some(value) = &request_id_header {
            request
                .headers_mut()
                .insert(request_id::HEADER, value.clone());
        }
        request.extensions_mut().insert(request_id.clone());
        let remote = shared
            .client_address
            .resolve(request.headers(), request.extensions());
        Self {
            arrived: shared.clock.now(),
            request_id,
            request_id_header,
            remote,
            http_method: request.method().clone(),
            fingerprint: None,
            identity: None,
            tools: Vec::new(),
            rpc_methods: Vec::new(),
            required: None,
        }
    }

    /// The audit event of this decision, built only when the sink records it.
    fn into_event(
        self,
        outcome: Outcome,
        reason: &'static str,
        status: u16,
        retry_after: Option<Duration>,
    ) -> AuditEvent {
        let mut event =
            AuditEvent::new(outcome, reason, status, self.request_id.as_str().to_owned());
        event.time = UNIX_EPOCH + self.arrived;
        event.http_method = self.http_method.as_str().to_owned();
        if let Some(identity) = &self.identity {
            event.issuer = Some(identity.issuer().to_owned());
            event.subject = identity.subject().map(str::to_owned);
            event.client_id = identity.client_id().map(str::to_owned);
            event.granted_scopes = Some(identity.scopes().iter().map(str::to_owned).collect());
        }
        event.tools = self.tools;
        event.rpc_methods = self.rpc_methods;
        event.required_scopes = self
            .required
            .as_ref()
            .map(|scopes| scopes.iter().map(str::to_owned).collect());
        event.fingerprint = self.fingerprint;
        event.remote_addr = self.remote;
        event.retry_after = retry_after;
        event
    }

    /// Records the refusal and returns its response, carrying the request id.
    fn refuse(
        mut self,
        shared: &Shared,
        reason: &'static str,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        let request_id = self.request_id_header.take();
        shared.record(Outcome::Refused, reason, || {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            self.into_event(
                Outcome::Refused,
                reason,
                response.status().as_u16(),
                retry_after,
            )
        });
        echo_request_id(request_id.as_ref(), &mut response);
        response
    }
}

/// Puts the request id in the response, unless the endpoint set one.
fn echo_request_id<B>(request_id: Option<&HeaderValue>, response: &mut Response<B>) {
    if let Some(value) = request_id
        && !response.headers().contains_key(request_id::HEADER)
    {
        response
            .headers_mut()
            .insert(request_id::HEADER, value.clone());
    }
}

/// The allowed event, recorded once the endpoint answered: with its status, or (dropped
/// unanswered) with [`NO_RESPONSE_STATUS`].
struct PendingAllowed<'a> {
    shared: &'a Shared,
    decision: Option<Decision>,
}

impl PendingAllowed<'_> {
    fn finish(mut self, status: StatusCode) {
        if let Some(decision) = self.decision.take() {
            self.shared.record(Outcome::Allowed, reason::ALLOWED, || {
                decision.into_event(Outcome::Allowed, reason::ALLOWED, status.as_u16(), None)
            });
        }
    }
}

impl Drop for PendingAllowed<'_> {
    fn drop(&mut self) {
        if let Some(decision) = self.decision.take() {
            self.shared.record(Outcome::Allowed, reason::ALLOWED, || {
                decision.into_event(Outcome::Allowed, reason::ALLOWED, NO_RESPONSE_STATUS, None)
            });
        }
    }
}

struct Authorized {
    request: Request<ResponseBody>,
    session: SessionState,
    /// Whose state handles the response carries (`None`: a token naming no one).
    principal: Option<Principal>,
}

/// A refusal: the reason code for the audit event and the response to send.
struct Refusal {
    reason: &'static str,
    response: Response<ResponseBody>,
}

impl Refusal {
    fn new(reason: &'static str, response: Response<ResponseBody>) -> Self {
        Self { reason, response }
    }
}

enum SessionState {
    /// The request presented a session it owns (bound already).
    Existing(String),
    /// No session: a session id in the response is bound to this principal.
    New(Option<Principal>),
}

/// The failed-authentication bucket of this request's address, when the guard is on.
struct FailedAuth<'a> {
    shared: &'a Shared,
    bucket: Option<(RateLimitKey, crate::rate_limit::Budget)>,
}

impl<'a> FailedAuth<'a> {
    /// The bucket of the request's address; `None` when the budget is on and the address
    /// cannot be learned: the request is refused ([`unknown_address`]), never waved past
    /// the budget.
    fn of(shared: &'a Shared, decision: &Decision) -> Option<Self> {
        let bucket = match (shared.rate_limits.failed_auth, decision.remote) {
            (Some(budget), Some(address)) => Some((RateLimitKey::failed_auth(address), budget)),
            (Some(_), None) => {
                if !shared.warned_no_address.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        target: "mcp_oauth::rate_limit",
                        "the client address is unknown, so requests are refused while the \
                         failed-authentication budget is on: serve with \
                         into_make_service_with_connect_info::<SocketAddr>(), insert \
                         mcp_oauth::http::PeerAddr, choose another ClientAddress source, or \
                         turn the budget off with RateLimits::without_failed_auth_limit()"
                    );
                }
                return None;
            }
            (None, _) => None,
        };
        Some(Self { shared, bucket })
    }

    /// Takes a unit before any token work; `Err` is the 429.
    async fn reserve(&self) -> Result<(), Refusal> {
        let Some((key, budget)) = &self.bucket else {
            return Ok(());
        };
        let now = self.shared.clock.now();
        match self
            .shared
            .rate_limits
            .store
            .acquire(key, *budget, now)
            .await
        {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(Refusal::new(
                reason::RATE_LIMITED_FAILED_AUTH,
                too_many_requests(retry_after),
            )),
        }
    }

    /// Gives the reserved unit back: the attempt did not fail.
    async fn release(&self) {
        if let Some((key, budget)) = &self.bucket {
            let now = self.shared.clock.now();
            self.shared
                .rate_limits
                .store
                .release(key, *budget, now)
                .await;
        }
    }

    /// Charges a failure found after the token verified (a guessed session id).
    async fn charge(&self) {
        if let Some((key, budget)) = &self.bucket {
            let now = self.shared.clock.now();
            let _ = self
                .shared
                .rate_limits
                .store
                .acquire(key, *budget, now)
                .await;
        }
    }
}

/// Every check, in order; `Err` is the refusal to send instead of calling the endpoint.
async fn authorize<B>(
    shared: &Shared,
    decision: &mut Decision,
    request: Request<B>,
) -> Result<Authorized, Refusal>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let Some(failed_auth) = FailedAuth::of(shared, decision) else {
        return Err(unknown_address());
    };
    // A body is judged as the server will read it: only unencoded bodies can be.
    if parts.method == Method::POST && !identity_encoded(&parts.headers) {
        return Err(Refusal::new(
            reason::UNSUPPORTED_CONTENT_ENCODING,
            plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "Content-Encoding is not supported",
                None,
            ),
        ));
    }
    // RFC 6750 §2: one method per request. A form body that comes with an `Authorization`
    // header is read (small, before validation) so that a header token plus a body token is
    // a 400 whatever the header token is worth; without the header it is not read at all.
    let mut body = Some(body);
    let mut form_body: Option<Bytes> = None;
    if parts.method == Method::POST
        && is_form(&parts.headers)
        && parts.headers.contains_key(AUTHORIZATION)
    {
        let bytes = match read_bounded(
            body.take().expect("body present"),
            &parts.headers,
            shared.max_body_bytes.min(MAX_FORM_BODY_BYTES),
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(status) => return Err(body_refusal(status)),
        };
        if form_has_access_token(&bytes) && parts.headers.contains_key(AUTHORIZATION) {
            let challenge = Challenge::new(&shared.metadata_url)
                .error(ErrorCode::InvalidRequest)
                .description("The token was sent by more than one method");
            return Err(Refusal::new(
                reason::TOKEN_IN_HEADER_AND_BODY,
                challenge_response(StatusCode::BAD_REQUEST, &challenge, None),
            ));
        }
        form_body = Some(bytes);
    }
    // Borrowed from the headers, which keep it until validation is over (the header is
    // removed below, before the endpoint sees the request).
    let token = match bearer::credentials(&parts.headers) {
        Ok(Credentials::Bearer(token)) => {
            failed_auth.reserve().await?;
            token
        }
        Ok(Credentials::Missing | Credentials::OtherScheme) => {
            return Err(Refusal::new(
                reason::NO_CREDENTIALS,
                discovery_challenge(shared),
            ));
        }
        Err(malformed) => {
            failed_auth.reserve().await?;
            let challenge = Challenge::new(&shared.metadata_url)
                .error(ErrorCode::InvalidRequest)
                .description(malformed.description());
            // `multiple_authorization_headers` or `malformed_bearer` (audit::reason).
            return Err(Refusal::new(
                malformed.reason(),
                challenge_response(StatusCode::BAD_REQUEST, &challenge, None),
            ));
        }
    };
    let started = Instant::now();
    let validated = shared.validator.validate(token).await;
    let elapsed = started.elapsed();
    // The token is hashed once: the validator's hash is in the identity's fingerprint, and a
    // refused token is hashed here, for its audit event only.
    decision.fingerprint = Some(match &validated {
        Ok(identity) => {
            debug_assert_eq!(identity.fingerprint(), TokenFingerprint::of(token));
            identity.fingerprint()
        }
        Err(_) => TokenFingerprint::of(token),
    });
    let identity = match validated {
        Ok(identity) => {
            crate::metrics::record_validation(elapsed, "accepted");
            failed_auth.release().await;
            identity
        }
        Err(error) => {
            let outcome = if error.error_code() == ErrorCode::TemporarilyUnavailable {
                "unavailable"
            } else {
                "refused"
            };
            crate::metrics::record_validation(elapsed, outcome);
            // Every refusal the token caused stays charged (an unknown kid answered 503 too);
            // keys that cannot be loaded for a known kid are not the client's failure.
            if !error.counts_as_failed_authentication() {
                failed_auth.release().await;
            }
            return Err(Refusal::new(error.reason(), token_refusal(shared, &error)));
        }
    };
    decision.identity = Some(identity.clone());

    if let Some(budget) = shared.rate_limits.per_principal {
        let key = RateLimitKey::principal(&identity, shared.rate_limits.principal_key);
        let now = shared.clock.now();
        if let RateDecision::Limited { retry_after } =
            shared.rate_limits.store.acquire(&key, budget, now).await
        {
            return Err(Refusal::new(
                reason::RATE_LIMITED_PRINCIPAL,
                too_many_requests(retry_after),
            ));
        }
    }

    let principal = Principal::of(&identity);
    // rmcp replays by event id alone (with an event store, whatever the session): the id
    // must have been sealed for this principal (see `handles`).
    if parts.headers.contains_key(LAST_EVENT_ID_HEADER) {
        resume_for(shared, principal, &mut parts.headers, &failed_auth).await?;
    }
    let session = match parts
        .headers
        .get(SESSION_HEADER)
        .map(|v| v.to_str().map(str::to_owned))
    {
        None => SessionState::New(principal),
        Some(Ok(id)) => match principal.map(|principal| shared.sessions.check(&id, principal)) {
            Some(SessionCheck::Owner) => SessionState::Existing(id),
            Some(SessionCheck::OtherPrincipal | SessionCheck::Unknown) | None => {
                failed_auth.charge().await;
                return Err(Refusal::new(
                    reason::SESSION_NOT_BOUND,
                    plain(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "Session not found",
                        None,
                    ),
                ));
            }
        },
        Some(Err(_)) => {
            return Err(Refusal::new(
                reason::INVALID_SESSION_ID,
                plain(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid session id",
                    None,
                ),
            ));
        }
    };

    let mut needed = shared.required_scopes.clone();
    let mut denied_tool = false;
    let body = if parts.method == Method::POST {
        let bytes = match (form_body, body) {
            (Some(bytes), _) => bytes,
            (None, Some(body)) => {
                match read_bounded(body, &parts.headers, shared.max_body_bytes).await {
                    Ok(bytes) => bytes,
                    Err(status) => return Err(body_refusal(status)),
                }
            }
            (None, None) => Bytes::new(),
        };
        let Ok(calls) = jsonrpc::calls(&bytes) else {
            return Err(unreadable_jsonrpc());
        };
        decision.rpc_methods = calls.iter().map(|call| call.method.to_string()).collect();
        decision.tools = calls
            .iter()
            .filter_map(|call| call.tool().map(str::to_owned))
            .collect();
        if !headers_agree(&parts.headers, &calls) {
            return Err(Refusal::new(
                reason::MCP_HEADERS_DISAGREE,
                plain(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The Mcp-Method or Mcp-Name header does not match the body",
                    None,
                ),
            ));
        }
        for tool in calls.iter().filter_map(jsonrpc::Call::tool) {
            match shared.tools.requirement(tool) {
                ToolRequirement::Scopes(scopes) => needed.extend(scopes.iter()),
                ToolRequirement::Unannotated => {
                    denied_tool |= shared.tools.policy() == UnannotatedToolPolicy::Deny;
                }
            }
        }
        let names_tasks = calls.iter().any(|call| is_task_operation(&call.method));
        drop(calls);
        if names_tasks {
            // Task ids are state handles: the server sees the id it sealed, or one it never issued.
            match unseal_task_ids(&shared.handle_key, principal, &bytes, &mut parts.headers) {
                Some(rewritten) => ResponseBody::from(rewritten),
                None => return Err(unreadable_jsonrpc()),
            }
        } else {
            ResponseBody::from(bytes)
        }
    } else {
        match body {
            Some(body) => ResponseBody::new(body),
            None => ResponseBody::empty(),
        }
    };
    decision.required = Some(needed.clone());
    if denied_tool {
        // No scope can help, so no step-up challenge: a plain 403.
        return Err(Refusal::new(
            reason::UNANNOTATED_TOOL_DENIED,
            plain(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This tool may not be called",
                None,
            ),
        ));
    }
    let missing = identity.scopes().missing(&needed, &shared.hierarchy);
    if !missing.is_empty() {
        return Err(Refusal::new(
            reason::INSUFFICIENT_SCOPE,
            step_up(shared, needed),
        ));
    }

    // Tools must never see (or log) the raw token: it leaves with the header.
    parts.headers.remove(AUTHORIZATION);
    parts.extensions.insert(identity);
    if let Some(principal) = principal {
        parts
            .extensions
            .insert(TaskIds::new(shared.handle_key.clone(), principal));
    }
    Ok(Authorized {
        request: Request::from_parts(parts, body),
        session,
        principal,
    })
}

/// 500: the failed-authentication budget is on and the client's address is unknown.
fn unknown_address() -> Refusal {
    Refusal::new(
        reason::CLIENT_ADDRESS_UNKNOWN,
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server cannot tell the client's address",
            None,
        ),
    )
}

fn unreadable_jsonrpc() -> Refusal {
    Refusal::new(
        reason::UNREADABLE_JSONRPC,
        plain(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body is not a JSON-RPC message",
            None,
        ),
    )
}

/// Opens a `Last-Event-ID` for `principal`, putting the server's own id in its place. An id
/// that does not open (another principal's, forged, unsealed) gets the answer rmcp gives
/// for an id it cannot resume, an empty event stream, and is charged as a failed attempt.
async fn resume_for(
    shared: &Shared,
    principal: Option<Principal>,
    headers: &mut HeaderMap,
    failed_auth: &FailedAuth<'_>,
) -> Result<(), Refusal> {
    let mut values = headers.get_all(LAST_EVENT_ID_HEADER).iter();
    let opened = match (principal, values.next(), values.next()) {
        (Some(principal), Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|presented| shared.handle_key.open(principal, presented))
            .and_then(|id| HeaderValue::from_str(id).ok()),
        _ => None,
    };
    match opened {
        Some(id) => {
            headers.insert(LAST_EVENT_ID_HEADER, id);
            Ok(())
        }
        None => {
            failed_auth.charge().await;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, "text/event-stream")
                .header(CACHE_CONTROL, "no-cache")
                .body(ResponseBody::empty())
                .unwrap_or_else(|_| internal_error());
            Err(Refusal::new(reason::EVENT_ID_NOT_BOUND, response))
        }
    }
}

/// Whether `method` names a task by id (`params.taskId`).
fn is_task_operation(method: &str) -> bool {
    jsonrpc::name_member(method) == Some("taskId")
}

/// The body (and `Mcp-Name`) with each task id replaced by what [`HandleKey::unseal_or_spoil`]
/// makes of it; `None` for a body that does not re-read (the reader accepted it, so this
/// does not happen short of a bug, and fails closed if it does).
fn unseal_task_ids(
    key: &HandleKey,
    principal: Option<Principal>,
    body: &[u8],
    headers: &mut HeaderMap,
) -> Option<Bytes> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut last = None;
    let messages: Vec<&mut serde_json::Value> = match &mut value {
        serde_json::Value::Array(items) => items.iter_mut().collect(),
        single => vec![single],
    };
    for message in messages {
        let is_task = message
            .get("method")
            .and_then(serde_json::Value::as_str)
            .is_some_and(is_task_operation);
        if !is_task {
            continue;
        }
        let id = message.get_mut("params")?.get_mut("taskId")?;
        let opened = key.unseal_or_spoil(principal, id.as_str()?);
        *id = serde_json::Value::String(opened.clone());
        last = Some(opened);
    }
    // rmcp compares `Mcp-Name` with the body (2026-07-28): it names the same task.
    if headers.contains_key(NAME_HEADER)
        && let Some(id) = last
    {
        headers.insert(NAME_HEADER, header_safe(&id)?);
    }
    serde_json::to_vec(&value).ok().map(Bytes::from)
}

/// An `Mcp-Name` value for `text`: itself when header-safe, else the SEP-2243 base64 form.
fn header_safe(text: &str) -> Option<HeaderValue> {
    use base64::Engine;
    let plain = text.bytes().all(|b| (0x21..0x7f).contains(&b)) && !text.starts_with("=?");
    if plain {
        HeaderValue::from_str(text).ok()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("=?base64?{encoded}?=")).ok()
    }
}

/// Whether the body is sent as is (`Content-Encoding` absent or `identity`).
fn identity_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',').all(|coding| {
                    coding.trim().eq_ignore_ascii_case("identity") || coding.trim().is_empty()
                })
            })
        })
}

fn body_refusal(status: StatusCode) -> Refusal {
    let (code, text) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (reason::BODY_TOO_LARGE, "Request body too large")
    } else {
        (reason::BODY_UNREADABLE, "Unreadable request body")
    };
    Refusal::new(code, plain(status, "invalid_request", text, None))
}

fn track_session<B>(
    shared: &Shared,
    method: &Method,
    session: SessionState,
    response: &Response<B>,
) {
    if !response.status().is_success() {
        return;
    }
    match session {
        SessionState::New(Some(principal)) => {
            if let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                shared.sessions.bind(id, principal);
            }
        }
        SessionState::Existing(id) if *method == Method::DELETE => shared.sessions.unbind(&id),
        SessionState::Existing(_) | SessionState::New(None) => {}
    }
}

/// `Mcp-Method` and `Mcp-Name`, when present, must name what the body does (SEP-2243).
fn headers_agree(headers: &HeaderMap, calls: &[jsonrpc::Call<'_>]) -> bool {
    let header = |name: &str| -> Result<Option<String>, ()> {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(());
        }
        jsonrpc::decode_header_value(value.as_bytes())
            .map(|v| Some(v.into_owned()))
            .ok_or(())
    };
    let (Ok(method), Ok(name)) = (header(METHOD_HEADER), header(NAME_HEADER)) else {
        return false;
    };
    if let Some(method) = &method
        && (calls.is_empty() || calls.iter().any(|call| call.method != method.as_str()))
    {
        return false;
    }
    if let Some(name) = &name {
        for call in calls
            .iter()
            .filter(|call| jsonrpc::name_member(&call.method).is_some())
        {
            if call.name.as_deref() != Some(name.as_str()) {
                return false;
            }
        }
    }
    true
}

async fn read_bounded<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, StatusCode>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Whether a form body carries `access_token`, names percent-decoded as a form parser would
/// (`access%5Ftoken` too).
fn form_has_access_token(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(name, _)| name == "access_token")
}

fn serve_metadata(shared: &Shared, method: &Method) -> Response<ResponseBody> {
    let builder = Response::builder()
        .header(ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS");
    let response = match *method {
        Method::GET => builder
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json")
            .header(CACHE_CONTROL, shared.metadata_cache_control.clone())
            .body(ResponseBody::from(shared.metadata_json.clone())),
        Method::HEAD => builder
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json")
            .header(CACHE_CONTROL, shared.metadata_cache_control.clone())
            .body(ResponseBody::empty()),
        Method::OPTIONS => builder
            .status(StatusCode::NO_CONTENT)
            .header(ACCESS_CONTROL_ALLOW_HEADERS, "*")
            .header(ACCESS_CONTROL_MAX_AGE, "86400")
            .body(ResponseBody::empty()),
        _ => builder
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(http::header::ALLOW, "GET, HEAD, OPTIONS")
            .body(ResponseBody::empty()),
    };
    response.unwrap_or_else(|_| internal_error())
}

fn preflight(headers: &HeaderMap) -> Response<ResponseBody> {
    // Echo the requested header names (SEP-2243 adds `Mcp-Param-*` headers, which no fixed
    // list can name); only header-name characters pass.
    let requested = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' '))
        })
        .filter(|v| !v.trim().is_empty());
    let allowed = requested.unwrap_or(
        "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id",
    );
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE, OPTIONS")
        .header(ACCESS_CONTROL_ALLOW_HEADERS, allowed)
        .header(ACCESS_CONTROL_MAX_AGE, "86400")
        .body(ResponseBody::empty())
        .unwrap_or_else(|_| internal_error())
}

fn with_cors(
    mut response: Response<ResponseBody>,
    origin: Option<&HeaderValue>,
) -> Response<ResponseBody> {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id, Retry-After, X-Request-Id"),
        );
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn discovery_challenge(shared: &Shared) -> Response<ResponseBody> {
    let mut response = json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        None,
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, shared.discovery_header.clone());
    response
}

fn token_refusal(shared: &Shared, error: &TokenError) -> Response<ResponseBody> {
    if error.error_code() == ErrorCode::TemporarilyUnavailable {
        let retry = error
            .retry_after()
            .unwrap_or(Duration::from_secs(5))
            .as_secs()
            .max(1)
            .to_string();
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            error.description(),
            Some(&retry),
        );
    }
    let challenge = Challenge::new(&shared.metadata_url)
        .error(ErrorCode::InvalidToken)
        .description(error.description())
        .scope(shared.config.challenge_scopes());
    challenge_response(StatusCode::UNAUTHORIZED, &challenge, None)
}

/// 429 with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many_requests(retry_after: Duration) -> Response<ResponseBody> {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many requests",
        Some(&secs.max(1).to_string()),
    )
}

fn step_up(shared: &Shared, needed: ScopeSet) -> Response<ResponseBody> {
    let challenge = Challenge::new(&shared.metadata_url)
        .error(ErrorCode::InsufficientScope)
        .description("The token lacks scopes this operation needs")
        .scope(needed);
    challenge_response(StatusCode::FORBIDDEN, &challenge, None)
}

fn challenge_response(
    status: StatusCode,
    challenge: &Challenge,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
    let code = challenge
        .error_code()
        .map_or("unauthorized", ErrorCode::as_str);
    let mut response = json_error(status, code, "", retry_after);
    if let Ok(value) = HeaderValue::from_str(&challenge.render()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

fn plain(
    status: StatusCode,
    code: &str,
    description: &str,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
    json_error(status, code, description, retry_after)
}

fn json_error(
    status: StatusCode,
    code: &str,
    description: &str,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
    let body = if description.is_empty() {
        serde_json::json!({ "error": code })
    } else {
        serde_json::json!({ "error": code, "error_description": description })
    };
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    if let Some(retry) = retry_after {
        builder = builder.header(RETRY_AFTER, retry);
    }
    builder
        .body(ResponseBody::from(body.to_string()))
        .unwrap_or_else(|_| internal_error())
}

fn internal_error() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
