//! The verified-token cache: hits skip the signature, expired entries are never served, key
//! removal evicts, and a token cached under one policy is validated afresh under another.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{AUDIENCE, eventually, fixture, fixture_with};
use mcp_oauth::Clock;
use mcp_oauth::testing::SigningAlgorithm;
use mcp_oauth::token_cache::{TokenCache, TokenCacheConfig};
use mcp_oauth::validation::TokenError;

#[tokio::test]
async fn a_hit_returns_the_same_identity_without_a_signature_check() {
    let f = fixture().await;
    let token = f.issuer.token().scope("a b").sign();
    let first = f.validator.validate(&token).await.unwrap();
    assert_eq!(f.validator.stats().signature_checks, 1);
    for _ in 0..100 {
        let again = f.validator.validate(&token).await.unwrap();
        assert!(again.is_same_verification(&first));
    }
    assert_eq!(
        f.validator.stats().signature_checks,
        1,
        "hits do no signature check"
    );
    assert_eq!(f.validator.token_cache().unwrap().stats().hits, 100);
}

#[tokio::test]
async fn expired_entries_are_never_served() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let token = f.issuer.token().expires_at(now + 120).sign();
    assert!(f.validator.validate(&token).await.is_ok());
    f.clock.advance(Duration::from_secs(120 + 60)); // exp + leeway
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::Expired
    );
}

#[tokio::test]
async fn entries_live_no_longer_than_the_configured_ttl() {
    let config = TokenCacheConfig {
        ttl: Duration::from_secs(30),
        ..TokenCacheConfig::default()
    };
    let f = fixture_with(|p| p, |v| v.token_cache(config)).await;
    let token = f.issuer.token().sign();
    f.validator.validate(&token).await.unwrap();
    f.validator.validate(&token).await.unwrap();
    assert_eq!(f.validator.stats().signature_checks, 1);
    f.clock.advance(Duration::from_secs(31));
    f.validator.validate(&token).await.unwrap();
    assert_eq!(
        f.validator.stats().signature_checks,
        2,
        "re-verified after the TTL"
    );
}

#[tokio::test]
async fn removing_the_key_evicts_what_it_verified() {
    let f = fixture().await;
    let old = f.issuer.signing_key();
    let token = f.issuer.token().sign();
    assert!(f.validator.validate(&token).await.is_ok());
    f.issuer.rotate(SigningAlgorithm::ES256);
    f.issuer.unpublish(old.kid());
    // A token with the new kid forces the refresh that drops the old key.
    assert!(f.validator.validate(&f.issuer.token().sign()).await.is_ok());
    let keys = f.validator.key_set(f.issuer.issuer()).unwrap().clone();
    assert!(eventually(|| keys.current().is_some_and(|s| s.len() == 1)).await);
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::UnknownKey
    );
}

#[tokio::test]
async fn a_refresh_that_keeps_the_key_keeps_the_cache_warm() {
    let f = fixture().await;
    let token = f.issuer.token().sign();
    f.validator.validate(&token).await.unwrap();
    f.issuer.add_key(SigningAlgorithm::EdDSA);
    let new_kid = f.issuer.token().key(&f.issuer.published_keys()[1]).sign();
    f.validator.validate(&new_kid).await.unwrap(); // refresh
    let checks = f.validator.stats().signature_checks;
    f.validator.validate(&token).await.unwrap();
    assert_eq!(
        f.validator.stats().signature_checks,
        checks,
        "still a hit after the refresh"
    );
}

#[tokio::test]
async fn the_same_token_under_another_resources_policy_is_validated_afresh() {
    let shared = Arc::new(TokenCache::new(&TokenCacheConfig::default()));
    let clock = mcp_oauth::ManualClock::starting_now();
    let issuer = common::issuer(&clock).await;
    let ours = common::validator(&clock)
        .issuer(common::policy(&issuer).build().unwrap())
        .shared_token_cache(shared.clone())
        .build()
        .unwrap();
    let theirs = common::validator(&clock)
        .issuer(
            mcp_oauth::IssuerPolicy::builder(issuer.issuer())
                .audience("https://other.example.com/mcp")
                .jwks_uri(issuer.jwks_uri())
                .build()
                .unwrap(),
        )
        .shared_token_cache(shared.clone())
        .build()
        .unwrap();
    let token = issuer.token().audience(AUDIENCE).sign();
    assert!(ours.validate(&token).await.is_ok());
    assert_eq!(shared.stats().entries, 1);
    assert_eq!(
        theirs.validate(&token).await.unwrap_err(),
        TokenError::AudienceMismatch
    );
}

#[tokio::test]
async fn with_the_cache_off_every_validation_checks_the_signature() {
    let f = fixture_with(|p| p, |v| v.without_token_cache()).await;
    let token = f.issuer.token().sign();
    for _ in 0..5 {
        f.validator.validate(&token).await.unwrap();
    }
    assert_eq!(f.validator.stats().signature_checks, 5);
    assert!(f.validator.token_cache().is_none());
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let config = TokenCacheConfig {
        max_entries: 8,
        ..TokenCacheConfig::default()
    };
    let f = fixture_with(|p| p, |v| v.token_cache(config)).await;
    let key = f.issuer.add_key(SigningAlgorithm::EdDSA); // fast to sign
    let _ = f
        .validator
        .validate(&f.issuer.token().key(&key).sign())
        .await;
    for i in 0..100 {
        let token = f
            .issuer
            .token()
            .key(&key)
            .subject(format!("user-{i}"))
            .sign();
        f.validator.validate(&token).await.unwrap();
    }
    let entries = f.validator.token_cache().unwrap().stats().entries;
    assert!(entries <= 8, "{entries} entries");
}

#[tokio::test]
async fn a_validation_future_stays_small() {
    // The HTTP layer nests this future in the one it allocates for every request: the checks
    // past the cache (≈ 2.5 KiB of decoding buffers held across the key lookup) are boxed,
    // so that a cache hit does not carry them. 176 bytes in a release build.
    let f = fixture().await;
    let token = f.issuer.token().sign();
    let future = f.validator.validate(&token);
    let size = std::mem::size_of_val(&future);
    assert!(size <= 1024, "the validation future is {size} bytes");
    future.await.unwrap();
}
