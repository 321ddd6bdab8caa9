//! Taking the bearer token from a request (RFC 6750 §2.1), strictly.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What the request presented.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header of another scheme (`Basic`, …).
    OtherScheme,
    /// A syntactically valid bearer token.
    Bearer(&'a str),
    /// A syntactically valid token with the `DPoP` scheme (RFC 9449 §7.1); whether the
    /// scheme is accepted is the resource's [`DpopMode`](crate::dpop::DpopMode).
    Dpop(&'a str),
}

/// A request whose credentials are malformed: 400 `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MalformedCredentials {
    /// Two or more `Authorization` headers.
    MultipleHeaders,
    /// `Bearer` with an empty value, or one that is not a token68.
    NotAToken,
}

impl MalformedCredentials {
    pub(crate) fn description(self) -> &'static str {
        match self {
            MalformedCredentials::MultipleHeaders => "More than one Authorization header",
            MalformedCredentials::NotAToken => "The bearer credentials are not a valid token",
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            MalformedCredentials::MultipleHeaders => "multiple_authorization_headers",
            MalformedCredentials::NotAToken => "malformed_bearer",
        }
    }
}

/// The credentials of a request. The scheme is case-insensitive (`bEaReR` is valid); a token
/// in the query string is never looked at.
///
/// The value is read as bytes, once: the token68 table admits visible ASCII only, so a bearer
/// value that passes it is what `HeaderValue::to_str` would have accepted, and the token is
/// UTF-8. Only a value of another scheme is checked separately (as `to_str` does), so that a
/// header that is not visible ASCII stays malformed whatever its scheme.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, MalformedCredentials> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::Missing);
    };
    if values.next().is_some() {
        return Err(MalformedCredentials::MultipleHeaders);
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(space) => (&bytes[..space], &bytes[space + 1..]),
        None => (bytes, &[][..]),
    };
    let dpop = scheme.eq_ignore_ascii_case(b"DPoP");
    if !dpop && !scheme.eq_ignore_ascii_case(b"Bearer") {
        return match value.to_str() {
            Ok(_) => Ok(Credentials::OtherScheme),
            Err(_) => Err(MalformedCredentials::NotAToken),
        };
    }
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let token = token68(&rest[start..]).ok_or(MalformedCredentials::NotAToken)?;
    Ok(if dpop {
        Credentials::Dpop(token)
    } else {
        Credentials::Bearer(token)
    })
}

/// Which bytes a token68 may hold before its padding: `ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/"`.
static TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 7235 §2.1):
/// the value as text when it is one. Each byte is looked at once (the padding from the end,
/// the rest through [`TOKEN68`], without a branch per byte).
pub(crate) fn token68(value: &[u8]) -> Option<&str> {
    let body = value
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(0, |last| last + 1);
    if body == 0 {
        return None;
    }
    let valid = value[..body]
        .iter()
        .fold(true, |valid, &b| valid & TOKEN68[usize::from(b)]);
    // ASCII by the table, so this cannot fail; checked anyway rather than assumed.
    valid.then(|| std::str::from_utf8(value).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(
            credentials(&headers(&["bEaReR abc.def.ghi"])),
            Ok(Credentials::Bearer("abc.def.ghi"))
        );
        assert_eq!(
            credentials(&headers(&["Bearer   abc"])),
            Ok(Credentials::Bearer("abc"))
        );
    }

    #[test]
    fn missing_and_other_schemes_are_not_errors() {
        assert_eq!(credentials(&HeaderMap::new()), Ok(Credentials::Missing));
        assert_eq!(
            credentials(&headers(&["Basic dXNlcjpwYXNz"])),
            Ok(Credentials::OtherScheme)
        );
        assert_eq!(
            credentials(&headers(&["dpop abc"])),
            Ok(Credentials::Dpop("abc"))
        );
        assert_eq!(
            credentials(&headers(&["DPoP a b"])),
            Err(MalformedCredentials::NotAToken)
        );
        assert_eq!(
            credentials(&headers(&["Bearerabc"])),
            Ok(Credentials::OtherScheme)
        );
    }

    #[test]
    fn empty_or_non_token68_bearer_values_are_malformed() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer =abc",
            "Bearer a,b",
            "Bearer ====",
        ] {
            assert_eq!(
                credentials(&headers(&[value])),
                Err(MalformedCredentials::NotAToken),
                "{value:?}"
            );
        }
        assert_eq!(
            credentials(&headers(&["Bearer YWJj=="])),
            Ok(Credentials::Bearer("YWJj=="))
        );
    }

    #[test]
    fn the_table_is_token68() {
        for byte in 0..=255u8 {
            let expected = byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte);
            assert_eq!(TOKEN68[usize::from(byte)], expected, "{byte:#04x}");
        }
        assert_eq!(token68(b"abc=="), Some("abc=="));
        assert_eq!(token68(b"a=b"), None);
        assert_eq!(token68(b"=="), None);
        assert_eq!(token68(b""), None);
        assert_eq!(token68(b"ab\xffc"), None);
    }

    #[test]
    fn a_value_that_is_not_visible_ascii_is_malformed_whatever_its_scheme() {
        for value in [
            &b"Bearer abc\xff"[..],
            b"Bearer \xc3\xa9t\xc3\xa9",
            b"Basic \xff",
            b"\xffBearer abc",
            b"Bearer\tabc",
        ] {
            let mut map = HeaderMap::new();
            map.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
            let expected = match HeaderValue::from_bytes(value).unwrap().to_str() {
                Err(_) => Err(MalformedCredentials::NotAToken),
                Ok(text) if text.starts_with("Bearer ") => Err(MalformedCredentials::NotAToken),
                Ok(_) => Ok(Credentials::OtherScheme),
            };
            assert_eq!(credentials(&map), expected, "{value:?}");
        }
        // A tab is visible to `to_str` but is no separator: `Bearer\tabc` is another scheme.
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, HeaderValue::from_static("Bearer\tabc"));
        assert_eq!(credentials(&map), Ok(Credentials::OtherScheme));
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        assert_eq!(
            credentials(&headers(&["Bearer a", "Bearer b"])),
            Err(MalformedCredentials::MultipleHeaders)
        );
    }
}
