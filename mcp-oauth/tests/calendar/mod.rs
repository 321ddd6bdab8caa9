//! A small calendar MCP server for the layer's tests (plain rmcp, scopes from a hand-written
//! table): list, create, delete (admin) and `whoami`, which reports the identity it was handed
//! and whether it saw the raw `Authorization` header.

use std::sync::Arc;

use mcp_oauth::resource::ResourceDeclaration;
use mcp_oauth::rmcp::Authenticated;
use mcp_oauth::tools::{ToolScopes, ToolTable};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock as Content, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::json;

#[derive(Debug, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct NewEvent {
    pub title: String,
}

#[derive(Clone)]
pub struct Calendar {
    events: Arc<parking_lot::Mutex<Vec<String>>>,
}

#[tool_router]
impl Calendar {
    pub fn new(events: Arc<parking_lot::Mutex<Vec<String>>>) -> Self {
        Self { events }
    }

    #[tool(description = "List events")]
    async fn list_events(&self) -> Result<CallToolResult, ErrorData> {
        let events = self.events.lock().join(", ");
        Ok(CallToolResult::success(vec![Content::text(events)]))
    }

    #[tool(description = "Create an event")]
    async fn create_event(
        &self,
        Parameters(event): Parameters<NewEvent>,
    ) -> Result<CallToolResult, ErrorData> {
        self.events.lock().push(event.title.clone());
        Ok(CallToolResult::success(vec![Content::text(format!(
            "created {}",
            event.title
        ))]))
    }

    #[tool(description = "Delete the calendar")]
    async fn delete_calendar(&self) -> Result<CallToolResult, ErrorData> {
        self.events.lock().clear();
        Ok(CallToolResult::success(vec![Content::text("deleted")]))
    }

    #[tool(description = "Who am I, and did I see a raw token?")]
    async fn whoami(
        &self,
        auth: Authenticated,
        rmcp::handler::server::common::Extension(parts): rmcp::handler::server::common::Extension<
            http::request::Parts,
        >,
    ) -> Result<CallToolResult, ErrorData> {
        let saw_token = parts.headers.contains_key(http::header::AUTHORIZATION);
        let text = json!({ "subject": auth.subject(), "scopes": auth.scopes().to_space_separated(), "saw_authorization_header": saw_token });
        Ok(CallToolResult::success(vec![Content::text(
            text.to_string(),
        )]))
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

pub static CALENDAR: ResourceDeclaration = ResourceDeclaration {
    scopes: &[
        "calendar:read",
        "calendar:write",
        "calendar:admin",
        "files:read",
        "files:write",
    ],
    scope_implications: &[
        ("calendar:admin", "calendar:write"),
        ("calendar:write", "calendar:read"),
    ],
    ..ResourceDeclaration::new(
        "Calendar",
        "http://127.0.0.1/mcp",
        &["http://127.0.0.1/issuer"],
    )
};

pub fn tool_table() -> ToolTable {
    ToolTable::new([
        ToolScopes::new("list_events", &["calendar:read"]),
        ToolScopes::new("create_event", &["calendar:write"]),
        ToolScopes::new("delete_calendar", &["calendar:admin"]),
        ToolScopes::new("import_files", &["files:read", "files:write"]),
    ])
}
