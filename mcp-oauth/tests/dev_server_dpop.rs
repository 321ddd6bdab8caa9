//! The dev authorization server issues DPoP-bound tokens (RFC 9449 §5, §10): proofs at the
//! token endpoint for every grant, `cnf.jkt` in the access token, `token_type: DPoP`, codes
//! bound by `dpop_jkt`, public clients' refresh tokens bound to their key, introspection, and
//! nothing changed for requests without a `DPoP` header.
#![cfg(feature = "dev")]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::dev::{DevAuthorizationServer, DevClient};
use mcp_oauth::dpop::{
    DEFAULT_PROOF_ALGORITHMS, DpopConfig, DpopMode, DpopRequest, DpopVerifier, proof_algorithms,
};
use mcp_oauth::testing::{DpopKey, SigningAlgorithm};
use mcp_oauth::{IssuerPolicy, TokenError, Validator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "calendar:admin"];
/// A pre-registered (confidential) client allowed only `calendar:read`.
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

async fn server() -> DevAuthorizationServer {
    DevAuthorizationServer::builder()
        .resource(RESOURCE)
        .scopes(SCOPES)
        .client(DevClient {
            id: READER_ID.into(),
            secret: READER_SECRET.into(),
            scopes: vec!["calendar:read".into()],
            redirect_uris: vec![REDIRECT.into()],
        })
        .start()
        .await
        .expect("the dev server starts")
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    /// The body of a `200`.
    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text());
        self.json()
    }

    /// The `error` of an RFC 6749 error response, checking its status.
    fn oauth_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        assert!(body["error_description"].is_string(), "{body}");
        assert_eq!(
            self.headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        body["error"].as_str().unwrap().to_owned()
    }

    /// The query parameters of the `Location` of a redirect.
    fn location_params(&self) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "{}", self.text());
        let location = self.headers["location"].to_str().unwrap();
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// How a token request authenticates the client.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// A public client: `client_id` in the body.
    Public(&'a str),
    Basic(&'a str, &'a str),
}

/// `POST /token` with these `DPoP` headers (none, one, or several).
async fn token(
    server: &DevAuthorizationServer,
    auth: Auth<'_>,
    pairs: &[(&str, &str)],
    proofs: &[&str],
) -> Reply {
    let mut pairs = pairs.to_vec();
    let mut request = http()
        .post(server.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded");
    match auth {
        Auth::Public(id) => pairs.push(("client_id", id)),
        Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    reply(request.body(form(&pairs)).send().await.unwrap()).await
}

/// A correct proof of `key` for the server's token endpoint.
fn token_proof(server: &DevAuthorizationServer, key: &DpopKey) -> String {
    key.proof("POST", server.token_endpoint(), None)
}

async fn client_credentials(
    server: &DevAuthorizationServer,
    proofs: &[&str],
    extra: &[(&str, &str)],
) -> Reply {
    let client = server.dev_client();
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    token(
        server,
        Auth::Basic(&client.id, &client.secret),
        &pairs,
        proofs,
    )
    .await
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn access_token(body: &Value) -> &str {
    body["access_token"].as_str().expect("an access token")
}

/// Asserts a token response is DPoP-bound to `key`.
fn assert_bound(body: &Value, key: &DpopKey) {
    assert_eq!(body["token_type"], "DPoP", "{body}");
    assert_eq!(
        claims(access_token(body))["cnf"],
        json!({ "jkt": key.jkt() }),
        "{body}"
    );
}

/// Asserts a token response is a plain bearer token, as before DPoP.
fn assert_bearer(body: &Value) {
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(claims(access_token(body)).get("cnf").is_none(), "{body}");
}

/// Removes a member of a JSON object.
fn remove(object: &mut Value, name: &str) {
    object.as_object_mut().expect("an object").remove(name);
}

/// A PKCE pair: `(verifier, S256 challenge)`.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `GET /authorize` for `client_id` (loopback: approved at once); returns the redirect.
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
        ("state", "s"),
    ];
    pairs.extend_from_slice(extra);
    let url = format!("{}?{}", server.authorization_endpoint(), form(&pairs));
    reply(http().get(url).send().await.unwrap()).await
}

/// A public client registered dynamically (loopback redirect, code + refresh).
async fn register_public_client(server: &DevAuthorizationServer) -> String {
    let response = http()
        .post(server.registration_endpoint())
        .header("content-type", "application/json")
        .body(
            json!({
                "client_name": "DPoP desktop client",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let registered = reply(response).await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    registered.json()["client_id"].as_str().unwrap().to_owned()
}

/// A code for `client_id` (with `extra` authorization parameters) and its PKCE verifier.
async fn code_for(
    server: &DevAuthorizationServer,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let redirect = authorize(server, client_id, REDIRECT, &challenge, extra).await;
    let params = redirect.location_params();
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"))
        .clone();
    (code, verifier)
}

async fn exchange_code(
    server: &DevAuthorizationServer,
    auth: Auth<'_>,
    code: &str,
    verifier: &str,
    proofs: &[&str],
) -> Reply {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token(server, auth, &pairs, proofs).await
}

async fn refresh(
    server: &DevAuthorizationServer,
    auth: Auth<'_>,
    refresh_token: &str,
    proofs: &[&str],
) -> Reply {
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token(server, auth, &pairs, proofs).await
}

async fn introspect(server: &DevAuthorizationServer, token: &str) -> Value {
    let client = server.dev_client();
    let response = http()
        .post(server.introspection_endpoint())
        .basic_auth(&client.id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token)]))
        .send()
        .await
        .unwrap();
    reply(response).await.ok()
}

/// What the resource server says of `token` presented with a proof of `key`.
async fn resource_server_accepts(
    server: &DevAuthorizationServer,
    token: &str,
    key: &DpopKey,
) -> Result<String, String> {
    let policy = IssuerPolicy::builder(server.issuer())
        .audience(RESOURCE)
        .build()
        .unwrap();
    let validator = Validator::new(policy).unwrap();
    let verifier = DpopVerifier::new(
        DpopMode::Required,
        proof_algorithms(DEFAULT_PROOF_ALGORITHMS.iter().copied()).unwrap(),
        RESOURCE,
        DpopConfig::default(),
    )
    .unwrap();
    let proof = key.proof("POST", RESOURCE, Some(token));
    let request = DpopRequest {
        method: "POST",
        path: "/mcp",
        access_token: token,
        proofs: &[proof.as_str()],
    };
    verifier
        .verify(&validator, request)
        .await
        .map(|verified| verified.jkt())
        .map_err(|error| error.to_string())
}

// ---- metadata ----

#[tokio::test]
async fn metadata_advertises_the_dpop_proof_algorithms() {
    let server = server().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = reply(
            http()
                .get(format!("{}{path}", server.issuer()))
                .send()
                .await
                .unwrap(),
        )
        .await
        .ok();
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            json!(DEFAULT_PROOF_ALGORITHMS),
            "{path}"
        );
    }
    assert_eq!(
        server.metadata()["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );
}

// ---- client_credentials ----

#[tokio::test]
async fn client_credentials_with_a_proof_gets_a_bound_token_the_resource_server_accepts() {
    let server = server().await;
    let key = DpopKey::es256();
    let body = client_credentials(&server, &[&token_proof(&server, &key)], &[])
        .await
        .ok();
    assert_bound(&body, &key);
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = access_token(&body);
    assert_eq!(claims(token)["aud"], RESOURCE);
    assert_eq!(claims(token)["sub"], server.dev_client().id);

    // The resource server takes it with a proof by the same key, and only so.
    assert_eq!(
        resource_server_accepts(&server, token, &key).await,
        Ok(key.jkt())
    );
    assert!(
        resource_server_accepts(&server, token, &DpopKey::es256())
            .await
            .is_err()
    );
    let validator = Validator::new(
        IssuerPolicy::builder(server.issuer())
            .audience(RESOURCE)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(
        matches!(
            validator.validate(token).await,
            Err(TokenError::SenderConstrained)
        ),
        "a bound token is no bearer token"
    );
}

#[tokio::test]
async fn every_proof_algorithm_the_metadata_names_binds() {
    let server = server().await;
    for alg in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::ES384,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::PS256,
        SigningAlgorithm::RS256,
    ] {
        let key = DpopKey::generate(alg);
        let body = client_credentials(&server, &[&token_proof(&server, &key)], &[])
            .await
            .ok();
        assert_bound(&body, &key);
    }
}

#[tokio::test]
async fn requests_without_a_dpop_header_get_bearer_tokens_as_before() {
    let server = server().await;
    let body = client_credentials(&server, &[], &[]).await.ok();
    assert_bearer(&body);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "expires_in", "scope", "token_type"]
    );

    let (code, verifier) = code_for(&server, READER_ID, &[]).await;
    let auth = Auth::Basic(READER_ID, READER_SECRET);
    let tokens = exchange_code(&server, auth, &code, &verifier, &[])
        .await
        .ok();
    assert_bearer(&tokens);
    let refreshed = refresh(
        &server,
        auth,
        tokens["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await
    .ok();
    assert_bearer(&refreshed);
    let introspection = introspect(&server, access_token(&refreshed)).await;
    assert_eq!(introspection["token_type"], "Bearer");
    assert!(introspection.get("cnf").is_none(), "{introspection}");
}

#[tokio::test]
async fn a_refused_proof_is_invalid_dpop_proof() {
    let server = server().await;
    let key = DpopKey::es256();
    let endpoint = server.token_endpoint().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with_claims = |edit: &dyn Fn(&mut Value)| {
        let mut claims = key.claims("POST", &endpoint, None);
        edit(&mut claims);
        key.sign(&key.header(), &claims)
    };
    let with_header = |edit: &dyn Fn(&mut Value)| {
        let mut header = key.header();
        edit(&mut header);
        key.sign(&header, &key.claims("POST", &endpoint, None))
    };
    let other_port = {
        let mut url = url::Url::parse(&endpoint).unwrap();
        url.set_port(Some(1)).unwrap();
        url.to_string()
    };
    let hs256 = DpopKey::generate(SigningAlgorithm::HS256);
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".to_owned()),
        ("empty", String::new()),
        ("another method", key.proof("GET", &endpoint, None)),
        (
            "another endpoint",
            key.proof("POST", &format!("{}/register", server.issuer()), None),
        ),
        ("another port", key.proof("POST", &other_port, None)),
        ("the resource", key.proof("POST", RESOURCE, None)),
        (
            "too old",
            with_claims(&|c| c["iat"] = json!(now.saturating_sub(310))),
        ),
        (
            "from the future",
            with_claims(&|c| c["iat"] = json!(now + 310)),
        ),
        ("no jti", with_claims(&|c| remove(c, "jti"))),
        ("no htu", with_claims(&|c| remove(c, "htu"))),
        ("wrong typ", with_header(&|h| h["typ"] = json!("JWT"))),
        ("no jwk", with_header(&|h| remove(h, "jwk"))),
        (
            "another key's jwk",
            with_header(&|h| h["jwk"] = DpopKey::es256().public_jwk()),
        ),
        ("a symmetric key", hs256.proof("POST", &endpoint, None)),
    ];
    for (case, proof) in cases {
        let reply = client_credentials(&server, &[&proof], &[]).await;
        assert_eq!(reply.oauth_error(400), "invalid_dpop_proof", "{case}");
    }
    // Two proofs, even correct ones.
    let (a, b) = (token_proof(&server, &key), token_proof(&server, &key));
    let reply = client_credentials(&server, &[&a, &b], &[]).await;
    assert_eq!(reply.oauth_error(400), "invalid_dpop_proof");

    // A proof is accepted once.
    let proof = token_proof(&server, &key);
    assert_bound(
        &client_credentials(&server, &[&proof], &[]).await.ok(),
        &key,
    );
    let replayed = client_credentials(&server, &[&proof], &[]).await;
    assert_eq!(replayed.oauth_error(400), "invalid_dpop_proof");
    assert!(
        replayed.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // The iat window is ±300 s; `ath` and a `nonce` are not asked for, and are ignored.
    let recent = with_claims(&|c| {
        c["iat"] = json!(now - 200);
        c["ath"] = json!("x");
        c["nonce"] = json!("n");
    });
    assert_bound(
        &client_credentials(&server, &[&recent], &[]).await.ok(),
        &key,
    );
}

#[tokio::test]
async fn client_errors_are_unchanged_with_a_proof() {
    let server = server().await;
    let key = DpopKey::es256();
    let proof = token_proof(&server, &key);
    let wrong = token(
        &server,
        Auth::Basic(READER_ID, "wrong"),
        &[("grant_type", "client_credentials")],
        &[&proof],
    )
    .await;
    assert_eq!(wrong.oauth_error(401), "invalid_client");
    let scope = client_credentials(
        &server,
        &[&token_proof(&server, &key)],
        &[("scope", "calendar:nope")],
    )
    .await;
    assert_eq!(scope.oauth_error(400), "invalid_scope");
}

// ---- authorization code + PKCE ----

#[tokio::test]
async fn a_public_clients_code_and_refresh_tokens_are_bound_to_its_key() {
    let server = server().await;
    let client_id = register_public_client(&server).await;
    let auth = Auth::Public(&client_id);
    let key = DpopKey::es256();
    let (code, verifier) = code_for(&server, &client_id, &[("scope", "calendar:read")]).await;
    let tokens = exchange_code(
        &server,
        auth,
        &code,
        &verifier,
        &[&token_proof(&server, &key)],
    )
    .await
    .ok();
    assert_bound(&tokens, &key);
    assert_eq!(
        resource_server_accepts(&server, access_token(&tokens), &key).await,
        Ok(key.jkt())
    );
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // The refresh token is bound: introspection says so.
    let introspection = introspect(&server, refresh_token).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["cnf"], json!({ "jkt": key.jkt() }));

    // Without a proof, or with another key's, it is refused and stays usable.
    let unproven = refresh(&server, auth, refresh_token, &[]).await;
    assert_eq!(unproven.oauth_error(400), "invalid_dpop_proof");
    let other = DpopKey::es256();
    let stolen = refresh(
        &server,
        auth,
        refresh_token,
        &[&token_proof(&server, &other)],
    )
    .await;
    assert_eq!(stolen.oauth_error(400), "invalid_dpop_proof");

    // With its key: a new access token bound to it, and a rotated refresh token bound too.
    let refreshed = refresh(&server, auth, refresh_token, &[&token_proof(&server, &key)])
        .await
        .ok();
    assert_bound(&refreshed, &key);
    let rotated = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh_token);
    let unproven = refresh(&server, auth, rotated, &[]).await;
    assert_eq!(unproven.oauth_error(400), "invalid_dpop_proof");
    let again = refresh(&server, auth, rotated, &[&token_proof(&server, &key)])
        .await
        .ok();
    assert_bound(&again, &key);
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound_but_its_access_tokens_are() {
    let server = server().await;
    let auth = Auth::Basic(READER_ID, READER_SECRET);
    let key = DpopKey::es256();
    let (code, verifier) = code_for(&server, READER_ID, &[]).await;
    let tokens = exchange_code(
        &server,
        auth,
        &code,
        &verifier,
        &[&token_proof(&server, &key)],
    )
    .await
    .ok();
    assert_bound(&tokens, &key);
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert!(
        introspect(&server, refresh_token)
            .await
            .get("cnf")
            .is_none()
    );

    // Its authentication protects the refresh token: refreshed without a proof, a bearer
    // token; with one, a token bound to that proof's key.
    let bearer = refresh(&server, auth, refresh_token, &[]).await.ok();
    assert_bearer(&bearer);
    let other = DpopKey::es256();
    let rebound = refresh(
        &server,
        auth,
        bearer["refresh_token"].as_str().unwrap(),
        &[&token_proof(&server, &other)],
    )
    .await
    .ok();
    assert_bound(&rebound, &other);
}

#[tokio::test]
async fn a_public_clients_refresh_token_issued_without_a_proof_is_bound_when_refreshed_with_one() {
    let server = server().await;
    let client_id = register_public_client(&server).await;
    let auth = Auth::Public(&client_id);
    let (code, verifier) = code_for(&server, &client_id, &[]).await;
    let tokens = exchange_code(&server, auth, &code, &verifier, &[])
        .await
        .ok();
    assert_bearer(&tokens);
    let key = DpopKey::es256();
    let refreshed = refresh(
        &server,
        auth,
        tokens["refresh_token"].as_str().unwrap(),
        &[&token_proof(&server, &key)],
    )
    .await
    .ok();
    assert_bound(&refreshed, &key);
    let rotated = refreshed["refresh_token"].as_str().unwrap();
    let unproven = refresh(&server, auth, rotated, &[]).await;
    assert_eq!(unproven.oauth_error(400), "invalid_dpop_proof");
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_that_key() {
    let server = server().await;
    let client_id = register_public_client(&server).await;
    let auth = Auth::Public(&client_id);
    let key = DpopKey::es256();
    let jkt = key.jkt();
    let (code, verifier) = code_for(&server, &client_id, &[("dpop_jkt", &jkt)]).await;

    // Without a proof, or with another key's: refused, and the code is not spent.
    let unproven = exchange_code(&server, auth, &code, &verifier, &[]).await;
    assert_eq!(unproven.oauth_error(400), "invalid_dpop_proof");
    let other = DpopKey::es256();
    let stolen = exchange_code(
        &server,
        auth,
        &code,
        &verifier,
        &[&token_proof(&server, &other)],
    )
    .await;
    assert_eq!(stolen.oauth_error(400), "invalid_dpop_proof");

    let tokens = exchange_code(
        &server,
        auth,
        &code,
        &verifier,
        &[&token_proof(&server, &key)],
    )
    .await
    .ok();
    assert_bound(&tokens, &key);

    // A confidential client's code is bound the same way.
    let (code, verifier) = code_for(&server, READER_ID, &[("dpop_jkt", &jkt)]).await;
    let reader = Auth::Basic(READER_ID, READER_SECRET);
    let unproven = exchange_code(&server, reader, &code, &verifier, &[]).await;
    assert_eq!(unproven.oauth_error(400), "invalid_dpop_proof");
    let tokens = exchange_code(
        &server,
        reader,
        &code,
        &verifier,
        &[&token_proof(&server, &key)],
    )
    .await
    .ok();
    assert_bound(&tokens, &key);
}

#[tokio::test]
async fn a_malformed_dpop_jkt_is_an_invalid_request() {
    let server = server().await;
    let (_, challenge) = pkce();
    for jkt in [
        "short",
        "*".repeat(43).as_str(),
        &format!("{}=", DpopKey::es256().jkt()),
    ] {
        let redirect = authorize(
            &server,
            READER_ID,
            REDIRECT,
            &challenge,
            &[("dpop_jkt", jkt)],
        )
        .await;
        let params = redirect.location_params();
        assert_eq!(params["error"], "invalid_request", "{jkt}: {params:?}");
        assert!(!params.contains_key("code"));
    }
}

// ---- introspection ----

#[tokio::test]
async fn introspection_of_a_bound_token_reports_cnf_and_the_dpop_type() {
    let server = server().await;
    let key = DpopKey::es256();
    let body = client_credentials(&server, &[&token_proof(&server, &key)], &[])
        .await
        .ok();
    let introspection = introspect(&server, access_token(&body)).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["token_type"], "DPoP");
    assert_eq!(introspection["cnf"], json!({ "jkt": key.jkt() }));
}
