//! Token lifetimes: leeway, `invalid_token` on expiry (so clients refresh), cached
//! verifications that never outlive `exp`, and refresh-token rotation by the dev
//! authorization server, with the new access token valid while the old one lives on until its
//! own `exp`.

mod common;

use std::time::Duration;

use common::{fixture, fixture_with};
use mcp_oauth::Clock;
use mcp_oauth::token_cache::TokenCacheConfig;
use mcp_oauth::validation::{ErrorCode, PolicyError, TokenError};

#[tokio::test]
async fn the_leeway_keeps_a_just_expired_token_and_expiry_is_invalid_token() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let token = f.issuer.token().expires_at(now + 10).sign();
    f.validator.validate(&token).await.expect("valid");
    // 10 s past exp: within the default 60 s leeway.
    f.clock.advance(Duration::from_secs(20));
    f.validator
        .validate(&token)
        .await
        .expect("within the leeway");
    // exp + 60 s: refused, as `invalid_token` (401), which is what makes a client refresh.
    f.clock.advance(Duration::from_secs(50));
    let error = f.validator.validate(&token).await.unwrap_err();
    assert_eq!(error, TokenError::Expired);
    assert_eq!(error.error_code(), ErrorCode::InvalidToken);
    assert_eq!(error.error_code().status(), 401);
    assert_eq!(
        error.retry_after(),
        None,
        "not a 503: the client must refresh, not retry"
    );
    assert_eq!(error.description(), "The access token expired");
}

#[tokio::test]
async fn a_cached_verification_never_outlives_exp() {
    // A cache TTL far longer than the token's life.
    let f = fixture_with(
        |policy| policy,
        |validator| {
            validator.token_cache(TokenCacheConfig {
                ttl: Duration::from_secs(3600),
                ..TokenCacheConfig::default()
            })
        },
    )
    .await;
    let now = f.clock.now().as_secs();
    let token = f.issuer.token().expires_at(now + 30).sign();
    let first = f.validator.validate(&token).await.unwrap();
    f.clock.advance(Duration::from_secs(89));
    let cached = f.validator.validate(&token).await.unwrap();
    assert!(cached.is_same_verification(&first), "served from the cache");
    assert_eq!(f.validator.stats().signature_checks, 1);
    // exp + leeway: the entry is not served; the token is judged again, and refused.
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::Expired
    );
    let cache = f.validator.token_cache().unwrap().stats();
    assert_eq!((cache.hits, cache.entries), (1, 0));
}

#[tokio::test]
async fn the_leeway_is_configurable_and_bounded() {
    let f = fixture_with(|p| p.leeway(Duration::ZERO), |v| v).await;
    let now = f.clock.now().as_secs();
    let at_exp = f.issuer.token().expires_at(now).sign();
    assert_eq!(
        f.validator.validate(&at_exp).await.unwrap_err(),
        TokenError::Expired,
        "without leeway, refused at exp"
    );
    let soon = f.issuer.token().expires_at(now + 1).sign();
    f.validator.validate(&soon).await.unwrap();

    let too_lax = common::policy(&f.issuer)
        .leeway(Duration::from_secs(301))
        .build();
    assert_eq!(too_lax.unwrap_err(), PolicyError::LeewayTooLarge);
}

#[tokio::test]
async fn nbf_and_iat_get_the_same_leeway() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    // A token from an authorization server whose clock runs 30 s ahead: accepted.
    let ahead = f
        .issuer
        .token()
        .issued_at(now + 30)
        .not_before(now + 30)
        .sign();
    f.validator.validate(&ahead).await.unwrap();
    // Two minutes ahead is not skew.
    let future = f.issuer.token().not_before(now + 120).sign();
    assert_eq!(
        f.validator.validate(&future).await.unwrap_err(),
        TokenError::NotYetValid
    );
    let issued_later = f.issuer.token().issued_at(now + 120).sign();
    assert_eq!(
        f.validator.validate(&issued_later).await.unwrap_err(),
        TokenError::IssuedInFuture
    );
}

#[tokio::test]
async fn five_second_tokens_work_and_die_on_time() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let tokens: Vec<String> = (0..3)
        .map(|i| {
            f.issuer
                .token()
                .jti(format!("short-{i}"))
                .issued_at(now)
                .expires_at(now + 5)
                .sign()
        })
        .collect();
    for token in &tokens {
        f.validator.validate(token).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(65));
    for token in &tokens {
        assert_eq!(
            f.validator.validate(token).await.unwrap_err(),
            TokenError::Expired
        );
    }
    // The refreshed token (new jti, new exp) is a different token: no cache entry carries
    // the old one's verdict over.
    let refreshed = f
        .issuer
        .token()
        .issued_at(now + 65)
        .expires_at(now + 70)
        .sign();
    f.validator.validate(&refreshed).await.unwrap();
}

#[cfg(feature = "dev")]
mod refresh {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use mcp_oauth::dev::DevAuthorizationServer;
    use mcp_oauth::introspection::{Introspection, IntrospectionMode};
    use mcp_oauth::{IssuerPolicy, ManualClock, Validator};
    use serde_json::Value;
    use std::sync::Arc;

    const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
    const REDIRECT: &str = "http://127.0.0.1/callback";

    fn http() -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let builder = {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.tls_backend_preconfigured(config)
        };
        builder.build().unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// POSTs a form to the token endpoint as the dev client: `(status, body)`.
    async fn token_request(
        server: &DevAuthorizationServer,
        pairs: &[(&str, &str)],
    ) -> (u16, Value) {
        let client = server.dev_client();
        let response = http()
            .post(server.token_endpoint())
            .basic_auth(&client.id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        (status, body)
    }

    /// The authorization-code flow with PKCE: `(access token, refresh token)`.
    async fn sign_in(server: &DevAuthorizationServer) -> (String, String) {
        let client = server.dev_client();
        let verifier = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let challenge = {
            use sha2::Digest;
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ]);
        let redirect = http()
            .get(format!("{}?{query}", server.authorization_endpoint()))
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(name, _)| name == "code")
            .unwrap()
            .1
            .into_owned();
        let (status, tokens) = token_request(
            server,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        (
            tokens["access_token"].as_str().unwrap().to_owned(),
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn refresh_rotates_and_the_old_access_token_lives_until_its_exp() {
        let clock = ManualClock::starting_now();
        let server = DevAuthorizationServer::builder()
            .resource(RESOURCE)
            .scopes(["calendar:read"])
            .access_token_ttl(Duration::from_secs(120))
            .clock(clock.clone())
            .start()
            .await
            .unwrap();
        // The resource server: strict RFC 9068 validation, keys by discovery, the same clock.
        let validator = Validator::builder()
            .clock(Arc::new(clock.clone()))
            .issuer(
                IssuerPolicy::builder(server.issuer())
                    .audience(RESOURCE)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();

        let (old_access, first_refresh) = sign_in(&server).await;
        let old = validator.validate(&old_access).await.expect("fresh token");

        // A minute later the client refreshes (before expiry, as clients should): the
        // authorization server rotates the refresh token and issues a new access token.
        clock.advance(Duration::from_secs(60));
        let (status, refreshed) = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first_refresh),
            ],
        )
        .await;
        assert_eq!(status, 200, "{refreshed}");
        let new_access = refreshed["access_token"].as_str().unwrap().to_owned();
        let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second_refresh, first_refresh, "rotated");
        assert_ne!(new_access, old_access);

        let new = validator
            .validate(&new_access)
            .await
            .expect("the new token");
        assert_eq!(new.subject(), old.subject());
        assert_eq!(new.expires_at(), old.expires_at() + 60);
        validator
            .validate(&old_access)
            .await
            .expect("the old token keeps working until its exp");

        // The rotated-out refresh token is spent: the server refuses it (reuse detection is
        // the authorization server's job, not the resource server's).
        let (status, error) = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first_refresh),
            ],
        )
        .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        // That replay revoked the whole family. A resource server validating JWTs locally
        // only learns it at exp; one that introspects learns it now.
        validator
            .validate(&new_access)
            .await
            .expect("a JWT stays valid until exp without introspection");
        let client = server.dev_client();
        let introspecting = Validator::builder()
            .clock(Arc::new(clock.clone()))
            .introspection(
                Introspection::builder(server.issuer())
                    .audience(RESOURCE)
                    .client_secret_basic(&client.id, &client.secret)
                    .mode(IntrospectionMode::AllTokens)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            introspecting.validate(&new_access).await.unwrap_err(),
            TokenError::Inactive
        );

        // At the old token's exp + leeway it is refused (401 invalid_token: refresh), while
        // the new one, issued a minute later, is still (just) within its own.
        clock.advance(Duration::from_secs(120));
        assert_eq!(
            validator.validate(&old_access).await.unwrap_err(),
            TokenError::Expired
        );
        validator
            .validate(&new_access)
            .await
            .expect("still in leeway");
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            validator.validate(&new_access).await.unwrap_err(),
            TokenError::Expired
        );
    }
}
