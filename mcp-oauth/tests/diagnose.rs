//! `validation::diagnose` against `Validator::validate`: for every class of faulty token, the
//! diagnosis's first failed check is the refusal the validator answers (both apply the same
//! rule functions, in the same order), every fault of a token with several is told, and a
//! valid token passes every check.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth::validation::diagnose::Outcome;
use mcp_oauth::validation::{Claim, IssuerPolicy, TokenError, Validator, diagnose};
use serde_json::json;

const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn setup() -> (TestIssuer, Validator) {
    let issuer = TestIssuer::builder().audience(AUDIENCE).start().await;
    let validator = Validator::builder()
        .issuer(
            IssuerPolicy::builder(issuer.issuer())
                .audience(AUDIENCE)
                .build()
                .unwrap(),
        )
        .without_token_cache()
        .build()
        .unwrap();
    (issuer, validator)
}

#[tokio::test]
async fn the_first_failed_check_is_the_validators_refusal() {
    let (issuer, validator) = setup().await;
    let stranger = SigningKey::generate(SigningAlgorithm::RS256, "stranger");
    let kid = issuer.published_kids()[0].clone();
    let garbage_header = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#)
    );
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "valid but expired",
            issuer.token().expired().sign(),
            TokenError::Expired,
        ),
        (
            "another audience",
            issuer.token().audience("https://other.example/mcp").sign(),
            TokenError::AudienceMismatch,
        ),
        (
            "typ JWT",
            issuer.token().typ("JWT").sign(),
            TokenError::InvalidType,
        ),
        (
            "an ID token",
            issuer.token().typ("JWT").claim("nonce", "n").sign(),
            TokenError::InvalidType,
        ),
        (
            "alg none",
            issuer.token().alg_header("none").unsigned(),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "HS256",
            issuer.token().alg_header("HS256").sign(),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "unknown kid",
            issuer.token().key(&stranger).sign(),
            TokenError::UnknownKey,
        ),
        (
            "forged signature",
            issuer.token().key(&stranger).kid(kid).sign(),
            TokenError::InvalidSignature,
        ),
        (
            "no jti",
            issuer.token().without_claim("jti").sign(),
            TokenError::MissingClaim(Claim::JwtId),
        ),
        (
            "no client_id and no sub",
            issuer
                .token()
                .without_claim("client_id")
                .without_claim("sub")
                .sign(),
            TokenError::MissingClaim(Claim::Subject),
        ),
        (
            "sub a number",
            issuer.token().claim("sub", 7).sign(),
            TokenError::InvalidClaim,
        ),
        (
            "scope a number",
            issuer.token().claim("scope", 7).sign(),
            TokenError::InvalidClaim,
        ),
        (
            "not yet valid",
            issuer.token().not_before(now() + 3600).sign(),
            TokenError::NotYetValid,
        ),
        (
            "issued in the future",
            issuer.token().issued_at(now() + 3600).sign(),
            TokenError::IssuedInFuture,
        ),
        (
            "another issuer",
            issuer.token().issuer("https://evil.example").sign(),
            TokenError::UnknownIssuer,
        ),
        (
            "jku",
            issuer
                .token()
                .header("jku", "https://evil.example/jwks")
                .sign(),
            TokenError::EmbeddedKeyReference,
        ),
        (
            "crit",
            issuer.token().header("crit", json!(["exp"])).sign(),
            TokenError::UnknownCriticalHeader,
        ),
        (
            "no exp",
            issuer.token().without_claim("exp").sign(),
            TokenError::MissingClaim(Claim::Expiry),
        ),
        (
            "duplicate header member",
            garbage_header,
            TokenError::Malformed,
        ),
        ("two segments", "a.b".to_owned(), TokenError::Malformed),
        ("a JWE", "a.b.c.d.e".to_owned(), TokenError::Encrypted),
        (
            "cnf x5t",
            issuer
                .token()
                .claim("cnf", json!({"x5t#S256": "abc"}))
                .sign(),
            TokenError::SenderConstrained,
        ),
    ];
    for (name, token, expected) in cases {
        let refusal = validator.validate(&token).await.expect_err(name);
        assert_eq!(refusal, expected, "{name}: the validator");
        let diagnosis = diagnose(&validator, &token).await;
        assert!(!diagnosis.passed(), "{name}");
        let first = diagnosis.failures().next().unwrap();
        assert_eq!(
            first.outcome,
            Outcome::Failed(expected.clone()),
            "{name}: first failure {first:?}"
        );
        let verdict = diagnosis.finding("validator").unwrap();
        assert_eq!(verdict.outcome, Outcome::Failed(expected), "{name}");
    }
}

#[tokio::test]
async fn every_fault_is_told_with_its_values_and_a_valid_token_passes() {
    let (issuer, validator) = setup().await;
    let exp = now() - 600;
    let token = issuer
        .token()
        .typ("JWT")
        .claim("at_hash", "h")
        .audience("client-app")
        .issued_at(exp - 60)
        .expires_at(exp)
        .without_claim("jti")
        .sign();
    let diagnosis = diagnose(&validator, &token).await;
    let failed: Vec<&str> = diagnosis.failures().map(|f| f.check).collect();
    assert_eq!(
        failed,
        ["typ", "aud", "exp", "required_claims", "validator"]
    );
    let detail = |check| diagnosis.finding(check).unwrap().detail.clone();
    assert!(
        detail("typ").contains("ID token (it carries `at_hash`)"),
        "{}",
        detail("typ")
    );
    assert!(
        detail("aud").contains(r#"["client-app"] does not name `https://mcp.example.com/mcp`"#)
    );
    assert!(
        detail("exp").contains(&format!("(exp {exp}), 10 min")),
        "{}",
        detail("exp")
    );
    assert_eq!(detail("required_claims"), "missing: `jti`");
    assert!(diagnosis.finding("signature").unwrap().passed());

    // A DPoP-bound token verifies, but not as a bearer token: told after the signature, as
    // the validator refuses it, and by the verdict.
    let bound = issuer
        .token()
        .claim("cnf", json!({"jkt": URL_SAFE_NO_PAD.encode([7u8; 32])}))
        .sign();
    let diagnosis = diagnose(&validator, &bound).await;
    let failed: Vec<&str> = diagnosis.failures().map(|f| f.check).collect();
    assert_eq!(failed, ["binding", "validator"]);
    assert!(diagnosis.finding("cnf").unwrap().passed());
    assert_eq!(
        validator.validate(&bound).await.unwrap_err(),
        TokenError::SenderConstrained
    );

    let good = issuer.token().scope("a b").sign();
    let diagnosis = diagnose(&validator, &good).await;
    assert!(diagnosis.passed(), "{diagnosis:#?}");
    assert!(diagnosis.findings.iter().all(|f| f.passed()));
    assert_eq!(diagnosis.findings.len(), 19);
}

#[tokio::test]
async fn a_bound_token_with_another_fault_is_refused_for_that_fault_first() {
    let (issuer, validator) = setup().await;
    // Bound to a DPoP key and without `jti`: the validator refuses the missing claim, since
    // the binding is judged after every other check; the diagnosis says so first too.
    let token = issuer
        .token()
        .claim("cnf", json!({"jkt": URL_SAFE_NO_PAD.encode([7u8; 32])}))
        .without_claim("jti")
        .sign();
    let refusal = validator.validate(&token).await.unwrap_err();
    assert_eq!(refusal, TokenError::MissingClaim(Claim::JwtId));
    let diagnosis = diagnose(&validator, &token).await;
    let first = diagnosis.failures().next().unwrap();
    assert_eq!(first.outcome, Outcome::Failed(refusal.clone()), "{first:?}");
    let failed: Vec<&str> = diagnosis.failures().map(|f| f.check).collect();
    assert_eq!(failed, ["required_claims", "binding", "validator"]);
    let checks: Vec<&str> = diagnosis.findings.iter().map(|f| f.check).collect();
    let at = |check| checks.iter().position(|c| *c == check).unwrap();
    assert!(at("signature") < at("binding") && at("binding") < at("validator"));
    assert_eq!(
        diagnosis.finding("validator").unwrap().outcome,
        Outcome::Failed(refusal)
    );
}
