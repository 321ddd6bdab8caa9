//! URL checks, the compile-time twins of the rules `mcp_oauth::metadata` applies when it
//! builds the metadata document: the same `url` parser, the same decisions, so that a
//! declaration that compiles also renders.

use std::net::{Ipv4Addr, Ipv6Addr};

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

/// Checks an absolute `https` URL, or `http` on a loopback host (`localhost`, `127.0.0.1`,
/// `[::1]`). A query or fragment is allowed (documentation links).
pub fn check_https_url(member: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|err| {
        format!("{member} {value:?} is not an absolute URL ({err}); write it in full, as https://host/path")
    })?;
    let loopback = match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{member} {value:?} must be an https URL (plain http is allowed only for the hosts \
             localhost, 127.0.0.1 and [::1], for local development)"
        )),
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
            "http://127.0.0.2/mcp",
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
}
