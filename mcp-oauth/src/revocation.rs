//! Revocation: access tokens refused before their `exp`.
//!
//! A JWT access token is valid until it expires; an authorization server that revokes one
//! (RFC 7009) cannot reach the resource servers that validate it locally. [`Revocations`] is
//! the denylist the [`Validator`](crate::Validator) consults after a token verified (from its
//! cache too): an entry names a token by its issuer and `jti`, or by the full SHA-256 of the
//! token (never the short audit fingerprint: an attacker who can aim at its collisions must
//! not be able to get someone else's token refused, nor theirs accepted). An entry lasts until
//! the token's own `exp` and the largest clock leeway a validator may grant after it
//! ([`GRACE`]), after which validation refuses the token anyway.
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
//!     .revoke(Revocation::jwt_id("https://auth.example.com", "4f1c2a"), 1_900_000_000) // its exp
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

/// How long an entry outlives its `until` (the token's `exp`): the largest leeway a validator
/// grants past `exp` ([`MAX_LEEWAY`](crate::validation::MAX_LEEWAY), 300 s) and a minute for
/// the replicas' clocks to differ.
pub const GRACE: u64 = crate::token::MAX_LEEWAY.as_secs() + 60;

/// The latest `until` kept (the year 9999): a later one is taken as this one, so that it stays
/// exact in a shared store's scores (double precision).
pub const MAX_UNTIL: u64 = 253_402_300_799;

/// Whether an entry listed until `until` still holds at `now`.
pub(crate) fn holds(until: u64, now: u64) -> bool {
    until.saturating_add(GRACE) >= now
}

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
    /// Revocations the backend could not share yet: shared again once it answers.
    unpublished: parking_lot::Mutex<HashMap<Revocation, u64>>,
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
                unpublished: parking_lot::Mutex::new(HashMap::new()),
                clock,
            }),
        }
    }

    /// Shares revocations through `backend` from now on; `false` (and nothing changes) when
    /// the list has a backend already.
    pub fn set_backend(&self, backend: Arc<dyn RevocationBackend>) -> bool {
        let mut current = self.inner.backend.write();
        if current.is_some() {
            return false;
        }
        *current = Some(backend);
        true
    }

    /// Revokes a token until `until` (Unix seconds; its `exp` is enough): refused here at
    /// once, and by every replica once the backend has shared it. An `Err` means the other
    /// replicas do not know yet: the revocation is kept and shared again when the backend
    /// answers ([`take_unpublished`](Self::take_unpublished)).
    pub async fn revoke(&self, revocation: Revocation, until: u64) -> Result<(), RevocationError> {
        let until = until.min(MAX_UNTIL);
        self.insert_local(revocation.clone(), until);
        let Some(backend) = self.inner.backend.read().clone() else {
            return Ok(());
        };
        // Queued before it is sent, so that a cancelled call is shared all the same.
        self.keep_unpublished([(revocation.clone(), until)]);
        backend.publish(&revocation, until).await?;
        let mut unpublished = self.inner.unpublished.lock();
        if unpublished
            .get(&revocation)
            .is_some_and(|queued| *queued <= until)
        {
            unpublished.remove(&revocation);
        }
        Ok(())
    }

    /// The revocations the backend could not share when they were made, for it to share
    /// again (what it fails to share it gives back with [`keep_unpublished`](Self::keep_unpublished)).
    /// Expired ones are dropped.
    pub fn take_unpublished(&self) -> Vec<(Revocation, u64)> {
        let now = self.inner.clock.now().as_secs();
        std::mem::take(&mut *self.inner.unpublished.lock())
            .into_iter()
            .filter(|(_, until)| holds(*until, now))
            .collect()
    }

    /// Puts back revocations still not shared (one entry per token, the latest `until`).
    pub fn keep_unpublished(&self, entries: impl IntoIterator<Item = (Revocation, u64)>) {
        let mut unpublished = self.inner.unpublished.lock();
        for (revocation, until) in entries {
            let queued = unpublished.entry(revocation).or_insert(until);
            *queued = (*queued).max(until);
        }
    }

    /// [`revoke`](Self::revoke) from synchronous code: listed here at once, shared in the
    /// background (a failure to share is logged under `mcp_oauth::revocation`). Needs a Tokio
    /// runtime when a backend is set.
    pub fn revoke_in_background(&self, revocation: Revocation, until: u64) {
        let until = until.min(MAX_UNTIL);
        // Refused here before this returns; only the sharing waits.
        self.insert_local(revocation.clone(), until);
        if self.inner.backend.read().is_none() {
            return;
        }
        let list = self.clone();
        tokio::spawn(async move {
            if let Err(error) = list.revoke(revocation, until).await {
                tracing::warn!(target: "mcp_oauth::revocation", %error, "a revocation could not be shared with the other replicas yet: it will be when the shared store answers");
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
        let until = until.min(MAX_UNTIL);
        if !holds(until, now) {
            return;
        }
        let mut entries = self.inner.entries.write();
        let current = entries.entry(revocation).or_insert(until);
        *current = (*current).max(until);
        if entries.len().is_power_of_two() {
            entries.retain(|_, until| holds(*until, now));
        }
        self.inner.len.store(entries.len(), Ordering::Release);
    }

    /// Whether `revocation` is listed (and not past its `until`) at `now` (Unix seconds).
    pub fn contains(&self, revocation: &Revocation, now: u64) -> bool {
        self.inner
            .entries
            .read()
            .get(revocation)
            .is_some_and(|until| holds(*until, now))
    }

    /// Whether the token `identity` came from is revoked.
    pub fn is_revoked(&self, identity: &VerifiedToken) -> bool {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = self.inner.clock.now().as_secs();
        let entries = self.inner.entries.read();
        let listed = |revocation: &Revocation| {
            entries
                .get(revocation)
                .is_some_and(|until| holds(*until, now))
        };
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
        // A validator may accept the token up to its leeway past `exp`: the entry holds on.
        assert!(list.contains(&id, 1_010 + GRACE));
        assert!(!list.contains(&id, 1_011 + GRACE));
        list.insert_local(Revocation::jwt_id("https://as", "2"), 999 - GRACE);
        assert_eq!(list.len(), 1, "an entry already expired is not kept");
        list.insert_local(Revocation::jwt_id("https://as", "3"), u64::MAX);
        assert!(list.contains(&Revocation::jwt_id("https://as", "3"), MAX_UNTIL));
    }

    struct Flaky(std::sync::atomic::AtomicBool);

    impl RevocationBackend for Flaky {
        fn publish<'a>(
            &'a self,
            _revocation: &'a Revocation,
            _until: u64,
        ) -> StoreFuture<'a, Result<(), RevocationError>> {
            let up = self.0.load(Ordering::SeqCst);
            Box::pin(async move {
                if up {
                    Ok(())
                } else {
                    Err(RevocationError("down".into()))
                }
            })
        }
    }

    #[tokio::test]
    async fn a_revocation_not_shared_is_kept_until_it_is() {
        let clock = Arc::new(ManualClock::new(1_000));
        let list = Revocations::with_clock(clock);
        let backend = Arc::new(Flaky(std::sync::atomic::AtomicBool::new(false)));
        assert!(list.set_backend(backend.clone()));
        assert!(!list.set_backend(backend.clone()), "one backend per list");
        let id = Revocation::jwt_id("https://as", "1");
        assert!(list.revoke(id.clone(), 2_000).await.is_err());
        assert!(
            list.contains(&id, 1_000),
            "refused here whatever the backend says"
        );
        assert_eq!(list.take_unpublished(), vec![(id.clone(), 2_000)]);
        list.keep_unpublished([(id.clone(), 2_000)]);
        backend.0.store(true, Ordering::SeqCst);
        assert!(list.revoke(id.clone(), 2_000).await.is_ok());
        assert!(
            list.take_unpublished().is_empty(),
            "shared: no longer queued"
        );
        // From synchronous code, without waiting for the backend: listed before it returns.
        let other = Revocation::token("opaque");
        list.revoke_in_background(other.clone(), 2_000);
        assert!(list.contains(&other, 1_000));
    }
}
