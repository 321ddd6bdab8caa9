//! The layer in front of rmcp's other serving modes: stateless (`legacy_session_mode = false`)
//! with JSON and SSE responses. Step-up and identity hand-off work the same without sessions.
#![cfg(all(feature = "layer", feature = "rmcp"))]

use std::sync::Arc;

use mcp_oauth::http::OAuthLayer;
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::{IssuerPolicy, Validator};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

mod calendar;
mod peer;

use calendar::{CALENDAR, Calendar, tool_table};

struct Stateless {
    issuer: TestIssuer,
    resource: String,
    events: Arc<parking_lot::Mutex<Vec<String>>>,
    http: reqwest::Client,
}

async fn start_stateless(json_response: bool) -> Stateless {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let config = ResourceConfig::from_declaration(&CALENDAR)
        .unwrap()
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
        .tools(tool_table())
        .build()
        .unwrap();
    let events = Arc::new(parking_lot::Mutex::new(vec!["standup".to_owned()]));
    let server_events = events.clone();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = false;
    mcp_config.json_response = json_response;
    let mcp = StreamableHttpService::new(
        move || Ok(Calendar::new(server_events.clone())),
        LocalSessionManager::default().into(),
        mcp_config,
    );
    let app = tower_layer::Layer::layer(&layer, axum::Router::new().route_service("/mcp", mcp));
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(peer::with_peer(app)),
        )
        .await
        .unwrap();
    });
    Stateless {
        issuer,
        resource,
        events,
        http: mcp_oauth::testing::http_client(),
    }
}

impl Stateless {
    async fn call(&self, token: &str, tool: &str, arguments: Value) -> (u16, String, String) {
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
        let response = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }
}

fn result_text(body: &str) -> Value {
    let data = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty());
    let message: Value =
        serde_json::from_str(data.unwrap_or(body)).unwrap_or_else(|_| panic!("{body}"));
    message["result"]["content"][0]["text"].clone()
}

async fn stateless_mode_contract(json_response: bool) {
    let server = start_stateless(json_response).await;
    let reader = server.issuer.token().scope("calendar:read").sign();
    let (status, content_type, body) = server.call(&reader, "list_events", json!({})).await;
    assert_eq!(status, 200, "{body}");
    if json_response {
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
    } else {
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
    }
    assert_eq!(result_text(&body), "standup");
    let (status, _, body) = server.call(&reader, "whoami", json!({})).await;
    assert_eq!(status, 200);
    let seen: Value = serde_json::from_str(result_text(&body).as_str().unwrap()).unwrap();
    assert_eq!(seen["subject"], "user-123");
    assert_eq!(seen["saw_authorization_header"], false);
    let (status, _, _) = server.call(&reader, "delete_calendar", json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(server.events.lock().len(), 1);
    let admin = server.issuer.token().scope("calendar:admin").sign();
    let (status, _, _) = server.call(&admin, "delete_calendar", json!({})).await;
    assert_eq!(status, 200);
    assert!(server.events.lock().is_empty());
    let (status, _, _) = server.call("not-a-token", "list_events", json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn stateless_mode_with_sse_responses() {
    stateless_mode_contract(false).await;
}

#[tokio::test]
async fn stateless_mode_with_json_responses() {
    stateless_mode_contract(true).await;
}
