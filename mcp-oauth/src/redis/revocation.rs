//! Revocations on Redis: a sorted set `{prefix}revoked` (member: the entry, score: until
//! when, Unix seconds) that replicas read in full after every (re)connection, and a channel
//! of the same name on which each new entry is published, so every replica's local mirror
//! holds it within milliseconds. Requests only ever read the mirror.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;

use super::{LOG_TARGET, RedisState};
use crate::revocation::{Revocation, RevocationBackend, RevocationError, Revocations};
use crate::store::StoreFuture;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RevocationBackend for RedisState {
    fn publish<'a>(
        &'a self,
        revocation: &'a Revocation,
        until: u64,
    ) -> StoreFuture<'a, Result<(), RevocationError>> {
        Box::pin(async move {
            let key = self.key("revoked");
            let member = revocation.encode();
            let message = format!("{until} {member}");
            self.run("revocation", |mut connection| async move {
                ::redis::pipe()
                    .cmd("ZADD")
                    .arg(&key)
                    .arg("GT")
                    .arg(until)
                    .arg(&member)
                    .ignore()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(format!("({}", unix_now()))
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(&key)
                    .arg(message)
                    .ignore()
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
            .map_err(|error| RevocationError(error.0))
        })
    }
}

impl RedisState {
    /// Shares `revocations` with every replica: what is revoked here is published, and what
    /// others publish reaches this replica's list (the validator's; see
    /// [`Validator::revocations`](crate::Validator::revocations)). Starts the subscription
    /// task, which re-reads the whole list after every (re)connection.
    pub fn share_revocations(&self, revocations: &Revocations) {
        revocations.set_backend(Arc::new(self.clone()));
        let state = Arc::downgrade(&self.inner);
        let revocations = revocations.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(50);
            while let Some(inner) = state.upgrade() {
                let redis = RedisState { inner };
                match redis.mirror(&revocations).await {
                    Ok(()) => delay = Duration::from_millis(50),
                    Err(error) => {
                        tracing::debug!(target: LOG_TARGET, %error, "revocation subscription failed");
                        delay = (delay * 2).min(Duration::from_secs(1));
                    }
                }
                drop(redis);
                tokio::time::sleep(delay).await;
            }
        });
    }

    /// One subscription: subscribe, read the whole list, then apply each message until the
    /// connection ends.
    async fn mirror(&self, revocations: &Revocations) -> Result<(), String> {
        let key = self.key("revoked");
        let connect = self.inner.client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .map_err(|_| "no connection within 2 s".to_owned())?
            .map_err(|e| e.to_string())?;
        pubsub.subscribe(&key).await.map_err(|e| e.to_string())?;
        // Subscribed first, read second: an entry published in between arrives both ways.
        let mut connection = self
            .inner
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let entries: Vec<(String, u64)> = ::redis::cmd("ZRANGE")
            .arg(&key)
            .arg(unix_now())
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        drop(connection);
        for (member, until) in entries {
            if let Some(revocation) = Revocation::decode(&member) {
                revocations.insert_local(revocation, until);
            }
        }
        tracing::debug!(target: LOG_TARGET, entries = revocations.len(), "revocation list read");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Some((until, member)) = payload.split_once(' ') else {
                continue;
            };
            if let (Ok(until), Some(revocation)) = (until.parse(), Revocation::decode(member)) {
                revocations.insert_local(revocation, until);
            }
        }
        tracing::warn!(
            target: LOG_TARGET,
            "the revocation subscription ended; reconnecting (the list is read again in full)"
        );
        Ok(())
    }
}
