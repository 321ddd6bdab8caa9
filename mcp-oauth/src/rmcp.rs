//! The rmcp integration (feature `rmcp`).
//!
//! - [`Authenticated`]: a tool parameter that hands the verified identity to the tool, with
//!   no reading of request parts by hand. Missing identity fails the call closed.
//! - [`ScopeGuard`]: the parameter `#[mcp_tool]` injects so that a tool body runs only when
//!   the request's token carries the tool's scopes.
//! - [`tool_table`]: the per-tool scope table read from a `ToolRouter` (each `#[mcp_tool]`
//!   advertises its scopes in the tool's `_meta`), for the HTTP layer's step-up check.
//! - [`tools_for`]: `tools/list` filtered to what the token may call (SEP-1881), for a
//!   `list_tools` of your own; off unless you call it.
//!
//! The HTTP layer puts the [`VerifiedToken`] in the request's extensions; rmcp's streamable
//! HTTP transport hands the request's `http::request::Parts` to each tool call.
//!
//! ```
//! use mcp_oauth::rmcp::Authenticated;
//! use rmcp::model::CallToolResult;
//!
//! // A tool body receives the identity like any other rmcp extractor:
//! async fn whoami(auth: Authenticated) -> Result<CallToolResult, rmcp::ErrorData> {
//!     let who = auth.subject().unwrap_or("anonymous").to_owned();
//!     Ok(CallToolResult::success(vec![rmcp::model::ContentBlock::text(who)]))
//! }
//! ```

use std::marker::PhantomData;
use std::ops::Deref;

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{MetaObject, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use crate::access::{AccessPolicy, check_tool_scopes};
use crate::resource::ProtectedResource;
use crate::scopes::{ScopeHierarchy, ScopeSet};
use crate::tools::{
    AsVerifiedToken, InsufficientScope, TOOL_SCOPES_META_KEY, ToolScopes, ToolTable,
    UnannotatedToolPolicy,
};
use crate::validation::VerifiedToken;

/// The verified identity of the request a tool serves, as an rmcp extractor.
///
/// Fails the call (fail closed) when the request carries no verified identity: the HTTP
/// layer is not installed, or the transport is not HTTP.
#[derive(Debug, Clone)]
pub struct Authenticated(pub VerifiedToken);

impl Deref for Authenticated {
    type Target = VerifiedToken;
    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

impl AsVerifiedToken for Authenticated {
    fn as_verified_token(&self) -> &VerifiedToken {
        &self.0
    }
}

/// The verified identity of the request, if the HTTP layer put one there.
pub fn verified_token(context: &RequestContext<RoleServer>) -> Option<VerifiedToken> {
    if let Some(token) = context.extensions.get::<VerifiedToken>() {
        return Some(token.clone());
    }
    context
        .extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<VerifiedToken>()
        .cloned()
}

fn unauthenticated() -> ErrorData {
    ErrorData::invalid_request(
        "unauthenticated: this request carries no verified access token",
        Some(json!({ "error": "invalid_token" })),
    )
}

/// The rmcp error for a call whose token lacks scopes: names every scope the operation needs
/// (`scope`, as a step-up challenge would) and those missing.
pub fn insufficient_scope_error(error: &InsufficientScope) -> ErrorData {
    ErrorData::invalid_request(
        format!(
            "insufficient_scope: this tool needs {}; missing {}",
            error.required, error.missing
        ),
        Some(json!({
            "error": "insufficient_scope",
            "scope": error.required.to_space_separated(),
            "missing": error.missing.iter().collect::<Vec<_>>(),
        })),
    )
}

impl From<InsufficientScope> for ErrorData {
    fn from(error: InsufficientScope) -> Self {
        insufficient_scope_error(&error)
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Authenticated {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        verified_token(context.as_request_context())
            .map(Authenticated)
            .ok_or_else(unauthenticated)
    }
}

/// The guard `#[mcp_tool]` injects as a tool's first parameter: extraction succeeds only if
/// the request's verified identity holds the scopes of `MASK` (a mask over `R`'s declared
/// scopes) and the resource-wide required scopes. Not meant to be written by hand.
pub struct ScopeGuard<R: ProtectedResource, const MASK: u128> {
    /// The identity that passed.
    pub identity: VerifiedToken,
    resource: PhantomData<fn() -> R>,
}

impl<R: ProtectedResource, const MASK: u128> std::fmt::Debug for ScopeGuard<R, MASK> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeGuard")
            .field("identity", &self.identity)
            .finish()
    }
}

impl<C: AsRequestContext, R: ProtectedResource, const MASK: u128> FromContextPart<C>
    for ScopeGuard<R, MASK>
{
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let identity = verified_token(context.as_request_context()).ok_or_else(unauthenticated)?;
        check_tool_scopes::<R>(&identity, MASK)
            .map_err(|error| insufficient_scope_error(&error))?;
        Ok(Self {
            identity,
            resource: PhantomData,
        })
    }
}

/// A tool's `_meta` with its required scopes added under [`TOOL_SCOPES_META_KEY`]
/// (`{"scopes": [...]}`); other members of `base` are kept.
pub fn tool_meta(base: Option<MetaObject>, scopes: &[&str]) -> MetaObject {
    let mut meta = base.unwrap_or_default();
    meta.0
        .insert(TOOL_SCOPES_META_KEY.to_owned(), json!({ "scopes": scopes }));
    meta
}

/// A prompt's `_meta` with its required scopes added under [`TOOL_SCOPES_META_KEY`], as
/// [`tool_meta`] does for a tool (what `#[mcp_prompt]` writes into rmcp's `#[prompt]`).
pub fn prompt_meta(base: Option<MetaObject>, scopes: &[&str]) -> MetaObject {
    tool_meta(base, scopes)
}

/// The scopes a tool advertises in its `_meta`, if it is annotated. A malformed annotation
/// (not an array of strings) reads as "every scope", which no token has: fail closed.
pub fn tool_scopes(tool: &Tool) -> Option<ScopeSet> {
    let entry = tool.meta.as_ref()?.0.get(TOOL_SCOPES_META_KEY)?;
    let scopes = entry.get("scopes").and_then(Value::as_array);
    let parsed: Option<ScopeSet> = scopes.and_then(|items| {
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect()
    });
    Some(
        parsed.unwrap_or_else(|| {
            ScopeSet::from_space_separated("\u{1}malformed-tool-scope-annotation")
        }),
    )
}

/// The per-tool scope table of a router: every tool with a `#[mcp_tool]` annotation, under
/// its MCP name (renames included). Disabled routes count too: a tool enabled later keeps
/// its scopes instead of becoming "unannotated".
pub fn tool_table<S>(router: &ToolRouter<S>) -> ToolTable
where
    S: Send + Sync + 'static,
{
    ToolTable::new(router.map.values().filter_map(|route| {
        tool_scopes(&route.attr).map(|scopes| ToolScopes {
            name: route.attr.name.to_string(),
            scopes,
        })
    }))
}

/// The [`TaskIds`](crate::http::TaskIds) of the request: seal the id of every task the
/// server creates with it before handing the id to the client (the layer opens them again
/// on `tasks/get|update|cancel`, and refuses another principal's). `None` without the layer
/// or for a token that names neither subject nor client.
#[cfg(feature = "layer")]
pub fn task_ids(context: &RequestContext<RoleServer>) -> Option<crate::http::TaskIds> {
    if let Some(ids) = context.extensions.get::<crate::http::TaskIds>() {
        return Some(ids.clone());
    }
    context
        .extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<crate::http::TaskIds>()
        .cloned()
}

/// `tools/list` filtered to the tools `identity` may call (SEP-1881): annotated tools whose
/// scopes (plus `required`) it holds after `hierarchy`, and unannotated tools unless the
/// policy denies them (the layer's own rule, [`AccessPolicy`]). Call it from your own
/// `ServerHandler::list_tools`.
pub fn tools_for(
    tools: Vec<Tool>,
    identity: &VerifiedToken,
    required: &ScopeSet,
    hierarchy: &ScopeHierarchy,
    policy: UnannotatedToolPolicy,
) -> Vec<Tool> {
    let table = ToolTable::new(tools.iter().filter_map(|tool| {
        tool_scopes(tool).map(|scopes| ToolScopes {
            name: tool.name.to_string(),
            scopes,
        })
    }))
    .with_policy(policy);
    let rules = AccessPolicy::new(required.clone(), hierarchy.clone(), table);
    tools
        .into_iter()
        .filter(|tool| rules.may_call(identity, &tool.name))
        .collect()
}

/// [`tools_for`] with `R`'s declared hierarchy and required scopes, reading the identity from
/// the request context; with no identity, no tool is listed.
pub fn tools_for_resource<R: ProtectedResource>(
    tools: Vec<Tool>,
    context: &RequestContext<RoleServer>,
    policy: UnannotatedToolPolicy,
) -> Vec<Tool> {
    let Some(identity) = verified_token(context) else {
        return Vec::new();
    };
    let required: ScopeSet = R::DECLARATION.required_scopes.iter().copied().collect();
    tools_for(tools, &identity, &required, R::scope_hierarchy(), policy)
}

/// A complete `tools/list` result filtered with [`tools_for_resource`]. The result varies
/// per token, so it is marked for private caching only (SEP-2549 `cacheScope: private`, no
/// TTL). Use it as the body of your `ServerHandler::list_tools`:
///
/// ```ignore
/// async fn list_tools(&self, _: Option<PaginatedRequestParams>, context: RequestContext<RoleServer>)
///     -> Result<ListToolsResult, ErrorData>
/// {
///     Ok(mcp_oauth::rmcp::filtered_tools_result::<Calendar>(
///         Self::tool_router().list_all(), &context, UnannotatedToolPolicy::default()))
/// }
/// ```
pub fn filtered_tools_result<R: ProtectedResource>(
    tools: Vec<Tool>,
    context: &RequestContext<RoleServer>,
    policy: UnannotatedToolPolicy,
) -> rmcp::model::ListToolsResult {
    let supports_cache_hints = context
        .protocol_version()
        .is_some_and(|version| version >= rmcp::model::ProtocolVersion::V_2026_07_28);
    rmcp::model::ListToolsResult {
        result_type: Some(rmcp::model::ResultType::COMPLETE),
        tools: tools_for_resource::<R>(tools, context, policy),
        meta: None,
        next_cursor: None,
        ttl_ms: supports_cache_hints.then_some(0),
        cache_scope: supports_cache_hints.then_some(rmcp::model::CacheScope::Private),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tool(name: &'static str, scopes: Option<&[&str]>) -> Tool {
        let mut tool = Tool::new(name, "test tool", Arc::new(serde_json::Map::new()));
        if let Some(scopes) = scopes {
            tool.meta = Some(tool_meta(None, scopes));
        }
        tool
    }

    #[test]
    fn tool_meta_keeps_the_users_members_and_adds_the_scopes() {
        let mut base = MetaObject::default();
        base.0.insert("ui".into(), json!({"icon": "cal"}));
        let meta = tool_meta(Some(base), &["calendar:write"]);
        assert_eq!(meta.0["ui"], json!({"icon": "cal"}));
        assert_eq!(
            meta.0[TOOL_SCOPES_META_KEY],
            json!({"scopes": ["calendar:write"]})
        );
    }

    #[test]
    fn a_malformed_annotation_fails_closed() {
        let mut broken = tool("broken", None);
        let mut meta = MetaObject::default();
        meta.0.insert(
            TOOL_SCOPES_META_KEY.into(),
            json!({"scopes": "calendar:read"}),
        );
        broken.meta = Some(meta);
        let scopes = tool_scopes(&broken).unwrap();
        let reader = VerifiedToken::for_tests("calendar:read");
        assert!(crate::access::check_scopes(&reader, &scopes, &ScopeHierarchy::new()).is_err());
    }

    #[test]
    fn tools_list_is_filtered_to_what_the_token_may_call() {
        let tools = vec![
            tool("read", Some(&["calendar:read"])),
            tool("write", Some(&["calendar:write"])),
            tool("open", Some(&[])),
            tool("unannotated", None),
        ];
        let hierarchy = ScopeHierarchy::from_pairs([("calendar:write", "calendar:read")]).unwrap();
        let names = |tools: Vec<Tool>| {
            tools
                .into_iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
        };
        let reader = VerifiedToken::for_tests("calendar:read");
        let writer = VerifiedToken::for_tests("calendar:write");
        let allow = UnannotatedToolPolicy::AllowWithResourceScopes;
        assert_eq!(
            names(tools_for(
                tools.clone(),
                &reader,
                &ScopeSet::new(),
                &hierarchy,
                allow
            )),
            ["read", "open", "unannotated"]
        );
        assert_eq!(
            names(tools_for(
                tools.clone(),
                &writer,
                &ScopeSet::new(),
                &hierarchy,
                allow
            )),
            ["read", "write", "open", "unannotated"]
        );
        assert_eq!(
            names(tools_for(
                tools,
                &writer,
                &ScopeSet::new(),
                &hierarchy,
                UnannotatedToolPolicy::Deny
            )),
            ["read", "write", "open"]
        );
    }
}
