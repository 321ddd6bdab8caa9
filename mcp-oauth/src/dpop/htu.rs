//! `htu` (RFC 9449 §4.3 check 9): the proof names the URI the request went to. Both sides are
//! compared without query and fragment, the scheme and host case-insensitively and default
//! ports normalised (the WHATWG URL parser does all three). The expected URI is the
//! resource's configured external origin with the request's path: never built from a `Host`
//! header, which a proxy or an attacker sets. For a loopback resource every loopback alias
//! (`localhost`, `127.0.0.1`, `[::1]`) on its port names it, as for the `Origin` check.
//!
//! Paths are compared as sent, byte for byte: a parser would resolve `..` (and `%2e%2e`) in
//! one and not in what the router sees, so a request path with a dot segment, or an `htu`
//! whose path the parser would rewrite, never matches.

use url::Url;

use crate::loopback::is_loopback_host;

/// The origin requests are expected at (the configured resource URL's scheme, host, port).
#[derive(Debug, Clone)]
pub(crate) struct ExpectedOrigin {
    origin: Url,
    loopback: bool,
    /// `scheme://host[:port]` exactly as the parser serialises the origin (no trailing
    /// slash): an `htu` that is this followed by the request path needs no parsing.
    serialized: String,
}

impl ExpectedOrigin {
    /// The origin of `resource`, the configured external URL; `None` unless it is an
    /// absolute http(s) URL with a host.
    pub(crate) fn of(resource: &str) -> Option<Self> {
        let mut origin = Url::parse(resource).ok()?;
        if !matches!(origin.scheme(), "http" | "https") || origin.host().is_none() {
            return None;
        }
        origin.set_query(None);
        origin.set_fragment(None);
        origin.set_path("/");
        let loopback = origin.host().is_some_and(|host| is_loopback_host(&host));
        let serialized = origin.as_str().trim_end_matches('/').to_owned();
        Some(Self {
            origin,
            loopback,
            serialized,
        })
    }

    /// Whether the proof's `htu` names this origin and `request_path` (the path of the
    /// request line as received, without its query).
    pub(crate) fn matches(&self, htu: &str, request_path: &str) -> bool {
        if has_dot_segment(request_path) {
            return false;
        }
        // What clients send: the resource URL itself, already in the parser's form (a path
        // of characters the parser keeps as they are).
        let without_query = &htu[..htu.find(['?', '#']).unwrap_or(htu.len())];
        if without_query
            .strip_prefix(self.serialized.as_str())
            .is_some_and(|path| {
                path == request_path && path.starts_with('/') && path.bytes().all(is_plain)
            })
        {
            return true;
        }
        let Ok(presented) = Url::parse(htu) else {
            return false;
        };
        let Some(raw_path) = raw_path(htu) else {
            return false;
        };
        let same_host = match (presented.host(), self.origin.host()) {
            (Some(theirs), Some(ours)) if self.loopback => {
                theirs == ours || is_loopback_host(&theirs)
            }
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => false,
        };
        presented.scheme() == self.origin.scheme()
            && same_host
            && presented.port_or_known_default() == self.origin.port_or_known_default()
            && presented.username().is_empty()
            && presented.password().is_none()
            && raw_path == request_path
            // The parser would have rewritten it (dot segments, backslashes, …).
            && presented.path() == raw_path
    }
}

/// The path of an absolute URL as written: after the authority, before `?` or `#` (`/` when
/// empty, as a request line has it).
fn raw_path(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    Some(match rest.find('/') {
        Some(slash) => &rest[slash..],
        None => "/",
    })
}

/// A path byte the URL parser leaves as it is: unreserved, a sub-delimiter, `:`, `@`, `/`,
/// `%` (RFC 3986 `pchar`).
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

/// Whether a path has a `.` or `..` segment, plain or percent-encoded (`\` separates
/// segments too, for the URL parser).
fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> ExpectedOrigin {
        ExpectedOrigin::of("https://mcp.example.com/mcp").unwrap()
    }

    #[test]
    fn equal_uris_match_with_case_ports_query_and_fragment_normalised() {
        for htu in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#frag",
        ] {
            assert!(origin().matches(htu, "/mcp"), "{htu}");
        }
    }

    #[test]
    fn another_scheme_host_port_or_path_does_not_match() {
        for htu in [
            "http://mcp.example.com/mcp",
            "https://evil.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/other",
            "https://user@mcp.example.com/mcp",
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/%2e%2e/mcp",
            "https://mcp.example.com\\mcp",
            "/mcp",
            "mcp.example.com/mcp",
            "",
        ] {
            assert!(!origin().matches(htu, "/mcp"), "{htu}");
        }
    }

    #[test]
    fn the_request_path_is_the_one_compared() {
        assert!(origin().matches("https://mcp.example.com/mcp/x", "/mcp/x"));
        assert!(!origin().matches("https://mcp.example.com/mcp", "/mcp/x"));
        let loopback = ExpectedOrigin::of("http://127.0.0.1:8080/mcp").unwrap();
        assert!(loopback.matches("http://127.0.0.1:8080/mcp", "/mcp"));
        assert!(loopback.matches("http://localhost:8080/mcp", "/mcp"));
        assert!(loopback.matches("http://[::1]:8080/mcp", "/mcp"));
        assert!(!loopback.matches("http://localhost:8081/mcp", "/mcp"));
        assert!(!loopback.matches("http://example.com:8080/mcp", "/mcp"));
        assert!(!origin().matches("https://localhost/mcp", "/mcp"));
    }

    /// A proof for another path of the host is not one for a route reached through dot
    /// segments that the router does not resolve (`nest_service("/mcp", …)` serves them).
    #[test]
    fn dot_segments_in_the_request_path_never_match() {
        for (htu, path) in [
            ("https://mcp.example.com/", "/mcp/%2e%2e"),
            ("https://mcp.example.com/api/other", "/mcp/%2e%2e/api/other"),
            (
                "https://mcp.example.com/admin",
                "/mcp/x/%2E%2E/%2e%2e/admin",
            ),
            ("https://mcp.example.com/mcp/../mcp", "/mcp/../mcp"),
            ("https://mcp.example.com/mcp/./x", "/mcp/./x"),
            (
                "https://mcp.example.com/mcp/x\\..\\..\\admin",
                "/mcp/x\\..\\..\\admin",
            ),
            (
                "https://mcp.example.com/mcp/%7Bx%7D/../y",
                "/mcp/%7Bx%7D/../y",
            ),
        ] {
            assert!(!origin().matches(htu, path), "{htu} for {path}");
        }
    }

    #[test]
    fn a_resource_that_is_not_an_http_url_has_no_origin() {
        assert!(ExpectedOrigin::of("urn:example").is_none());
        assert!(ExpectedOrigin::of("not a url").is_none());
    }
}
