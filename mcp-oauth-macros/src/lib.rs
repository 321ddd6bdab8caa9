//! Procedural macros for [`mcp-oauth`](https://docs.rs/mcp-oauth): `#[protected_resource]`
//! declares an OAuth protected resource, its scopes and the scopes of its MCP resources;
//! `#[mcp_tool]` and `#[mcp_prompt]` state the scopes a tool or a prompt needs, checked
//! against that declaration at compile time and enforced at run time.
//!
//! Use them through the `mcp-oauth` crate, which re-exports them; the generated code reaches
//! the runtime through `::mcp_oauth::__private`, never through the caller's imports.
//!
//! Set `MCP_OAUTH_MACRO_DEBUG=1` while building to print every expansion to stderr.

mod args;
mod cfg;
mod ctxt;
mod debug;
mod resource;
mod scope;
mod suggest;
mod tool;
mod url;

use proc_macro::TokenStream;

/// Declares a struct as an OAuth 2.1 protected resource (RFC 9728): its MCP endpoint URL, the
/// authorization servers whose tokens it accepts, and the scopes it defines.
///
/// ```ignore
/// use mcp_oauth::protected_resource;
///
/// #[protected_resource(
///     resource = "https://calendar.example.com/mcp",
///     authorization_servers = ["https://auth.example.com"],
///     scopes = ["calendar:read", "calendar:write", "calendar:admin"],
///     implies = {
///         "calendar:admin" => ["calendar:write"],
///         "calendar:write" => ["calendar:read"],
///     },
///     resources = {
///         "calendar://events/{day}" => ["calendar:read"],
///         "calendar://settings" => "calendar:admin",
///     },
///     resource_name = "Calendar",
/// )]
/// pub struct Calendar;
/// ```
///
/// The struct is left as written and implements `mcp_oauth::resource::ProtectedResource`;
/// generic structs are supported (the trait is implemented for every `'static`
/// instantiation).
///
/// # Arguments
///
/// | argument | value | |
/// |---|---|---|
/// | `resource` | `"https://…"` | **required**; the MCP endpoint URL (https, or http on localhost / 127.0.0.1 / [::1]; no query, no fragment) |
/// | `authorization_servers` | `["https://…", …]` | **required**, at least one; issuer identifiers, same URL rules |
/// | `scopes` | `["…", …]` | the scopes this resource defines (RFC 6749 scope-tokens, at most 127, never `offline_access`, none holding a challenge parameter's name and `=` such as `error=`); default none |
/// | `implies` | `{ "broader" => ["narrower", …], … }` | the scope hierarchy: holding the broader scope satisfies each narrower one, transitively. `"broader" => "narrower"` is short for a one-element list. Every scope named must be in `scopes`; no cycles, no self-implication |
/// | `resources` | `{ "uri or template" => ["scope", …], … }` | the MCP resources (`resources/read`) and the scopes reading them needs: each key a URI or an RFC 6570 URI template (checked at compile time, by the runtime's own grammar), each value a scope or a list of scopes declared in `scopes` (`[]`: no particular scope). A URI matched by several templates needs the union of their scopes. Each key once |
/// | `required_scopes` | `["…", …]` | scopes every request needs, whatever the tool |
/// | `challenge_scopes` | `["…", …]` | the `scope=` of a 401 challenge; default: `required_scopes` if any, else the least privileged declared scopes |
/// | `resource_name` | `"…"` | human-readable name |
/// | `resource_documentation`, `resource_policy_uri`, `resource_tos_uri` | `"https://…"` | links (https) |
/// | `bearer_methods_supported` | `["header"]` | `"header"` (the default); `"body"` is refused until the layer reads form-body tokens, `"query"` always (MCP forbids tokens in the URI) |
/// | `resource_signing_alg_values_supported` | `["ES256", …]` | never `"none"` |
/// | `authorization_details_types_supported` | `["…", …]` | RFC 9396 types |
/// | `dpop` | `"disabled"`, `"allowed"` or `"required"` | DPoP (RFC 9449), enforced by the layer: `"allowed"` accepts DPoP-bound tokens (`Authorization: DPoP` with a valid proof) beside bearer tokens, `"required"` only DPoP-bound tokens; default `"disabled"`. `MCP_OAUTH_DPOP` overrides it at startup |
/// | `dpop_signing_alg_values_supported` | `["ES256", "EdDSA", …]` | the DPoP proof algorithms, only with `dpop` on: asymmetric JWS algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA), ES256 among them, each once; default ES256, ES384, EdDSA, PS256, RS256 |
///
/// With `dpop` on, the metadata advertises `dpop_signing_alg_values_supported`, and with
/// `dpop = "required"` also `dpop_bound_access_tokens_required: true`: that member follows
/// from the mode and is not an argument. `tls_client_certificate_bound_access_tokens` is
/// refused: advertising certificate-bound tokens that are not enforced is a security bug.
///
/// Every mistake is reported at once, at the offending token. On error the struct is still
/// emitted, with a declaration built from what parsed, so that one mistake does not cascade
/// into errors elsewhere.
///
/// # The module's resource
///
/// Besides the trait impl, the attribute puts a hidden marker type, `__McpOAuthResource`, in
/// scope of the struct's module: `#[mcp_tool]`s in that module use it when they do not name a
/// `resource`. With two resources in one module, tools must say `resource = Type`; the same
/// for tools in another module (or `resource = Calendar<…>` for a generic resource).
#[proc_macro_attribute]
pub fn protected_resource(args: TokenStream, input: TokenStream) -> TokenStream {
    resource::expand(args.into(), input.into()).into()
}

/// States the scopes a tool needs. A scope the resource does not declare fails the build, at
/// the scope's literal; at run time the tool's body never runs unless the caller's token
/// grants every scope (directly or through the declared hierarchy).
///
/// Arguments: `scopes = ["…", …]` (required; `[]` means an authenticated caller with no
/// particular scope) and `resource = Type` (optional: by default the resource declared with
/// `#[protected_resource]` in the same module).
///
/// # With rmcp
///
/// Put `#[mcp_tool]` **above** rmcp's `#[tool]`, in a `#[tool_router]` impl:
///
/// ```ignore
/// #[tool_router]
/// impl CalendarServer {
///     #[mcp_tool(scopes = ["calendar:write"])]
///     #[tool(description = "Create an event")]
///     async fn create_event(&self, Parameters(event): Parameters<Event>) -> Result<String, ErrorData> {
///         /* … */
///     }
/// }
/// ```
///
/// The tool gets a first parameter (after `self`), a scope guard that rmcp extracts before
/// any other parameter: a call without the scopes fails before the arguments are even
/// parsed. The scopes are also added to the tool's `_meta` (merged with a `meta = …` of the
/// tool's own), where the HTTP layer and `tools/list` filtering read them.
///
/// # Without rmcp
///
/// A plain function (sync or async) that receives the verified identity and returns a
/// `Result` whose error converts from `mcp_oauth::tools::InsufficientScope`:
///
/// ```ignore
/// #[mcp_tool(scopes = ["calendar:read"])]
/// async fn list_events(identity: &VerifiedToken, day: Date) -> Result<Vec<Event>, MyError> {
///     /* runs only if `identity` has calendar:read (or a scope implying it) */
/// }
///
/// // Generated next to it, with the same visibility and `#[cfg]`s:
/// let table = ToolTable::new([list_events_scopes()]);
/// ```
///
/// The identity parameter is the first whose type is (a reference to) `VerifiedToken` or
/// `Authenticated`. On error the function is emitted unchanged along with the errors.
#[proc_macro_attribute]
pub fn mcp_tool(args: TokenStream, input: TokenStream) -> TokenStream {
    tool::expand(tool::Kind::Tool, args.into(), input.into()).into()
}

/// States the scopes an rmcp prompt needs: the counterpart of [`macro@mcp_tool`] for
/// `prompts/get`. A scope the resource does not declare fails the build, at the scope's
/// literal ("`calendar:wirte` is not declared by `Calendar`; did you mean
/// `calendar:write`?"); at run time the prompt's body never runs unless the caller's token
/// grants every scope (directly or through the declared hierarchy).
///
/// Arguments, as for `#[mcp_tool]`: `scopes = ["…", …]` (required; `[]` means an
/// authenticated caller with no particular scope) and `resource = Type` (optional: by
/// default the resource declared with `#[protected_resource]` in the same module).
///
/// Put `#[mcp_prompt]` **above** rmcp's `#[prompt]`, in a `#[prompt_router]` impl:
///
/// ```ignore
/// #[prompt_router]
/// impl CalendarServer {
///     #[mcp_prompt(scopes = ["calendar:read"])]
///     #[prompt(description = "Summarise a day of the calendar")]
///     async fn summarise_day(&self, Parameters(day): Parameters<Day>) -> Result<GetPromptResult, ErrorData> {
///         /* … */
///     }
/// }
/// ```
///
/// The prompt gets a first parameter (after `self`), a scope guard that rmcp extracts before
/// any other parameter: a `prompts/get` without the scopes fails before the arguments are
/// even parsed. The scopes are also added to the prompt's `_meta` (merged with a `meta = …`
/// of the prompt's own), where the HTTP layer reads them.
///
/// There is no plain-function form: without rmcp's `#[prompt]` below it, the attribute is an
/// error. On error the function is emitted unchanged along with the errors.
#[proc_macro_attribute]
pub fn mcp_prompt(args: TokenStream, input: TokenStream) -> TokenStream {
    tool::expand(tool::Kind::Prompt, args.into(), input.into()).into()
}
