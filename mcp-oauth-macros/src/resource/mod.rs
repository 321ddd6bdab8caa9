//! `#[protected_resource(...)]`: parse ([`ast`]), check ([`valid`]), generate ([`expand`]).

pub mod ast;
pub mod expand;
pub mod valid;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput};

use crate::ctxt::Ctxt;

/// The attribute's expansion: on success the struct and its declaration; on error the struct
/// unchanged, the errors, and the declaration built from what parsed (so that nothing else
/// fails because of the same mistake).
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let item = match syn::parse2::<DeriveInput>(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            cx.error_at(
                Span::call_site(),
                "#[protected_resource] goes on a struct, e.g. `pub struct Calendar;`",
            );
            let errors = cx.check().err().map(|e| e.to_compile_error());
            return quote!(#input #errors);
        }
    };
    if !matches!(item.data, Data::Struct(_)) {
        cx.error_spanned_by(
            &item.ident,
            "#[protected_resource] goes on a struct, e.g. `pub struct Calendar;`",
        );
    }
    let resource = ast::Resource::parse(&cx, args, Span::call_site());
    valid::check(&cx, &resource, &item.ident.unraw().to_string());
    let generated = expand::expand(&resource, &item);
    let errors = cx.check().err().map(|e| e.to_compile_error());
    let expansion = quote!(#generated #errors);
    crate::debug::print("protected_resource", &item.ident.to_string(), &expansion);
    expansion
}
