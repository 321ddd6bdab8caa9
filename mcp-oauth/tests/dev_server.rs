//! The dev authorization server over real HTTP on loopback: metadata, every grant, dynamic
//! registration, introspection, revocation, and its limits.
#![cfg(feature = "dev")]

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::dev::{DevAuthorizationServer, DevClient};
use mcp_oauth::testing::SigningAlgorithm;
use mcp_oauth::{IssuerPolicy, ManualClock, Validator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const OTHER_RESOURCE: &str = "http://127.0.0.1:9090/mcp";
const SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "calendar:admin"];
/// A pre-registered client allowed only `calendar:read`.
const READER_ID: &str = "reader";
const READER_SECRET: &str = "reader-secret";
const REDIRECT: &str = "http://127.0.0.1/callback";

fn http() -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
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

fn builder() -> mcp_oauth::dev::DevAuthorizationServerBuilder {
    DevAuthorizationServer::builder()
        .resource(RESOURCE)
        .resource(OTHER_RESOURCE)
        .scopes(SCOPES)
        .client(DevClient {
            id: READER_ID.into(),
            secret: READER_SECRET.into(),
            scopes: vec!["calendar:read".into()],
            redirect_uris: vec![REDIRECT.into()],
        })
}

async fn server() -> DevAuthorizationServer {
    builder().start().await.expect("the dev server starts")
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `error` of an RFC 6749 error response, checking its status.
    fn oauth_error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert!(body["error_description"].is_string(), "{body}");
        body["error"].as_str().unwrap().to_owned()
    }

    /// The query parameters of the `Location` of a redirect.
    fn location_params(&self) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "{}", String::from_utf8_lossy(&self.body));
        let location = url::Url::parse(self.header("location").expect("a Location")).unwrap();
        location.query_pairs().into_owned().collect()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

async fn get(url: &str) -> Reply {
    reply(http().get(url).send().await.unwrap()).await
}

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn post_form(url: &str, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Reply {
    let mut request = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Auth::Basic(id, secret) = auth {
        request = request.basic_auth(id, Some(secret));
    }
    reply(request.send().await.unwrap()).await
}

async fn post_json(url: &str, body: &Value) -> Reply {
    let request = http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    reply(request.send().await.unwrap()).await
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// A PKCE pair: `(verifier, S256 challenge)`.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn client_credentials(
    server: &DevAuthorizationServer,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    post_form(server.token_endpoint(), Auth::Basic(id, secret), &pairs).await
}

/// `GET /authorize` (not followed).
async fn authorize(
    server: &DevAuthorizationServer,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz-state"),
    ];
    pairs.extend_from_slice(extra);
    let url = format!("{}?{}", server.authorization_endpoint(), form(&pairs));
    get(&url).await
}

/// Runs `/authorize` for the reader client and returns the code.
async fn reader_code(server: &DevAuthorizationServer, challenge: &str) -> String {
    let redirect = authorize(server, READER_ID, REDIRECT, challenge, &[]).await;
    redirect.location_params()["code"].clone()
}

async fn exchange_code(
    server: &DevAuthorizationServer,
    auth: Auth<'_>,
    code: &str,
    verifier: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    pairs.extend_from_slice(extra);
    post_form(server.token_endpoint(), auth, &pairs).await
}

/// Tokens from the reader client's authorization-code flow: `(access, refresh)`.
async fn reader_tokens(server: &DevAuthorizationServer) -> (String, String) {
    let (verifier, challenge) = pkce();
    let code = reader_code(server, &challenge).await;
    let tokens = exchange_code(
        server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &verifier,
        &[],
    )
    .await;
    assert_eq!(
        tokens.status,
        200,
        "{}",
        String::from_utf8_lossy(&tokens.body)
    );
    let tokens = tokens.json();
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(
    server: &DevAuthorizationServer,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    pairs.extend_from_slice(extra);
    post_form(
        server.token_endpoint(),
        Auth::Basic(READER_ID, READER_SECRET),
        &pairs,
    )
    .await
}

async fn introspect(server: &DevAuthorizationServer, token: &str) -> Value {
    let client = server.dev_client();
    let reply = post_form(
        server.introspection_endpoint(),
        Auth::Basic(&client.id, &client.secret),
        &[("token", token)],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

async fn validator(server: &DevAuthorizationServer, audience: &str) -> Validator {
    let policy = IssuerPolicy::builder(server.issuer())
        .audience(audience)
        .build()
        .unwrap();
    Validator::new(policy).unwrap()
}

// ---- metadata ----

#[tokio::test]
async fn metadata_documents_advertise_every_endpoint() {
    let server = server().await;
    let issuer = server.issuer();
    assert_eq!(issuer, format!("http://{}", server.addr()));

    let rfc8414 = get(&format!("{issuer}/.well-known/oauth-authorization-server")).await;
    assert_eq!(rfc8414.status, 200);
    assert_eq!(rfc8414.header("content-type"), Some("application/json"));
    let doc = rfc8414.json();
    assert_eq!(doc, server.metadata());
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["jwks_uri"], server.jwks_uri());
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], server.token_endpoint());
    assert_eq!(doc["registration_endpoint"], format!("{issuer}/register"));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{issuer}/introspect")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{issuer}/revoke"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(doc["scopes_supported"], json!(SCOPES));

    let openid = get(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(openid.status, 200);
    let openid = openid.json();
    assert_eq!(openid["issuer"], issuer);
    assert_eq!(openid["token_endpoint"], doc["token_endpoint"]);
    assert_eq!(openid["subject_types_supported"], json!(["public"]));

    let jwks = get(server.jwks_uri()).await.json();
    assert_eq!(jwks, server.jwks());
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "no private key material");

    assert_eq!(get(&format!("{issuer}/nope")).await.status, 404);
    assert_eq!(get(server.token_endpoint()).await.status, 405);
}

// ---- client_credentials ----

#[tokio::test]
async fn client_credentials_with_basic_auth() {
    let server = server().await;
    let client = server.dev_client();
    assert_eq!(client.id, "dev-client");
    let reply = client_credentials(&server, &client.id, &client.secret, &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], SCOPES.join(" "));
    assert!(body.get("refresh_token").is_none());

    let token = body["access_token"].as_str().unwrap();
    let header = header(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], server.jwks()["keys"][0]["kid"]);
    let claims = claims(token);
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["sub"], "dev-client");
    assert_eq!(claims["client_id"], "dev-client");
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["scope"], SCOPES.join(" "));
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert!(claims["jti"].is_string());
}

#[tokio::test]
async fn client_credentials_with_post_auth() {
    let server = server().await;
    let reply = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", READER_ID),
            ("client_secret", READER_SECRET),
        ],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["scope"], "calendar:read");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["sub"],
        READER_ID
    );
}

#[tokio::test]
async fn client_credentials_with_a_wrong_secret_is_invalid_client() {
    let server = server().await;
    let reply = client_credentials(&server, READER_ID, "not-the-secret", &[]).await;
    assert_eq!(reply.oauth_error(401), "invalid_client");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );

    let unknown = client_credentials(&server, "nobody", READER_SECRET, &[]).await;
    assert_eq!(unknown.oauth_error(401), "invalid_client");

    let post = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", READER_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(post.oauth_error(401), "invalid_client");

    // A confidential client without its secret.
    let bare = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", READER_ID),
        ],
    )
    .await;
    assert_eq!(bare.oauth_error(401), "invalid_client");
}

#[tokio::test]
async fn client_credentials_scope_outside_the_clients_is_invalid_scope() {
    let server = server().await;
    let reply = client_credentials(
        &server,
        READER_ID,
        READER_SECRET,
        &[("scope", "calendar:read calendar:write")],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_scope");

    let unknown =
        client_credentials(&server, READER_ID, READER_SECRET, &[("scope", "email")]).await;
    assert_eq!(unknown.oauth_error(400), "invalid_scope");
}

#[tokio::test]
async fn token_endpoint_request_errors() {
    let server = server().await;
    let client = server.dev_client();
    let unsupported = post_form(
        server.token_endpoint(),
        Auth::Basic(&client.id, &client.secret),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(unsupported.oauth_error(400), "unsupported_grant_type");

    let missing = post_form(
        server.token_endpoint(),
        Auth::Basic(&client.id, &client.secret),
        &[("scope", "calendar:read")],
    )
    .await;
    assert_eq!(missing.oauth_error(400), "invalid_request");

    let repeated = post_form(
        server.token_endpoint(),
        Auth::Basic(&client.id, &client.secret),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "calendar:read"),
            ("scope", "calendar:write"),
        ],
    )
    .await;
    assert_eq!(repeated.oauth_error(400), "invalid_request");

    // Basic and client_secret_post at once.
    let two_methods = post_form(
        server.token_endpoint(),
        Auth::Basic(&client.id, &client.secret),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(two_methods.oauth_error(400), "invalid_request");

    let unknown_resource = client_credentials(
        &server,
        &client.id,
        &client.secret,
        &[("resource", "http://127.0.0.1:1/elsewhere")],
    )
    .await;
    assert_eq!(unknown_resource.oauth_error(400), "invalid_target");
}

#[tokio::test]
async fn issued_token_validates_with_the_strict_validator() {
    let server = server().await;
    let client = server.dev_client();
    let reply = client_credentials(
        &server,
        &client.id,
        &client.secret,
        &[
            ("scope", "calendar:read calendar:write"),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();

    let verified = validator(&server, RESOURCE)
        .await
        .validate(&token)
        .await
        .unwrap();
    assert_eq!(verified.issuer(), server.issuer());
    assert_eq!(verified.audiences(), [RESOURCE]);
    assert_eq!(verified.client_id(), Some("dev-client"));
    assert!(verified.scopes().contains("calendar:read"));
    assert!(verified.scopes().contains("calendar:write"));
    assert!(!verified.scopes().contains("calendar:admin"));
    // Another resource's validator refuses it.
    assert!(
        validator(&server, OTHER_RESOURCE)
            .await
            .validate(&token)
            .await
            .is_err()
    );

    // The `resource` parameter picks the audience.
    let other = client_credentials(
        &server,
        &client.id,
        &client.secret,
        &[("resource", OTHER_RESOURCE)],
    )
    .await
    .json();
    let other = other["access_token"].as_str().unwrap();
    assert_eq!(claims(other)["aud"], OTHER_RESOURCE);
    assert!(
        validator(&server, OTHER_RESOURCE)
            .await
            .validate(other)
            .await
            .is_ok()
    );
    assert!(
        validator(&server, RESOURCE)
            .await
            .validate(other)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rs256_tokens_validate_too() {
    let server = builder()
        .signing_algorithm(SigningAlgorithm::RS256)
        .start()
        .await
        .unwrap();
    assert_eq!(server.jwks()["keys"][0]["kty"], "RSA");
    let client = server.dev_client();
    let reply = client_credentials(&server, &client.id, &client.secret, &[]).await;
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&token)["alg"], "RS256");
    assert!(
        validator(&server, RESOURCE)
            .await
            .validate(&token)
            .await
            .is_ok()
    );
    assert_eq!(introspect(&server, &token).await["active"], true);
}

#[tokio::test]
async fn minted_tokens_validate() {
    let server = server().await;
    let token = server.mint_access_token("alice", "some-client", &["calendar:admin"]);
    let verified = validator(&server, RESOURCE)
        .await
        .validate(&token)
        .await
        .unwrap();
    assert_eq!(verified.subject(), Some("alice"));
    assert_eq!(verified.client_id(), Some("some-client"));
    assert!(verified.scopes().contains("calendar:admin"));
    assert_eq!(introspect(&server, &token).await["active"], true);
}

// ---- authorization code + PKCE ----

#[tokio::test]
async fn authorization_code_with_pkce_end_to_end() {
    let server = server().await;
    let (verifier, challenge) = pkce();
    // A loopback redirect URI may use any port (RFC 8252).
    let redirect_uri = "http://127.0.0.1:51234/callback";
    let redirect = authorize(
        &server,
        READER_ID,
        redirect_uri,
        &challenge,
        &[("scope", "calendar:read"), ("resource", RESOURCE)],
    )
    .await;
    let location = redirect.header("location").unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:51234/callback?"),
        "{location}"
    );
    let params = redirect.location_params();
    assert_eq!(params["state"], "xyz-state");
    assert_eq!(params["iss"], server.issuer());
    assert!(!params.contains_key("error"));
    let code = &params["code"];

    let reply = post_form(
        server.token_endpoint(),
        Auth::Basic(READER_ID, READER_SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "calendar:read");
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(claims["sub"], "dev-user");
    assert_eq!(claims["client_id"], READER_ID);
    assert_eq!(claims["aud"], RESOURCE);

    let verified = validator(&server, RESOURCE)
        .await
        .validate(token)
        .await
        .unwrap();
    assert_eq!(verified.subject(), Some("dev-user"));
    assert!(verified.scopes().contains("calendar:read"));
}

#[tokio::test]
async fn the_dev_user_is_configurable() {
    let server = builder().dev_user("carol").start().await.unwrap();
    assert_eq!(server.dev_user(), "carol");
    let (access, _) = reader_tokens(&server).await;
    assert_eq!(claims(&access)["sub"], "carol");
}

#[tokio::test]
async fn authorization_code_with_a_wrong_verifier_is_invalid_grant() {
    let server = server().await;
    let (verifier, challenge) = pkce();
    let code = reader_code(&server, &challenge).await;
    let (other_verifier, _) = pkce();
    let reply = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &other_verifier,
        &[],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");
    // A failed PKCE check burns the code.
    let retry = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &verifier,
        &[],
    )
    .await;
    assert_eq!(retry.oauth_error(400), "invalid_grant");

    // No verifier at all.
    let code = reader_code(&server, &challenge).await;
    let reply = post_form(
        server.token_endpoint(),
        Auth::Basic(READER_ID, READER_SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_request");
}

#[tokio::test]
async fn authorization_code_reuse_is_invalid_grant_and_revokes_its_tokens() {
    let server = server().await;
    let (verifier, challenge) = pkce();
    let code = reader_code(&server, &challenge).await;
    let auth = || Auth::Basic(READER_ID, READER_SECRET);
    let first = exchange_code(&server, auth(), &code, &verifier, &[]).await;
    assert_eq!(first.status, 200);
    let first = first.json();
    let access = first["access_token"].as_str().unwrap();
    let refresh_token = first["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&server, access).await["active"], true);

    let second = exchange_code(&server, auth(), &code, &verifier, &[]).await;
    assert_eq!(second.oauth_error(400), "invalid_grant");
    assert_eq!(introspect(&server, access).await["active"], false);
    assert_eq!(introspect(&server, refresh_token).await["active"], false);
    assert_eq!(
        refresh(&server, refresh_token, &[]).await.oauth_error(400),
        "invalid_grant"
    );
}

#[tokio::test]
async fn authorization_code_is_bound_to_client_redirect_uri_and_resource() {
    let server = server().await;
    let (verifier, challenge) = pkce();
    let dev = server.dev_client();

    let code = reader_code(&server, &challenge).await;
    let other_client = exchange_code(
        &server,
        Auth::Basic(&dev.id, &dev.secret),
        &code,
        &verifier,
        &[],
    )
    .await;
    assert_eq!(other_client.oauth_error(400), "invalid_grant");

    let other_redirect = post_form(
        server.token_endpoint(),
        Auth::Basic(READER_ID, READER_SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(other_redirect.oauth_error(400), "invalid_grant");

    let other_resource = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &verifier,
        &[("resource", OTHER_RESOURCE)],
    )
    .await;
    assert_eq!(other_resource.oauth_error(400), "invalid_target");

    // None of these consumed the code.
    let ok = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &verifier,
        &[("resource", RESOURCE)],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[tokio::test]
async fn authorization_codes_expire_after_sixty_seconds() {
    let clock = ManualClock::starting_now();
    let server = builder().clock(clock.clone()).start().await.unwrap();
    let (verifier, challenge) = pkce();
    let code = reader_code(&server, &challenge).await;
    clock.advance(Duration::from_secs(61));
    let reply = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &code,
        &verifier,
        &[],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");
}

#[tokio::test]
async fn authorize_refuses_the_plain_method_and_missing_pkce() {
    let server = server().await;
    let (verifier, _) = pkce();
    // `plain`: the challenge is the verifier itself.
    let url = format!(
        "{}?{}",
        server.authorization_endpoint(),
        form(&[
            ("response_type", "code"),
            ("client_id", READER_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &verifier),
            ("code_challenge_method", "plain"),
            ("state", "s1"),
        ])
    );
    let params = get(&url).await.location_params();
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "s1");
    assert!(!params.contains_key("code"));

    // No method at all defaults to plain in RFC 7636: refused too.
    let url = format!(
        "{}?{}",
        server.authorization_endpoint(),
        form(&[
            ("response_type", "code"),
            ("client_id", READER_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &verifier),
        ])
    );
    assert_eq!(
        get(&url).await.location_params()["error"],
        "invalid_request"
    );

    // No challenge.
    let url = format!(
        "{}?{}",
        server.authorization_endpoint(),
        form(&[
            ("response_type", "code"),
            ("client_id", READER_ID),
            ("redirect_uri", REDIRECT),
        ])
    );
    assert_eq!(
        get(&url).await.location_params()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn authorize_errors_redirect_with_the_rfc6749_codes() {
    let server = server().await;
    let (_, challenge) = pkce();
    let scope = authorize(
        &server,
        READER_ID,
        REDIRECT,
        &challenge,
        &[("scope", "calendar:write")],
    )
    .await;
    assert_eq!(scope.location_params()["error"], "invalid_scope");

    let token_type = authorize(
        &server,
        READER_ID,
        REDIRECT,
        &challenge,
        &[("response_type", "token")],
    )
    .await;
    // `response_type` repeated (code, then token): invalid_request.
    assert_eq!(token_type.location_params()["error"], "invalid_request");
    let url = format!(
        "{}?{}",
        server.authorization_endpoint(),
        form(&[
            ("response_type", "token"),
            ("client_id", READER_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    assert_eq!(
        get(&url).await.location_params()["error"],
        "unsupported_response_type"
    );

    let resource = authorize(
        &server,
        READER_ID,
        REDIRECT,
        &challenge,
        &[("resource", "http://127.0.0.1:1/x")],
    )
    .await;
    assert_eq!(resource.location_params()["error"], "invalid_target");
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_uri() {
    let server = server().await;
    let (_, challenge) = pkce();
    for (client_id, redirect_uri) in [
        ("nobody", REDIRECT),
        (READER_ID, "http://127.0.0.1/elsewhere"),
        (READER_ID, "https://attacker.example/callback"),
        (READER_ID, "http://127.0.0.1/callback#fragment"),
    ] {
        let reply = authorize(&server, client_id, redirect_uri, &challenge, &[]).await;
        assert_eq!(reply.status, 400, "{client_id} {redirect_uri}");
        assert!(reply.header("location").is_none());
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
    // No client_id at all.
    let reply = get(&format!(
        "{}?response_type=code",
        server.authorization_endpoint()
    ))
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.header("location").is_none());
}

// ---- consent for redirect URIs off loopback ----

/// A client name that is markup, to check it is escaped.
const HOSTILE_NAME: &str = r#"<script>alert("pwned")</script> & Co"#;
const WEB_REDIRECT: &str = "https://evil.example/cb";

/// A server that lets clients register redirect URIs on evil.example, with one such public
/// client registered under [`HOSTILE_NAME`]: `(server, client_id)`.
async fn web_client_server(clock: Option<ManualClock>) -> (DevAuthorizationServer, String) {
    let mut builder = builder().allow_redirect_hosts(["evil.example"]);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let server = builder.start().await.unwrap();
    let registered = post_json(
        server.registration_endpoint(),
        &json!({
            "client_name": HOSTILE_NAME,
            "redirect_uris": [WEB_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(registered.status, 201);
    let id = registered.json()["client_id"].as_str().unwrap().to_owned();
    (server, id)
}

/// The consent id in a consent page.
fn consent_id(page: &Reply) -> String {
    let html = String::from_utf8_lossy(&page.body);
    let marker = r#"name="consent_id" value=""#;
    let start = html.find(marker).expect("a consent form") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// `POST /authorize`: the consent form, sent from the consent page's origin.
async fn answer_consent(server: &DevAuthorizationServer, pairs: &[(&str, &str)]) -> Reply {
    let request = http()
        .post(server.authorization_endpoint())
        .header("origin", server.issuer())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    reply(request.send().await.unwrap()).await
}

fn is_error_page(reply: &Reply) -> bool {
    reply.status == 400
        && reply.header("location").is_none()
        && reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
}

#[tokio::test]
async fn authorize_off_loopback_answers_a_consent_page_not_a_code() {
    let (server, id) = web_client_server(None).await;
    let (_, challenge) = pkce();
    let page = authorize(
        &server,
        &id,
        WEB_REDIRECT,
        &challenge,
        &[("scope", "calendar:read")],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.header("location").is_none());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; Co"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("<strong>evil.example</strong>"), "{html}");
    assert!(html.contains(&id) && html.contains("calendar:read"));
    assert!(!html.contains("dev_ac_"), "no code on the page");
    // The form carries the consent id alone: no redirect URI or scope to trust.
    assert_eq!(html.matches("<input").count(), 1, "{html}");
    assert!(!html.contains(WEB_REDIRECT));
    // The consent id is not a code.
    let not_a_code = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &consent_id(&page)),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &pkce().0),
        ],
    )
    .await;
    assert_eq!(not_a_code.oauth_error(400), "invalid_grant");

    // A pre-registered client redirecting off loopback is asked about too, named by its id.
    let server = builder()
        .client(DevClient {
            id: "web-app".into(),
            secret: "web-secret".into(),
            scopes: vec!["calendar:read".into()],
            redirect_uris: vec!["https://app.example:8443/cb".into()],
        })
        .start()
        .await
        .unwrap();
    let page = authorize(
        &server,
        "web-app",
        "https://app.example:8443/cb",
        &challenge,
        &[],
    )
    .await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<q><bdi>web-app</bdi></q>"), "{html}");
    assert!(html.contains("<strong>app.example:8443</strong>"), "{html}");
}

#[tokio::test]
async fn only_the_consent_allow_issues_the_code() {
    let (server, id) = web_client_server(None).await;
    let (verifier, challenge) = pkce();
    let page = authorize(
        &server,
        &id,
        WEB_REDIRECT,
        &challenge,
        &[("scope", "calendar:read")],
    )
    .await;
    // Hidden fields are not trusted: only the pending request decides where the code goes
    // and what it grants.
    let allowed = answer_consent(
        &server,
        &[
            ("consent_id", &consent_id(&page)),
            ("decision", "allow"),
            ("redirect_uri", "https://elsewhere.example/cb"),
            ("scope", "calendar:admin"),
        ],
    )
    .await;
    assert_eq!(allowed.status, 302);
    let location = allowed.header("location").unwrap();
    assert!(
        location.starts_with("https://evil.example/cb?"),
        "{location}"
    );
    let params = allowed.location_params();
    assert_eq!(params["state"], "xyz-state");
    assert_eq!(params["iss"], server.issuer());
    let tokens = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &params["code"]),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        tokens.status,
        200,
        "{}",
        String::from_utf8_lossy(&tokens.body)
    );
    let access = claims(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], "dev-user");
    assert_eq!(access["scope"], "calendar:read");
    assert_eq!(access["client_id"], id.as_str());
}

#[tokio::test]
async fn consent_deny_redirects_with_access_denied() {
    let (server, id) = web_client_server(None).await;
    let (_, challenge) = pkce();
    let page = authorize(&server, &id, WEB_REDIRECT, &challenge, &[]).await;
    let denied = answer_consent(
        &server,
        &[("consent_id", &consent_id(&page)), ("decision", "deny")],
    )
    .await;
    let params = denied.location_params();
    assert!(
        denied
            .header("location")
            .unwrap()
            .starts_with("https://evil.example/cb?")
    );
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "xyz-state");
    assert_eq!(params["iss"], server.issuer());
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_replayed_forged_or_expired_consent_id_is_refused() {
    let clock = ManualClock::starting_now();
    let (server, id) = web_client_server(Some(clock.clone())).await;
    let (_, challenge) = pkce();

    // Replayed after "Allow".
    let page = authorize(&server, &id, WEB_REDIRECT, &challenge, &[]).await;
    let consent = consent_id(&page);
    let allow = [("consent_id", consent.as_str()), ("decision", "allow")];
    assert_eq!(answer_consent(&server, &allow).await.status, 302);
    assert!(is_error_page(&answer_consent(&server, &allow).await));

    // Replayed after "Deny".
    let page = authorize(&server, &id, WEB_REDIRECT, &challenge, &[]).await;
    let consent = consent_id(&page);
    let deny = [("consent_id", consent.as_str()), ("decision", "deny")];
    assert_eq!(answer_consent(&server, &deny).await.status, 302);
    let allow = [("consent_id", consent.as_str()), ("decision", "allow")];
    assert!(is_error_page(&answer_consent(&server, &allow).await));

    // Forged.
    let forged = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    for pairs in [
        &[("consent_id", forged.as_str()), ("decision", "allow")][..],
        &[("decision", "allow")],
        &[("consent_id", "")],
    ] {
        assert!(
            is_error_page(&answer_consent(&server, pairs).await),
            "{pairs:?}"
        );
    }

    // Sent from another page, even on loopback: refused, and the consent is still pending.
    let page = authorize(&server, &id, WEB_REDIRECT, &challenge, &[]).await;
    let consent = consent_id(&page);
    let allow = [("consent_id", consent.as_str()), ("decision", "allow")];
    for origin in ["http://localhost:6274", "https://evil.example"] {
        let cross = http()
            .post(server.authorization_endpoint())
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&allow))
            .send()
            .await
            .unwrap();
        let cross = reply(cross).await;
        assert!(matches!(cross.status, 400 | 403), "{origin}");
        assert!(cross.header("location").is_none(), "{origin}");
    }
    assert_eq!(answer_consent(&server, &allow).await.status, 302);

    // Expired.
    let page = authorize(&server, &id, WEB_REDIRECT, &challenge, &[]).await;
    let consent = consent_id(&page);
    clock.advance(Duration::from_secs(601));
    let allow = [("consent_id", consent.as_str()), ("decision", "allow")];
    assert!(is_error_page(&answer_consent(&server, &allow).await));
}

#[tokio::test]
async fn loopback_redirects_are_approved_without_a_consent_page() {
    let (server, _) = web_client_server(None).await;
    let (_, challenge) = pkce();
    for redirect in [REDIRECT, "http://127.0.0.1:49152/callback"] {
        let reply = authorize(&server, READER_ID, redirect, &challenge, &[]).await;
        assert!(reply.location_params().contains_key("code"), "{redirect}");
    }
}

// ---- refresh tokens ----

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let server = server().await;
    let (_, first_refresh) = reader_tokens(&server).await;

    let rotated = refresh(&server, &first_refresh, &[]).await;
    assert_eq!(
        rotated.status,
        200,
        "{}",
        String::from_utf8_lossy(&rotated.body)
    );
    let rotated = rotated.json();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    let second_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(introspect(&server, &second_refresh).await["active"], true);
    assert_eq!(introspect(&server, &first_refresh).await["active"], false);

    // Replaying the rotated token fails and revokes every descendant.
    let replay = refresh(&server, &first_refresh, &[]).await;
    assert_eq!(replay.oauth_error(400), "invalid_grant");
    assert_eq!(introspect(&server, &second_refresh).await["active"], false);
    assert_eq!(introspect(&server, &second_access).await["active"], false);
    let after = refresh(&server, &second_refresh, &[]).await;
    assert_eq!(after.oauth_error(400), "invalid_grant");
}

#[tokio::test]
async fn refresh_may_down_scope_but_not_up_scope() {
    let server = server().await;
    let dev = server.dev_client();
    let (verifier, challenge) = pkce();
    let redirect = authorize(
        &server,
        &dev.id,
        REDIRECT,
        &challenge,
        &[("scope", "calendar:read calendar:write")],
    )
    .await;
    let code = redirect.location_params()["code"].clone();
    let tokens = exchange_code(
        &server,
        Auth::Basic(&dev.id, &dev.secret),
        &code,
        &verifier,
        &[],
    )
    .await;
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_owned();

    let refresh_as_dev = |token: String, scope: &'static str| {
        let (id, secret) = (dev.id.clone(), dev.secret.clone());
        let endpoint = server.token_endpoint().to_owned();
        async move {
            post_form(
                &endpoint,
                Auth::Basic(&id, &secret),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let up = refresh_as_dev(refresh_token.clone(), "calendar:read calendar:admin").await;
    assert_eq!(up.oauth_error(400), "invalid_scope");

    // The failed attempt did not consume the token.
    let down = refresh_as_dev(refresh_token, "calendar:read").await;
    assert_eq!(down.status, 200, "{}", String::from_utf8_lossy(&down.body));
    let down = down.json();
    assert_eq!(down["scope"], "calendar:read");
    assert_eq!(
        claims(down["access_token"].as_str().unwrap())["scope"],
        "calendar:read"
    );
    // The new refresh token keeps the original grant.
    let next = down["refresh_token"].as_str().unwrap().to_owned();
    let back = refresh_as_dev(next, "calendar:read calendar:write").await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let server = server().await;
    let (_, refresh_token) = reader_tokens(&server).await;
    let dev = server.dev_client();
    let stolen = post_form(
        server.token_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(stolen.oauth_error(400), "invalid_grant");
    assert_eq!(refresh(&server, &refresh_token, &[]).await.status, 200);
}

// ---- dynamic client registration ----

#[tokio::test]
async fn registered_confidential_client_uses_client_credentials() {
    let server = server().await;
    let reply = post_json(
        server.registration_endpoint(),
        &json!({
            "client_name": "calendar agent",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "calendar:read calendar:write",
        }),
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let registered = reply.json();
    let id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    assert!(registered["client_id_issued_at"].is_u64());
    assert_eq!(registered["client_name"], "calendar agent");
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_post"
    );
    assert_eq!(registered["grant_types"], json!(["client_credentials"]));

    let token = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "calendar:write"),
        ],
    )
    .await;
    assert_eq!(
        token.status,
        200,
        "{}",
        String::from_utf8_lossy(&token.body)
    );
    let access = token.json()["access_token"].as_str().unwrap().to_owned();
    let verified = validator(&server, RESOURCE)
        .await
        .validate(&access)
        .await
        .unwrap();
    assert_eq!(verified.client_id(), Some(id));
    assert!(verified.scopes().contains("calendar:write"));

    let too_much = client_credentials(&server, id, secret, &[("scope", "calendar:admin")]).await;
    assert_eq!(too_much.oauth_error(400), "invalid_scope");
    // It did not register for the authorization-code grant.
    let (_, challenge) = pkce();
    let page = authorize(&server, id, REDIRECT, &challenge, &[]).await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn registered_public_client_uses_pkce() {
    let server = server().await;
    let reply = post_json(
        server.registration_endpoint(),
        &json!({
            "client_name": "desktop MCP client",
            "redirect_uris": ["http://127.0.0.1/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let registered = reply.json();
    assert!(registered.get("client_secret").is_none());
    assert_eq!(registered["scope"], SCOPES.join(" "));
    let id = registered["client_id"].as_str().unwrap();

    let (verifier, challenge) = pkce();
    let redirect_uri = "http://127.0.0.1:60000/oauth/callback";
    let redirect = authorize(
        &server,
        id,
        redirect_uri,
        &challenge,
        &[("scope", "calendar:read")],
    )
    .await;
    let code = redirect.location_params()["code"].clone();
    let tokens = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        tokens.status,
        200,
        "{}",
        String::from_utf8_lossy(&tokens.body)
    );
    let tokens = tokens.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["client_id"], id);
    assert_eq!(claims(access)["sub"], "dev-user");

    // Public clients refresh with their client_id alone...
    let refreshed = post_form(
        server.token_endpoint(),
        Auth::None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        refreshed.status,
        200,
        "{}",
        String::from_utf8_lossy(&refreshed.body)
    );
    // ...or with HTTP Basic and an empty password, as some clients do...
    let rotated = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let basic = post_form(
        server.token_endpoint(),
        Auth::Basic(id, ""),
        &[("grant_type", "refresh_token"), ("refresh_token", &rotated)],
    )
    .await;
    assert_eq!(
        basic.status,
        200,
        "{}",
        String::from_utf8_lossy(&basic.body)
    );
    // ...but may not use client_credentials, nor introspect.
    let cc = post_form(
        server.token_endpoint(),
        Auth::None,
        &[("grant_type", "client_credentials"), ("client_id", id)],
    )
    .await;
    assert_eq!(cc.oauth_error(400), "unauthorized_client");
    let introspection = post_form(
        server.introspection_endpoint(),
        Auth::None,
        &[("client_id", id), ("token", access)],
    )
    .await;
    assert_eq!(introspection.oauth_error(401), "invalid_client");
}

#[tokio::test]
async fn registration_refuses_bad_metadata() {
    let server = server().await;
    let cases = [
        (
            json!({ "redirect_uris": ["not a url"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["http://127.0.0.1/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "grant_types": ["authorization_code"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["client_credentials"], "scope": "email" }),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (metadata, error) in cases {
        let reply = post_json(server.registration_endpoint(), &metadata).await;
        assert_eq!(reply.oauth_error(400), error, "{metadata}");
    }
}

/// Registers a public authorization-code client with these redirect URIs.
async fn register_redirects(server: &DevAuthorizationServer, redirect_uris: &[&str]) -> Reply {
    post_json(
        server.registration_endpoint(),
        &json!({
            "client_name": "web page",
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "none",
        }),
    )
    .await
}

#[tokio::test]
async fn registration_accepts_only_loopback_redirect_uris_by_default() {
    let server = server().await;
    for uri in [
        "http://127.0.0.1/cb",
        "http://127.0.0.1:49152/cb",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:3000/cb",
    ] {
        let reply = register_redirects(&server, &[uri]).await;
        assert_eq!(
            reply.status,
            201,
            "{uri}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    for uris in [
        &["https://evil.example/cb"][..],
        &["http://evil.example/cb"],
        &["http://localhost.evil.example/cb"],
        &["http://127.0.0.1.nip.io/cb"],
        &["https://127.0.0.1/cb"],
        &["com.example.app:/callback"],
        &["http://127.0.0.1/cb", "https://evil.example/cb"],
    ] {
        let reply = register_redirects(&server, uris).await;
        assert_eq!(reply.oauth_error(400), "invalid_redirect_uri", "{uris:?}");
    }
}

#[tokio::test]
async fn registration_accepts_the_configured_redirect_hosts() {
    let server = builder()
        .allow_redirect_hosts(["EVIL.example", "[::2]"])
        .start()
        .await
        .unwrap();
    for uri in [
        "https://evil.example/cb",
        "http://evil.example:8080/other/cb",
        "https://[::2]/cb",
        "http://127.0.0.1/cb",
    ] {
        let reply = register_redirects(&server, &[uri]).await;
        assert_eq!(
            reply.status,
            201,
            "{uri}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["redirect_uris"], json!([uri]));
    }
    for uri in ["https://other.example/cb", "https://sub.evil.example/cb"] {
        let reply = register_redirects(&server, &[uri]).await;
        assert_eq!(reply.oauth_error(400), "invalid_redirect_uri", "{uri}");
    }
}

// ---- introspection and revocation ----

#[tokio::test]
async fn introspection_reports_active_tokens() {
    let server = server().await;
    let (access, refresh_token) = reader_tokens(&server).await;

    let active = introspect(&server, &access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["scope"], "calendar:read");
    assert_eq!(active["client_id"], READER_ID);
    assert_eq!(active["sub"], "dev-user");
    assert_eq!(active["aud"], RESOURCE);
    assert_eq!(active["iss"], server.issuer());
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["jti"], claims(&access)["jti"]);
    assert!(active["exp"].is_u64() && active["iat"].is_u64());

    let refresh_info = introspect(&server, &refresh_token).await;
    assert_eq!(refresh_info["active"], true);
    assert_eq!(refresh_info["client_id"], READER_ID);
    assert_eq!(refresh_info["token_type"], "refresh_token");
}

#[tokio::test]
async fn introspection_reports_expired_revoked_and_garbage_tokens_inactive() {
    let clock = ManualClock::starting_now();
    let server = builder()
        .clock(clock.clone())
        .access_token_ttl(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let dev = server.dev_client().clone();

    for garbage in ["garbage", "a.b.c", "dev_rt_unknown"] {
        assert_eq!(
            introspect(&server, garbage).await,
            json!({ "active": false })
        );
    }
    // A token signed by another key, with the right kid.
    let forged = {
        let other = DevAuthorizationServer::builder().start().await.unwrap();
        let token = other.mint_access_token("dev-user", &dev.id, &["calendar:read"]);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut header = header(&token);
        header["kid"] = server.jwks()["keys"][0]["kid"].clone();
        parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
        parts.join(".")
    };
    assert_eq!(introspect(&server, &forged).await["active"], false);

    let token = server.mint_access_token("dev-user", &dev.id, &["calendar:read"]);
    assert_eq!(introspect(&server, &token).await["active"], true);
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        introspect(&server, &token).await,
        json!({ "active": false })
    );

    let revoked = server.mint_access_token("dev-user", &dev.id, &["calendar:read"]);
    let reply = post_form(
        server.revocation_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[("token", &revoked)],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        introspect(&server, &revoked).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let server = server().await;
    let token = server.mint_access_token("dev-user", "dev-client", &[]);
    let anonymous = post_form(
        server.introspection_endpoint(),
        Auth::None,
        &[("token", &token)],
    )
    .await;
    assert_eq!(anonymous.oauth_error(401), "invalid_client");
    let wrong = post_form(
        server.introspection_endpoint(),
        Auth::Basic(READER_ID, "wrong"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(wrong.oauth_error(401), "invalid_client");
    let no_token = post_form(
        server.introspection_endpoint(),
        Auth::Basic(READER_ID, READER_SECRET),
        &[],
    )
    .await;
    assert_eq!(no_token.oauth_error(400), "invalid_request");
}

#[tokio::test]
async fn revocation_revokes_refresh_families_and_always_answers_200() {
    let server = server().await;
    let (access, refresh_token) = reader_tokens(&server).await;
    let revoke = |token: String| {
        let endpoint = server.revocation_endpoint().to_owned();
        async move {
            post_form(
                &endpoint,
                Auth::Basic(READER_ID, READER_SECRET),
                &[("token", &token)],
            )
            .await
        }
    };
    // Another client's revocation does nothing (but still answers 200).
    let dev = server.dev_client();
    let foreign = post_form(
        server.revocation_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[("token", &refresh_token)],
    )
    .await;
    assert_eq!(foreign.status, 200);
    assert_eq!(introspect(&server, &refresh_token).await["active"], true);

    assert_eq!(revoke(refresh_token.clone()).await.status, 200);
    assert_eq!(introspect(&server, &refresh_token).await["active"], false);
    // Revoking the refresh token revoked the access token of the same grant.
    assert_eq!(introspect(&server, &access).await["active"], false);
    assert_eq!(
        refresh(&server, &refresh_token, &[]).await.oauth_error(400),
        "invalid_grant"
    );

    // Unknown, garbage and already revoked tokens: 200 all the same.
    assert_eq!(revoke("garbage".to_owned()).await.status, 200);
    assert_eq!(revoke(refresh_token).await.status, 200);
    // But the client must authenticate.
    let anonymous = post_form(
        server.revocation_endpoint(),
        Auth::None,
        &[("token", &access)],
    )
    .await;
    assert_eq!(anonymous.oauth_error(401), "invalid_client");
}

// ---- lifecycle and limits ----

#[tokio::test]
async fn a_port_in_use_is_an_error_not_a_panic() {
    let server = server().await;
    let port = server.addr().port();
    let error = DevAuthorizationServer::builder()
        .port(port)
        .start()
        .await
        .expect_err("the port is taken");
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn a_fixed_port_is_used() {
    // Find a free port, release it, and start on it; another port if something else (a test
    // running in parallel) took it in between.
    let mut attempts = 0;
    let (port, server) = loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match DevAuthorizationServer::builder().port(port).start().await {
            Ok(server) => break (port, server),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse && attempts < 10 => {
                attempts += 1;
            }
            Err(error) => panic!("cannot start on port {port}: {error}"),
        }
    };
    assert_eq!(server.issuer(), format!("http://127.0.0.1:{port}"));
    server.shutdown().await;
    assert!(http().get(server.jwks_uri()).send().await.is_err());
}

#[tokio::test]
async fn invalid_configuration_is_an_error() {
    let bad = [
        DevAuthorizationServer::builder().resource("not a url"),
        DevAuthorizationServer::builder().scopes(["has space"]),
        DevAuthorizationServer::builder().signing_algorithm(SigningAlgorithm::HS256),
        DevAuthorizationServer::builder().access_token_ttl(Duration::ZERO),
        DevAuthorizationServer::builder().allow_redirect_hosts(["evil.example/cb"]),
        DevAuthorizationServer::builder().allow_redirect_hosts(["evil.example:443"]),
        DevAuthorizationServer::builder().allow_redirect_hosts([""]),
        DevAuthorizationServer::builder().client(DevClient {
            id: "c".into(),
            secret: "s".into(),
            scopes: vec!["not-granted".into()],
            redirect_uris: vec![],
        }),
    ];
    for builder in bad {
        let error = builder.start().await.expect_err("invalid");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    }
}

#[tokio::test]
async fn tables_are_bounded() {
    let server = builder().max_entries(2).start().await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let reply = post_json(
            server.registration_endpoint(),
            &json!({ "grant_types": ["client_credentials"] }),
        )
        .await
        .json();
        clients.push((
            reply["client_id"].as_str().unwrap().to_owned(),
            reply["client_secret"].as_str().unwrap().to_owned(),
        ));
    }
    // The oldest registration was evicted; pre-registered clients never are.
    let (id, secret) = &clients[0];
    assert_eq!(
        client_credentials(&server, id, secret, &[])
            .await
            .oauth_error(401),
        "invalid_client"
    );
    for (id, secret) in &clients[1..] {
        assert_eq!(
            client_credentials(&server, id, secret, &[]).await.status,
            200
        );
    }
    let dev = server.dev_client();
    assert_eq!(
        client_credentials(&server, &dev.id, &dev.secret, &[])
            .await
            .status,
        200
    );

    // Codes too: the first of three is gone.
    let (verifier, challenge) = pkce();
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(reader_code(&server, &challenge).await);
    }
    let first = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &codes[0],
        &verifier,
        &[],
    )
    .await;
    assert_eq!(first.oauth_error(400), "invalid_grant");
    let last = exchange_code(
        &server,
        Auth::Basic(READER_ID, READER_SECRET),
        &codes[2],
        &verifier,
        &[],
    )
    .await;
    assert_eq!(last.status, 200);
}

// ---- browsers (CORS) ----

/// `method url` with `Origin: origin` (and, for a preflight, the method it announces).
async fn from_origin(method: reqwest::Method, url: &str, origin: &str) -> Reply {
    let mut request = http().request(method.clone(), url).header("origin", origin);
    if method == reqwest::Method::OPTIONS {
        request = request
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
    } else if method == reqwest::Method::POST {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=dev-client");
    }
    reply(request.send().await.unwrap()).await
}

fn varies_by_origin(reply: &Reply) -> bool {
    reply
        .headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

#[tokio::test]
async fn cors_answers_loopback_origins_by_echoing_them() {
    let server = server().await;
    for origin in [
        "http://localhost:6274",
        "http://127.0.0.1:5173",
        "http://[::1]:3000",
        "https://localhost:8443",
    ] {
        let preflight =
            from_origin(reqwest::Method::OPTIONS, server.token_endpoint(), origin).await;
        assert_eq!(preflight.status, 204, "{origin}");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some(origin)
        );
        assert!(varies_by_origin(&preflight), "{origin}");
        assert!(
            preflight
                .header("access-control-allow-headers")
                .unwrap()
                .contains("Authorization")
        );
        let token = from_origin(reqwest::Method::POST, server.token_endpoint(), origin).await;
        assert_eq!(token.status, 401, "{origin}: no client secret");
        assert_eq!(token.header("access-control-allow-origin"), Some(origin));
        assert!(varies_by_origin(&token), "{origin}");
    }
}

#[tokio::test]
async fn cors_is_refused_to_non_loopback_origins_on_every_endpoint() {
    let server = server().await;
    let endpoints = [
        server.authorization_endpoint(),
        server.token_endpoint(),
        server.registration_endpoint(),
        server.introspection_endpoint(),
        server.revocation_endpoint(),
    ];
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io:6274",
        "null",
    ] {
        for endpoint in endpoints {
            for method in [
                reqwest::Method::OPTIONS,
                reqwest::Method::GET,
                reqwest::Method::POST,
            ] {
                let reply = from_origin(method.clone(), endpoint, origin).await;
                assert_eq!(reply.status, 403, "{method} {endpoint} from {origin}");
                assert_eq!(
                    reply.header("access-control-allow-origin"),
                    None,
                    "{method} {endpoint} from {origin}"
                );
                assert!(varies_by_origin(&reply));
            }
        }
    }
    // Nothing was registered from there: the refusal comes before the endpoint.
    let registration = http()
        .post(server.registration_endpoint())
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(json!({ "redirect_uris": [REDIRECT] }).to_string())
        .send()
        .await
        .unwrap();
    let registration = reply(registration).await;
    assert_eq!(registration.status, 403);
    assert!(!String::from_utf8_lossy(&registration.body).contains("client_id"));
    // Without an Origin (a native client) the same endpoints answer as before.
    let native = post_json(
        server.registration_endpoint(),
        &json!({ "redirect_uris": [REDIRECT] }),
    )
    .await;
    assert_eq!(native.status, 201);
    assert_eq!(native.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn metadata_and_jwks_are_readable_from_any_origin() {
    let server = server().await;
    for url in [
        server.metadata_url(),
        format!("{}/.well-known/openid-configuration", server.issuer()),
        server.jwks_uri().to_owned(),
    ] {
        for origin in ["https://evil.example", "http://localhost:6274"] {
            let document = from_origin(reqwest::Method::GET, &url, origin).await;
            assert_eq!(document.status, 200, "{url}");
            assert_eq!(document.header("access-control-allow-origin"), Some("*"));
            let preflight = from_origin(reqwest::Method::OPTIONS, &url, origin).await;
            assert_eq!(preflight.status, 204, "{url}");
            assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
        }
    }
}
