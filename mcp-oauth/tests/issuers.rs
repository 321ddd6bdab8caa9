//! Several issuers: tokens routed by their unverified `iss` to that issuer's policy and key
//! set, keys never crossing issuers, Entra ID's multi-tenant issuer template with its `tid`
//! check and tenant allow-list, and what the metadata must advertise.

use std::time::{SystemTime, UNIX_EPOCH};

use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer, compact_jws};
use mcp_oauth::validation::{
    ENTRA_ORGANIZATIONS_V2, EntraTenant, EntraVersion, IssuerPolicyBuilder, PolicyError, Profile,
    TokenError, ValidatorError,
};
use mcp_oauth::{IssuerPolicy, Validator};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://mcp.example.com/mcp";
const APP: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "0b3b7b8e-1c2d-4e5f-9a8b-7c6d5e4f3a2b";
const TENANT_C: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn kit(key: SigningKey) -> TestIssuer {
    TestIssuer::builder()
        .audience(AUDIENCE)
        .initial_key(key)
        .start()
        .await
}

fn policy(issuer: &TestIssuer) -> IssuerPolicyBuilder {
    IssuerPolicy::builder(issuer.issuer())
        .audience(AUDIENCE)
        .jwks_uri(issuer.jwks_uri())
}

#[tokio::test]
async fn tokens_are_routed_by_iss_to_their_own_issuer() {
    let a = TestIssuer::builder().audience(AUDIENCE).start().await;
    let b = TestIssuer::builder()
        .audience(AUDIENCE)
        .algorithm(SigningAlgorithm::ES256)
        .start()
        .await;
    let validator = Validator::builder()
        .issuer(policy(&a).build().unwrap())
        .issuer(policy(&b).build().unwrap())
        .build()
        .unwrap();
    let from_a = validator.validate(&a.token().sign()).await.unwrap();
    let from_b = validator.validate(&b.token().sign()).await.unwrap();
    assert_eq!(from_a.issuer(), a.issuer());
    assert_eq!(from_b.issuer(), b.issuer());
    assert_eq!(
        validator.policy_for(a.issuer()).unwrap().issuer(),
        a.issuer()
    );
    assert!(validator.policy_for("https://nobody.example.com").is_none());
    // Each issuer's keys were fetched from its own JWKS only.
    assert_eq!(a.jwks_requests(), 1);
    assert_eq!(b.jwks_requests(), 1);
    assert_eq!(validator.advertised_issuers(), [a.issuer(), b.issuer()]);
}

#[tokio::test]
async fn a_key_that_another_issuer_publishes_under_the_same_kid_is_refused() {
    // Both issuers publish a key with kid "shared"; the key material differs.
    let a = kit(SigningKey::generate(SigningAlgorithm::RS256, "shared")).await;
    let b = kit(SigningKey::generate(SigningAlgorithm::RS256, "shared")).await;
    let b_only = b.add_key(SigningAlgorithm::RS256);
    let validator = Validator::builder()
        .issuer(policy(&a).build().unwrap())
        .issuer(policy(&b).build().unwrap())
        .build()
        .unwrap();
    validator.preload().await.unwrap();

    // A token naming issuer A, signed with B's "shared" key: A's "shared" key does not verify it.
    let forged = b.token().issuer(a.issuer()).sign();
    assert_eq!(
        validator.validate(&forged).await.unwrap_err(),
        TokenError::InvalidSignature
    );
    // Signed with a key only B publishes: A has no such kid (after one refresh of A's keys).
    let forged = b.token().key(&b_only).issuer(a.issuer()).sign();
    assert_eq!(
        validator.validate(&forged).await.unwrap_err(),
        TokenError::UnknownKey
    );
    // B's own tokens, with the very same keys, are fine.
    validator.validate(&b.token().sign()).await.unwrap();
    validator
        .validate(&b.token().key(&b_only).sign())
        .await
        .unwrap();
    assert_eq!(
        b.jwks_requests(),
        1,
        "B's key set was never asked about A's token"
    );
}

#[tokio::test]
async fn duplicate_issuers_and_templates_are_configuration_errors() {
    let a = TestIssuer::start().await;
    let twice = Validator::builder()
        .issuer(policy(&a).build().unwrap())
        .issuer(policy(&a).build().unwrap())
        .build();
    assert!(matches!(twice, Err(ValidatorError::DuplicateIssuer(i)) if i == a.issuer()));
    let template = || entra_multi(&a).build().unwrap();
    let twice = Validator::builder()
        .issuer(template())
        .issuer(template())
        .build();
    assert!(matches!(twice, Err(ValidatorError::DuplicateIssuer(i)) if i.contains("{tenantid}")));
    assert!(matches!(
        Validator::builder().build(),
        Err(ValidatorError::NoIssuer)
    ));
}

// ---------------------------------------------------------------------------------------
// Entra ID multi-tenant: the issuer template.

fn entra_issuer(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/v2.0")
}

/// The multi-tenant v2 preset, its keys from the kit issuer.
fn entra_multi(keys: &TestIssuer) -> IssuerPolicyBuilder {
    IssuerPolicy::preset(Profile::EntraId {
        version: EntraVersion::V2,
        tenant: EntraTenant::Multi,
    })
    .audience(APP)
    .jwks_uri(keys.jwks_uri())
}

/// An Entra v2 access token for `tenant` (with `tid` = `tid`, or none), signed by `keys`.
fn entra_token(keys: &TestIssuer, iss: &str, tid: Option<&str>) -> String {
    let now = now();
    let mut claims = json!({
        "aud": APP, "iss": iss, "iat": now, "nbf": now, "exp": now + 3600,
        "azp": "29d9ed98-a469-4536-ade2-f981bc1d605e", "azpacr": "1",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "scp": "access_as_user",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
    });
    if let Some(tid) = tid {
        claims["tid"] = json!(tid);
    }
    sign(keys, &claims)
}

fn sign(keys: &TestIssuer, claims: &Value) -> String {
    let key = keys.signing_key();
    let header = json!({"typ": "JWT", "alg": key.algorithm().name(), "kid": key.kid()});
    compact_jws(&header, claims, &key)
}

#[tokio::test]
async fn the_entra_template_routes_any_tenant_whose_tid_agrees() {
    let keys = TestIssuer::start().await;
    let validator = Validator::new(entra_multi(&keys).build().unwrap()).unwrap();
    for tenant in [TENANT_A, TENANT_B, TENANT_C] {
        let identity = validator
            .validate(&entra_token(&keys, &entra_issuer(tenant), Some(tenant)))
            .await
            .expect("any tenant without an allow-list");
        assert_eq!(
            identity.issuer(),
            entra_issuer(tenant),
            "the concrete issuer"
        );
        assert_eq!(identity.claim("tid"), Some(json!(tenant)));
    }
    // The template policy advertises the organizations endpoint, and routes tenant issuers.
    let policy = validator.policies().next().unwrap();
    assert_eq!(policy.issuer(), ENTRA_ORGANIZATIONS_V2);
    assert!(validator.policy_for(&entra_issuer(TENANT_A)).is_some());
    assert!(validator.key_set(&entra_issuer(TENANT_A)).is_some());
    assert!(validator.key_set(ENTRA_ORGANIZATIONS_V2).is_some());
    assert_eq!(validator.advertised_issuers(), [ENTRA_ORGANIZATIONS_V2]);

    // `iss` and `tid` must name the same tenant; `tid` must be there.
    let cases = [
        (entra_issuer(TENANT_A), Some(TENANT_B)),
        (entra_issuer(TENANT_A), None),
        (entra_issuer(&TENANT_A.to_uppercase()), Some(TENANT_A)),
        // Not the template's shape: another host, an extra segment, an empty tenant, v1.
        (
            format!("https://login.example.com/{TENANT_A}/v2.0"),
            Some(TENANT_A),
        ),
        (
            format!("https://login.microsoftonline.com/{TENANT_A}/x/v2.0"),
            Some(TENANT_A),
        ),
        (
            "https://login.microsoftonline.com//v2.0".to_owned(),
            Some(""),
        ),
        (
            format!("https://sts.windows.net/{TENANT_A}/"),
            Some(TENANT_A),
        ),
    ];
    for (iss, tid) in cases {
        assert_eq!(
            validator
                .validate(&entra_token(&keys, &iss, tid))
                .await
                .unwrap_err(),
            TokenError::UnknownIssuer,
            "{iss} / {tid:?}"
        );
    }
}

#[tokio::test]
async fn a_tenant_not_on_the_allow_list_is_refused() {
    let keys = TestIssuer::start().await;
    let validator = Validator::new(
        entra_multi(&keys)
            .allowed_tenants([TENANT_A, &TENANT_B.to_uppercase()])
            .build()
            .unwrap(),
    )
    .unwrap();
    for tenant in [TENANT_A, TENANT_B] {
        validator
            .validate(&entra_token(&keys, &entra_issuer(tenant), Some(tenant)))
            .await
            .expect("allowed");
    }
    let error = validator
        .validate(&entra_token(&keys, &entra_issuer(TENANT_C), Some(TENANT_C)))
        .await
        .unwrap_err();
    assert_eq!(error, TokenError::TenantNotAllowed);
    assert_eq!(error.error_code().status(), 401);
    assert_eq!(error.reason(), "tenant_not_allowed");
    assert_eq!(
        validator
            .policies()
            .next()
            .unwrap()
            .allowed_tenants()
            .unwrap(),
        [TENANT_A.to_owned(), TENANT_B.to_uppercase()]
    );
}

#[tokio::test]
async fn the_v1_template_uses_sts_windows_net() {
    let keys = TestIssuer::start().await;
    let validator = Validator::new(
        IssuerPolicy::preset(Profile::EntraId {
            version: EntraVersion::V1,
            tenant: EntraTenant::Multi,
        })
        .allowed_tenants([TENANT_A])
        .audience("api://calendar")
        .jwks_uri(keys.jwks_uri())
        .build()
        .unwrap(),
    )
    .unwrap();
    let now = now();
    let claims = json!({
        "aud": "api://calendar", "iss": format!("https://sts.windows.net/{TENANT_A}/"),
        "iat": now, "exp": now + 3600, "appid": "29d9ed98-a469-4536-ade2-f981bc1d605e",
        "scp": "user_impersonation", "sub": "s", "tid": TENANT_A, "ver": "1.0",
    });
    let identity = validator.validate(&sign(&keys, &claims)).await.unwrap();
    assert_eq!(
        identity.client_id(),
        Some("29d9ed98-a469-4536-ade2-f981bc1d605e")
    );
    let mut other = claims.clone();
    other["iss"] = json!(format!("https://sts.windows.net/{TENANT_B}/"));
    other["tid"] = json!(TENANT_B);
    assert_eq!(
        validator.validate(&sign(&keys, &other)).await.unwrap_err(),
        TokenError::TenantNotAllowed
    );
}

#[tokio::test]
async fn an_exact_issuer_wins_over_a_template_and_keys_never_cross() {
    // Tenant A has its own single-tenant policy (another audience, other keys); every other
    // tenant goes through the template.
    let template_keys = TestIssuer::start().await;
    let tenant_a_keys = kit(SigningKey::generate(SigningAlgorithm::RS256, "tenant-a")).await;
    let validator = Validator::builder()
        .issuer(
            IssuerPolicy::preset(Profile::EntraId {
                version: EntraVersion::V2,
                tenant: EntraTenant::Single(TENANT_A.into()),
            })
            .audience("api://tenant-a-only")
            .jwks_uri(tenant_a_keys.jwks_uri())
            .build()
            .unwrap(),
        )
        .issuer(entra_multi(&template_keys).build().unwrap())
        .build()
        .unwrap();
    // Tenant A's token for the template's audience is judged by tenant A's policy.
    let token = entra_token(&template_keys, &entra_issuer(TENANT_A), Some(TENANT_A));
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        TokenError::AudienceMismatch
    );
    assert_eq!(
        validator
            .policy_for(&entra_issuer(TENANT_A))
            .unwrap()
            .issuer(),
        entra_issuer(TENANT_A)
    );
    // Tenant B goes through the template.
    validator
        .validate(&entra_token(
            &template_keys,
            &entra_issuer(TENANT_B),
            Some(TENANT_B),
        ))
        .await
        .unwrap();
    // A tenant-B token signed with tenant A's key (the exact policy's key set, whose kid
    // the template's set does not have) is refused: keys do not cross policies.
    let crossed = entra_token(&tenant_a_keys, &entra_issuer(TENANT_B), Some(TENANT_B));
    assert_eq!(
        validator.validate(&crossed).await.unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        validator.advertised_issuers(),
        [entra_issuer(TENANT_A).as_str(), ENTRA_ORGANIZATIONS_V2]
    );
}

#[test]
fn templates_are_checked_when_built() {
    let bad = IssuerPolicy::template("https://login.microsoftonline.com/common/v2.0")
        .advertised_issuer(ENTRA_ORGANIZATIONS_V2)
        .jwks_uri("https://login.microsoftonline.com/common/discovery/v2.0/keys")
        .audience(APP)
        .build();
    assert!(matches!(bad, Err(PolicyError::InvalidTemplate(_))));
    let no_keys = IssuerPolicy::template("https://login.microsoftonline.com/{tenantid}/v2.0")
        .advertised_issuer(ENTRA_ORGANIZATIONS_V2)
        .audience(APP)
        .build();
    assert!(matches!(
        no_keys,
        Err(PolicyError::TemplateNeedsKeySource(_))
    ));
    let exact_with_tenants = IssuerPolicy::builder("https://as.example.com")
        .audience(APP)
        .allowed_tenants([TENANT_A])
        .build();
    assert_eq!(
        exact_with_tenants.unwrap_err(),
        PolicyError::InvalidTenantList
    );
    let exact_advertising = IssuerPolicy::builder("https://as.example.com")
        .audience(APP)
        .advertised_issuer("https://other.example.com")
        .build();
    assert_eq!(
        exact_advertising.unwrap_err(),
        PolicyError::AdvertisedIssuerWithoutTemplate
    );
}

/// The HTTP layer refuses to start unless every policy's [`IssuerPolicy::issuer`] is in
/// `authorization_servers`: for a template, the advertised issuer.
#[cfg(feature = "layer")]
#[tokio::test]
async fn the_metadata_must_advertise_the_templates_advertised_issuer() {
    use mcp_oauth::http::OAuthLayer;
    use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};

    static DECLARATION: ResourceDeclaration = ResourceDeclaration {
        scopes: &["access_as_user"],
        ..ResourceDeclaration::new(
            "Calendar",
            "https://mcp.example.com/mcp",
            &["https://login.microsoftonline.com/organizations/v2.0"],
        )
    };
    let keys = TestIssuer::start().await;
    let validator = Validator::new(entra_multi(&keys).build().unwrap()).unwrap();
    let advertised = ResourceConfig::from_declaration(&DECLARATION).unwrap();
    assert!(
        OAuthLayer::builder(advertised, validator.clone())
            .build()
            .is_ok()
    );
    let template_only = ResourceConfig::from_declaration(&DECLARATION)
        .unwrap()
        .authorization_servers([entra_issuer(TENANT_A)]);
    assert!(
        OAuthLayer::builder(template_only, validator)
            .build()
            .is_err(),
        "a tenant's issuer is not what the template policy advertises"
    );
}
