//! The checks of an `#[mcp_tool]`: its scopes' syntax, and a function shape it can guard.
//! Whether the scopes are *declared* is checked by the compiler, against the resource's
//! declaration, through the constants the expansion emits.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, ItemFn, Pat, ReturnType, Stmt, Type};

use super::ast::{self, Mode, ToolArgs};
use crate::args::{self, StrList};
use crate::ctxt::Ctxt;
use crate::scope::scope_token_error;

/// Checks the arguments.
pub fn check_args(cx: &Ctxt, args: &ToolArgs) {
    if let Some(scopes) = &args.scopes {
        check_scopes(cx, scopes);
    }
    if let Some(resource) = &args.resource
        && mentions_self(resource.to_token_stream())
    {
        cx.error_spanned_by(
            resource,
            "`resource` cannot be `Self`: the compile-time scope check is an item nested in the \
             function, where `Self` is not in scope; name the type, as in `resource = Calendar`",
        );
    }
}

fn check_scopes(cx: &Ctxt, scopes: &StrList) {
    for scope in &scopes.items {
        if let Some(msg) = scope_token_error(&scope.value()) {
            cx.error_spanned_by(scope, msg);
        }
    }
    args::report_duplicates(cx, &scopes.items, "scope");
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "Self",
        TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}

/// Reports every further `#[mcp_tool]` on the function, at the attribute, and removes it: the
/// function is then guarded once, by this invocation or its fallback.
pub fn strip_repeated(cx: &Ctxt, mut item: ItemFn) -> ItemFn {
    item.attrs.retain(|attr| {
        let repeated = attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "mcp_tool");
        if repeated {
            cx.error_spanned_by(
                attr,
                "#[mcp_tool] is applied twice to this function; keep one",
            );
        }
        !repeated
    });
    item
}

/// How the function is to be guarded, or `None` (with the reasons recorded) if it cannot be.
pub fn mode(cx: &Ctxt, item: &ItemFn) -> Option<Mode> {
    if mentions_private(item.to_token_stream()) {
        cx.error_at(
            Span::call_site(),
            "#[mcp_tool] is applied twice to this function; keep one",
        );
        return None;
    }
    if is_rewritten_by_rmcp(item) {
        cx.error_at(
            Span::call_site(),
            "place #[mcp_tool] above #[tool]: rmcp's #[tool] has already turned this async fn \
             into one returning a boxed future, so #[mcp_tool] can no longer add its scope guard \
             to it",
        );
        return None;
    }
    if let Some(tool_attr) = item.attrs.iter().position(ast::is_tool_attr) {
        return Some(Mode::Rmcp { tool_attr });
    }

    let identity = match ast::identity_param(item) {
        Some((Pat::Ident(pat), by_ref)) if pat.subpat.is_none() => {
            Some((pat.ident.clone(), by_ref || pat.by_ref.is_some()))
        }
        Some((pat, _)) => {
            cx.error_spanned_by(
                pat,
                "bind the identity parameter to a simple name, as in `identity: \
                 &mcp_oauth::VerifiedToken`, so that #[mcp_tool] can check its scopes",
            );
            None
        }
        None => {
            cx.error_at(
                item.sig.paren_token.span.join(),
                "#[mcp_tool] needs the caller's verified identity to check its scopes: add a \
                 parameter such as `identity: &mcp_oauth::VerifiedToken`; if this is an rmcp \
                 tool, put #[mcp_tool] above #[tool]",
            );
            None
        }
    };
    let returns_result = ast::returns_result(&item.sig.output);
    if !returns_result {
        let msg = "#[mcp_tool] returns early when a scope is missing: return a Result whose \
                   error implements From<mcp_oauth::tools::InsufficientScope>";
        match &item.sig.output {
            ReturnType::Type(_, ty) => cx.error_spanned_by(ty, msg),
            ReturnType::Default => cx.error_at(item.sig.paren_token.span.join(), msg),
        }
    }
    let (identity, by_ref) = identity?;
    returns_result.then_some(Mode::Plain { identity, by_ref })
}

/// Whether the function contains this crate's generated code already.
fn mentions_private(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "__private",
        TokenTree::Group(group) => mentions_private(group.stream()),
        _ => false,
    })
}

/// Whether rmcp's `#[tool]` already rewrote this (formerly async) function: not async,
/// returning a `Pin<…>`, with a body that is exactly `Box::pin(async move { … })`.
fn is_rewritten_by_rmcp(item: &ItemFn) -> bool {
    let returns_pin = match &item.sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == "Pin"),
            _ => false,
        },
        ReturnType::Default => false,
    };
    let boxes_an_async_block = match item.block.stmts.as_slice() {
        [Stmt::Expr(Expr::Call(call), None)] => {
            let calls_pin = match &*call.func {
                Expr::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == "pin"),
                _ => false,
            };
            calls_pin && matches!(call.args.first(), Some(Expr::Async(_)))
        }
        _ => false,
    };
    item.sig.asyncness.is_none() && returns_pin && boxes_an_async_block
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn mode_of(item: ItemFn) -> (Option<Mode>, Vec<String>) {
        let cx = Ctxt::new();
        let mode = mode(&cx, &item);
        let errors = cx
            .check()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (mode, errors)
    }

    #[test]
    fn function_with_an_rmcp_tool_attribute_is_an_rmcp_tool() {
        let (mode, errors) = mode_of(parse_quote! {
            #[doc = "x"]
            #[rmcp::tool(description = "x")]
            async fn list(&self) -> String { String::new() }
        });
        assert!(
            matches!(mode, Some(Mode::Rmcp { tool_attr: 1 })),
            "{errors:?}"
        );
    }

    #[test]
    fn plain_function_names_its_identity_parameter() {
        let (mode, _) = mode_of(parse_quote! {
            fn list(&self, day: u32, who: &(mcp_oauth::VerifiedToken)) -> Result<(), E> { Ok(()) }
        });
        let Some(Mode::Plain { identity, by_ref }) = mode else {
            panic!("plain mode expected");
        };
        assert_eq!(identity, "who");
        assert!(by_ref);

        let (mode, _) = mode_of(parse_quote! {
            async fn list(mut auth: Authenticated) -> io::Result<()> { Ok(()) }
        });
        assert!(matches!(mode, Some(Mode::Plain { by_ref: false, .. })));
    }

    #[test]
    fn function_rewritten_by_rmcp_is_refused() {
        let (mode, errors) = mode_of(parse_quote! {
            fn list(&self) -> ::std::pin::Pin<Box<dyn ::std::future::Future<Output = String> + Send + '_>> {
                Box::pin(async move { String::new() })
            }
        });
        assert!(mode.is_none());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("place #[mcp_tool] above #[tool]"));
    }

    #[test]
    fn plain_function_without_identity_or_result_gets_both_errors() {
        let (mode, errors) = mode_of(parse_quote! {
            fn list(day: u32) {}
        });
        assert!(mode.is_none());
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
