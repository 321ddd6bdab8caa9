//! Shared fixtures: a test issuer and a validator that read the same manual clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mcp_oauth::key_set::KeySetConfig;
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::validation::{IssuerPolicyBuilder, ValidatorBuilder};
use mcp_oauth::{IssuerPolicy, ManualClock, Validator};

pub const AUDIENCE: &str = "https://mcp.example.com/mcp";

pub struct Fixture {
    pub issuer: TestIssuer,
    pub clock: ManualClock,
    pub validator: Validator,
}

pub async fn issuer(clock: &ManualClock) -> TestIssuer {
    TestIssuer::builder()
        .audience(AUDIENCE)
        .clock(clock.clone())
        .start()
        .await
}

/// The issuer's default policy: strict, our audience, keys from its JWKS URL.
pub fn policy(issuer: &TestIssuer) -> IssuerPolicyBuilder {
    IssuerPolicy::builder(issuer.issuer())
        .audience(AUDIENCE)
        .jwks_uri(issuer.jwks_uri())
}

pub fn validator(clock: &ManualClock) -> ValidatorBuilder {
    Validator::builder().clock(Arc::new(clock.clone()))
}

/// A key-set config with short network timeouts, for tests of failing issuers.
pub fn quick_key_set_config() -> KeySetConfig {
    KeySetConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        ..KeySetConfig::default()
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(|policy| policy, |validator| validator).await
}

pub async fn fixture_with(
    adjust_policy: impl FnOnce(IssuerPolicyBuilder) -> IssuerPolicyBuilder,
    adjust_validator: impl FnOnce(ValidatorBuilder) -> ValidatorBuilder,
) -> Fixture {
    let clock = ManualClock::starting_now();
    let issuer = issuer(&clock).await;
    let policy = adjust_policy(policy(&issuer)).build().expect("policy");
    let validator = adjust_validator(validator(&clock).issuer(policy))
        .build()
        .expect("validator");
    Fixture {
        issuer,
        clock,
        validator,
    }
}

/// Waits (bounded) until `condition` holds: for background refreshes.
///
/// The bound is generous wall-clock time, not a count of polls: some refreshes wait out an
/// issuer delay of seconds, and a loaded CI machine runs them slowly. Passing runs return as
/// soon as the condition holds, so a long bound costs nothing.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// Polls the asynchronous `check` until it holds or `within` (wall-clock time) has passed,
/// and says whether it held: for state that travels between processes (a shared store, a
/// subscription), where the bound is the behaviour under test. A passing run returns as soon
/// as the check holds.
pub async fn within<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
