//! The responses the layer writes itself: challenges, plain JSON errors, the metadata
//! document, CORS.

use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE,
    RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::Shared;
use super::body::ResponseBody;
use super::decision::Refusal;
use crate::audit::reason;
use crate::challenge::Challenge;
use crate::scopes::ScopeSet;
use crate::validation::{ErrorCode, TokenError};

/// 500: the failed-authentication budget is on and the client's address is unknown.
pub(super) fn unknown_address() -> Refusal {
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

pub(super) fn unreadable_jsonrpc() -> Refusal {
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

pub(super) fn body_refusal(status: StatusCode) -> Refusal {
    let (code, text) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (reason::BODY_TOO_LARGE, "Request body too large")
    } else {
        (reason::BODY_UNREADABLE, "Unreadable request body")
    };
    Refusal::new(code, plain(status, "invalid_request", text, None))
}

pub(super) fn serve_metadata(shared: &Shared, method: &Method) -> Response<ResponseBody> {
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

pub(super) fn preflight(headers: &HeaderMap) -> Response<ResponseBody> {
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

pub(super) fn with_cors(
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

pub(super) fn discovery_challenge(shared: &Shared) -> Response<ResponseBody> {
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

pub(super) fn token_refusal(shared: &Shared, error: &TokenError) -> Response<ResponseBody> {
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
pub(super) fn too_many_requests(retry_after: Duration) -> Response<ResponseBody> {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many requests",
        Some(&secs.max(1).to_string()),
    )
}

pub(super) fn step_up(shared: &Shared, needed: ScopeSet) -> Response<ResponseBody> {
    let challenge = Challenge::new(&shared.metadata_url)
        .error(ErrorCode::InsufficientScope)
        .description("The token lacks scopes this operation needs")
        .scope(needed);
    challenge_response(StatusCode::FORBIDDEN, &challenge, None)
}

pub(super) fn challenge_response(
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

pub(super) fn plain(
    status: StatusCode,
    code: &str,
    description: &str,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
    json_error(status, code, description, retry_after)
}

pub(super) fn json_error(
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
    json_response(status, &body, retry_after)
}

/// A JSON body the layer writes, never cached.
fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
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

/// SEP-2243's answer to headers that disagree with the body: 400 with the JSON-RPC error
/// -32020 (rmcp's `ErrorCode::HEADER_MISMATCH`), addressed to the request's id (`null` for a
/// batch or a body without one), as rmcp itself writes it.
pub(super) fn header_mismatch(body: &[u8], message: &str) -> Response<ResponseBody> {
    let id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("id").cloned())
        .filter(|id| id.is_string() || id.is_number())
        .unwrap_or(serde_json::Value::Null);
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": HEADER_MISMATCH_CODE, "message": message },
    });
    json_response(StatusCode::BAD_REQUEST, &error, None)
}

/// The JSON-RPC error code of a header/body disagreement (SEP-2243).
const HEADER_MISMATCH_CODE: i64 = -32020;

pub(super) fn internal_error() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
