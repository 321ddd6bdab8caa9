//! The token request of each grant, and the reading of the authorization server's answer:
//! RFC 8693 token exchange, and Microsoft Entra ID's on-behalf-of flow.

use std::time::Duration;

use serde_json::Value;

use super::{ExchangeError, Grant, Target};
use crate::json::ObjectView;

/// RFC 8693 §3: the token type of an OAuth 2.0 access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT (some servers name the issued access token so).
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §2.1.
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 §2.1, the grant Entra's on-behalf-of flow uses.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The form parameters of the token request (client authentication comes on top).
pub(crate) fn form(
    grant: Grant,
    subject_token: &str,
    target: &Target,
    actor: Option<&(String, String)>,
) -> url::form_urlencoded::Serializer<'static, String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::TokenExchange => {
            form.append_pair("grant_type", TOKEN_EXCHANGE_GRANT)
                .append_pair("subject_token", subject_token)
                .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
                .append_pair("requested_token_type", ACCESS_TOKEN_TYPE);
            for audience in &target.audiences {
                form.append_pair("audience", audience);
            }
            for resource in &target.resources {
                form.append_pair("resource", resource);
            }
            if !target.scopes.is_empty() {
                form.append_pair("scope", &target.scopes.join(" "));
            }
            if let Some((token, token_type)) = actor {
                form.append_pair("actor_token", token)
                    .append_pair("actor_token_type", token_type);
            }
        }
        Grant::EntraOnBehalfOf => {
            form.append_pair("grant_type", JWT_BEARER_GRANT)
                .append_pair("assertion", subject_token)
                .append_pair("requested_token_use", "on_behalf_of")
                .append_pair("scope", &entra_scope(target));
        }
    }
    form
}

/// Entra names the downstream API through the scopes: `api://…/Events.Read`, or
/// `https://graph.microsoft.com/.default`. A scope already naming its API is sent as is,
/// a short one is prefixed with the target's audience, and no scope asks for the
/// audience's `.default` (every permission consented to).
fn entra_scope(target: &Target) -> String {
    let audience = target.name().trim_end_matches('/');
    if target.scopes.is_empty() {
        return format!("{audience}/.default");
    }
    target
        .scopes
        .iter()
        .map(|scope| {
            if scope.contains("://") {
                scope.clone()
            } else {
                format!("{audience}/{scope}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A token the authorization server issued, read from a 200 answer (no `Debug`: it holds
/// the token).
pub(crate) struct Issued {
    pub(crate) access_token: String,
    /// `expires_in`, when given.
    pub(crate) expires_in: Option<Duration>,
    /// The token's own `exp` when it is a JWT that says (read, not verified: the token is
    /// the downstream API's to verify).
    pub(crate) jwt_expires_at: Option<u64>,
    /// The granted scopes (`scope`), when given.
    pub(crate) scopes: Option<Vec<String>>,
    /// The JWT's `act` claim as compact JSON.
    pub(crate) act: Option<String>,
}

/// Reads a 200 answer. Refuses what this exchanger cannot use safely: no token, a token
/// type other than an access token, a sender-constrained (`DPoP`) token it holds no key
/// for, or the subject token handed back (passing it on would be token passthrough).
pub(crate) fn issued(body: &[u8], subject_token: &str) -> Result<Issued, ExchangeError> {
    let invalid = |why: &str| ExchangeError::InvalidResponse(why.to_owned());
    let document: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the token response is not JSON"))?;
    let access_token = document
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| invalid("the token response has no access_token"))?;
    if access_token == subject_token {
        return Err(invalid(
            "the authorization server handed the incoming token back; it is never passed on",
        ));
    }
    if let Some(issued_type) = document.get("issued_token_type") {
        let issued_type = issued_type.as_str().unwrap_or_default();
        if issued_type != ACCESS_TOKEN_TYPE && issued_type != JWT_TYPE {
            return Err(invalid("the issued token is not an access token"));
        }
    }
    match document.get("token_type").and_then(Value::as_str) {
        Some(kind) if kind.eq_ignore_ascii_case("bearer") || kind.eq_ignore_ascii_case("n_a") => {}
        Some(kind) if kind.eq_ignore_ascii_case("dpop") => {
            return Err(invalid(
                "the issued token is DPoP-bound and this exchanger holds no DPoP key",
            ));
        }
        _ => return Err(invalid("the token response has no usable token_type")),
    }
    let expires_in = match document.get("expires_in") {
        None => None,
        // Entra sent strings once; both are read.
        Some(value) => Some(
            value
                .as_u64()
                .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
                .map(Duration::from_secs)
                .ok_or_else(|| invalid("expires_in is not a number of seconds"))?,
        ),
    };
    let scopes = document.get("scope").and_then(Value::as_str).map(|scope| {
        scope
            .split(' ')
            .filter(|s| crate::scopes::is_valid_scope_token(s))
            .map(str::to_owned)
            .collect()
    });
    let claims = jwt_payload(access_token);
    let (jwt_expires_at, act) = match &claims {
        Some(bytes) => match ObjectView::parse(bytes) {
            Some(view) => (
                view.get("exp")
                    .and_then(|raw| serde_json::from_str::<u64>(raw.get()).ok()),
                view.get("act").map(|raw| compact(raw.get())),
            ),
            None => (None, None),
        },
        None => (None, None),
    };
    Ok(Issued {
        access_token: access_token.to_owned(),
        expires_in,
        jwt_expires_at,
        scopes,
        act,
    })
}

/// The payload of a compact JWS, if `token` is one.
fn jwt_payload(token: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
}

/// A JSON value re-serialized without insignificant whitespace.
fn compact(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| raw.to_owned())
}

/// An RFC 6749 §5.2 error answer: its `error` and `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) error: String,
    pub(crate) description: Option<String>,
}

/// Reads an error answer; `None` when the body is not one.
pub(crate) fn oauth_error(body: &[u8]) -> Option<OAuthError> {
    let document: Value = serde_json::from_slice(body).ok()?;
    let error = document.get("error")?.as_str()?;
    // The code is a stable identifier (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E); keep
    // anything else out of logs and tool errors.
    if error.is_empty()
        || error.len() > 64
        || !error
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return None;
    }
    // RFC 6749 §5.2's characters only (no control, bidi or invisible characters), bounded:
    // the text is the server's, and lands in logs.
    let description = document
        .get("error_description")
        .and_then(Value::as_str)
        .map(|text| {
            text.chars()
                .filter(|c| matches!(*c, ' '..='!' | '#'..='[' | ']'..='~'))
                .take(300)
                .collect()
        });
    Some(OAuthError {
        error: error.to_owned(),
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::audience("https://api.example.com").scopes(["events:read", "events:write"])
    }

    fn decoded(form: url::form_urlencoded::Serializer<'static, String>) -> Vec<(String, String)> {
        let mut form = form;
        url::form_urlencoded::parse(form.finish().as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn rfc8693_request_names_the_subject_the_audience_and_the_scopes() {
        let actor = ("actor.jwt".to_owned(), ACCESS_TOKEN_TYPE.to_owned());
        let pairs = decoded(form(
            Grant::TokenExchange,
            "in.co.ming",
            &target(),
            Some(&actor),
        ));
        let get = |name: &str| {
            pairs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("grant_type"), [TOKEN_EXCHANGE_GRANT]);
        assert_eq!(get("subject_token"), ["in.co.ming"]);
        assert_eq!(get("subject_token_type"), [ACCESS_TOKEN_TYPE]);
        assert_eq!(get("audience"), ["https://api.example.com"]);
        assert!(get("resource").is_empty());
        assert_eq!(get("scope"), ["events:read events:write"]);
        assert_eq!(get("actor_token"), ["actor.jwt"]);
    }

    #[test]
    fn entra_on_behalf_of_names_the_api_through_the_scopes() {
        let pairs = decoded(form(Grant::EntraOnBehalfOf, "in.co.ming", &target(), None));
        assert!(pairs.contains(&("grant_type".into(), JWT_BEARER_GRANT.into())));
        assert!(pairs.contains(&("assertion".into(), "in.co.ming".into())));
        assert!(pairs.contains(&("requested_token_use".into(), "on_behalf_of".into())));
        assert!(pairs.contains(&(
            "scope".into(),
            "https://api.example.com/events:read https://api.example.com/events:write".into()
        )));
        let graph = Target::audience("https://graph.microsoft.com");
        let pairs = decoded(form(Grant::EntraOnBehalfOf, "t", &graph, None));
        assert!(pairs.contains(&(
            "scope".into(),
            "https://graph.microsoft.com/.default".into()
        )));
        let full = Target::audience("api://calendar").scopes(["api://calendar/Events.Read"]);
        let pairs = decoded(form(Grant::EntraOnBehalfOf, "t", &full, None));
        assert!(pairs.contains(&("scope".into(), "api://calendar/Events.Read".into())));
    }

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        format!("{}.{}.sig", encode(r#"{"alg":"ES256"}"#), encode(claims))
    }

    #[test]
    fn an_issued_token_yields_its_lifetime_scopes_and_act() {
        let token = jwt(r#"{"exp":1900000000,"act":{ "sub" : "calendar-server" }}"#);
        let body = serde_json::json!({
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "events:read",
        });
        let issued = issued(body.to_string().as_bytes(), "in.co.ming").unwrap();
        assert_eq!(issued.expires_in, Some(Duration::from_secs(300)));
        assert_eq!(issued.jwt_expires_at, Some(1_900_000_000));
        assert_eq!(issued.scopes, Some(vec!["events:read".to_owned()]));
        assert_eq!(issued.act.as_deref(), Some(r#"{"sub":"calendar-server"}"#));
    }

    #[test]
    fn unusable_answers_are_refused() {
        let cases = [
            (
                serde_json::json!({"token_type": "Bearer"}),
                "no access_token",
            ),
            (
                serde_json::json!({"access_token": "in.co.ming", "token_type": "Bearer"}),
                "handed the incoming token back",
            ),
            (
                serde_json::json!({"access_token": "x", "token_type": "DPoP"}),
                "DPoP-bound",
            ),
            (
                serde_json::json!({"access_token": "x", "token_type": "Bearer",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}),
                "not an access token",
            ),
            (
                serde_json::json!({"access_token": "x", "token_type": "Bearer", "expires_in": -5}),
                "expires_in",
            ),
            (serde_json::json!({"access_token": "x"}), "token_type"),
        ];
        for (body, why) in cases {
            match issued(body.to_string().as_bytes(), "in.co.ming") {
                Err(ExchangeError::InvalidResponse(text)) => assert!(text.contains(why), "{text}"),
                Err(other) => panic!("{body}: {other:?}"),
                Ok(_) => panic!("{body}: accepted"),
            }
        }
        assert!(issued(b"<html>", "x").is_err());
    }

    #[test]
    fn error_answers_keep_a_clean_code_and_a_bounded_description() {
        let error =
            oauth_error(br#"{"error":"invalid_target","error_description":"no such\naudience"}"#)
                .unwrap();
        assert_eq!(error.error, "invalid_target");
        assert_eq!(error.description.as_deref(), Some("no suchaudience"));
        assert_eq!(oauth_error(br#"{"error":"bad \"code\""}"#), None);
        assert_eq!(oauth_error(b"not json"), None);
    }
}
