//! What an operation needs and whether a token may perform it: the one rule the HTTP layer
//! (before dispatch), the rmcp guards (inside a tool) and `tools/list` filtering all ask.
//!
//! An operation needs the resource-wide required scopes plus its own: a tool's from the
//! [`ToolTable`] (or, inside the tool, from its `#[mcp_tool]` declaration), with a scope
//! hierarchy deciding what a broader scope satisfies. A tool without an annotation needs the
//! resource-wide scopes only, or nothing can allow it under
//! [`UnannotatedToolPolicy::Deny`].
//!
//! ```
//! use mcp_oauth::access::{AccessPolicy, Requirement};
//! use mcp_oauth::scopes::{ScopeHierarchy, ScopeSet};
//! use mcp_oauth::tools::{ToolScopes, ToolTable, UnannotatedToolPolicy};
//!
//! let policy = AccessPolicy::new(
//!     ScopeSet::from_space_separated("calendar:read"),
//!     ScopeHierarchy::new(),
//!     ToolTable::new([ToolScopes::new("create_event", &["calendar:write"])])
//!         .with_policy(UnannotatedToolPolicy::Deny),
//! );
//! let Requirement::Scopes(needed) = policy.requirement(["create_event"]) else { unreachable!() };
//! assert_eq!(needed.to_space_separated(), "calendar:read calendar:write");
//! assert_eq!(policy.requirement(["unknown"]), Requirement::Denied);
//! ```

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

/// The resource's access rules: resource-wide scopes, the scope hierarchy, the tools.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    required: ScopeSet,
    hierarchy: ScopeHierarchy,
    tools: ToolTable,
}

impl AccessPolicy {
    /// Rules from the resource-wide `required` scopes, the `hierarchy` and the `tools`.
    pub fn new(required: ScopeSet, hierarchy: ScopeHierarchy, tools: ToolTable) -> Self {
        Self {
            required,
            hierarchy,
            tools,
        }
    }

    /// The tool table.
    pub fn tools(&self) -> &ToolTable {
        &self.tools
    }

    /// The scope hierarchy.
    pub fn hierarchy(&self) -> &ScopeHierarchy {
        &self.hierarchy
    }

    /// What a request calling `tools` (none, for an operation that names no tool) needs.
    pub fn requirement<'a>(&self, tools: impl IntoIterator<Item = &'a str>) -> Requirement {
        let mut needed = self.required.clone();
        for tool in tools {
            match self.tools.requirement(tool) {
                ToolRequirement::Scopes(scopes) => add_operation(&mut needed, scopes.iter()),
                ToolRequirement::Unannotated => {
                    if self.tools.policy() == UnannotatedToolPolicy::Deny {
                        return Requirement::Denied;
                    }
                }
            }
        }
        Requirement::Scopes(needed)
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

    /// Whether `identity` may call `tool` (what `tools/list` filtering shows).
    pub fn may_call(&self, identity: &VerifiedToken, tool: &str) -> bool {
        self.check(identity, &self.requirement([tool])).is_ok()
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
            rules.requirement([]),
            Requirement::Scopes(ScopeSet::from_space_separated("calendar:read"))
        );
        assert_eq!(
            rules.requirement(["list_events", "create_event"]),
            Requirement::Scopes(ScopeSet::from_space_separated(
                "calendar:read calendar:write"
            ))
        );
        assert_eq!(
            rules.requirement(["whoami"]),
            Requirement::Scopes(ScopeSet::from_space_separated("calendar:read"))
        );
        let deny = policy(UnannotatedToolPolicy::Deny);
        assert_eq!(
            deny.requirement(["list_events", "whoami"]),
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
        let Err(Refused::Insufficient(error)) =
            rules.check(&reader, &rules.requirement(["create_event"]))
        else {
            panic!("a reader may not create events");
        };
        assert_eq!(error.missing.to_space_separated(), "calendar:write");
        assert_eq!(
            rules.check(&reader, &Requirement::Denied),
            Err(Refused::Denied)
        );
    }
}
