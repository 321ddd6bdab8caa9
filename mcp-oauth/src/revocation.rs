//! Revocation: access tokens refused before their `exp`.
//!
//! A JWT access token is valid until it expires; an authorization server that revokes one
//! (RFC 7009) cannot reach the resource servers that validate it locally. [`Revocations`] is
//! the denylist the [`Validator`](crate::Validator) consults after a token verified (from its
//! cache too): an entry names a token by its issuer and `jti`, or by the full SHA-256 of the
//! token (never the short audit fingerprint: an attacker who can aim at its collisions must
//! not be able to get someone else's token refused, nor theirs accepted). An entry lasts until
//! the token's own `exp`, after which validation refuses the token anyway.
//!
//! The check reads a local table and never waits on the network: with a backend
//! ([`RevocationBackend`], Redis through [`crate::redis`]) a revocation made on one replica is
//! published to every other, which mirror the shared list into their local table, and re-read
//! it in full after every reconnection (messages sent while a replica was disconnected are
//! lost otherwise).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use mcp_oauth::revocation::{Revocation, Revocations};
//!
//! let revocations = Revocations::new();
//! revocations
//!     .revoke(Revocation::jwt_id("https://auth.example.com", "4f1c2a"), u64::MAX)
//!     .await
//!     .unwrap();
//! assert!(revocations.contains(&Revocation::jwt_id("https://auth.example.com", "4f1c2a"), 0));
//! assert!(!revocations.contains(&Revocation::jwt_id("https://other.example.com", "4f1c2a"), 0));
//! // Validator::builder().revocations(revocations.clone()) refuses such tokens (401, `revoked`).
//! # });
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::RwLock;

use crate::clock::{Clock, SystemClock};
use crate::crypto::sha256;
use crate::store::StoreFuture;
use crate::token::VerifiedToken;

/// One revoked token: by issuer and `jti`, or by the SHA-256 of the whole token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// The token of this issuer with this `jti` (RFC 9068 access tokens carry one).
    JwtId {
        /// The token's `iss`.
        issuer: String,
        /// The token's `jti`.
        jti: String,
    },
    /// The token whose SHA-256 this is (any token, opaque ones included).
    TokenHash([u8; 32]),
}

impl Revocation {
    /// The token `jti` of `issuer`.
    pub fn jwt_id(issuer: impl Into<String>, jti: impl Into<String>) -> Self {
        Revocation::JwtId {
            issuer: issuer.into(),
            jti: jti.into(),
        }
    }

    /// The token itself (only its SHA-256 is kept).
    pub fn token(token: &str) -> Self {
        Revocation::TokenHash(sha256(token.as_bytes()))
    }

    /// A stable text form for shared stores: `j:<base64url issuer>:<base64url jti>` or
    /// `h:<hex SHA-256>`.
    pub fn encode(&self) -> String {
        match self {
            Revocation::JwtId { issuer, jti } => format!(
                "j:{}:{}",
                URL_SAFE_NO_PAD.encode(issuer),
                URL_SAFE_NO_PAD.encode(jti)
            ),
            Revocation::TokenHash(hash) => {
                let mut text = String::with_capacity(2 + 64);
                text.push_str("h:");
                for byte in hash {
                    text.push_str(&format!("{byte:02x}"));
                }
                text
            }
        }
    }

    /// Reads back [`encode`](Self::encode); `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix("j:") {
            let (issuer, jti) = rest.split_once(':')?;
            let issuer = String::from_utf8(URL_SAFE_NO_PAD.decode(issuer).ok()?).ok()?;
            let jti = String::from_utf8(URL_SAFE_NO_PAD.decode(jti).ok()?).ok()?;
            return Some(Revocation::JwtId { issuer, jti });
        }
        let hex = text.strip_prefix("h:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut hash = [0u8; 32];
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Revocation::TokenHash(hash))
    }
}

impl fmt::Debug for Revocation {
    /// The issuer and `jti`, or the first 8 bytes of the hash (as the audit log shows it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revocation::JwtId { issuer, jti } => write!(f, "Revocation({issuer}, jti {jti})"),
            Revocation::TokenHash(hash) => write!(
                f,
                "Revocation(token {})",
                crate::token::TokenFingerprint::from_sha256(hash)
            ),
        }
    }
}

/// Why a revocation could not be shared with the other replicas (it holds on this one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the revocation could not be shared: {0}")]
pub struct RevocationError(pub String);

/// Where revocations are shared between replicas (Redis: [`crate::redis`]). The backend
/// delivers other replicas' revocations to [`Revocations::insert_local`] of each.
pub trait RevocationBackend: Send + Sync + 'static {
    /// Shares `revocation`, valid until `until` (Unix seconds), with every replica.
    fn publish<'a>(
        &'a self,
        revocation: &'a Revocation,
        until: u64,
    ) -> StoreFuture<'a, Result<(), RevocationError>>;
}

/// The denylist: a local table, and optionally a backend that shares it; cheap to clone
/// (clones share the table). See the [module docs](self).
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<HashMap<Revocation, u64>>,
    /// Mirrors `entries.len()`: the check of an empty list takes no lock.
    len: AtomicUsize,
    backend: RwLock<Option<Arc<dyn RevocationBackend>>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("entries", &self.len())
            .field("shared", &self.inner.backend.read().is_some())
            .finish()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    /// An empty list, local to this process, on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty list whose expiries are read on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: RwLock::new(HashMap::new()),
                len: AtomicUsize::new(0),
                backend: RwLock::new(None),
                clock,
            }),
        }
    }

    /// Shares revocations through `backend` from now on.
    pub fn set_backend(&self, backend: Arc<dyn RevocationBackend>) {
        *self.inner.backend.write() = Some(backend);
    }

    /// Revokes a token until `until` (Unix seconds; its `exp` is enough): refused here at
    /// once, and by every replica once the backend has shared it. An `Err` means the other
    /// replicas may not know: retry.
    pub async fn revoke(&self, revocation: Revocation, until: u64) -> Result<(), RevocationError> {
        self.insert_local(revocation.clone(), until);
        let backend = self.inner.backend.read().clone();
        match backend {
            Some(backend) => backend.publish(&revocation, until).await,
            None => Ok(()),
        }
    }

    /// [`revoke`](Self::revoke) from synchronous code: listed here at once, shared in the
    /// background (a failure to share is logged under `mcp_oauth::revocation`). Needs a Tokio
    /// runtime when a backend is set.
    pub fn revoke_in_background(&self, revocation: Revocation, until: u64) {
        self.insert_local(revocation.clone(), until);
        let Some(backend) = self.inner.backend.read().clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = backend.publish(&revocation, until).await {
                tracing::warn!(target: "mcp_oauth::revocation", ?revocation, %error, "a revocation could not be shared with the other replicas");
            }
        });
    }

    /// Revokes the token `identity` came from, until its `exp`: by issuer and `jti` when it
    /// has one, otherwise by its hash.
    pub async fn revoke_verified(&self, identity: &VerifiedToken) -> Result<(), RevocationError> {
        let revocation = match identity.jwt_id() {
            Some(jti) => Revocation::jwt_id(identity.issuer(), jti),
            None => Revocation::TokenHash(*identity.token_hash()),
        };
        self.revoke(revocation, identity.expires_at()).await
    }

    /// Adds an entry to this replica's table only (what a backend does with what other
    /// replicas published). Expired entries are swept on the way.
    pub fn insert_local(&self, revocation: Revocation, until: u64) {
        let now = self.inner.clock.now().as_secs();
        if until < now {
            return;
        }
        let mut entries = self.inner.entries.write();
        let current = entries.entry(revocation).or_insert(until);
        *current = (*current).max(until);
        if entries.len().is_power_of_two() {
            entries.retain(|_, until| *until >= now);
        }
        self.inner.len.store(entries.len(), Ordering::Release);
    }

    /// Whether `revocation` is listed (and not past its `until`) at `now` (Unix seconds).
    pub fn contains(&self, revocation: &Revocation, now: u64) -> bool {
        self.inner
            .entries
            .read()
            .get(revocation)
            .is_some_and(|until| *until >= now)
    }

    /// Whether the token `identity` came from is revoked.
    pub fn is_revoked(&self, identity: &VerifiedToken) -> bool {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = self.inner.clock.now().as_secs();
        let entries = self.inner.entries.read();
        let listed =
            |revocation: &Revocation| entries.get(revocation).is_some_and(|until| *until >= now);
        if listed(&Revocation::TokenHash(*identity.token_hash())) {
            return true;
        }
        identity
            .jwt_id()
            .is_some_and(|jti| listed(&Revocation::jwt_id(identity.issuer(), jti)))
    }

    /// Entries held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn entries_encode_and_decode() {
        for revocation in [
            Revocation::jwt_id("https://as.example.com/t:1", "a:b"),
            Revocation::jwt_id("", ""),
            Revocation::token("eyJ.x.y"),
        ] {
            assert_eq!(
                Revocation::decode(&revocation.encode()),
                Some(revocation.clone())
            );
        }
        for garbage in ["", "x:1", "h:zz", "h:00", "j:!!:a", "j:abc"] {
            assert_eq!(Revocation::decode(garbage), None, "{garbage}");
        }
        assert!(
            !format!("{:?}", Revocation::token("secret-token")).contains("secret"),
            "Debug never shows a token"
        );
    }

    #[test]
    fn entries_expire_with_their_token() {
        let clock = Arc::new(ManualClock::new(1_000));
        let list = Revocations::with_clock(clock.clone());
        let id = Revocation::jwt_id("https://as", "1");
        list.insert_local(id.clone(), 1_010);
        assert!(list.contains(&id, 1_010));
        assert!(!list.contains(&id, 1_011));
        list.insert_local(Revocation::jwt_id("https://as", "2"), 999);
        assert_eq!(list.len(), 1, "an entry already expired is not kept");
    }
}
