//! Reading the claims of a payload: parsed once into borrowed raw values, so claim names
//! chosen by the policy (scope, client id) cost no second parse, and duplicate claims are
//! refused (two `aud` members must not let one parser see another audience than the next).

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::error::TokenError;
use crate::json::{self, ObjectView};

/// The latest time a NumericDate may name (year 9999): keeps arithmetic far from overflow.
pub(crate) const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The claims that mark an OpenID Connect ID token (ID token `nonce`, hashes of the access
/// token, code and state): what [`Registered::id_token_claim`] looks for.
pub(crate) const ID_TOKEN_CLAIMS: [&str; 4] = ["nonce", "at_hash", "c_hash", "s_hash"];

/// The registered claims every validation reads, found in one pass over the members.
#[derive(Default)]
pub(crate) struct Registered<'a> {
    pub iss: Option<&'a RawValue>,
    pub sub: Option<&'a RawValue>,
    pub aud: Option<&'a RawValue>,
    pub exp: Option<&'a RawValue>,
    pub nbf: Option<&'a RawValue>,
    pub iat: Option<&'a RawValue>,
    pub jti: Option<&'a RawValue>,
    pub cnf: Option<&'a RawValue>,
    pub username: Option<&'a RawValue>,
    /// Whether a claim marking an OpenID Connect ID token is present (`nonce`, `at_hash`,
    /// `c_hash`, `s_hash`).
    pub id_token_claim: bool,
}

/// The members of a claims set, values still raw JSON.
pub(crate) struct ClaimsView<'a> {
    members: ObjectView<'a>,
    pub registered: Registered<'a>,
}

impl<'a> ClaimsView<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, TokenError> {
        let members = ObjectView::parse(payload).ok_or(TokenError::Malformed)?;
        let mut registered = Registered::default();
        // Names are unique (ObjectView refuses duplicates), so each slot is set at most once.
        for (name, value) in members.members() {
            let slot = match name.as_ref() {
                "iss" => &mut registered.iss,
                "sub" => &mut registered.sub,
                "aud" => &mut registered.aud,
                "exp" => &mut registered.exp,
                "nbf" => &mut registered.nbf,
                "iat" => &mut registered.iat,
                "jti" => &mut registered.jti,
                "cnf" => &mut registered.cnf,
                "username" => &mut registered.username,
                name if ID_TOKEN_CLAIMS.contains(&name) => {
                    registered.id_token_claim = true;
                    continue;
                }
                _ => continue,
            };
            *slot = Some(*value);
        }
        Ok(ClaimsView {
            members,
            registered,
        })
    }

    /// A member by name (for the names a policy chooses: client id, scopes, tenant).
    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members.get(name)
    }

    /// A string claim by name: `Ok(None)` when absent, an error when present with another
    /// type. Borrowed from the payload unless escaped.
    pub(crate) fn string(&self, name: &str) -> Result<Option<Cow<'a, str>>, TokenError> {
        string(self.get(name))
    }
}

/// A string claim: `Ok(None)` when absent, an error when present with another type.
pub(crate) fn string(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, TokenError> {
    raw.map(|raw| json::string(raw).map_err(|()| TokenError::InvalidClaim))
        .transpose()
}

/// A NumericDate claim (RFC 7519 §2): a non-negative JSON number, fractions truncated.
pub(crate) fn numeric_date(raw: Option<&RawValue>) -> Result<Option<u64>, TokenError> {
    let Some(raw) = raw else {
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

/// `cnf` (RFC 7800) as a resource server can honour it: `Ok(None)` when absent, the
/// decoded `jkt` (RFC 9449 §6.1, a base64url SHA-256 thumbprint) when that is its only
/// confirmation method. A confirmation this crate cannot verify (`x5t#S256` of mTLS, a `jwk`,
/// …) is [`TokenError::SenderConstrained`]: such a token is never accepted as a bearer token
/// either. A `cnf` that is not an object, or a `jkt` that is not 32 base64url bytes, is
/// [`TokenError::InvalidClaim`].
pub(crate) fn dpop_confirmation(raw: Option<&RawValue>) -> Result<Option<[u8; 32]>, TokenError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let view = crate::json::ObjectView::parse_raw(raw).ok_or(TokenError::InvalidClaim)?;
    if view.members().iter().any(|(name, _)| name != "jkt") {
        return Err(TokenError::SenderConstrained);
    }
    let jkt = view
        .string("jkt")
        .map_err(|()| TokenError::InvalidClaim)?
        .ok_or(TokenError::InvalidClaim)?;
    crate::crypto::base64url_32(&jkt)
        .map(Some)
        .ok_or(TokenError::InvalidClaim)
}

/// `aud`: a string or an array of strings (`Ok(None)` when absent).
pub(crate) fn audiences(raw: Option<&RawValue>) -> Result<Option<Vec<Cow<'_, str>>>, TokenError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let result = match first_byte(raw) {
        b'"' => json::string(raw).map(|aud| vec![aud]),
        b'[' => json::strings(raw),
        _ => Err(()),
    };
    result.map(Some).map_err(|()| TokenError::InvalidClaim)
}

/// The first byte of a raw value (raw values carry no leading whitespace; skipped anyway).
pub(crate) fn first_byte(raw: &RawValue) -> u8 {
    raw.get()
        .as_bytes()
        .trim_ascii_start()
        .first()
        .copied()
        .unwrap_or(0)
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
    fn each_id_token_claim_marks_an_id_token() {
        for name in ID_TOKEN_CLAIMS {
            let payload = format!(r#"{{"{name}":"x"}}"#);
            assert!(
                ClaimsView::parse(payload.as_bytes())
                    .unwrap()
                    .registered
                    .id_token_claim
            );
        }
        assert!(
            !ClaimsView::parse(br#"{"sid":"x"}"#)
                .unwrap()
                .registered
                .id_token_claim
        );
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
        assert_eq!(numeric_date(view.get("a")).unwrap(), Some(1));
        assert!(numeric_date(view.get("b")).is_err());
        assert!(numeric_date(view.get("c")).is_err());
        assert!(numeric_date(view.get("d")).is_err());
        assert_eq!(numeric_date(view.get("missing")).unwrap(), None);
    }

    #[test]
    fn registered_claims_are_found_in_one_pass_and_typed_strictly() {
        let view = ClaimsView::parse(
            br#"{"iss":"i","s\u0075b":"s","aud":["a","b"],"exp":2,"nonce":null,"x":1}"#,
        )
        .unwrap();
        let registered = &view.registered;
        assert_eq!(string(registered.iss).unwrap().as_deref(), Some("i"));
        assert_eq!(string(registered.sub).unwrap().as_deref(), Some("s"));
        assert_eq!(
            audiences(registered.aud).unwrap().unwrap(),
            ["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(numeric_date(registered.exp).unwrap(), Some(2));
        assert!(registered.id_token_claim);
        assert!(registered.jti.is_none() && registered.cnf.is_none());
        for aud in [
            &br#"{"aud":null}"#[..],
            br#"{"aud":1}"#,
            br#"{"aud":["a",1]}"#,
            br#"{"aud":{}}"#,
        ] {
            let view = ClaimsView::parse(aud).unwrap();
            assert_eq!(
                audiences(view.registered.aud),
                Err(TokenError::InvalidClaim)
            );
        }
        let view = ClaimsView::parse(br#"{"aud":[],"sub":null}"#).unwrap();
        assert_eq!(audiences(view.registered.aud), Ok(Some(vec![])));
        assert_eq!(string(view.registered.sub), Err(TokenError::InvalidClaim));
    }
}
