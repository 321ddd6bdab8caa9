//! The generated guards at run time, with real tokens from the test issuer: a plain tool's
//! body runs only when the token grants its scopes (directly or through the hierarchy); rmcp
//! tools advertise their scopes in `_meta`. Compiled under clippy with `-D warnings`, this also
//! lints the generated code.

use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::testing::TestIssuer;
use mcp_oauth::tools::{InsufficientScope, ToolScopes, ToolTable};
use mcp_oauth::{IssuerPolicy, ScopeSet, Validator, VerifiedToken, mcp_tool, protected_resource};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{schemars, tool, tool_router};

const AUDIENCE: &str = "https://calendar.example.com/mcp";

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write", "calendar:admin"],
    implies = {
        "calendar:admin" => ["calendar:write"],
        "calendar:write" => ["calendar:read"],
    },
    resource_name = "Calendar",
)]
pub struct Calendar;

/// Creates an event.
#[mcp_tool(scopes = ["calendar:write"])]
pub async fn create_event(
    identity: &VerifiedToken,
    title: &str,
) -> Result<String, InsufficientScope> {
    Ok(format!(
        "{title} by {}",
        identity.subject().unwrap_or_default()
    ))
}

#[mcp_tool(scopes = ["calendar:read", "calendar:write"])]
fn list_events(identity: VerifiedToken) -> Result<usize, InsufficientScope> {
    drop(identity);
    Ok(3)
}

#[mcp_tool(scopes = [])]
fn whoami(identity: &VerifiedToken) -> Result<String, InsufficientScope> {
    Ok(identity.subject().unwrap_or_default().to_owned())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Day {
    pub day: u32,
}

#[derive(Clone, Default)]
pub struct CalendarServer;

#[tool_router]
impl CalendarServer {
    #[mcp_tool(scopes = ["calendar:read"])]
    #[tool(name = "events_of_day", description = "Events of a day")]
    async fn events(&self, Parameters(day): Parameters<Day>) -> String {
        format!("no events on day {}", day.day)
    }

    #[mcp_tool(scopes = ["calendar:admin"])]
    #[tool(description = "Delete the calendar")]
    fn delete_calendar(&self) -> String {
        "deleted".to_owned()
    }
}

struct Fixture {
    issuer: TestIssuer,
    validator: Validator,
}

impl Fixture {
    async fn start() -> Self {
        let issuer = TestIssuer::builder().audience(AUDIENCE).start().await;
        let policy = IssuerPolicy::builder(issuer.issuer())
            .audience(AUDIENCE)
            .jwks_uri(issuer.jwks_uri())
            .build()
            .expect("policy");
        let validator = Validator::builder()
            .issuer(policy)
            .build()
            .expect("validator");
        Self { issuer, validator }
    }

    async fn identity(&self, scope: &str) -> VerifiedToken {
        let token = self.issuer.token().scope(scope).sign();
        self.validator
            .validate(&token)
            .await
            .expect("a valid token")
    }
}

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::from_space_separated(s)
}

#[tokio::test]
async fn tool_runs_when_the_token_grants_its_scope() {
    let fixture = Fixture::start().await;
    let identity = fixture.identity("calendar:write").await;
    assert_eq!(
        create_event(&identity, "standup").await.unwrap(),
        "standup by user-123"
    );
}

#[tokio::test]
async fn tool_refuses_a_token_without_its_scope_naming_what_is_missing() {
    let fixture = Fixture::start().await;
    let identity = fixture.identity("calendar:read").await;
    let refusal = create_event(&identity, "standup").await.unwrap_err();
    assert_eq!(refusal.required, scopes("calendar:write"));
    assert_eq!(refusal.missing, scopes("calendar:write"));
}

#[tokio::test]
async fn tool_needs_all_of_its_scopes() {
    let fixture = Fixture::start().await;
    let refusal = list_events(fixture.identity("calendar:read").await).unwrap_err();
    assert_eq!(refusal.missing, scopes("calendar:write"));
    assert_eq!(refusal.required, scopes("calendar:read calendar:write"));
}

#[tokio::test]
async fn broader_scope_satisfies_the_narrower_it_implies() {
    let fixture = Fixture::start().await;
    let admin = fixture.identity("calendar:admin").await;
    assert_eq!(list_events(admin.clone()).unwrap(), 3);
    assert!(create_event(&admin, "x").await.is_ok());
}

#[tokio::test]
async fn tool_without_scopes_needs_only_an_authenticated_caller() {
    let fixture = Fixture::start().await;
    let identity = fixture.identity("").await;
    assert_eq!(whoami(&identity).unwrap(), "user-123");
}

#[test]
fn plain_tools_build_the_tool_table() {
    assert_eq!(
        create_event_scopes(),
        ToolScopes::new("create_event", &["calendar:write"])
    );
    let table = ToolTable::new([create_event_scopes(), list_events_scopes(), whoami_scopes()]);
    assert_eq!(table.len(), 3);
}

#[test]
fn rmcp_tools_advertise_their_scopes_under_their_mcp_name() {
    let router = CalendarServer::tool_router();
    let meta = |name: &str| {
        let tool = router
            .get(name)
            .unwrap_or_else(|| panic!("{name} is routed"));
        tool.meta.as_ref().expect("_meta").0["rs.mcp-oauth/authorization"].clone()
    };
    assert_eq!(
        meta("events_of_day"),
        serde_json::json!({ "scopes": ["calendar:read"] })
    );
    assert_eq!(
        meta("delete_calendar"),
        serde_json::json!({ "scopes": ["calendar:admin"] })
    );
}

#[test]
fn declaration_is_what_the_attribute_says() {
    let declaration = Calendar::DECLARATION;
    assert_eq!(declaration.type_name, "Calendar");
    assert_eq!(declaration.resource, AUDIENCE);
    assert_eq!(declaration.scope_mask(&["calendar:admin"]), 0b100);
    assert!(Calendar::scope_hierarchy().implies("calendar:admin", "calendar:read"));
    let metadata = Calendar::config()
        .metadata()
        .expect("the declaration renders");
    assert_eq!(metadata.resource_name.as_deref(), Some("Calendar"));
}
