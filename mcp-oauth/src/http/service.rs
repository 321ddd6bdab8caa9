//! The guarding service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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
use super::jsonrpc;
use super::origin::OriginCheck;
use super::session::{Principal, SessionCheck};
use crate::challenge::Challenge;
use crate::scopes::ScopeSet;
use crate::tools::{ToolRequirement, UnannotatedToolPolicy};
use crate::validation::{ErrorCode, TokenError, TokenFingerprint, VerifiedToken};

const AUDIT: &str = "mcp_oauth::audit";
const SESSION_HEADER: &str = "mcp-session-id";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

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
    request: Request<ReqBody>,
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
    if path != shared.route {
        let response = inner.call(request.map(ResponseBody::new)).await?;
        return Ok(response.map(ResponseBody::new));
    }

    let origin = match shared.origins.check(request.headers()) {
        OriginCheck::Refused => {
            audit_refusal("origin_refused", None, None);
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This Origin is not allowed",
                None,
            ));
        }
        OriginCheck::Allowed(origin) => HeaderValue::from_str(origin).ok(),
        OriginCheck::NoOrigin => None,
    };
    if request.method() == Method::OPTIONS {
        return Ok(with_cors(preflight(), origin.as_ref()));
    }
    let response = match authorize(&shared, request).await {
        Ok(Authorized { request, session }) => {
            let method = request.method().clone();
            let response = inner.call(request).await?;
            track_session(&shared, &method, session, &response);
            response.map(ResponseBody::new)
        }
        Err(refusal) => refusal,
    };
    Ok(with_cors(response, origin.as_ref()))
}

struct Authorized {
    request: Request<ResponseBody>,
    session: SessionState,
}

enum SessionState {
    /// The request presented a session it owns (bound already).
    Existing(String),
    /// No session: a session id in the response is bound to this principal.
    New(Principal),
}

/// Every check, in order; `Err` is the response to send instead of calling the endpoint.
async fn authorize<B>(
    shared: &Shared,
    request: Request<B>,
) -> Result<Authorized, Response<ResponseBody>>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let token = match bearer::credentials(&parts.headers) {
        Ok(Credentials::Bearer(token)) => token.to_owned(),
        Ok(Credentials::Missing | Credentials::OtherScheme) => {
            audit_refusal("no_credentials", None, None);
            return Err(discovery_challenge(shared));
        }
        Err(malformed) => {
            audit_refusal(malformed.reason(), None, None);
            let challenge = Challenge::new(&shared.metadata_url)
                .error(ErrorCode::InvalidRequest)
                .description(malformed.description());
            return Err(challenge_response(
                StatusCode::BAD_REQUEST,
                &challenge,
                None,
            ));
        }
    };
    let fingerprint = TokenFingerprint::of(&token);
    let identity = match shared.validator.validate(&token).await {
        Ok(identity) => identity,
        Err(error) => return Err(token_refusal(shared, &error, fingerprint)),
    };
    drop(token);

    let principal = Principal::of(&identity);
    let session = match parts
        .headers
        .get(SESSION_HEADER)
        .map(|v| v.to_str().map(str::to_owned))
    {
        None => SessionState::New(principal),
        Some(Ok(id)) => match shared.sessions.check(&id, principal) {
            SessionCheck::Owner => SessionState::Existing(id),
            SessionCheck::OtherPrincipal | SessionCheck::Unknown => {
                audit_refusal("session_not_bound_to_principal", Some(&identity), None);
                return Err(plain(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "Session not found",
                    None,
                ));
            }
        },
        Some(Err(_)) => {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid session id",
                None,
            ));
        }
    };

    let mut needed = shared.required_scopes.clone();
    let mut denied_tool = false;
    let body = if parts.method == Method::POST {
        let bytes = match read_bounded(body, &parts.headers, shared.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(status) => {
                audit_refusal("body_too_large_or_unreadable", Some(&identity), None);
                let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "Request body too large"
                } else {
                    "Unreadable request body"
                };
                return Err(plain(status, "invalid_request", text, None));
            }
        };
        if is_form(&parts.headers) && form_has_access_token(&bytes) {
            audit_refusal("token_in_header_and_body", Some(&identity), None);
            let challenge = Challenge::new(&shared.metadata_url)
                .error(ErrorCode::InvalidRequest)
                .description("The token was sent by more than one method");
            return Err(challenge_response(
                StatusCode::BAD_REQUEST,
                &challenge,
                None,
            ));
        }
        let Ok(calls) = jsonrpc::calls(&bytes) else {
            audit_refusal("unreadable_jsonrpc", Some(&identity), None);
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The body is not a JSON-RPC message",
                None,
            ));
        };
        if !headers_agree(&parts.headers, &calls) {
            audit_refusal("mcp_headers_disagree_with_body", Some(&identity), None);
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The Mcp-Method or Mcp-Name header does not match the body",
                None,
            ));
        }
        for tool in calls.iter().filter_map(|call| call.tool.as_deref()) {
            match shared.tools.requirement(tool) {
                ToolRequirement::Scopes(scopes) => needed.extend(scopes.iter()),
                ToolRequirement::Unannotated => {
                    denied_tool |= shared.tools.policy() == UnannotatedToolPolicy::Deny;
                }
            }
        }
        ResponseBody::from(bytes)
    } else {
        ResponseBody::new(body)
    };
    if denied_tool {
        audit_refusal("unannotated_tool_denied", Some(&identity), None);
        let challenge = Challenge::new(&shared.metadata_url)
            .error(ErrorCode::InsufficientScope)
            .description("This tool may not be called");
        return Err(challenge_response(StatusCode::FORBIDDEN, &challenge, None));
    }
    let missing = identity.scopes().missing(&needed, &shared.hierarchy);
    if !missing.is_empty() {
        audit_refusal("insufficient_scope", Some(&identity), Some(&needed));
        return Err(step_up(shared, needed));
    }

    tracing::debug!(target: AUDIT, outcome = "allowed", issuer = identity.issuer(), subject = ?identity.subject(),
        client_id = ?identity.client_id(), fingerprint = %identity.fingerprint(), "request allowed");
    // Tools must never see (or log) the raw token: it leaves with the header.
    parts.headers.remove(AUTHORIZATION);
    parts.extensions.insert(identity);
    Ok(Authorized {
        request: Request::from_parts(parts, body),
        session,
    })
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
        SessionState::New(principal) => {
            if let Some(id) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                shared.sessions.bind(id, principal);
            }
        }
        SessionState::Existing(id) if *method == Method::DELETE => shared.sessions.unbind(&id),
        SessionState::Existing(_) => {}
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
        for call in calls.iter().filter(|call| call.method == "tools/call") {
            if call.tool.as_deref() != Some(name.as_str()) {
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

fn form_has_access_token(body: &[u8]) -> bool {
    body.split(|b| *b == b'&')
        .any(|pair| pair.split(|b| *b == b'=').next() == Some(b"access_token"))
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

fn preflight() -> Response<ResponseBody> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE, OPTIONS")
        .header(
            ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id",
        )
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
            HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id"),
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

fn token_refusal(
    shared: &Shared,
    error: &TokenError,
    fingerprint: TokenFingerprint,
) -> Response<ResponseBody> {
    tracing::info!(target: AUDIT, outcome = "refused", reason = error.reason(), %fingerprint, "token refused");
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

fn audit_refusal(
    reason: &'static str,
    identity: Option<&VerifiedToken>,
    needed: Option<&ScopeSet>,
) {
    tracing::info!(
        target: AUDIT,
        outcome = "refused",
        reason,
        issuer = identity.map(VerifiedToken::issuer),
        subject = identity.and_then(VerifiedToken::subject),
        client_id = identity.and_then(VerifiedToken::client_id),
        granted = identity.map(|i| i.scopes().to_space_separated()),
        required = needed.map(ScopeSet::to_space_separated),
        fingerprint = identity.map(|i| i.fingerprint().to_string()),
        "request refused"
    );
}
