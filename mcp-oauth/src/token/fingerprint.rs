//! The fingerprint of a token: what logs, audit events and metrics show instead of it.

use std::fmt;

use crate::crypto::{hex_digits, sha256};

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

    /// The 16 lowercase hex digits `Display` writes, without the formatting machinery (the
    /// audit line writes one per request).
    pub(crate) fn hex(&self) -> [u8; 16] {
        let mut digits = [0; 16];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.0) {
            pair.copy_from_slice(&hex_digits(byte));
        }
        digits
    }
}

impl fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex();
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({self})")
    }
}
