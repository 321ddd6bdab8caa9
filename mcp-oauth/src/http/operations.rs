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
use super::responses::{body_refusal, header_mismatch, plain, step_up, unreadable_jsonrpc};
use super::session::Principal;
use crate::access::{Refused, Requirement};
use crate::audit::reason;
use crate::challenge::StepUpScopes;
use crate::operations::{Operation, Target, is_task_method};
use crate::scopes::ScopeSet;
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
        return Ok((body, shared.access.requirement(None)));
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
    if decision.audited {
        decision.rpc_methods = calls.iter().map(|call| call.method.to_string()).collect();
        decision.tools = calls
            .iter()
            .filter_map(|call| call.tool().map(str::to_owned))
            .collect();
    }
    if let Err(mismatch) = headers_agree(&parts.headers, &calls) {
        return Err(Refusal::new(
            reason::MCP_HEADERS_DISAGREE,
            header_mismatch(&bytes, mismatch),
        ));
    }
    // `subscriptions/listen` names the resources it watches in a list: each is read.
    let listens = calls.iter().any(|call| call.method == SUBSCRIPTIONS_LISTEN);
    let watched = if listens {
        resource_subscriptions(&bytes).ok_or_else(unreadable_jsonrpc)?
    } else {
        Vec::new()
    };
    let watches = watched.iter().map(|uri| Operation {
        method: SUBSCRIPTIONS_LISTEN,
        target: Target::Resource(uri),
    });
    let requirement = shared
        .access
        .requirement(calls.iter().map(jsonrpc::Call::operation).chain(watches));
    let names_tasks = calls.iter().any(|call| is_task_method(&call.method));
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
/// allow it, the step-up challenge when scopes are missing (composed for the request's
/// protocol version, [`StepUpScopes`]).
pub(super) fn require(
    shared: &Shared,
    decision: &mut Decision,
    headers: &HeaderMap,
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
                "This operation may not be performed",
                None,
            ),
        )),
        Err(Refused::Insufficient(error)) => Err(Refusal::new(
            reason::INSUFFICIENT_SCOPE,
            step_up(
                shared,
                decision.scheme,
                step_up_scopes(shared, headers, identity, &error.required),
            ),
        )),
    }
}

/// What a step-up challenge names for `identity` lacking scopes of `needed`, composed for
/// the protocol version the request declares.
pub(super) fn step_up_scopes(
    shared: &Shared,
    headers: &HeaderMap,
    identity: &VerifiedToken,
    needed: &ScopeSet,
) -> ScopeSet {
    step_up_rule(headers).compose(identity.scopes(), needed, shared.access.hierarchy())
}

/// How the request's protocol version composes step-up challenges.
pub(super) fn step_up_rule(headers: &HeaderMap) -> StepUpScopes {
    let version = headers
        .get(PROTOCOL_VERSION_HEADER)
        .and_then(|v| v.to_str().ok());
    StepUpScopes::for_protocol_version(version)
}

pub(super) const PROTOCOL_VERSION_HEADER: http::HeaderName =
    http::HeaderName::from_static("mcp-protocol-version");

pub(super) const METHOD_HEADER: http::HeaderName = http::HeaderName::from_static("mcp-method");

pub(super) const NAME_HEADER: http::HeaderName = http::HeaderName::from_static("mcp-name");

const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";

/// The most resources one request may watch: each is matched against the resource table.
const MAX_RESOURCE_SUBSCRIPTIONS: usize = 256;

/// The resource URIs every `subscriptions/listen` request of `body` watches
/// (`params.notifications.resourceSubscriptions`, an array of strings or absent); `None` when
/// a request's list is not one (rmcp would refuse it too) or the body watches more than
/// [`MAX_RESOURCE_SUBSCRIPTIONS`]. Duplicate members never reach here
/// unread: rmcp's typed params refuse them.
fn resource_subscriptions(body: &[u8]) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let messages = match &value {
        serde_json::Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut uris = Vec::new();
    for message in messages {
        if message.get("method").and_then(serde_json::Value::as_str) != Some(SUBSCRIPTIONS_LISTEN) {
            continue;
        }
        let list = message
            .get("params")
            .and_then(|params| params.get("notifications"))
            .and_then(|filter| filter.get("resourceSubscriptions"));
        match list {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(items)) => {
                if uris.len() + items.len() > MAX_RESOURCE_SUBSCRIPTIONS {
                    return None;
                }
                for item in items {
                    uris.push(item.as_str()?.to_owned());
                }
            }
            Some(_) => return None,
        }
    }
    Some(uris)
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
            .is_some_and(is_task_method);
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

/// `Mcp-Method` and `Mcp-Name`, when present, must name what the body does (SEP-2243): the
/// method of every request, and for each named operation (a tool, a prompt, a resource URI,
/// a task: [`jsonrpc::name_member`]) what it names. `Err` says which header disagrees.
pub(super) fn headers_agree(
    headers: &HeaderMap,
    calls: &[jsonrpc::Call<'_>],
) -> Result<(), &'static str> {
    let header = |name: http::HeaderName| -> Result<Option<String>, ()> {
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
    let method =
        header(METHOD_HEADER).map_err(|()| "The Mcp-Method header is unreadable or repeated")?;
    let name = header(NAME_HEADER).map_err(|()| "The Mcp-Name header is unreadable or repeated")?;
    // A body of responses only invokes no method: nothing to disagree with (as rmcp).
    if let Some(method) = &method
        && calls.iter().any(|call| call.method != method.as_str())
    {
        return Err("The Mcp-Method header does not match the body's method");
    }
    if let Some(name) = &name {
        let named = calls
            .iter()
            .filter(|call| jsonrpc::name_member(&call.method).is_some());
        for call in named {
            if call.name.as_deref() != Some(name.as_str()) {
                return Err("The Mcp-Name header does not match what the body names");
            }
        }
    }
    Ok(())
}
