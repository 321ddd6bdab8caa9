//! The checks of an `#[mcp_tool]` or `#[mcp_prompt]`: its scopes' syntax, and a function shape
//! it can guard. Whether the scopes are *declared* is checked by the compiler, against the
//! resource's declaration, through the constants the expansion emits.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, ItemFn, Pat, ReturnType, Stmt, Type};

use super::ast::{self, Kind, Mode, ToolArgs};
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

/// Reports every further `#[mcp_tool]` (or `#[mcp_prompt]`) on the function, at the
/// attribute, and removes it: the function is then guarded once, by this invocation or its
/// fallback.
pub fn strip_repeated(cx: &Ctxt, kind: Kind, mut item: ItemFn) -> ItemFn {
    item.attrs.retain(|attr| {
        let repeated = attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == kind.attribute());
        if repeated {
            cx.error_spanned_by(
                attr,
                format!(
                    "#[{}] is applied twice to this function; keep one",
                    kind.attribute()
                ),
            );
        }
        !repeated
    });
    item
}

/// How the function is to be guarded, or `None` (with the reasons recorded) if it cannot be.
pub fn mode(cx: &Ctxt, kind: Kind, item: &ItemFn) -> Option<Mode> {
    let (attribute, rmcp) = (kind.attribute(), kind.rmcp_attribute());
    if mentions_private(item.to_token_stream()) {
        cx.error_at(
            Span::call_site(),
            format!("#[{attribute}] is applied twice to this function; keep one"),
        );
        return None;
    }
    if is_rewritten_by_rmcp(item) {
        cx.error_at(
            Span::call_site(),
            format!(
                "place #[{attribute}] above #[{rmcp}]: rmcp's #[{rmcp}] has already turned this \
                 async fn into one returning a boxed future, so #[{attribute}] can no longer add \
                 its scope guard to it"
            ),
        );
        return None;
    }
    if let Some(rmcp_attr) = item.attrs.iter().position(|attr| kind.is_rmcp_attr(attr)) {
        return Some(Mode::Rmcp { rmcp_attr });
    }
    if kind == Kind::Prompt {
        cx.error_at(
            Span::call_site(),
            "#[mcp_prompt] goes above rmcp's #[prompt], on a prompt method of a \
             #[prompt_router] impl: it adds its scope guard and `_meta` to that prompt",
        );
        return None;
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
        let mode = mode(&cx, Kind::Tool, &item);
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
            matches!(mode, Some(Mode::Rmcp { rmcp_attr: 1 })),
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

    #[test]
    fn prompt_needs_rmcp_prompt_attribute() {
        let cx = Ctxt::new();
        let item: ItemFn = parse_quote! {
            #[tool(description = "x")]
            async fn summarise(&self) -> String { String::new() }
        };
        assert!(mode(&cx, Kind::Prompt, &item).is_none());
        let errors: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("#[mcp_prompt] goes above rmcp's #[prompt]"),
            "{errors:?}"
        );

        let cx = Ctxt::new();
        let item: ItemFn = parse_quote! {
            #[rmcp::prompt]
            async fn summarise(&self) -> String { String::new() }
        };
        assert!(matches!(
            mode(&cx, Kind::Prompt, &item),
            Some(Mode::Rmcp { rmcp_attr: 0 })
        ));
        cx.check().unwrap();
    }
}
