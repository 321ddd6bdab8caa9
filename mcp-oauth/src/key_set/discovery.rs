//! Finding an issuer's `jwks_uri` from its metadata (RFC 8414, OpenID Connect Discovery).

use url::Url;

/// The metadata URLs tried for `issuer`, in order (SPEC §7): the RFC 8414 URL with the
/// issuer's path appended after the well-known segment, the OpenID Connect variant with the
/// same insertion, then the OpenID Connect URL appended to the issuer. Duplicates removed.
///
/// ```
/// use mcp_oauth::key_set::discovery_urls;
///
/// assert_eq!(
///     discovery_urls("https://as.example.com/realms/acme").unwrap(),
///     [
///         "https://as.example.com/.well-known/oauth-authorization-server/realms/acme",
///         "https://as.example.com/.well-known/openid-configuration/realms/acme",
///         "https://as.example.com/realms/acme/.well-known/openid-configuration",
///     ]
/// );
/// assert_eq!(
///     discovery_urls("https://as.example.com").unwrap(),
///     [
///         "https://as.example.com/.well-known/oauth-authorization-server",
///         "https://as.example.com/.well-known/openid-configuration",
///     ]
/// );
/// ```
pub fn discovery_urls(issuer: &str) -> Result<Vec<String>, url::ParseError> {
    let url = Url::parse(issuer)?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ];
    urls.dedup();
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_of_the_issuer_is_not_doubled() {
        assert_eq!(
            discovery_urls("https://as.example.com/tenant/").unwrap()[2],
            "https://as.example.com/tenant/.well-known/openid-configuration"
        );
    }
}
