//! Rate limits on Redis: the generic cell rate algorithm of
//! [`InMemoryRateLimitStore`](crate::rate_limit::InMemoryRateLimitStore), one timestamp per
//! bucket, in a single-key Lua script that reads Redis' own clock (`TIME`), so the replicas'
//! clocks do not matter and each decision is atomic.

use std::time::Duration;

use super::RedisState;
use crate::rate_limit::{BucketKind, Budget, RateDecision, RateLimitKey, RateLimitStore};
use crate::store::StoreFuture;

/// Takes one unit: `KEYS[1]` the bucket, `ARGV[1]` the refill interval and `ARGV[2]` the
/// burst, in microseconds and units. Returns `{taken, wait}`: `taken` 1 when a unit was
/// taken, and `wait` the microseconds until the next unit can be taken (0: at once). The key
/// expires once its bucket would be full again.
pub const GCRA_ACQUIRE: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local ahead = next_tat - now
local window = interval * burst
if ahead > window then return {0, math.floor(ahead - window)} end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor(math.max(0, ahead + interval - window))}
";

/// Gives one unit back (never beyond a full bucket): `KEYS[1]` the bucket, `ARGV[1]` the
/// interval in microseconds.
pub const GCRA_RELEASE: &str = r"
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat <= now then return 0 end
local next_tat = math.max(tat - interval, now)
if next_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
end
return 0
";

static ACQUIRE: std::sync::LazyLock<::redis::Script> =
    std::sync::LazyLock::new(|| ::redis::Script::new(GCRA_ACQUIRE));
static RELEASE: std::sync::LazyLock<::redis::Script> =
    std::sync::LazyLock::new(|| ::redis::Script::new(GCRA_RELEASE));

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl RedisState {
    fn bucket_key(&self, key: &RateLimitKey) -> String {
        self.key(&format!("rl:{key}"))
    }

    /// Takes a unit from the shared bucket; on failure, from this replica's share.
    async fn shared_acquire(
        &self,
        key: &RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> RateDecision {
        let redis_key = self.bucket_key(key);
        let interval = micros(budget.interval());
        let burst = budget.burst_size();
        let answer = self
            .run("rate_limit", |mut connection| async move {
                ACQUIRE
                    .key(redis_key)
                    .arg(interval)
                    .arg(burst)
                    .invoke_async::<(u8, u64)>(&mut connection)
                    .await
            })
            .await;
        match answer {
            Ok((taken, wait)) => {
                let wait = Duration::from_micros(wait);
                if key.kind() == BucketKind::FailedAuth {
                    // The gate's local view: closed until the bucket has a unit again.
                    if wait.is_zero() {
                        self.inner.blocked.remove(key);
                    } else {
                        self.inner.blocked.insert(*key, now + wait);
                    }
                }
                if taken == 1 {
                    RateDecision::Allowed
                } else {
                    RateDecision::Limited { retry_after: wait }
                }
            }
            Err(_) => {
                let decision =
                    self.inner
                        .local_budgets
                        .try_acquire(key, self.local_share(budget), now);
                // The gate reads `blocked` while the store is taken for available (an error
                // reply, a timeout or two): the local share closes it too.
                if let (BucketKind::FailedAuth, RateDecision::Limited { retry_after }) =
                    (key.kind(), decision)
                {
                    self.inner.blocked.insert(*key, now + retry_after);
                }
                decision
            }
        }
    }
}

impl RateLimitStore for RedisState {
    fn acquire<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        Box::pin(self.shared_acquire(key, budget, now))
    }

    fn release<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if !self.is_available() {
                self.inner
                    .local_budgets
                    .give_back(key, self.local_share(budget), now);
                return;
            }
            let redis_key = self.bucket_key(key);
            let interval = micros(budget.interval());
            let _ = self
                .run("rate_limit", |mut connection| async move {
                    RELEASE
                        .key(redis_key)
                        .arg(interval)
                        .invoke_async::<u64>(&mut connection)
                        .await
                })
                .await;
        })
    }

    /// The gate before a token is judged, without a round trip: the local view of buckets
    /// the shared store last said were empty, and at most the whole budget of attempts in
    /// flight on this replica; while Redis is unreachable, this replica's share of the budget.
    fn reserve<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
    ) -> StoreFuture<'a, RateDecision> {
        let gate = match self.inner.blocked.get(key) {
            Some(until) if until > now && self.is_available() => RateDecision::Limited {
                retry_after: until - now,
            },
            _ => RateDecision::Allowed,
        };
        let decision = match gate {
            RateDecision::Allowed => self.inner.in_flight.try_acquire(key, budget, now),
            limited => limited,
        };
        let decision = match decision {
            RateDecision::Allowed if !self.is_available() => {
                let share =
                    self.inner
                        .local_budgets
                        .try_acquire(key, self.local_share(budget), now);
                if share != RateDecision::Allowed {
                    self.inner.in_flight.give_back(key, budget, now);
                }
                share
            }
            other => other,
        };
        Box::pin(std::future::ready(decision))
    }

    /// A failure is charged to the shared bucket now, and its answer updates the local view;
    /// a success costs nothing (nothing was taken from the shared bucket).
    fn settle<'a>(
        &'a self,
        key: &'a RateLimitKey,
        budget: Budget,
        now: Duration,
        failed: bool,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.in_flight.give_back(key, budget, now);
            if !self.is_available() {
                if !failed {
                    self.inner
                        .local_budgets
                        .give_back(key, self.local_share(budget), now);
                }
                return;
            }
            if failed {
                self.shared_acquire(key, budget, now).await;
            }
        })
    }

    fn is_degraded(&self) -> bool {
        self.is_failing()
    }
}
