//! A step-up raised from inside a handler, turned into a real 403 where it still can be.
//!
//! A handler that finds, from the call's arguments, that it needs more scopes than the layer
//! checked before dispatch refuses with the JSON-RPC error
//! [`INSUFFICIENT_SCOPE_ERROR_CODE`] naming them. When that error is the endpoint's whole
//! answer as one `application/json` message, the status is not sent yet, so the layer answers
//! 403 with the `insufficient_scope` challenge (every scope needed: the operation's and the
//! handler's, composed per protocol version), keeping the JSON-RPC error as the body. Only
//! scopes the resource declares are challenged, and only when the token lacks one; anything
//! else passes as the handler wrote it.
//!
//! rmcp 3.11 answers a request with one JSON message only on its stateless path with
//! `json_response` on, and only when the handler's first message is its result or error
//! (`StreamableHttpService::handle_post`, `transport/streamable_http_server/tower.rs`); the
//! one-call assembly turns `json_response` on. On a legacy session (`Mcp-Session-Id`, MCP
//! before 2026-07-28) and on an SSE response the status is already 200 when the error is
//! written: the client gets the JSON-RPC error with the same `data`, and acts on it.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

use super::Shared;
use super::body::ResponseBody;
use super::responses::{challenge_values, internal_error, step_up_challenge};
use crate::challenge::{INSUFFICIENT_SCOPE_ERROR_CODE, Scheme, StepUpScopes, step_up_scopes_of};
use crate::scopes::ScopeSet;
use crate::validation::VerifiedToken;

/// The largest JSON response read for a handler's step-up: a JSON-RPC error is small, a
/// larger answer is a result and passes untouched, unread.
const MAX_INSPECTED_BYTES: u64 = 16 * 1024;

/// [`INSUFFICIENT_SCOPE_ERROR_CODE`] as JSON writes it (a test keeps the two equal), for the
/// byte scan that spares result answers a parse.
const CODE_TEXT: &str = "-32043";

/// What composing a handler's challenge needs from the request.
pub(super) struct StepUpContext {
    pub(super) rule: StepUpScopes,
    /// Whose token (shared, not copied: most answers never need it).
    pub(super) identity: VerifiedToken,
    /// What the layer found the operation needs.
    pub(super) needed: ScopeSet,
    /// The scheme the token came with: the challenge keeps it.
    pub(super) scheme: Scheme,
}

/// The endpoint's answer, or the 403 a handler's step-up error becomes.
pub(super) enum Answer {
    Passed(Response<ResponseBody>),
    SteppedUp(Response<ResponseBody>, ScopeSet),
}

/// Reads a small `200 application/json` answer and, if it is a single
/// [`INSUFFICIENT_SCOPE_ERROR_CODE`] error, turns it into the 403 challenge.
pub(super) async fn inspect(
    shared: &Shared,
    context: &StepUpContext,
    response: Response<ResponseBody>,
) -> Answer {
    const JSON: &str = "application/json";
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().get(..JSON.len()))
        .is_some_and(|v| v.eq_ignore_ascii_case(JSON));
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|len| len <= MAX_INSPECTED_BYTES);
    if response.status() != StatusCode::OK || !is_json || !small {
        return Answer::Passed(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The endpoint's body failed: nothing to inspect, nothing left to send.
        Err(_) => return Answer::Passed(internal_error()),
    };
    let Some(mut needed) = challenge_scopes(shared, context, &bytes) else {
        return Answer::Passed(Response::from_parts(parts, ResponseBody::from(bytes)));
    };
    needed.extend(context.needed.iter());
    let scopes = context.rule.compose(
        context.identity.scopes(),
        &needed,
        shared.access.hierarchy(),
    );
    parts.status = StatusCode::FORBIDDEN;
    parts.headers.remove(WWW_AUTHENTICATE);
    let challenge = step_up_challenge(shared, scopes);
    for value in challenge_values(shared, context.scheme, StatusCode::FORBIDDEN, challenge) {
        parts.headers.append(WWW_AUTHENTICATE, value);
    }
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Answer::SteppedUp(
        Response::from_parts(parts, ResponseBody::from(bytes)),
        needed,
    )
}

/// What the challenge must ask for beyond the operation's scopes: the scopes the handler's
/// error names, kept to those the resource declares (an error relayed from elsewhere never
/// sends the client to ask for foreign scopes), and only when the token lacks one of them
/// (a handler asking for what the token holds gets no challenge: no re-authorization loop).
fn challenge_scopes(shared: &Shared, context: &StepUpContext, body: &[u8]) -> Option<ScopeSet> {
    let declared = shared.config.declaration().scopes;
    let asked: ScopeSet = step_up_request(body)?
        .iter()
        .filter(|scope| declared.contains(scope))
        .collect();
    let mut needed = context.needed.clone();
    needed.extend(asked.iter());
    let lacking = !context
        .identity
        .scopes()
        .missing(&needed, shared.access.hierarchy())
        .is_empty();
    (!asked.is_empty() && lacking).then_some(asked)
}

/// The scopes a single JSON-RPC error message with [`INSUFFICIENT_SCOPE_ERROR_CODE`] asks
/// for; `None` for anything else (a result, a batch, another error).
fn step_up_request(body: &[u8]) -> Option<ScopeSet> {
    // Most answers are results: a scan spares them the parse (`str::contains`, vectorized
    // for a short needle; JSON is UTF-8, and a body that is not is no error to read).
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains(CODE_TEXT) {
        return None;
    }
    let message: serde_json::Value = serde_json::from_str(text).ok()?;
    let error = message.get("error")?;
    if error.get("code")?.as_i64()? != i64::from(INSUFFICIENT_SCOPE_ERROR_CODE) {
        return None;
    }
    step_up_scopes_of(error.get("data")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanned_text_is_the_code() {
        assert_eq!(CODE_TEXT, INSUFFICIENT_SCOPE_ERROR_CODE.to_string());
    }

    #[test]
    fn only_a_single_step_up_error_with_scopes_asks_for_them() {
        let error = |code: i32, data: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"error":{{"code":{code},"message":"x","data":{data}}}}}"#
            )
        };
        let asks = error(
            INSUFFICIENT_SCOPE_ERROR_CODE,
            r#"{"error":"insufficient_scope","scope":"calendar:admin"}"#,
        );
        assert_eq!(
            step_up_request(asks.as_bytes()),
            Some(ScopeSet::from_space_separated("calendar:admin"))
        );
        for other in [
            error(
                -32600,
                r#"{"error":"insufficient_scope","scope":"calendar:admin"}"#,
            ),
            error(
                INSUFFICIENT_SCOPE_ERROR_CODE,
                r#"{"error":"other","scope":"a"}"#,
            ),
            error(
                INSUFFICIENT_SCOPE_ERROR_CODE,
                r#"{"error":"insufficient_scope","scope":"\"bad"}"#,
            ),
            error(
                INSUFFICIENT_SCOPE_ERROR_CODE,
                r#"{"error":"insufficient_scope"}"#,
            ),
            format!("[{asks}]"),
            r#"{"jsonrpc":"2.0","id":7,"result":{}}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert_eq!(step_up_request(other.as_bytes()), None, "{other}");
        }
    }
}
