//! `#[mcp_tool]` end to end through rmcp's streamable HTTP server on loopback: the guard that
//! the macro injects refuses a call whose token lacks the tool's scopes *inside rmcp* (the
//! HTTP layer here has no tool table, so it does not step in first), the tool body does not
//! run, and with the scopes it runs and sees the identity. The server is the example's.

#[path = "../examples/calendar/server.rs"]
#[allow(dead_code)]
mod server;

use mcp_oauth::http::OAuthLayer;
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::tools::{ToolRequirement, ToolTable};
use mcp_oauth::{IssuerPolicy, Validator};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use server::Calendar;

struct Running {
    issuer: TestIssuer,
    resource: String,
    http: reqwest::Client,
}

/// The calendar behind the OAuth layer; `tools` is the layer's step-up table.
async fn start(tools: ToolTable) -> Running {
    start_calendar(tools, Calendar::new()).await
}

async fn start_calendar(tools: ToolTable, calendar: Calendar) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let config = ResourceConfig::of::<Calendar>()
        .resource(&resource)
        .authorization_servers([issuer.issuer()]);
    let validator = Validator::new(
        IssuerPolicy::builder(issuer.issuer())
            .audience(&resource)
            .jwks_uri(issuer.jwks_uri())
            .build()
            .unwrap(),
    )
    .unwrap();
    let layer = OAuthLayer::builder(config, validator)
        .tools(tools)
        .build()
        .unwrap();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = true;
    let mcp = StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let app = tower::Layer::layer(&layer, axum::Router::new().route_service("/mcp", mcp));
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(app),
        )
        .await
        .unwrap();
    });
    Running {
        issuer,
        resource,
        http: mcp_oauth::testing::http_client(),
    }
}

impl Running {
    async fn post(&self, token: &str, session: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let data = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| !d.is_empty());
        let mut value = data
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        if let Some(id) = session_id {
            value["session"] = json!(id);
        }
        (status, value)
    }

    async fn session(&self, token: &str) -> String {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let (status, value) = self.post(token, None, init).await;
        assert_eq!(status, 200);
        let session = value["session"].as_str().unwrap().to_owned();
        let (status, _) = self
            .post(
                token,
                Some(&session),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(status, 202);
        session
    }

    async fn call(&self, token: &str, session: &str, tool: &str, arguments: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
        let (status, value) = self.post(token, Some(session), body).await;
        assert_eq!(status, 200, "{value}");
        value
    }
}

fn text_of(result: &Value) -> Value {
    serde_json::from_str(
        result["result"]["content"][0]["text"]
            .as_str()
            .expect("a text result"),
    )
    .unwrap()
}

#[tokio::test]
async fn a_call_without_the_scope_is_refused_by_the_guard_and_the_body_does_not_run() {
    let server = start(ToolTable::default()).await;
    let reader = server.issuer.token().scope("calendar:read").sign();
    let session = server.session(&reader).await;
    let refused = server
        .call(&reader, &session, "delete_calendar", json!({}))
        .await;
    assert_eq!(
        refused["error"]["data"]["error"], "insufficient_scope",
        "{refused}"
    );
    assert_eq!(refused["error"]["data"]["scope"], "calendar:admin");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("calendar:admin")
    );
    // The side effect did not happen: the seeded event is still there.
    let events = text_of(
        &server
            .call(&reader, &session, "list_events", json!({}))
            .await,
    );
    assert_eq!(events.as_array().unwrap().len(), 1);
    let refused = server
        .call(
            &reader,
            &session,
            "create_event",
            json!({"title": "x", "when": "now"}),
        )
        .await;
    assert_eq!(refused["error"]["data"]["error"], "insufficient_scope");
    let events = text_of(
        &server
            .call(&reader, &session, "list_events", json!({}))
            .await,
    );
    assert_eq!(
        events.as_array().unwrap().len(),
        1,
        "create_event did not run"
    );
}

#[tokio::test]
async fn with_the_scope_the_tool_runs_and_sees_the_identity() {
    let server = start(ToolTable::default()).await;
    let writer = server
        .issuer
        .token()
        .subject("alice")
        .scope("calendar:write")
        .sign();
    let session = server.session(&writer).await;
    let created = text_of(
        &server
            .call(
                &writer,
                &session,
                "create_event",
                json!({"title": "Review", "when": "Friday"}),
            )
            .await,
    );
    assert_eq!(created["created_by"], "alice");
    // calendar:write implies calendar:read.
    let events = text_of(
        &server
            .call(&writer, &session, "list_events", json!({}))
            .await,
    );
    assert_eq!(events.as_array().unwrap().len(), 2);
    let me = text_of(&server.call(&writer, &session, "whoami", json!({})).await);
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["client_id"], "test-client");
    let admin = server
        .issuer
        .token()
        .subject("root")
        .scope("calendar:admin")
        .sign();
    let session = server.session(&admin).await;
    let deleted = text_of(
        &server
            .call(&admin, &session, "delete_calendar", json!({}))
            .await,
    );
    assert_eq!(deleted["deleted"], 2);
}

#[tokio::test]
async fn the_table_read_from_the_router_holds_exactly_the_annotated_tools() {
    let table = mcp_oauth::rmcp::tool_table(&Calendar::tool_router());
    let mut names: Vec<&str> = table.iter().map(|(name, _)| name).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "create_event",
            "delete_calendar",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    let scopes = |tool| match table.requirement(tool) {
        ToolRequirement::Scopes(scopes) => scopes.to_space_separated(),
        ToolRequirement::Unannotated => panic!("{tool} is annotated"),
    };
    assert_eq!(scopes("list_events"), "calendar:read");
    assert_eq!(scopes("public_holidays"), "calendar:read");
    assert_eq!(scopes("create_event"), "calendar:write");
    assert_eq!(scopes("delete_calendar"), "calendar:admin");
    assert_eq!(scopes("whoami"), "");
}

#[tokio::test]
async fn a_disabled_tool_keeps_its_scopes_in_the_table() {
    // Issue #10: a tool disabled when the table is read and enabled later must not become
    // "unannotated" (resource-wide scopes only).
    let mut router = Calendar::tool_router();
    assert!(router.disable_route("delete_calendar"));
    assert!(router.get("delete_calendar").is_none());
    let table = mcp_oauth::rmcp::tool_table(&router);
    match table.requirement("delete_calendar") {
        ToolRequirement::Scopes(scopes) => {
            assert_eq!(scopes.to_space_separated(), "calendar:admin")
        }
        ToolRequirement::Unannotated => panic!("a disabled tool lost its scopes"),
    }
}

#[tokio::test]
async fn with_the_router_table_the_layer_steps_up_before_dispatch() {
    let server = start(mcp_oauth::rmcp::tool_table(&Calendar::tool_router())).await;
    let reader = server.issuer.token().scope("calendar:read").sign();
    let session = server.session(&reader).await;
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_calendar", "arguments": {}}});
    let (status, _) = server.post(&reader, Some(&session), body).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn without_the_layer_every_guarded_tool_fails_closed() {
    // Misconfiguration: the rmcp service is served without the OAuth layer. No identity
    // reaches the tools, so every guarded call is refused, whatever the client sends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let calendar = Calendar::new();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = true;
    let mcp = StreamableHttpService::new(
        move || Ok(calendar.clone()),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let app = axum::Router::new().route_service("/mcp", mcp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let issuer = TestIssuer::start().await;
    let server = Running {
        issuer,
        resource,
        http: mcp_oauth::testing::http_client(),
    };
    let token = server.issuer.token().scope("calendar:admin").sign();
    let session = server.session(&token).await;
    for tool in ["list_events", "whoami", "delete_calendar"] {
        let refused = server.call(&token, &session, tool, json!({})).await;
        assert_eq!(
            refused["error"]["data"]["error"], "invalid_token",
            "{tool}: {refused}"
        );
    }
}

#[tokio::test]
async fn tools_list_can_be_filtered_to_what_the_token_may_call() {
    let table = mcp_oauth::rmcp::tool_table(&Calendar::tool_router());
    let server = start_calendar(table, Calendar::new().filtering_tools(true)).await;
    let list = |token: String| {
        let server = &server;
        async move {
            let session = server.session(&token).await;
            let (status, value) = server
                .post(
                    &token,
                    Some(&session),
                    json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
                )
                .await;
            assert_eq!(status, 200);
            let mut names: Vec<String> = value["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        list(server.issuer.token().scope("calendar:read").sign()).await,
        ["list_events", "public_holidays", "whoami"]
    );
    assert_eq!(
        list(server.issuer.token().scope("calendar:write").sign()).await,
        [
            "create_event",
            "delete_event",
            "list_events",
            "public_holidays",
            "whoami"
        ]
    );
    assert_eq!(
        list(server.issuer.token().scope("calendar:admin").sign())
            .await
            .len(),
        6
    );
}
