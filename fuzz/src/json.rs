//! Arbitrary JSON, written as text (so duplicate members, escaped member names and broken
//! syntax reach the parsers), and a strict reader of an object's member names.

use std::fmt;

use arbitrary::Arbitrary;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// A JSON value chosen by the fuzzer; `Raw` is any text at all.
#[derive(Arbitrary, Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(Name, Json)>),
    Raw(String),
}

/// A member name, optionally with its first character written as a `\u` escape.
#[derive(Arbitrary, Debug, Clone)]
pub struct Name {
    pub text: String,
    pub escape_first: bool,
}

impl Json {
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::UInt(u) => out.push_str(&u.to_string()),
            Json::Float(f) => write_f64(out, *f),
            Json::Str(s) => write_str(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_name(out, &name.text, name.escape_first);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
            Json::Raw(text) => out.push_str(text),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// A finite float as JSON (`null` otherwise).
pub fn write_f64(out: &mut String, f: f64) {
    match serde_json::Number::from_f64(f) {
        Some(number) => out.push_str(&number.to_string()),
        None => out.push_str("null"),
    }
}

/// A JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
}

/// A member name followed by nothing (the caller writes `:`); with `escape_first`, the
/// first character is written as `\uXXXX` (a surrogate pair beyond the BMP).
pub fn write_name(out: &mut String, name: &str, escape_first: bool) {
    let mut chars = name.chars();
    match (escape_first, chars.next()) {
        (true, Some(first)) => {
            out.push('"');
            let mut units = [0u16; 2];
            for unit in first.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            let rest = serde_json::to_string(chars.as_str()).expect("a string always serializes");
            out.push_str(&rest[1..]);
        }
        _ => write_str(out, name),
    }
}

/// The member names of a JSON object, decoded, in order (duplicates kept); `None` unless
/// `bytes` is one JSON object.
pub fn object_names(bytes: &[u8]) -> Option<Vec<String>> {
    struct Names(Vec<String>);
    impl<'de> Deserialize<'de> for Names {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Names;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Names, M::Error> {
                    let mut names = Vec::new();
                    while let Some(name) = map.next_key::<String>()? {
                        map.next_value::<IgnoredAny>()?;
                        names.push(name);
                    }
                    Ok(Names(names))
                }
            }
            deserializer.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Names>(bytes).ok().map(|n| n.0)
}

/// Whether `names` has a repeated entry.
pub fn has_duplicates(names: &[String]) -> bool {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|pair| pair[0] == pair[1])
}
