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
use std::sync::Arc;

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ErrorCode, MetaObject, Prompt, Resource,
    ResourceTemplate, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use crate::access::{AccessPolicy, check_tool_scopes};
use crate::exchange::{Downstream, ExchangeError};
use crate::operations::{Operation, PromptTable, ResourceTable};
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

/// The access rules the HTTP layer decided the request with (it hands them to the endpoint
/// with the identity), so that list filtering applies the very same rules.
pub fn access_policy_of(context: &RequestContext<RoleServer>) -> Option<Arc<AccessPolicy>> {
    if let Some(policy) = context.extensions.get::<Arc<AccessPolicy>>() {
        return Some(policy.clone());
    }
    context
        .extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<Arc<AccessPolicy>>()
        .cloned()
}

/// The rules to filter a list with: the layer's, else `R`'s declaration with prompts read
/// from `prompts` and anything unannotated denied (an identity without the layer's rules is
/// an unusual setup: fail closed).
fn list_policy<R: ProtectedResource>(
    context: &RequestContext<RoleServer>,
    prompts: impl FnOnce() -> PromptTable,
) -> Arc<AccessPolicy> {
    access_policy_of(context).unwrap_or_else(|| {
        Arc::new(access_policy::<R>(
            ToolTable::default().with_policy(UnannotatedToolPolicy::Deny),
            prompts(),
        ))
    })
}

fn unauthenticated() -> ErrorData {
    ErrorData::invalid_request(
        "unauthenticated: this request carries no verified access token",
        Some(json!({ "error": "invalid_token" })),
    )
}

/// The rmcp error for a call whose token lacks scopes: the reserved
/// [`INSUFFICIENT_SCOPE_ERROR_CODE`](crate::challenge::INSUFFICIENT_SCOPE_ERROR_CODE), with
/// every scope the operation needs in `data.scope` (as a step-up challenge names them) and
/// those missing in `data.missing`. Behind the HTTP layer, a JSON response carrying it
/// becomes a 403 step-up challenge (see [`require_scopes`]).
pub fn insufficient_scope_error(error: &InsufficientScope) -> ErrorData {
    step_up_error(&ScopeSet::new(), error)
}

/// The reserved step-up error for `error`, its `data.scope` repeating `granted` beside what
/// is needed.
fn step_up_error(granted: &ScopeSet, error: &InsufficientScope) -> ErrorData {
    ErrorData::new(
        ErrorCode(crate::challenge::INSUFFICIENT_SCOPE_ERROR_CODE),
        format!(
            "insufficient_scope: this operation needs {}; missing {}",
            error.required, error.missing
        ),
        Some(crate::challenge::step_up_error_data(
            granted,
            &error.required,
            &error.missing,
        )),
    )
}

/// A step-up raised from inside a handler, when what is needed depends on the arguments
/// (deleting someone else's event needs more than deleting one's own): `Ok` when `identity`
/// holds `scopes` and `R`'s resource-wide scopes (after `R`'s hierarchy), else the
/// [`insufficient_scope_error`] naming them all, to return from the handler with `?`.
///
/// What the client sees: for a request answered with one JSON message (MCP 2026-07-28
/// requests, with the `json_response` the one-call assembly turns on), the HTTP layer turns
/// the error into **403** with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…"`, naming the operation's scopes and these, composed per protocol version. On a
/// legacy session or an SSE response the status (200) is already sent, and the client gets
/// the JSON-RPC error with the same `data.scope` (rmcp 3.11,
/// `transport/streamable_http_server/tower.rs`, `handle_post`).
///
/// ```
/// # #[mcp_oauth::protected_resource(resource = "https://cal.example.com/mcp",
/// #     authorization_servers = ["https://auth.example.com"], scopes = ["calendar:read", "calendar:admin"])]
/// # pub struct Calendar;
/// use mcp_oauth::rmcp::{Authenticated, require_scopes};
///
/// fn delete_event(auth: &Authenticated, owner: &str) -> Result<(), rmcp::ErrorData> {
///     if auth.subject() != Some(owner) {
///         require_scopes::<Calendar>(auth, &["calendar:admin"])?;
///     }
///     Ok(())
/// }
/// ```
pub fn require_scopes<R: ProtectedResource>(
    identity: &impl AsVerifiedToken,
    scopes: &[&str],
) -> Result<(), ErrorData> {
    let identity = identity.as_verified_token();
    if let Some(undeclared) = scopes.iter().find(|s| !R::DECLARATION.declares(s)) {
        // Fails closed all the same; the layer challenges only declared scopes.
        tracing::error!(
            scope = undeclared,
            resource = R::DECLARATION.type_name,
            "require_scopes names a scope the resource does not declare"
        );
    }
    let mut needed: ScopeSet = R::DECLARATION.required_scopes.iter().copied().collect();
    needed.extend(scopes.iter().copied());
    crate::access::check_scopes(identity, &needed, R::scope_hierarchy())
        .map_err(|error| step_up_error(identity.scopes(), &error))
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

/// Token exchange for the request a tool serves ([`crate::exchange::Downstream`]), as an
/// rmcp extractor beside [`Authenticated`]. Fails the call (an error saying
/// [`ExchangeError::NotConfigured`]) when the HTTP layer keeps no token for exchange ([`OAuthLayerBuilder::token_exchange`](crate::http::OAuthLayerBuilder::token_exchange)).
impl<C: AsRequestContext> FromContextPart<C> for Downstream {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let context = context.as_request_context();
        let found = match context.extensions.get::<Downstream>() {
            Some(downstream) => Some(downstream.clone()),
            None => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Downstream>().cloned()),
        };
        found.ok_or_else(|| {
            if verified_token(context).is_none() {
                unauthenticated()
            } else {
                ErrorData::internal_error(ExchangeError::NotConfigured.to_string(), None)
            }
        })
    }
}

/// A failed exchange as a tool's answer: a step-up the configured mapping gives becomes the
/// reserved insufficient-scope error (a 403 challenge on this resource, as
/// [`require_scopes`] raises), anything else a tool error (`isError: true`) whose text says
/// what happened and whose structured content carries the stable
/// [`code`](ExchangeError::code), the downstream audience where known, and whether trying
/// again later may help. A tool returns `Result<CallToolResult, ExchangeError>` and uses `?`.
impl IntoCallToolResult for ExchangeError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        if let ExchangeError::InsufficientScope {
            step_up: Some(step_up),
            ..
        } = &self
        {
            return Err(insufficient_scope_error(step_up));
        }
        let audience = match &self {
            ExchangeError::AudienceNotAllowed(audience)
            | ExchangeError::InsufficientScope { audience, .. }
            | ExchangeError::DownstreamRefused { audience, .. }
            | ExchangeError::DownstreamUnavailable { audience, .. } => Some(audience.clone()),
            _ => None,
        };
        let mut result = CallToolResult::error(vec![ContentBlock::text(self.to_string())]);
        result.structured_content = Some(json!({
            "error": self.code(),
            "audience": audience,
            "retryable": self.is_transient(),
        }));
        Ok(result.into())
    }
}

/// A failed exchange as an rmcp error, for tools that return `Result<_, ErrorData>`: the
/// step-up as [`IntoCallToolResult`] gives it, anything else an internal error carrying the
/// [`code`](ExchangeError::code). Prefer returning [`ExchangeError`] itself: a tool error
/// reaches the model, a protocol error only the client.
impl From<ExchangeError> for ErrorData {
    fn from(error: ExchangeError) -> Self {
        if let ExchangeError::InsufficientScope {
            step_up: Some(step_up),
            ..
        } = &error
        {
            return insufficient_scope_error(step_up);
        }
        ErrorData::internal_error(error.to_string(), Some(json!({ "error": error.code() })))
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

/// A resource's or resource template's `_meta` with the scopes reading it needs, as
/// [`tool_meta`] does for a tool: what `resources/list` and `resources/templates/list` show
/// clients (see [`annotate_resources`]).
pub fn resource_meta(base: Option<MetaObject>, scopes: &[&str]) -> MetaObject {
    tool_meta(base, scopes)
}

/// The scopes a tool advertises in its `_meta`, if it is annotated. A malformed annotation
/// (not an array of strings) reads as "every scope", which no token has: fail closed.
pub fn tool_scopes(tool: &Tool) -> Option<ScopeSet> {
    meta_scopes(tool.meta.as_ref())
}

/// The scopes a prompt advertises in its `_meta` (`#[mcp_prompt]`), read as
/// [`tool_scopes`] reads a tool's.
pub fn prompt_scopes(prompt: &Prompt) -> Option<ScopeSet> {
    meta_scopes(prompt.meta.as_ref())
}

fn meta_scopes(meta: Option<&MetaObject>) -> Option<ScopeSet> {
    let entry = meta?.0.get(TOOL_SCOPES_META_KEY)?;
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

/// [`require_scopes`] in a `ServerHandler` method, where no extractor hands over the
/// identity (`read_resource`, `complete`, …): the request's verified identity if it holds
/// `scopes` and `R`'s resource-wide scopes; without one, the call fails closed.
pub fn require_scopes_in<R: ProtectedResource>(
    context: &RequestContext<RoleServer>,
    scopes: &[&str],
) -> Result<VerifiedToken, ErrorData> {
    let identity = verified_token(context).ok_or_else(unauthenticated)?;
    require_scopes::<R>(&Authenticated(identity.clone()), scopes)?;
    Ok(identity)
}

/// The per-prompt scope table of a prompt router: every prompt with a `#[mcp_prompt]`
/// annotation, under its MCP name.
pub fn prompt_table<S>(router: &PromptRouter<S>) -> PromptTable
where
    S: Send + Sync + 'static,
{
    PromptTable::new(
        router
            .map
            .values()
            .filter_map(|route| prompt_scopes(&route.attr).map(|s| (route.attr.name.clone(), s))),
    )
}

/// `resources` (or templates) with the scopes `R` declares for each put in its `_meta`
/// (under [`TOOL_SCOPES_META_KEY`], as tools carry theirs), so clients see what reading
/// one needs. A URI several templates match gets the union.
pub fn annotate_resources<R: ProtectedResource, T: AnnotatedResource>(
    mut resources: Vec<T>,
) -> Vec<T> {
    let table = ResourceTable::from_declared(R::DECLARATION.resources);
    for resource in &mut resources {
        annotate(resource, &table);
    }
    resources
}

fn annotate<T: AnnotatedResource>(resource: &mut T, table: &ResourceTable) {
    if let Some(scopes) = resource.requirement(table) {
        let scopes: Vec<&str> = scopes.iter().collect();
        let meta = resource_meta(resource.meta_mut().take(), &scopes);
        *resource.meta_mut() = Some(meta);
    }
}

/// An rmcp resource or resource template, as access sees it.
pub trait AnnotatedResource {
    /// The operation reading it (or, for a template, completing its variables).
    fn operation(&self) -> Operation<'_>;
    /// Its `_meta`.
    fn meta_mut(&mut self) -> &mut Option<MetaObject>;
    /// What the resource table says reading it needs.
    fn requirement(&self, table: &ResourceTable) -> Option<ScopeSet>;
}

impl AnnotatedResource for Resource {
    fn operation(&self) -> Operation<'_> {
        Operation::resource(&self.uri)
    }
    fn meta_mut(&mut self) -> &mut Option<MetaObject> {
        &mut self.meta
    }
    fn requirement(&self, table: &ResourceTable) -> Option<ScopeSet> {
        table.requirement(&self.uri)
    }
}

impl AnnotatedResource for ResourceTemplate {
    fn operation(&self) -> Operation<'_> {
        Operation {
            method: "resources/read",
            target: crate::operations::Target::ResourceTemplate(&self.uri_template),
        }
    }
    fn meta_mut(&mut self) -> &mut Option<MetaObject> {
        &mut self.meta
    }
    fn requirement(&self, table: &ResourceTable) -> Option<ScopeSet> {
        table.template_requirement(&self.uri_template)
    }
}

/// The access rules of `R` as list filtering sees them: the declaration's required scopes,
/// hierarchy and resources, with `tools` and `prompts` (read from the routers).
pub fn access_policy<R: ProtectedResource>(tools: ToolTable, prompts: PromptTable) -> AccessPolicy {
    let required: ScopeSet = R::DECLARATION.required_scopes.iter().copied().collect();
    AccessPolicy::new(required, R::scope_hierarchy().clone(), tools)
        .with_prompts(prompts)
        .with_resources(ResourceTable::from_declared(R::DECLARATION.resources))
}

/// `prompts/list` filtered to the prompts the request's identity may get (no identity:
/// none), by the rules the layer decided the request with ([`access_policy_of`]) and each
/// prompt's own `#[mcp_prompt]` scopes; unannotated prompts unless the layer's policy denies
/// them.
pub fn prompts_for_resource<R: ProtectedResource>(
    prompts: Vec<Prompt>,
    context: &RequestContext<RoleServer>,
) -> Vec<Prompt> {
    let Some(identity) = verified_token(context) else {
        return Vec::new();
    };
    let rules = list_policy::<R>(context, || {
        PromptTable::new(
            prompts
                .iter()
                .filter_map(|p| prompt_scopes(p).map(|s| (p.name.clone(), s))),
        )
    });
    // A prompt's own `_meta` scopes count too (its guard checks them even when the layer
    // was not given the prompt router).
    let own_scopes_held = |prompt: &Prompt| {
        prompt_scopes(prompt).is_none_or(|own| {
            let mut needed = rules.required().clone();
            needed.extend(own.iter());
            crate::access::check_scopes(&identity, &needed, rules.hierarchy()).is_ok()
        })
    };
    prompts
        .into_iter()
        .filter(|prompt| {
            rules.may_perform(&identity, Operation::prompt(&prompt.name)) && own_scopes_held(prompt)
        })
        .collect()
}

/// `resources/list` (or `resources/templates/list`) filtered to what the request's identity
/// may read (no identity: nothing), by the rules the layer decided the request with
/// ([`access_policy_of`]: the declared `resources` and those registered at startup); a
/// resource no entry matches is listed unless the layer's policy denies unannotated ones.
/// Each item comes back with its scopes in `_meta`.
pub fn resources_for_resource<R: ProtectedResource, T: AnnotatedResource>(
    resources: Vec<T>,
    context: &RequestContext<RoleServer>,
) -> Vec<T> {
    let Some(identity) = verified_token(context) else {
        return Vec::new();
    };
    let rules = list_policy::<R>(context, PromptTable::default);
    resources
        .into_iter()
        .filter(|resource| rules.may_perform(&identity, resource.operation()))
        .map(|mut resource| {
            annotate(&mut resource, rules.resources());
            resource
        })
        .collect()
}

/// The SEP-2549 cache hints of a result that depends on the caller: `cacheScope: private`,
/// no TTL, for clients of MCP 2026-07-28 or later (older ones know neither member).
pub fn private_cache_hints(
    context: &RequestContext<RoleServer>,
) -> (Option<u64>, Option<rmcp::model::CacheScope>) {
    let supports_cache_hints = context
        .protocol_version()
        .is_some_and(|version| version >= rmcp::model::ProtocolVersion::V_2026_07_28);
    (
        supports_cache_hints.then_some(0),
        supports_cache_hints.then_some(rmcp::model::CacheScope::Private),
    )
}

/// A complete list result of `$items`, marked private for `$context`
/// ([`private_cache_hints`]): one rule for every list that depends on the caller.
macro_rules! private_list {
    ($result:path, $items:expr, $context:expr) => {{
        let (ttl_ms, cache_scope) = private_cache_hints($context);
        let mut result = <$result>::with_all_items($items);
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        result
    }};
}

/// A complete `prompts/list` result filtered with [`prompts_for_resource`], marked private
/// ([`private_cache_hints`]).
pub fn filtered_prompts_result<R: ProtectedResource>(
    prompts: Vec<Prompt>,
    context: &RequestContext<RoleServer>,
) -> rmcp::model::ListPromptsResult {
    private_list!(
        rmcp::model::ListPromptsResult,
        prompts_for_resource::<R>(prompts, context),
        context
    )
}

/// A complete `resources/list` result filtered with [`resources_for_resource`], marked
/// private ([`private_cache_hints`]).
pub fn filtered_resources_result<R: ProtectedResource>(
    resources: Vec<Resource>,
    context: &RequestContext<RoleServer>,
) -> rmcp::model::ListResourcesResult {
    private_list!(
        rmcp::model::ListResourcesResult,
        resources_for_resource::<R, _>(resources, context),
        context
    )
}

/// A complete `resources/templates/list` result filtered with [`resources_for_resource`],
/// marked private ([`private_cache_hints`]).
pub fn filtered_resource_templates_result<R: ProtectedResource>(
    templates: Vec<ResourceTemplate>,
    context: &RequestContext<RoleServer>,
) -> rmcp::model::ListResourceTemplatesResult {
    private_list!(
        rmcp::model::ListResourceTemplatesResult,
        resources_for_resource::<R, _>(templates, context),
        context
    )
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
    private_list!(
        rmcp::model::ListToolsResult,
        tools_for_resource::<R>(tools, context, policy,),
        context
    )
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
