//! What an operation needs and whether a token may perform it: the one rule the HTTP layer
//! (before dispatch), the rmcp guards (inside a tool) and `tools/list` filtering all ask.
//!
//! An [`Operation`] needs the resource-wide required scopes, the scopes its method needs
//! ([`MethodTable`]) and those of its target: a tool's from the [`ToolTable`] (or, inside the
//! tool, from its `#[mcp_tool]` declaration), a prompt's from the [`PromptTable`], a
//! resource URI's from the [`ResourceTable`] (the union over every matching template), and a
//! completion those of the prompt or resource template its `ref` names. A scope hierarchy
//! decides what a broader scope satisfies. A target nobody annotated needs the resource-wide
//! scopes only, or nothing can allow it under [`UnannotatedToolPolicy::Deny`] (the policy of
//! the tool table governs prompts and resources alike).
//!
//! ```
//! use mcp_oauth::access::{AccessPolicy, Requirement};
//! use mcp_oauth::operations::{Operation, ResourceTable};
//! use mcp_oauth::scopes::{ScopeHierarchy, ScopeSet};
//! use mcp_oauth::tools::{ToolScopes, ToolTable, UnannotatedToolPolicy};
//!
//! let policy = AccessPolicy::new(
//!     ScopeSet::from_space_separated("calendar:read"),
//!     ScopeHierarchy::new(),
//!     ToolTable::new([ToolScopes::new("create_event", &["calendar:write"])])
//!         .with_policy(UnannotatedToolPolicy::Deny),
//! )
//! .with_resources(ResourceTable::new([("calendar://events/{day}", &["calendar:history"][..])]).unwrap());
//! let Requirement::Scopes(needed) = policy.requirement([Operation::tool("create_event")]) else { unreachable!() };
//! assert_eq!(needed.to_space_separated(), "calendar:read calendar:write");
//! let Requirement::Scopes(needed) = policy.requirement([Operation::resource("calendar://events/monday")]) else { unreachable!() };
//! assert_eq!(needed.to_space_separated(), "calendar:history calendar:read");
//! assert_eq!(policy.requirement([Operation::tool("unknown")]), Requirement::Denied);
//! ```

use std::borrow::Cow;

use crate::operations::{
    MethodTable, Operation, PromptTable, ResourceTable, Target, is_known_method,
};
use crate::resource::ProtectedResource;
use crate::scopes::{ScopeHierarchy, ScopeSet};
use crate::tools::{
    AsVerifiedToken, InsufficientScope, ToolRequirement, ToolTable, UnannotatedToolPolicy,
};
use crate::validation::VerifiedToken;

/// What a request's operations need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Every scope the operations need together (the resource-wide ones included).
    Scopes(ScopeSet),
    /// No scope can allow it: a tool without annotation under the deny policy (a plain 403,
    /// no step-up challenge).
    Denied,
}

/// The resource's access rules: resource-wide scopes, the scope hierarchy, and the scopes of
/// tools, prompts, resources and methods.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    required: ScopeSet,
    hierarchy: ScopeHierarchy,
    tools: ToolTable,
    prompts: PromptTable,
    resources: ResourceTable,
    methods: MethodTable,
}

impl AccessPolicy {
    /// Rules from the resource-wide `required` scopes, the `hierarchy` and the `tools`; no
    /// prompt, resource or method is annotated until the `with_*` calls say so.
    pub fn new(required: ScopeSet, hierarchy: ScopeHierarchy, tools: ToolTable) -> Self {
        Self {
            required,
            hierarchy,
            tools,
            ..Self::default()
        }
    }

    /// With the scopes of each prompt.
    #[must_use]
    pub fn with_prompts(mut self, prompts: PromptTable) -> Self {
        self.prompts = prompts;
        self
    }

    /// With the scopes of resource URIs and URI templates.
    #[must_use]
    pub fn with_resources(mut self, resources: ResourceTable) -> Self {
        self.resources = resources;
        self
    }

    /// With the scopes methods need whatever they operate on.
    #[must_use]
    pub fn with_methods(mut self, methods: MethodTable) -> Self {
        self.methods = methods;
        self
    }

    /// The tool table.
    pub fn tools(&self) -> &ToolTable {
        &self.tools
    }

    /// The prompt table.
    pub fn prompts(&self) -> &PromptTable {
        &self.prompts
    }

    /// The resource table.
    pub fn resources(&self) -> &ResourceTable {
        &self.resources
    }

    /// The method table.
    pub fn methods(&self) -> &MethodTable {
        &self.methods
    }

    /// The resource-wide required scopes.
    pub fn required(&self) -> &ScopeSet {
        &self.required
    }

    /// The scope hierarchy.
    pub fn hierarchy(&self) -> &ScopeHierarchy {
        &self.hierarchy
    }

    /// What a request performing `operations` (a batch may hold several; none, for a
    /// request that performs no operation) needs together.
    pub fn requirement<'a>(
        &self,
        operations: impl IntoIterator<Item = Operation<'a>>,
    ) -> Requirement {
        let mut needed = self.required.clone();
        let deny_unannotated = self.tools.policy() == UnannotatedToolPolicy::Deny;
        for operation in operations {
            match self.methods.get(operation.method) {
                Some(scopes) => add_operation(&mut needed, scopes.iter()),
                // Under the deny policy a method nobody knows (a server's own, say) must be
                // listed to be allowed.
                None if deny_unannotated && !is_known_method(operation.method) => {
                    return Requirement::Denied;
                }
                None => {}
            }
            let own = match operation.target {
                Target::None => Own::Nothing,
                Target::Unnamed => return Requirement::Denied,
                Target::Tool(tool) => match self.tools.requirement(tool) {
                    ToolRequirement::Scopes(scopes) => Own::Scopes(Cow::Borrowed(scopes)),
                    ToolRequirement::Unannotated => Own::Unannotated,
                },
                Target::Prompt(prompt) => self.prompts.get(prompt).map(Cow::Borrowed).into(),
                Target::Resource(uri) => self.resource_scopes(self.resources.requirement(uri)),
                Target::ResourceTemplate(template) => {
                    self.resource_scopes(self.resources.template_requirement(template))
                }
                Target::ResourceDirectory(uri) => {
                    self.resource_scopes(self.resources.directory_requirement(uri))
                }
            };
            match own {
                Own::Nothing => {}
                Own::Scopes(scopes) => add_operation(&mut needed, scopes.iter()),
                Own::Unannotated if deny_unannotated => return Requirement::Denied,
                Own::Unannotated => {}
                Own::Refused => return Requirement::Denied,
            }
        }
        Requirement::Scopes(needed)
    }

    /// A resource target's own scopes: those of the matching entries; with none matching,
    /// refused when the table declares any resource (a URI outside every declared template
    /// must not fall to the resource-wide scopes), else unannotated.
    fn resource_scopes(&self, matched: Option<ScopeSet>) -> Own<'static> {
        match matched {
            Some(scopes) => Own::Scopes(Cow::Owned(scopes)),
            None if self.resources.is_empty() => Own::Unannotated,
            None => Own::Refused,
        }
    }

    /// Whether `identity` may perform what `requirement` describes.
    pub fn check(
        &self,
        identity: &VerifiedToken,
        requirement: &Requirement,
    ) -> Result<(), Refused> {
        match requirement {
            Requirement::Denied => Err(Refused::Denied),
            Requirement::Scopes(needed) => {
                check_scopes(identity, needed, &self.hierarchy).map_err(Refused::Insufficient)
            }
        }
    }

    /// Whether `identity` may perform `operation` (what list filtering shows).
    pub fn may_perform(&self, identity: &VerifiedToken, operation: Operation<'_>) -> bool {
        self.check(identity, &self.requirement([operation])).is_ok()
    }

    /// Whether `identity` may call `tool` (what `tools/list` filtering shows).
    pub fn may_call(&self, identity: &VerifiedToken, tool: &str) -> bool {
        self.may_perform(identity, Operation::tool(tool))
    }
}

/// What an operation's target adds.
enum Own<'a> {
    /// It names nothing.
    Nothing,
    Scopes(Cow<'a, ScopeSet>),
    /// Nobody annotated it: the unannotated policy decides.
    Unannotated,
    /// Nothing can allow it.
    Refused,
}

impl<'a> From<Option<Cow<'a, ScopeSet>>> for Own<'a> {
    fn from(scopes: Option<Cow<'a, ScopeSet>>) -> Self {
        scopes.map_or(Own::Unannotated, Own::Scopes)
    }
}

/// Why [`AccessPolicy::check`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No scope can allow the operation.
    Denied,
    /// The token lacks scopes the operation needs (a step-up can help).
    Insufficient(InsufficientScope),
}

/// What an operation adds to what the resource needs: its own scopes. (One place, so the
/// layer's decision and a tool's own guard cannot differ.)
fn add_operation<'a>(needed: &mut ScopeSet, operation: impl Iterator<Item = &'a str>) {
    needed.extend(operation);
}

/// The check a guarded tool runs inside the tool: the tool's scopes (a mask over the
/// resource's declared scopes) plus the resource-wide required scopes, after the resource's
/// hierarchy: what the layer decided before dispatch, decided again from the declaration.
/// An invalid mask fails closed.
pub(crate) fn check_tool_scopes<R: ProtectedResource>(
    identity: &impl AsVerifiedToken,
    mask: u128,
) -> Result<(), InsufficientScope> {
    let declaration = R::DECLARATION;
    let Some(operation) = declaration.scopes_of_mask(mask) else {
        // Unreachable when the compile-time check passed; refuse rather than allow.
        let all: ScopeSet = declaration.scopes.iter().copied().collect();
        return Err(InsufficientScope {
            missing: all.clone(),
            required: all,
        });
    };
    let mut needed: ScopeSet = declaration.required_scopes.iter().copied().collect();
    add_operation(&mut needed, operation.iter());
    check_scopes(identity.as_verified_token(), &needed, R::scope_hierarchy())
}

/// Checks that `token` holds every scope of `needed` (after `hierarchy`): the comparison at
/// the bottom of every access decision.
pub fn check_scopes(
    token: &VerifiedToken,
    needed: &ScopeSet,
    hierarchy: &ScopeHierarchy,
) -> Result<(), InsufficientScope> {
    let missing = token.scopes().missing(needed, hierarchy);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(InsufficientScope {
            required: needed.clone(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ToolScopes;

    fn policy(unannotated: UnannotatedToolPolicy) -> AccessPolicy {
        let hierarchy = ScopeHierarchy::builder()
            .imply("calendar:admin", "calendar:write")
            .build()
            .unwrap();
        AccessPolicy::new(
            ScopeSet::from_space_separated("calendar:read"),
            hierarchy,
            ToolTable::new([
                ToolScopes::new("create_event", &["calendar:write"]),
                ToolScopes::new("list_events", &[]),
            ])
            .with_policy(unannotated),
        )
    }

    #[test]
    fn a_request_needs_the_resource_scopes_and_each_tools_own() {
        let rules = policy(UnannotatedToolPolicy::AllowWithResourceScopes);
        assert_eq!(
            rules.requirement(None),
            Requirement::Scopes(ScopeSet::from_space_separated("calendar:read"))
        );
        assert_eq!(
            rules.requirement([
                Operation::tool("list_events"),
                Operation::tool("create_event")
            ]),
            Requirement::Scopes(ScopeSet::from_space_separated(
                "calendar:read calendar:write"
            ))
        );
        assert_eq!(
            rules.requirement([Operation::tool("whoami")]),
            Requirement::Scopes(ScopeSet::from_space_separated("calendar:read"))
        );
        let deny = policy(UnannotatedToolPolicy::Deny);
        assert_eq!(
            deny.requirement([Operation::tool("list_events"), Operation::tool("whoami")]),
            Requirement::Denied
        );
    }

    #[test]
    fn the_check_honours_the_hierarchy_and_names_what_is_missing() {
        let rules = policy(UnannotatedToolPolicy::Deny);
        let admin = VerifiedToken::for_tests("calendar:read calendar:admin");
        assert!(rules.may_call(&admin, "create_event"));
        assert!(!rules.may_call(&admin, "whoami"));
        let reader = VerifiedToken::for_tests("calendar:read");
        let Err(Refused::Insufficient(error)) = rules.check(
            &reader,
            &rules.requirement([Operation::tool("create_event")]),
        ) else {
            panic!("a reader may not create events");
        };
        assert_eq!(error.missing.to_space_separated(), "calendar:write");
        assert_eq!(
            rules.check(&reader, &Requirement::Denied),
            Err(Refused::Denied)
        );
    }

    fn every_kind(unannotated: UnannotatedToolPolicy) -> AccessPolicy {
        policy(unannotated)
            .with_prompts(PromptTable::new([(
                "plan_week",
                ScopeSet::from_space_separated("calendar:plan"),
            )]))
            .with_resources(
                ResourceTable::new([
                    ("cal://events/{day}", &["calendar:history"][..]),
                    ("cal://events/{+path}", &["calendar:audit"][..]),
                ])
                .unwrap(),
            )
            .with_methods(MethodTable::new([
                ("tasks/list", &["calendar:tasks"][..]),
                ("subscriptions/listen", &["calendar:watch"][..]),
            ]))
    }

    fn needs(rules: &AccessPolicy, operation: Operation<'_>) -> String {
        match rules.requirement([operation]) {
            Requirement::Scopes(needed) => needed.to_space_separated(),
            Requirement::Denied => "DENIED".into(),
        }
    }

    #[test]
    fn every_kind_of_operation_needs_its_targets_and_its_methods_scopes() {
        use crate::operations::Reference;
        let rules = every_kind(UnannotatedToolPolicy::Deny);
        assert_eq!(
            needs(&rules, Operation::prompt("plan_week")),
            "calendar:plan calendar:read"
        );
        assert_eq!(
            needs(&rules, Operation::resource("cal://events/monday")),
            "calendar:audit calendar:history calendar:read"
        );
        let complete =
            |reference| Operation::from_jsonrpc("completion/complete", None, Some(reference));
        assert_eq!(
            needs(&rules, complete(Reference::Prompt("plan_week"))),
            "calendar:plan calendar:read"
        );
        assert_eq!(
            needs(&rules, complete(Reference::Resource("cal://events/{day}"))),
            "calendar:history calendar:read"
        );
        assert_eq!(
            needs(&rules, Operation::method("tasks/list")),
            "calendar:read calendar:tasks"
        );
        assert_eq!(
            needs(&rules, Operation::method("subscriptions/listen")),
            "calendar:read calendar:watch"
        );
        assert_eq!(
            needs(&rules, Operation::method("server/discover")),
            "calendar:read"
        );
        // Nothing annotated them: the deny policy refuses, the default allows with the
        // resource-wide scopes.
        let lax = every_kind(UnannotatedToolPolicy::AllowWithResourceScopes);
        for unannotated in [
            Operation::prompt("other"),
            complete(Reference::Prompt("other")),
        ] {
            assert_eq!(needs(&rules, unannotated), "DENIED", "{unannotated:?}");
            assert_eq!(needs(&lax, unannotated), "calendar:read", "{unannotated:?}");
        }
        // A URI outside every declared template is refused under either policy (the table
        // declares resources), as is one with a dot segment; with no resource declared, the
        // policy decides.
        for outside in [
            Operation::resource("cal://settings"),
            Operation::resource("cal://events/monday/../../settings"),
            complete(Reference::Resource("cal://settings/{x}")),
        ] {
            assert_eq!(needs(&rules, outside), "DENIED", "{outside:?}");
            assert_eq!(needs(&lax, outside), "DENIED", "{outside:?}");
        }
        let no_resources = policy(UnannotatedToolPolicy::AllowWithResourceScopes);
        assert_eq!(
            needs(&no_resources, Operation::resource("cal://settings")),
            "calendar:read"
        );
        // Methods: a named one without its name is refused; an unknown one only under deny.
        assert_eq!(
            needs(&lax, Operation::from_jsonrpc("tools/call", None, None)),
            "DENIED"
        );
        assert_eq!(needs(&rules, Operation::method("admin/reset")), "DENIED");
        assert_eq!(
            needs(&lax, Operation::method("admin/reset")),
            "calendar:read"
        );
        assert_eq!(
            needs(&rules, Operation::method("notifications/initialized")),
            "calendar:read"
        );
        let reader = VerifiedToken::for_tests("calendar:read calendar:plan");
        assert!(rules.may_perform(&reader, Operation::prompt("plan_week")));
        assert!(!rules.may_perform(&reader, Operation::resource("cal://events/monday")));
    }
}
