//! A test kit: a local issuer for tests, ours and our users'.
//!
//! [`TestIssuer`] serves RFC 8414 / OpenID discovery and a JWKS on 127.0.0.1, mints any
//! token (any claims, `kid`, `alg`, `typ`, expiry, invalid ones too), rotates and removes keys,
//! counts requests, and can be made slow, failing or garbage-serving.

mod issuer;
pub mod keys;

pub use issuer::{Fault, TestIssuer, TestIssuerBuilder, TokenBuilder};
pub use keys::{SigningAlgorithm, SigningKey, compact_jws};
