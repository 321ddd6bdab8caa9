//! The HTTP client used to fetch discovery documents and key sets.
//!
//! Built explicitly for the selected crypto backend: no process-wide rustls provider is
//! installed, so applications that install their own are unaffected.

use std::time::Duration;

use crate::loopback::is_https_or_loopback_http;

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
