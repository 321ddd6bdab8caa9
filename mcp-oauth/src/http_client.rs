//! The HTTP client used to fetch discovery documents and key sets, and what every call to
//! an authorization server shares (introspection, token exchange): reading a bounded body,
//! describing a failed request, discovering an endpoint from the server's metadata.
//!
//! Built explicitly for the selected crypto backend: no process-wide rustls provider is
//! installed, so applications that install their own are unaffected.

use std::time::Duration;

use url::Url;

use crate::loopback::{is_allowed_discovered_url, is_https_or_loopback_http};

/// Why a call to an authorization server produced no body to judge (never holds a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The request failed: the error and its causes.
    Request(String),
    /// The request timed out.
    Timeout,
    /// The body exceeds the bound.
    TooLarge,
}

impl FetchError {
    pub(crate) fn describe(&self) -> String {
        match self {
            FetchError::Request(error) => format!("request failed: {error}"),
            FetchError::Timeout => "the call timed out".into(),
            FetchError::TooLarge => "the response is too large".into(),
        }
    }
}

/// A reqwest error with its causes, as one line, without the URL (whose query may hold
/// what should not be repeated; callers name the endpoint themselves).
pub(crate) fn request_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Request(text)
}

/// The response's status and body, read up to `limit` bytes (a longer one is refused, not
/// cut: a cut JSON document could still parse).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(reqwest::StatusCode, Vec<u8>), FetchError> {
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// One discovery candidate that did not yield the endpoint, and why (for the caller's log).
pub(crate) struct DiscoveryMiss {
    pub(crate) url: String,
    pub(crate) why: String,
}

/// The endpoint named `member` (`introspection_endpoint`, `token_endpoint`) in `issuer`'s
/// RFC 8414 / OpenID metadata, tried at each well-known URL in turn: the document must be
/// the issuer's own (RFC 8414 §3.3), and the endpoint https, or plain http only when the
/// issuer itself is a loopback (dev) issuer. `Err` lists every candidate's failure.
pub(crate) async fn discover_endpoint(
    client: &reqwest::Client,
    issuer: &str,
    member: &str,
) -> Result<Url, Vec<DiscoveryMiss>> {
    let mut misses = Vec::new();
    let candidates = crate::key_set::discovery_urls(issuer).map_err(|error| {
        vec![DiscoveryMiss {
            url: issuer.to_owned(),
            why: format!("not a URL: {error}"),
        }]
    })?;
    for candidate in candidates {
        let miss = |why: String| DiscoveryMiss {
            url: candidate.clone(),
            why,
        };
        let response = match client
            .get(candidate.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => {
                misses.push(miss(request_error(error).describe()));
                continue;
            }
        };
        let body = match read_capped(response, 256 * 1024).await {
            Ok((status, body)) if status == reqwest::StatusCode::OK => body,
            Ok((status, _)) => {
                misses.push(miss(format!("status {status}")));
                continue;
            }
            Err(error) => {
                misses.push(miss(error.describe()));
                continue;
            }
        };
        let Ok(document) = serde_json::from_slice::<serde_json::Value>(&body) else {
            misses.push(miss("not JSON".into()));
            continue;
        };
        if document.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            misses.push(miss("the document names another issuer; ignored".into()));
            continue;
        }
        let endpoint = document
            .get(member)
            .and_then(|v| v.as_str())
            .and_then(|v| Url::parse(v).ok())
            .filter(|url| is_allowed_discovered_url(issuer, url));
        match endpoint {
            Some(endpoint) => return Ok(endpoint),
            None => misses.push(miss(format!("the document has no usable {member}"))),
        }
    }
    Err(misses)
}

/// Builds the reqwest client for fetching keys: the timeouts given, at most
/// `max_redirects` redirects, each to an allowed URL (https, or http to a loopback host).
pub(crate) fn build(
    connect_timeout: Duration,
    timeout: Duration,
    max_redirects: usize,
) -> Result<reqwest::Client, reqwest::Error> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        let started_on_https = attempt
            .previous()
            .first()
            .is_some_and(|url| url.scheme() == "https");
        if attempt.previous().len() > max_redirects {
            attempt.error("too many redirects")
        } else if !is_https_or_loopback_http(attempt.url())
            || (started_on_https && attempt.url().scheme() != "https")
        {
            attempt.error("redirect to a non-https URL")
        } else {
            attempt.follow()
        }
    });
    let builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(redirects)
        .no_proxy()
        .user_agent(concat!("mcp-oauth/", env!("CARGO_PKG_VERSION")));
    with_tls_backend(builder).build()
}

#[cfg(feature = "aws-lc-rs")]
pub(crate) fn with_tls_backend(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    // reqwest's `rustls` feature uses the aws-lc-rs provider explicitly.
    builder
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
pub(crate) fn with_tls_backend(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    builder
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
pub(crate) fn with_tls_backend(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    use rustls_platform_verifier::BuilderVerifierExt;
    use std::sync::Arc;

    // Pure-Rust build: rustls with its ring provider, passed to reqwest explicitly.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|config| config.with_platform_verifier())
    {
        Ok(config) => builder.tls_backend_preconfigured(config.with_no_client_auth()),
        Err(error) => {
            // Without a verifier no https fetch can succeed; loopback http still works.
            tracing::error!(target: "mcp_oauth::key_set", %error, "cannot set up TLS for key-set fetches");
            builder
        }
    }
}
