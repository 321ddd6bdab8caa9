//! Code generation for `#[mcp_tool]` and `#[mcp_prompt]`.
//!
//! Every scope is checked against the resource's declaration at compile time by an item
//! nested in the function's body, spanned at the scope's literal; its message is assembled at
//! compile time, only when the scope is undeclared ("`calendar:wirte` is not declared by
//! `Calendar`; did you mean `calendar:write`?"):
//!
//! ```ignore
//! const _: () = if !::mcp_oauth::__private::scope_declared::<R>("calendar:write") {
//!     ::core::panic!("{}", ::mcp_oauth::__private::undeclared_scope_message(
//!         <R as ::mcp_oauth::__private::ProtectedResource>::DECLARATION,
//!         "calendar:write",
//!     ).as_str())
//! };
//! ```
//!
//! A nested item is evaluated by `cargo check`, inside async fns and generic impls alike (an
//! inline `const { … }` block would only be evaluated when the function is monomorphised);
//! it cannot name `Self`, which is why the resource is a named type.

use proc_macro2::TokenTree;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, FnArg, Ident, ItemFn, LitStr, Meta, Stmt, parse_quote};

use super::ast::{Kind, Mode, ToolArgs};
use crate::args;
use crate::cfg::cfg_attrs;
use crate::ctxt::Ctxt;
use crate::resource::expand::MARKER;

/// The resource type the tool's scopes belong to.
pub fn resource_type(args: &ToolArgs) -> TokenStream {
    match &args.resource {
        Some(ty) => ty.to_token_stream(),
        // At the attribute: "cannot find" and "ambiguous" errors point at #[mcp_tool].
        None => Ident::new(MARKER, Span::call_site()).into_token_stream(),
    }
}

/// The guarded function (and, for a plain function, its `<name>_scopes()` sibling).
pub fn expand(cx: &Ctxt, kind: Kind, mut item: ItemFn, args: &ToolArgs, mode: Mode) -> TokenStream {
    let resource = resource_type(args);
    let scopes = fresh(args.scopes.as_ref().map_or(&[][..], |l| &l.items));
    let private = quote!(::mcp_oauth::__private);

    // The items nested in the body name the resource through one alias, so that a resource
    // that cannot be found (or is ambiguous) is one error, not one per scope.
    let alias = Ident::new("__McpOAuthToolResource", Span::call_site());
    let mut prologue: Vec<Stmt> = scopes
        .iter()
        .map(|scope| {
            parse_stmt(quote_spanned! {scope.span()=>
                const _: () = if !#private::scope_declared::<#alias>(#scope) {
                    ::core::panic!(
                        "{}",
                        #private::undeclared_scope_message(
                            <#alias as #private::ProtectedResource>::DECLARATION,
                            #scope,
                        )
                        .as_str(),
                    )
                };
            })
        })
        .collect();

    let sibling = match mode {
        Mode::Rmcp { rmcp_attr } => {
            rewrite_rmcp_attr(cx, kind, &mut item.attrs[rmcp_attr], &scopes);
            let name = Ident::new("_mcp_oauth_guard", Span::mixed_site());
            let mask = quote!(#private::scope_mask::<#resource>(&[#(#scopes),*]));
            let guard: FnArg = parse_quote! {
                #name: #private::rmcp::ScopeGuard<#resource, { #mask }>
            };
            let at = usize::from(item.sig.receiver().is_some());
            item.sig.inputs.insert(at, guard);
            None
        }
        Mode::Plain { identity, by_ref } => {
            let identity = if by_ref {
                quote!(#identity)
            } else {
                quote!(&#identity)
            };
            let mask = Ident::new("__MCP_OAUTH_MASK", Span::mixed_site());
            prologue.push(parse_quote! {
                #private::check_tool_scopes::<#alias>(#identity, {
                    const #mask: u128 = #private::scope_mask::<#alias>(&[#(#scopes),*]);
                    #mask
                })?;
            });
            Some(scopes_fn(&item, &scopes))
        }
    };
    if !prologue.is_empty() {
        prologue.insert(0, parse_quote!(type #alias = #resource;));
    }

    prologue.append(&mut item.block.stmts);
    item.block.stmts = prologue;
    quote!(#item #sibling)
}

/// The fallback on error: the function unchanged (rust-analyzer and the rest of the impl keep
/// working), and for a plain function its `<name>_scopes()` sibling, so that callers of the
/// sibling do not add errors.
pub fn fallback(
    kind: Kind,
    input: TokenStream,
    item: Option<&ItemFn>,
    args: &ToolArgs,
) -> TokenStream {
    let input = item.map_or(input, ToTokens::to_token_stream);
    let sibling = item
        .filter(|item| kind == Kind::Tool && !item.attrs.iter().any(|a| kind.is_rmcp_attr(a)))
        .map(|item| {
            let scopes = fresh(args.scopes.as_ref().map_or(&[][..], |l| &l.items));
            scopes_fn(item, &scopes)
        });
    quote!(#input #sibling)
}

/// `<vis> fn <name>_scopes() -> ToolScopes`, carrying the function's `#[cfg]`s: a free fn next
/// to a free fn, an associated fn next to a method.
fn scopes_fn(item: &ItemFn, scopes: &[LitStr]) -> TokenStream {
    let private = quote!(::mcp_oauth::__private);
    let cfgs = cfg_attrs(&item.attrs);
    let vis = &item.vis;
    let name = item.sig.ident.unraw().to_string();
    let ident = format_ident!("{}_scopes", name, span = item.sig.ident.span());
    let doc = format!(
        "The name and scopes of the `{name}` tool (generated by `#[mcp_tool]`), for the table \
         the HTTP layer checks before dispatch."
    );
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        #vis fn #ident() -> #private::ToolScopes {
            #private::ToolScopes::new(#name, &[#(#scopes),*])
        }
    }
}

/// Adds the scopes to rmcp's `#[tool(...)]` or `#[prompt(...)]`: `meta = tool_meta(<the
/// operation's own meta>, &[…])` (`prompt_meta` for a prompt), every other argument kept as
/// written.
fn rewrite_rmcp_attr(cx: &Ctxt, kind: Kind, attr: &mut Attribute, scopes: &[LitStr]) {
    let private = quote!(::mcp_oauth::__private);
    let (path, tokens) = match &attr.meta {
        Meta::Path(path) => (path.clone(), TokenStream::new()),
        Meta::List(list) => (list.path.clone(), list.tokens.clone()),
        Meta::NameValue(nv) => {
            let rmcp = kind.rmcp_attribute();
            cx.error_spanned_by(
                &*attr,
                format!("expected rmcp's `#[{rmcp}]` or `#[{rmcp}(...)]`"),
            );
            (nv.path.clone(), TokenStream::new())
        }
    };
    let mut user_meta = None;
    let mut kept = Vec::new();
    for piece in args::split_commas(cx, tokens) {
        let mut iter = piece.clone().into_iter();
        let is_meta = matches!(
            (iter.next(), iter.next()),
            (Some(TokenTree::Ident(name)), Some(TokenTree::Punct(eq)))
                if name == "meta" && eq.as_char() == '='
        );
        if is_meta {
            user_meta = Some(iter.collect::<TokenStream>());
        } else {
            kept.push(piece);
        }
    }
    let base = match user_meta {
        Some(expr) => quote!(::core::option::Option::Some(#expr)),
        None => quote!(::core::option::Option::None),
    };
    let meta_fn = Ident::new(kind.meta_fn(), Span::call_site());
    kept.push(quote!(meta = #private::rmcp::#meta_fn(#base, &[#(#scopes),*])));
    attr.meta = parse_quote!(#path(#(#kept),*));
}

/// The scope literals, re-created from their values at their spans (dropping any suffix).
fn fresh(scopes: &[LitStr]) -> Vec<LitStr> {
    scopes
        .iter()
        .map(|s| LitStr::new(&s.value(), s.span()))
        .collect()
}

/// A nested item as a statement.
fn parse_stmt(tokens: TokenStream) -> Stmt {
    syn::parse2(tokens).expect("an item is a statement")
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;
    use quote::{ToTokens, quote};
    use syn::parse_quote;

    use super::*;

    fn rewritten(attr: Attribute) -> String {
        rewritten_as(Kind::Tool, attr)
    }

    fn rewritten_as(kind: Kind, attr: Attribute) -> String {
        let cx = Ctxt::new();
        let mut attr = attr;
        rewrite_rmcp_attr(
            &cx,
            kind,
            &mut attr,
            &[LitStr::new("a:b", Span::call_site())],
        );
        cx.check().unwrap();
        attr.to_token_stream().to_string()
    }

    #[test]
    fn tool_attribute_gains_the_scopes_in_its_meta() {
        let private = quote!(::mcp_oauth::__private);
        assert_eq!(
            rewritten(parse_quote!(#[tool])),
            quote!(#[tool(meta = #private::rmcp::tool_meta(::core::option::Option::None, &["a:b"]))])
                .to_string()
        );
    }

    #[test]
    fn tool_attribute_keeps_its_arguments_and_merges_its_meta() {
        assert_eq!(
            rewritten(
                parse_quote!(#[rmcp::tool(name = "x", meta = my_meta(1, 2), annotations(title = "t"))])
            ),
            quote!(#[rmcp::tool(
                name = "x",
                annotations(title = "t"),
                meta = ::mcp_oauth::__private::rmcp::tool_meta(
                    ::core::option::Option::Some(my_meta(1, 2)),
                    &["a:b"]
                )
            )])
            .to_string()
        );
    }

    #[test]
    fn prompt_attribute_gains_the_scopes_in_its_meta() {
        assert_eq!(
            rewritten_as(
                Kind::Prompt,
                parse_quote!(#[prompt(name = "p", meta = my_meta())])
            ),
            quote!(#[prompt(
                name = "p",
                meta = ::mcp_oauth::__private::rmcp::prompt_meta(
                    ::core::option::Option::Some(my_meta()),
                    &["a:b"]
                )
            )])
            .to_string()
        );
    }
}
