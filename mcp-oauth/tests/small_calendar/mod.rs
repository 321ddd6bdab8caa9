//! The smallest calendar MCP server for the layer's audit and logging tests: `list_events`
//! (`calendar:read`), `create_event` (`calendar:write`) and `unannotated`, which the tool
//! table leaves out and its policy denies; served by rmcp with sessions, behind a layer built
//! for a [`TestIssuer`].

use mcp_oauth::http::{OAuthLayer, OAuthLayerBuilder};
use mcp_oauth::resource::{ResourceConfig, ResourceDeclaration};
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::tools::{ToolScopes, ToolTable, UnannotatedToolPolicy};
use mcp_oauth::{IssuerPolicy, Validator};
use rmcp::model::{CallToolResult, ContentBlock as Content, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

#[derive(Clone)]
pub struct Calendar;

#[tool_router]
impl Calendar {
    #[tool(description = "List events")]
    async fn list_events(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![Content::text("standup")]))
    }

    #[tool(description = "Create an event")]
    async fn create_event(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![Content::text("created")]))
    }

    #[tool(description = "Not in the scope table: denied by the policy")]
    async fn unannotated(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![Content::text("ran")]))
    }
}

#[tool_handler]
impl ServerHandler for Calendar {
    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.capabilities = ServerCapabilities::builder().enable_tools().build();
        config
    }
}

static CALENDAR: ResourceDeclaration = ResourceDeclaration {
    scopes: &["calendar:read", "calendar:write"],
    scope_implications: &[("calendar:write", "calendar:read")],
    ..ResourceDeclaration::new(
        "Calendar",
        "http://127.0.0.1/mcp",
        &["http://127.0.0.1/issuer"],
    )
};

/// The layer for `resource`, trusting `issuer`, with the calendar's tool table (unannotated
/// tools denied); the caller adds sinks, limits and bounds.
pub fn layer_builder(issuer: &TestIssuer, resource: &str) -> OAuthLayerBuilder {
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
    let tools = ToolTable::new([
        ToolScopes::new("list_events", &["calendar:read"]),
        ToolScopes::new("create_event", &["calendar:write"]),
    ])
    .with_policy(UnannotatedToolPolicy::Deny);
    OAuthLayer::builder(config, validator).tools(tools)
}

/// The calendar served by rmcp's streamable HTTP service, with sessions.
pub fn mcp_service() -> StreamableHttpService<Calendar, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = true;
    StreamableHttpService::new(
        || Ok(Calendar),
        LocalSessionManager::default().into(),
        config,
    )
}
