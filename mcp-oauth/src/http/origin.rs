//! `Origin` validation (MCP transport security: DNS-rebinding protection).

use http::HeaderMap;
use http::header::ORIGIN;

/// Which browser origins may call the MCP endpoint. Requests without `Origin` (non-browser
/// clients) always pass; a request whose `Origin` is not allowed gets 403 before any token
/// work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    any: bool,
}

impl OriginPolicy {
    /// Only these origins (`scheme://host[:port]`, compared case-insensitively).
    pub fn only<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            allowed: origins.into_iter().map(|o| normalize(o.as_ref())).collect(),
            any: false,
        }
    }

    /// Any origin: turns DNS-rebinding protection off. Only for endpoints that are not
    /// reachable from a browser on a private network.
    pub fn any_origin_dangerous() -> Self {
        Self {
            allowed: Vec::new(),
            any: true,
        }
    }

    /// Adds an allowed origin.
    #[must_use]
    pub fn and(mut self, origin: &str) -> Self {
        self.allowed.push(normalize(origin));
        self
    }

    /// Whether a request with these headers passes, and the origin to echo in CORS headers.
    pub(crate) fn check<'h>(&self, headers: &'h HeaderMap) -> OriginCheck<'h> {
        let mut values = headers.get_all(ORIGIN).iter();
        let Some(value) = values.next() else {
            return OriginCheck::NoOrigin;
        };
        if values.next().is_some() {
            return OriginCheck::Refused;
        }
        let Ok(origin) = value.to_str() else {
            return OriginCheck::Refused;
        };
        let normalized = normalize(origin);
        if self.any || self.allowed.contains(&normalized) {
            OriginCheck::Allowed(origin)
        } else {
            OriginCheck::Refused
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OriginCheck<'h> {
    NoOrigin,
    Allowed(&'h str),
    Refused,
}

/// The origin of a URL (`scheme://authority`), lowercased, without default ports.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

fn normalize(origin: &str) -> String {
    let trimmed = origin.trim().trim_end_matches('/');
    origin_of(trimmed).unwrap_or_else(|| trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn only_listed_origins_pass_and_no_origin_always_passes() {
        let policy = OriginPolicy::only(["https://app.example.com", "http://localhost:6274"]);
        assert_eq!(policy.check(&HeaderMap::new()), OriginCheck::NoOrigin);
        assert_eq!(
            policy.check(&with_origin("https://APP.example.com")),
            OriginCheck::Allowed("https://APP.example.com")
        );
        assert_eq!(
            policy.check(&with_origin("https://app.example.com:443")),
            OriginCheck::Allowed("https://app.example.com:443")
        );
        assert_eq!(
            policy.check(&with_origin("http://localhost:6274")),
            OriginCheck::Allowed("http://localhost:6274")
        );
        assert_eq!(
            policy.check(&with_origin("https://evil.example.com")),
            OriginCheck::Refused
        );
        assert_eq!(policy.check(&with_origin("null")), OriginCheck::Refused);
        assert_eq!(
            policy.check(&with_origin("http://localhost:1234")),
            OriginCheck::Refused
        );
    }
}
