//! Token validation, one test per validator-level vector of SPEC.md (7–10) and per rule of
//! RFC 9068 / RFC 8725 the validator enforces. Every token comes from the test kit's issuer on
//! 127.0.0.1.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, fixture, fixture_with};
use mcp_oauth::Clock;
use mcp_oauth::crypto::Algorithm;
use mcp_oauth::metrics::Snapshot;
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer, compact_jws};
use mcp_oauth::validation::{Claim, ErrorCode, ScopeClaim, ScopeFormat, TokenError, TypPolicy};
use serde_json::json;

#[tokio::test]
async fn a_valid_token_yields_its_verified_identity() {
    let f = fixture().await;
    let token = f
        .issuer
        .token()
        .scope("calendar:read calendar:write")
        .claim("tenant", "acme")
        .sign();
    let identity = f.validator.validate(&token).await.expect("valid token");
    assert_eq!(identity.issuer(), f.issuer.issuer());
    assert_eq!(identity.subject(), Some("user-123"));
    assert_eq!(identity.client_id(), Some("test-client"));
    assert!(
        identity.scopes().contains("calendar:read") && identity.scopes().contains("calendar:write")
    );
    assert_eq!(identity.scopes().len(), 2);
    assert_eq!(identity.audiences(), [AUDIENCE]);
    assert!(identity.jwt_id().is_some());
    assert!(identity.expires_at() > f.clock.now().as_secs());
    #[derive(serde::Deserialize)]
    struct Custom {
        tenant: String,
    }
    assert_eq!(identity.claims::<Custom>().unwrap().tenant, "acme");
    assert_eq!(identity.claim("tenant"), Some(json!("acme")));
}

#[tokio::test]
async fn every_supported_algorithm_verifies() {
    use SigningAlgorithm::*;
    let f = fixture().await;
    // Publish them all first: one unknown-kid refresh picks them up (later ones would fall
    // inside the refresh cooldown).
    let keys: Vec<_> = [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
    ]
    .into_iter()
    .map(|alg| (alg, f.issuer.add_key(alg)))
    .collect();
    for (alg, key) in keys {
        let token = f.issuer.token().key(&key).sign();
        let identity = f.validator.validate(&token).await;
        assert!(identity.is_ok(), "{alg:?}: {identity:?}");
    }
}

#[tokio::test]
async fn vector_7_expired_token_is_refused_after_the_leeway() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let just_expired = f.issuer.token().expires_at(now - 30).sign();
    assert!(
        f.validator.validate(&just_expired).await.is_ok(),
        "within the 60 s leeway"
    );
    let expired = f.issuer.token().expires_at(now - 61).sign();
    assert_eq!(
        f.validator.validate(&expired).await.unwrap_err(),
        TokenError::Expired
    );
    let at_the_edge = f.issuer.token().expires_at(now - 60).sign();
    assert_eq!(
        f.validator.validate(&at_the_edge).await.unwrap_err(),
        TokenError::Expired
    );
}

#[tokio::test]
async fn vector_7_not_before_in_the_future_is_refused() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let token = f.issuer.token().not_before(now + 120).sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::NotYetValid
    );
    let within_leeway = f.issuer.token().not_before(now + 30).sign();
    assert!(f.validator.validate(&within_leeway).await.is_ok());
}

#[tokio::test]
async fn issued_in_the_future_is_refused() {
    let f = fixture().await;
    let now = f.clock.now().as_secs();
    let token = f
        .issuer
        .token()
        .issued_at(now + 600)
        .expires_at(now + 900)
        .sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::IssuedInFuture
    );
}

#[tokio::test]
async fn vector_7_wrong_issuer_is_refused() {
    let f = fixture().await;
    let token = f.issuer.token().issuer("https://evil.example.com").sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::UnknownIssuer
    );
    let trailing_slash = f
        .issuer
        .token()
        .issuer(format!("{}/", f.issuer.issuer()))
        .sign();
    assert_eq!(
        f.validator.validate(&trailing_slash).await.unwrap_err(),
        TokenError::UnknownIssuer
    );
}

#[tokio::test]
async fn vector_7_alg_none_is_refused() {
    let f = fixture().await;
    for none in ["none", "None", "NONE"] {
        let token = f.issuer.token().alg_header(none).unsigned();
        assert_eq!(
            f.validator.validate(&token).await.unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
    }
    assert_eq!(
        f.issuer.jwks_requests(),
        0,
        "nothing fetched for an unsigned token"
    );
}

#[tokio::test]
async fn vector_7_hs256_signed_with_the_rsa_public_key_is_refused() {
    let f = fixture().await;
    let rsa = f.issuer.signing_key();
    let pem = rsa.public_key_pem().expect("RSA key has a PEM");
    for secret in [pem.as_bytes().to_vec(), pem.trim_end().as_bytes().to_vec()] {
        let forged = SigningKey::hmac(&secret, rsa.kid());
        let token = f.issuer.token().key(&forged).sign();
        assert_eq!(
            f.validator.validate(&token).await.unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
    }
}

#[tokio::test]
async fn vector_7_bad_signature_is_refused() {
    let f = fixture().await;
    let token = f.issuer.token().sign();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let tampered = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert_eq!(
        f.validator.validate(&tampered).await.unwrap_err(),
        TokenError::InvalidSignature
    );

    // A payload swapped under a valid signature: more scopes, same signature.
    let other = f.issuer.token().scope("admin").sign();
    let (header, _) = token.split_once('.').unwrap();
    let other_payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{header}.{other_payload}.{signature}");
    assert_eq!(
        f.validator.validate(&spliced).await.unwrap_err(),
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn vector_7_unknown_kid_is_refused_after_one_refresh() {
    let f = fixture().await;
    assert!(f.validator.validate(&f.issuer.token().sign()).await.is_ok());
    assert_eq!(f.issuer.jwks_requests(), 1);
    let unpublished = SigningKey::generate(SigningAlgorithm::RS256, "never-published");
    let token = f.issuer.token().key(&unpublished).sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        f.issuer.jwks_requests(),
        2,
        "exactly one refresh for the unknown kid"
    );
}

#[tokio::test]
async fn vector_7_unknown_crit_is_refused() {
    let f = fixture().await;
    let token = f
        .issuer
        .token()
        .header("crit", json!(["urn:example:ext"]))
        .header("urn:example:ext", 1)
        .sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::UnknownCriticalHeader
    );
    let b64_extension = f
        .issuer
        .token()
        .header("crit", json!(["b64"]))
        .header("b64", false)
        .sign();
    assert_eq!(
        f.validator.validate(&b64_extension).await.unwrap_err(),
        TokenError::UnknownCriticalHeader
    );
}

#[tokio::test]
async fn vector_7_each_missing_required_claim_is_refused() {
    let f = fixture().await;
    let cases = [
        ("iss", TokenError::MissingClaim(Claim::Issuer)),
        ("exp", TokenError::MissingClaim(Claim::Expiry)),
        ("aud", TokenError::MissingClaim(Claim::Audience)),
        ("sub", TokenError::MissingClaim(Claim::Subject)),
        ("client_id", TokenError::MissingClaim(Claim::ClientId)),
        ("iat", TokenError::MissingClaim(Claim::IssuedAt)),
        ("jti", TokenError::MissingClaim(Claim::JwtId)),
    ];
    for (claim, expected) in cases {
        let token = f.issuer.token().without_claim(claim).sign();
        assert_eq!(
            f.validator.validate(&token).await.unwrap_err(),
            expected,
            "without {claim}"
        );
    }
}

#[tokio::test]
async fn optional_claims_may_be_absent_when_the_policy_says_so() {
    let f = fixture_with(
        |p| {
            p.optional_claim(Claim::JwtId)
                .optional_claim(Claim::ClientId)
                .client_id_claims(["client_id", "azp"])
        },
        |v| v,
    )
    .await;
    let token = f
        .issuer
        .token()
        .without_claim("jti")
        .without_claim("client_id")
        .sign();
    let identity = f.validator.validate(&token).await.unwrap();
    assert_eq!(identity.jwt_id(), None);
    assert_eq!(identity.client_id(), None);
    let azp = f
        .issuer
        .token()
        .without_claim("client_id")
        .claim("azp", "auth0-client")
        .sign();
    assert_eq!(
        f.validator.validate(&azp).await.unwrap().client_id(),
        Some("auth0-client")
    );
}

#[test]
fn iss_exp_and_aud_cannot_be_made_optional() {
    for claim in [Claim::Issuer, Claim::Expiry, Claim::Audience] {
        let built = mcp_oauth::IssuerPolicy::builder("https://as")
            .audience(AUDIENCE)
            .optional_claim(claim)
            .build();
        assert!(built.is_err(), "{claim:?}");
    }
    assert!(
        mcp_oauth::IssuerPolicy::builder("https://as")
            .build()
            .is_err(),
        "an audience is required"
    );
}

#[tokio::test]
async fn vector_8_strict_typ_accepts_only_access_token_types() {
    let f = fixture().await;
    for accepted in [
        "at+jwt",
        "at+JWT",
        "application/at+jwt",
        "APPLICATION/AT+JWT",
    ] {
        let token = f.issuer.token().typ(accepted).sign();
        assert!(f.validator.validate(&token).await.is_ok(), "{accepted}");
    }
    for refused in ["JWT", "jwt", "application/jwt", "dpop+jwt", ""] {
        let token = f.issuer.token().typ(refused).sign();
        assert_eq!(
            f.validator.validate(&token).await.unwrap_err(),
            TokenError::InvalidType,
            "{refused}"
        );
    }
    let missing = f.issuer.token().without_header("typ").sign();
    assert_eq!(
        f.validator.validate(&missing).await.unwrap_err(),
        TokenError::InvalidType
    );
}

#[tokio::test]
async fn vector_8_an_oidc_id_token_is_refused_under_the_strict_profile() {
    let f = fixture().await;
    let id_token = f
        .issuer
        .token()
        .typ("JWT")
        .claim("nonce", "n-0S6_WzA2Mj")
        .claim("at_hash", "77QmUPtjPfzWtF2AnpK9RQ")
        .sign();
    assert_eq!(
        f.validator.validate(&id_token).await.unwrap_err(),
        TokenError::InvalidType
    );
}

#[tokio::test]
async fn lenient_typ_accepts_jwt_but_still_refuses_id_tokens() {
    let f = fixture_with(|p| p.typ(TypPolicy::Lenient), |v| v).await;
    for typ in ["JWT", "application/jwt", "at+jwt"] {
        assert!(
            f.validator
                .validate(&f.issuer.token().typ(typ).sign())
                .await
                .is_ok(),
            "{typ}"
        );
    }
    assert!(
        f.validator
            .validate(&f.issuer.token().without_header("typ").sign())
            .await
            .is_ok()
    );
    assert_eq!(
        f.validator
            .validate(&f.issuer.token().typ("dpop+jwt").sign())
            .await
            .unwrap_err(),
        TokenError::InvalidType
    );
    for marker in ["nonce", "at_hash", "c_hash", "s_hash"] {
        let id_token = f.issuer.token().typ("JWT").claim(marker, "x").sign();
        assert_eq!(
            f.validator.validate(&id_token).await.unwrap_err(),
            TokenError::IdToken,
            "{marker}"
        );
    }
    // An ID token's audience is the client, not the resource.
    let id_token_for_client = f.issuer.token().typ("JWT").audience("test-client").sign();
    assert_eq!(
        f.validator
            .validate(&id_token_for_client)
            .await
            .unwrap_err(),
        TokenError::AudienceMismatch
    );
}

#[tokio::test]
async fn vector_9_audience_must_name_this_resource() {
    let f = fixture().await;
    let other = f
        .issuer
        .token()
        .audience("https://other.example.com/mcp")
        .sign();
    assert_eq!(
        f.validator.validate(&other).await.unwrap_err(),
        TokenError::AudienceMismatch
    );
    let array = f
        .issuer
        .token()
        .audiences(["https://other.example.com", AUDIENCE])
        .sign();
    assert!(f.validator.validate(&array).await.is_ok());
    let uppercase = f
        .issuer
        .token()
        .audience("HTTPS://MCP.EXAMPLE.COM/mcp")
        .sign();
    assert!(f.validator.validate(&uppercase).await.is_ok());
    let path_case = f
        .issuer
        .token()
        .audience("https://mcp.example.com/MCP")
        .sign();
    assert_eq!(
        f.validator.validate(&path_case).await.unwrap_err(),
        TokenError::AudienceMismatch
    );
    let empty = f.issuer.token().claim("aud", json!([])).sign();
    assert_eq!(
        f.validator.validate(&empty).await.unwrap_err(),
        TokenError::AudienceMismatch
    );
    let not_a_string = f.issuer.token().claim("aud", json!(42)).sign();
    assert_eq!(
        f.validator.validate(&not_a_string).await.unwrap_err(),
        TokenError::InvalidClaim
    );
}

#[tokio::test]
async fn vector_10_jku_x5u_and_jwk_headers_are_refused_without_any_request() {
    let f = fixture().await;
    let attacker = TestIssuer::start().await;
    let attacker_key = attacker.signing_key();
    let cases = [
        ("jku", json!(attacker.jwks_uri())),
        ("x5u", json!(format!("{}/cert.pem", attacker.issuer()))),
        ("jwk", attacker_key.public_jwk()),
    ];
    for (member, value) in cases {
        let token = f
            .issuer
            .token()
            .key(&attacker_key)
            .header(member, value)
            .sign();
        assert_eq!(
            f.validator.validate(&token).await.unwrap_err(),
            TokenError::EmbeddedKeyReference,
            "{member}"
        );
    }
    assert_eq!(attacker.jwks_requests(), 0);
    assert!(
        attacker.request_log().is_empty(),
        "the attacker's server was contacted: {:?}",
        attacker.request_log()
    );
    assert_eq!(f.issuer.jwks_requests(), 0, "refused before any key lookup");
}

#[tokio::test]
async fn a_sender_constrained_token_is_refused_as_a_bearer_token() {
    let f = fixture().await;
    let token = f
        .issuer
        .token()
        .claim(
            "cnf",
            json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        )
        .sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::SenderConstrained
    );
}

#[tokio::test]
async fn an_entra_shaped_key_set_without_alg_works() {
    let clock = mcp_oauth::ManualClock::starting_now();
    let issuer = TestIssuer::builder()
        .audience(AUDIENCE)
        .clock(clock.clone())
        .publish_alg(false)
        .start()
        .await;
    assert!(issuer.jwks()["keys"][0].get("alg").is_none());
    let validator = common::validator(&clock)
        .issuer(common::policy(&issuer).build().unwrap())
        .build()
        .unwrap();
    assert!(validator.validate(&issuer.token().sign()).await.is_ok());

    // The header alg must still match the configured binding of alg-less RSA keys.
    let pss = issuer
        .token()
        .key(&issuer.signing_key().with_algorithm(SigningAlgorithm::PS256))
        .sign();
    assert_eq!(
        validator.validate(&pss).await.unwrap_err(),
        TokenError::KeyAlgorithmMismatch
    );
}

#[tokio::test]
async fn the_header_alg_must_match_the_algorithm_the_key_is_bound_to() {
    let f = fixture().await;
    let rs256 = f.issuer.signing_key();
    let token = f
        .issuer
        .token()
        .key(&rs256.with_algorithm(SigningAlgorithm::RS512))
        .sign();
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::KeyAlgorithmMismatch
    );
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    let f = fixture_with(|p| p.algorithms([Algorithm::ES256]), |v| v).await;
    let token = f.issuer.token().sign(); // RS256
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
    let es = f.issuer.add_key(SigningAlgorithm::ES256);
    assert!(
        f.validator
            .validate(&f.issuer.token().key(&es).sign())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn size_cap_is_checked_before_decoding() {
    let f = fixture_with(|p| p, |v| v.max_token_bytes(2048)).await;
    let huge = f.issuer.token().claim("padding", "x".repeat(4096)).sign();
    assert_eq!(
        f.validator.validate(&huge).await.unwrap_err(),
        TokenError::TooLarge
    );
    let not_even_a_jwt = "!".repeat(20_000);
    assert_eq!(
        f.validator.validate(&not_even_a_jwt).await.unwrap_err(),
        TokenError::TooLarge
    );
    let default = fixture().await;
    let over_16k = default
        .issuer
        .token()
        .claim("padding", "x".repeat(17 * 1024))
        .sign();
    assert_eq!(
        default.validator.validate(&over_16k).await.unwrap_err(),
        TokenError::TooLarge
    );
}

#[tokio::test]
async fn jwe_and_nested_tokens_are_refused() {
    let f = fixture().await;
    assert_eq!(
        f.validator
            .validate("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d")
            .await
            .unwrap_err(),
        TokenError::Encrypted
    );
    let nested = f.issuer.token().header("cty", "JWT").sign();
    assert_eq!(
        f.validator.validate(&nested).await.unwrap_err(),
        TokenError::Nested
    );
    let enc_header = f.issuer.token().header("enc", "A256GCM").sign();
    assert_eq!(
        f.validator.validate(&enc_header).await.unwrap_err(),
        TokenError::Encrypted
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_panicking() {
    let f = fixture().await;
    let valid = f.issuer.token().sign();
    let parts: Vec<&str> = valid.split('.').collect();
    let header_json = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"at+jwt","kid":"key-1"}"#);
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        "..".into(),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            header_json,
            URL_SAFE_NO_PAD.encode(b"[1,2]"),
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            header_json,
            URL_SAFE_NO_PAD.encode(b"{\"iss\":"),
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"RS256"}"#),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode([b'{', 0xc3, 0x28, b'}']),
            parts[1],
            parts[2]
        ),
    ];
    for token in cases {
        let error = f.validator.validate(&token).await.unwrap_err();
        assert_eq!(error, TokenError::Malformed, "{token:?}");
    }
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let f = fixture().await;
    let key = f.issuer.signing_key();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": key.kid()});
    let claims = f.issuer.token().claims_json();
    let mut payload = serde_json::to_string(&claims).unwrap();
    payload.insert_str(1, r#""aud":"https://other.example.com","#);
    let token = sign_payload(&header, &payload, &key);
    assert_eq!(
        f.validator.validate(&token).await.unwrap_err(),
        TokenError::Malformed
    );
    // The same claims without the duplicate are fine: the refusal is the duplicate's doing.
    assert!(
        f.validator
            .validate(&compact_jws(&header, &claims, &key))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_hostile_kid_is_never_echoed() {
    let f = fixture().await;
    for kid in [
        "a\r\nSet-Cookie: x=1",
        "\"quoted\" error=\"x\"",
        "../../etc/passwd",
        "\u{0000}",
    ] {
        let token = f.issuer.token().kid(kid).sign();
        let error = f.validator.validate(&token).await.unwrap_err();
        // The first unknown kid is condemned after its refresh; the next ones fall inside
        // the cooldown of that successful refresh and are condemned too. Nothing of the kid
        // shows.
        assert_eq!(error, TokenError::UnknownKey, "{kid:?}");
        assert!(!error.description().contains(kid) && !error.to_string().contains(kid));
    }
    let long = f.issuer.token().kid("k".repeat(300)).sign();
    assert_eq!(
        f.validator.validate(&long).await.unwrap_err(),
        TokenError::Malformed
    );
}

#[tokio::test]
async fn scopes_are_read_from_the_configured_claim_and_shape() {
    let f = fixture_with(
        |p| p.scope_claim(ScopeClaim::new("permissions", ScopeFormat::Array)),
        |v| v,
    )
    .await;
    let token = f
        .issuer
        .token()
        .claim("permissions", json!(["files:read", "files:write"]))
        .scope("ignored")
        .sign();
    let identity = f.validator.validate(&token).await.unwrap();
    assert!(identity.scopes().contains("files:write") && !identity.scopes().contains("ignored"));
    let wrong_shape = f.issuer.token().claim("permissions", "files:read").sign();
    assert_eq!(
        f.validator.validate(&wrong_shape).await.unwrap_err(),
        TokenError::InvalidClaim
    );

    let either = fixture_with(
        |p| p.scope_claim(ScopeClaim::new("scp", ScopeFormat::Either)),
        |v| v,
    )
    .await;
    for scp in [json!("a b"), json!(["a", "b"])] {
        let token = either.issuer.token().claim("scp", scp).sign();
        assert_eq!(
            either
                .validator
                .validate(&token)
                .await
                .unwrap()
                .scopes()
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn discovery_finds_the_keys_through_rfc8414_and_openid_metadata() {
    for (rfc8414, openid) in [(true, false), (false, true)] {
        let clock = mcp_oauth::ManualClock::starting_now();
        let issuer = TestIssuer::builder()
            .path("/realms/acme")
            .audience(AUDIENCE)
            .clock(clock.clone())
            .serve_rfc8414(rfc8414)
            .serve_openid_configuration(openid)
            .start()
            .await;
        let policy = mcp_oauth::IssuerPolicy::builder(issuer.issuer())
            .audience(AUDIENCE)
            .build()
            .unwrap();
        let validator = common::validator(&clock).issuer(policy).build().unwrap();
        assert!(
            validator.validate(&issuer.token().sign()).await.is_ok(),
            "rfc8414={rfc8414}"
        );
        assert!(issuer.discovery_requests() >= 1);
    }
}

#[tokio::test]
async fn discovery_that_names_another_issuer_is_discarded() {
    let clock = mcp_oauth::ManualClock::starting_now();
    let issuer = TestIssuer::builder()
        .audience(AUDIENCE)
        .clock(clock.clone())
        .advertised_issuer("https://evil.example.com")
        .start()
        .await;
    let policy = mcp_oauth::IssuerPolicy::builder(issuer.issuer())
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let validator = common::validator(&clock).issuer(policy).build().unwrap();
    let error = validator
        .validate(&issuer.token().sign())
        .await
        .unwrap_err();
    assert!(
        matches!(error, TokenError::KeysUnavailable { .. }),
        "{error:?}"
    );
    assert_eq!(error.error_code(), ErrorCode::TemporarilyUnavailable);
    assert_eq!(
        issuer.jwks_requests(),
        0,
        "the wrong issuer's jwks_uri is never used"
    );
}

/// What the HTTP layer exports through `metrics::export_validator`: each issuer's key-set
/// counters and the verified-token cache's, read from the validator as a `metrics::Snapshot`.
#[tokio::test]
async fn the_metrics_snapshot_reads_the_key_set_and_cache_counters() {
    let f = fixture().await;
    let token = f.issuer.token().sign();
    f.validator.validate(&token).await.unwrap();
    f.validator.validate(&token).await.unwrap();
    let snapshot = Snapshot::from(&f.validator);
    assert_eq!(snapshot.key_sets.len(), 1);
    let (issuer, keys) = &snapshot.key_sets[0];
    assert_eq!(issuer, f.issuer.issuer());
    assert_eq!(
        (keys.fetches, keys.failures, keys.unknown_kid_refreshes),
        (1, 0, 0)
    );
    let cache = snapshot.token_cache.expect("the cache is on by default");
    assert_eq!((cache.hits, cache.misses, cache.entries), (1, 1, 1));

    let uncached = fixture_with(|p| p, |v| v.without_token_cache()).await;
    assert_eq!(Snapshot::from(&uncached.validator).token_cache, None);
}

#[test]
fn every_error_maps_to_a_code_and_a_safe_fixed_description() {
    let errors = [
        TokenError::TooLarge,
        TokenError::Malformed,
        TokenError::Encrypted,
        TokenError::Nested,
        TokenError::UnsupportedAlgorithm,
        TokenError::AlgorithmNotAllowed,
        TokenError::InvalidType,
        TokenError::IdToken,
        TokenError::UnknownCriticalHeader,
        TokenError::EmbeddedKeyReference,
        TokenError::UnknownIssuer,
        TokenError::AudienceMismatch,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::MissingClaim(Claim::Subject),
        TokenError::InvalidClaim,
        TokenError::SenderConstrained,
        TokenError::UnknownKey,
        TokenError::KeyAlgorithmMismatch,
        TokenError::InvalidSignature,
        TokenError::KeysUnavailable {
            retry_after: Duration::from_secs(5),
        },
        TokenError::UnknownKeyRetryLater {
            retry_after: Duration::from_secs(5),
        },
        TokenError::IntrospectionUnavailable {
            retry_after: Duration::from_secs(5),
        },
        TokenError::Inactive,
    ];
    for error in errors {
        let description = error.description();
        // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E; and no `name=` text
        // that a naive challenge parser could mistake for a parameter.
        assert!(
            description
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        );
        assert!(!description.contains('='), "{description}");
        let expected_status = if error.retry_after().is_some() {
            503
        } else {
            401
        };
        assert_eq!(error.error_code().status(), expected_status, "{error:?}");
        assert!(!error.reason().is_empty());
        // Charged to the client's failed-authentication budget: every 401, and the 503 of
        // an unknown kid; not the 503s that judged no token.
        let not_judged = matches!(
            error,
            TokenError::KeysUnavailable { .. } | TokenError::IntrospectionUnavailable { .. }
        );
        assert_eq!(
            error.counts_as_failed_authentication(),
            !not_judged,
            "{error:?}"
        );
        if expected_status == 401 {
            assert!(error.counts_as_failed_authentication(), "{error:?}");
        }
    }
}

/// Fuzz finding F5: a claim whose value `serde_json::Value` cannot hold (a number beyond
/// `f64`) must not hide the other claims from `claim()`, and is itself reported as
/// unreadable, not absent, by `claim_as()`.
#[tokio::test]
async fn one_unrepresentable_claim_hides_no_other() {
    let f = fixture().await;
    let key = f.issuer.signing_key();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": key.kid()});
    let claims = f.issuer.token().claim("tenant", "acme").claims_json();
    let mut payload = serde_json::to_string(&claims).unwrap();
    payload.insert_str(1, r#""big":1e999,"#);
    let token = sign_payload(&header, &payload, &key);
    let identity = f.validator.validate(&token).await.unwrap();
    assert_eq!(identity.claim("tenant"), Some(json!("acme")));
    assert_eq!(
        identity.claim_as::<String>("tenant").unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(identity.claim_as::<String>("absent").unwrap(), None);
    assert_eq!(identity.claim("big"), None);
    assert!(identity.claim_as::<serde_json::Value>("big").is_err());
    assert!(identity.claim_as::<u64>("tenant").is_err());
}

/// A compact JWS over `payload` taken verbatim (JSON a `Value` cannot express).
fn sign_payload(header: &serde_json::Value, payload: &str, key: &SigningKey) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(payload.as_bytes())
    );
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()))
    )
}
