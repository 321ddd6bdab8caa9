//! URL checks, the compile-time twins of the rules `mcp_oauth::metadata` applies when it
//! builds the metadata document (and of its loopback rule, `mcp_oauth`'s `loopback.rs`): the
//! same `url` parser, the same decisions, so that a declaration that compiles also renders.
//! The tests below run both over the same inputs.

use url::{Host, Url};

/// Checks a resource or issuer identifier: an https (or loopback http) URL without
/// fragment, query or user information, written in the form a URL parser produces for it.
pub fn check_identifier(member: &str, value: &str) -> Result<(), String> {
    let url = check_https_url(member, value)?;
    if url.fragment().is_some() {
        return Err(format!(
            "{member} {value:?} must not have a fragment (#…); remove it"
        ));
    }
    if url.query().is_some() {
        return Err(format!(
            "{member} {value:?} must not have a query (?…); remove it"
        ));
    }
    let invalid = |reason: &str| format!("{member} {value:?} is refused: {reason}");
    if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err(invalid(
            "it must be printable ASCII without spaces or backslashes; percent-encode anything else",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not contain user information (user:password@)",
        ));
    }
    let Some((_, after_scheme)) = value.split_once("://") else {
        return Err(invalid("it must be written as scheme://host[:port][/path]"));
    };
    let authority_len = after_scheme.find('/').unwrap_or(after_scheme.len());
    if authority_len == 0 {
        return Err(invalid("it must be written as scheme://host[:port][/path]"));
    }
    let path = &after_scheme[authority_len..];
    if path != url.path() && !(path.is_empty() && url.path() == "/") {
        return Err(invalid(
            "its path is not in normal form (dot segments or characters a URL parser would \
             percent-encode); write the path as clients will send it",
        ));
    }
    Ok(())
}

/// Checks an absolute `https` URL, or `http` on a loopback host (`localhost`, `127.x.y.z`,
/// `[::1]`). A query or fragment is allowed (documentation links).
pub fn check_https_url(member: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|err| {
        format!("{member} {value:?} is not an absolute URL ({err}); write it in full, as https://host/path")
    })?;
    if is_https_or_loopback_http(&url) {
        Ok(url)
    } else {
        Err(format!(
            "{member} {value:?} must be an https URL (plain http is allowed only for loopback \
             hosts: localhost, 127.0.0.0/8 and [::1], for local development)"
        ))
    }
}

/// `https` (with a host), or plain `http` to a loopback host.
fn is_https_or_loopback_http(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => url.host().as_ref().is_some_and(is_loopback_host),
        _ => false,
    }
}

/// `localhost` (any case), `127.x.y.z` or `::1` (RFC 8252 §7.3, RFC 6761 §6.3).
fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identifier_error(value: &str) -> String {
        check_identifier("resource", value).unwrap_err()
    }

    #[test]
    fn https_and_loopback_http_identifiers_are_accepted() {
        for value in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com",
            "https://MCP.Example.com:443/mcp",
            "http://localhost:3000/mcp",
            "http://127.0.0.1:8080/mcp",
            "http://[::1]:9/mcp",
        ] {
            assert_eq!(check_identifier("resource", value), Ok(()), "{value}");
        }
    }

    #[test]
    fn relative_identifier_is_refused() {
        for value in ["/mcp", "mcp.example.com/mcp", ""] {
            assert!(
                identifier_error(value).contains("not an absolute URL"),
                "{value}"
            );
        }
    }

    #[test]
    fn http_identifier_off_loopback_is_refused() {
        for value in [
            "http://mcp.example.com/mcp",
            "http://128.0.0.1/mcp",
            "ftp://ex.com/mcp",
        ] {
            assert!(
                identifier_error(value).contains("must be an https URL"),
                "{value}"
            );
        }
    }

    #[test]
    fn identifier_with_fragment_or_query_is_refused() {
        assert!(identifier_error("https://ex.com/mcp#x").contains("fragment"));
        assert!(identifier_error("https://ex.com/mcp#").contains("fragment"));
        assert!(identifier_error("https://ex.com/mcp?tenant=1").contains("query"));
        assert!(identifier_error("https://ex.com/mcp?").contains("query"));
    }

    #[test]
    fn identifier_not_written_as_parsed_is_refused() {
        for value in [
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/caf\u{e9}",
            "https://mcp.example.com\\mcp",
            " https://mcp.example.com/mcp",
            "https:mcp.example.com/mcp",
            "https://user:pw@mcp.example.com/mcp",
        ] {
            assert!(identifier_error(value).contains("is refused"), "{value}");
        }
    }

    #[test]
    fn document_urls_may_have_fragments_but_must_be_https() {
        assert!(check_https_url("resource_documentation", "https://docs.ex.com/#auth").is_ok());
        assert!(check_https_url("resource_tos_uri", "http://ex.com/tos").is_err());
    }

    /// URLs built from hosts (loopback, lookalikes, the edges of 127.0.0.0/8), schemes and
    /// paths that each rule is sensitive to.
    fn url_cases() -> Vec<String> {
        let hosts = [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "app.localhost",
            "localhost.evil.example",
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.255",
            "127.1",
            "2130706433",
            "126.255.255.255",
            "128.0.0.1",
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.1.nip.io",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::]",
            "[::2]",
            "[::ffff:127.0.0.1]",
            "mcp.example.com",
            "user:pw@localhost",
        ];
        let mut cases = Vec::new();
        for scheme in ["http", "https", "HTTP", "ftp", "ws"] {
            for host in hosts {
                for rest in [
                    "",
                    ":8080",
                    "/mcp",
                    ":9/mcp/",
                    "/a/../mcp",
                    "/mcp?x=1",
                    "/mcp#f",
                ] {
                    cases.push(format!("{scheme}://{host}{rest}"));
                }
            }
        }
        cases.extend(
            [
                "",
                "/mcp",
                "mcp.example.com/mcp",
                "https:mcp.example.com/mcp",
                "http:/localhost/mcp",
                "https://mcp.example.com\\mcp",
                " https://mcp.example.com/mcp",
                "https://mcp.example.com/caf\u{e9}",
                "file:///etc/passwd",
                "mailto:someone@localhost",
            ]
            .map(str::to_owned),
        );
        cases
    }

    /// The runtime's verdict on a document: `Ok`, or its error as the user reads it.
    fn runtime(
        metadata: mcp_oauth::metadata::ProtectedResourceMetadataBuilder,
    ) -> Result<(), String> {
        metadata.build().map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn identifiers_are_judged_as_the_runtime_metadata_judges_them() {
        use mcp_oauth::metadata::ProtectedResourceMetadata;
        for value in url_cases() {
            let as_resource = ProtectedResourceMetadata::builder(value.as_str())
                .authorization_server("https://as.example.com");
            assert_eq!(
                check_identifier("resource", &value),
                runtime(as_resource),
                "{value:?}"
            );
            let as_issuer = ProtectedResourceMetadata::builder("https://mcp.example.com/mcp")
                .authorization_server(value.as_str());
            assert_eq!(
                check_identifier("authorization_servers", &value),
                runtime(as_issuer),
                "{value:?}"
            );
        }
    }

    #[test]
    fn document_urls_are_judged_as_the_runtime_metadata_judges_them() {
        use mcp_oauth::metadata::ProtectedResourceMetadata;
        for value in url_cases() {
            let document = ProtectedResourceMetadata::builder("https://mcp.example.com/mcp")
                .authorization_server("https://as.example.com")
                .resource_documentation(value.as_str());
            assert_eq!(
                check_https_url("resource_documentation", &value).map(drop),
                runtime(document),
                "{value:?}"
            );
        }
    }

    #[test]
    fn plain_http_is_accepted_on_every_loopback_host_and_nowhere_else() {
        for value in [
            "http://localhost/mcp",
            "http://127.0.0.2:8080/mcp",
            "http://127.255.255.255/mcp",
            "http://[::1]/mcp",
        ] {
            assert_eq!(check_identifier("resource", value), Ok(()), "{value}");
        }
        for value in [
            "http://app.localhost/mcp",
            "http://128.0.0.1/mcp",
            "http://[::ffff:127.0.0.1]/mcp",
        ] {
            assert!(
                identifier_error(value).contains("must be an https URL"),
                "{value}"
            );
        }
    }
}
