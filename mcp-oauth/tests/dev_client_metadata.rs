//! Client ID Metadata Documents (SEP-991) at the dev authorization server: documents served
//! over https by a loopback `testing::HttpsServer`, trusted through
//! `allow_local_client_metadata`; the whole flow, and every refusal of the fetch rules.
#![cfg(feature = "dev")]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::ManualClock;
use mcp_oauth::dev::{DevAuthorizationServer, DevAuthorizationServerBuilder};
use mcp_oauth::testing::{HttpsServer, TEST_ROOT_CA_PEM};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://127.0.0.1:8977/callback";
const SCOPES: [&str; 2] = ["calendar:read", "calendar:write"];

/// What the document server answers at one path.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Sent without `Content-Length` (chunked).
    chunked: bool,
    delay: Duration,
}

impl Answer {
    fn json(document: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".to_owned())],
            body: document.to_string(),
            chunked: false,
            delay: Duration::ZERO,
        }
    }
}

/// A loopback https server of client metadata documents, answering each path as told, and
/// counting the requests per path.
struct Documents {
    server: HttpsServer,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
}

#[derive(Clone)]
struct Shared {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
}

async fn serve(State(shared): State<Shared>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    shared
        .hits
        .lock()
        .entry(path.clone())
        .or_default()
        .fetch_add(1, Ordering::SeqCst);
    let Some(answer) = shared.answers.lock().get(&path).cloned() else {
        let mut response = Response::new(Body::from("not found"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    tokio::time::sleep(answer.delay).await;
    let mut response = if answer.chunked {
        let chunks: Vec<Result<String, std::io::Error>> = answer
            .body
            .as_bytes()
            .chunks(512)
            .map(|chunk| Ok(String::from_utf8_lossy(chunk).into_owned()))
            .collect();
        Response::new(Body::from_stream(futures::stream::iter(chunks)))
    } else {
        Response::new(Body::from(answer.body))
    };
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .append(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}

impl Documents {
    async fn start() -> Self {
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>> = Arc::default();
        let shared = Shared {
            answers: Arc::clone(&answers),
            hits: Arc::clone(&hits),
        };
        let router = Router::new().fallback(serve).with_state(shared);
        let server = HttpsServer::start(router).await.unwrap();
        Documents {
            server,
            answers,
            hits,
        }
    }

    /// The URL of `path` (`https://localhost:PORT/path`).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn answer(&self, path: &str, answer: Answer) -> String {
        self.answers.lock().insert(path.to_owned(), answer);
        self.url(path)
    }

    /// Serves a valid document at `path`, changed by `edit`; its URL.
    fn document(&self, path: &str, edit: impl FnOnce(&mut Value)) -> String {
        let url = self.url(path);
        let mut document = json!({
            "client_id": url,
            "client_name": "Calendar Desktop",
            "client_uri": "https://calendar-desktop.example.test/about",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        edit(&mut document);
        self.answer(path, Answer::json(&document))
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .get(path)
            .map_or(0, |hits| hits.load(Ordering::SeqCst))
    }
}

fn builder() -> DevAuthorizationServerBuilder {
    DevAuthorizationServer::builder()
        .scopes(SCOPES)
        .allow_local_client_metadata(TEST_ROOT_CA_PEM)
}

async fn server() -> DevAuthorizationServer {
    builder().start().await.unwrap()
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn redirect_params(&self) -> HashMap<String, String> {
        assert_eq!(self.status, 302, "{}", self.body);
        url::Url::parse(self.location.as_deref().unwrap())
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    /// Asserts an error page (400 HTML, no redirect) containing `text`.
    fn assert_error_page(&self, text: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert!(self.location.is_none());
        assert!(
            self.body.contains(text),
            "expected {text:?} in {}",
            self.body
        );
    }
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        location: response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.text().await.unwrap(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn authorize(
    server: &DevAuthorizationServer,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
) -> Reply {
    let query = form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("scope", "calendar:read"),
    ]);
    let url = format!("{}?{query}", server.authorization_endpoint());
    reply(mcp_oauth::testing::http_client().get(url)).await
}

async fn allow(server: &DevAuthorizationServer, page: &Reply) -> Reply {
    assert_eq!(page.status, 200, "{}", page.body);
    let marker = r#"name="consent_id" value=""#;
    let start = page.body.find(marker).expect("a consent form") + marker.len();
    let end = start + page.body[start..].find('"').unwrap();
    let request = mcp_oauth::testing::http_client()
        .post(server.authorization_endpoint())
        .header("origin", server.issuer())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("consent_id", &page.body[start..end]),
            ("decision", "allow"),
        ]));
    reply(request).await
}

async fn token(server: &DevAuthorizationServer, pairs: &[(&str, &str)]) -> Reply {
    let request = mcp_oauth::testing::http_client()
        .post(server.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    reply(request).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The code a document client gets through the consent page.
async fn code_for(server: &DevAuthorizationServer, client_id: &str, challenge: &str) -> String {
    let page = authorize(server, client_id, CALLBACK, challenge).await;
    allow(server, &page).await.redirect_params()["code"].clone()
}

#[tokio::test]
async fn a_document_client_goes_through_consent_to_a_token() {
    let documents = Documents::start().await;
    let client_id = documents.document("/clients/desktop.json", |_| {});
    let server = server().await;
    assert_eq!(
        server.metadata()["client_id_metadata_document_supported"],
        true
    );

    // A loopback redirect URI, yet a consent page: anyone can publish a document.
    let (verifier, challenge) = pkce();
    let page = authorize(&server, &client_id, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.location.is_none());
    let host = format!("localhost:{}", documents.server.addr().port());
    assert!(page.body.contains("Calendar Desktop"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("published by <strong>{host}</strong>")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("calendar-desktop.example.test"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<strong>127.0.0.1:8977</strong>"),
        "{}",
        page.body
    );

    let redirect = allow(&server, &page).await;
    let params = redirect.redirect_params();
    assert!(redirect.location.as_deref().unwrap().starts_with(CALLBACK));
    assert_eq!(params["iss"], server.issuer());
    assert_eq!(params["state"], "st");

    // The token endpoint: a public client, PKCE, no secret.
    let tokens = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("code_verifier", &verifier),
            ("redirect_uri", CALLBACK),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let body = tokens.json();
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["client_id"], client_id);
    assert_eq!(access["sub"], server.dev_user());
    assert_eq!(access["scope"], "calendar:read");

    // Its refresh token works for it (the document lists refresh_token).
    let refreshed = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    // Never client_credentials, and never with a secret.
    let credentials = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(credentials.status, 400, "{}", credentials.body);
    assert_eq!(credentials.json()["error"], "unauthorized_client");
    let with_secret = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", "guess"),
        ],
    )
    .await;
    assert_eq!(with_secret.status, 401);
    assert_eq!(with_secret.json()["error"], "invalid_client");

    // One fetch served all of it (cached).
    assert_eq!(documents.hits("/clients/desktop.json"), 1);
}

#[tokio::test]
async fn without_refresh_token_in_grant_types_no_refresh_token_is_issued() {
    let documents = Documents::start().await;
    let client_id = documents.document("/minimal.json", |doc| {
        let doc = doc.as_object_mut().unwrap();
        doc.remove("grant_types");
        doc.remove("client_name");
        doc.remove("client_uri");
    });
    let server = server().await;
    let (verifier, challenge) = pkce();
    let page = authorize(&server, &client_id, CALLBACK, &challenge).await;
    // Without a name, the page names the client by its URL.
    assert!(page.body.contains(&client_id), "{}", page.body);
    assert!(page.body.contains("Its name is what the document claims"));
    let code = allow(&server, &page).await.redirect_params()["code"].clone();
    let tokens = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", CALLBACK),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.json().get("refresh_token").is_none());
}

#[tokio::test]
async fn a_redirect_uri_the_document_does_not_list_gets_no_redirect() {
    let documents = Documents::start().await;
    let client_id = documents.document("/c.json", |_| {});
    let server = server().await;
    let (_, challenge) = pkce();
    for elsewhere in [
        "http://127.0.0.1:8977/other",
        "https://evil.example.test/callback",
    ] {
        let reply = authorize(&server, &client_id, elsewhere, &challenge).await;
        reply.assert_error_page("redirect_uri is not registered");
    }
    // A loopback redirect URI matches on any port, as for registered clients.
    let page = authorize(
        &server,
        &client_id,
        "http://127.0.0.1:1234/callback",
        &challenge,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn a_client_id_other_than_the_url_is_refused() {
    let documents = Documents::start().await;
    let other = documents.url("/someone-else.json");
    let client_id = documents.document("/mismatch.json", |doc| doc["client_id"] = json!(other));
    let server = server().await;
    let (_, challenge) = pkce();
    authorize(&server, &client_id, CALLBACK, &challenge)
        .await
        .assert_error_page("client_id is not the URL it was fetched from");
    // Nor at the token endpoint.
    let reply = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", &"v".repeat(43)),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client");
}

#[tokio::test]
async fn a_confidential_document_is_refused_clearly() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    for (path, method) in [
        ("/basic.json", json!("client_secret_basic")),
        ("/jwt.json", json!("private_key_jwt")),
        ("/absent.json", Value::Null),
    ] {
        let client_id = documents.document(path, |doc| {
            if method.is_null() {
                doc.as_object_mut()
                    .unwrap()
                    .remove("token_endpoint_auth_method");
            } else {
                doc["token_endpoint_auth_method"] = method.clone();
            }
        });
        authorize(&server, &client_id, CALLBACK, &challenge)
            .await
            .assert_error_page("token_endpoint_auth_method none:");
    }
}

#[tokio::test]
async fn a_redirect_answer_is_not_followed() {
    let documents = Documents::start().await;
    let target = documents.document("/target.json", |_| {});
    let server = server().await;
    let (_, challenge) = pkce();
    for status in [301, 302, 307, 308] {
        let path = format!("/moved-{status}.json");
        let client_id = documents.answer(
            &path,
            Answer {
                status,
                headers: vec![("location", target.clone())],
                body: String::new(),
                chunked: false,
                delay: Duration::ZERO,
            },
        );
        authorize(&server, &client_id, CALLBACK, &challenge)
            .await
            .assert_error_page("answered with a redirect");
    }
    assert_eq!(documents.hits("/target.json"), 0);
}

#[tokio::test]
async fn documents_over_five_kib_are_refused() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    let padding = "x".repeat(5 * 1024);
    for (path, chunked) in [("/big.json", false), ("/big-chunked.json", true)] {
        let url = documents.url(path);
        let document = json!({
            "client_id": url,
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "padding": padding,
        });
        let mut answer = Answer::json(&document);
        answer.chunked = chunked;
        documents.answer(path, answer);
        authorize(&server, &url, CALLBACK, &challenge)
            .await
            .assert_error_page("larger than 5 KiB");
    }
    // Just under the bound is fine.
    let url = documents.url("/fits.json");
    let mut document = json!({
        "client_id": url,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    });
    let room = 5 * 1024 - document.to_string().len() - r#","padding":"""#.len();
    document["padding"] = json!("x".repeat(room));
    assert_eq!(document.to_string().len(), 5 * 1024);
    documents.answer("/fits.json", Answer::json(&document));
    let page = authorize(&server, &url, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn a_slow_server_is_given_up_on_after_two_seconds() {
    let documents = Documents::start().await;
    let url = documents.url("/slow.json");
    let mut answer = Answer::json(&json!({
        "client_id": url,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    }));
    answer.delay = Duration::from_secs(4);
    documents.answer("/slow.json", answer);
    let server = server().await;
    let (_, challenge) = pkce();
    let started = std::time::Instant::now();
    authorize(&server, &url, CALLBACK, &challenge)
        .await
        .assert_error_page("timed out");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn other_answers_than_a_json_object_are_refused() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    let url = documents.url("/html.json");
    let mut html = Answer::json(&json!({
        "client_id": url,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    }));
    html.headers = vec![("content-type", "text/html".to_owned())];
    documents.answer("/html.json", html);
    authorize(&server, &url, CALLBACK, &challenge)
        .await
        .assert_error_page("not application/json");

    let url = documents.url("/array.json");
    documents.answer("/array.json", Answer::json(&json!([url])));
    authorize(&server, &url, CALLBACK, &challenge)
        .await
        .assert_error_page("not a JSON object");

    let missing = documents.url("/missing.json");
    authorize(&server, &missing, CALLBACK, &challenge)
        .await
        .assert_error_page("did not answer 200 OK");
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_test_setting() {
    let documents = Documents::start().await;
    let port = documents.server.addr().port();
    documents.document("/c.json", |_| {});
    // The same document by address: its client_id names that URL.
    let by_address = format!("https://127.0.0.1:{port}/by-address.json");
    documents.answer(
        "/by-address.json",
        Answer::json(&json!({
            "client_id": by_address,
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
        })),
    );
    let strict = DevAuthorizationServer::builder()
        .scopes(SCOPES)
        .start()
        .await
        .unwrap();
    let (_, challenge) = pkce();
    // An IP literal is checked directly, a name after resolution (`localhost` is loopback).
    for client_id in [by_address.clone(), documents.url("/c.json")] {
        authorize(&strict, &client_id, CALLBACK, &challenge)
            .await
            .assert_error_page("private, loopback or otherwise reserved address");
    }
    for private in [
        "https://10.0.0.1/c.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:1/c.json",
        "https://[::ffff:7f00:1]:1/c.json",
        "https://[fd00::1]/c.json",
        "https://100.64.0.1/c.json",
    ] {
        authorize(&strict, private, CALLBACK, &challenge)
            .await
            .assert_error_page("private, loopback or otherwise reserved address");
    }
    assert_eq!(
        documents.hits("/c.json") + documents.hits("/by-address.json"),
        0
    );

    // The test setting allows loopback (by address too), and nothing else.
    let local = server().await;
    let page = authorize(&local, &by_address, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    authorize(&local, "https://10.0.0.1/c.json", CALLBACK, &challenge)
        .await
        .assert_error_page("private, loopback or otherwise reserved address");
}

#[tokio::test]
async fn client_id_urls_must_be_https_and_canonical() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    let port = documents.server.addr().port();
    // Not https: an unknown client, never fetched.
    for unknown in [
        format!("http://localhost:{port}/c.json"),
        format!("ftp://localhost:{port}/c.json"),
        "urn:example:client".to_owned(),
    ] {
        authorize(&server, &unknown, CALLBACK, &challenge)
            .await
            .assert_error_page("Unknown or missing client_id.");
    }
    for invalid in [
        format!("https://localhost:{port}"),
        format!("https://localhost:{port}/"),
        format!("https://localhost:{port}/c.json#me"),
        format!("https://user@localhost:{port}/c.json"),
        format!("https://localhost:{port}/a/../c.json"),
        format!("https://LOCALHOST:{port}/c.json"),
    ] {
        authorize(&server, &invalid, CALLBACK, &challenge)
            .await
            .assert_error_page("not a valid client metadata document URL");
    }
    assert!(documents.hits.lock().is_empty());
}

#[tokio::test]
async fn documents_are_cached_for_their_max_age_and_failures_briefly() {
    let documents = Documents::start().await;
    let clock = ManualClock::new(1_000_000);
    let server = builder().clock(clock.clone()).start().await.unwrap();
    let (_, challenge) = pkce();

    let url = documents.url("/cached.json");
    let mut answer = Answer::json(&json!({
        "client_id": url,
        "client_name": "First name",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    }));
    answer
        .headers
        .push(("cache-control", "public, max-age=120".to_owned()));
    documents.answer("/cached.json", answer);
    let page = authorize(&server, &url, CALLBACK, &challenge).await;
    assert!(page.body.contains("First name"));
    documents.document("/cached.json", |doc| {
        doc["client_id"] = json!(url);
        doc["client_name"] = json!("Second name");
    });
    clock.advance(Duration::from_secs(119));
    let page = authorize(&server, &url, CALLBACK, &challenge).await;
    assert!(page.body.contains("First name"), "still cached");
    assert_eq!(documents.hits("/cached.json"), 1);
    clock.advance(Duration::from_secs(2));
    let page = authorize(&server, &url, CALLBACK, &challenge).await;
    assert!(page.body.contains("Second name"), "fetched again");
    assert_eq!(documents.hits("/cached.json"), 2);

    // A huge max-age is capped at 5 minutes; no-store is not cached.
    let capped = documents.url("/capped.json");
    let mut answer = Answer::json(&json!({
        "client_id": capped,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    }));
    answer
        .headers
        .push(("cache-control", "max-age=31536000".to_owned()));
    documents.answer("/capped.json", answer.clone());
    authorize(&server, &capped, CALLBACK, &challenge).await;
    clock.advance(Duration::from_secs(299));
    authorize(&server, &capped, CALLBACK, &challenge).await;
    assert_eq!(documents.hits("/capped.json"), 1);
    clock.advance(Duration::from_secs(2));
    authorize(&server, &capped, CALLBACK, &challenge).await;
    assert_eq!(documents.hits("/capped.json"), 2);

    let uncached = documents.url("/no-store.json");
    answer.body = json!({
        "client_id": uncached,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    answer.headers = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ];
    documents.answer("/no-store.json", answer);
    authorize(&server, &uncached, CALLBACK, &challenge).await;
    authorize(&server, &uncached, CALLBACK, &challenge).await;
    assert_eq!(documents.hits("/no-store.json"), 2);

    // A failure is remembered for five seconds only.
    let late = documents.url("/late.json");
    authorize(&server, &late, CALLBACK, &challenge)
        .await
        .assert_error_page("did not answer 200 OK");
    documents.document("/late.json", |_| {});
    clock.advance(Duration::from_secs(4));
    authorize(&server, &late, CALLBACK, &challenge)
        .await
        .assert_error_page("did not answer 200 OK");
    assert_eq!(documents.hits("/late.json"), 1);
    clock.advance(Duration::from_secs(2));
    let page = authorize(&server, &late, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn the_consent_page_escapes_what_the_document_claims() {
    let documents = Documents::start().await;
    let hostile = r#"<script>alert("x")</script> Trusted Bank"#;
    let client_id = documents.document("/hostile.json", |doc| {
        doc["client_name"] = json!(hostile);
        doc["client_uri"] = json!("https://bank.example.test/<b>");
    });
    let server = server().await;
    let (_, challenge) = pkce();
    let page = authorize(&server, &client_id, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(page.body.contains("bank.example.test"), "{}", page.body);
    // The code still needs the consent: the page is all the GET gave.
    let code = code_for(&server, &client_id, &challenge).await;
    assert!(code.starts_with("dev_ac_"));
}

#[tokio::test]
async fn start_refuses_an_unusable_root_ca() {
    for pem in ["", "not a certificate"] {
        let error = DevAuthorizationServer::builder()
            .allow_local_client_metadata(pem)
            .start()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{pem:?}");
    }
}

/// A GET of the authorization endpoint with exactly these parameters.
async fn authorize_with(server: &DevAuthorizationServer, pairs: &[(&str, &str)]) -> Reply {
    let url = format!("{}?{}", server.authorization_endpoint(), form(pairs));
    reply(mcp_oauth::testing::http_client().get(url)).await
}

#[tokio::test]
async fn errors_before_consent_are_not_redirected_off_loopback() {
    const WEB: &str = "https://calendar-web.example.test/callback";
    let documents = Documents::start().await;
    let client_id = documents.document("/web.json", |doc| {
        doc["redirect_uris"] = json!([CALLBACK, WEB]);
    });
    let server = server().await;
    let (_, challenge) = pkce();
    let request = |redirect_uri: &'static str, change: &[(&'static str, &'static str)]| {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ];
        for (name, value) in change {
            pairs.retain(|(n, _)| n != name);
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        pairs
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("scope", "admin")], "invalid_scope"),
        (
            &[("resource", "https://elsewhere.example.test/mcp")],
            "invalid_target",
        ),
    ];
    for (change, error) in cases {
        // To the document's https redirect URI: an error page, no redirect.
        let pairs = request(WEB, change);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&**n, &**v)).collect();
        let page = authorize_with(&server, &pairs).await;
        page.assert_error_page(&format!("(<code>{error}</code>)"));
        assert!(!page.body.contains("calendar-web"), "{}", page.body);
        // To its loopback one (this machine): redirected, as for any client.
        let pairs = request(CALLBACK, change);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&**n, &**v)).collect();
        let redirect = authorize_with(&server, &pairs).await;
        let params = redirect.redirect_params();
        assert_eq!(params["error"], error, "{change:?}");
        assert_eq!(params["iss"], server.issuer());
    }
    // A repeated parameter: the page does not echo its name.
    let page = authorize_with(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", WEB),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "calendar:read"),
            ("scope", "calendar:write"),
        ],
    )
    .await;
    page.assert_error_page("a parameter is repeated");
    // A valid request still gets the consent page, and "Deny" redirects there (the user
    // chose to answer the client).
    let page = authorize(&server, &client_id, WEB, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("calendar-web.example.test"));
}

#[tokio::test]
async fn documents_may_redirect_only_to_https_loopback_or_private_use_schemes() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    for (i, unsafe_uri) in [
        "javascript:alert(document.domain)//",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "http://calendar-web.example.test/callback",
        "myapp:/callback",
        "https://calendar-web.example.test/callback?code=planted",
        "https://calendar-web.example.test/callback?iss=https%3A%2F%2Fevil.example.test",
        "http://127.0.0.1:8977/callback?state=planted",
    ]
    .into_iter()
    .enumerate()
    {
        let client_id = documents.document(&format!("/unsafe-{i}.json"), |doc| {
            doc["redirect_uris"] = json!([CALLBACK, unsafe_uri]);
        });
        authorize(&server, &client_id, CALLBACK, &challenge)
            .await
            .assert_error_page("must list redirect_uris");
    }
    // A native app's private-use scheme (reverse domain name): the consent page names it.
    const NATIVE: &str = "com.example.calendar-desktop:/oauth2redirect";
    let client_id = documents.document("/native.json", |doc| {
        doc["redirect_uris"] = json!([NATIVE]);
    });
    let page = authorize(&server, &client_id, NATIVE, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<strong>com.example.calendar-desktop:</strong>"),
        "{}",
        page.body
    );
    let redirect = allow(&server, &page).await;
    assert!(
        redirect
            .location
            .as_deref()
            .unwrap()
            .starts_with("com.example.calendar-desktop:/oauth2redirect?code=")
    );
}

#[tokio::test]
async fn no_redirect_uri_may_carry_the_response_parameters() {
    use mcp_oauth::dev::DevClient;
    for uri in [
        "http://127.0.0.1/callback?state=fixed",
        "http://127.0.0.1/callback?iss=http%3A%2F%2F127.0.0.1%3A1",
        "https://app.example.test/cb?code=x",
        "https://app.example.test/cb?error=access_denied",
    ] {
        let error = DevAuthorizationServer::builder()
            .client(DevClient {
                id: "static".into(),
                secret: "static-secret".into(),
                scopes: Vec::new(),
                redirect_uris: vec![uri.into()],
            })
            .start()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{uri}");
        assert!(error.to_string().contains("iss"), "{error}");

        let server = server().await;
        let registration = reply(
            mcp_oauth::testing::http_client()
                .post(server.registration_endpoint())
                .header("content-type", "application/json")
                .body(
                    json!({
                        "redirect_uris": [uri],
                        "token_endpoint_auth_method": "none",
                    })
                    .to_string(),
                ),
        )
        .await;
        assert_eq!(registration.status, 400, "{uri}: {}", registration.body);
        assert_eq!(registration.json()["error"], "invalid_redirect_uri");
    }
    // Other query parameters stay allowed.
    let server = server().await;
    let registration = reply(
        mcp_oauth::testing::http_client()
            .post(server.registration_endpoint())
            .header("content-type", "application/json")
            .body(
                json!({
                    "redirect_uris": ["http://127.0.0.1/callback?tenant=a"],
                    "token_endpoint_auth_method": "none",
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(registration.status, 201, "{}", registration.body);
}

#[tokio::test]
async fn a_client_id_over_two_kib_is_refused_unfetched() {
    let documents = Documents::start().await;
    let path = format!("/{}.json", "a".repeat(2 * 1024));
    let client_id = documents.document(&path, |_| {});
    assert!(client_id.len() > 2 * 1024);
    let server = server().await;
    let (_, challenge) = pkce();
    authorize(&server, &client_id, CALLBACK, &challenge)
        .await
        .assert_error_page("longer than 2 KiB");
    let reply = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", &"v".repeat(43)),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert_eq!(documents.hits(&path), 0);
}

#[tokio::test]
async fn concurrent_requests_for_one_document_share_one_fetch() {
    let documents = Documents::start().await;
    let url = documents.url("/shared.json");
    let mut answer = Answer::json(&json!({
        "client_id": url,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    }));
    answer.delay = Duration::from_millis(500);
    documents.answer("/shared.json", answer);
    let server = server().await;
    let (_, challenge) = pkce();
    let pages =
        futures::future::join_all((0..8).map(|_| authorize(&server, &url, CALLBACK, &challenge)))
            .await;
    for page in pages {
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert_eq!(documents.hits("/shared.json"), 1);
}

#[tokio::test]
async fn at_most_sixteen_documents_are_fetched_at_once() {
    let documents = Documents::start().await;
    let server = server().await;
    let (_, challenge) = pkce();
    // Sixteen documents that take longer than the fetch timeout: each holds a fetch for 2 s.
    let slow: Vec<String> = (0..16)
        .map(|i| {
            let path = format!("/slow-{i}.json");
            let url = documents.url(&path);
            let mut answer = Answer::json(&json!({
                "client_id": url,
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "none",
            }));
            answer.delay = Duration::from_secs(4);
            documents.answer(&path, answer)
        })
        .collect();
    let pending = futures::future::join_all(
        slow.iter()
            .map(|url| authorize(&server, url, CALLBACK, &challenge)),
    );
    let seventeenth = documents.document("/seventeenth.json", |_| {});
    let eighteenth = documents.document("/eighteenth.json", |_| {});
    let busy = async {
        let all_started = async {
            while (0..16)
                .map(|i| documents.hits(&format!("/slow-{i}.json")))
                .sum::<usize>()
                < 16
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(2), all_started)
            .await
            .expect("sixteen fetches under way");
        let page = authorize(&server, &seventeenth, CALLBACK, &challenge).await;
        let tokens = token(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code_verifier", &"v".repeat(43)),
                ("client_id", &eighteenth),
            ],
        )
        .await;
        (page, tokens)
    };
    let (slow_pages, (page, tokens)) = tokio::join!(pending, busy);
    // Refused at once, unfetched.
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("too many client metadata documents"));
    assert_eq!(tokens.status, 503, "{}", tokens.body);
    assert_eq!(tokens.json()["error"], "temporarily_unavailable");
    assert_eq!(documents.hits("/seventeenth.json"), 0);
    assert_eq!(documents.hits("/eighteenth.json"), 0);
    for page in slow_pages {
        page.assert_error_page("timed out");
    }
    // Being busy is not remembered: with the fetches done, the document is fetched.
    let page = authorize(&server, &seventeenth, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn the_consent_page_shows_a_claimed_name_tamed() {
    let documents = Documents::start().await;
    let spoof = format!(
        "Calendar\u{202E}Desktop\u{202C}\u{200B} {}",
        "Official ".repeat(20)
    );
    let client_id = documents.document("/spoof.json", |doc| doc["client_name"] = json!(spoof));
    let server = server().await;
    let (_, challenge) = pkce();
    let page = authorize(&server, &client_id, CALLBACK, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for hidden in ['\u{202E}', '\u{202C}', '\u{200B}'] {
        assert!(!page.body.contains(hidden), "{:?}", page.body);
    }
    let host = format!("localhost:{}", documents.server.addr().port());
    let title = page.body.split("<title>").nth(1).unwrap();
    let title = &title[..title.find("</title>").unwrap()];
    assert!(
        title.starts_with("Authorize \u{2068}CalendarDesktop Official"),
        "{title}"
    );
    assert!(
        title.ends_with(&format!("…\u{2069} from {host}?")),
        "{title}"
    );
    assert!(
        page.body
            .contains("<h1>Authorize <q><bdi>CalendarDesktop Official"),
        "{}",
        page.body
    );
    let shown = page.body.split("<bdi>").nth(1).unwrap();
    let shown = &shown[..shown.find("</bdi>").unwrap()];
    assert_eq!(shown.chars().count(), 101, "{shown}");
}

/// The events logged on this thread while `run` runs, as text, with their levels.
async fn logged<F: std::future::Future>(run: F) -> (F::Output, Vec<(tracing::Level, String)>) {
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<(tracing::Level, String)>>>);
    struct Text<'a>(&'a mut String);
    impl tracing::field::Visit for Text<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut text = String::new();
            event.record(&mut Text(&mut text));
            self.0.lock().push((*event.metadata().level(), text));
        }
    }

    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    // The test's runtime is single-threaded: the server runs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let output = run.await;
    let events = captured.0.lock().clone();
    (output, events)
}

#[tokio::test]
async fn logs_name_refused_client_ids_safely_and_warn_of_the_test_setting() {
    let documents = Documents::start().await;
    let port = documents.server.addr().port();
    let (_, challenge) = pkce();
    let hostile = format!(
        "https://localhost:{port}/\u{202E}\nINFO forged line {}",
        "x".repeat(1000)
    );
    let (_, events) = logged(async {
        let server = server().await;
        authorize(&server, &hostile, CALLBACK, &challenge)
            .await
            .assert_error_page("not a valid client metadata document URL");
    })
    .await;
    assert!(
        events
            .iter()
            .any(|(level, text)| *level == tracing::Level::WARN
                && text.contains("allow_local_client_metadata")),
        "{events:#?}"
    );
    let refusals: Vec<&String> = events
        .iter()
        .map(|(_, text)| text)
        .filter(|text| text.contains("refused a client metadata document"))
        .collect();
    assert_eq!(refusals.len(), 1, "{events:#?}");
    let refusal = refusals[0];
    assert!(!refusal.contains('\u{202E}'), "{refusal}");
    assert!(!refusal.contains('\n'), "{refusal}");
    assert!(!refusal.contains(&"x".repeat(100)), "{refusal}");
    assert!(refusal.contains("InvalidUrl"), "{refusal}");
}
