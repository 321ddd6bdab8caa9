//! The Redis stores against a real `redis-server` (started by each test on a loopback port):
//! two `RedisState`s on one Redis stand for two replicas.
#![cfg(feature = "redis")]

use std::time::Duration;

use mcp_oauth::dpop::{Freshness, ReplayStore};
use mcp_oauth::rate_limit::{Budget, RateDecision, RateLimitKey, RateLimitStore};
use mcp_oauth::redis::{RedisConfig, RedisState};
use mcp_oauth::testing::RedisServer;

async fn replica(redis: &RedisServer) -> RedisState {
    let state = RedisState::connect(RedisConfig::new(redis.url())).unwrap();
    assert!(state.ready(Duration::from_secs(5)).await);
    state
}

#[tokio::test]
async fn two_replicas_share_one_budget() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let key = RateLimitKey::failed_auth("192.0.2.1".parse().unwrap());
    let budget = Budget::per_minute(4);
    let now = Duration::from_secs(1);
    let mut allowed = 0;
    for i in 0..10 {
        let store = if i % 2 == 0 { &a } else { &b };
        if store.acquire(&key, budget, now).await == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
}

#[tokio::test]
async fn a_proof_id_is_fresh_once_across_replicas() {
    let redis = RedisServer::start().await.unwrap();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    assert_eq!(a.remember([7; 32], 1_000, 900).await, Ok(Freshness::Fresh));
    assert_eq!(b.remember([7; 32], 1_000, 900).await, Ok(Freshness::Replayed));
    redis.stop();
    assert!(b.remember([8; 32], 1_000, 900).await.is_err(), "fails closed");
}
