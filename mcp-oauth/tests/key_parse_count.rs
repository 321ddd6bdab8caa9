//! Keys are parsed when a key set loads, never per token. Alone in its own test binary:
//! the parse counter is process-wide.

mod common;

use std::time::Duration;

use common::fixture_with;
use mcp_oauth::crypto::keys_parsed;
use mcp_oauth::testing::SigningAlgorithm;

#[tokio::test]
async fn after_ten_thousand_validations_parses_equal_keys_loaded() {
    let f = fixture_with(|p| p, |v| v.without_token_cache()).await;
    let keys = [
        f.issuer.signing_key(),
        f.issuer.add_key(SigningAlgorithm::ES256),
        f.issuer.add_key(SigningAlgorithm::EdDSA),
    ];
    let tokens: Vec<String> = (0..30)
        .map(|i| {
            f.issuer
                .token()
                .key(&keys[i % keys.len()])
                .subject(format!("u{i}"))
                .expires_in(Duration::from_secs(7200))
                .sign()
        })
        .collect();
    let before = keys_parsed();
    f.validator.preload().await.unwrap();
    for i in 0..10_000 {
        f.validator
            .validate(&tokens[i % tokens.len()])
            .await
            .unwrap();
    }
    assert_eq!(f.validator.stats().signature_checks, 10_000);
    assert_eq!(keys_parsed() - before, keys.len() as u64);

    // A refresh that serves the same keys parses nothing again.
    f.clock.advance(Duration::from_secs(3600));
    f.validator.validate(&tokens[0]).await.unwrap();
    let set = f.validator.key_set(f.issuer.issuer()).unwrap().clone();
    assert!(common::eventually(|| set.stats().fetches == 2).await);
    f.validator.validate(&tokens[1]).await.unwrap();
    assert_eq!(keys_parsed() - before, keys.len() as u64);
}
