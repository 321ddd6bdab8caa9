//! The test kit's local issuer: discovery, JWKS, counters, faults, shutdown and minting.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::ManualClock;
use mcp_oauth::testing::{Fault, SigningAlgorithm, SigningKey, TestIssuer};
use serde_json::{Value, json};

/// One RSA key for the tests that do not care which, to spare key generation.
fn shared_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(SigningAlgorithm::RS256, "key-1"))
        .clone()
}

async fn issuer() -> TestIssuer {
    TestIssuer::builder()
        .initial_key(shared_key())
        .start()
        .await
}

fn http() -> reqwest::Client {
    let builder = reqwest::Client::builder().no_proxy();
    // reqwest's provider-less rustls panics at build time unless given a configuration.
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

struct Fetched {
    status: u16,
    content_length: Option<u64>,
    cache_control: Option<String>,
    body: Vec<u8>,
}

impl Fetched {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn fetch_with(client: &reqwest::Client, url: &str) -> Fetched {
    let response = client.get(url).send().await.unwrap();
    let cache_control = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    Fetched {
        status: response.status().as_u16(),
        content_length: response.content_length(),
        cache_control,
        body: response.bytes().await.unwrap().to_vec(),
    }
}

async fn fetch(url: &str) -> Fetched {
    fetch_with(&http(), url).await
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// (header, claims) of a compact JWS, checking it has three segments.
fn decode(token: &str) -> (Value, Value) {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "{token}");
    (decode_segment(segments[0]), decode_segment(segments[1]))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn discovery_without_path_is_served_at_both_urls() {
    let issuer = issuer().await;
    let base = format!("http://{}", issuer.addr());
    assert_eq!(issuer.issuer(), base);
    assert_eq!(issuer.jwks_uri(), format!("{base}/jwks"));
    assert_eq!(
        issuer.rfc8414_url(),
        format!("{base}/.well-known/oauth-authorization-server")
    );
    assert_eq!(
        issuer.openid_configuration_url(),
        format!("{base}/.well-known/openid-configuration")
    );

    for url in [issuer.rfc8414_url(), issuer.openid_configuration_url()] {
        let response = fetch(&url).await;
        assert_eq!(response.status, 200, "{url}");
        let doc = response.json();
        assert_eq!(doc["issuer"], issuer.issuer());
        assert_eq!(doc["jwks_uri"], issuer.jwks_uri());
        assert_eq!(doc["token_endpoint"], format!("{base}/token"));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(doc, issuer.metadata());
    }
    assert_eq!(issuer.discovery_requests(), 2);
}

#[tokio::test]
async fn discovery_with_path_is_path_aware() {
    let issuer = TestIssuer::builder()
        .initial_key(shared_key())
        .path("realms/test/")
        .start()
        .await;
    let base = format!("http://{}", issuer.addr());
    assert_eq!(issuer.issuer(), format!("{base}/realms/test"));
    assert_eq!(issuer.jwks_uri(), format!("{base}/realms/test/jwks"));

    let rfc8414 = format!("{base}/.well-known/oauth-authorization-server/realms/test");
    let oidc = format!("{base}/realms/test/.well-known/openid-configuration");
    assert_eq!(issuer.rfc8414_url(), rfc8414);
    assert_eq!(issuer.openid_configuration_url(), oidc);
    for url in [&rfc8414, &oidc] {
        let response = fetch(url).await;
        assert_eq!(response.status, 200, "{url}");
        let doc = response.json();
        assert_eq!(doc["issuer"], issuer.issuer());
        assert_eq!(doc["jwks_uri"], issuer.jwks_uri());
    }
    let jwks = fetch(issuer.jwks_uri()).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(kids(&jwks.json()), ["key-1"]);

    // The root documents and the path-inserted OpenID URL are not served by default.
    for url in [
        format!("{base}/.well-known/oauth-authorization-server"),
        format!("{base}/.well-known/openid-configuration"),
        format!("{base}/.well-known/openid-configuration/realms/test"),
        format!("{base}/jwks"),
    ] {
        assert_eq!(fetch(&url).await.status, 404, "{url}");
    }

    let inserted = TestIssuer::builder()
        .initial_key(shared_key())
        .path("/realms/test")
        .serve_openid_configuration_path_inserted(true)
        .start()
        .await;
    let url = format!(
        "http://{}/.well-known/openid-configuration/realms/test",
        inserted.addr()
    );
    let response = fetch(&url).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["issuer"], inserted.issuer());
}

#[tokio::test]
async fn discovery_documents_can_be_switched_off() {
    let rfc_only = TestIssuer::builder()
        .initial_key(shared_key())
        .serve_openid_configuration(false)
        .start()
        .await;
    assert_eq!(fetch(&rfc_only.rfc8414_url()).await.status, 200);
    assert_eq!(
        fetch(&rfc_only.openid_configuration_url()).await.status,
        404
    );

    let oidc_only = TestIssuer::builder()
        .initial_key(shared_key())
        .path("/tenant")
        .serve_rfc8414(false)
        .start()
        .await;
    assert_eq!(fetch(&oidc_only.rfc8414_url()).await.status, 404);
    assert_eq!(
        fetch(&oidc_only.openid_configuration_url()).await.status,
        200
    );

    let none = TestIssuer::builder()
        .initial_key(shared_key())
        .no_discovery()
        .start()
        .await;
    assert_eq!(fetch(&none.rfc8414_url()).await.status, 404);
    assert_eq!(fetch(&none.openid_configuration_url()).await.status, 404);
    assert_eq!(fetch(none.jwks_uri()).await.status, 200);
    // Attempts count even when the document is not served.
    assert_eq!(none.discovery_requests(), 2);
    assert_eq!(none.jwks_requests(), 1);
}

#[tokio::test]
async fn advertised_issuer_is_served_but_tokens_keep_the_real_one() {
    let issuer = TestIssuer::builder()
        .initial_key(shared_key())
        .advertised_issuer("https://evil.example")
        .start()
        .await;
    for url in [issuer.rfc8414_url(), issuer.openid_configuration_url()] {
        let doc = fetch(&url).await.json();
        assert_eq!(doc["issuer"], "https://evil.example");
        assert_eq!(doc["jwks_uri"], issuer.jwks_uri());
    }
    let (_, claims) = decode(&issuer.token().sign());
    assert_eq!(claims["iss"], issuer.issuer());

    // Any member can be overridden or removed at run time.
    issuer.set_metadata_field("jwks_uri", json!("http://127.0.0.1:9/elsewhere"));
    issuer.set_metadata_field("token_endpoint", Value::Null);
    let doc = fetch(&issuer.rfc8414_url()).await.json();
    assert_eq!(doc["jwks_uri"], "http://127.0.0.1:9/elsewhere");
    assert!(doc.get("token_endpoint").is_none());
}

#[tokio::test]
async fn jwks_lists_published_keys_and_drops_unpublished_ones() {
    let issuer = issuer().await;
    let jwks = fetch(issuer.jwks_uri()).await;
    assert_eq!(jwks.status, 200);
    let doc = jwks.json();
    assert_eq!(kids(&doc), ["key-1"]);
    assert_eq!(doc["keys"][0]["alg"], "RS256");
    assert_eq!(doc["keys"][0]["kty"], "RSA");
    assert!(
        doc["keys"][0].get("d").is_none(),
        "private material published"
    );

    let second = issuer.add_key(SigningAlgorithm::ES256);
    assert_eq!(second.kid(), "key-2");
    assert_eq!(
        issuer.signing_key().kid(),
        "key-1",
        "add_key must not change the default"
    );
    let rogue = SigningKey::generate(SigningAlgorithm::EdDSA, "external");
    issuer.publish(&rogue);
    issuer.publish(&rogue); // idempotent
    issuer.add_raw_jwk(json!({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}));
    let doc = fetch(issuer.jwks_uri()).await.json();
    assert_eq!(kids(&doc), ["key-1", "key-2", "external", "broken"]);
    assert_eq!(doc, issuer.jwks());
    assert_eq!(issuer.published_kids(), ["key-1", "key-2", "external"]);

    assert!(issuer.unpublish("key-1"));
    assert!(issuer.unpublish("broken"));
    assert!(!issuer.unpublish("never-there"));
    assert_eq!(
        kids(&fetch(issuer.jwks_uri()).await.json()),
        ["key-2", "external"]
    );
    // The default key stays the default: its tokens now name an unpublished kid.
    assert_eq!(issuer.signing_key().kid(), "key-1");
    assert_eq!(decode(&issuer.token().sign()).0["kid"], "key-1");
}

#[tokio::test]
async fn jwks_alg_and_cache_control_are_controllable() {
    let issuer = TestIssuer::builder()
        .initial_key(shared_key())
        .publish_alg(false)
        .start()
        .await;
    let jwks = fetch(issuer.jwks_uri()).await;
    assert_eq!(jwks.cache_control.as_deref(), Some("max-age=300"));
    let doc = jwks.json();
    assert!(doc["keys"][0].get("alg").is_none(), "{doc}");
    assert_eq!(doc["keys"][0]["kid"], "key-1");

    issuer.set_publish_alg(true);
    issuer.set_cache_control(Some("no-store"));
    let jwks = fetch(issuer.jwks_uri()).await;
    assert_eq!(jwks.cache_control.as_deref(), Some("no-store"));
    assert_eq!(jwks.json()["keys"][0]["alg"], "RS256");

    issuer.set_cache_control(None);
    assert_eq!(fetch(issuer.jwks_uri()).await.cache_control, None);
}

#[tokio::test]
async fn counters_count_and_reset() {
    let issuer = TestIssuer::builder()
        .initial_key(shared_key())
        .path("/p")
        .start()
        .await;
    let client = http();
    assert_eq!(
        (issuer.jwks_requests(), issuer.discovery_requests()),
        (0, 0)
    );
    fetch_with(&client, issuer.jwks_uri()).await;
    fetch_with(&client, issuer.jwks_uri()).await;
    issuer.set_fault(Fault::Status(500));
    fetch_with(&client, issuer.jwks_uri()).await;
    fetch_with(&client, &issuer.rfc8414_url()).await;
    fetch_with(&client, &format!("http://{}/unknown", issuer.addr())).await;
    assert_eq!(issuer.jwks_requests(), 3);
    assert_eq!(issuer.discovery_requests(), 1);
    assert_eq!(
        issuer.request_log(),
        [
            "/p/jwks",
            "/p/jwks",
            "/p/jwks",
            "/.well-known/oauth-authorization-server/p",
            "/unknown"
        ]
    );

    issuer.reset_counters();
    assert_eq!(
        (issuer.jwks_requests(), issuer.discovery_requests()),
        (0, 0)
    );
    assert!(issuer.request_log().is_empty());
    // Clones share the counters.
    let clone = issuer.clone();
    fetch_with(&client, &clone.openid_configuration_url()).await;
    assert_eq!(issuer.discovery_requests(), 1);
}

#[tokio::test]
async fn fault_status_answers_that_status() {
    let issuer = issuer().await;
    for code in [500, 503, 404, 429] {
        issuer.set_fault(Fault::Status(code));
        let response = fetch(issuer.jwks_uri()).await;
        assert_eq!(response.status, code);
        assert!(!response.body.is_empty() && response.body.len() < 100);
        assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    }
    issuer.set_fault(Fault::None);
    assert_eq!(fetch(issuer.jwks_uri()).await.status, 200);
}

#[tokio::test]
async fn fault_garbage_answers_200_with_non_json() {
    let issuer = issuer().await;
    issuer.set_fault(Fault::Garbage);
    let response = fetch(issuer.jwks_uri()).await;
    assert_eq!(response.status, 200);
    assert!(!response.body.is_empty());
    assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    // The discovery documents are unaffected.
    assert_eq!(fetch(&issuer.rfc8414_url()).await.status, 200);
}

#[tokio::test]
async fn fault_oversize_serves_exactly_that_many_bytes() {
    const SIZE: usize = 2 * 1024 * 1024;
    let issuer = issuer().await;

    issuer.set_fault(Fault::Oversize(SIZE));
    let response = fetch(issuer.jwks_uri()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length, Some(SIZE as u64));
    assert_eq!(response.body.len(), SIZE);
    assert_eq!(kids(&response.json()), ["key-1"], "still a valid key set");

    issuer.set_fault(Fault::OversizeChunked(SIZE));
    let response = fetch(issuer.jwks_uri()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length, None, "chunked: no Content-Length");
    assert_eq!(response.body.len(), SIZE);
    assert_eq!(kids(&response.json()), ["key-1"]);

    // A size below the document itself serves the document.
    issuer.set_fault(Fault::Oversize(10));
    assert_eq!(fetch(issuer.jwks_uri()).await.json(), issuer.jwks());

    issuer.set_discovery_fault(Fault::Oversize(SIZE));
    let response = fetch(&issuer.openid_configuration_url()).await;
    assert_eq!(response.body.len(), SIZE);
    assert_eq!(response.json()["issuer"], issuer.issuer());
}

#[tokio::test]
async fn fault_delay_delays_without_blocking_other_requests() {
    // Long enough that the fast request, on a loaded machine, surely answers within it.
    const DELAY: Duration = Duration::from_secs(3);
    let issuer = issuer().await;
    issuer.set_fault(Fault::Delay(DELAY));
    let client = http();
    let started = Instant::now();
    let slow = async {
        let response = fetch_with(&client, issuer.jwks_uri()).await;
        (response, started.elapsed())
    };
    let fast = async {
        // Let the slow request arrive first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let response = fetch_with(&client, &issuer.rfc8414_url()).await;
        (response, started.elapsed())
    };
    let ((slow, slow_elapsed), (fast, fast_elapsed)) = tokio::join!(slow, fast);
    assert_eq!(slow.status, 200);
    assert_eq!(kids(&slow.json()), ["key-1"]);
    assert!(slow_elapsed >= DELAY, "{slow_elapsed:?}");
    assert_eq!(fast.status, 200);
    assert!(
        fast_elapsed < DELAY,
        "discovery was held up: {fast_elapsed:?}"
    );
    // Counted on arrival, before the delay.
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn fault_no_usable_keys_serves_only_a_symmetric_key() {
    let issuer = issuer().await;
    issuer.set_fault(Fault::NoUsableKeys);
    let doc = fetch(issuer.jwks_uri()).await.json();
    let keys = doc["keys"].as_array().unwrap();
    assert!(keys.iter().all(|k| k["kty"] == "oct"), "{doc}");

    issuer.set_discovery_fault(Fault::NoUsableKeys);
    let doc = fetch(&issuer.rfc8414_url()).await.json();
    assert_eq!(doc["issuer"], issuer.issuer());
    assert!(doc.get("jwks_uri").is_none());
}

#[tokio::test]
async fn discovery_faults_leave_the_jwks_alone() {
    let issuer = issuer().await;
    issuer.set_discovery_fault(Fault::Status(502));
    assert_eq!(fetch(&issuer.rfc8414_url()).await.status, 502);
    assert_eq!(fetch(&issuer.openid_configuration_url()).await.status, 502);
    assert_eq!(fetch(issuer.jwks_uri()).await.status, 200);
    issuer.set_discovery_fault(Fault::Garbage);
    let response = fetch(&issuer.rfc8414_url()).await;
    assert_eq!(response.status, 200);
    assert!(serde_json::from_slice::<Value>(&response.body).is_err());
}

#[tokio::test]
async fn shutdown_refuses_connections() {
    let issuer = issuer().await;
    let client = http();
    // Leave an idle keep-alive connection in the pool.
    assert_eq!(fetch_with(&client, issuer.jwks_uri()).await.status, 200);

    let started = Instant::now();
    issuer.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let error = http().get(issuer.jwks_uri()).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let error = client.get(issuer.jwks_uri()).send().await.unwrap_err();
    assert!(error.is_connect(), "pooled connection survived: {error:?}");
    // Idempotent.
    issuer.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_delayed_request_forever() {
    let issuer = issuer().await;
    issuer.set_fault(Fault::Delay(Duration::from_secs(30)));
    let pending = tokio::spawn({
        let url = issuer.jwks_uri().to_owned();
        async move { http().get(url).send().await }
    });
    while issuer.jwks_requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    issuer.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = http().get(issuer.jwks_uri()).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    pending.abort();
}

#[tokio::test]
async fn a_new_issuer_can_take_over_the_port() {
    let first = issuer().await;
    let addr = first.addr();
    first.shutdown().await;
    let second = TestIssuer::builder()
        .initial_key(shared_key())
        .port(addr.port())
        .start()
        .await;
    assert_eq!(second.addr(), addr);
    assert_eq!(fetch(second.jwks_uri()).await.status, 200);
}

#[tokio::test]
async fn minted_token_is_a_valid_rfc9068_access_token() {
    let issuer = issuer().await;
    let before = unix_now();
    let token = issuer.token().sign();
    let after = unix_now();
    let (header, claims) = decode(&token);
    assert_eq!(
        header,
        json!({"typ": "at+jwt", "alg": "RS256", "kid": "key-1"})
    );
    assert_eq!(claims["iss"], issuer.issuer());
    assert_eq!(claims["sub"], "user-123");
    assert_eq!(claims["aud"], "https://mcp.example.com/mcp");
    assert_eq!(claims["client_id"], "test-client");
    let iat = claims["iat"].as_u64().unwrap();
    assert!((before..=after).contains(&iat));
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 300);
    assert!(claims.get("scope").is_none());
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (_, other) = decode(&issuer.token().sign());
    assert_ne!(claims["jti"], other["jti"], "jti must be unique");
}

#[tokio::test]
async fn minted_token_verifies_against_the_published_jwk() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};

    let issuer = issuer().await;
    let ec = issuer.add_key(SigningAlgorithm::ES256);
    let jwks = fetch(issuer.jwks_uri()).await.json();
    for (token, alg) in [
        (issuer.token().scope("files:read").sign(), Algorithm::RS256),
        (issuer.token().key(&ec).sign(), Algorithm::ES256),
    ] {
        let (header, _) = decode(&token);
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .unwrap();
        let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&[issuer.audience()]);
        validation.set_issuer(&[issuer.issuer()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(data.claims["sub"], "user-123");
    }
}

#[tokio::test]
async fn token_builder_sets_what_it_is_told() {
    let clock = ManualClock::new(1_700_000_000);
    let issuer = TestIssuer::builder()
        .initial_key(shared_key())
        .audience("https://rs.example/api")
        .clock(clock.clone())
        .start()
        .await;
    let (_, claims) = decode(&issuer.token().sign());
    assert_eq!(claims["aud"], "https://rs.example/api");
    assert_eq!(claims["iat"], 1_700_000_000);
    assert_eq!(claims["exp"], 1_700_000_300);

    let token = issuer
        .token()
        .subject("alice")
        .client_id("cli")
        .audiences(["https://a.example", "https://b.example"])
        .scope("files:read files:write")
        .issuer("https://other.example")
        .jti("fixed")
        .expires_in(Duration::from_secs(60))
        .not_before(1_700_000_010)
        .claim("roles", json!(["admin"]))
        .claim("client_id", "cli2")
        .without_claim("sub")
        .header("crit", json!(["exp"]))
        .typ("JWT")
        .kid("unknown-kid")
        .sign();
    let (header, claims) = decode(&token);
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "RS256", "kid": "unknown-kid", "crit": ["exp"]})
    );
    assert_eq!(
        claims,
        json!({
            "iss": "https://other.example",
            "aud": ["https://a.example", "https://b.example"],
            "client_id": "cli2",
            "iat": 1_700_000_000,
            "exp": 1_700_000_060,
            "nbf": 1_700_000_010,
            "jti": "fixed",
            "scope": "files:read files:write",
            "roles": ["admin"],
        })
    );

    let (_, claims) = decode(&issuer.token().expired().sign());
    assert_eq!(claims["exp"], 1_700_000_000 - 3600);
    assert!(claims["iat"].as_u64() < claims["exp"].as_u64());
    let (_, claims) = decode(&issuer.token().issued_at(5).expires_at(10).sign());
    assert_eq!(
        (claims["iat"].as_u64(), claims["exp"].as_u64()),
        (Some(5), Some(10))
    );

    clock.advance(Duration::from_secs(100));
    assert_eq!(decode(&issuer.token().sign()).1["iat"], 1_700_000_100);
}

#[tokio::test]
async fn token_builder_switches_keys_and_headers() {
    let issuer = issuer().await;
    let ec = issuer.add_key(SigningAlgorithm::ES256);
    let (header, _) = decode(&issuer.token().key(&ec).sign());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some("key-2"))
    );

    // Overrides after .key() win; the signature is still made with the key.
    let (header, _) = decode(&issuer.token().key(&ec).alg_header("ES384").kid("x").sign());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES384"), Some("x"))
    );

    let (header, _) = decode(&issuer.token().without_header("typ").sign());
    assert!(header.get("typ").is_none());

    let none = issuer.token().alg_header("none").unsigned();
    assert!(none.ends_with('.'));
    let segments: Vec<&str> = none.split('.').collect();
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[2], "");
    assert_eq!(decode_segment(segments[0])["alg"], "none");
    assert_eq!(decode_segment(segments[1])["iss"], issuer.issuer());

    let builder = issuer.token().scope("a");
    assert_eq!(builder.header_json()["typ"], "at+jwt");
    assert_eq!(builder.claims_json()["scope"], "a");
}

#[tokio::test]
async fn rotate_changes_the_default_kid_and_keeps_the_old_key_published() {
    let issuer = issuer().await;
    assert_eq!(issuer.signing_key().kid(), "key-1");
    let new_key = issuer.rotate(SigningAlgorithm::ES256);
    assert_eq!(new_key.kid(), "key-2");
    assert_eq!(new_key.algorithm(), SigningAlgorithm::ES256);
    assert_eq!(issuer.signing_key().kid(), "key-2");
    let (header, _) = decode(&issuer.token().sign());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some("key-2"))
    );
    let doc = fetch(issuer.jwks_uri()).await.json();
    assert_eq!(kids(&doc), ["key-1", "key-2"]);
    let algs =
        fetch(&issuer.rfc8414_url()).await.json()["id_token_signing_alg_values_supported"].clone();
    assert_eq!(algs, json!(["RS256", "ES256"]));

    let third = issuer.rotate(SigningAlgorithm::RS256);
    assert_eq!(third.kid(), "key-3");
    issuer.set_default_key(&new_key);
    assert_eq!(decode(&issuer.token().sign()).0["kid"], "key-2");
}

#[tokio::test]
async fn issuers_do_not_share_state() {
    let a = issuer().await;
    let b = issuer().await;
    assert_ne!(a.issuer(), b.issuer());
    b.rotate(SigningAlgorithm::ES256);
    b.set_fault(Fault::Garbage);
    assert_eq!(a.signing_key().kid(), "key-1");
    assert_eq!(kids(&fetch(a.jwks_uri()).await.json()), ["key-1"]);
    assert_eq!(b.jwks_requests(), 0);
}
