//! `#[mcp_tool(...)]` and `#[mcp_prompt(...)]`: parse ([`ast`]), check ([`valid`]), generate
//! ([`expand`]). The two attributes are one implementation, told apart by [`ast::Kind`].

pub mod ast;
pub mod expand;
pub mod valid;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use crate::ctxt::Ctxt;
pub use ast::Kind;

/// The attribute's expansion: on success the guarded function; on error the function
/// unchanged plus the errors (tokio-macros style).
pub fn expand(kind: Kind, args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let tool_args = ast::ToolArgs::parse(&cx, kind, args, Span::call_site());
    valid::check_args(&cx, &tool_args);
    let item = match syn::parse2::<ItemFn>(input.clone()) {
        Ok(item) => Some(item),
        Err(_) => {
            cx.error_at(
                Span::call_site(),
                match kind {
                    Kind::Tool => {
                        "#[mcp_tool] goes on a function with a body (a tool method, or a \
                         function that receives the verified identity)"
                    }
                    Kind::Prompt => {
                        "#[mcp_prompt] goes on a prompt method, above rmcp's #[prompt], in a \
                         #[prompt_router] impl"
                    }
                },
            );
            None
        }
    };
    let item = item.map(|item| valid::strip_repeated(&cx, kind, item));
    let mode = item.as_ref().and_then(|item| valid::mode(&cx, kind, item));

    let name = item
        .as_ref()
        .map_or_else(String::new, |item| item.sig.ident.to_string());
    let expansion = match (item, mode, cx.has_errors()) {
        (Some(item), Some(mode), false) => {
            let expansion = expand::expand(&cx, kind, item, &tool_args, mode);
            match cx.check() {
                Ok(()) => expansion,
                Err(errors) => {
                    let errors = errors.to_compile_error();
                    quote!(#input #errors)
                }
            }
        }
        (item, _, _) => {
            let fallback = expand::fallback(kind, input, item.as_ref(), &tool_args);
            let errors = cx.check().err().map(|e| e.to_compile_error());
            quote!(#fallback #errors)
        }
    };
    crate::debug::print(kind.attribute(), &name, &expansion);
    expansion
}
