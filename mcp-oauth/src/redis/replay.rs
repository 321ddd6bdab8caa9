//! The DPoP `jti` replay store on Redis: `SET NX EX`, so that of two replicas shown one
//! proof, exactly one accepts it. A store that cannot answer refuses the proof (503).

use super::RedisState;
use crate::crypto::hex_digits;
use crate::dpop::{Freshness, ReplayFuture, ReplayStore, ReplayStoreError};

/// How much the replicas' clocks may differ for a remembered proof id to outlive every
/// replica's acceptance of the proof.
const CLOCK_SKEW_MARGIN_SECS: u64 = 60;

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.extend(hex_digits(byte).map(char::from));
    }
    text
}

impl ReplayStore for RedisState {
    fn remember(&self, key: [u8; 32], expires_at: u64, now: u64) -> ReplayFuture<'_> {
        Box::pin(async move {
            let redis_key = self.key(&format!("dpop:jti:{}", hex(&key)));
            // Relative to this replica's clock, and a minute longer: another replica whose
            // clock is behind still accepts the proof's `iat` after this one stopped.
            let seconds = expires_at
                .saturating_sub(now)
                .saturating_add(CLOCK_SKEW_MARGIN_SECS);
            let set = self
                .run("replay", |mut connection| async move {
                    ::redis::cmd("SET")
                        .arg(redis_key)
                        .arg(1)
                        .arg("NX")
                        .arg("EX")
                        .arg(seconds)
                        .query_async::<Option<String>>(&mut connection)
                        .await
                })
                .await;
            match set {
                Ok(Some(_)) => Ok(Freshness::Fresh),
                Ok(None) => Ok(Freshness::Replayed),
                Err(error) => Err(ReplayStoreError(error.0)),
            }
        })
    }
}
