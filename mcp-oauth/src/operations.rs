//! What an MCP request does, as far as access is concerned: the [`Operation`] a JSON-RPC
//! method performs on its target (a tool, a prompt, a resource URI, a completion reference),
//! and the tables that give each target its scopes: [`ToolTable`](crate::tools::ToolTable)
//! for tools, [`PromptTable`], [`ResourceTable`] (URIs and RFC 6570 templates) and
//! [`MethodTable`] (scopes any method needs, for methods that name nothing: tasks,
//! subscriptions, discovery, or a method a server adds).
//!
//! [`AccessPolicy`](crate::access::AccessPolicy) reads them together.
//!
//! ```
//! use mcp_oauth::operations::{Operation, Reference, ResourceTable, Target};
//!
//! let read = Operation::from_jsonrpc("resources/read", Some("calendar://events/2026-12-06"), None);
//! assert_eq!(read.target, Target::Resource("calendar://events/2026-12-06"));
//! let complete = Operation::from_jsonrpc("completion/complete", None, Some(Reference::Prompt("plan_week")));
//! assert_eq!(complete.target, Target::Prompt("plan_week"));
//!
//! let resources = ResourceTable::new([("calendar://events/{day}", &["calendar:read"][..])]).unwrap();
//! let needed = resources.requirement("calendar://events/2026-12-06").unwrap();
//! assert!(needed.contains("calendar:read"));
//! assert!(resources.requirement("calendar://settings").is_none());
//! ```

use std::collections::HashMap;

use crate::resource::DeclaredResource;
use crate::scopes::ScopeSet;
use crate::uri_template::{UriTemplate, UriTemplateError, is_ambiguous};

/// One JSON-RPC request as access sees it: its method and what it operates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation<'a> {
    /// The JSON-RPC method (`tools/call`, `resources/read`, `tasks/get`, …).
    pub method: &'a str,
    /// What the method operates on.
    pub target: Target<'a>,
}

/// What an operation operates on, whose scopes it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nothing named: only the method's and the resource-wide scopes apply.
    None,
    /// A tool (`tools/call`).
    Tool(&'a str),
    /// A prompt (`prompts/get`, or a completion of its arguments).
    Prompt(&'a str),
    /// A resource URI (`resources/read`, `resources/subscribe`, `resources/unsubscribe`).
    Resource(&'a str),
    /// A resource template, by the template text (a completion of its variables).
    ResourceTemplate(&'a str),
    /// A directory of resources (`resources/directory/read`): it shows what lies under it.
    ResourceDirectory(&'a str),
    /// A method that names its target (`tools/call`, `prompts/get`, `resources/read`, …,
    /// `completion/complete`) without naming one: nothing can allow it.
    Unnamed,
}

/// What a `completion/complete` request's `params.ref` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `{"type": "ref/prompt", "name": …}`.
    Prompt(&'a str),
    /// `{"type": "ref/resource", "uri": …}`: a URI or a URI template.
    Resource(&'a str),
}

impl<'a> Operation<'a> {
    /// An operation on nothing in particular (`ping`, `tasks/list`, `server/discover`, …).
    pub fn method(method: &'a str) -> Self {
        Self {
            method,
            target: Target::None,
        }
    }

    /// A call of `tool`.
    pub fn tool(tool: &'a str) -> Self {
        Self {
            method: "tools/call",
            target: Target::Tool(tool),
        }
    }

    /// A `prompts/get` of `prompt`.
    pub fn prompt(prompt: &'a str) -> Self {
        Self {
            method: "prompts/get",
            target: Target::Prompt(prompt),
        }
    }

    /// A `resources/read` of `uri`.
    pub fn resource(uri: &'a str) -> Self {
        Self {
            method: "resources/read",
            target: Target::Resource(uri),
        }
    }

    /// The operation of a JSON-RPC request: its `method`, the `name` its params name (see
    /// [`name_member`]) and, for `completion/complete`, its `reference`. A method's target
    /// follows the method (a `name` given to a method that names nothing is ignored).
    pub fn from_jsonrpc(
        method: &'a str,
        name: Option<&'a str>,
        reference: Option<Reference<'a>>,
    ) -> Self {
        let target = match (method, name, reference) {
            ("tools/call", Some(tool), _) => Target::Tool(tool),
            ("prompts/get", Some(prompt), _) => Target::Prompt(prompt),
            (
                "resources/read" | "resources/subscribe" | "resources/unsubscribe" | "skills/get",
                Some(uri),
                _,
            ) => Target::Resource(uri),
            ("resources/directory/read", Some(uri), _) => Target::ResourceDirectory(uri),
            (COMPLETE, _, Some(Reference::Prompt(prompt))) => Target::Prompt(prompt),
            (COMPLETE, _, Some(Reference::Resource(uri))) => Target::ResourceTemplate(uri),
            (COMPLETE, _, None) => Target::Unnamed,
            (method, None, _) if target_member(method).is_some() && !is_task_method(method) => {
                Target::Unnamed
            }
            _ => Target::None,
        };
        Self { method, target }
    }
}

/// The method whose `params.ref` names a prompt or a resource template.
pub(crate) const COMPLETE: &str = "completion/complete";

/// The member of `params` that names what a method operates on, for access: the
/// [`name_member`] and, beyond `Mcp-Name`'s methods, the `uri` of `skills/get` (a skill's
/// files are resources) and `resources/directory/read`.
pub fn target_member(method: &str) -> Option<&'static str> {
    match method {
        "skills/get" | "resources/directory/read" => Some("uri"),
        _ => name_member(method),
    }
}

/// Whether `method` names a task by id (`params.taskId`): a state handle, not a target with
/// scopes of its own.
pub(crate) fn is_task_method(method: &str) -> bool {
    name_member(method) == Some("taskId")
}

/// The requests MCP defines (every revision rmcp 3.11 speaks) or rmcp routes; under
/// [`UnannotatedToolPolicy::Deny`](crate::tools::UnannotatedToolPolicy::Deny) any other
/// method (a server's own, or one rmcp 3.11 hands to `on_custom_request` such as
/// `tasks/list`) or notification must be listed in the [`MethodTable`].
pub fn is_known_method(method: &str) -> bool {
    matches!(
        method,
        "notifications/initialized"
            | "notifications/cancelled"
            | "notifications/progress"
            | "notifications/roots/list_changed"
            | "notifications/tasks/status"
            | "initialize"
            | "ping"
            | "server/discover"
            | "subscriptions/listen"
            | "logging/setLevel"
            | "completion/complete"
            | "tools/list"
            | "tools/call"
            | "prompts/list"
            | "prompts/get"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "resources/directory/read"
            | "skills/list"
            | "skills/get"
            | "tasks/get"
            | "tasks/update"
            | "tasks/cancel"
    )
}

/// The member of `params` that names what a method operates on (the `Mcp-Name` of SEP-2243,
/// as rmcp 3.11 reads it in `transport/common/mcp_headers.rs`), or `None` for a method that
/// names nothing. A request of a named method must carry it as a string.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// The per-prompt scope table: what `prompts/get` (and completing a prompt's arguments)
/// needs beyond the resource-wide scopes. With rmcp it is read from the prompt router
/// (`mcp_oauth::rmcp::prompt_table`), where `#[mcp_prompt]` puts each prompt's scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptTable {
    prompts: HashMap<String, ScopeSet>,
}

impl PromptTable {
    /// A table of `(prompt name, scopes)`.
    pub fn new<N: Into<String>>(prompts: impl IntoIterator<Item = (N, ScopeSet)>) -> Self {
        Self {
            prompts: prompts
                .into_iter()
                .map(|(name, scopes)| (name.into(), scopes))
                .collect(),
        }
    }

    /// Adds (or replaces) a prompt.
    pub fn insert(&mut self, name: impl Into<String>, scopes: ScopeSet) {
        self.prompts.insert(name.into(), scopes);
    }

    /// The scopes of `prompt`, if the table knows it.
    pub fn get(&self, prompt: &str) -> Option<&ScopeSet> {
        self.prompts.get(prompt)
    }

    /// The annotated prompts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ScopeSet)> {
        self.prompts
            .iter()
            .map(|(name, scopes)| (name.as_str(), scopes))
    }

    /// Whether no prompt is annotated.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// The longest resource URI access judges; a longer one matches nothing (and is refused
/// where resources are declared), so no URI costs more than this to match.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The resource scope table: URIs and RFC 6570 URI templates, each with the scopes reading
/// a matching resource needs. A URI that several templates match needs the union of their
/// scopes. A URI that none matches is refused when the table has any entry (fail closed; a
/// catch-all such as `"scheme://{+rest}" => []` opens every spelling the specific templates
/// miss, so prefer listing what is open), and decided by the
/// [`UnannotatedToolPolicy`](crate::tools::UnannotatedToolPolicy) when it is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceTable {
    entries: Vec<(UriTemplate, ScopeSet)>,
}

impl ResourceTable {
    /// A table of `(URI or URI template, scopes)`; a malformed template is an error.
    pub fn new<'s>(
        entries: impl IntoIterator<Item = (&'s str, &'s [&'s str])>,
    ) -> Result<Self, UriTemplateError> {
        let mut table = Self::default();
        for (template, scopes) in entries {
            table.insert(template, scopes.iter().copied().collect())?;
        }
        Ok(table)
    }

    /// The table `#[protected_resource(resources = {...})]` declared (checked at compile
    /// time; a template that still fails to parse is left out, so its URIs fall to the
    /// unannotated policy, and logged).
    pub fn from_declared(declared: &[DeclaredResource]) -> Self {
        let mut table = Self::default();
        for resource in declared {
            let scopes = resource.scopes.iter().copied().collect();
            if let Err(error) = table.insert(resource.uri_template, scopes) {
                tracing::error!(template = resource.uri_template, %error, "declared resource template is malformed");
            }
        }
        table
    }

    /// Adds a URI or URI template (a second entry for the same template adds its scopes).
    pub fn insert(&mut self, template: &str, scopes: ScopeSet) -> Result<(), UriTemplateError> {
        self.add(UriTemplate::parse(template)?, scopes);
        Ok(())
    }

    /// This table with `other`'s entries added (a template in both needs both's scopes).
    #[must_use]
    pub fn merged(mut self, other: ResourceTable) -> Self {
        for (template, scopes) in other.entries {
            self.add(template, scopes);
        }
        self
    }

    /// Adds a parsed entry; a template already there gains the scopes.
    fn add(&mut self, template: UriTemplate, scopes: ScopeSet) {
        match self.entries.iter_mut().find(|(t, _)| *t == template) {
            Some((_, existing)) => existing.extend(scopes.iter()),
            None => self.entries.push((template, scopes)),
        }
    }

    /// What reading `uri` needs: the union of the scopes of every entry that matches it;
    /// (the URI as written, and without its query and fragment); `None` when none does, or
    /// when `uri` is longer than [`MAX_URI_BYTES`] or spelled ambiguously ([`is_ambiguous`]:
    /// a server may read it as another resource than any match says).
    pub fn requirement(&self, uri: &str) -> Option<ScopeSet> {
        if uri.len() > MAX_URI_BYTES || is_ambiguous(uri) {
            return None;
        }
        // A query or fragment a template does not spell out still names the resource its
        // path names (to a server that reads the path): both spellings count.
        let path_only = uri.split(['?', '#']).next().unwrap_or(uri);
        let mut needed: Option<ScopeSet> = None;
        for (template, scopes) in &self.entries {
            if template.matches(uri) || template.matches(path_only) {
                needed
                    .get_or_insert_with(ScopeSet::new)
                    .extend(scopes.iter());
            }
        }
        needed
    }

    /// The scopes of the entry written exactly as `template` (a resource template as
    /// `resources/templates/list` shows it, or a completion's `ref/resource`), else those of
    /// the entries matching it as a URI.
    pub fn template_requirement(&self, template: &str) -> Option<ScopeSet> {
        self.entries
            .iter()
            .find(|(t, _)| t.as_str() == template)
            .map(|(_, scopes)| scopes.clone())
            .or_else(|| self.requirement(template))
    }

    /// What listing the directory `uri` needs (`resources/directory/read`): the entries
    /// matching it and every entry some of whose URIs lie under it (the template may extend
    /// it), together; `None` when there are none.
    pub fn directory_requirement(&self, uri: &str) -> Option<ScopeSet> {
        if uri.len() > MAX_URI_BYTES || is_ambiguous(uri) {
            return None;
        }
        let mut needed = self.requirement(uri);
        for (template, scopes) in &self.entries {
            if template.may_extend(uri) {
                needed
                    .get_or_insert_with(ScopeSet::new)
                    .extend(scopes.iter());
            }
        }
        needed
    }

    /// The entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&UriTemplate, &ScopeSet)> {
        self.entries
            .iter()
            .map(|(template, scopes)| (template, scopes))
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Scopes a method needs whatever it operates on (beyond the resource-wide ones): for
/// methods that name nothing (`tasks/list`, `subscriptions/listen`, `logging/setLevel`, a
/// method a server adds), and on top of a target's own scopes for those that do. A method
/// the table does not list needs nothing more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodTable {
    methods: HashMap<String, ScopeSet>,
}

impl MethodTable {
    /// A table of `(method, scopes)`.
    pub fn new<'s>(methods: impl IntoIterator<Item = (&'s str, &'s [&'s str])>) -> Self {
        Self {
            methods: methods
                .into_iter()
                .map(|(method, scopes)| (method.to_owned(), scopes.iter().copied().collect()))
                .collect(),
        }
    }

    /// Adds (or replaces) a method's scopes.
    pub fn insert(&mut self, method: impl Into<String>, scopes: ScopeSet) {
        self.methods.insert(method.into(), scopes);
    }

    /// The scopes `method` needs, if the table lists it.
    pub fn get(&self, method: &str) -> Option<&ScopeSet> {
        self.methods.get(method)
    }

    /// The listed methods, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ScopeSet)> {
        self.methods
            .iter()
            .map(|(name, scopes)| (name.as_str(), scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_operates_on_its_own_target() {
        let op = Operation::from_jsonrpc;
        assert_eq!(op("tools/call", Some("x"), None), Operation::tool("x"));
        assert_eq!(op("prompts/get", Some("p"), None), Operation::prompt("p"));
        for method in [
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
        ] {
            assert_eq!(
                op(method, Some("u:x"), None).target,
                Target::Resource("u:x")
            );
        }
        assert_eq!(
            op(COMPLETE, None, Some(Reference::Resource("u:{x}"))).target,
            Target::ResourceTemplate("u:{x}")
        );
        // A task id is a handle, not a target with scopes of its own.
        assert_eq!(op("tasks/get", Some("t1"), None).target, Target::None);
        assert_eq!(
            op("skills/get", Some("skill://a"), None).target,
            Target::Resource("skill://a")
        );
        assert_eq!(
            op("resources/directory/read", Some("cal://events/"), None).target,
            Target::ResourceDirectory("cal://events/")
        );
        // A named method without its name, or a completion without a ref: nothing allows it.
        for method in [
            "tools/call",
            "prompts/get",
            "resources/read",
            "skills/get",
            COMPLETE,
        ] {
            assert_eq!(op(method, None, None).target, Target::Unnamed, "{method}");
        }
        assert_eq!(
            op("tools/list", None, None),
            Operation::method("tools/list")
        );
    }

    #[test]
    fn a_uri_needs_the_union_of_every_matching_entry() {
        let table = ResourceTable::new([
            ("cal://events/{day}", &["calendar:read"][..]),
            ("cal://events/{+rest}", &["calendar:audit"][..]),
            ("cal://settings", &["calendar:admin"][..]),
        ])
        .unwrap();
        assert_eq!(
            table.requirement("cal://events/monday"),
            Some(ScopeSet::from_space_separated(
                "calendar:read calendar:audit"
            ))
        );
        assert_eq!(
            table.requirement("cal://events/a/b"),
            Some(ScopeSet::from_space_separated("calendar:audit"))
        );
        assert_eq!(table.requirement("cal://other"), None);
        assert_eq!(table.requirement("cal://events/monday/../x"), None);
        assert_eq!(table.requirement("cal://Events/monday"), None);
        assert_eq!(
            table.requirement(&format!("cal://events/{}", "a".repeat(MAX_URI_BYTES))),
            None
        );
        assert_eq!(
            table.directory_requirement("cal://events/"),
            Some(ScopeSet::from_space_separated(
                "calendar:audit calendar:read"
            ))
        );
        assert_eq!(
            table.template_requirement("cal://events/{day}"),
            Some(ScopeSet::from_space_separated("calendar:read"))
        );
        assert!(ResourceTable::new([("cal://{", &[][..])]).is_err());
    }
}
