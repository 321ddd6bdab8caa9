//! The calendar MCP server: six tools, a prompt and a resource template, each with its scopes,
//! declared with the attributes; deleting someone else's event steps up from inside the tool,
//! and `public_holidays` calls a downstream API with a token exchanged for it (RFC 8693).

use std::sync::Arc;

use mcp_oauth::exchange::{Downstream, ExchangeError, Target};
use mcp_oauth::rmcp::{Authenticated, require_scopes};
use mcp_oauth::{mcp_prompt, mcp_tool, protected_resource};
use parking_lot::Mutex;
use rmcp::handler::server::prompt::PromptContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, ListPromptsResult,
    ListResourceTemplatesResult, PaginatedRequestParams, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, ResourceContents, ResourceTemplate, Role,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, prompt, prompt_router, tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

/// A calendar, protected by OAuth. The URLs are defaults: the example overrides them at
/// startup (`MCP_OAUTH_RESOURCE`, `MCP_OAUTH_ISSUER`, or the embedded dev server).
#[protected_resource(
    resource = "http://127.0.0.1:8080/mcp",
    authorization_servers = ["http://127.0.0.1:9000"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin"],
    implies = {
        "calendar:admin" => ["calendar:write"],
        "calendar:write" => ["calendar:read"],
    },
    resources = { "calendar://events/{id}" => "calendar:read" },
    resource_name = "Calendar (mcp-oauth example)",
)]
#[derive(Clone, Default)]
pub struct Calendar {
    events: Arc<Mutex<Vec<Event>>>,
    /// List only the tools the caller's token may call (SEP-1881); off by default.
    filter_tools: bool,
    /// The holidays API `public_holidays` calls: its URL is its audience.
    holidays_api: Arc<str>,
    http: reqwest::Client,
}

/// The holidays API's URL when `CALENDAR_HOLIDAYS_API` is unset (`examples/holidays_api.rs`).
pub const DEFAULT_HOLIDAYS_API: &str = "http://127.0.0.1:8081";

/// A calendar event.
#[derive(Debug, Clone, Serialize, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Event {
    /// Its id.
    pub id: u64,
    /// What it is.
    pub title: String,
    /// When (free text, e.g. an RFC 3339 time).
    pub when: String,
    /// Who created it (the token's subject; none for the seeded event or a token without one).
    pub created_by: Option<String>,
}

/// The arguments of `create_event`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct NewEvent {
    /// What it is.
    pub title: String,
    /// When.
    pub when: String,
}

/// The arguments of `plan_week`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Week {
    /// What the week is about.
    pub focus: String,
}

/// The arguments of `delete_event`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct EventId {
    /// The event's id.
    pub id: u64,
}

fn json_result(value: &impl Serialize) -> Result<CallToolResult, ErrorData> {
    let text =
        serde_json::to_string(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

impl Calendar {
    /// With `on`, `tools/list` shows each caller only the tools its token may call.
    pub fn filtering_tools(mut self, on: bool) -> Self {
        self.filter_tools = on;
        self
    }

    /// The holidays API `public_holidays` calls (default [`DEFAULT_HOLIDAYS_API`]).
    pub fn with_holidays_api(mut self, url: &str) -> Self {
        self.holidays_api = url.into();
        self
    }
}

#[tool_router(vis = "pub")]
impl Calendar {
    /// A calendar with one event in it.
    pub fn new() -> Self {
        let mut calendar = Self::default().with_holidays_api(DEFAULT_HOLIDAYS_API);
        // A hung API must not hang the tool.
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
        calendar.http = http.build().unwrap_or_default();
        calendar.events.lock().push(Event {
            id: 1,
            title: "Stand-up".into(),
            when: "every weekday at 09:30".into(),
            created_by: None,
        });
        calendar
    }

    #[mcp_tool(scopes = ["calendar:read"])]
    #[tool(description = "List the calendar's events")]
    async fn list_events(&self) -> Result<CallToolResult, ErrorData> {
        json_result(&*self.events.lock())
    }

    #[mcp_tool(scopes = ["calendar:write"])]
    #[tool(description = "Create an event")]
    async fn create_event(
        &self,
        auth: Authenticated,
        Parameters(event): Parameters<NewEvent>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut events = self.events.lock();
        let id = events.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        let created = Event {
            id,
            title: event.title,
            when: event.when,
            created_by: auth.subject().map(str::to_owned),
        };
        events.push(created.clone());
        json_result(&created)
    }

    #[mcp_tool(scopes = ["calendar:write"])]
    #[tool(description = "Delete one event (someone else's needs calendar:admin)")]
    async fn delete_event(
        &self,
        auth: Authenticated,
        Parameters(EventId { id }): Parameters<EventId>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut events = self.events.lock();
        // An event nobody owns, or a caller without a subject, is someone else's.
        let someone_elses = events.iter().any(|e| {
            e.id == id && (e.created_by.is_none() || e.created_by.as_deref() != auth.subject())
        });
        if someone_elses {
            // A step-up that depends on the arguments: a 403 challenge for the client.
            require_scopes::<Calendar>(&auth, &["calendar:admin"])?;
        }
        let before = events.len();
        events.retain(|e| e.id != id);
        json_result(&serde_json::json!({ "deleted": before - events.len() }))
    }

    #[mcp_tool(scopes = ["calendar:admin"])]
    #[tool(description = "Delete every event of the calendar")]
    async fn delete_calendar(&self) -> Result<CallToolResult, ErrorData> {
        let mut events = self.events.lock();
        let deleted = events.len();
        events.clear();
        json_result(&serde_json::json!({ "deleted": deleted }))
    }

    #[mcp_tool(scopes = ["calendar:read"])]
    #[tool(
        description = "Public holidays, from the holidays API (called with a token exchanged for it, never yours)"
    )]
    async fn public_holidays(
        &self,
        downstream: Downstream,
    ) -> Result<CallToolResult, ExchangeError> {
        // A token whose audience is the API, for the user, naming this server in `act`.
        let api = &*self.holidays_api;
        let target = Target::audience(api).scopes(["calendar:read"]);
        let request = self
            .http
            .get(format!("{}/holidays", api.trim_end_matches('/')));
        let response = downstream.send(&target, request).await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok(match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(holidays) if status.is_success() => {
                CallToolResult::success(vec![ContentBlock::text(holidays.to_string())])
            }
            _ => CallToolResult::error(vec![ContentBlock::text(format!(
                "the holidays API answered {status} without holidays"
            ))]),
        })
    }

    #[mcp_tool(scopes = [])]
    #[tool(description = "Who the server thinks you are: subject, client and scopes")]
    async fn whoami(&self, auth: Authenticated) -> Result<CallToolResult, ErrorData> {
        json_result(&serde_json::json!({
            "subject": auth.subject(),
            "client_id": auth.client_id(),
            "scopes": auth.scopes().iter().collect::<Vec<_>>(),
        }))
    }
}

#[prompt_router(vis = "pub")]
impl Calendar {
    #[mcp_prompt(scopes = ["calendar:write"])]
    #[prompt(description = "Plan the week's events around a focus")]
    async fn plan_week(&self, Parameters(week): Parameters<Week>) -> Vec<PromptMessage> {
        let events = serde_json::to_string(&*self.events.lock()).unwrap_or_default();
        let text = format!("Plan my week around {}. My calendar: {events}", week.focus);
        vec![PromptMessage::new_text(Role::User, text)]
    }
}

#[tool_handler]
impl ServerHandler for Calendar {
    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = Self::prompt_router().list_all();
        Ok(mcp_oauth::rmcp::filtered_prompts_result::<Calendar>(
            prompts, &context,
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let context = PromptContext::new(self, request.name, request.arguments, context);
        Self::prompt_router().get_prompt(context).await
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let event = ResourceTemplate::new("calendar://events/{id}", "event");
        Ok(mcp_oauth::rmcp::filtered_resource_templates_result::<
            Calendar,
        >(vec![event], &context))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // The layer decided already; the handler checks again, as tools' guards do.
        mcp_oauth::rmcp::require_scopes_in::<Calendar>(&context, &["calendar:read"])?;
        let id = request
            .uri
            .strip_prefix("calendar://events/")
            .and_then(|id| id.parse().ok());
        let event = self
            .events
            .lock()
            .iter()
            .find(|e| Some(e.id) == id)
            .cloned();
        let event = event.ok_or_else(|| ErrorData::resource_not_found("no such event", None))?;
        let text = serde_json::to_string(&event)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        let tools = Self::tool_router().list_all();
        if self.filter_tools {
            let policy = mcp_oauth::tools::UnannotatedToolPolicy::default();
            return Ok(mcp_oauth::rmcp::filtered_tools_result::<Calendar>(
                tools, &context, policy,
            ));
        }
        let mut result = rmcp::model::ListToolsResult::with_all_items(tools);
        result.next_cursor = None;
        Ok(result)
    }

    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build();
        config.instructions = Some("A calendar protected by OAuth 2.1 (mcp-oauth example).".into());
        config
    }
}
