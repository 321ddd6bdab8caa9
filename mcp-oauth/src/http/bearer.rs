//! Taking the bearer token from a request (RFC 6750 §2.1), strictly.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What the request presented.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header of another scheme (`Basic`, `DPoP`, …).
    OtherScheme,
    /// A syntactically valid bearer token.
    Bearer(&'a str),
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
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, MalformedCredentials> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::Missing);
    };
    if values.next().is_some() {
        return Err(MalformedCredentials::MultipleHeaders);
    }
    let Ok(value) = value.to_str() else {
        return Err(MalformedCredentials::NotAToken);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Ok(Credentials::OtherScheme);
    }
    let token = rest.trim_start_matches(' ');
    if is_token68(token) {
        Ok(Credentials::Bearer(token))
    } else {
        Err(MalformedCredentials::NotAToken)
    }
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 7235 §2.1).
pub(crate) fn is_token68(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
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
            credentials(&headers(&["DPoP abc"])),
            Ok(Credentials::OtherScheme)
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
    fn two_authorization_headers_are_malformed() {
        assert_eq!(
            credentials(&headers(&["Bearer a", "Bearer b"])),
            Err(MalformedCredentials::MultipleHeaders)
        );
    }
}
