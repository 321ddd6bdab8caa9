//! Revocations on Redis: a sorted set `{prefix}revoked` (member: the entry, score: until
//! when, Unix seconds) that replicas read in full after every (re)connection and every
//! [`REREAD_INTERVAL`], and a channel of the same name on which each new entry is published,
//! so every replica's local mirror holds it within milliseconds. Requests only ever read the
//! mirror. The subscription is pinged every second: a connection that died silently (a
//! middlebox dropped it) is found and replaced within about two.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;

use super::{Inner, LOG_TARGET, RedisState};
use crate::revocation::{GRACE, Revocation, RevocationBackend, RevocationError, Revocations};
use crate::store::StoreFuture;

/// How often the whole list is read again even while the subscription looks healthy.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// How often the subscription is pinged, and how long the answer may take.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Entries read per page of the full read.
const PAGE: usize = 1_000;

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
        Box::pin(self.publish_revocation(revocation, until))
    }
}

/// The backend a [`Revocations`] list holds: the state without keeping it alive, so that the
/// subscription task ends once the state is dropped.
struct SharedRevocations(Weak<Inner>);

impl RevocationBackend for SharedRevocations {
    fn publish<'a>(
        &'a self,
        revocation: &'a Revocation,
        until: u64,
    ) -> StoreFuture<'a, Result<(), RevocationError>> {
        Box::pin(async move {
            let Some(inner) = self.0.upgrade() else {
                return Err(RevocationError("the shared state was dropped".into()));
            };
            RedisState { inner }
                .publish_revocation(revocation, until)
                .await
        })
    }
}

impl RedisState {
    /// Adds `revocation` to the shared list and publishes it. Off the request path, so not
    /// held to the request timeout nor refused while the store is marked unavailable: a
    /// revocation is worth a longer wait.
    async fn publish_revocation(
        &self,
        revocation: &Revocation,
        until: u64,
    ) -> Result<(), RevocationError> {
        let key = self.key("revoked");
        let member = revocation.encode();
        let message = format!("{until} {member}");
        let expired = format!("({}", unix_now().saturating_sub(GRACE));
        self.run_detached(|mut connection| {
            let (key, member, message, expired) = (
                key.clone(),
                member.clone(),
                message.clone(),
                expired.clone(),
            );
            async move {
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
                    .arg(expired)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(&key)
                    .arg(message)
                    .ignore()
                    .query_async::<()>(&mut connection)
                    .await
            }
        })
        .await
        .map_err(|error| RevocationError(error.0))
    }

    /// Shares `revocations` with every replica: what is revoked here is published, and what
    /// others publish reaches this replica's list (the validator's; see
    /// [`Validator::revocations`](crate::Validator::revocations)). Starts the subscription
    /// task (once per list; needs a Tokio runtime), which reads the whole list after every
    /// (re)connection and shares again what could not be shared when it was revoked. The task
    /// ends once this state is dropped.
    pub fn share_revocations(&self, revocations: &Revocations) {
        let backend = SharedRevocations(Arc::downgrade(&self.inner));
        if !revocations.set_backend(Arc::new(backend)) {
            return;
        }
        let state = Arc::downgrade(&self.inner);
        let revocations = revocations.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                let started = tokio::time::Instant::now();
                let outcome = mirror(&state, &revocations).await;
                if started.elapsed() > Duration::from_secs(10) {
                    // It ran a while: this is a new failure, not the same one again.
                    delay = Duration::from_millis(50);
                }
                match outcome {
                    Mirror::StateDropped => return,
                    Mirror::Lost(error) => {
                        tracing::warn!(
                            target: LOG_TARGET,
                            %error,
                            "the revocation subscription is down; reconnecting (the list is read again in full)"
                        );
                        delay = (delay * 2).min(Duration::from_secs(1));
                    }
                }
                tokio::time::sleep(delay).await;
            }
        });
    }

    /// Reads every live entry into `revocations` (`ZSCAN`: complete for every entry present
    /// throughout, whatever is added or removed meanwhile), and shares again what could not
    /// be shared before.
    async fn read_all(&self, revocations: &Revocations) -> Result<usize, String> {
        let key = self.key("revoked");
        let mut cursor: u64 = 0;
        let mut read = 0;
        loop {
            let (next, page): (u64, Vec<(String, f64)>) = self
                .run_detached(|mut connection| {
                    let key = key.clone();
                    async move {
                        ::redis::cmd("ZSCAN")
                            .arg(key)
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(PAGE)
                            .query_async(&mut connection)
                            .await
                    }
                })
                .await
                .map_err(|error| error.0)?;
            read += page.len();
            for (member, until) in page {
                // Scores are doubles: a huge one saturates, a garbage member is skipped, an
                // expired one is not kept.
                if let Some(revocation) = Revocation::decode(&member) {
                    revocations.insert_local(revocation, until as u64);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let unpublished = revocations.take_unpublished();
        let mut still = Vec::new();
        for (revocation, until) in unpublished {
            if self.publish_revocation(&revocation, until).await.is_err() {
                still.push((revocation, until));
            }
        }
        revocations.keep_unpublished(still);
        Ok(read)
    }
}

enum Mirror {
    /// The state is gone: the task ends.
    StateDropped,
    /// The subscription failed or died: reconnect.
    Lost(String),
}

/// One subscription: subscribe, read the whole list, then apply each message, ping every
/// second and read the whole list again every [`REREAD_INTERVAL`], until the connection
/// fails or the state is dropped.
async fn mirror(state: &Weak<Inner>, revocations: &Revocations) -> Mirror {
    let Some(inner) = state.upgrade() else {
        return Mirror::StateDropped;
    };
    let redis = RedisState { inner };
    let key = redis.key("revoked");
    let client = redis.inner.client.clone();
    let connect = async {
        let pubsub = client.get_async_pubsub().await?;
        let (mut sink, stream) = pubsub.split();
        sink.subscribe(&key).await?;
        Ok::<_, ::redis::RedisError>((sink, stream))
    };
    let (mut sink, mut stream) = match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return Mirror::Lost(error.to_string()),
        Err(_) => return Mirror::Lost("no subscription within 2 s".into()),
    };
    drop(redis);
    // Subscribed first, read second: an entry published in between arrives both ways. A read
    // that fails is tried again at the next ping, the subscription kept meanwhile.
    let mut read_due = true;
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let mut reread = tokio::time::interval(REREAD_INTERVAL);
    reread.reset();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Mirror::Lost("the subscription ended".into());
                };
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
            _ = ping.tick() => {
                let Some(inner) = state.upgrade() else {
                    return Mirror::StateDropped;
                };
                // Subscribed, a connection answers PING with ["pong", ""], not a string.
                match tokio::time::timeout(PING_INTERVAL, sink.ping::<::redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Mirror::Lost(error.to_string()),
                    Err(_) => return Mirror::Lost("the subscription did not answer a ping".into()),
                }
                if read_due {
                    match (RedisState { inner }).read_all(revocations).await {
                        Ok(entries) => {
                            read_due = false;
                            tracing::debug!(target: LOG_TARGET, entries, "revocation list read");
                        }
                        Err(error) => {
                            tracing::warn!(target: LOG_TARGET, %error, "the revocation list could not be read; trying again in a second");
                        }
                    }
                }
            }
            _ = reread.tick() => read_due = true,
        }
    }
}
