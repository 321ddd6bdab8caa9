//! JSON Web Key Sets, per issuer.
//!
//! A [`KeySet`] is a parsed JWKS: every usable key prepared once as a [`VerifyingKey`] bound
//! to exactly one algorithm. A [`RemoteKeySet`] keeps an issuer's set fresh: fetched from an
//! explicit `jwks_uri` or found through discovery (RFC 8414, then OpenID Connect), cached for
//! the `Cache-Control` lifetime within clamps, refreshed ahead of expiry in the background,
//! refreshed once (single-flight, behind a cooldown) when a token names an unknown `kid`,
//! and kept when a refresh fails (stale-if-error).
//!
//! ```
//! use mcp_oauth::key_set::{KeySet, KeySetOptions};
//! use mcp_oauth::crypto::Algorithm;
//!
//! let jwks = br#"{"keys":[
//!   {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
//!   {"kty":"oct","kid":"shared","k":"c2VjcmV0"},
//!   {"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}
//! ]}"#;
//! let set = KeySet::from_jwks(jwks, &KeySetOptions::default()).unwrap();
//! assert_eq!(set.len(), 1); // the oct key is ignored, the malformed one skipped
//! assert_eq!(set.skipped().len(), 2);
//! assert!(set.find(Some("ed"), Algorithm::EdDSA).is_ok());
//! ```

mod discovery;
mod jwk;
mod remote;

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::{Algorithm, AlgorithmSet, VerifyingKey};

pub use discovery::discovery_urls;
pub use remote::{
    KeyRef, KeySetConfig, KeySetConfigError, KeySetLoadError, KeySetStats, KeySource,
    KeyUnavailable, RemoteKeySet,
};

/// How JWKs become [`VerifyingKey`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetOptions {
    /// The algorithms keys may be bound to; a key bound to another algorithm is skipped.
    pub algorithms: AlgorithmSet,
    /// The algorithm of an RSA key published without `alg` (Entra ID publishes such sets).
    /// RS256 by default.
    pub rsa_default_algorithm: Algorithm,
    /// At most this many keys are read from one set (the rest are skipped): bounds the
    /// work a hostile or broken endpoint can cause. 64 by default.
    pub max_keys: usize,
}

impl Default for KeySetOptions {
    fn default() -> Self {
        Self {
            algorithms: AlgorithmSet::default(),
            rsa_default_algorithm: Algorithm::RS256,
            max_keys: 64,
        }
    }
}

/// A key of the set that was not loaded, and why. The set's other keys still serve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedKey {
    /// Its position in the `keys` array.
    pub index: usize,
    /// Its `kid`, if it had a readable one (truncated to 64 characters).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: &'static str,
}

/// Why a JWKS document could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// The document is not a JSON object with a `keys` array.
    #[error("the JWKS is not a JSON object with a `keys` array")]
    NotAJwks,
    /// The set holds no key this policy can use (all skipped, or empty).
    #[error("the JWKS holds no usable signing key")]
    NoUsableKey,
}

/// A parsed JSON Web Key Set: usable keys, each bound to one algorithm, indexed by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Every usable key, in document order.
    keys: Vec<Arc<VerifyingKey>>,
    /// Positions in `keys` of the keys with each kid.
    by_kid: HashMap<Box<str>, Vec<usize>>,
    skipped: Vec<SkippedKey>,
    // Each key's JWK fingerprint, so a refresh reuses unchanged keys instead of re-parsing.
    fingerprints: HashMap<[u8; 32], Arc<VerifyingKey>>,
}

/// The outcome of looking a token's key up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// No key has this `kid` (or the token has none and no single key fits).
    #[error("no key with this kid")]
    UnknownKid,
    /// Keys with this `kid` exist, but none is bound to the header's algorithm.
    #[error("the key is bound to another algorithm")]
    AlgorithmMismatch,
}

impl KeySet {
    /// Parses a JWKS document. Keys that are malformed, symmetric (`oct`), private, not for
    /// signatures, or bound to an algorithm outside `options.algorithms` are skipped and
    /// listed in [`skipped`](Self::skipped); the rest are loaded.
    pub fn from_jwks(document: &[u8], options: &KeySetOptions) -> Result<Self, KeySetError> {
        Self::from_jwks_reusing(document, options, None)
    }

    /// Like [`from_jwks`](Self::from_jwks), reusing the already-parsed keys of `previous`
    /// whose JWK is unchanged (so a refresh parses only new keys, and a token cache keyed
    /// on key identity survives it).
    pub fn from_jwks_reusing(
        document: &[u8],
        options: &KeySetOptions,
        previous: Option<&KeySet>,
    ) -> Result<Self, KeySetError> {
        let parsed = jwk::parse_document(document, options, previous.map(|p| &p.fingerprints))?;
        let mut set = KeySet {
            skipped: parsed.skipped,
            ..KeySet::default()
        };
        for key in parsed.keys {
            set.fingerprints.insert(key.fingerprint, key.key.clone());
            if let Some(kid) = key.kid {
                set.by_kid.entry(kid).or_default().push(set.keys.len());
            }
            set.keys.push(key.key);
        }
        if set.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(set)
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys that were not loaded, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The key for a token whose header names `kid` and `alg`.
    ///
    /// Without a `kid`, a key is chosen only when exactly one key of the set is bound to
    /// `alg`: trying several keys would let one token cost several verifications.
    pub fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&Arc<VerifyingKey>, KeyLookupError> {
        self.position(kid, alg).map(|at| &self.keys[at])
    }

    /// Where [`find`](Self::find)'s key is in `keys` (so a lookup can be held as a guard of the
    /// set and an index, without touching the key's reference count).
    pub(crate) fn position(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<usize, KeyLookupError> {
        match kid {
            Some(kid) => {
                let positions = self.by_kid.get(kid).ok_or(KeyLookupError::UnknownKid)?;
                positions
                    .iter()
                    .copied()
                    .find(|&at| self.keys[at].algorithm() == alg)
                    .ok_or(KeyLookupError::AlgorithmMismatch)
            }
            None => {
                let mut candidates =
                    (0..self.keys.len()).filter(|&at| self.keys[at].algorithm() == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(at), None) => Ok(at),
                    _ => Err(KeyLookupError::UnknownKid),
                }
            }
        }
    }

    /// The key at a position [`position`](Self::position) returned.
    pub(crate) fn key_at(&self, at: usize) -> &Arc<VerifyingKey> {
        &self.keys[at]
    }

    /// The kids of the set's keys.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid.keys().map(|kid| &**kid)
    }

    /// Whether some key of the set has this kid.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Whether this exact key (the same prepared instance) is still part of the set.
    pub fn contains(&self, key: &Arc<VerifyingKey>) -> bool {
        self.keys.iter().any(|k| Arc::ptr_eq(k, key))
    }

    /// Whether this exact key is in the set under `kid` (a cheaper [`contains`](Self::contains)).
    pub fn contains_under(&self, kid: Option<&str>, key: &Arc<VerifyingKey>) -> bool {
        match kid {
            Some(kid) => self.by_kid.get(kid).is_some_and(|positions| {
                positions.iter().any(|&at| Arc::ptr_eq(&self.keys[at], key))
            }),
            None => self.contains(key),
        }
    }
}
