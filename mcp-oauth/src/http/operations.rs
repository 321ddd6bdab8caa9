//! What the request does and whether the token may: the JSON-RPC body read (batches
//! included), `Mcp-Method`/`Mcp-Name` compared with it, task ids opened for the principal,
//! and the [`AccessPolicy`](crate::access::AccessPolicy) asked: a plain 403 when nothing can
//! allow it, a 403 step-up challenge naming every scope it needs otherwise.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Body as HttpBody;

use super::Shared;
use super::body::{BoxError, ResponseBody, read_bounded};
use super::decision::{Decision, Refusal};
use super::handles::HandleKey;
use super::jsonrpc;
use super::responses::{body_refusal, plain, step_up, unreadable_jsonrpc};
use super::session::Principal;
use crate::access::{Refused, Requirement};
use crate::audit::reason;
use crate::validation::VerifiedToken;

/// The request body for the endpoint, with what it calls judged: a `POST` body is read
/// (bounded) and its tools recorded in `decision`; other methods pass their body on.
pub(super) async fn read_operations<B>(
    shared: &Shared,
    decision: &mut Decision,
    parts: &mut Parts,
    form: Option<Bytes>,
    body: Option<B>,
    principal: Option<Principal>,
) -> Result<(ResponseBody, Requirement), Refusal>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if parts.method != Method::POST {
        let body = body.map_or_else(ResponseBody::empty, ResponseBody::new);
        return Ok((body, shared.access.requirement([])));
    }
    let bytes = match (form, body) {
        (Some(bytes), _) => bytes,
        (None, Some(body)) => read_bounded(body, &parts.headers, shared.max_body_bytes)
            .await
            .map_err(body_refusal)?,
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
    let requirement = shared
        .access
        .requirement(calls.iter().filter_map(jsonrpc::Call::tool));
    let names_tasks = calls.iter().any(|call| is_task_operation(&call.method));
    drop(calls);
    if !names_tasks {
        return Ok((ResponseBody::from(bytes), requirement));
    }
    // Task ids are state handles: the server sees the id it sealed, or one it never issued.
    match unseal_task_ids(&shared.handle_key, principal, &bytes, &mut parts.headers) {
        Some(rewritten) => Ok((ResponseBody::from(rewritten), requirement)),
        None => Err(unreadable_jsonrpc()),
    }
}

/// Whether `identity` may do what `requirement` describes: a plain 403 when no scope can
/// allow it, the step-up challenge when scopes are missing.
pub(super) fn require(
    shared: &Shared,
    decision: &mut Decision,
    identity: &VerifiedToken,
    requirement: &Requirement,
) -> Result<(), Refusal> {
    if let Requirement::Scopes(needed) = requirement {
        decision.required = Some(needed.clone());
    }
    match shared.access.check(identity, requirement) {
        Ok(()) => Ok(()),
        // No scope can help, so no step-up challenge.
        Err(Refused::Denied) => Err(Refusal::new(
            reason::UNANNOTATED_TOOL_DENIED,
            plain(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This tool may not be called",
                None,
            ),
        )),
        Err(Refused::Insufficient(error)) => Err(Refusal::new(
            reason::INSUFFICIENT_SCOPE,
            step_up(shared, error.required),
        )),
    }
}

pub(super) const METHOD_HEADER: &str = "mcp-method";

pub(super) const NAME_HEADER: &str = "mcp-name";

/// Whether `method` names a task by id (`params.taskId`).
pub(super) fn is_task_operation(method: &str) -> bool {
    jsonrpc::name_member(method) == Some("taskId")
}

/// The body (and `Mcp-Name`) with each task id replaced by what [`HandleKey::unseal_or_spoil`]
/// makes of it; `None` for a body that does not re-read (the reader accepted it, so this
/// does not happen short of a bug, and fails closed if it does).
pub(super) fn unseal_task_ids(
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
pub(super) fn header_safe(text: &str) -> Option<HeaderValue> {
    use base64::Engine;
    let plain = text.bytes().all(|b| (0x21..0x7f).contains(&b)) && !text.starts_with("=?");
    if plain {
        HeaderValue::from_str(text).ok()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("=?base64?{encoded}?=")).ok()
    }
}

/// `Mcp-Method` and `Mcp-Name`, when present, must name what the body does (SEP-2243).
pub(super) fn headers_agree(headers: &HeaderMap, calls: &[jsonrpc::Call<'_>]) -> bool {
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
