//! Identity-provider presets: one test per provider, with a token shaped as that provider's
//! public documentation shows it (header and claims, minted by the test kit), accepted under
//! its preset and refused under the strict default where the shapes differ — each refusal
//! names the check that makes it.

use std::time::{SystemTime, UNIX_EPOCH};

use mcp_oauth::testing::{TestIssuer, compact_jws};
use mcp_oauth::validation::{
    Claim, EntraTenant, EntraVersion, IssuerPolicyBuilder, Profile, TokenError,
};
use mcp_oauth::{IssuerPolicy, Validator, VerifiedToken};
use serde_json::{Value, json};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs `claims` with the kit issuer's key under `header` (its `alg` and `kid` added).
fn mint(kit: &TestIssuer, mut header: Value, claims: &Value) -> String {
    let key = kit.signing_key();
    header["alg"] = json!(key.algorithm().name());
    header["kid"] = json!(key.kid());
    compact_jws(&header, claims, &key)
}

/// `token` validated under `policy`, whose keys come from the kit issuer.
async fn validate(
    kit: &TestIssuer,
    policy: IssuerPolicyBuilder,
    token: &str,
) -> Result<VerifiedToken, TokenError> {
    let policy = policy.jwks_uri(kit.jwks_uri()).build().expect("policy");
    Validator::new(policy).unwrap().validate(token).await
}

/// The strict default policy for `issuer` and `audience`.
fn strict(issuer: &str, audience: &str) -> IssuerPolicyBuilder {
    IssuerPolicy::builder(issuer).audience(audience)
}

fn with_typ(header: &Value, typ: &str) -> Value {
    let mut header = header.clone();
    header["typ"] = json!(typ);
    header
}

fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[name] = value;
    claims
}

// ---------------------------------------------------------------------------------------

/// docs.scalekit.com, "Access token claims": the sample payload (the page skips the header;
/// Scalekit signs RS256 with `typ: JWT`).
#[tokio::test]
async fn scalekit() {
    let kit = TestIssuer::start().await;
    let env = "https://acme.scalekit.com";
    let now = now();
    let header = json!({"typ": "JWT"});
    let claims = json!({
        "aud": ["skc_987654321098765432"],
        "client_id": "skc_987654321098765432",
        "exp": now + 300,
        "iat": now,
        "iss": env,
        "jti": "tkn_987654321098765432",
        "nbf": now,
        "roles": ["project_manager", "member"],
        "oid": "org_69615647365005430",
        "permissions": ["projects:create", "projects:read", "tasks:assign"],
        "sid": "ses_987654321098765432",
        "sub": "usr_987654321098765432",
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = || {
        IssuerPolicy::preset(Profile::Scalekit {
            environment_url: env.into(),
        })
        .audience("skc_987654321098765432")
    };
    let identity = validate(&kit, preset(), &token).await.expect("preset");
    assert_eq!(identity.subject(), Some("usr_987654321098765432"));
    assert_eq!(identity.client_id(), Some("skc_987654321098765432"));
    assert_eq!(
        identity.scopes().to_space_separated(),
        "projects:create projects:read tasks:assign",
        "scopes from `permissions` when there is no `scope`"
    );

    // Strict default: refused by the `typ` check (`JWT`, not `at+jwt`).
    let strict = || strict(env, "skc_987654321098765432");
    assert_eq!(
        validate(&kit, strict(), &token).await.unwrap_err(),
        TokenError::InvalidType
    );
    // With `at+jwt` it passes, but reads no scopes: `permissions` is not `scope`.
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert!(
        validate(&kit, strict(), &at_jwt)
            .await
            .unwrap()
            .scopes()
            .is_empty()
    );

    // An MCP-server token carries `scope`: that wins over `permissions`.
    let mcp = mint(
        &kit,
        header,
        &with(&claims, "scope", json!("todo:read todo:write")),
    );
    let identity = validate(&kit, preset(), &mcp).await.unwrap();
    assert_eq!(
        identity.scopes().to_space_separated(),
        "todo:read todo:write"
    );
}

/// auth0.com/docs, "Access Token Profiles": the Auth0 token profile (`typ: JWT`, `azp`, no
/// `client_id`, no `jti`), a client-credentials token, and the RFC 9068 profile.
#[tokio::test]
async fn auth0() {
    let kit = TestIssuer::start().await;
    let issuer = "https://my-domain.auth0.com/";
    let api = "https://example.com/health-api";
    let now = now();
    let header = json!({"typ": "JWT"});
    let claims = json!({
        "iss": issuer,
        "sub": "auth0|123456",
        "aud": [api, "https://my-domain.auth0.com/userinfo"],
        "azp": "my_client_id",
        "exp": now + 300,
        "iat": now,
        "scope": "openid profile read:patients read:admin",
        "permissions": ["read:patients", "read:admin"],
        "my_custom_claim": "my_custom_value",
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = || {
        IssuerPolicy::preset(Profile::Auth0 {
            domain: "my-domain.auth0.com".into(),
        })
        .audience(api)
    };
    let identity = validate(&kit, preset(), &token).await.expect("preset");
    assert_eq!(identity.client_id(), Some("my_client_id"), "from `azp`");
    assert!(identity.scopes().contains("read:patients"));
    assert!(
        identity.scopes().contains("openid"),
        "`scope` wins over `permissions`"
    );

    // Strict default: refused by `typ`; with `at+jwt`, by the missing `client_id`; with that
    // too, by the missing `jti`.
    let strict = || strict(issuer, api);
    assert_eq!(
        validate(&kit, strict(), &token).await.unwrap_err(),
        TokenError::InvalidType
    );
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert_eq!(
        validate(&kit, strict(), &at_jwt).await.unwrap_err(),
        TokenError::MissingClaim(Claim::ClientId)
    );
    let with_client_id = mint(
        &kit,
        with_typ(&header, "at+jwt"),
        &with(&claims, "client_id", json!("my_client_id")),
    );
    assert_eq!(
        validate(&kit, strict(), &with_client_id).await.unwrap_err(),
        TokenError::MissingClaim(Claim::JwtId)
    );

    // Client credentials: `sub` is `{client_id}@clients`, `gty`, `azp`.
    let machine = json!({
        "iss": issuer,
        "sub": "my_client_id@clients",
        "aud": api,
        "iat": now,
        "exp": now + 300,
        "scope": "read:patients",
        "gty": "client-credentials",
        "azp": "my_client_id",
    });
    let identity = validate(&kit, preset(), &mint(&kit, header, &machine))
        .await
        .expect("client credentials");
    assert_eq!(identity.client_id(), Some("my_client_id"));

    // The RFC 9068 token profile passes both.
    let rfc9068 = json!({
        "iss": issuer,
        "sub": "auth0|123456",
        "aud": api,
        "client_id": "my_client_id",
        "exp": now + 300,
        "iat": now,
        "jti": "73WakrfVxjlkj",
        "scope": "read:patients",
    });
    let token = mint(&kit, json!({"typ": "at+jwt"}), &rfc9068);
    validate(&kit, preset(), &token).await.expect("preset");
    validate(&kit, strict(), &token).await.expect("strict");
}

/// learn.microsoft.com, "Access token claims reference": the v2.0 sample (header `typ: JWT`),
/// one tenant.
#[tokio::test]
async fn entra_id_v2() {
    let kit = TestIssuer::start().await;
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let app = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
    let now = now();
    let header = json!({"typ": "JWT"});
    let claims = json!({
        "aud": app,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + 3900,
        "aio": "AXQAi/8IAAAAtAaZLo3ChMif6KOnttRB7eBq4/DccQzjcJGxPYy/C3jDaNGxXd6wNIIVGRghNRnwJ1lOcAnNZcjvkoyrFxCttv33140RioOFJ4bCCGVuoCag1uOTT22222gHwLPYQ/uf79QX+0KIijdrmp69RctzmQ==",
        "azp": app,
        "azpacr": "0",
        "name": "Abe Lincoln",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "abeli@microsoft.com",
        "rh": "I",
        "scp": "access_as_user",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "tid": tenant,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = || {
        IssuerPolicy::preset(Profile::EntraId {
            version: EntraVersion::V2,
            tenant: EntraTenant::Single(tenant.into()),
        })
        .audience(app)
        .audience("api://calendar")
    };
    let identity = validate(&kit, preset(), &token).await.expect("preset");
    assert_eq!(identity.client_id(), Some(app), "from `azp`");
    assert_eq!(identity.scopes().to_space_separated(), "access_as_user");
    assert_eq!(identity.issuer(), issuer);

    // The same app's token with the App ID URI as audience (fastmcp #3729) is accepted too.
    let by_uri = mint(
        &kit,
        header.clone(),
        &with(&claims, "aud", json!("api://calendar")),
    );
    validate(&kit, preset(), &by_uri).await.expect("App ID URI");

    // App-only tokens carry `roles` and no `scp`: the roles are the scopes. A delegated
    // token's `roles` (the user's app roles) never widen its `scp`.
    let mut app_only = claims.clone();
    app_only.as_object_mut().unwrap().remove("scp");
    app_only["roles"] = json!(["Calendars.Read.All"]);
    let identity = validate(&kit, preset(), &mint(&kit, header.clone(), &app_only))
        .await
        .unwrap();
    assert_eq!(identity.scopes().to_space_separated(), "Calendars.Read.All");
    let both = with(&claims, "roles", json!(["Admin"]));
    let identity = validate(&kit, preset(), &mint(&kit, header.clone(), &both))
        .await
        .unwrap();
    assert_eq!(identity.scopes().to_space_separated(), "access_as_user");

    // Strict default: refused by `typ`; with `at+jwt`, by the missing `client_id` (Entra has
    // `azp`); with that, by the missing `jti` (Entra has `uti`).
    let strict = || strict(&issuer, app);
    assert_eq!(
        validate(&kit, strict(), &token).await.unwrap_err(),
        TokenError::InvalidType
    );
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert_eq!(
        validate(&kit, strict(), &at_jwt).await.unwrap_err(),
        TokenError::MissingClaim(Claim::ClientId)
    );
    assert_eq!(
        validate(&kit, strict().client_id_claims(["azp"]), &at_jwt)
            .await
            .unwrap_err(),
        TokenError::MissingClaim(Claim::JwtId)
    );

    // Another tenant's token is not this policy's.
    let other = with(
        &claims,
        "iss",
        json!("https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"),
    );
    assert_eq!(
        validate(&kit, preset(), &mint(&kit, header, &other))
            .await
            .unwrap_err(),
        TokenError::UnknownIssuer
    );
}

/// learn.microsoft.com, "Access token claims reference": the v1.0 sample (`sts.windows.net`
/// issuer, `appid`, App ID URI audience, `x5t` in the header).
#[tokio::test]
async fn entra_id_v1() {
    let kit = TestIssuer::start().await;
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let issuer = format!("https://sts.windows.net/{tenant}/");
    let audience = "api://calendar";
    let now = now();
    let header = json!({"typ": "JWT", "x5t": "i6lGk3FZzxRcUb2C3nEQ7syHJlY"});
    let claims = json!({
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + 3900,
        "acr": "1",
        "aio": "AVQAq/8RAAAA",
        "amr": ["pwd"],
        "appid": "29d9ed98-a469-4536-ade2-f981bc1d605e",
        "appidacr": "0",
        "family_name": "Lincoln",
        "given_name": "Abe",
        "ipaddr": "131.107.222.22",
        "name": "Abe Lincoln",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "rh": "I",
        "scp": "user_impersonation",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "tid": tenant,
        "unique_name": "abeli@microsoft.com",
        "upn": "abeli@microsoft.com",
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "1.0",
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = IssuerPolicy::preset(Profile::EntraId {
        version: EntraVersion::V1,
        tenant: EntraTenant::Single(tenant.into()),
    })
    .audience(audience);
    let identity = validate(&kit, preset, &token).await.expect("preset");
    assert_eq!(
        identity.client_id(),
        Some("29d9ed98-a469-4536-ade2-f981bc1d605e"),
        "from `appid`"
    );
    assert_eq!(identity.scopes().to_space_separated(), "user_impersonation");

    // Strict default: refused by `typ`; with `at+jwt`, by the missing `client_id`.
    assert_eq!(
        validate(&kit, strict(&issuer, audience), &token)
            .await
            .unwrap_err(),
        TokenError::InvalidType
    );
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert_eq!(
        validate(&kit, strict(&issuer, audience), &at_jwt)
            .await
            .unwrap_err(),
        TokenError::MissingClaim(Claim::ClientId)
    );
}

/// A Keycloak 26 access token (`typ: JWT` header; `typ: Bearer`, `azp`, `realm_access`
/// claims; the audience from an audience mapper), as its admin console's "evaluate" tab shows.
#[tokio::test]
async fn keycloak() {
    let kit = TestIssuer::start().await;
    let issuer = "https://keycloak.example.com/realms/acme";
    let audience = "https://mcp.example.com/mcp";
    let now = now();
    let header = json!({"typ": "JWT"});
    let claims = json!({
        "exp": now + 300,
        "iat": now,
        "auth_time": now - 10,
        "jti": "onrtac:5b3a7b2c-6f43-4b1a-9c4e-0f1d2e3a4b5c",
        "iss": issuer,
        "aud": [audience, "account"],
        "sub": "f1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "typ": "Bearer",
        "azp": "mcp-inspector",
        "sid": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "acr": "1",
        "allowed-origins": ["http://localhost:6274"],
        "realm_access": {"roles": ["default-roles-acme", "offline_access"]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "scope": "openid profile email calendar:read",
        "email_verified": true,
        "preferred_username": "alice",
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = || {
        IssuerPolicy::preset(Profile::Keycloak {
            base_url: "https://keycloak.example.com".into(),
            realm: "acme".into(),
        })
        .audience(audience)
    };
    let identity = validate(&kit, preset(), &token).await.expect("preset");
    assert_eq!(identity.client_id(), Some("mcp-inspector"), "from `azp`");
    assert!(identity.scopes().contains("calendar:read"));

    // Strict default: refused by `typ` (the header's `JWT`; the payload's `typ: Bearer` is
    // not the JOSE header); with `at+jwt`, by the missing `client_id`.
    assert_eq!(
        validate(&kit, strict(issuer, audience), &token)
            .await
            .unwrap_err(),
        TokenError::InvalidType
    );
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert_eq!(
        validate(&kit, strict(issuer, audience), &at_jwt)
            .await
            .unwrap_err(),
        TokenError::MissingClaim(Claim::ClientId)
    );

    // A client-credentials token carries `client_id` as well: the preset prefers it.
    let machine = with(&claims, "client_id", json!("calendar-service"));
    let identity = validate(&kit, preset(), &mint(&kit, header.clone(), &machine))
        .await
        .unwrap();
    assert_eq!(identity.client_id(), Some("calendar-service"));

    // Lenient `typ` still refuses an ID token (`nonce`, `at_hash`).
    let id_token = with(
        &with(&claims, "nonce", json!("n-0S6_WzA2Mj")),
        "typ",
        json!("ID"),
    );
    assert_eq!(
        validate(&kit, preset(), &mint(&kit, header, &id_token))
            .await
            .unwrap_err(),
        TokenError::IdToken
    );
}

/// developer.okta.com, "Access token" of a custom authorization server: no `typ` in the
/// header, `cid` for the client, `scp` as an array.
#[tokio::test]
async fn okta() {
    let kit = TestIssuer::start().await;
    let issuer = "https://acme.okta.com/oauth2/default";
    let audience = "api://default";
    let now = now();
    let header = json!({});
    let claims = json!({
        "ver": 1,
        "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
        "iss": issuer,
        "aud": audience,
        "sub": "00uid4BxXw6I6TV4m0g3",
        "iat": now,
        "exp": now + 3600,
        "cid": "0oaid4BxXw6I6TV4m0g3",
        "uid": "00uid4BxXw6I6TV4m0g3",
        "scp": ["openid", "email", "calendar:read"],
        "auth_time": now - 60,
    });
    let token = mint(&kit, header.clone(), &claims);
    let preset = || {
        IssuerPolicy::preset(Profile::Okta {
            domain: "acme.okta.com".into(),
            authorization_server: "default".into(),
        })
        .audience(audience)
    };
    let identity = validate(&kit, preset(), &token).await.expect("preset");
    assert_eq!(
        identity.client_id(),
        Some("0oaid4BxXw6I6TV4m0g3"),
        "from `cid`"
    );
    assert_eq!(
        identity.scopes().to_space_separated(),
        "calendar:read email openid"
    );

    // Strict default: refused by `typ` (absent); with `at+jwt`, by the missing `client_id`.
    assert_eq!(
        validate(&kit, strict(issuer, audience), &token)
            .await
            .unwrap_err(),
        TokenError::InvalidType
    );
    let at_jwt = mint(&kit, with_typ(&header, "at+jwt"), &claims);
    assert_eq!(
        validate(&kit, strict(issuer, audience), &at_jwt)
            .await
            .unwrap_err(),
        TokenError::MissingClaim(Claim::ClientId)
    );

    // Okta's ID token (`aud` the client id, `at_hash`) is refused under the preset too.
    let id_token = json!({
        "ver": 1, "sub": "00uid4BxXw6I6TV4m0g3", "iss": issuer, "aud": "0oaid4BxXw6I6TV4m0g3",
        "iat": now, "exp": now + 3600, "jti": "ID.4eAWJOCMB3SX8XewDfVR", "amr": ["pwd"],
        "idp": "00ok1u7AsAkrwdZL3z0g3", "auth_time": now - 60, "at_hash": "preview_at_hash",
    });
    assert_eq!(
        validate(&kit, preset(), &mint(&kit, header, &id_token))
            .await
            .unwrap_err(),
        TokenError::IdToken
    );
}

/// RFC 9068 §2 and its example (`typ: at+jwt`, every required claim): the preset is the
/// strict default, and both accept it.
#[tokio::test]
async fn rfc9068() {
    let kit = TestIssuer::start().await;
    let issuer = "https://authorization-server.example.com/";
    let audience = "https://rs.example.com/";
    let now = now();
    let claims = json!({
        "iss": issuer,
        "exp": now + 300,
        "aud": audience,
        "sub": "5ba552d67",
        "client_id": "s6BhdRkqt3",
        "iat": now,
        "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
        "scope": "openid profile reademail",
    });
    let token = mint(&kit, json!({"typ": "at+jwt"}), &claims);
    let preset = IssuerPolicy::preset(Profile::Rfc9068 {
        issuer: issuer.into(),
    })
    .audience(audience);
    let identity = validate(&kit, preset, &token).await.expect("preset");
    assert_eq!(identity.client_id(), Some("s6BhdRkqt3"));
    validate(&kit, strict(issuer, audience), &token)
        .await
        .expect("strict");
    // `application/at+jwt` and any case are RFC 9068 too; `JWT` is not.
    let long = mint(&kit, json!({"typ": "Application/AT+JWT"}), &claims);
    validate(&kit, strict(issuer, audience), &long)
        .await
        .expect("application/at+jwt");
    let jwt = mint(&kit, json!({"typ": "JWT"}), &claims);
    assert_eq!(
        validate(
            &kit,
            IssuerPolicy::preset(Profile::Rfc9068 {
                issuer: issuer.into()
            })
            .audience(audience),
            &jwt
        )
        .await
        .unwrap_err(),
        TokenError::InvalidType
    );
}
