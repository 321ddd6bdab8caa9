//! Scopes for every MCP operation, through rmcp's streamable HTTP server behind the layer:
//! tools, prompts, resources and resource templates, completions and methods, each refused
//! with the exact 403 challenge of each protocol generation and allowed with the right
//! scopes; lists filtered and marked private; `Mcp-Method`/`Mcp-Name` disagreement answered
//! with the -32020 JSON-RPC error for every named operation; a handler's own step-up as a
//! 403 (one JSON answer) and as the JSON-RPC error (a legacy session).
#![cfg(all(feature = "layer", feature = "rmcp"))]

mod peer;

use mcp_oauth::ScopeSet;
use mcp_oauth::challenge::{self, INSUFFICIENT_SCOPE_ERROR_CODE};
use mcp_oauth::http::OAuthLayer;
use mcp_oauth::operations::{MethodTable, ResourceTable};
use mcp_oauth::rmcp::{Authenticated, require_scopes};
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::tools::UnannotatedToolPolicy;
use mcp_oauth::{IssuerPolicy, ProtectedResource, Validator, mcp_tool, protected_resource};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, prompt, prompt_router, tool, tool_router};
use serde_json::{Value, json};

#[protected_resource(
    resource = "http://127.0.0.1:8080/mcp",
    authorization_servers = ["http://127.0.0.1:9000"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin", "calendar:plan", "calendar:history"],
    required_scopes = ["calendar:read"],
    implies = {
        "calendar:admin" => ["calendar:write"],
        "calendar:write" => ["calendar:read"],
    },
)]
#[derive(Clone)]
pub struct Planner {
    prompt_router: PromptRouter<Planner>,
}

#[derive(Debug, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Deletion {
    pub id: u64,
    /// Whose event it is; deleting someone else's needs `calendar:admin`.
    pub owner: String,
}

#[tool_router]
impl Planner {
    #[mcp_tool(scopes = ["calendar:write"])]
    #[tool(description = "Delete an event")]
    async fn delete_event(
        &self,
        auth: Authenticated,
        Parameters(deletion): Parameters<Deletion>,
    ) -> Result<CallToolResult, ErrorData> {
        if auth.subject() != Some(deletion.owner.as_str()) {
            require_scopes::<Planner>(&auth, &["calendar:admin"])?;
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "deleted {}",
            deletion.id
        ))]))
    }

    /// Relays an upstream's step-up error naming a scope this resource does not declare.
    #[mcp_tool(scopes = [])]
    #[tool(description = "Relay an upstream refusal")]
    async fn relay(&self) -> Result<CallToolResult, ErrorData> {
        let upstream = ScopeSet::from_space_separated("upstream:admin");
        Err(ErrorData::new(
            rmcp::model::ErrorCode(INSUFFICIENT_SCOPE_ERROR_CODE),
            "upstream refused",
            Some(challenge::step_up_error_data(
                &ScopeSet::new(),
                &upstream,
                &upstream,
            )),
        ))
    }

    #[mcp_tool(scopes = ["calendar:history"])]
    #[tool(description = "Export the history")]
    async fn export(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("history")]))
    }
}

#[prompt_router]
impl Planner {
    #[prompt(
        description = "Plan the week",
        meta = mcp_oauth::rmcp::prompt_meta(None, &["calendar:plan"])
    )]
    async fn plan_week(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, "Plan my week")]
    }

    #[prompt(
        description = "Audit the calendar",
        meta = mcp_oauth::rmcp::prompt_meta(None, &["calendar:admin"])
    )]
    async fn audit(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, "Audit")]
    }

    /// Not annotated: refused under the deny policy.
    #[prompt(description = "Unannotated")]
    async fn unannotated(&self) -> Vec<PromptMessage> {
        Vec::new()
    }
}

fn resources() -> ResourceTable {
    ResourceTable::new([
        ("calendar://events/{id}", &["calendar:history"][..]),
        ("calendar://settings", &["calendar:admin"][..]),
        ("calendar://about", &[][..]),
    ])
    .unwrap()
}

const POLICY: UnannotatedToolPolicy = UnannotatedToolPolicy::Deny;

#[rmcp::tool_handler]
impl ServerHandler for Planner {
    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = self.prompt_router.list_all();
        Ok(mcp_oauth::rmcp::filtered_prompts_result::<Planner>(
            prompts, &context,
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let context = rmcp::handler::server::prompt::PromptContext::new(
            self,
            request.name,
            request.arguments,
            context,
        );
        self.prompt_router.get_prompt(context).await
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let all = [
            "calendar://events/1",
            "calendar://settings",
            "calendar://about",
        ]
        .map(|uri| Resource::new(uri, uri))
        .to_vec();
        Ok(mcp_oauth::rmcp::filtered_resources_result::<Planner>(
            all, &context,
        ))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let all = vec![ResourceTemplate::new("calendar://events/{id}", "event")];
        Ok(mcp_oauth::rmcp::filtered_resource_templates_result::<Planner>(all, &context))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(ReadResourceResult::new(vec![ResourceContents::text("contents", request.uri)]).into())
    }

    async fn complete(
        &self,
        _: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(CompleteResult::default())
    }

    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_completions()
            .build();
        config
    }
}

struct Server {
    issuer: TestIssuer,
    resource: String,
    http: reqwest::Client,
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let resource = format!("{base}/mcp");
    let issuer = TestIssuer::builder().audience(&resource).start().await;
    let config = Planner::config()
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
        .tools(mcp_oauth::rmcp::tool_table(&Planner::tool_router()).with_policy(POLICY))
        .prompts(mcp_oauth::rmcp::prompt_table(&Planner::prompt_router()))
        .resources(resources())
        .methods(MethodTable::new([(
            "tasks/list",
            &["calendar:history"][..],
        )]))
        .build()
        .unwrap();
    let mut mcp_config = StreamableHttpServerConfig::default();
    mcp_config.json_response = true;
    let mcp = StreamableHttpService::new(
        || {
            Ok(Planner {
                prompt_router: Planner::prompt_router(),
            })
        },
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
    Server {
        issuer,
        resource,
        http: mcp_oauth::testing::http_client(),
    }
}

const MODERN: &str = "2026-07-28";
const LEGACY: [&str; 2] = ["2025-06-18", "2025-11-25"];

/// How a request is sent: on a legacy session, or as a 2026-07-28 stateless request with its
/// `Mcp-Method`/`Mcp-Name` headers and protocol `_meta`.
enum Mode {
    Session(&'static str, String),
    Modern,
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    message: Value,
}

impl Answer {
    /// A plain 403: nothing can allow it, so no step-up challenge.
    fn assert_denied(&self, label: &str) {
        assert_eq!(self.status, 403, "{label}: {}", self.message);
        assert_eq!(self.challenge, None, "{label}: no scope can help");
    }

    fn challenge_scope(&self) -> Option<String> {
        let header = self.challenge.as_deref()?;
        let params = challenge::parse(header)?;
        params
            .into_iter()
            .find(|(name, _)| name == "scope")
            .map(|(_, value)| value)
    }
}

impl Server {
    fn token(&self, scope: &str) -> String {
        self.issuer.token().scope(scope).sign()
    }

    async fn session(&self, token: &str, version: &'static str) -> Mode {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}});
        let response = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", version)
            .header("mcp-session-id", &session)
            .body(initialized.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        Mode::Session(version, session)
    }

    /// Sends `method` with `params` (`name` naming what `Mcp-Name` names, unless
    /// `header_name` overrides it).
    async fn send(
        &self,
        token: &str,
        mode: &Mode,
        method: &str,
        mut params: Value,
        header_name: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .post(&self.resource)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        match mode {
            Mode::Session(version, session) => {
                request = request
                    .header("mcp-protocol-version", *version)
                    .header("mcp-session-id", session);
            }
            Mode::Modern => {
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": MODERN,
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}});
                request = request
                    .header("mcp-protocol-version", MODERN)
                    .header("mcp-method", method);
                let named = params
                    .get("name")
                    .or_else(|| params.get("uri"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(name) = header_name.map(str::to_owned).or(named) {
                    request = request.header("mcp-name", name);
                }
            }
        }
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let response = request.body(body.to_string()).send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let message = json_rpc_message(&text);
        Answer {
            status,
            challenge,
            message,
        }
    }
}

/// The JSON-RPC message of a JSON or SSE body (`Value::Null` if none).
fn json_rpc_message(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|value| value.get("id").is_some())
        .unwrap_or(Value::Null)
}

/// Each operation kind: (what, method, params, what it needs beyond `calendar:read`).
fn operations() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "tool",
            "tools/call",
            json!({"name": "export", "arguments": {}}),
            "calendar:history",
        ),
        (
            "prompt",
            "prompts/get",
            json!({"name": "plan_week"}),
            "calendar:plan",
        ),
        (
            "resource",
            "resources/read",
            json!({"uri": "calendar://events/1"}),
            "calendar:history",
        ),
        (
            "completion of a prompt",
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "plan_week"},
                   "argument": {"name": "day", "value": "mo"}}),
            "calendar:plan",
        ),
        (
            "completion of a resource template",
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "calendar://events/{id}"},
                   "argument": {"name": "id", "value": "1"}}),
            "calendar:history",
        ),
        ("method", "tasks/list", json!({}), "calendar:history"),
    ]
}

#[tokio::test]
async fn each_operation_kind_is_refused_with_the_challenge_of_each_protocol_generation() {
    let server = start().await;
    // `calendar:admin` implies `calendar:write`, which implies `calendar:read` (required).
    let admin = server.token("calendar:admin");
    for (what, method, params, own) in operations() {
        for version in LEGACY {
            let mode = server.session(&admin, version).await;
            let answer = server
                .send(&admin, &mode, method, params.clone(), None)
                .await;
            assert_eq!(answer.status, 403, "{what} on {version}");
            // 2025-x: the client asks for exactly these, so what it holds is repeated.
            let mut expected = ["calendar:admin", "calendar:read", own];
            expected.sort_unstable();
            assert_eq!(
                answer.challenge_scope().as_deref(),
                Some(expected.join(" ").as_str()),
                "{what} on {version}"
            );
        }
        let answer = server
            .send(&admin, &Mode::Modern, method, params.clone(), None)
            .await;
        assert_eq!(answer.status, 403, "{what} on {MODERN}");
        // 2026-07-28: every scope needed, the read scope named as the admin scope that
        // holds it (hierarchy-aware).
        let mut expected = ["calendar:admin", own];
        expected.sort_unstable();
        assert_eq!(
            answer.challenge_scope().as_deref(),
            Some(expected.join(" ").as_str()),
            "{what} on {MODERN}"
        );
        let header = answer.challenge.unwrap();
        assert!(header.contains(r#"error="insufficient_scope""#), "{header}");
        assert!(header.contains("resource_metadata="), "{header}");
    }
}

#[tokio::test]
async fn each_operation_kind_is_allowed_with_its_scopes() {
    let server = start().await;
    let token = server.token("calendar:read calendar:plan calendar:history");
    for (what, method, params, _) in operations() {
        if method == "tasks/list" {
            continue; // The server offers no tasks; the layer's part is the refusal above.
        }
        let legacy = server.session(&token, "2025-11-25").await;
        for mode in [legacy, Mode::Modern] {
            let answer = server
                .send(&token, &mode, method, params.clone(), None)
                .await;
            assert_eq!(answer.status, 200, "{what}: {}", answer.message);
            assert!(
                answer.message.get("result").is_some(),
                "{what}: {}",
                answer.message
            );
        }
    }
}

#[tokio::test]
async fn what_nobody_annotated_is_refused_under_the_deny_policy_without_a_challenge() {
    let server = start().await;
    let token = server.token("calendar:admin calendar:plan calendar:history");
    for (method, params) in [
        ("prompts/get", json!({"name": "unannotated"})),
        ("resources/read", json!({"uri": "calendar://unlisted"})),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "calendar://unlisted/{x}"},
                   "argument": {"name": "x", "value": ""}}),
        ),
    ] {
        let answer = server
            .send(&token, &Mode::Modern, method, params, None)
            .await;
        answer.assert_denied(method);
    }
}

#[tokio::test]
async fn lists_show_only_what_the_token_may_use_and_are_marked_private() {
    let server = start().await;
    let planner = server.token("calendar:read calendar:plan");
    let historian = server.token("calendar:read calendar:history");
    let names = |answer: &Answer, list: &str, key: &str| -> Vec<String> {
        answer.message["result"][list]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.message))
            .iter()
            .map(|item| item[key].as_str().unwrap().to_owned())
            .collect()
    };
    let legacy = server.session(&planner, "2025-11-25").await;
    for mode in [legacy, Mode::Modern] {
        let prompts = server
            .send(&planner, &mode, "prompts/list", json!({}), None)
            .await;
        assert_eq!(names(&prompts, "prompts", "name"), ["plan_week"]);
        let resources = server
            .send(&planner, &mode, "resources/list", json!({}), None)
            .await;
        assert_eq!(names(&resources, "resources", "uri"), ["calendar://about"]);
        let templates = server
            .send(&planner, &mode, "resources/templates/list", json!({}), None)
            .await;
        assert!(names(&templates, "resourceTemplates", "uriTemplate").is_empty());
        let private = matches!(mode, Mode::Modern);
        for answer in [&prompts, &resources, &templates] {
            let scope = &answer.message["result"]["cacheScope"];
            if private {
                assert_eq!(scope, "private", "{}", answer.message);
            } else {
                assert!(scope.is_null(), "2025 clients know no cacheScope");
            }
        }
    }
    let resources = server
        .send(&historian, &Mode::Modern, "resources/list", json!({}), None)
        .await;
    assert_eq!(
        names(&resources, "resources", "uri"),
        ["calendar://events/1", "calendar://about"]
    );
    // Each listed resource declares its scopes in `_meta`, as tools do.
    assert_eq!(
        resources.message["result"]["resources"][0]["_meta"]
            [mcp_oauth::tools::TOOL_SCOPES_META_KEY],
        json!({"scopes": ["calendar:history"]})
    );
    let templates = server
        .send(
            &historian,
            &Mode::Modern,
            "resources/templates/list",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        names(&templates, "resourceTemplates", "uriTemplate"),
        ["calendar://events/{id}"]
    );
}

#[tokio::test]
async fn mcp_name_disagreeing_with_any_named_operation_is_refused_with_32020() {
    let server = start().await;
    let token = server.token("calendar:admin calendar:plan calendar:history");
    for (method, params) in [
        ("tools/call", json!({"name": "export", "arguments": {}})),
        ("prompts/get", json!({"name": "plan_week"})),
        ("resources/read", json!({"uri": "calendar://events/1"})),
    ] {
        let answer = server
            .send(
                &token,
                &Mode::Modern,
                method,
                params,
                Some("something-else"),
            )
            .await;
        assert_eq!(answer.status, 400, "{method}");
        assert_eq!(answer.message["jsonrpc"], "2.0");
        assert_eq!(answer.message["id"], 7, "{method}");
        assert_eq!(answer.message["error"]["code"], -32020, "{method}");
    }
}

#[tokio::test]
async fn a_handler_step_up_is_a_403_on_one_json_answer_and_the_error_on_a_session() {
    let server = start().await;
    let writer = server.token("calendar:read calendar:write");
    let someone_elses = json!({"name": "delete_event",
                              "arguments": {"id": 3, "owner": "someone-else"}});
    // The caller's own event: the tool's scopes suffice.
    let own = json!({"name": "delete_event", "arguments": {"id": 3, "owner": "user-123"}});
    let answer = server
        .send(&writer, &Mode::Modern, "tools/call", own, None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.message);

    // 2026-07-28, answered with one JSON message: a real 403 challenge naming every scope
    // the call needs, the JSON-RPC error kept as the body.
    let answer = server
        .send(
            &writer,
            &Mode::Modern,
            "tools/call",
            someone_elses.clone(),
            None,
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.message);
    assert_eq!(
        answer.challenge_scope().as_deref(),
        Some("calendar:admin calendar:read calendar:write")
    );
    assert_eq!(
        answer.message["error"]["code"],
        INSUFFICIENT_SCOPE_ERROR_CODE
    );

    // A legacy session: the status is sent before the handler runs; the client reads the
    // same scopes from the JSON-RPC error.
    let mode = server.session(&writer, "2025-11-25").await;
    let answer = server
        .send(&writer, &mode, "tools/call", someone_elses, None)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.challenge, None);
    let error = &answer.message["error"];
    assert_eq!(
        error["code"], INSUFFICIENT_SCOPE_ERROR_CODE,
        "{}",
        answer.message
    );
    assert_eq!(
        error["data"]["scope"],
        "calendar:admin calendar:read calendar:write"
    );
    assert_eq!(error["data"]["missing"], json!(["calendar:admin"]));

    // An admin may.
    let admin = server.token("calendar:admin");
    let answer = server
        .send(
            &admin,
            &Mode::Modern,
            "tools/call",
            json!({"name": "delete_event", "arguments": {"id": 3, "owner": "someone-else"}}),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.message);
}

#[tokio::test]
async fn uris_reach_the_resource_table_by_every_method_that_names_them() {
    let server = start().await;
    let reader = server.token("calendar:read");
    let historian = server.token("calendar:read calendar:history");
    // Read by `skills/get`, listed by `resources/directory/read`, watched by
    // `subscriptions/listen`: each needs what reading the URI needs.
    let cases = [
        ("skills/get", json!({"uri": "calendar://events/1"})),
        (
            "resources/directory/read",
            json!({"uri": "calendar://events/"}),
        ),
        (
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": ["calendar://about", "calendar://events/1"]}}),
        ),
    ];
    for (method, params) in cases {
        let answer = server
            .send(&reader, &Mode::Modern, method, params.clone(), None)
            .await;
        assert_eq!(answer.status, 403, "{method}");
        assert_eq!(
            answer.challenge_scope().as_deref(),
            Some("calendar:history calendar:read"),
            "{method}"
        );
        let answer = server
            .send(&historian, &Mode::Modern, method, params, None)
            .await;
        assert_ne!(answer.status, 403, "{method}: {}", answer.message);
    }
    // A list that is not a list of URIs is not judged: refused.
    let answer = server
        .send(
            &historian,
            &Mode::Modern,
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [1]}}),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);
}

#[tokio::test]
async fn a_uri_spelled_loosely_still_needs_its_templates_scopes_and_dot_segments_are_refused() {
    let server = start().await;
    let reader = server.token("calendar:read");
    for uri in [
        "calendar://events/+1",
        "CALENDAR://events/1",
        "calendar://events/1?x=y",
    ] {
        let answer = server
            .send(
                &reader,
                &Mode::Modern,
                "resources/read",
                json!({"uri": uri}),
                None,
            )
            .await;
        assert_eq!(answer.status, 403, "{uri}");
        assert_eq!(
            answer.challenge_scope().as_deref(),
            Some("calendar:history calendar:read"),
            "{uri}"
        );
    }
    let admin = server.token("calendar:admin calendar:history");
    for uri in [
        "calendar://events/1/../../settings",
        "calendar://events/%2e%2e/settings",
        "calendar://events/1%2F..%2F..%2Fsettings",
        "calendar://%65vents/1",
        "calendar://x@events/1",
        "calendar://unlisted",
    ] {
        let answer = server
            .send(
                &admin,
                &Mode::Modern,
                "resources/read",
                json!({"uri": uri}),
                None,
            )
            .await;
        answer.assert_denied(uri);
    }
}

#[tokio::test]
async fn a_step_up_error_naming_foreign_scopes_passes_as_the_handler_wrote_it() {
    let server = start().await;
    let token = server.token("calendar:read");
    let answer = server
        .send(
            &token,
            &Mode::Modern,
            "tools/call",
            json!({"name": "relay", "arguments": {}}),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.message);
    assert_eq!(answer.challenge, None);
    assert_eq!(
        answer.message["error"]["code"],
        INSUFFICIENT_SCOPE_ERROR_CODE
    );
}

#[tokio::test]
async fn under_the_deny_policy_an_unknown_method_is_refused() {
    let server = start().await;
    let token = server.token("calendar:admin calendar:plan calendar:history");
    let answer = server
        .send(&token, &Mode::Modern, "admin/reset", json!({}), None)
        .await;
    answer.assert_denied("admin/reset");
}
