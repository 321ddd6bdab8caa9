//! The `Authorization` header parser (RFC 6750 §2.1, and the `DPoP` scheme of RFC 9449 §7.1),
//! against an independent model.
//!
//! The input is split at `\n` into header values (each a candidate `Authorization` header;
//! values `http` refuses are skipped, as a server never receives them).

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use mcp_oauth::__fuzz::bearer_credentials;

pub fn run(data: &[u8]) {
    let mut headers = HeaderMap::new();
    let mut values: Vec<&[u8]> = Vec::new();
    for value in data.split(|&b| b == b'\n') {
        if let Ok(header) = HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, header);
            values.push(value);
        }
    }
    // Another header must not matter.
    headers.append("x-authorization", HeaderValue::from_static("Bearer other"));
    let actual = bearer_credentials(&headers);
    let expected = model(&values);
    assert_eq!(
        actual.map(|c| c.map(|t| t.map(|(scheme, token)| (scheme, token.to_owned())))),
        expected,
        "values {values:?}"
    );
    if let Ok(Some(Some((_, token)))) = actual {
        // The token is the end of the one header value, and a token68.
        let value = std::str::from_utf8(values[0]).expect("checked by the model");
        assert!(value.ends_with(token));
        assert!(!token.is_empty() && !token.contains([' ', '\t', ',', '"']));
    }
}

/// RFC 6750 §2.1 and RFC 7235 §2.1, as the parser documents them: one header at most; the
/// scheme is everything before the first space, compared case-insensitively; then any number
/// of spaces and a token68; a value that is not visible ASCII is malformed.
fn model(values: &[&[u8]]) -> Result<Option<Option<(&'static str, String)>>, &'static str> {
    const MALFORMED: &str = "malformed_bearer";
    match values {
        [] => Ok(None),
        [value] => {
            // `HeaderValue::to_str`: visible ASCII, space and tab.
            if !value
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                return Err(MALFORMED);
            }
            let text = std::str::from_utf8(value).expect("ASCII");
            let (scheme, rest) = match text.find(' ') {
                Some(i) => (&text[..i], &text[i + 1..]),
                None => (text, ""),
            };
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                "Bearer"
            } else if scheme.eq_ignore_ascii_case("dpop") {
                "DPoP"
            } else {
                return Ok(Some(None));
            };
            let token = rest.trim_start_matches(' ');
            let body = token.trim_end_matches('=');
            let token68 = !body.is_empty()
                && body
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
            if token68 {
                Ok(Some(Some((scheme, token.to_owned()))))
            } else {
                Err(MALFORMED)
            }
        }
        _ => Err("multiple_authorization_headers"),
    }
}
