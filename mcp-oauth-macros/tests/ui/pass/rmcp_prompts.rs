//! rmcp prompts in a `#[prompt_router]` impl, guarded by `#[mcp_prompt]`: renamed, with a
//! `meta` of their own, async and sync, with parameters (still found by rmcp for the prompt's
//! arguments), with an explicit resource; the scopes land in each prompt's `_meta`.
#![deny(warnings)]

use mcp_oauth::{mcp_prompt, protected_resource};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{GetPromptResult, MetaObject, PromptMessage, Role};
use rmcp::{ErrorData, prompt, prompt_router, schemars};

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
pub struct Day {
    /// The day of the month.
    pub day: u32,
}

fn custom_meta() -> MetaObject {
    let mut meta = MetaObject::default();
    meta.0.insert("com.example/ui".to_owned(), "compact".into());
    meta
}

#[derive(Clone, Default)]
pub struct CalendarServer;

#[prompt_router]
impl CalendarServer {
    /// Summarises a day of the calendar.
    #[mcp_prompt(scopes = ["calendar:read"])]
    #[prompt]
    async fn summarise_day(
        &self,
        Parameters(day): Parameters<Day>,
    ) -> Result<GetPromptResult, ErrorData> {
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Summarise day {}", day.day),
        )]))
    }

    #[mcp_prompt(scopes = ["calendar:write", "calendar:read"], resource = Calendar)]
    #[prompt(name = "plan", description = "Plan a week", meta = custom_meta())]
    async fn plan_week(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, "Plan my week")]
    }

    #[mcp_prompt(scopes = [])]
    #[rmcp::prompt(description = "Greets any authenticated caller")]
    fn greet(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(Role::User, "Hello")]
    }
}

fn scopes_of(prompt: &rmcp::model::Prompt) -> serde_json::Value {
    prompt.meta.as_ref().expect("prompt has _meta").0["rs.mcp-oauth/authorization"]["scopes"]
        .clone()
}

fn main() {
    let router = CalendarServer::prompt_router();
    let prompts = router.list_all();
    let get = |name: &str| {
        prompts
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} is routed"))
    };

    let summarise = get("summarise_day");
    assert_eq!(scopes_of(summarise), serde_json::json!(["calendar:read"]));
    assert_eq!(
        summarise.description.as_deref(),
        Some("Summarises a day of the calendar.")
    );
    let arguments = summarise.arguments.as_ref().expect("the parameters are the arguments");
    assert_eq!(arguments.len(), 1);
    assert_eq!(arguments[0].name, "day");

    let plan = get("plan");
    assert_eq!(scopes_of(plan), serde_json::json!(["calendar:write", "calendar:read"]));
    assert_eq!(plan.meta.as_ref().unwrap().0["com.example/ui"], "compact");

    assert_eq!(scopes_of(get("greet")), serde_json::json!([]));

    let _: fn() -> PromptRouter<CalendarServer> = CalendarServer::prompt_router;
}
