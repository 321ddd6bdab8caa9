//! Reading the claims of a payload: parsed once into borrowed raw values, so claim names
//! chosen by the policy (scope, client id) cost no second parse, and duplicate claims are
//! refused (two `aud` members must not let one parser see another audience than the next).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::TokenError;

/// The latest time a NumericDate may name (year 9999): keeps arithmetic far from overflow.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The members of a claims set, in order, values still raw JSON.
pub(crate) struct ClaimsView<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> ClaimsView<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, TokenError> {
        let view: ClaimsView<'a> =
            serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
        let mut names: Vec<&str> = view.members.iter().map(|(name, _)| name.as_ref()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(TokenError::Malformed);
        }
        Ok(view)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| *value)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A string claim: `Ok(None)` when absent, an error when present with another type.
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, TokenError> {
        self.get(name)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get()).map_err(|_| TokenError::InvalidClaim)
            })
            .transpose()
    }

    /// A NumericDate claim (RFC 7519 §2): a non-negative JSON number, fractions truncated.
    pub(crate) fn numeric_date(&self, name: &str) -> Result<Option<u64>, TokenError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let number: serde_json::Number =
            serde_json::from_str(raw.get()).map_err(|_| TokenError::InvalidClaim)?;
        let seconds = match (number.as_u64(), number.as_f64()) {
            (Some(seconds), _) => seconds,
            (None, Some(seconds)) if seconds.is_finite() && seconds >= 0.0 => seconds as u64,
            _ => return Err(TokenError::InvalidClaim),
        };
        if seconds > MAX_NUMERIC_DATE {
            return Err(TokenError::InvalidClaim);
        }
        Ok(Some(seconds))
    }

    /// `aud`: a string or a non-empty array of strings.
    pub(crate) fn audiences(&self) -> Result<Option<Vec<String>>, TokenError> {
        let Some(raw) = self.get("aud") else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Audience {
            One(String),
            Many(Vec<String>),
        }
        match serde_json::from_str::<Audience>(raw.get()) {
            Ok(Audience::One(aud)) => Ok(Some(vec![aud])),
            Ok(Audience::Many(auds)) => Ok(Some(auds)),
            Err(_) => Err(TokenError::InvalidClaim),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ClaimsView<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = ClaimsView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(MemberName(name)) = map.next_key::<MemberName<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(ClaimsView { members })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A member name, borrowed from the payload unless it contains escapes.
struct MemberName<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Whether `presented` (an `aud` value) names `configured` (our resource): scheme and host
/// compared case-insensitively (RFC 3986 §6.2.2.1), the rest exactly. Identifiers that are
/// not URLs (Entra's App ID GUIDs, `api://…`) compare exactly, apart from the scheme.
pub(crate) fn audience_matches(configured: &str, presented: &str) -> bool {
    match (split_url(configured), split_url(presented)) {
        (Some((scheme_a, authority_a, rest_a)), Some((scheme_b, authority_b, rest_b))) => {
            scheme_a.eq_ignore_ascii_case(scheme_b)
                && authority_a.eq_ignore_ascii_case(authority_b)
                && rest_a == rest_b
        }
        _ => configured == presented,
    }
}

fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_scheme_and_host_are_case_insensitive_path_is_not() {
        let ours = "https://mcp.example.com/mcp";
        assert!(audience_matches(ours, "HTTPS://MCP.EXAMPLE.COM/mcp"));
        assert!(!audience_matches(ours, "https://mcp.example.com/MCP"));
        assert!(!audience_matches(ours, "https://mcp.example.com/mcp/"));
        assert!(!audience_matches(ours, "https://mcp.example.com.evil/mcp"));
        assert!(audience_matches("api://1234", "api://1234"));
        assert!(audience_matches("00000000-aaaa", "00000000-aaaa"));
        assert!(!audience_matches("00000000-aaaa", "00000000-AAAA"));
    }

    #[test]
    fn duplicate_claims_are_malformed() {
        let payload = br#"{"aud":"a","aud":"b"}"#;
        assert!(matches!(
            ClaimsView::parse(payload),
            Err(TokenError::Malformed)
        ));
        let escaped = br#"{"aud":"a","\u0061ud":"b"}"#;
        assert!(matches!(
            ClaimsView::parse(escaped),
            Err(TokenError::Malformed)
        ));
    }

    #[test]
    fn numeric_dates_accept_fractions_and_refuse_negatives_and_strings() {
        let view = ClaimsView::parse(br#"{"a":1.9,"b":-1,"c":"1","d":1e300}"#).unwrap();
        assert_eq!(view.numeric_date("a").unwrap(), Some(1));
        assert!(view.numeric_date("b").is_err());
        assert!(view.numeric_date("c").is_err());
        assert!(view.numeric_date("d").is_err());
        assert_eq!(view.numeric_date("missing").unwrap(), None);
    }
}
