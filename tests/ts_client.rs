//! Interop with the official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, pinned in
//! `tests/interop/ts-client/package.json`): its OAuth client, pointed at nothing but the
//! calendar example's MCP URL, must discover the rest from the 401 and get through.
//!
//! Needs Node.js and npm (the tests fail, never skip, without them); `npm ci` runs once per
//! test process. The calendar binary comes from `target/<profile>/examples/`: a plain
//! `cargo test` builds it; before `cargo test --test ts_client`, run `cargo build --examples`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use support::{metadata_url, run_node_script, start_calendar_with_dev_server, workspace_root};

/// How long a script may run (each also stops itself after 45 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn ts_dir() -> PathBuf {
    workspace_root().join("tests/interop/ts-client")
}

/// Runs `node <script> <args>` with `env`; asserts it succeeds and returns its JSON summary.
fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    run_node_script(&ts_dir(), script, args, env, SCRIPT_TIMEOUT)
}

fn challenge(header: &Value) -> Vec<(String, String)> {
    let header = header
        .as_str()
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {header}"));
    mcp_oauth::challenge::parse(header)
        .unwrap_or_else(|| panic!("not a Bearer challenge: {header}"))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts the first exchanges are the discovery a client does from a 401 alone: the
/// challenge, the protected-resource metadata it points to, then the authorization server
/// metadata of the issuer that document names.
fn assert_discovery_from_the_401(http: &Value, resource: &str, issuer: &str) {
    let http = http.as_array().expect("an HTTP log");
    let first = &http[0];
    assert_eq!(
        (first["method"].as_str(), first["url"].as_str()),
        (Some("POST"), Some(resource)),
        "{first}"
    );
    assert_eq!(first["status"], 401, "{first}");
    let params = challenge(&first["www_authenticate"]);
    assert_eq!(
        param(&params, "resource_metadata"),
        Some(metadata_url(resource).as_str()),
        "{params:?}"
    );
    assert_eq!(http[1]["method"], "GET", "{}", http[1]);
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

#[test]
fn the_typescript_sdk_discovers_everything_from_a_401_and_calls_each_tool_with_client_credentials()
{
    let (calendar, resource) = start_calendar_with_dev_server();
    let issuer = calendar.banner_value("issuer:");
    let client_id = calendar.banner_value("dev client id:");
    let client_secret = calendar.banner_value("dev client secret:");

    let summary = run_script(
        "client_credentials.mjs",
        &[],
        &[
            ("MCP_URL", &resource),
            ("CLIENT_ID", &client_id),
            ("CLIENT_SECRET", &client_secret),
            ("ISSUER", &issuer),
            ("SCOPE", "calendar:read calendar:write calendar:admin"),
        ],
    );
    assert_discovery_from_the_401(&summary["http"], &resource, &issuer);
    let requests = summary["token_requests"]
        .as_array()
        .expect("token requests");
    assert_eq!(requests.len(), 1, "{summary}");
    assert_eq!(requests[0]["url"], format!("{issuer}/token"), "{summary}");
    assert_eq!(requests[0]["grant_type"], "client_credentials", "{summary}");
    assert_eq!(
        requests[0]["resource"], resource,
        "RFC 8707 resource = the MCP URL: {summary}"
    );
    assert_eq!(requests[0]["status"], 200, "{summary}");

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
    let create = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "create_event")
        .unwrap();
    assert_eq!(
        create["scopes"],
        json!(["calendar:write"]),
        "per-tool scopes in _meta: {summary}"
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
    assert_eq!(summary["skipped"], json!([]), "{summary}");
    let whoami = &summary["calls"][3]["result"];
    assert_eq!(whoami["client_id"], client_id, "{summary}");
    assert_eq!(
        whoami["subject"], client_id,
        "a client_credentials token's subject: {summary}"
    );
    assert_eq!(
        summary["calls"][2]["result"],
        json!({ "deleted": 1 }),
        "{summary}"
    );

    let statuses: Vec<(&str, u64)> = summary["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["url"] == resource.as_str())
        .filter_map(|e| Some((e["rpc"].as_str().unwrap_or("GET"), e["status"].as_u64()?)))
        .collect();
    assert!(
        statuses.iter().skip(1).all(|(_, s)| *s < 300),
        "once authorized, nothing is refused: {statuses:?}"
    );
    drop(calendar);
}

#[test]
fn the_typescript_sdk_surfaces_a_403_insufficient_scope_and_a_client_with_the_scope_succeeds() {
    let (calendar, resource) = start_calendar_with_dev_server();
    let issuer = calendar.banner_value("issuer:");
    let summary = run_script(
        "client_credentials.mjs",
        &["step-up"],
        &[
            ("MCP_URL", &resource),
            ("CLIENT_ID", &calendar.banner_value("dev client id:")),
            (
                "CLIENT_SECRET",
                &calendar.banner_value("dev client secret:"),
            ),
            ("ISSUER", &issuer),
        ],
    );
    let limited = &summary["limited"];
    assert_eq!(limited["registered_scope"], "calendar:read", "{summary}");
    assert_eq!(
        limited["granted_scopes"],
        json!(["calendar:read"]),
        "{summary}"
    );
    assert_discovery_from_the_401(&limited["http"], &resource, &issuer);

    // What the SDK (1.32.2) surfaces: on the 403 it re-runs auth() once (a client-credentials
    // provider asks for its configured scope again), retries, and gives up with a
    // StreamableHTTPError whose code is the HTTP status.
    assert_eq!(limited["error"]["name"], "StreamableHTTPError", "{summary}");
    assert_eq!(limited["error"]["code"], 403, "{summary}");
    assert!(
        limited["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("403")),
        "{summary}"
    );
    let challenges = limited["challenges"]
        .as_array()
        .expect("the 403 challenges");
    assert!(!challenges.is_empty(), "{summary}");
    for challenge in challenges {
        assert_eq!(challenge["error"], "insufficient_scope", "{summary}");
        assert_eq!(
            challenge["scope"], "calendar:admin calendar:read",
            "{summary}"
        );
        assert_eq!(
            challenge["resource_metadata"],
            metadata_url(&resource),
            "{summary}"
        );
    }
    for request in limited["token_requests"].as_array().unwrap() {
        assert_eq!(request["scope"], "calendar:read", "{summary}");
        assert_eq!(request["resource"], resource, "{summary}");
    }

    let admin = &summary["admin"];
    assert_eq!(
        admin["granted_scopes"],
        json!(["calendar:admin"]),
        "{summary}"
    );
    assert!(admin["delete_calendar"]["deleted"].is_u64(), "{summary}");
    drop(calendar);
}

#[test]
fn the_typescript_sdk_completes_the_authorization_code_flow_with_pkce_and_dynamic_registration() {
    let (calendar, resource) = start_calendar_with_dev_server();
    let issuer = calendar.banner_value("issuer:");
    let summary = run_script("auth_code.mjs", &[], &[("MCP_URL", &resource)]);

    assert_eq!(
        summary["first_connect_error"]["name"], "UnauthorizedError",
        "{summary}"
    );
    assert_discovery_from_the_401(&summary["http"], &resource, &issuer);
    let http = summary["http"].as_array().unwrap();
    assert!(
        http.iter()
            .any(|e| e["url"] == format!("{issuer}/register") && e["status"] == 201),
        "dynamic client registration: {summary}"
    );

    let client = &summary["registered_client"];
    let client_id = client["client_id"]
        .as_str()
        .expect("a registered client id");
    assert_ne!(client_id, "dev-client", "{summary}");
    assert_eq!(client["token_endpoint_auth_method"], "none", "{summary}");
    assert_eq!(client["has_secret"], false, "{summary}");

    let authorizations = summary["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{summary}");
    let authorization = &authorizations[0];
    assert_eq!(
        authorization["endpoint"],
        format!("{issuer}/authorize"),
        "{summary}"
    );
    assert_eq!(authorization["status"], 302, "{summary}");
    assert_eq!(
        authorization["iss"], issuer,
        "RFC 9207 iss in the response: {summary}"
    );
    let request = &authorization["request"];
    assert_eq!(request["response_type"], "code", "{summary}");
    assert_eq!(request["client_id"], client_id, "{summary}");
    assert_eq!(request["code_challenge_method"], "S256", "{summary}");
    assert_eq!(request["has_code_challenge"], true, "{summary}");
    assert_eq!(request["resource"], resource, "{summary}");

    let exchange = http
        .iter()
        .find(|e| e["form"]["grant_type"] == "authorization_code")
        .unwrap_or_else(|| panic!("no code exchange: {summary}"));
    assert_eq!(exchange["status"], 200, "{summary}");
    assert_eq!(exchange["form"]["resource"], resource, "{summary}");
    assert!(
        summary["tokens"]["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{summary}"
    );
    assert_eq!(summary["tokens"]["has_refresh_token"], true, "{summary}");

    assert!(
        summary["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "whoami"),
        "{summary}"
    );
    assert_eq!(summary["whoami"]["subject"], "dev-user", "{summary}");
    assert_eq!(summary["whoami"]["client_id"], client_id, "{summary}");

    // The scope the SDK asked for came from the 401 challenge; create_event needs more. The
    // server's answer is a 403 step-up challenge naming calendar:write. SDK 1.32.2 then
    // refreshes its token (same scope), retries, and surfaces a StreamableHTTPError 403.
    let step_up = &summary["step_up"];
    for header in step_up["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h.is_null())
    {
        let params = challenge(header);
        assert_eq!(
            param(&params, "error"),
            Some("insufficient_scope"),
            "{summary}"
        );
        assert_eq!(
            param(&params, "scope"),
            Some("calendar:read calendar:write"),
            "{summary}"
        );
    }
    if step_up["outcome"] == "refused" {
        assert_eq!(step_up["error"]["code"], 403, "{summary}");
    }
    drop(calendar);
}
