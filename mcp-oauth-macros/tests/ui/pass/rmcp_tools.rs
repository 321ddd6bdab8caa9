//! rmcp tools in a `#[tool_router]` impl: renamed, with a `meta` of their own, async and sync,
//! with parameters; the scopes land in each tool's `_meta`.
#![deny(warnings)]

use mcp_oauth::{mcp_tool, protected_resource};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use rmcp::{ErrorData, schemars, tool, tool_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin"],
    implies = {
        "calendar:admin" => ["calendar:write"],
        "calendar:write" => ["calendar:read"],
    },
)]
pub struct Calendar;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct NewEvent {
    pub title: String,
}

fn custom_meta() -> MetaObject {
    let mut meta = MetaObject::default();
    meta.0.insert("com.example/ui".to_owned(), "compact".into());
    meta
}

#[derive(Clone, Default)]
pub struct CalendarServer;

#[tool_router]
impl CalendarServer {
    /// Lists the events of the day.
    #[mcp_tool(scopes = ["calendar:read"])]
    #[tool]
    async fn list_events(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("no events")]))
    }

    #[mcp_tool(scopes = ["calendar:write", "calendar:read"])]
    #[tool(name = "create", description = "Create an event", meta = custom_meta())]
    async fn create_event(
        &self,
        Parameters(event): Parameters<NewEvent>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(event.title)]))
    }

    #[mcp_tool(scopes = [])]
    #[rmcp::tool(description = "Liveness, for any authenticated caller")]
    fn ping(&self) -> String {
        "pong".to_owned()
    }
}

fn scopes_of(tool: &rmcp::model::Tool) -> serde_json::Value {
    tool.meta.as_ref().expect("tool has _meta").0["rs.mcp-oauth/authorization"]["scopes"].clone()
}

fn main() {
    let router = CalendarServer::tool_router();
    let list = router.get("list_events").expect("list_events is routed");
    assert_eq!(scopes_of(list), serde_json::json!(["calendar:read"]));
    assert_eq!(list.description.as_deref(), Some("Lists the events of the day."));

    let create = router.get("create").expect("the renamed tool is routed");
    assert_eq!(scopes_of(create), serde_json::json!(["calendar:write", "calendar:read"]));
    assert_eq!(create.meta.as_ref().unwrap().0["com.example/ui"], "compact");

    let ping = router.get("ping").expect("ping is routed");
    assert_eq!(scopes_of(ping), serde_json::json!([]));

    let _: fn() -> ToolRouter<CalendarServer> = CalendarServer::tool_router;
}
