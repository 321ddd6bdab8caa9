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
use crate::challenge::{Challenge, Scheme};
use crate::dpop::{DpopError, DpopMode, DpopVerifier};
use crate::scopes::ScopeSet;
use crate::validation::{ErrorCode, TokenError};

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub(super) const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

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
        "authorization, content-type, accept, dpop, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id",
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
            HeaderValue::from_static(
                "WWW-Authenticate, Mcp-Session-Id, Retry-After, X-Request-Id, DPoP-Nonce",
            ),
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
    for value in &shared.discovery_headers {
        response
            .headers_mut()
            .append(WWW_AUTHENTICATE, value.clone());
    }
    response
}

/// The `WWW-Authenticate` values of `challenge` for a request presented with `scheme`, by
/// the resource's DPoP mode: disabled, a `Bearer` challenge; required, a `DPoP` one (with
/// `algs`); allowed, the challenge in the request's scheme and, on a 401, the other
/// scheme's discovery challenge beside it, so that a client learns both are accepted. Every
/// challenge names `resource_metadata`.
pub(super) fn challenge_values(
    shared: &Shared,
    scheme: Scheme,
    status: StatusCode,
    challenge: Challenge,
) -> Vec<HeaderValue> {
    challenge_values_with(
        shared.dpop.as_ref(),
        &shared.metadata_url,
        &shared.config.challenge_scopes(),
        scheme,
        status,
        challenge,
    )
}

/// [`challenge_values`] from its parts (the layer's builder renders the discovery
/// challenges with it before there is a [`Shared`]).
pub(super) fn challenge_values_with(
    dpop: Option<&DpopVerifier>,
    metadata_url: &str,
    challenge_scopes: &ScopeSet,
    scheme: Scheme,
    status: StatusCode,
    challenge: Challenge,
) -> Vec<HeaderValue> {
    let render = |challenge: Challenge| HeaderValue::from_str(&challenge.render()).ok();
    let Some(dpop) = dpop else {
        return render(challenge.scheme(Scheme::Bearer))
            .into_iter()
            .collect();
    };
    let algs = dpop.algs_value();
    let scheme = match dpop.mode() {
        DpopMode::Required => Scheme::Dpop,
        _ => scheme,
    };
    let mut values: Vec<HeaderValue> = render(challenge.scheme(scheme).algs(algs))
        .into_iter()
        .collect();
    if dpop.mode() == DpopMode::Allowed && status == StatusCode::UNAUTHORIZED {
        let other = match scheme {
            Scheme::Bearer => Scheme::Dpop,
            Scheme::Dpop => Scheme::Bearer,
        };
        let beside = Challenge::new(metadata_url)
            .scope(challenge_scopes.clone())
            .scheme(other)
            .algs(algs);
        values.extend(render(beside));
    }
    values
}

/// The refusal of a DPoP request: a proof problem is 401 `invalid_dpop_proof`, a nonce
/// challenge 401 `use_dpop_nonce` with the nonce in `DPoP-Nonce`, a token problem as for a
/// bearer token (in the `DPoP` scheme).
pub(super) fn dpop_refusal(shared: &Shared, error: &DpopError) -> Response<ResponseBody> {
    match error {
        DpopError::Token(token) => token_refusal(shared, Scheme::Dpop, token),
        DpopError::ReplayStoreUnavailable => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            error.description(),
            Some("1"),
        ),
        _ => {
            let mut challenge = Challenge::new(&shared.metadata_url)
                .error(error.error_code())
                .description(error.description());
            // As for any `invalid_token`: the scopes of basic use, for the new token.
            if error.error_code() == ErrorCode::InvalidToken {
                challenge = challenge.scope(shared.config.challenge_scopes());
            }
            let mut response = challenge_response(
                shared,
                Scheme::Dpop,
                StatusCode::UNAUTHORIZED,
                challenge,
                None,
            );
            if matches!(error, DpopError::UseNonce | DpopError::InvalidNonce)
                && let Some(nonce) = shared.dpop.as_ref().and_then(|d| d.current_nonce())
                && let Ok(value) = HeaderValue::from_str(&nonce)
            {
                response.headers_mut().insert(DPOP_NONCE, value);
            }
            response
        }
    }
}

pub(super) fn token_refusal(
    shared: &Shared,
    scheme: Scheme,
    error: &TokenError,
) -> Response<ResponseBody> {
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
    challenge_response(shared, scheme, StatusCode::UNAUTHORIZED, challenge, None)
}

/// The `Retry-After` of a 503 for a shared store that cannot answer (it reconnects in the
/// background).
pub(super) const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// 503 with `Retry-After` in whole seconds, rounded up (at least 1).
pub(super) fn unavailable(retry_after: Duration) -> Response<ResponseBody> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "A shared store is unavailable",
        Some(&whole_seconds(retry_after).to_string()),
    )
}

fn whole_seconds(duration: Duration) -> u64 {
    (duration.as_secs() + u64::from(duration.subsec_nanos() > 0)).max(1)
}

/// 429 with `Retry-After` in whole seconds, rounded up (at least 1).
pub(super) fn too_many_requests(retry_after: Duration) -> Response<ResponseBody> {
    json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many requests",
        Some(&whole_seconds(retry_after).to_string()),
    )
}

/// The 403 step-up challenge, in the scheme the request used.
pub(super) fn step_up(shared: &Shared, scheme: Scheme, needed: ScopeSet) -> Response<ResponseBody> {
    challenge_response(
        shared,
        scheme,
        StatusCode::FORBIDDEN,
        step_up_challenge(shared, needed),
        None,
    )
}

pub(super) fn step_up_challenge(shared: &Shared, needed: ScopeSet) -> Challenge {
    Challenge::new(&shared.metadata_url)
        .error(ErrorCode::InsufficientScope)
        .description("The token lacks scopes this operation needs")
        .scope(needed)
}

pub(super) fn challenge_response(
    shared: &Shared,
    scheme: Scheme,
    status: StatusCode,
    challenge: Challenge,
    retry_after: Option<&str>,
) -> Response<ResponseBody> {
    let code = challenge
        .error_code()
        .map_or("unauthorized", ErrorCode::as_str);
    let mut response = json_error(status, code, "", retry_after);
    for value in challenge_values(shared, scheme, status, challenge) {
        response.headers_mut().append(WWW_AUTHENTICATE, value);
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
