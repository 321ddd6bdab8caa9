//! Which tools a JSON-RPC body calls, read strictly: every call of a batch counts, duplicate
//! members are refused (a parser that takes the first `name` and one that takes the last must
//! never disagree on which tool runs), and escapes are decoded as rmcp decodes them.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::value::RawValue;

use crate::json::ObjectView;

/// One request of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    /// The JSON-RPC method.
    pub method: Cow<'a, str>,
    /// For `tools/call`, the tool's name.
    pub tool: Option<Cow<'a, str>>,
}

/// The body is not JSON-RPC we can judge: 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnreadableBody;

/// The requests (not notifications' or responses' absence of a method) of a JSON-RPC body:
/// a single message or a batch.
pub(crate) fn calls(body: &[u8]) -> Result<Vec<Call<'_>>, UnreadableBody> {
    // Only JSON's own whitespace (RFC 8259 §2): `trim_ascii_start` would also skip a form
    // feed, which serde_json (and so rmcp) refuses, and the guard must not read a body the
    // server cannot.
    let start = body
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(body.len());
    let trimmed = &body[start..];
    if trimmed.first() == Some(&b'[') {
        let items: Vec<&RawValue> = serde_json::from_slice(trimmed).map_err(|_| UnreadableBody)?;
        if items.is_empty() {
            return Err(UnreadableBody);
        }
        let mut calls = Vec::with_capacity(items.len());
        for item in items {
            if let Some(call) = call(ObjectView::parse_raw(item).ok_or(UnreadableBody)?)? {
                calls.push(call);
            }
        }
        Ok(calls)
    } else {
        Ok(call(ObjectView::parse(trimmed).ok_or(UnreadableBody)?)?
            .into_iter()
            .collect())
    }
}

fn call(message: ObjectView<'_>) -> Result<Option<Call<'_>>, UnreadableBody> {
    let Some(method) = message.string("method").map_err(|_| UnreadableBody)? else {
        return Ok(None); // a response or an error object: no method is invoked
    };
    let tool = if method == "tools/call" {
        let params = message
            .get("params")
            .and_then(ObjectView::parse_raw)
            .ok_or(UnreadableBody)?;
        let name = params
            .string("name")
            .map_err(|_| UnreadableBody)?
            .ok_or(UnreadableBody)?;
        Some(name)
    } else {
        None
    };
    Ok(Some(Call { method, tool }))
}

/// Decodes an `Mcp-Name` / `Mcp-Method` header value (SEP-2243): plain, or
/// `=?base64?<standard base64 of UTF-8>?=` for values that are not header-safe.
pub(crate) fn decode_header_value(value: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(value).ok()?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = STANDARD.decode(encoded).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(body: &str) -> Result<Vec<String>, UnreadableBody> {
        Ok(calls(body.as_bytes())?
            .into_iter()
            .filter_map(|c| c.tool.map(Cow::into_owned))
            .collect())
    }

    #[test]
    fn a_single_tool_call_names_its_tool() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_event","arguments":{}}}"#;
        assert_eq!(tools(body).unwrap(), ["create_event"]);
    }

    #[test]
    fn every_call_of_a_batch_counts() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list"}},
                      {"jsonrpc":"2.0","method":"notifications/progress","params":{}},
                      {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete"}}]"#;
        assert_eq!(tools(body).unwrap(), ["list", "delete"]);
        assert_eq!(calls(b"[]"), Err(UnreadableBody));
    }

    #[test]
    fn only_json_whitespace_may_precede_the_body() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete"}}"#;
        for ws in [" ", "\t", "\r\n", " \n\t "] {
            assert_eq!(tools(&format!("{ws}{call}")).unwrap(), ["delete"]);
            assert_eq!(tools(&format!("{ws}[{call}]")).unwrap(), ["delete"]);
        }
        // Form feed and vertical tab are not JSON whitespace: serde_json (and rmcp) refuse
        // such a body, so the guard must too (fuzz finding F1).
        for ws in ["\x0c", "\x0b", " \x0c"] {
            assert_eq!(tools(&format!("{ws}{call}")), Err(UnreadableBody));
            assert_eq!(tools(&format!("{ws}[{call}]")), Err(UnreadableBody));
        }
    }

    #[test]
    fn escapes_are_decoded_as_rmcp_decodes_them() {
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"del\u0065te"}}"#;
        assert_eq!(tools(body).unwrap(), ["delete"]);
    }

    #[test]
    fn duplicate_members_are_refused_at_every_level_read() {
        for body in [
            r#"{"method":"tools/call","method":"ping","params":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"list","name":"delete"}}"#,
            r#"{"method":"tools/call","params":{"name":"list"},"params":{"name":"delete"}}"#,
        ] {
            assert_eq!(tools(body), Err(UnreadableBody), "{body}");
        }
    }

    #[test]
    fn a_tools_call_without_a_readable_name_is_refused() {
        for body in [
            r#"{"method":"tools/call"}"#,
            r#"{"method":"tools/call","params":{}}"#,
            r#"{"method":"tools/call","params":{"name":7}}"#,
            r#"{"method":"tools/call","params":"x"}"#,
            r#"not json"#,
            r#"{"method":5}"#,
        ] {
            assert_eq!(tools(body), Err(UnreadableBody), "{body}");
        }
        assert_eq!(
            tools(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn mcp_name_may_be_base64_encoded() {
        assert_eq!(
            decode_header_value(b"create_event").unwrap(),
            "create_event"
        );
        let encoded = format!("=?base64?{}?=", STANDARD.encode("événement"));
        assert_eq!(
            decode_header_value(encoded.as_bytes()).unwrap(),
            "événement"
        );
        assert!(decode_header_value(b"=?base64?***?=").is_none());
    }
}
