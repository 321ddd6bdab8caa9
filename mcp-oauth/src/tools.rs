//! Which scopes each tool needs: the per-tool table the HTTP layer checks before dispatch,
//! and the check `#[mcp_tool]` runs before a tool body.
//!
//! With rmcp, the table is read from the tool router (each `#[mcp_tool]` puts its scopes in
//! the tool's `_meta` under [`TOOL_SCOPES_META_KEY`]), so renames and `#[cfg]`s come for
//! free. Without rmcp, `#[mcp_tool]` generates a `<fn>_scopes()` function per tool.
//!
//! ```
//! use mcp_oauth::tools::{ToolRequirement, ToolScopes, ToolTable, UnannotatedToolPolicy};
//!
//! let table = ToolTable::new([
//!     ToolScopes::new("list_events", &["calendar:read"]),
//!     ToolScopes::new("delete_calendar", &["calendar:admin"]),
//! ]);
//! assert!(matches!(table.requirement("list_events"), ToolRequirement::Scopes(s) if s.contains("calendar:read")));
//! assert!(matches!(table.requirement("unknown"), ToolRequirement::Unannotated));
//! assert_eq!(table.policy(), UnannotatedToolPolicy::AllowWithResourceScopes);
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::scopes::ScopeSet;
use crate::validation::VerifiedToken;

/// The `_meta` key under which a tool advertises its required scopes, shaped like SEP-1880's
/// `ToolAuthorization`: `{"rs.mcp-oauth/authorization": {"scopes": ["calendar:write"]}}`.
pub const TOOL_SCOPES_META_KEY: &str = "rs.mcp-oauth/authorization";

/// One tool's name (as MCP clients call it) and the scopes it needs (all of them, after the
/// hierarchy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolScopes {
    /// The tool's MCP name.
    pub name: String,
    /// The scopes it needs.
    pub scopes: ScopeSet,
}

impl ToolScopes {
    /// A tool and its scopes.
    pub fn new(name: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            name: name.into(),
            scopes: scopes.iter().copied().collect(),
        }
    }
}

/// What happens to a call of a tool that has no `#[mcp_tool]` annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnannotatedToolPolicy {
    /// Allowed with the resource-wide required scopes only (the default): every request is
    /// still authenticated, nothing is silently unprotected.
    #[default]
    AllowWithResourceScopes,
    /// Refused: only annotated tools may be called.
    Deny,
}

/// What a tool call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolRequirement<'a> {
    /// An annotated tool: these scopes (plus the resource-wide ones).
    Scopes(&'a ScopeSet),
    /// A tool the table does not know; the [`UnannotatedToolPolicy`] decides.
    Unannotated,
}

/// The per-tool scope table.
#[derive(Debug, Clone, Default)]
pub struct ToolTable {
    tools: HashMap<String, ScopeSet>,
    policy: UnannotatedToolPolicy,
}

impl ToolTable {
    /// A table of these tools, with the default policy for unannotated tools.
    pub fn new(tools: impl IntoIterator<Item = ToolScopes>) -> Self {
        Self {
            tools: tools.into_iter().map(|t| (t.name, t.scopes)).collect(),
            policy: UnannotatedToolPolicy::default(),
        }
    }

    /// Sets the policy for tools the table does not know.
    #[must_use]
    pub fn with_policy(mut self, policy: UnannotatedToolPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Adds (or replaces) a tool.
    pub fn insert(&mut self, tool: ToolScopes) {
        self.tools.insert(tool.name, tool.scopes);
    }

    /// The policy for tools the table does not know.
    pub fn policy(&self) -> UnannotatedToolPolicy {
        self.policy
    }

    /// What a call of `tool` needs.
    pub fn requirement(&self, tool: &str) -> ToolRequirement<'_> {
        match self.tools.get(tool) {
            Some(scopes) => ToolRequirement::Scopes(scopes),
            None => ToolRequirement::Unannotated,
        }
    }

    /// The annotated tools, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ScopeSet)> {
        self.tools
            .iter()
            .map(|(name, scopes)| (name.as_str(), scopes))
    }

    /// The number of annotated tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is annotated.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// A token lacks scopes a tool needs. Converts into the error a tool returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientScope {
    /// Every scope the operation needs (what a step-up challenge asks for).
    pub required: ScopeSet,
    /// The subset the token lacks.
    pub missing: ScopeSet,
}

impl fmt::Display for InsufficientScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "insufficient scope: this operation needs {} (missing {})",
            self.required, self.missing
        )
    }
}

impl std::error::Error for InsufficientScope {}

/// Anything that holds a verified identity: what `#[mcp_tool]` accepts as the identity
/// parameter of a plain (non-rmcp) function.
pub trait AsVerifiedToken {
    /// The verified identity.
    fn as_verified_token(&self) -> &VerifiedToken;
}

impl AsVerifiedToken for VerifiedToken {
    fn as_verified_token(&self) -> &VerifiedToken {
        self
    }
}

impl<T: AsVerifiedToken + ?Sized> AsVerifiedToken for &T {
    fn as_verified_token(&self) -> &VerifiedToken {
        (**self).as_verified_token()
    }
}
