//! State handles never stand in for authentication (SPEC vector 18): with a real rmcp event
//! store, `Last-Event-ID` never replays another principal's events, in the session-less
//! (2026-07-28) and the session (legacy) modes; a task id polled by another principal reaches
//! the server as an id it never issued.
#![cfg(all(feature = "layer", feature = "rmcp"))]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mcp_oauth::http::{OAuthLayer, TaskIds};
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::{IssuerPolicy, Validator};
use parking_lot::Mutex;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    EventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

mod calendar;
mod peer;

use calendar::{CALENDAR, Calendar, tool_table};

/// An in-memory event store as rmcp specifies one: globally unique ids, replay by id alone.
#[derive(Default)]
struct MemoryEventStore {
    events: Mutex<Vec<(EventId, String, ServerSseMessage)>>,
    /// Every id a replay was asked for.
    replays: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl EventStore for MemoryEventStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        let mut events = self.events.lock();
        let id = format!("e{}", events.len());
        let mut stored = event.clone();
        stored.event_id = Some(id.clone());
        events.push((id.clone(), stream_id.to_owned(), stored));
        Ok(id)
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        self.replays.lock().push(last_event_id.to_owned());
        let events = self.events.lock();
        let Some(position) = events.iter().position(|(id, ..)| id == last_event_id) else {
            return Err("unknown event id".into());
        };
        let stream = events[position].1.clone();
        let later: Vec<ServerSseMessage> = events[position + 1..]
            .iter()
            .filter(|(_, s, _)| *s == stream)
            .map(|(_, _, event)| event.clone())
            .collect();
        Ok(Box::pin(futures::stream::iter(later)))
    }
}

struct Server {
    issuer: TestIssuer,
    resource: String,
    store: Arc<MemoryEventStore>,
    http: reqwest::Client,
}

async fn start(legacy_sessions: bool) -> Server {
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
    let store = Arc::new(MemoryEventStore::default());
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.legacy_session_mode = legacy_sessions;
    mcp_config.json_response = false;
    mcp_config.sse_retry = Some(Duration::from_secs(3));
    let events = Arc::new(parking_lot::Mutex::new(vec!["standup".to_owned()]));
    let mcp = StreamableHttpService::new(
        move || Ok(Calendar::new(events.clone())),
        Arc::new(LocalSessionManager::default().with_event_store(store.clone())),
        mcp_config,
    );
    let app = tower_layer::Layer::layer(&layer, axum::Router::new().route_service("/mcp", mcp));
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service_with_connect_info::<
                SocketAddr,
            >(peer::with_peer(app)),
        )
        .await
        .unwrap();
    });
    Server {
        issuer,
        resource,
        store,
        http: mcp_oauth::testing::http_client(),
    }
}

/// The `id:` values of an event stream.
fn event_ids(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
        .collect()
}

impl Server {
    fn token_for(&self, subject: &str) -> String {
        self.issuer
            .token()
            .subject(subject)
            .scope("calendar:read")
            .sign()
    }

    async fn post(
        &self,
        token: &str,
        version: &str,
        session: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let method = body["method"].as_str().unwrap().to_owned();
        let mut request = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", version)
            .header("mcp-method", &method)
            .body(body.to_string());
        if let Some(name) = body["params"]["name"].as_str() {
            request = request.header("mcp-name", name);
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    async fn resume(&self, token: &str, session: Option<&str>, last_event_id: &str) -> String {
        let mut request = self
            .http
            .get(&self.resource)
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .header("last-event-id", last_event_id);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        // A finite replay: read what comes within a moment (rmcp may keep the stream open).
        let mut body = String::new();
        let mut response = response;
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_millis(500), response.chunk()).await
        {
            body.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        body
    }

    fn stored_ids(&self) -> Vec<String> {
        self.store
            .events
            .lock()
            .iter()
            .map(|(id, ..)| id.clone())
            .collect()
    }
}

fn list_events() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": "list_events", "arguments": {}}})
}

/// `list_events` as a 2026-07-28 client sends it: no session, the protocol in `_meta`.
fn list_events_stateless() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": "list_events", "arguments": {}, "_meta": {
               "io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {},
               "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}})
}

/// Each sealed id in `body`, checked to be no stored id (what leaves is sealed).
fn sealed_ids(server: &Server, body: &str) -> Vec<String> {
    let ids = event_ids(body);
    assert!(!ids.is_empty(), "no event ids in {body}");
    let stored = server.stored_ids();
    for id in &ids {
        assert!(!stored.contains(id), "a raw store id left the layer: {id}");
        let (raw, tag) = id.rsplit_once('.').unwrap();
        assert!(stored.contains(&raw.to_owned()) && tag.len() == 22, "{id}");
    }
    ids
}

#[tokio::test]
async fn sessionless_resumption_replays_only_the_principals_own_events() {
    let server = start(false).await;
    let alice = server.token_for("alice");
    let mallory = server.token_for("mallory");
    let response = server
        .post(&alice, "2026-07-28", None, list_events_stateless())
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let ids = sealed_ids(&server, &body);
    let first = &ids[0];

    // Alice resumes after the priming event and gets her result again.
    let replay = server.resume(&alice, None, first).await;
    assert!(replay.contains("standup"), "{replay}");

    // Mallory presents Alice's id, sealed or raw: nothing.
    let before = server.store.replays.lock().len();
    assert_eq!(server.resume(&mallory, None, first).await, "");
    let (raw, _) = first.rsplit_once('.').unwrap();
    assert_eq!(server.resume(&mallory, None, raw).await, "");
    // Whatever reached the store names no stored event.
    let stored = server.stored_ids();
    for asked in &server.store.replays.lock()[before..] {
        assert!(
            !stored.contains(asked),
            "replayed {asked} for another principal"
        );
    }
}

#[tokio::test]
async fn session_resumption_replays_only_the_principals_own_events() {
    let server = start(true).await;
    let alice = server.token_for("alice");
    let mallory = server.token_for("mallory");
    let initialize = |id: u32| {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
    };
    let mut sessions = HashMap::new();
    for (who, token) in [("alice", &alice), ("mallory", &mallory)] {
        let response = server.post(token, "2025-06-18", None, initialize(1)).await;
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.text().await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = server
            .post(token, "2025-06-18", Some(&session), initialized)
            .await;
        assert!(ack.status().is_success());
        sessions.insert(who, session);
    }
    let response = server
        .post(
            &alice,
            "2025-06-18",
            Some(&sessions["alice"]),
            list_events(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let ids = sealed_ids(&server, &body);
    let first = &ids[0];

    let replay = server.resume(&alice, Some(&sessions["alice"]), first).await;
    assert!(replay.contains("standup"), "{replay}");

    // Mallory, in her own session, presents Alice's id, sealed or raw: nothing.
    let before = server.store.replays.lock().len();
    let theirs = server
        .resume(&mallory, Some(&sessions["mallory"]), first)
        .await;
    assert!(!theirs.contains("standup"), "{theirs}");
    let (raw, _) = first.rsplit_once('.').unwrap();
    let raw_replay = server
        .resume(&mallory, Some(&sessions["mallory"]), raw)
        .await;
    assert!(!raw_replay.contains("standup"), "{raw_replay}");
    let stored = server.stored_ids();
    for asked in &server.store.replays.lock()[before..] {
        assert!(
            !stored.contains(asked),
            "replayed {asked} for another principal"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Task ids.

/// An endpoint that records the task id and `Mcp-Name` it is handed, and the `TaskIds` of
/// each request.
/// A task id the endpoint was handed, and the `Mcp-Name` beside it.
type SeenTask = (String, Option<String>);

#[derive(Clone, Default)]
struct TaskProbe {
    seen: Arc<Mutex<Vec<SeenTask>>>,
    sealers: Arc<Mutex<Vec<TaskIds>>>,
}

impl tower_service::Service<http::Request<axum::body::Body>> for TaskProbe {
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let probe = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            if let Some(ids) = parts.extensions.get::<TaskIds>() {
                probe.sealers.lock().push(ids.clone());
            }
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .unwrap()
                .to_bytes();
            let message: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            if let Some(id) = message["params"]["taskId"].as_str() {
                let name = parts
                    .headers
                    .get("mcp-name")
                    .map(|v| v.to_str().unwrap().to_owned());
                probe.seen.lock().push((id.to_owned(), name));
            }
            Ok(http::Response::new(axum::body::Body::from("{}")))
        })
    }
}

#[tokio::test]
async fn a_task_id_reaches_the_server_only_for_the_principal_it_was_sealed_for() {
    let resource = "http://127.0.0.1:9/mcp";
    let issuer = TestIssuer::builder().audience(resource).start().await;
    let config = ResourceConfig::from_declaration(&CALENDAR)
        .unwrap()
        .resource(resource)
        .authorization_servers([issuer.issuer()]);
    let validator = Validator::new(
        IssuerPolicy::builder(issuer.issuer())
            .audience(resource)
            .jwks_uri(issuer.jwks_uri())
            .build()
            .unwrap(),
    )
    .unwrap();
    let layer = OAuthLayer::builder(config, validator)
        .tools(tool_table())
        .build()
        .unwrap();
    let probe = TaskProbe::default();
    let mut service = tower_layer::Layer::layer(&layer, probe.clone());
    let token = |subject: &str| {
        issuer
            .token()
            .subject(subject)
            .scope("calendar:read")
            .sign()
    };
    let alice = token("alice");
    let mallory = token("mallory");
    let call = |token: &str, task_id: &str, method: &str| {
        http::Request::post(resource)
            .header("host", "127.0.0.1:9")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("mcp-method", method)
            .header("mcp-name", task_id)
            .extension(mcp_oauth::http::PeerAddr("127.0.0.1:5000".parse().unwrap()))
            .body(axum::body::Body::from(
                json!({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": {"taskId": task_id}})
                .to_string(),
            ))
            .unwrap()
    };
    // Alice's first request: the server mints a task and seals its id with her TaskIds.
    let response = tower_service::Service::call(&mut service, call(&alice, "x", "tasks/get"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sealed = probe.sealers.lock()[0].seal("task-42");
    assert_ne!(sealed, "task-42");

    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        probe.seen.lock().clear();
        // Alice polls with the sealed id: the server sees its own id, header and body alike.
        tower_service::Service::call(&mut service, call(&alice, &sealed, method))
            .await
            .unwrap();
        // Mallory presents it sealed, then raw: the server sees ids it never issued.
        tower_service::Service::call(&mut service, call(&mallory, &sealed, method))
            .await
            .unwrap();
        tower_service::Service::call(&mut service, call(&mallory, "task-42", method))
            .await
            .unwrap();
        let seen = probe.seen.lock().clone();
        assert_eq!(seen.len(), 3, "{method}");
        assert_eq!(
            seen[0],
            ("task-42".to_owned(), Some("task-42".to_owned())),
            "{method}"
        );
        for (id, name) in &seen[1..] {
            assert_ne!(id, "task-42", "{method}");
            assert_eq!(name.as_deref(), Some(id.as_str()), "{method}");
        }
    }
}
