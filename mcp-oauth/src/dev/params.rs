//! Request parsing and small protocol helpers: form and query parameters, scopes, PKCE,
//! redirect-URI matching, random identifiers.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::crypto::sha256;
use crate::loopback::is_loopback_http;

/// The parameters that may be repeated: RFC 8707 `resource`, RFC 8693 `audience`.
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// The parameters of a form body or query string.
///
/// Parameters sent without a value are treated as omitted (RFC 6749 §3.1); a parameter sent
/// more than once is remembered in `duplicates` (RFC 6749 §3.1 forbids repeating them), except
/// `resource` and `audience`, which RFC 8707 and RFC 8693 allow to repeat.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, Vec<String>>,
    duplicates: Vec<String>,
}

impl Params {
    pub(crate) fn parse(input: &[u8]) -> Self {
        let mut params = Params::default();
        for (name, value) in url::form_urlencoded::parse(input) {
            if value.is_empty() {
                continue;
            }
            let values = params.values.entry(name.clone().into_owned()).or_default();
            if !values.is_empty()
                && !REPEATABLE.contains(&name.as_ref())
                && !params.duplicates.iter().any(|d| *d == name)
            {
                params.duplicates.push(name.into_owned());
            }
            values.push(value.into_owned());
        }
        params
    }

    /// The (first) value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether `name` was repeated.
    pub(crate) fn is_duplicated(&self, name: &str) -> bool {
        self.duplicates.iter().any(|d| d == name)
    }

    /// The first repeated parameter, if any.
    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        self.duplicates.first().map(String::as_str)
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte), as
/// RFC 6749 §2.3.1 asks of the client id and secret in HTTP Basic credentials.
pub(crate) fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The scopes of a space-separated `scope` parameter, without repetitions, in order.
pub(crate) fn split_scopes(scope: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes
}

/// The requested scopes if every one is in `allowed`, else the first that is not.
pub(crate) fn requested_scopes(
    scope: Option<&str>,
    allowed: &[String],
) -> Result<Vec<String>, String> {
    let Some(scope) = scope else {
        return Ok(allowed.to_vec());
    };
    let requested = split_scopes(scope);
    match requested.iter().find(|s| !allowed.contains(s)) {
        Some(missing) => Err(missing.clone()),
        None => Ok(requested),
    }
}

/// Whether a PKCE `code_verifier` is well formed (RFC 7636 §4.1: 43–128 unreserved
/// characters).
pub(crate) fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether an S256 `code_challenge` is well formed: 43 base64url characters (32 bytes).
pub(crate) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// The S256 code challenge of a verifier: `BASE64URL(SHA256(verifier))`.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

/// The parameters the server adds to a redirect URI's query (the code or the error,
/// `state`, RFC 9207's `iss`): a redirect URI may not carry them already.
const RESPONSE_PARAMETERS: [&str; 5] = ["code", "state", "error", "error_description", "iss"];

/// Whether a redirect URI may be registered: absolute, without a fragment, and with none of
/// the authorization response's parameters in its query. A redirect carrying a second
/// `code`, `state`, `error` or `iss` leaves the client to pick one: a client that reads the
/// first would take the registered URI's, and RFC 9207's mix-up check on `iss` would check
/// the wrong value.
pub(crate) fn is_valid_redirect_uri(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|url| {
        url.fragment().is_none()
            && !url.cannot_be_a_base()
            && !url
                .query_pairs()
                .any(|(name, _)| RESPONSE_PARAMETERS.contains(&name.as_ref()))
    })
}

/// Whether `requested` matches the `registered` redirect URI: exactly, or, for `http`
/// loopback URIs (`127.0.0.1`, `[::1]`, `localhost`), with any port (RFC 8252 §7.3).
pub(crate) fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    is_loopback_http(&registered)
        && requested.scheme() == "http"
        && registered.host() == requested.host()
        && registered.username() == requested.username()
        && registered.password() == requested.password()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && requested.fragment().is_none()
}

/// 256 random bits, base64url, after `prefix`.
pub(crate) fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_drop_empty_values_and_note_duplicates() {
        let params =
            Params::parse(b"a=1&b=&c=x+y%21&a=2&resource=r1&resource=r2&audience=x&audience=y");
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y!"));
        assert!(params.is_duplicated("a"));
        assert!(!params.is_duplicated("resource"));
        assert_eq!(params.all("resource"), ["r1", "r2"]);
        assert!(!params.is_duplicated("audience"));
        assert_eq!(params.all("audience"), ["x", "y"]);
        assert_eq!(params.first_duplicate(), Some("a"));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("plain-id").as_deref(), Some("plain-id"));
        assert_eq!(form_decode("bad%2"), None);
        assert_eq!(form_decode("bad%zz"), None);
    }

    #[test]
    fn scopes() {
        assert_eq!(split_scopes("  a b a "), ["a", "b"]);
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(requested_scopes(None, &allowed), Ok(allowed.clone()));
        assert_eq!(
            requested_scopes(Some("b"), &allowed),
            Ok(vec!["b".to_owned()])
        );
        assert_eq!(requested_scopes(Some("a c"), &allowed), Err("c".to_owned()));
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_code_verifier(verifier));
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_s256_challenge(&s256(verifier)));
        assert!(!is_code_verifier("short"));
        assert!(!is_s256_challenge("too-short"));
        assert!(!is_s256_challenge(&format!("{verifier}A")));
        assert!(!is_s256_challenge(&"*".repeat(43)));
    }

    #[test]
    fn redirect_uris_carry_no_response_parameter() {
        for good in [
            "http://127.0.0.1/cb",
            "https://app.example/cb?tenant=a&codes=1",
            "com.example.app:/cb",
            "https://app.example/cb?",
        ] {
            assert!(is_valid_redirect_uri(good), "{good}");
        }
        for bad in [
            "https://app.example/cb?code=x",
            "https://app.example/cb?a=1&state=s",
            "https://app.example/cb?error=access_denied",
            "https://app.example/cb?error_description=x",
            "https://app.example/cb?iss=https%3A%2F%2Fevil.example",
            "http://127.0.0.1/cb?i%73s=x",
            "http://127.0.0.1/cb?code",
            "https://app.example/cb#f",
            "/relative",
            "mailto:a@example.com",
        ] {
            assert!(!is_valid_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_redirects_match_any_port() {
        let registered = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(
            registered,
            "http://127.0.0.1:49152/callback"
        ));
        assert!(redirect_uri_matches(registered, registered));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.1:1/other"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.2.nip.io/callback"
        ));
        assert!(redirect_uri_matches(
            "http://localhost:3000/cb",
            "http://localhost:4000/cb"
        ));
        assert!(!redirect_uri_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb#frag"
        ));
    }
}
