//! Strict reading of JSON objects: one parse into borrowed raw members, and duplicate
//! member names refused. Two parsers that resolve a duplicate differently (first wins, last
//! wins) are how a token or a JSON-RPC body shows one thing to a check and another to the
//! code that acts on it; refusing duplicates closes that gap.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object, in order, values still raw JSON.
pub(crate) struct ObjectView<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> ObjectView<'a> {
    /// `None` unless `bytes` is one JSON object without duplicate member names.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let view: ObjectView<'a> = serde_json::from_slice(bytes).ok()?;
        view.has_unique_names().then_some(view)
    }

    /// Like [`parse`](Self::parse), for a raw value borrowed from a larger document.
    #[cfg_attr(not(feature = "layer"), allow(dead_code))]
    pub(crate) fn parse_raw(raw: &'a RawValue) -> Option<Self> {
        let view: ObjectView<'a> = serde_json::from_str(raw.get()).ok()?;
        view.has_unique_names().then_some(view)
    }

    fn has_unique_names(&self) -> bool {
        unique_names(&self.members, |(name, _)| name)
    }

    /// The members, in order.
    pub(crate) fn members(&self) -> &[(Cow<'a, str>, &'a RawValue)] {
        &self.members
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| *value)
    }

    /// A string member; `Err` when present with another type.
    pub(crate) fn string(&self, name: &str) -> Result<Option<Cow<'a, str>>, ()> {
        self.get(name).map(string).transpose()
    }
}

/// Whether no two of `items` have the same name (names compared after escapes are decoded).
pub(crate) fn unique_names<T>(items: &[T], name: impl Fn(&T) -> &str) -> bool {
    // Claims sets, JOSE headers and JSON-RPC messages have a dozen members or so: comparing
    // each pair costs less than sorting a copy of the names (and allocates nothing).
    const PAIRWISE_UP_TO: usize = 24;
    if items.len() <= PAIRWISE_UP_TO {
        return items
            .iter()
            .enumerate()
            .all(|(i, item)| items[i + 1..].iter().all(|other| name(other) != name(item)));
    }
    let mut names: Vec<&str> = items.iter().map(name).collect();
    names.sort_unstable();
    !names.windows(2).any(|pair| pair[0] == pair[1])
}

/// A raw JSON value that must be a string: borrowed from the document unless it contains
/// escapes. `Err` for any other type.
pub(crate) fn string<'a>(raw: &'a RawValue) -> Result<Cow<'a, str>, ()> {
    serde_json::from_str::<JsonStr<'a>>(raw.get())
        .map(|JsonStr(value)| value)
        .map_err(|_| ())
}

/// A raw JSON value that must be an array of strings, each borrowed unless escaped.
pub(crate) fn strings<'a>(raw: &'a RawValue) -> Result<Vec<Cow<'a, str>>, ()> {
    serde_json::from_str::<Vec<JsonStr<'a>>>(raw.get())
        .map(|items| items.into_iter().map(|JsonStr(value)| value).collect())
        .map_err(|_| ())
}

impl<'de: 'a, 'a> Deserialize<'de> for ObjectView<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = ObjectView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(ObjectView { members })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A JSON string (a member name or a value), borrowed from the document unless it contains
/// escapes; any other value is an error.
pub(crate) struct JsonStr<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_even_through_escapes_are_refused() {
        assert!(ObjectView::parse(br#"{"a":1,"b":2}"#).is_some());
        assert!(ObjectView::parse(br#"{"a":1,"a":2}"#).is_none());
        assert!(ObjectView::parse(br#"{"a":1,"\u0061":2}"#).is_none());
        assert!(ObjectView::parse(br#"[1]"#).is_none());
        let view = ObjectView::parse(br#"{"name":"tool\u002dx","n":1}"#).unwrap();
        assert_eq!(view.string("name").unwrap().as_deref(), Some("tool-x"));
        assert!(view.string("n").is_err());
    }
}
