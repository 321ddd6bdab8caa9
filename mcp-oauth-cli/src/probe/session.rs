//! With a token: an MCP session (`initialize`, the lists with each operation's declared
//! scopes), the `Mcp-Method`/`Mcp-Name` agreement, and with `--call` the 403 step-up of each
//! scoped operation for a token lacking its scopes.

use mcp_oauth::challenge::Scheme;
use mcp_oauth::tools::TOOL_SCOPES_META_KEY;
use serde_json::{Value, json};

use super::{ACCEPT, Found, Probe, Reply, clip, param, token_scopes};
use crate::ProbeArgs;
use crate::report::Status;

const MCP_NAME_TITLE: &str = "`Mcp-Method`/`Mcp-Name` disagreeing with the body refused with 400";
const MCP_NAME_SPEC: &str = "MCP 2026-07-28 (SEP-2243)";
/// The first protocol version in which `Mcp-Name` must agree with the body.
const MCP_NAME_SINCE: &str = "2026-07-28";
const STEP_UP_SPEC: &str = "MCP authorization (scope challenge), RFC 6750 §3.1";

/// An MCP session: the token, the session id and the protocol version agreed.
struct Session {
    token: String,
    id: Option<String>,
    version: String,
    next_id: u64,
}

/// One operation a list showed, with the scopes its `_meta` declares.
struct Operation {
    kind: &'static str,
    name: String,
    scopes: Option<Vec<String>>,
}

/// Runs the group (everything is skipped without a token).
pub async fn run(probe: &mut Probe, found: &Found, token: Option<&str>, args: &ProbeArgs) {
    let Some(token) = token else {
        for (id, title, spec) in [
            (
                "session.initialize",
                "initialize with the token",
                "MCP lifecycle",
            ),
            (
                "session.lists",
                "tools, prompts and resources listed with their scopes",
                "MCP server features",
            ),
            ("session.mcp_name", MCP_NAME_TITLE, MCP_NAME_SPEC),
            (
                "step_up",
                "403 insufficient_scope for a token lacking an operation's scopes",
                STEP_UP_SPEC,
            ),
        ] {
            probe.push(
                id,
                title,
                Status::Skip,
                "needs --token or --client-credentials (the guard answers 401 first)",
                spec,
            );
        }
        return;
    };
    if found.dpop_required {
        probe.push(
            "session.initialize",
            "initialize with the token",
            Status::Skip,
            "the resource requires DPoP-bound tokens: the probe presents bearer tokens only",
            "RFC 9449 §7",
        );
        return;
    }
    let Some(mut session) = initialize(probe, token).await else {
        return;
    };
    let mut operations = Vec::new();
    for (kind, method, member) in [
        ("tool", "tools/list", "tools"),
        ("prompt", "prompts/list", "prompts"),
        ("resource", "resources/list", "resources"),
        ("template", "resources/templates/list", "resourceTemplates"),
    ] {
        list(probe, &mut session, kind, method, member, &mut operations).await;
    }
    mcp_name(probe, &mut session, &operations).await;
    step_up(probe, &operations, args).await;
}

/// POSTs one JSON-RPC message in the session with `token`, plus extra headers.
async fn post(
    probe: &mut Probe,
    session: &Session,
    token: &str,
    message: &Value,
    extra: &[(&str, &str)],
) -> Result<Reply, String> {
    let url = probe.url.clone();
    probe
        .send(|http| {
            let mut request = http
                .post(&url)
                .header("accept", ACCEPT)
                .header("authorization", format!("Bearer {token}"))
                .header("mcp-protocol-version", &session.version)
                .json(message);
            if let Some(id) = &session.id {
                request = request.header("mcp-session-id", id);
            }
            for (name, value) in extra {
                request = request.header(*name, *value);
            }
            request
        })
        .await
}

/// A session for `--token-low` (`initialize` then `notifications/initialized`); the
/// failure to open one is reported as `step_up` (the token may be refused outright, or the
/// server may only let it call what it may). The server may run sessionless: then none.
async fn open_session(probe: &mut Probe, token: &str) -> Option<Session> {
    const TITLE: &str = "403 insufficient_scope for a token lacking an operation's scopes";
    open(probe, token, "step_up", TITLE, STEP_UP_SPEC, |refusal| {
        format!(
            "initialize with --token-low: {refusal} (a token without an operation's scopes \
             may still open a session; the operation is what is refused)"
        )
    })
    .await
}

/// `initialize` with `token`, then `notifications/initialized`: the session, or `None` once
/// the reason is reported under `id` (an unanswered request, a 429 out of budget, or a
/// refusal worded by `refused`).
async fn open(
    probe: &mut Probe,
    token: &str,
    id: &str,
    title: &str,
    spec: &str,
    refused: impl FnOnce(String) -> String,
) -> Option<Session> {
    let authorization = format!("Bearer {token}");
    let reply = probe
        .initialize_with(&[("authorization", &authorization)])
        .await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            probe.unanswered(id, title, spec, &error);
            return None;
        }
    };
    if probe.skipped_for_429(&reply, id, title, spec) {
        return None;
    }
    let version = reply
        .jsonrpc()
        .and_then(|r| {
            r.get("result")?
                .get("protocolVersion")?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|_| reply.status == 200);
    let Some(version) = version else {
        let refusal = format!("{}: {}", reply.summary(), clip(&reply.body, 200));
        probe.push(id, title, Status::Fail, refused(refusal), spec);
        return None;
    };
    let session = Session {
        token: token.to_owned(),
        id: reply.header("mcp-session-id").map(str::to_owned),
        version,
        next_id: 2,
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let _ = post(probe, &session, token, &initialized, &[]).await;
    Some(session)
}

async fn initialize(probe: &mut Probe, token: &str) -> Option<Session> {
    const ID: &str = "session.initialize";
    const TITLE: &str = "initialize with the token (protocol 2025-06-18 or newer)";
    const SPEC: &str = "MCP lifecycle (initialization)";
    let mut session = open(probe, token, ID, TITLE, SPEC, |refusal| refusal).await?;
    let version = session.version.clone();
    let ok = version.as_str() >= "2025-06-18";
    probe.verdict(
        ID,
        TITLE,
        ok,
        format!(
            "protocol {version}{}",
            if ok {
                ""
            } else {
                ": older than 2025-06-18, which OAuth needs"
            }
        ),
        SPEC,
    );
    session.next_id = 2;
    Some(session)
}

fn declared_scopes(item: &Value) -> Option<Vec<String>> {
    let entry = item.get("_meta")?.get(TOOL_SCOPES_META_KEY)?;
    Some(
        entry
            .get("scopes")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

async fn list(
    probe: &mut Probe,
    session: &mut Session,
    kind: &'static str,
    method: &str,
    member: &str,
    operations: &mut Vec<Operation>,
) {
    let id = format!("session.{}", method.replace('/', "_"));
    let title = format!("{method} with each {kind}'s declared scopes");
    const SPEC: &str = "MCP server features; scopes in `_meta` (rs.mcp-oauth/authorization)";
    let mut cursor: Option<String> = None;
    let mut items = Vec::new();
    for _page in 0..20 {
        let request_id = session.next_id;
        session.next_id += 1;
        let mut message =
            json!({"jsonrpc": "2.0", "id": request_id, "method": method, "params": {}});
        if let Some(cursor) = &cursor {
            message["params"]["cursor"] = json!(cursor);
        }
        let token = session.token.clone();
        let reply = match post(probe, session, &token, &message, &[]).await {
            Ok(reply) => reply,
            Err(error) => return probe.unanswered(&id, &title, SPEC, &error),
        };
        if probe.skipped_for_429(&reply, &id, &title, SPEC) {
            return;
        }
        let response = reply.jsonrpc();
        if let Some(error) = response.as_ref().and_then(|r| r.get("error")) {
            // A server without this capability answers "method not found".
            let code = error.get("code").and_then(Value::as_i64);
            let status = if code == Some(-32601) {
                Status::Skip
            } else {
                Status::Fail
            };
            return probe.push(
                &id,
                &title,
                status,
                format!("{} error {}", reply.status, clip(&error.to_string(), 200)),
                SPEC,
            );
        }
        let Some(result) = response
            .and_then(|r| r.get("result").cloned())
            .filter(|_| reply.status == 200)
        else {
            return probe.push(
                &id,
                &title,
                Status::Fail,
                format!("{}: {}", reply.summary(), clip(&reply.body, 200)),
                SPEC,
            );
        };
        items.extend(
            result
                .get(member)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let mut shown = Vec::new();
    for item in &items {
        let name = item
            .get(if kind == "resource" {
                "uri"
            } else if kind == "template" {
                "uriTemplate"
            } else {
                "name"
            })
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let scopes = declared_scopes(item);
        shown.push(match &scopes {
            Some(s) if s.is_empty() => format!("{name} [no scope]"),
            Some(s) => format!("{name} [{}]", s.join(" ")),
            None => format!("{name} [scopes not declared]"),
        });
        operations.push(Operation { kind, name, scopes });
    }
    probe.push(
        &id,
        &title,
        Status::Pass,
        if shown.is_empty() {
            format!("no {kind}s")
        } else {
            shown.join(", ")
        },
        SPEC,
    );
}

async fn mcp_name(probe: &mut Probe, session: &mut Session, operations: &[Operation]) {
    // The body calls a tool that does not exist, the header names a listed one: a server that
    // ignores the header answers with an error for an unknown tool, and no tool runs.
    let header_name = operations
        .iter()
        .find(|o| o.kind == "tool")
        .map_or("mcp-oauth-probe-header", |o| o.name.as_str())
        .to_owned();
    let request_id = session.next_id;
    session.next_id += 1;
    let message = json!({
        "jsonrpc": "2.0", "id": request_id, "method": "tools/call",
        "params": {"name": "mcp-oauth-probe-no-such-tool", "arguments": {}},
    });
    let token = session.token.clone();
    let header_name = if header_name.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        header_name
    } else {
        "mcp-oauth-probe-header".to_owned()
    };
    let reply = post(
        probe,
        session,
        &token,
        &message,
        &[("mcp-method", "tools/call"), ("mcp-name", &header_name)],
    )
    .await;
    match reply {
        Ok(reply) => {
            if probe.skipped_for_429(&reply, "session.mcp_name", MCP_NAME_TITLE, MCP_NAME_SPEC) {
                return;
            }
            let code = reply
                .jsonrpc()
                .and_then(|r| r.get("error")?.get("code")?.as_i64());
            let seen = match code {
                Some(code) => format!("{} (JSON-RPC error {code})", reply.status),
                None => format!("{}", reply.status),
            };
            // SEP-2243 applies from protocol 2026-07-28: an older session need not refuse.
            let applies = session.version.as_str() >= MCP_NAME_SINCE;
            if reply.status == 400 {
                probe.push(
                    "session.mcp_name",
                    MCP_NAME_TITLE,
                    Status::Pass,
                    seen,
                    MCP_NAME_SPEC,
                );
            } else if !applies {
                probe.push(
                    "session.mcp_name",
                    MCP_NAME_TITLE,
                    Status::Skip,
                    format!(
                        "{seen}: the session negotiated protocol {}, older than \
                         {MCP_NAME_SINCE}, from which SEP-2243 applies",
                        session.version
                    ),
                    MCP_NAME_SPEC,
                );
            } else {
                probe.push(
                    "session.mcp_name",
                    MCP_NAME_TITLE,
                    Status::Fail,
                    format!("{seen}, expected 400"),
                    MCP_NAME_SPEC,
                );
            }
        }
        Err(error) => probe.unanswered("session.mcp_name", MCP_NAME_TITLE, MCP_NAME_SPEC, &error),
    }
}

async fn step_up(probe: &mut Probe, operations: &[Operation], args: &ProbeArgs) {
    const TITLE: &str = "403 insufficient_scope for a token lacking an operation's scopes";
    let scoped: Vec<&Operation> = operations
        .iter()
        .filter(|o| matches!(o.kind, "tool" | "prompt" | "resource"))
        .filter(|o| o.scopes.as_ref().is_some_and(|s| !s.is_empty()))
        .collect();
    if !args.call {
        probe.push(
            "step_up",
            TITLE,
            Status::Skip,
            "needs --call (real calls: a broken server may act on them) and --token-low",
            STEP_UP_SPEC,
        );
        return;
    }
    let Some(low) = args.token_low.as_deref() else {
        probe.push(
            "step_up",
            TITLE,
            Status::Skip,
            "needs --token-low, a token lacking the operations' scopes",
            STEP_UP_SPEC,
        );
        return;
    };
    if scoped.is_empty() {
        probe.push(
            "step_up",
            TITLE,
            Status::Skip,
            "no listed operation declares scopes in its `_meta`",
            STEP_UP_SPEC,
        );
        return;
    }
    // The low token gets a session of its own: a server that binds sessions to principals
    // answers 404 to the high token's session id presented with another token.
    let Some(low_session) = open_session(probe, low).await else {
        return;
    };
    let session = &low_session;
    // Which operations the low token should be refused: those whose scopes it does not hold
    // (a JWT's `scope`/`scp`, read unverified; an opaque token is taken to hold none). A
    // scope held through a broader one (a hierarchy) is not visible from outside.
    let held = token_scopes(low).unwrap_or_default();
    let mut next_id = 1000;
    for operation in scoped {
        let needed = operation.scopes.clone().unwrap_or_default();
        let id = format!("step_up.{}.{}", operation.kind, operation.name);
        let title = format!(
            "{} {}: 403 insufficient_scope for --token-low",
            operation.kind, operation.name
        );
        let title = title.as_str();
        if needed.iter().all(|s| held.contains(s)) {
            probe.push(
                &id,
                title,
                Status::Skip,
                format!("--token-low holds {}", needed.join(" ")),
                STEP_UP_SPEC,
            );
            continue;
        }
        next_id += 1;
        let (method, params) = match operation.kind {
            "tool" => (
                "tools/call",
                json!({"name": operation.name, "arguments": {}}),
            ),
            "prompt" => (
                "prompts/get",
                json!({"name": operation.name, "arguments": {}}),
            ),
            _ => ("resources/read", json!({"uri": operation.name})),
        };
        let message = json!({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params});
        let reply = match post(probe, session, low, &message, &[]).await {
            Ok(reply) => reply,
            Err(error) => {
                probe.unanswered(&id, title, STEP_UP_SPEC, &error);
                continue;
            }
        };
        if probe.skipped_for_429(&reply, &id, title, STEP_UP_SPEC) {
            continue;
        }
        let params = reply.challenge(Scheme::Bearer);
        let error = params.as_ref().and_then(|p| param(p, "error"));
        let challenged: Vec<&str> = params
            .as_ref()
            .and_then(|p| param(p, "scope"))
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let missing: Vec<&str> = needed
            .iter()
            .map(String::as_str)
            .filter(|s| !challenged.contains(s))
            .collect();
        let ok = reply.status == 403 && error == Some("insufficient_scope") && missing.is_empty();
        let pointed = params
            .as_ref()
            .is_some_and(|p| param(p, "resource_metadata").is_some());
        let what = format!("needs {}", needed.join(" "));
        let detail = if ok && !pointed {
            format!(
                "{what}: 403 scope=\"{}\", but the challenge has no resource_metadata",
                challenged.join(" ")
            )
        } else if ok {
            format!("{what}: 403 scope=\"{}\"", challenged.join(" "))
        } else if reply.status == 403 && error == Some("insufficient_scope") {
            format!(
                "{what}: 403 scope=\"{}\" lacks {}: the client cannot ask for them",
                challenged.join(" "),
                missing.join(" ")
            )
        } else if reply.status == 200 {
            format!("{what}: 200: the call went through without the scopes")
        } else {
            format!(
                "{what}: {}, expected 403 insufficient_scope",
                reply.summary()
            )
        };
        let status = match (ok, pointed) {
            (false, _) => Status::Fail,
            (true, false) => Status::Warn,
            (true, true) => Status::Pass,
        };
        probe.push(&id, title, status, detail, STEP_UP_SPEC);
    }
}
