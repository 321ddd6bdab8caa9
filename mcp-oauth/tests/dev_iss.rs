//! RFC 9207 (MCP SEP-2468): every redirect of the dev authorization server's authorization
//! endpoint carries `iss`, its issuer identifier, form-encoded: the code, every error, and the
//! consent page's answers.
#![cfg(feature = "dev")]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::dev::{DevAuthorizationServer, DevClient};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT: &str = "web-app";
const LOOPBACK: &str = "http://127.0.0.1/callback";
const WEB: &str = "https://app.example.test/cb";

async fn server() -> DevAuthorizationServer {
    DevAuthorizationServer::builder()
        .scopes(["calendar:read", "calendar:write"])
        .client(DevClient {
            id: CLIENT.into(),
            secret: "web-app-secret".into(),
            scopes: vec!["calendar:read".into()],
            redirect_uris: vec![LOOPBACK.into(), WEB.into()],
        })
        .start()
        .await
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn challenge() -> String {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    /// The redirect's query parameters, checking that `iss` is the issuer, form-encoded.
    fn redirect(&self, server: &DevAuthorizationServer) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "{}", self.body);
        let location = self.location.as_deref().expect("a Location");
        let encoded = form(&[("iss", server.issuer())]);
        assert!(
            location.contains(&format!("&{encoded}")) || location.contains(&format!("?{encoded}")),
            "{location}"
        );
        let params: HashMap<String, String> = url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(params["iss"], server.issuer(), "{location}");
        params
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        location: response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.text().await.unwrap(),
    }
}

async fn authorize(server: &DevAuthorizationServer, pairs: &[(&str, &str)]) -> Answer {
    let url = format!("{}?{}", server.authorization_endpoint(), form(pairs));
    answer(mcp_oauth::testing::http_client().get(url)).await
}

/// A complete authorization request to `redirect_uri`, with `extra` parameters.
async fn request(
    server: &DevAuthorizationServer,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let challenge = challenge();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s-1"),
    ];
    pairs.extend_from_slice(extra);
    authorize(server, &pairs).await
}

async fn consent(server: &DevAuthorizationServer, page: &Answer, decision: &str) -> Answer {
    assert_eq!(page.status, 200, "{}", page.body);
    let marker = r#"name="consent_id" value=""#;
    let start = page.body.find(marker).expect("a consent form") + marker.len();
    let end = start + page.body[start..].find('"').unwrap();
    let consent_id = &page.body[start..end];
    let request = mcp_oauth::testing::http_client()
        .post(server.authorization_endpoint())
        .header("origin", server.issuer())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("consent_id", consent_id), ("decision", decision)]));
    answer(request).await
}

#[tokio::test]
async fn metadata_advertises_the_iss_parameter() {
    let server = server().await;
    for openid in [false, true] {
        let name = if openid {
            "openid-configuration"
        } else {
            "oauth-authorization-server"
        };
        let url = format!("{}/.well-known/{name}", server.issuer());
        let response = mcp_oauth::testing::http_client()
            .get(url)
            .send()
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["issuer"], server.issuer());
    }
}

#[tokio::test]
async fn the_code_redirect_carries_iss() {
    let server = server().await;
    let params = request(&server, LOOPBACK, &[]).await.redirect(&server);
    assert!(params["code"].starts_with("dev_ac_"));
    assert_eq!(params["state"], "s-1");
}

#[tokio::test]
async fn every_error_redirect_carries_iss() {
    let server = server().await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("scope", "calendar:write")], "invalid_scope"),
        (
            &[("resource", "http://127.0.0.1:1/other")],
            "invalid_target",
        ),
        (&[("dpop_jkt", "not-a-thumbprint")], "invalid_request"),
        (
            &[("prompt", "none"), ("prompt", "login")],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let params = request(&server, LOOPBACK, extra).await.redirect(&server);
        assert_eq!(params["error"], error, "{extra:?}");
        assert_eq!(params["state"], "s-1");
        assert!(params.contains_key("error_description"));
    }
    // Without PKCE, with the plain method, another response type.
    let incomplete: [(&[(&str, &str)], &str); 3] = [
        (&[("response_type", "code")], "invalid_request"),
        (
            &[
                ("response_type", "code"),
                ("code_challenge", "x"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (&[("response_type", "token")], "unsupported_response_type"),
    ];
    for (extra, error) in incomplete {
        let mut pairs = vec![("client_id", CLIENT), ("redirect_uri", LOOPBACK)];
        pairs.extend_from_slice(extra);
        let params = authorize(&server, &pairs).await.redirect(&server);
        assert_eq!(params["error"], error, "{extra:?}");
    }

    // A client that may not use the authorization code grant.
    let registration = mcp_oauth::testing::http_client()
        .post(server.registration_endpoint())
        .header("content-type", "application/json")
        .body(
            json!({
                "redirect_uris": [LOOPBACK],
                "grant_types": ["client_credentials"],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let registered: Value = serde_json::from_slice(&registration.bytes().await.unwrap()).unwrap();
    let id = registered["client_id"].as_str().unwrap();
    let challenge = challenge();
    let params = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", LOOPBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await
    .redirect(&server);
    assert_eq!(params["error"], "unauthorized_client");
    assert!(!params.contains_key("state"));
}

#[tokio::test]
async fn the_consent_pages_answers_carry_iss() {
    let server = server().await;
    let page = request(&server, WEB, &[]).await;
    let allowed = consent(&server, &page, "allow").await;
    let params = allowed.redirect(&server);
    assert!(params["code"].starts_with("dev_ac_"));
    assert!(allowed.location.as_deref().unwrap().starts_with(WEB));

    let page = request(&server, WEB, &[]).await;
    let denied = consent(&server, &page, "deny").await.redirect(&server);
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["state"], "s-1");
}

#[tokio::test]
async fn requests_that_cannot_redirect_answer_a_page_without_iss() {
    // An unknown client or redirect URI: no redirect at all (RFC 6749 §4.1.2.1).
    let server = server().await;
    let unknown = authorize(
        &server,
        &[("client_id", "nobody"), ("redirect_uri", LOOPBACK)],
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.location.is_none());
    let elsewhere = request(&server, "https://evil.example.test/cb", &[]).await;
    assert_eq!(elsewhere.status, 400);
    assert!(elsewhere.location.is_none());
}
