//! Reading the claims of a payload: parsed once into borrowed raw values, so claim names
//! chosen by the policy (scope, client id) cost no second parse, and duplicate claims are
//! refused (two `aud` members must not let one parser see another audience than the next).

use serde_json::value::RawValue;

use super::error::TokenError;
use crate::json::ObjectView;

/// The latest time a NumericDate may name (year 9999): keeps arithmetic far from overflow.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The members of a claims set, values still raw JSON.
pub(crate) struct ClaimsView<'a>(ObjectView<'a>);

impl<'a> ClaimsView<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, TokenError> {
        ObjectView::parse(payload)
            .map(ClaimsView)
            .ok_or(TokenError::Malformed)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.get(name).is_some()
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
