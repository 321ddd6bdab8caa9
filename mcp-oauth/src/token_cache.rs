//! The verified-token cache.
//!
//! An MCP client reuses one access token for a whole session, so re-verifying its signature
//! on every request is wasted work. The cache maps *(validating policy, SHA-256 of the token)*
//! to the verified identity: the token itself is never stored, and a token accepted under one
//! resource's policy is never served to another. An entry lives until the earlier of the
//! token's expiry and the configured TTL, and is not served once the key that verified it has
//! left its issuer's key set. A hit costs a hash and a lookup, no signature check.
//!
//! [`TokenCache`] is the one bounded cache of the crate: the introspection verifier keeps its
//! answers in one too (its own instance, with its own bounds and TTL), refusals included
//! when negative caching is on.
//!
//! ```
//! use mcp_oauth::token_cache::TokenCacheConfig;
//! use std::time::Duration;
//!
//! let config = TokenCacheConfig { max_entries: 50_000, ttl: Duration::from_secs(120), ..Default::default() };
//! assert!(config.max_bytes > 0);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::crypto::VerifyingKey;
use crate::token::{TokenError, VerifiedToken};

/// Bounds of the verified-token cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCacheConfig {
    /// At most this many entries (10,000).
    pub max_entries: usize,
    /// At most about this many bytes of cached identities (32 MiB).
    pub max_bytes: usize,
    /// An entry is dropped after this long even if its token is still valid (5 min).
    pub ttl: Duration,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 32 * 1024 * 1024,
            ttl: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub policy: u64,
    pub token_hash: [u8; 32],
}

/// A cached verdict.
pub(crate) struct CacheEntry {
    /// The identity; or, for the introspection verifier's negative cache, the refusal.
    pub answer: Result<VerifiedToken, TokenError>,
    /// For a verified signature, the key that made it: the entry is served only while the
    /// issuer still publishes that key.
    pub signed_by: Option<SignedBy>,
    /// Clock time after which the entry must not be served.
    pub valid_until: Duration,
    /// About the bytes the entry holds.
    pub weight: u64,
}

/// The key that verified a cached signature, and where it was published.
pub(crate) struct SignedBy {
    /// The position of the issuer's policy in its validator.
    pub issuer_index: usize,
    /// The `kid` the token named.
    pub kid: Option<Box<str>>,
    /// The key, as its key set holds it.
    pub key: Arc<VerifyingKey>,
}

#[derive(Clone)]
struct EntryWeighter {
    min_weight: u64,
}

impl quick_cache::Weighter<CacheKey, Arc<CacheEntry>> for EntryWeighter {
    fn weight(&self, _key: &CacheKey, entry: &Arc<CacheEntry>) -> u64 {
        // Every entry weighs at least max_bytes / max_entries, so the byte bound also
        // bounds the entry count.
        entry.weight.max(self.min_weight)
    }
}

/// Hit and miss counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing servable.
    pub misses: u64,
    /// Entries currently held.
    pub entries: u64,
}

/// A bounded cache of verified tokens (and of introspection answers). Shared by reference;
/// see the module docs.
pub struct TokenCache {
    entries: quick_cache::sync::Cache<CacheKey, Arc<CacheEntry>, EntryWeighter>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache with these bounds. A validator makes its own from
    /// [`ValidatorBuilder::token_cache`](crate::validation::ValidatorBuilder::token_cache); build
    /// one here only to share it between validators, with
    /// [`ValidatorBuilder::shared_token_cache`](crate::validation::ValidatorBuilder::shared_token_cache).
    pub fn new(config: &TokenCacheConfig) -> Self {
        let max_entries = config.max_entries.max(1);
        let max_bytes = config.max_bytes.max(1) as u64;
        let weighter = EntryWeighter {
            min_weight: (max_bytes / max_entries as u64).max(1),
        };
        Self {
            entries: quick_cache::sync::Cache::with_weighter(max_entries, max_bytes, weighter),
            ttl: config.ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Hit and miss counters.
    pub fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.len() as u64,
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.entries.clear();
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The entry for `key` if it is still servable at `now`; `still_valid` checks that the
    /// key that verified it is still published. Entries that fail either are removed. Counted
    /// as a hit or a miss.
    pub(crate) fn get(
        &self,
        key: &CacheKey,
        now: Duration,
        still_valid: impl FnOnce(&CacheEntry) -> bool,
    ) -> Option<Arc<CacheEntry>> {
        let entry = self.entries.get(key);
        match entry {
            Some(entry) if now < entry.valid_until && still_valid(&entry) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry)
            }
            Some(_) => {
                self.entries.remove(key);
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Like [`get`](Self::get) without a key check, and not counted (a second look, e.g.
    /// after a call in flight finished).
    pub(crate) fn peek(&self, key: &CacheKey, now: Duration) -> Option<Arc<CacheEntry>> {
        let entry = self.entries.get(key)?;
        if now < entry.valid_until {
            Some(entry)
        } else {
            self.entries.remove(key);
            None
        }
    }

    pub(crate) fn insert(&self, key: CacheKey, entry: CacheEntry) {
        self.entries.insert(key, Arc::new(entry));
    }
}
