//! The `jti` replay store (RFC 9449 §11.1): a proof is accepted once. Behind a trait, so that
//! the replicas of one deployment can share one store (a proof replayed to another replica
//! must be refused too); in memory by default.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use parking_lot::Mutex;

/// Whether a proof was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// First time: it is now remembered.
    Fresh,
    /// Already remembered: a replay.
    Replayed,
}

/// The store cannot say whether a proof is fresh (unreachable, full): the proof is refused
/// with 503 and `Retry-After`, never accepted (it might be a replay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP replay store is unavailable: {0}")]
pub struct ReplayStoreError(pub String);

/// A boxed future, as [`ReplayStore`] returns.
pub type ReplayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Freshness, ReplayStoreError>> + Send + 'a>>;

/// Where proof ids are remembered. An implementation must be atomic: of two concurrent
/// calls with one key, exactly one answers [`Freshness::Fresh`] (a shared store: set if
/// absent, with expiry).
pub trait ReplayStore: Send + Sync + 'static {
    /// Remembers `key` (a SHA-256 over the proof key's thumbprint and the `jti`) until
    /// `expires_at` (Unix seconds), unless it is remembered already. `now` is the layer's
    /// clock, in Unix seconds.
    fn remember(&self, key: [u8; 32], expires_at: u64, now: u64) -> ReplayFuture<'_>;
}

impl<T: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<T> {
    fn remember(&self, key: [u8; 32], expires_at: u64, now: u64) -> ReplayFuture<'_> {
        (**self).remember(key, expires_at, now)
    }
}

/// The default store: in this process, bounded. A full store (after forgetting what has
/// expired) refuses to answer, so a flood of proofs costs a 503 rather than memory or a
/// replay.
///
/// ```
/// # tokio_test_block_on(async {
/// use mcp_oauth::dpop::{Freshness, InMemoryReplayStore, ReplayStore};
///
/// let store = InMemoryReplayStore::new(1000);
/// assert_eq!(store.remember([1; 32], 100, 50).await, Ok(Freshness::Fresh));
/// assert_eq!(store.remember([1; 32], 100, 60).await, Ok(Freshness::Replayed));
/// assert_eq!(store.remember([1; 32], 200, 101).await, Ok(Freshness::Fresh)); // expired
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct InMemoryReplayStore {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    /// Picks the shard of a key: keyed per store, so that no client can aim its proofs at one
    /// shard and fill it.
    shard_of: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 32], u64>,
    /// When expired entries are next swept (Unix seconds).
    next_sweep: u64,
}

const SHARDS: usize = 16;
const SWEEP_INTERVAL_SECS: u64 = 10;

/// The default capacity: a million proofs within the window (about 50 MB at most).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

impl InMemoryReplayStore {
    /// A store of at most `capacity` live proof ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shard_of: std::collections::hash_map::RandomState::new(),
        }
    }

    /// How many ids are remembered (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().entries.len()).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard_index(&self, key: &[u8; 32]) -> usize {
        use std::hash::BuildHasher;
        (self.shard_of.hash_one(key) % SHARDS as u64) as usize
    }

    fn remember_now(
        &self,
        key: [u8; 32],
        expires_at: u64,
        now: u64,
    ) -> Result<Freshness, ReplayStoreError> {
        let mut shard = self.shards[self.shard_index(&key)].lock();
        if let Some(&until) = shard.entries.get(&key)
            && until >= now
        {
            return Ok(Freshness::Replayed);
        }
        // At most one sweep per interval, full or not: a full shard of live entries is not
        // rescanned on every call.
        if now >= shard.next_sweep {
            shard.entries.retain(|_, until| *until >= now);
            shard.next_sweep = now + SWEEP_INTERVAL_SECS;
        }
        if shard.entries.len() >= self.per_shard {
            return Err(ReplayStoreError(
                "the in-memory replay store is full".into(),
            ));
        }
        shard.entries.insert(key, expires_at);
        Ok(Freshness::Fresh)
    }
}

impl Default for InMemoryReplayStore {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl std::fmt::Debug for InMemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryReplayStore")
            .field("len", &self.len())
            .finish()
    }
}

impl ReplayStore for InMemoryReplayStore {
    fn remember(&self, key: [u8; 32], expires_at: u64, now: u64) -> ReplayFuture<'_> {
        let answer = self.remember_now(key, expires_at, now);
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_fresh_once_until_it_expires() {
        let store = InMemoryReplayStore::new(100);
        assert_eq!(store.remember_now([7; 32], 10, 0), Ok(Freshness::Fresh));
        assert_eq!(store.remember_now([7; 32], 10, 10), Ok(Freshness::Replayed));
        assert_eq!(store.remember_now([7; 32], 30, 11), Ok(Freshness::Fresh));
        assert_eq!(store.remember_now([8; 32], 30, 11), Ok(Freshness::Fresh));
    }

    #[test]
    fn a_full_store_refuses_rather_than_forgets_a_live_id() {
        let store = InMemoryReplayStore::new(SHARDS); // one per shard
        let first = [1; 32];
        let second = (2..=255u8)
            .map(|i| [i; 32])
            .find(|key| store.shard_index(key) == store.shard_index(&first))
            .expect("some key shares the first one's shard");
        assert_eq!(store.remember_now(first, 100, 0), Ok(Freshness::Fresh));
        assert!(store.remember_now(second, 100, 1).is_err());
        // Once the first has expired, there is room again.
        assert_eq!(store.remember_now(second, 200, 101), Ok(Freshness::Fresh));
    }
}
