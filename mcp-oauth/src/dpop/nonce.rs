//! Stateless server nonces (RFC 9449 §8, §9): a nonce is a timestamp with a MAC over it, so
//! any replica that holds the key can check one without shared state. The first key signs
//! new nonces; every key verifies (rotation: add the new key first, drop the old one after a
//! nonce lifetime).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

const CONTEXT: &[u8] = b"mcp-oauth dpop nonce v1";
const MAC_BYTES: usize = 16;
const NONCE_BYTES: usize = 8 + MAC_BYTES;

/// The default time a nonce is accepted for.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Issues and checks server nonces.
///
/// ```
/// use mcp_oauth::dpop::DpopNonces;
/// use std::time::Duration;
///
/// let nonces = DpopNonces::new([[7; 32]]).unwrap().lifetime(Duration::from_secs(60));
/// let nonce = nonces.issue(1_000);
/// assert!(nonces.check(&nonce, 1_030));
/// assert!(!nonces.check(&nonce, 1_100)); // older than the lifetime
/// assert!(!DpopNonces::new([[8; 32]]).unwrap().check(&nonce, 1_030)); // another key
/// ```
pub struct DpopNonces {
    keys: Vec<[u8; 32]>,
    lifetime: u64,
    /// The nonce of the current period: every response of a period carries the same one.
    current: Mutex<(u64, String)>,
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopNonces")
            .field("keys", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// No key was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DPoP nonces need at least one key")]
pub struct NoNonceKey;

impl DpopNonces {
    /// Nonces under `keys` (32 random bytes each, shared by the replicas; the first signs).
    pub fn new(keys: impl IntoIterator<Item = [u8; 32]>) -> Result<Self, NoNonceKey> {
        let keys: Vec<[u8; 32]> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(NoNonceKey);
        }
        Ok(Self {
            keys,
            lifetime: DEFAULT_NONCE_LIFETIME.as_secs(),
            current: Mutex::new((u64::MAX, String::new())),
        })
    }

    /// Nonces under a random key of this process (a single replica).
    #[cfg(feature = "layer")]
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::new([key]).unwrap_or_else(|_| unreachable!("one key was given"))
    }

    /// How long a nonce is accepted (default 5 minutes, at least 4 seconds). A new nonce is
    /// issued every quarter of it.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.as_secs().max(4);
        self
    }

    fn mac(key: &[u8; 32], issued: u64) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(CONTEXT);
        mac.update(&issued.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The nonce to hand out at `now` (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let period = (self.lifetime / 4).max(1);
        let issued = now - now % period;
        let mut current = self.current.lock();
        if current.0 != issued {
            let mut bytes = [0u8; NONCE_BYTES];
            bytes[..8].copy_from_slice(&issued.to_be_bytes());
            bytes[8..].copy_from_slice(&Self::mac(&self.keys[0], issued)[..MAC_BYTES]);
            *current = (issued, URL_SAFE_NO_PAD.encode(bytes));
        }
        current.1.clone()
    }

    /// Whether `nonce` was issued under one of the keys, within the lifetime before `now`.
    pub fn check(&self, nonce: &str, now: u64) -> bool {
        let mut bytes = [0u8; NONCE_BYTES + 1];
        let Ok(NONCE_BYTES) = URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut bytes) else {
            return false;
        };
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&bytes[..8]);
        let issued = u64::from_be_bytes(issued);
        if issued > now || now - issued > self.lifetime {
            return false;
        }
        self.keys.iter().any(|key| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(CONTEXT);
            mac.update(&issued.to_be_bytes());
            mac.verify_truncated_left(&bytes[8..NONCE_BYTES]).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_stable_within_a_period_and_rotates_after() {
        let nonces = DpopNonces::new([[1; 32]])
            .unwrap()
            .lifetime(Duration::from_secs(40));
        assert_eq!(nonces.issue(100), nonces.issue(109));
        assert_ne!(nonces.issue(100), nonces.issue(110));
    }

    #[test]
    fn every_key_verifies_and_the_first_signs() {
        let old = DpopNonces::new([[1; 32]]).unwrap();
        let rotated = DpopNonces::new([[2; 32], [1; 32]]).unwrap();
        assert!(rotated.check(&old.issue(500), 500));
        assert!(!old.check(&rotated.issue(500), 500));
    }

    #[test]
    fn tampered_truncated_or_future_nonces_are_refused() {
        let nonces = DpopNonces::new([[1; 32]]).unwrap();
        let nonce = nonces.issue(1_000);
        let mut tampered = nonce.clone().into_bytes();
        tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
        assert!(!nonces.check(std::str::from_utf8(&tampered).unwrap(), 1_000));
        assert!(!nonces.check(&nonce[..nonce.len() - 1], 1_000));
        // Issued at the start of its period (975): not before.
        assert!(!nonces.check(&nonce, 974));
        assert!(!nonces.check("", 1_000));
        assert!(!nonces.check("not base64!", 1_000));
    }
}
