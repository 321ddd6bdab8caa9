//! State across requests: stream resumption (`Last-Event-ID`, opened for its principal, see
//! [`handles`](super::handles)) and legacy sessions (`Mcp-Session-Id`, bound to the principal
//! that created it).

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::Shared;
use super::body::ResponseBody;
use super::decision::Refusal;
use super::handles::HandleKind;
use super::limits::FailedAuth;
use super::responses::{STORE_RETRY_AFTER, internal_error, plain, unavailable};
use super::session::{Principal, SessionCheck};
use crate::audit::reason;

/// The session a request presents, checked against the principal: 404 for an unknown one or
/// another principal's (charged as a failed attempt), 400 for an unreadable id.
pub(super) async fn session_of(
    shared: &Shared,
    principal: Option<Principal>,
    headers: &HeaderMap,
    failed_auth: &FailedAuth<'_>,
) -> Result<SessionState, Refusal> {
    let Some(value) = headers.get(SESSION_HEADER) else {
        return Ok(SessionState::New(principal));
    };
    let Ok(id) = value.to_str() else {
        return Err(Refusal::new(
            reason::INVALID_SESSION_ID,
            plain(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid session id",
                None,
            ),
        ));
    };
    let check = match principal {
        Some(principal) => Some(shared.sessions.check(id, principal).await),
        None => None,
    };
    match check {
        Some(SessionCheck::Owner) => Ok(SessionState::Existing(id.to_owned())),
        Some(SessionCheck::Unavailable) => Err(Refusal::new(
            reason::SESSION_STORE_UNAVAILABLE,
            unavailable(STORE_RETRY_AFTER),
        )),
        Some(SessionCheck::OtherPrincipal | SessionCheck::Unknown) | None => {
            failed_auth.charge().await;
            Err(Refusal::new(
                reason::SESSION_NOT_BOUND,
                plain(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "Session not found",
                    None,
                ),
            ))
        }
    }
}

pub(super) const SESSION_HEADER: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

pub(super) const LAST_EVENT_ID_HEADER: http::HeaderName =
    http::HeaderName::from_static("last-event-id");

pub(super) enum SessionState {
    /// The request presented a session it owns (bound already).
    Existing(String),
    /// No session: a session id in the response is bound to this principal.
    New(Option<Principal>),
}

/// Opens a `Last-Event-ID` for `principal`, putting the server's own id in its place. An id
/// that does not open (another principal's, forged, unsealed) gets the answer rmcp gives
/// for an id it cannot resume, an empty event stream, and is charged as a failed attempt.
pub(super) async fn resume_for(
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
            .and_then(|presented| {
                shared
                    .handle_key
                    .open(HandleKind::Event, principal, presented)
            })
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

/// Binds a session the endpoint created to its principal, or forgets a deleted one, from
/// the response's status and `Mcp-Session-Id` (read before any await: a response body need
/// not be `Sync`).
pub(super) async fn track_session(
    shared: &Shared,
    method: &Method,
    session: SessionState,
    status: StatusCode,
    created: Option<HeaderValue>,
) {
    if !status.is_success() {
        return;
    }
    match session {
        SessionState::New(Some(principal)) => {
            if let Some(id) = created.as_ref().and_then(|v| v.to_str().ok()) {
                shared.sessions.bind(id, principal).await;
            }
        }
        SessionState::Existing(id) if *method == Method::DELETE => {
            shared.sessions.unbind(&id).await
        }
        SessionState::Existing(_) | SessionState::New(None) => {}
    }
}
