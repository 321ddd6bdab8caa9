//! Loopback: the crate's one rule for "a host on this machine", and the exemption from
//! `https` it earns.
//!
//! A loopback host is the name `localhost` (in any case) or a loopback address: any address
//! in `127.0.0.0/8`, or `::1`. That is the loopback of RFC 8252 §7.3 (a native app's redirect
//! URI), RFC 6761 §6.3 (`localhost`) and RFC 1122 §3.2.1.3 / RFC 4291 §2.5.3 (the addresses),
//! and what browsers treat as a potentially trustworthy origin (W3C Secure Contexts §3.1).
//! Traffic to such a host never leaves the machine, which is why plain `http` is accepted
//! there (local development, native apps) and nowhere else: for key-set and discovery
//! fetches, for the URLs of the metadata document, for the dev server's redirect URIs and
//! origins, and to decide that a resource needs DNS-rebinding protection.
//!
//! Not loopback, by every one of those rules: subdomains such as `app.localhost` and the
//! absolute `localhost.` (RFC 6761 only says resolvers SHOULD answer them with loopback, so
//! one may ask the network), and the IPv4-mapped `::ffff:127.0.0.1` (browsers do not count it
//! either).
//!
//! The compile-time twin in `mcp-oauth-macros/src/url.rs` applies the same rule to declared
//! URLs; its tests run both over the same inputs.

use url::{Host, Url};

/// Whether `host` is loopback: `localhost` (any case), `127.x.y.z` or `::1`.
/// The loopback names a client uses for this machine, as they appear in a URL's host: what an
/// `Origin` or `Host` of a loopback resource may say.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) const LOOPBACK_URL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

pub(crate) fn is_loopback_host<S: AsRef<str>>(host: &Host<S>) -> bool {
    match host {
        Host::Domain(name) => name.as_ref().eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether the host of `url` is loopback (a URL without a host is not).
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    url.host().as_ref().is_some_and(is_loopback_host)
}

/// Whether `url` is plain `http` to a loopback host: a native app's redirect URI (RFC 8252
/// §7.3), a dev issuer, a resource under local development.
pub(crate) fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http" && is_loopback_url(url)
}

/// Whether `url` is `https` (with a host), or plain `http` to a loopback host: what the crate
/// fetches from and what its metadata may name.
pub(crate) fn is_https_or_loopback_http(url: &Url) -> bool {
    (url.scheme() == "https" && url.host().is_some()) || is_loopback_http(url)
}

/// Whether `url` may carry credentials or be fetched by this crate's rule: `https` with a
/// host, or plain `http` to a loopback host (`localhost`, `127.0.0.0/8`, `::1`) only. The
/// public face of the rule the crate applies to its own fetches and metadata URLs, for tools
/// (the `mcp-oauth` command) that must apply the same one.
///
/// ```
/// use mcp_oauth::is_https_or_loopback;
/// use url::Url;
///
/// assert!(is_https_or_loopback(&Url::parse("https://as.example.com/token").unwrap()));
/// assert!(is_https_or_loopback(&Url::parse("http://127.0.0.1:8080/token").unwrap()));
/// assert!(!is_https_or_loopback(&Url::parse("http://as.example.com/token").unwrap()));
/// ```
pub fn is_https_or_loopback(url: &Url) -> bool {
    is_https_or_loopback_http(url)
}

/// Whether a URL found in `issuer`'s discovery document (its `jwks_uri` or
/// `introspection_endpoint`) may be fetched: `https`, or plain `http` to loopback only when
/// the issuer itself is a loopback (dev) issuer, so that a real issuer's document cannot
/// steer requests to services on this machine.
pub(crate) fn is_allowed_discovered_url(issuer: &str, url: &Url) -> bool {
    let issuer_is_loopback = Url::parse(issuer).is_ok_and(|issuer| is_loopback_url(&issuer));
    is_https_or_loopback_http(url) && (url.scheme() == "https" || issuer_is_loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn localhost_the_whole_127_block_and_ipv6_one_are_loopback() {
        for text in [
            "http://localhost/",
            "http://LocalHost:8080/",
            "http://127.0.0.1/",
            "http://127.0.0.2:9000/",
            "http://127.255.255.254/",
            "http://127.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]:8080/",
            "ws://localhost/",
        ] {
            assert!(is_loopback_url(&url(text)), "{text}");
        }
    }

    #[test]
    fn lookalikes_subdomains_and_mapped_addresses_are_not_loopback() {
        for text in [
            "http://localhost.evil.example/",
            "http://app.localhost/",
            "http://localhost./",
            "http://127.0.0.1.nip.io/",
            "http://128.0.0.1/",
            "http://126.255.255.255/",
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://[::]/",
            "http://[::2]/",
            "http://[::ffff:127.0.0.1]/",
            "file:///etc/passwd",
            "mailto:someone@localhost",
        ] {
            assert!(!is_loopback_url(&url(text)), "{text}");
        }
    }

    #[test]
    fn the_host_rule_reads_owned_and_borrowed_hosts_alike() {
        for text in ["localhost", "127.0.0.9", "[::1]", "evil.example", "[::2]"] {
            let host = Host::parse(text).unwrap();
            let owned: Host<String> = host.to_owned();
            assert_eq!(is_loopback_host(&host), is_loopback_host(&owned), "{text}");
        }
    }

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for text in [
            "https://as.example.com/jwks",
            "https://127.0.0.1/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.0.0.2:8080/jwks",
            "http://[::1]/k",
            "http://localhost/k",
        ] {
            assert!(is_https_or_loopback_http(&url(text)), "{text}");
        }
        for text in [
            "http://as.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/x",
            "ws://localhost/x",
            "file:///etc/passwd",
        ] {
            assert!(!is_https_or_loopback_http(&url(text)), "{text}");
        }
        assert!(is_loopback_http(&url("http://localhost:1/cb")));
        assert!(!is_loopback_http(&url("https://localhost:1/cb")));
    }

    #[test]
    fn a_real_issuer_cannot_point_discovery_at_plain_http_loopback() {
        const REAL: &str = "https://as.example.com";
        const DEV: &str = "http://127.0.0.1:9000";
        for (issuer, discovered, allowed) in [
            (REAL, "https://as.example.com/jwks", true),
            (REAL, "http://127.0.0.1:8080/jwks", false),
            (REAL, "http://localhost/jwks", false),
            (DEV, "http://127.0.0.1:9000/jwks", true),
            (DEV, "https://as.example.com/jwks", true),
            (DEV, "http://as.example.com/jwks", false),
            ("not a url", "http://127.0.0.1/jwks", false),
        ] {
            assert_eq!(
                is_allowed_discovered_url(issuer, &url(discovered)),
                allowed,
                "{issuer} -> {discovered}"
            );
        }
    }
}
