//! Interop with the official TypeScript MCP client v2 (`@modelcontextprotocol/client`, pinned
//! in `tests/interop/ts-client-dpop/package.json`), which speaks DPoP (RFC 9449, SEP-1932):
//! against the calendar example with `MCP_OAUTH_DPOP=required` and its embedded dev
//! authorization server, the client must get DPoP-bound tokens (client credentials,
//! authorization code + PKCE, refresh), present them with `Authorization: DPoP` and a proof on
//! every request, and follow a 403 `insufficient_scope` step-up. A bearer client is refused.
//!
//! The scripts log every exchange through a `fetch` wrapper beneath the SDK's DPoP layer, so
//! the summary shows what went on the wire: each request's `Authorization` scheme, its proof's
//! claims and key thumbprint, and each token response's `token_type` and `cnf.jkt`.
//!
//! Needs Node.js 20+ and npm (the tests fail, never skip, without them); `npm ci` runs once
//! per test process. The calendar binary comes from `target/<profile>/examples/`: a plain
//! `cargo test` builds it; before `cargo test --test ts_client_dpop`, run
//! `cargo build --examples`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use mcp_oauth::testing::DpopKey;
use serde_json::{Value, json};
use support::{
    Reply, Running, example_command, free_port, http_client, metadata_url, run_node_script,
    workspace_root,
};

/// How long a script may run (each also stops itself after 60 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
const ALL_SCOPES: &str = "calendar:read calendar:write calendar:admin";

fn ts_dir() -> PathBuf {
    workspace_root().join("tests/interop/ts-client-dpop")
}

/// The calendar example requiring DPoP, with its embedded dev server, on a free port.
fn start_calendar_requiring_dpop() -> (Running, String) {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut command = example_command("calendar");
    command
        .env("MCP_OAUTH_RESOURCE", &resource)
        .env("MCP_OAUTH_DPOP", "required");
    (Running::start_example("calendar", command), resource)
}

/// Runs `node <script> <args>` with `env`; asserts it succeeds and returns its JSON summary.
fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    run_node_script(&ts_dir(), script, args, env, SCRIPT_TIMEOUT)
}

/// Runs `client_credentials.mjs <mode>` with the calendar's dev client.
fn client_credentials(calendar: &Running, resource: &str, mode: &str) -> Value {
    let env = [
        ("MCP_URL", resource.to_owned()),
        ("CLIENT_ID", calendar.banner_value("dev client id:")),
        ("CLIENT_SECRET", calendar.banner_value("dev client secret:")),
        ("ISSUER", calendar.banner_value("issuer:")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_script("client_credentials.mjs", &[mode], &env)
}

/// The `jkt` of the script's DPoP session (its key's thumbprint, as the SDK computes it).
fn session_jkt(summary: &Value) -> &str {
    let jkt = summary["session"]["jkt"]
        .as_str()
        .unwrap_or_else(|| panic!("no DPoP session: {summary}"));
    assert_eq!(summary["session"]["alg"], "ES256", "{summary}");
    assert_eq!(jkt.len(), 43, "{summary}");
    jkt
}

/// Asserts the first exchanges are the discovery a client does from a `DPoP` 401 alone: the
/// challenge (scheme `DPoP`, with `algs` and `resource_metadata`), the protected-resource
/// metadata, then the authorization server's.
fn assert_discovery_from_a_dpop_401(http: &Value, resource: &str, issuer: &str) {
    let http = http.as_array().expect("an HTTP log");
    let first = &http[0];
    assert_eq!(
        (first["method"].as_str(), first["url"].as_str()),
        (Some("POST"), Some(resource)),
        "{first}"
    );
    assert_eq!(first["status"], 401, "{first}");
    assert!(first.get("auth_scheme").is_none(), "{first}");
    let challenge = first["www_authenticate"].as_str().expect("a challenge");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{}\"", metadata_url(resource))),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\""), "{challenge}");
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

/// Asserts a token request carried a proof by `jkt` for the token endpoint (no `ath`: there
/// is no access token yet) and got a DPoP-bound token: `token_type: DPoP`, `cnf.jkt` = `jkt`.
fn assert_bound_token_request(request: &Value, issuer: &str, jkt: &str) {
    let endpoint = format!("{issuer}/token");
    assert_eq!(request["url"], endpoint, "{request}");
    assert_eq!(request["status"], 200, "{request}");
    let proof = &request["dpop"];
    assert_eq!(proof["typ"], "dpop+jwt", "{request}");
    assert_eq!(proof["alg"], "ES256", "{request}");
    assert_eq!(proof["htm"], "POST", "{request}");
    assert_eq!(proof["htu"], endpoint, "{request}");
    assert_eq!(proof["has_jti"], true, "{request}");
    assert_eq!(proof["has_ath"], false, "{request}");
    assert_eq!(proof["jkt"], jkt, "{request}");
    let response = &request["response"];
    assert_eq!(response["token_type"], "DPoP", "{request}");
    assert_eq!(response["cnf_jkt"], jkt, "{request}");
}

/// The exchanges with the MCP endpoint that carried a token.
fn authorized_mcp_requests<'a>(http: &'a Value, resource: &str) -> Vec<&'a Value> {
    http.as_array()
        .expect("an HTTP log")
        .iter()
        .filter(|e| e["url"] == resource && e.get("auth_scheme").is_some())
        .collect()
}

/// Asserts every MCP request that carried a token presented it as `Authorization: DPoP` with a
/// proof by `jkt` for that request (method, URL, `ath` of that token), and at least `min` did.
fn assert_every_mcp_request_is_dpop(http: &Value, resource: &str, jkt: &str, min: usize) {
    let requests = authorized_mcp_requests(http, resource);
    assert!(requests.len() >= min, "{} < {min}: {http}", requests.len());
    for request in requests {
        assert_eq!(request["auth_scheme"], "DPoP", "{request}");
        let proof = &request["dpop"];
        assert_eq!(proof["typ"], "dpop+jwt", "{request}");
        assert_eq!(proof["htm"], request["method"], "{request}");
        assert_eq!(proof["htu"], resource, "{request}");
        assert_eq!(proof["has_ath"], true, "{request}");
        assert_eq!(proof["ath_matches"], true, "{request}");
        assert_eq!(proof["jkt"], jkt, "{request}");
        assert!(
            request["status"].as_u64().is_some_and(|s| s < 300)
                || request["status"] == 403
                    && request["www_authenticate"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("DPoP error=\"insufficient_scope\"")),
            "a DPoP request is refused only for scope: {request}"
        );
    }
}

/// The parsed `DPoP` step-up challenges of the summary.
fn assert_dpop_step_up_challenges(summary: &Value, resource: &str, needed: &str) {
    let challenges = summary["challenges"].as_array().expect("challenges");
    assert!(!challenges.is_empty(), "{summary}");
    for challenge in challenges {
        assert_eq!(challenge["scheme"], "DPoP", "{summary}");
        assert_eq!(challenge["error"], "insufficient_scope", "{summary}");
        assert_eq!(
            challenge["resource_metadata"],
            metadata_url(resource),
            "{summary}"
        );
        assert!(challenge["algs"].as_str().is_some(), "{summary}");
        let scope = challenge["scope"].as_str().unwrap();
        assert!(scope.split(' ').any(|s| s == needed), "{summary}");
    }
}

fn token_requests(summary: &Value) -> &Vec<Value> {
    summary["token_requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no token requests: {summary}"))
}

#[test]
fn the_typescript_client_gets_dpop_bound_tokens_with_client_credentials_and_calls_each_tool() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let summary = client_credentials(&calendar, &resource, "basic");
    let jkt = session_jkt(&summary);

    assert_discovery_from_a_dpop_401(&summary["http"], &resource, &issuer);
    // The SDK asks for the 401 challenge's scope first (SEP-835), then for more on each 403
    // (create_event, delete_calendar): every token request has a proof by the same key, and
    // every token is bound to it.
    let requests = token_requests(&summary);
    assert!(!requests.is_empty(), "{summary}");
    assert_eq!(requests[0]["scope"], "calendar:read", "{summary}");
    for request in requests {
        assert_eq!(request["grant_type"], "client_credentials", "{summary}");
        assert_eq!(request["resource"], resource, "{summary}");
        assert_bound_token_request(request, &issuer, jkt);
    }
    assert_eq!(summary["tokens"]["token_type"], "DPoP", "{summary}");
    assert_eq!(summary["tokens"]["cnf_jkt"], jkt, "{summary}");
    assert_eq!(summary["tokens"]["scope"], ALL_SCOPES, "{summary}");

    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tools,
        [
            "create_event",
            "delete_calendar",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    let calls: Vec<&str> = summary["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["tool"].as_str())
        .collect();
    assert_eq!(
        calls,
        [
            "list_events",
            "create_event",
            "delete_event",
            "whoami",
            "delete_calendar"
        ],
        "{summary}"
    );
    let whoami = &summary["calls"][3]["result"];
    assert_eq!(whoami["client_id"], calendar.banner_value("dev client id:"));
    assert_eq!(summary["calls"][2]["result"], json!({ "deleted": 1 }));

    // initialize, notifications/initialized, the GET stream, tools/list, five calls.
    assert_every_mcp_request_is_dpop(&summary["http"], &resource, jkt, 9);
    drop(calendar);
}

#[test]
fn the_typescript_client_follows_a_dpop_insufficient_scope_403_to_a_wider_bound_token() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let summary = client_credentials(&calendar, &resource, "step-up");
    let jkt = session_jkt(&summary);

    assert_eq!(summary["before"]["scope"], "calendar:read", "{summary}");
    assert_eq!(summary["before"]["token_type"], "DPoP", "{summary}");
    assert_dpop_step_up_challenges(&summary, &resource, "calendar:admin");

    // Two token requests, both with a proof by the session key: the first for calendar:read,
    // the second for what the challenge named (the SDK takes the union).
    let requests = token_requests(&summary);
    assert_eq!(requests.len(), 2, "{summary}");
    assert_eq!(requests[0]["scope"], "calendar:read", "{summary}");
    let widened = requests[1]["scope"].as_str().unwrap();
    assert!(
        widened.split(' ').any(|s| s == "calendar:admin"),
        "{summary}"
    );
    for request in requests {
        assert_eq!(request["grant_type"], "client_credentials", "{summary}");
        assert_bound_token_request(request, &issuer, jkt);
    }
    assert_eq!(summary["after"]["token_type"], "DPoP", "{summary}");
    assert_eq!(summary["after"]["cnf_jkt"], jkt, "{summary}");
    assert!(
        summary["delete_calendar"]["deleted"].is_u64(),
        "the retried call succeeded: {summary}"
    );

    // The refused call and its retry are both on the wire, both DPoP.
    let attempts: Vec<u64> = summary["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tool"] == "delete_calendar")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(attempts, [403, 200], "{summary}");
    assert_every_mcp_request_is_dpop(&summary["http"], &resource, jkt, 6);
    drop(calendar);
}

#[test]
fn the_typescript_client_completes_authorization_code_with_pkce_and_dpop_and_refreshes_bound() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let summary = run_script("auth_code.mjs", &["basic"], &[("MCP_URL", &resource)]);
    let jkt = session_jkt(&summary);

    assert_eq!(
        summary["first_connect_error"]["name"], "UnauthorizedError",
        "{summary}"
    );
    assert_discovery_from_a_dpop_401(&summary["http"], &resource, &issuer);
    let http = summary["http"].as_array().unwrap();
    assert!(
        http.iter()
            .any(|e| e["url"] == format!("{issuer}/register") && e["status"] == 201),
        "dynamic client registration: {summary}"
    );
    let client = &summary["registered_client"];
    let client_id = client["client_id"].as_str().expect("a client id");
    assert_eq!(client["token_endpoint_auth_method"], "none", "{summary}");
    assert_eq!(client["has_secret"], false, "{summary}");

    let authorizations = summary["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{summary}");
    let request = &authorizations[0]["request"];
    assert_eq!(authorizations[0]["status"], 302, "{summary}");
    assert_eq!(authorizations[0]["iss"], issuer, "{summary}");
    assert_eq!(request["code_challenge_method"], "S256", "{summary}");
    assert_eq!(request["has_code_challenge"], true, "{summary}");
    assert_eq!(request["resource"], resource, "{summary}");

    // The code exchange and the refresh each carried a proof by the session key; both tokens
    // are bound to it (a public client's refresh token too: the refresh needed that key).
    let requests = token_requests(&summary);
    let grants: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["grant_type"].as_str())
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"], "{summary}");
    for request in requests {
        assert_eq!(request["client_id"], client_id, "{summary}");
        assert_eq!(request["resource"], resource, "{summary}");
        assert_eq!(request["response"]["has_refresh_token"], true, "{summary}");
        assert_bound_token_request(request, &issuer, jkt);
    }
    assert_eq!(summary["refresh"]["result"], "AUTHORIZED", "{summary}");
    for tokens in [&summary["tokens"], &summary["refresh"]["tokens"]] {
        assert_eq!(tokens["token_type"], "DPoP", "{summary}");
        assert_eq!(tokens["cnf_jkt"], jkt, "{summary}");
    }

    assert!(
        summary["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "whoami"),
        "{summary}"
    );
    for whoami in [&summary["whoami"], &summary["whoami_after_refresh"]] {
        assert_eq!(whoami["subject"], "dev-user", "{summary}");
        assert_eq!(whoami["client_id"], client_id, "{summary}");
    }
    assert_every_mcp_request_is_dpop(&summary["http"], &resource, jkt, 6);
    drop(calendar);
}

#[test]
fn the_typescript_client_steps_up_an_authorization_code_grant_under_dpop() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let summary = run_script("auth_code.mjs", &["step-up"], &[("MCP_URL", &resource)]);
    let jkt = session_jkt(&summary);

    assert_eq!(summary["before"]["scope"], "calendar:read", "{summary}");
    assert_dpop_step_up_challenges(&summary, &resource, "calendar:write");
    // The 403 sent the user back to the authorization endpoint for the wider scope.
    let authorizations = summary["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 2, "{summary}");
    assert_eq!(
        authorizations[0]["request"]["scope"], "calendar:read",
        "{summary}"
    );
    let widened = authorizations[1]["request"]["scope"].as_str().unwrap();
    assert!(
        widened.split(' ').any(|s| s == "calendar:write"),
        "{summary}"
    );
    assert_eq!(
        summary["step_up_error"]["name"], "UnauthorizedError",
        "{summary}"
    );

    let requests = token_requests(&summary);
    assert_eq!(requests.len(), 2, "{summary}");
    for request in requests {
        assert_eq!(request["grant_type"], "authorization_code", "{summary}");
        assert_bound_token_request(request, &issuer, jkt);
    }
    assert_eq!(summary["after"]["token_type"], "DPoP", "{summary}");
    assert_eq!(summary["after"]["cnf_jkt"], jkt, "{summary}");
    assert_eq!(
        summary["create_event"]["created_by"], "dev-user",
        "{summary}"
    );
    assert!(
        summary["whoami"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "calendar:write"),
        "{summary}"
    );
    let attempts: Vec<u64> = summary["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tool"] == "create_event")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(attempts, [403, 200], "{summary}");
    assert_every_mcp_request_is_dpop(&summary["http"], &resource, jkt, 5);
    drop(calendar);
}

#[test]
fn a_typescript_client_without_dpop_gets_a_bearer_token_which_the_resource_refuses() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let summary = client_credentials(&calendar, &resource, "bearer");

    assert_eq!(summary["outcome"], "refused", "{summary}");
    assert_eq!(summary["error"]["status"], 401, "{summary}");
    let requests = token_requests(&summary);
    assert!(!requests.is_empty(), "{summary}");
    for request in requests {
        assert_eq!(request["url"], format!("{issuer}/token"), "{summary}");
        assert!(request.get("dpop").is_none(), "{summary}");
        assert_eq!(request["response"]["token_type"], "Bearer", "{summary}");
        assert!(request["response"]["cnf_jkt"].is_null(), "{summary}");
    }
    let presented = authorized_mcp_requests(&summary["http"], &resource);
    assert!(!presented.is_empty(), "{summary}");
    for request in presented {
        assert_eq!(request["auth_scheme"], "Bearer", "{request}");
        assert_eq!(request["status"], 401, "{request}");
        let challenge = request["www_authenticate"].as_str().unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
    }
    drop(calendar);
}

/// The `initialize` request body of the 2025-06-18 protocol.
fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "ts_client_dpop.rs", "version": "1" },
        },
    })
}

async fn post_mcp(resource: &str, authorization: &str, proof: Option<&str>) -> Reply {
    let mut request = http_client()
        .post(resource)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize().to_string());
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// From the Rust side, without the SDK: in required mode the resource refuses a bearer token
/// (the banner's) and a DPoP-bound token presented as `Bearer`, and takes the bound token
/// with the `DPoP` scheme and a proof.
#[tokio::test]
async fn in_required_mode_bearer_is_refused_and_a_bound_token_needs_its_proof() {
    let (calendar, resource) = start_calendar_requiring_dpop();
    let issuer = calendar.banner_value("issuer:");
    let banner_token = calendar.banner_value("read-only token (calendar:read):");

    let metadata = Reply::read(
        http_client()
            .get(metadata_url(&resource))
            .send()
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(metadata["dpop_bound_access_tokens_required"], true);
    assert!(metadata["dpop_signing_alg_values_supported"].is_array());

    let refused = post_mcp(&resource, &format!("Bearer {banner_token}"), None).await;
    assert_eq!(refused.status, 401, "{}", refused.describe());
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("DPoP ")),
        "{}",
        refused.describe()
    );

    // A DPoP-bound token from the dev server's token endpoint.
    let key = DpopKey::es256();
    let token_endpoint = format!("{issuer}/token");
    let response = http_client()
        .post(&token_endpoint)
        .basic_auth(
            calendar.banner_value("dev client id:"),
            Some(calendar.banner_value("dev client secret:")),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", key.proof("POST", &token_endpoint, None))
        .body(format!(
            "grant_type=client_credentials&resource={}",
            url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    let issued = Reply::read(response).await;
    assert_eq!(issued.status, 200, "{}", issued.describe());
    let issued = issued.json();
    assert_eq!(issued["token_type"], "DPoP", "{issued}");
    let token = issued["access_token"].as_str().unwrap();

    let as_bearer = post_mcp(&resource, &format!("Bearer {token}"), None).await;
    assert_eq!(as_bearer.status, 401, "{}", as_bearer.describe());
    let without_proof = post_mcp(&resource, &format!("DPoP {token}"), None).await;
    assert_eq!(without_proof.status, 401, "{}", without_proof.describe());
    let other_key = DpopKey::es256().proof("POST", &resource, Some(token));
    let stolen = post_mcp(&resource, &format!("DPoP {token}"), Some(&other_key)).await;
    assert_eq!(stolen.status, 401, "{}", stolen.describe());

    let proof = key.proof("POST", &resource, Some(token));
    let accepted = post_mcp(&resource, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!(accepted.status, 200, "{}", accepted.describe());
    assert!(
        accepted.json()["result"]["serverInfo"].is_object(),
        "{}",
        accepted.describe()
    );
    // The same proof again is a replay.
    let replayed = post_mcp(&resource, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!(replayed.status, 401, "{}", replayed.describe());
    drop(calendar);
}
