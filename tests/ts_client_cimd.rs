//! Interop with the official TypeScript MCP client v2 (`@modelcontextprotocol/client`, pinned
//! in `tests/interop/ts-client-dpop/package.json`) identified by a Client ID Metadata Document
//! (CIMD, SEP-991): its `client_id` is the https URL of a JSON document describing it, which
//! the authorization server fetches instead of any registration.
//!
//! Set-up, in this process: a [`DevAuthorizationServer`] told to trust the test root CA for
//! loopback client metadata (`allow_local_client_metadata`), and an [`HttpsServer`] serving
//! the client's documents with a certificate from that CA; then the calendar example, with the
//! dev server as its external issuer, and `cimd_auth_code.mjs`, the SDK's authorization-code
//! flow with `clientMetadataUrl` set.
//!
//! What it proves:
//! - the SDK, from a 401 alone, discovers the dev server, sees
//!   `client_id_metadata_document_supported`, and uses the document's URL as its `client_id`:
//!   it never calls `/register`, and the token it gets names that URL as its client;
//! - the dev server fetches the document over https (the SDK never does), shows a consent
//!   page naming the client and the host that published it, and issues the code only once
//!   the page's "Allow" form is posted (by the script, as a browser would);
//! - the redirect carries `code` and `iss` (RFC 9207), `iss` being the dev server's issuer;
//!   a callback whose `iss` names another server is refused by the SDK before the code is
//!   redeemed, and the real one is exchanged (PKCE S256, `resource`, no client secret);
//! - `tools/call` succeeds with that token;
//! - a document whose `redirect_uris` do not list the callback gets no code: the authorization
//!   endpoint answers an error page naming the redirect URI, not a redirect, and no token is
//!   asked for.
//!
//! Needs Node.js 20+ and npm (the tests fail, never skip, without them); `npm ci` runs once
//! per test process. The calendar binary comes from `target/<profile>/examples/`: a plain
//! `cargo test` builds it; before `cargo test --test ts_client_cimd`, run
//! `cargo build --examples`.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcp_oauth::dev::DevAuthorizationServer;
use mcp_oauth::testing::{HttpsServer, TEST_ROOT_CA_PEM};
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{Running, example_command, free_port, metadata_url, run_node_script, workspace_root};

/// How long a script may run (each also stops itself after 60 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
const SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "calendar:admin"];
/// The script's loopback callback (nothing listens: the script reads the redirect itself).
const CALLBACK: &str = "http://127.0.0.1:8977/callback";
/// The same host and port, another path: a loopback redirect URI the document does not list.
const UNLISTED_CALLBACK: &str = "http://127.0.0.1:8977/unlisted-callback";
const CLIENT_NAME: &str = "mcp-oauth interop (CIMD)";

fn ts_dir() -> PathBuf {
    workspace_root().join("tests/interop/ts-client-dpop")
}

/// A request for a metadata document, as the document server saw it.
#[derive(Debug, Clone)]
struct Fetch {
    path: String,
    user_agent: String,
}

/// What the document server knows: its own URL (once listening) and the requests it served.
#[derive(Default)]
struct Documents {
    base_url: OnceLock<String>,
    fetches: Mutex<Vec<Fetch>>,
}

/// `GET /clients/{name}`: `interop.json` lists [`CALLBACK`], `unlisted.json` lists another
/// redirect URI; each names its own URL as `client_id`.
async fn document(
    State(documents): State<Arc<Documents>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/clients/{name}");
    documents.fetches.lock().push(Fetch {
        path: path.clone(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    });
    let redirect_uri = match name.as_str() {
        "interop.json" => CALLBACK,
        "unlisted.json" => "http://127.0.0.1:8977/elsewhere",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let base = documents.base_url.get().expect("the server's URL is set");
    let body = json!({
        "client_id": format!("{base}{path}"),
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Everything one test runs against. Fields drop in order: the calendar process, the servers,
/// then the runtime they run on.
struct Setup {
    _calendar: Running,
    resource: String,
    dev: DevAuthorizationServer,
    documents_server: HttpsServer,
    documents: Arc<Documents>,
    _runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn start() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the in-process servers");
        let port = free_port();
        let resource = format!("http://127.0.0.1:{port}/mcp");
        let documents = Arc::new(Documents::default());
        let (dev, documents_server) = runtime.block_on(async {
            let dev = DevAuthorizationServer::builder()
                .resource(&resource)
                .scopes(SCOPES)
                .allow_local_client_metadata(TEST_ROOT_CA_PEM)
                .start()
                .await
                .expect("the dev authorization server starts");
            let router = Router::new()
                .route("/clients/{name}", get(document))
                .with_state(Arc::clone(&documents));
            let server = HttpsServer::start(router)
                .await
                .expect("the document server starts");
            (dev, server)
        });
        documents
            .base_url
            .set(documents_server.url())
            .expect("set once");

        let mut command = example_command("calendar");
        command
            .env("MCP_OAUTH_RESOURCE", &resource)
            .env("MCP_OAUTH_ISSUER", dev.issuer())
            .env("MCP_OAUTH_ISSUER_JWKS_URI", dev.jwks_uri())
            .env("RUST_BACKTRACE", "1");
        let calendar = Running::start_example("calendar", command);
        assert_eq!(calendar.banner_value("issuer:"), dev.issuer());
        Setup {
            _calendar: calendar,
            resource,
            dev,
            documents_server,
            documents,
            _runtime: runtime,
        }
    }

    /// The `client_id` of the document `name`: its https URL.
    fn client_id(&self, name: &str) -> String {
        format!("{}/clients/{name}", self.documents_server.url())
    }

    /// Runs `cimd_auth_code.mjs <mode>` as the client `client_id` redirecting to `callback`.
    fn run(&self, mode: &str, client_id: &str, callback: &str) -> Value {
        let env = [
            ("MCP_URL", self.resource.as_str()),
            ("CLIENT_METADATA_URL", client_id),
            ("REDIRECT_URL", callback),
        ];
        run_node_script(
            &ts_dir(),
            "cimd_auth_code.mjs",
            &[mode],
            &env,
            SCRIPT_TIMEOUT,
        )
    }

    fn fetches(&self) -> Vec<Fetch> {
        self.documents.fetches.lock().clone()
    }
}

/// Asserts the first exchanges are the discovery a client does from a 401 alone: the
/// challenge, the protected-resource metadata, the authorization server's metadata.
fn assert_discovery_from_the_401(http: &Value, resource: &str, issuer: &str) {
    let http = http.as_array().expect("an HTTP log");
    assert_eq!(
        (http[0]["method"].as_str(), http[0]["url"].as_str()),
        (Some("POST"), Some(resource)),
        "{}",
        http[0]
    );
    assert_eq!(http[0]["status"], 401, "{}", http[0]);
    assert_eq!(http[1]["url"], metadata_url(resource), "{}", http[1]);
    assert_eq!(http[1]["status"], 200, "{}", http[1]);
    assert_eq!(
        http[2]["url"],
        format!("{issuer}/.well-known/oauth-authorization-server"),
        "{}",
        http[2]
    );
    assert_eq!(http[2]["status"], 200, "{}", http[2]);
}

/// Asserts the SDK never registered: no request to the registration endpoint (nor any
/// `/register`), and the client id it used is the document's URL, with no secret.
fn assert_no_registration(summary: &Value, setup: &Setup, client_id: &str) {
    assert_eq!(summary["registration_requests"], 0, "{summary}");
    let registration = setup.dev.registration_endpoint();
    assert!(
        !summary["http"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["url"] == registration),
        "{summary}"
    );
    assert_eq!(
        summary["client_information"],
        json!({ "client_id": client_id, "has_secret": false }),
        "{summary}"
    );
}

/// Asserts the dev server fetched the document `path`, and nobody else did (the SDK never
/// reads its own document: node's fetch says `node` in its User-Agent).
fn assert_fetched_by_the_authorization_server(setup: &Setup, path: &str) {
    let fetches = setup.fetches();
    assert!(fetches.iter().any(|f| f.path == path), "{fetches:?}");
    assert!(
        fetches
            .iter()
            .all(|f| !f.user_agent.to_ascii_lowercase().contains("node")),
        "{fetches:?}"
    );
}

#[test]
fn the_typescript_client_authorizes_with_a_client_id_metadata_document_served_over_https() {
    let setup = Setup::start();
    let issuer = setup.dev.issuer().to_owned();
    let client_id = setup.client_id("interop.json");
    assert_eq!(
        setup.dev.metadata()["client_id_metadata_document_supported"],
        true
    );
    let summary = setup.run("basic", &client_id, CALLBACK);

    assert_eq!(summary["outcome"], "authorized", "{summary}");
    assert_eq!(
        summary["first_connect_error"]["name"], "UnauthorizedError",
        "{summary}"
    );
    assert_discovery_from_the_401(&summary["http"], &setup.resource, &issuer);
    assert_no_registration(&summary, &setup, &client_id);
    assert_fetched_by_the_authorization_server(&setup, "/clients/interop.json");

    // One authorization: the consent page, answered "Allow", then the redirect with a code.
    let authorizations = summary["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{summary}");
    let authorization = &authorizations[0];
    assert_eq!(
        authorization["endpoint"],
        setup.dev.authorization_endpoint(),
        "{summary}"
    );
    let request = &authorization["request"];
    assert_eq!(request["client_id"], client_id, "{summary}");
    assert_eq!(request["redirect_uri"], CALLBACK, "{summary}");
    assert_eq!(request["response_type"], "code", "{summary}");
    assert_eq!(request["code_challenge_method"], "S256", "{summary}");
    assert_eq!(request["has_code_challenge"], true, "{summary}");
    assert_eq!(request["resource"], setup.resource, "{summary}");

    assert_eq!(authorization["status"], 200, "a consent page: {summary}");
    let consent = &authorization["consent"];
    assert!(
        consent["content_type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/html")),
        "{summary}"
    );
    let page = consent["text"].as_str().unwrap();
    assert!(
        page.contains(CLIENT_NAME),
        "the page names the client: {page}"
    );
    let publisher = format!("localhost:{}", setup.documents_server.addr().port());
    assert!(
        page.contains(&publisher),
        "the page names the host that published the document: {page}"
    );
    assert_eq!(consent["has_allow"], true, "{summary}");
    assert_eq!(
        consent["action"],
        setup.dev.authorization_endpoint(),
        "{summary}"
    );
    assert_eq!(consent["status"], 302, "{summary}");

    let redirect = &authorization["redirect"];
    assert_eq!(redirect["to"], CALLBACK, "{summary}");
    assert_eq!(redirect["has_code"], true, "{summary}");
    assert_eq!(redirect["state_matches"], true, "{summary}");
    assert_eq!(redirect["iss"], issuer, "RFC 9207: {summary}");
    assert!(redirect["error"].is_null(), "{summary}");

    // The forged `iss` was refused before any token request; the real callback was redeemed.
    assert_eq!(
        summary["forged_iss"]["error"]["name"], "IssuerMismatchError",
        "{summary}"
    );
    assert_eq!(summary["forged_iss"]["token_requests"], 0, "{summary}");
    let token_requests = summary["token_requests"].as_array().unwrap();
    assert_eq!(token_requests.len(), 1, "{summary}");
    let exchange = &token_requests[0];
    assert_eq!(exchange["url"], setup.dev.token_endpoint(), "{summary}");
    assert_eq!(exchange["status"], 200, "{summary}");
    assert_eq!(exchange["grant_type"], "authorization_code", "{summary}");
    assert_eq!(exchange["client_id"], client_id, "{summary}");
    assert_eq!(exchange["redirect_uri"], CALLBACK, "{summary}");
    assert_eq!(exchange["resource"], setup.resource, "{summary}");
    assert_eq!(exchange["response"]["token_type"], "Bearer", "{summary}");
    assert_eq!(summary["tokens"]["token_type"], "Bearer", "{summary}");

    // The token works, and names the document's URL as its client.
    assert!(
        summary["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "whoami"),
        "{summary}"
    );
    assert_eq!(summary["whoami"]["client_id"], client_id, "{summary}");
    assert_eq!(
        summary["whoami"]["subject"],
        setup.dev.dev_user(),
        "{summary}"
    );
    assert!(summary["list_events"].is_object() || summary["list_events"].is_array());
    let calls: Vec<&Value> = summary["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["url"] == setup.resource && e["rpc"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2, "{summary}");
    for call in calls {
        assert_eq!(call["auth_scheme"], "Bearer", "{call}");
        assert_eq!(call["status"], 200, "{call}");
    }
    drop(setup);
}

#[test]
fn a_client_id_metadata_document_without_the_callback_gets_no_code() {
    let setup = Setup::start();
    let client_id = setup.client_id("unlisted.json");
    let summary = setup.run("refused", &client_id, UNLISTED_CALLBACK);

    assert_eq!(summary["outcome"], "refused", "{summary}");
    assert_no_registration(&summary, &setup, &client_id);
    assert_fetched_by_the_authorization_server(&setup, "/clients/unlisted.json");

    let authorizations = summary["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{summary}");
    let authorization = &authorizations[0];
    assert_eq!(
        authorization["request"]["client_id"], client_id,
        "{summary}"
    );
    assert_eq!(
        authorization["request"]["redirect_uri"], UNLISTED_CALLBACK,
        "{summary}"
    );
    // No redirect at all (RFC 6749 §4.1.2.1: never to an unverified redirect URI): an error
    // page that says why.
    assert!(authorization.get("redirect").is_none(), "{summary}");
    assert!(authorization.get("consent").is_none(), "{summary}");
    let refusal = &authorization["refusal"];
    assert_eq!(refusal["status"], 400, "{summary}");
    let text = refusal["text"].as_str().unwrap().to_ascii_lowercase();
    assert!(text.contains("redirect"), "a clear error: {text}");
    let error = summary["error"]["message"].as_str().unwrap();
    assert!(
        error.contains("400") && error.to_ascii_lowercase().contains("redirect"),
        "the SDK's caller sees why: {error}"
    );
    assert!(
        summary["token_requests"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    drop(setup);
}
