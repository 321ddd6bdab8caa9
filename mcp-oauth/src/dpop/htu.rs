//! `htu` (RFC 9449 §4.3 check 9): the proof names the URI the request went to. Both sides are
//! compared without query and fragment, the scheme and host case-insensitively and default
//! ports normalised (both are parsed by the WHATWG URL parser, which does all three). The
//! expected URI is the resource's configured external origin with the request's path: never
//! built from a `Host` header, which a proxy or an attacker sets.

use url::Url;

/// The origin requests are expected at (the configured resource URL's scheme, host, port).
#[derive(Debug, Clone)]
pub(crate) struct ExpectedOrigin {
    origin: Url,
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
        Some(Self { origin })
    }

    /// Whether the proof's `htu` names this origin and `request_path` (the path of the
    /// request line, without its query).
    pub(crate) fn matches(&self, htu: &str, request_path: &str) -> bool {
        let Ok(presented) = Url::parse(htu) else {
            return false;
        };
        let mut expected = self.origin.clone();
        // `set_path` percent-encodes as the parser would, so both paths are in one form.
        expected.set_path(request_path);
        presented.scheme() == expected.scheme()
            && presented.host() == expected.host()
            && presented.port_or_known_default() == expected.port_or_known_default()
            && presented.path() == expected.path()
            && presented.username().is_empty()
            && presented.password().is_none()
    }
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
            "https://mcp.example.com/a/../mcp",
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
        assert!(!loopback.matches("http://localhost:8080/mcp", "/mcp"));
    }

    #[test]
    fn a_resource_that_is_not_an_http_url_has_no_origin() {
        assert!(ExpectedOrigin::of("urn:example").is_none());
        assert!(ExpectedOrigin::of("not a url").is_none());
    }
}
