//! A test kit: a local issuer for tests, ours and our users'.
//!
//! [`TestIssuer`] serves RFC 8414 / OpenID discovery and a JWKS on 127.0.0.1, mints any
//! token (any claims, `kid`, `alg`, `typ`, expiry, invalid ones too), rotates and removes keys,
//! counts requests, and can be made slow, failing or garbage-serving. [`HttpsServer`] serves
//! a router over https on loopback, with a certificate from [`TEST_ROOT_CA_PEM`], a test
//! root CA whose keys are public.

pub mod dpop;
pub mod https;
mod issuer;
pub mod keys;
pub(crate) mod listener;
#[cfg(feature = "redis")]
mod redis;

pub use dpop::DpopKey;
pub use https::{HttpsServer, TEST_ROOT_CA_PEM, https_client, trust_only};
pub use issuer::{Fault, TestIssuer, TestIssuerBuilder, TokenBuilder};
pub use keys::{SigningAlgorithm, SigningKey, compact_jws};
#[cfg(feature = "redis")]
pub use redis::RedisServer;

/// An HTTP client for tests that talk to loopback servers: no proxy, no redirects followed,
/// and TLS set up for whichever crypto backend this build uses (in a pure-Rust build a plain
/// `reqwest::Client::new()` would panic for want of a rustls provider).
///
/// ```
/// let client = mcp_oauth::testing::http_client();
/// # drop(client);
/// ```
pub fn http_client() -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    crate::http_client::with_tls_backend(builder)
        .build()
        .expect("an HTTP client for loopback tests")
}
