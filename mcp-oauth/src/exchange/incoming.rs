//! The incoming access token, sealed: kept for the exchanger, shown to nobody else.

use std::fmt;
use std::sync::Arc;

use crate::validation::{TokenFingerprint, VerifiedToken};

/// The access token the request came with, kept by the HTTP layer (only when a
/// [`TokenExchanger`](super::TokenExchanger) is configured) so that a tool can exchange it
/// for a downstream token. It never leaves the process through this type: it has no
/// `Display`, no `Serialize`, a `Debug` that shows its fingerprint only, and no public
/// accessor; only this crate's exchanger reads it, to send it as the `subject_token` to the
/// authorization server it is configured with. Tools never forward it (the specification
/// forbids token passthrough), and the layer removes the `Authorization` header before the
/// endpoint sees the request.
#[derive(Clone)]
pub struct IncomingToken(Arc<Sealed>);

struct Sealed {
    raw: Box<str>,
    issuer: Box<str>,
    hash: [u8; 32],
    expires_at: u64,
}

impl IncomingToken {
    /// Seals `raw`, the token `identity` was verified from.
    #[cfg_attr(not(feature = "layer"), allow(dead_code))]
    pub(crate) fn new(raw: &str, identity: &VerifiedToken) -> Self {
        Self(Arc::new(Sealed {
            raw: raw.into(),
            issuer: identity.issuer().into(),
            hash: *identity.token_hash(),
            expires_at: identity.expires_at(),
        }))
    }

    /// The token itself: for the exchanger's request body only.
    pub(crate) fn expose(&self) -> &str {
        &self.0.raw
    }

    /// The token's full SHA-256 (the exchange cache's key, never the short fingerprint).
    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.0.hash
    }

    /// The issuer that verified the token (its `iss`): the only server it may be sent to.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The token's expiry (`exp`), seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.0.expires_at
    }

    /// The token's fingerprint, as the audit log shows it.
    pub fn fingerprint(&self) -> TokenFingerprint {
        TokenFingerprint::from_sha256(&self.0.hash)
    }
}

impl fmt::Debug for IncomingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingToken")
            .field("fingerprint", &self.fingerprint())
            .field("issuer", &self.0.issuer)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_fingerprint_never_the_token() {
        let identity = VerifiedToken::for_tests("a");
        let token = IncomingToken::new("eyJhbGciOi.secret-part.signature", &identity);
        let shown = format!("{token:?}");
        assert!(!shown.contains("secret-part"), "{shown}");
        assert!(shown.contains(&token.fingerprint().to_string()), "{shown}");
        assert_eq!(token.expose(), "eyJhbGciOi.secret-part.signature");
    }
}
