//! `Origin` and `Host` validation (MCP transport security: DNS-rebinding protection).
//!
//! In a DNS-rebinding attack a page on a name the attacker controls (`evil.example`) has that
//! name resolve to 127.0.0.1, so the user's browser carries the page's requests to a server
//! on the user's own machine. Such requests say `Host: evil.example` and, when the browser
//! sends one, `Origin: http://evil.example`. The layer refuses both before any token work:
//!
//! - [`OriginPolicy`]: which browser origins may call the endpoint. By default
//!   ([`OriginPolicy::for_resource`]) the resource URL's own origin and, for a loopback
//!   resource (`localhost`, any `127.x.y.z`, `[::1]`), every loopback alias on the
//!   resource's port: `http://localhost:8080` and `http://127.0.0.1:8080` are the same server.
//! - [`HostPolicy`]: which `Host` names the endpoint may be reached by. For a loopback
//!   resource only loopback names (on any port): a rebound name is never one. For another
//!   resource, off unless configured with
//!   [`OAuthLayerBuilder::allowed_hosts`](super::OAuthLayerBuilder::allowed_hosts), because a
//!   reverse proxy may rewrite `Host` to whatever its upstream is called.

use std::net::Ipv6Addr;

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Uri};
use url::Host;

use crate::loopback::{LOOPBACK_URL_HOSTS, is_loopback_host, is_loopback_url};

/// Which browser origins may call the MCP endpoint. Requests without `Origin` (non-browser
/// clients) always pass; a request whose `Origin` is not allowed gets 403 before any token
/// work.
///
/// ```
/// use mcp_oauth::http::OriginPolicy;
///
/// // The default of a layer for this resource, plus the MCP Inspector.
/// let policy = OriginPolicy::for_resource("http://127.0.0.1:8080/mcp").and("http://localhost:6274");
/// assert_eq!(
///     policy,
///     OriginPolicy::only([
///         "http://127.0.0.1:8080",
///         "http://localhost:8080",
///         "http://[::1]:8080",
///         "http://localhost:6274",
///     ])
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    any: bool,
}

impl OriginPolicy {
    /// The default policy of a layer serving `resource`: the resource URL's origin and, when
    /// its host is loopback (`localhost`, any `127.x.y.z`, `[::1]`), the same scheme and port
    /// under every loopback alias (`localhost`, `127.0.0.1`, `[::1]`). A browser page served
    /// by the resource (or opened under another loopback alias of it) may call it; no other
    /// page may.
    pub fn for_resource(resource: &str) -> Self {
        let Ok(url) = url::Url::parse(resource) else {
            return Self::only(std::iter::empty::<&str>());
        };
        let mut allowed: Vec<String> = origin_of(resource).into_iter().collect();
        if is_loopback_url(&url) {
            let port = url
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default();
            for alias in LOOPBACK_URL_HOSTS {
                let origin = normalize(&format!("{}://{alias}{port}", url.scheme()));
                if !allowed.contains(&origin) {
                    allowed.push(origin);
                }
            }
        }
        Self {
            allowed,
            any: false,
        }
    }

    /// Only these origins (`scheme://host[:port]`, compared case-insensitively, a default
    /// port the same as none). Nothing is implied: pass
    /// [`OriginPolicy::for_resource`]`(…).and(…)` to keep the resource's own origins.
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
        let origin = normalize(origin);
        if !self.allowed.contains(&origin) {
            self.allowed.push(origin);
        }
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

/// Which `Host` names the endpoint may be reached by (see the module docs). Built by the
/// layer from the resource URL and
/// [`OAuthLayerBuilder::allowed_hosts`](super::OAuthLayerBuilder::allowed_hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPolicy {
    /// Empty: any `Host` passes (a non-loopback resource with no configured names).
    allowed: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: Host<String>,
    /// `None`: any port, or none.
    port: Option<u16>,
}

impl AllowedHost {
    fn matches(&self, host: &Host<String>, port: Option<u16>) -> bool {
        self.host == *host && self.port.is_none_or(|allowed| port == Some(allowed))
    }
}

impl HostPolicy {
    /// The policy of a layer serving `resource`, with the configured extra names
    /// (`host` for any port, `host:port` for one). On for a loopback resource (its loopback
    /// names, any port) or when names are configured (they and the resource's host); off
    /// otherwise. `Err` names a configured entry that is not a host or `host:port`.
    pub(crate) fn for_resource(resource: &str, configured: &[String]) -> Result<Self, String> {
        let mut allowed = configured
            .iter()
            .map(|entry| parse_allowed(entry).ok_or_else(|| entry.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let own = url::Url::parse(resource)
            .ok()
            .and_then(|url| url.host().map(|host| host.to_owned()));
        let loopback = own.as_ref().is_some_and(is_loopback_host);
        if loopback || !allowed.is_empty() {
            let aliases = LOOPBACK_URL_HOSTS
                .iter()
                .filter(|_| loopback)
                .filter_map(|alias| Host::parse(alias).ok());
            for host in own.into_iter().chain(aliases) {
                let entry = AllowedHost { host, port: None };
                if !allowed.contains(&entry) {
                    allowed.push(entry);
                }
            }
        }
        Ok(Self { allowed })
    }

    /// Whether the request's `Host` header and URI authority (HTTP/2 `:authority`, or an
    /// absolute-form target) are allowed. With the check on, two `Host` headers or a
    /// malformed one are refused. A request naming no host passes, as one without `Origin`
    /// does: a browser always sends `Host`, so it is not a rebound page's (HTTP/1.0 clients,
    /// and services called in-process with a path-only URI, send none).
    pub(crate) fn allows(&self, uri: &Uri, headers: &HeaderMap) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        let mut values = headers.get_all(HOST).iter();
        let header = values.next();
        if values.next().is_some() {
            return false;
        }
        let header = match header.map(|value| value.to_str()) {
            None => None,
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => return false,
        };
        let authority = uri.authority().map(http::uri::Authority::as_str);
        header
            .into_iter()
            .chain(authority)
            .all(|named| self.allows_authority(named))
    }

    fn allows_authority(&self, authority: &str) -> bool {
        let Some((host, port)) = parse_authority(authority) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|allowed| allowed.matches(&host, port))
    }
}

/// `host[:port]` as sent in `Host` (no user info), the host as a browser would parse it
/// (lowercase, IPv4 and IPv6 literals as addresses).
fn parse_authority(authority: &str) -> Option<(Host<String>, Option<u16>)> {
    if authority.contains('@') {
        return None;
    }
    let parsed: http::uri::Authority = authority.parse().ok()?;
    // `Authority::port` is `None` for a port that is not a u16: read it here.
    let port = match parsed.as_str()[parsed.host().len()..].strip_prefix(':') {
        None | Some("") => None,
        Some(port) => Some(port.parse::<u16>().ok()?),
    };
    let host = Host::parse(parsed.host()).ok()?;
    Some((host, port))
}

/// A configured entry: `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn parse_allowed(entry: &str) -> Option<AllowedHost> {
    let entry = entry.trim();
    if let Ok(v6) = entry.parse::<Ipv6Addr>() {
        return Some(AllowedHost {
            host: Host::Ipv6(v6),
            port: None,
        });
    }
    let (host, port) = parse_authority(entry)?;
    Some(AllowedHost { host, port })
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

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    fn path_only() -> Uri {
        Uri::from_static("/mcp")
    }

    fn hosts(resource: &str, configured: &[&str]) -> HostPolicy {
        let configured: Vec<String> = configured.iter().map(|&s| s.to_owned()).collect();
        HostPolicy::for_resource(resource, &configured).unwrap()
    }

    fn host_allowed(policy: &HostPolicy, host: &str) -> bool {
        policy.allows(&path_only(), &with_host(host))
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

    #[test]
    fn a_loopback_resource_allows_every_loopback_alias_on_its_port() {
        for resource in [
            "http://127.0.0.1:8080/mcp",
            "http://localhost:8080/mcp",
            "http://[::1]:8080/mcp",
        ] {
            let policy = OriginPolicy::for_resource(resource);
            for origin in [
                "http://localhost:8080",
                "http://127.0.0.1:8080",
                "http://[::1]:8080",
                "http://LOCALHOST:8080/",
                "http://[0:0:0:0:0:0:0:1]:8080",
            ] {
                assert_eq!(
                    policy.check(&with_origin(origin)),
                    OriginCheck::Allowed(origin),
                    "{resource}: {origin}"
                );
            }
            for origin in [
                "http://localhost:8081",
                "http://localhost",
                "https://localhost:8080",
                "http://127.0.0.2:8080",
                "http://evil.example:8080",
                "http://localhost.evil.example:8080",
                "null",
            ] {
                assert_eq!(
                    policy.check(&with_origin(origin)),
                    OriginCheck::Refused,
                    "{resource}: {origin}"
                );
            }
        }
    }

    #[test]
    fn a_loopback_resource_on_a_default_port_allows_the_aliases_on_that_port() {
        let policy = OriginPolicy::for_resource("http://localhost/mcp");
        assert_eq!(
            policy,
            OriginPolicy::only(["http://localhost", "http://127.0.0.1", "http://[::1]"])
        );
        assert_eq!(
            policy.check(&with_origin("http://127.0.0.1:80")),
            OriginCheck::Allowed("http://127.0.0.1:80")
        );
        assert_eq!(
            policy.check(&with_origin("http://127.0.0.1:8080")),
            OriginCheck::Refused
        );
    }

    #[test]
    fn another_resource_allows_only_its_own_origin() {
        let policy = OriginPolicy::for_resource("https://mcp.example.com/mcp");
        assert_eq!(policy, OriginPolicy::only(["https://mcp.example.com"]));
        assert_eq!(
            policy.check(&with_origin("http://localhost")),
            OriginCheck::Refused
        );
        assert_eq!(
            policy.check(&with_origin("http://mcp.example.com")),
            OriginCheck::Refused
        );
    }

    #[test]
    fn added_origins_extend_the_resource_default() {
        let policy =
            OriginPolicy::for_resource("http://127.0.0.1:8080/mcp").and("http://localhost:6274");
        assert_eq!(
            policy.check(&with_origin("http://localhost:6274")),
            OriginCheck::Allowed("http://localhost:6274")
        );
        assert_eq!(
            policy.check(&with_origin("http://[::1]:8080")),
            OriginCheck::Allowed("http://[::1]:8080")
        );
        // Adding one already there changes nothing.
        assert_eq!(
            policy.clone().and("http://LOCALHOST:6274"),
            policy.clone().and("http://localhost:6274/")
        );
        assert_eq!(policy.clone().and("http://localhost:8080"), policy);
    }

    #[test]
    fn a_loopback_resource_accepts_only_loopback_hosts_on_any_port() {
        for resource in [
            "http://127.0.0.1:8080/mcp",
            "http://localhost:8080/mcp",
            "http://[::1]:8080/mcp",
        ] {
            let policy = hosts(resource, &[]);
            for host in [
                "localhost:8080",
                "127.0.0.1:8080",
                "[::1]:8080",
                "LocalHost:9999",
                "localhost",
                "[0:0::1]:8080",
            ] {
                assert!(host_allowed(&policy, host), "{resource}: {host}");
            }
            for host in [
                "evil.example:8080",
                "evil.example",
                "localhost.evil.example:8080",
                "192.168.1.10:8080",
                "user@localhost:8080",
                "localhost:99999",
                "localhost:8080/mcp",
                "",
            ] {
                assert!(!host_allowed(&policy, host), "{resource}: {host:?}");
            }
        }
    }

    #[test]
    fn a_request_naming_no_host_passes_and_two_hosts_are_refused() {
        let policy = hosts("http://localhost:8080/mcp", &[]);
        assert!(policy.allows(&path_only(), &HeaderMap::new()));
        let mut two = with_host("localhost:8080");
        two.append(HOST, HeaderValue::from_static("localhost:8080"));
        assert!(!policy.allows(&path_only(), &two));
        let mut opaque = HeaderMap::new();
        opaque.insert(HOST, HeaderValue::from_bytes(b"localhost\xff").unwrap());
        assert!(!policy.allows(&path_only(), &opaque));
    }

    #[test]
    fn the_uri_authority_is_checked_too() {
        let policy = hosts("http://localhost:8080/mcp", &[]);
        // HTTP/2: no Host header, the authority in the URI.
        let h2 = Uri::from_static("http://localhost:8080/mcp");
        assert!(policy.allows(&h2, &HeaderMap::new()));
        let rebound = Uri::from_static("http://evil.example:8080/mcp");
        assert!(!policy.allows(&rebound, &HeaderMap::new()));
        // An absolute-form target naming another host than a loopback Host header.
        assert!(!policy.allows(&rebound, &with_host("localhost:8080")));
    }

    #[test]
    fn another_resource_accepts_any_host_unless_names_are_configured() {
        let open = hosts("https://mcp.example.com/mcp", &[]);
        assert!(host_allowed(&open, "evil.example"));
        assert!(host_allowed(&open, "internal-upstream:8080"));
        assert!(open.allows(&path_only(), &HeaderMap::new()));

        let listed = hosts(
            "https://mcp.example.com/mcp",
            &["mcp.internal:8080", "::1", "backup.example.com"],
        );
        for host in [
            "mcp.example.com",
            "MCP.example.com:443",
            "mcp.internal:8080",
            "[::1]:3000",
            "backup.example.com:8443",
        ] {
            assert!(host_allowed(&listed, host), "{host}");
        }
        for host in [
            "mcp.internal",
            "mcp.internal:8081",
            "localhost",
            "127.0.0.1",
            "evil.example",
        ] {
            assert!(!host_allowed(&listed, host), "{host}");
        }
    }

    #[test]
    fn a_loopback_resource_adds_configured_names_to_its_loopback_names() {
        let policy = hosts("http://127.0.0.1:8080/mcp", &["devbox.lan:8080"]);
        assert!(host_allowed(&policy, "devbox.lan:8080"));
        assert!(host_allowed(&policy, "localhost:8080"));
        assert!(!host_allowed(&policy, "devbox.lan:9090"));
        assert!(!host_allowed(&policy, "evil.example:8080"));
    }

    #[test]
    fn a_configured_entry_that_is_not_a_host_is_an_error() {
        for entry in ["https://mcp.example.com", "mcp.example.com/mcp", "a@b", ""] {
            assert_eq!(
                HostPolicy::for_resource("https://mcp.example.com/mcp", &[entry.to_owned()]),
                Err(entry.to_owned()),
                "{entry:?}"
            );
        }
    }
}
