//! The fingerprint of a token: what logs, audit events and metrics show instead of it.

use std::fmt;

use crate::crypto::sha256;

/// A short, non-reversible fingerprint of a token for logs: the first 8 bytes of its
/// SHA-256, in hex. Raw tokens are never logged or stored.
///
/// ```
/// use mcp_oauth::validation::TokenFingerprint;
///
/// let fingerprint = TokenFingerprint::of("eyJhbGciOi...");
/// assert_eq!(fingerprint.to_string().len(), 16);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenFingerprint([u8; 8]);

impl TokenFingerprint {
    /// The fingerprint of `token`.
    pub fn of(token: &str) -> Self {
        Self::from_sha256(&sha256(token.as_bytes()))
    }

    pub(crate) fn from_sha256(hash: &[u8; 32]) -> Self {
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&hash[..8]);
        Self(prefix)
    }
}

impl fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({self})")
    }
}
