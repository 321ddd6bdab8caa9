//! The arguments of `#[mcp_tool(...)]` and `#[mcp_prompt(...)]` and the shape of the function
//! they are on.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::args::{self, Seen, StrList};
use crate::ctxt::Ctxt;

/// The arguments `#[mcp_tool]` and `#[mcp_prompt]` know.
pub const KNOWN: &[&str] = &["scopes", "resource"];

/// Which operation the attribute guards. Both attributes share their arguments, checks and
/// expansion; a prompt is always an rmcp prompt, a tool may also be a plain function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[mcp_tool]`, above rmcp's `#[tool]` or on a plain function.
    Tool,
    /// `#[mcp_prompt]`, above rmcp's `#[prompt]`.
    Prompt,
}

impl Kind {
    /// The attribute's name.
    pub fn attribute(self) -> &'static str {
        match self {
            Kind::Tool => "mcp_tool",
            Kind::Prompt => "mcp_prompt",
        }
    }

    /// The operation, in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
        }
    }

    /// The name of rmcp's attribute for this operation (`#[tool]`, `#[prompt]`).
    pub fn rmcp_attribute(self) -> &'static str {
        self.noun()
    }

    /// The `__private::rmcp` function that adds the scopes to the operation's `_meta`.
    pub fn meta_fn(self) -> &'static str {
        match self {
            Kind::Tool => "tool_meta",
            Kind::Prompt => "prompt_meta",
        }
    }

    /// Whether `attr` is rmcp's attribute for this operation (any path ending in `tool` or
    /// `prompt`, as `#[tool_router]` and `#[prompt_router]` see it).
    pub fn is_rmcp_attr(self, attr: &Attribute) -> bool {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == self.rmcp_attribute())
    }
}

/// The arguments of `#[mcp_tool(...)]` and `#[mcp_prompt(...)]`.
#[derive(Default)]
pub struct ToolArgs {
    /// `scopes = ["…"]`: every scope the tool needs.
    pub scopes: Option<StrList>,
    /// `resource = Type`: the resource whose scopes these are; by default the one declared in
    /// this module.
    pub resource: Option<Type>,
}

impl ToolArgs {
    /// Parses the attribute's arguments; `attribute_span` is where a missing `scopes` is
    /// reported.
    pub fn parse(cx: &Ctxt, kind: Kind, tokens: TokenStream, attribute_span: Span) -> Self {
        let mut this = ToolArgs::default();
        let mut seen = Seen::new(kind.attribute(), KNOWN);
        for arg in args::parse_args(cx, tokens, "scopes = [\"calendar:read\"]") {
            if !seen.accept(cx, &arg) {
                continue;
            }
            match arg.key().as_str() {
                "scopes" => {
                    this.scopes =
                        args::parse_str_list(cx, &arg.value, "scopes = [\"calendar:read\"]");
                }
                "resource" => match syn::parse2::<Type>(arg.value.clone()) {
                    Ok(ty) => this.resource = Some(ty),
                    Err(_) => cx.error_spanned_by(
                        &arg.value,
                        "expected a type, as in `resource = Calendar` (the struct declared with \
                         #[protected_resource])",
                    ),
                },
                key => unreachable!("`{key}` is in KNOWN but has no setter"),
            }
        }
        if !seen.contains("scopes") {
            cx.error_at(
                attribute_span,
                format!(
                    "missing argument `scopes`, as in `#[{}(scopes = [\"calendar:read\"])]` \
                     (`scopes = []` for a {} that needs an authenticated caller but no scope)",
                    kind.attribute(),
                    kind.noun(),
                ),
            );
        }
        this
    }
}

/// How the function is wired.
pub enum Mode {
    /// An rmcp tool or prompt: the function has rmcp's `#[tool]` or `#[prompt]` (attribute
    /// index given).
    Rmcp { rmcp_attr: usize },
    /// A plain function that receives the verified identity.
    Plain {
        /// The identity parameter's name.
        identity: Ident,
        /// Whether the parameter is already a reference.
        by_ref: bool,
    },
}

/// The first parameter whose type is (a reference to) a path ending in `VerifiedToken` or
/// `Authenticated`: its pattern and whether it is a reference.
pub fn identity_param(item: &ItemFn) -> Option<(&Pat, bool)> {
    item.sig.inputs.iter().find_map(|input| {
        let FnArg::Typed(typed) = input else {
            return None;
        };
        let (ty, by_ref) = match strip_parens(&typed.ty) {
            Type::Reference(reference) => (strip_parens(&reference.elem), true),
            ty => (ty, false),
        };
        is_identity_type(ty).then_some((&*typed.pat, by_ref))
    })
}

fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip_parens(&inner.elem),
        Type::Group(inner) => strip_parens(&inner.elem),
        ty => ty,
    }
}

fn is_identity_type(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "VerifiedToken" || s.ident == "Authenticated")
}

/// Whether the function returns a type whose last path segment is `Result`.
pub fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::Path(path) = strip_parens(ty) else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "Result")
}
