//! Which tools a JSON-RPC body calls, read strictly: every call of a batch counts, duplicate
//! members are refused (a parser that takes the first `name` and one that takes the last must
//! never disagree on which tool runs), and escapes are decoded as rmcp decodes them.
//!
//! One pass over the body: each message is read member by member, and `params.name` in the
//! same pass when `method` came before `params` (as every client writes it), so a large tool
//! argument is scanned once. When `params` comes first, it is kept as raw JSON and read once
//! more if `method` turns out to be `tools/call`. Either way the result is the one of reading
//! every message, and its `params`, as an object of raw members: the values nobody reads are
//! skipped with serde_json's own syntax check (the one behind `RawValue`), member names and the
//! strings read are decoded by serde_json, and a duplicate member name (after decoding) in a
//! message or in the `params` of a `tools/call` refuses the body.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::json::{JsonStr, ObjectView, unique_names};
use crate::operations::{COMPLETE, Operation, Reference, Target};

/// One request of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    /// The JSON-RPC method.
    pub method: Cow<'a, str>,
    /// For a named operation ([`target_member`]), what it names: the tool, the prompt, the
    /// resource URI or the task id.
    pub name: Option<Cow<'a, str>>,
    /// For `completion/complete`, what its `params.ref` names.
    pub reference: Option<CallReference<'a>>,
}

/// A `completion/complete` request's `params.ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallReference<'a> {
    /// `ref/prompt`: the prompt's name.
    Prompt(Cow<'a, str>),
    /// `ref/resource`: the URI or URI template.
    Resource(Cow<'a, str>),
}

impl Call<'_> {
    /// For `tools/call`, the tool's name.
    pub(crate) fn tool(&self) -> Option<&str> {
        match self.operation().target {
            Target::Tool(tool) => Some(tool),
            _ => None,
        }
    }

    /// The operation, as access sees it.
    pub(crate) fn operation(&self) -> Operation<'_> {
        let reference = self.reference.as_ref().map(|reference| match reference {
            CallReference::Prompt(name) => Reference::Prompt(name),
            CallReference::Resource(uri) => Reference::Resource(uri),
        });
        Operation::from_jsonrpc(&self.method, self.name.as_deref(), reference)
    }
}

pub(crate) use crate::operations::{name_member, target_member};

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
    // Every body the guard accepts is UTF-8: each byte is JSON punctuation or whitespace, or
    // lies in a name or value serde_json decodes or keeps as `RawValue` (both check UTF-8).
    // Skipping a value with `IgnoredAny` over bytes would not check it, so the whole body is
    // checked here, once, and read as text.
    let text = std::str::from_utf8(trimmed).map_err(|_| UnreadableBody)?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let calls = if text.starts_with('[') {
        let Batch(calls) = Batch::deserialize(&mut reader).map_err(|_| UnreadableBody)?;
        calls
    } else {
        let Message(call) = Message::deserialize(&mut reader).map_err(|_| UnreadableBody)?;
        call.into_iter().collect()
    };
    reader.end().map_err(|_| UnreadableBody)?;
    Ok(calls)
}

/// A non-empty array of messages, read as [`Message`]s.
struct Batch<'a>(Vec<Call<'a>>);

impl<'de> Deserialize<'de> for Batch<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BatchVisitor;
        impl<'de> Visitor<'de> for BatchVisitor {
            type Value = Batch<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a batch of JSON-RPC messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut calls = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                let mut messages = 0usize;
                while let Some(Message(call)) = seq.next_element::<Message<'de>>()? {
                    messages += 1;
                    calls.extend(call);
                }
                if messages == 0 {
                    return Err(de::Error::custom("an empty batch"));
                }
                Ok(Batch(calls))
            }
        }
        deserializer.deserialize_seq(BatchVisitor)
    }
}

/// One message: its call, or `None` for a response (no `method`).
struct Message<'a>(Option<Call<'a>>);

/// What a message's `params` was, as far as it had to be read.
enum Params<'a> {
    Absent,
    /// Read after a named method's `method`: what it names.
    Named(Cow<'a, str>),
    /// Read after another method: skipped.
    Skipped,
    /// Read before any `method`: kept raw, to be read if the method is a named one.
    Raw(&'a RawValue),
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = Message<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut names = Names::default();
                let mut method: Option<Cow<'de, str>> = None;
                let mut params = Params::Absent;
                while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
                    match &*name {
                        "method" => method = Some(map.next_value::<JsonStr<'de>>()?.0),
                        "params" => {
                            params = match method.as_deref().map(target_member) {
                                Some(Some(member)) => {
                                    Params::Named(map.next_value_seed(NamedParams { member })?)
                                }
                                // A completion's `ref` is read once the message is.
                                Some(None) if method.as_deref() == Some(COMPLETE) => {
                                    Params::Raw(map.next_value::<&'de RawValue>()?)
                                }
                                Some(None) => {
                                    map.next_value::<IgnoredAny>()?;
                                    Params::Skipped
                                }
                                None => Params::Raw(map.next_value::<&'de RawValue>()?),
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    names.push(name);
                }
                names.refuse_duplicates()?;
                let Some(method) = method else {
                    return Ok(Message(None)); // a response or an error object: no method is invoked
                };
                let reference =
                    if method == COMPLETE {
                        let Params::Raw(raw) = &params else {
                            return Err(de::Error::custom("a completion without params"));
                        };
                        Some(completion_reference(raw).ok_or_else(|| {
                            de::Error::custom("a completion without a readable ref")
                        })?)
                    } else {
                        None
                    };
                let name = match target_member(&method) {
                    Some(member) => Some(match params {
                        Params::Named(name) => name,
                        // `params` before `method`: read again, as an object of raw members.
                        Params::Raw(raw) => ObjectView::parse_raw(raw)
                            .and_then(|params| params.string(member).ok().flatten())
                            .ok_or_else(|| de::Error::custom("unreadable name in params"))?,
                        // `Skipped` follows another method: a duplicate, refused above.
                        Params::Absent | Params::Skipped => {
                            return Err(de::Error::custom("a named operation without params"));
                        }
                    }),
                    None => None,
                };
                Ok(Message(Some(Call {
                    method,
                    name,
                    reference,
                })))
            }
        }
        deserializer.deserialize_map(MessageVisitor)
    }
}

/// A completion's `params.ref`: `{"type": "ref/prompt", "name": …}` or
/// `{"type": "ref/resource", "uri": …}`, objects without duplicate members; anything else
/// (another type included) is unreadable, as rmcp would refuse it.
fn completion_reference(params: &RawValue) -> Option<CallReference<'_>> {
    let params = ObjectView::parse_raw(params)?;
    let reference = ObjectView::parse_raw(params.get("ref")?)?;
    match reference.string("type").ok()??.as_ref() {
        "ref/prompt" => Some(CallReference::Prompt(reference.string("name").ok()??)),
        "ref/resource" => Some(CallReference::Resource(reference.string("uri").ok()??)),
        _ => None,
    }
}

/// The `params` of a named operation: an object with a string `member`, no duplicate members.
struct NamedParams {
    member: &'static str,
}

impl<'de> de::DeserializeSeed<'de> for NamedParams {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NamedParams {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "params with a string `{}`", self.member)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut names = Names::default();
        let mut named = None;
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            if name == self.member {
                named = Some(map.next_value::<JsonStr<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            names.push(name);
        }
        names.refuse_duplicates()?;
        named.ok_or_else(|| de::Error::custom("a named operation without its name"))
    }
}

/// The member names of one object, to refuse duplicates once it is read.
#[derive(Default)]
struct Names<'a>(Vec<Cow<'a, str>>);

impl<'a> Names<'a> {
    fn push(&mut self, name: Cow<'a, str>) {
        self.0.push(name);
    }

    fn refuse_duplicates<E: de::Error>(self) -> Result<(), E> {
        if unique_names(&self.0, |name| name) {
            Ok(())
        } else {
            Err(E::custom("duplicate member"))
        }
    }
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
            .filter_map(|c| c.tool().map(str::to_owned))
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
    fn a_completion_names_its_reference_and_an_unreadable_one_is_refused() {
        fn reference(body: &str) -> Result<Vec<Option<CallReference<'_>>>, UnreadableBody> {
            calls(body.as_bytes()).map(|calls| calls.into_iter().map(|c| c.reference).collect())
        }
        assert_eq!(
            reference(
                r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"plan"},"argument":{"name":"a","value":"b"}}}"#
            ),
            Ok(vec![Some(CallReference::Prompt("plan".into()))])
        );
        assert_eq!(
            reference(
                r#"{"params":{"ref":{"uri":"cal://{day}","type":"ref/resource"}},"method":"completion/complete"}"#
            ),
            Ok(vec![Some(CallReference::Resource("cal://{day}".into()))])
        );
        for body in [
            r#"{"method":"completion/complete"}"#,
            r#"{"method":"completion/complete","params":{}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}"#,
        ] {
            assert_eq!(reference(body), Err(UnreadableBody), "{body}");
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

    /// The two-pass reading this module replaced (every message, then the `params` of each
    /// `tools/call`, parsed into raw members): the one-pass reader must agree with it on every
    /// body, accepted or refused.
    fn two_pass(body: &[u8]) -> Result<Vec<Call<'_>>, UnreadableBody> {
        fn call(message: ObjectView<'_>) -> Result<Option<Call<'_>>, UnreadableBody> {
            let Some(method) = message.string("method").map_err(|_| UnreadableBody)? else {
                return Ok(None);
            };
            let name = match target_member(&method) {
                Some(member) => {
                    let params = message
                        .get("params")
                        .and_then(ObjectView::parse_raw)
                        .ok_or(UnreadableBody)?;
                    let name = params
                        .string(member)
                        .map_err(|_| UnreadableBody)?
                        .ok_or(UnreadableBody)?;
                    Some(name)
                }
                None => None,
            };
            let reference = if method == COMPLETE {
                Some(
                    message
                        .get("params")
                        .and_then(completion_reference)
                        .ok_or(UnreadableBody)?,
                )
            } else {
                None
            };
            Ok(Some(Call {
                method,
                name,
                reference,
            }))
        }
        let start = body
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(body.len());
        let trimmed = &body[start..];
        if trimmed.first() == Some(&b'[') {
            let items: Vec<&RawValue> =
                serde_json::from_slice(trimmed).map_err(|_| UnreadableBody)?;
            if items.is_empty() {
                return Err(UnreadableBody);
            }
            let mut calls = Vec::new();
            for item in items {
                calls.extend(call(ObjectView::parse_raw(item).ok_or(UnreadableBody)?)?);
            }
            Ok(calls)
        } else {
            Ok(call(ObjectView::parse(trimmed).ok_or(UnreadableBody)?)?
                .into_iter()
                .collect())
        }
    }

    #[test]
    fn one_pass_reads_what_two_passes_read() {
        let bodies: &[&[u8]] = &[
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,2,{"b":null}]}}}"#,
            // `params` before `method`, and other orders.
            br#"{"params":{"name":"x"},"method":"tools/call","id":1}"#,
            br#"{"params":{"name":"x","name":"y"},"method":"tools/call"}"#,
            br#"{"params":{"arguments":{}},"method":"tools/call"}"#,
            br#"{"params":[1],"method":"tools/call"}"#,
            br#"{"params":{"name":"a"},"method":"tools/call","params":{"name":"b"}}"#,
            br#"{"method":"tools/call","params":{"name":"a"},"method":"tools/call"}"#,
            br#"{"method":"ping","params":{"name":"a"},"method":"tools/call"}"#,
            br#"{"method":"tools/call","params":{"name":"a"},"\u006dethod":"ping"}"#,
            br#"{"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}"#,
            br#"{"method":"tools/call","params":{"\u006eame":"d\u00e9l"}}"#,
            // Only the `params` of a tools/call are read: others may hold anything JSON.
            br#"{"method":"ping","params":{"a":1,"a":2}}"#,
            br#"{"params":{"a":1,"a":2},"method":"ping"}"#,
            br#"{"method":"ping","params":"x"}"#,
            br#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#,
            br#"{"params":{"ref":{"type":"ref/resource","uri":"u:{x}"}},"method":"completion/complete"}"#,
            br#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt"},"ref":{}}}"#,
            br#"{"method":"completion/complete","params":[]}"#,
            br#"{"method":"tools/call","params":{"name":"x"},"extra":{"a":1,"a":2}}"#,
            br#"{"method":"tools/call","params":{"name":"x","arguments":{"a":1,"a":2}}}"#,
            // Values nobody decodes: serde_json's syntax check, as for `RawValue`.
            br#"{"method":"ping","params":1e400}"#,
            br#"{"method":"tools/call","params":{"name":"x","arguments":"\udaaa"}}"#,
            br#"{"method":"tools/call","params":{"name":"\udaaa"}}"#,
            br#"{"method":"ping","params":[1,]}"#,
            br#"{"method":"ping","params":01}"#,
            br#"{"method":"ping","params":"a\u00"}"#,
            b"{\"method\":\"ping\",\"params\":\"\xff\"}",
            b"{\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"a\":\"\xc3\"}}",
            b"[{\"method\":\"ping\",\"x\":\"\xff\"}]",
            b"{\"method\":\"ping\"}\xff",
            b"{\"method\":\"ping\",\"params\":\"tab\there\"}",
            // Batches.
            br#"[{"method":"tools/call","params":{"name":"a"}},{"id":1,"result":{}},{"method":"tools/call","params":{"name":"b"}}]"#,
            br#"[{"id":1,"result":{}}]"#,
            br#"[]"#,
            br#"[1]"#,
            br#"[{"method":"ping"},]"#,
            br#"[{"method":"ping"}] x"#,
            br#"[[{"method":"ping"}]]"#,
            // Not messages, and trailing content.
            br#"{"method":"ping"} {"method":"ping"}"#,
            br#"{"method":"ping"}  "#,
            br#"{"method":"ping""#,
            br#""tools/call""#,
            br#"null"#,
            b"",
            b"  ",
            br#"{"method":null}"#,
            br#"{"id":1}"#,
            br#"{"method":"tools/call","params":{"name":null}}"#,
            // Every named operation, by its own member.
            br#"{"method":"prompts/get","params":{"name":"standup","arguments":{}}}"#,
            br#"{"params":{"name":"standup"},"method":"prompts/get"}"#,
            br#"{"method":"prompts/get","params":{"name":"a","name":"b"}}"#,
            br#"{"method":"resources/read","params":{"uri":"cal://events/1"}}"#,
            br#"{"method":"resources/read","params":{"name":"x"}}"#,
            br#"{"params":{"uri":"cal://x"},"method":"resources/subscribe"}"#,
            br#"{"method":"tasks/get","params":{"taskId":"t-1"}}"#,
            br#"{"method":"tasks/cancel","params":{"taskId":7}}"#,
            br#"{"method":"tasks/update","params":{"taskId":"a","task\u0049d":"b"}}"#,
        ];
        for body in bodies {
            assert_eq!(
                calls(body),
                two_pass(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Deep nesting inside a skipped value is not limited (as for `RawValue`).
        let deep = format!(
            r#"{{"method":"tools/call","params":{{"name":"x","arguments":{}1{}}}}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        );
        assert_eq!(calls(deep.as_bytes()), two_pass(deep.as_bytes()));
        assert!(calls(deep.as_bytes()).is_ok());
    }

    #[test]
    fn every_named_operation_names_what_it_operates_on() {
        let named = |body: &str| -> Vec<(String, Option<String>)> {
            calls(body.as_bytes())
                .unwrap()
                .into_iter()
                .map(|c| (c.method.into_owned(), c.name.map(Cow::into_owned)))
                .collect()
        };
        assert_eq!(
            named(r#"{"method":"prompts/get","params":{"name":"standup"}}"#),
            [("prompts/get".to_owned(), Some("standup".to_owned()))]
        );
        assert_eq!(
            named(r#"{"method":"resources/read","params":{"uri":"cal://e/1","name":"x"}}"#),
            [("resources/read".to_owned(), Some("cal://e/1".to_owned()))]
        );
        assert_eq!(
            named(r#"{"params":{"taskId":"t"},"method":"tasks/get"}"#),
            [("tasks/get".to_owned(), Some("t".to_owned()))]
        );
        assert_eq!(
            named(r#"{"method":"tools/list","params":{}}"#),
            [("tools/list".to_owned(), None)]
        );
        for refused in [
            r#"{"method":"prompts/get","params":{}}"#,
            r#"{"method":"resources/read"}"#,
            r#"{"method":"tasks/cancel","params":{"taskId":1}}"#,
            r#"{"method":"tasks/get","params":{"taskId":"a","taskId":"b"}}"#,
        ] {
            assert_eq!(calls(refused.as_bytes()), Err(UnreadableBody), "{refused}");
        }
    }

    #[test]
    fn a_large_argument_is_read() {
        let argument = "x".repeat(64 * 1024);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"upload","arguments":{{"data":"{argument}"}}}}}}"#
        );
        assert_eq!(tools(&body).unwrap(), ["upload"]);
        assert_eq!(calls(body.as_bytes()), two_pass(body.as_bytes()));
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
