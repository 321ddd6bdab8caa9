//! Code generation for `#[protected_resource]`.
//!
//! The declaration lives on a hidden marker type, `__McpOAuthResource`, in a hidden module
//! next to the struct and glob-imported into the struct's module:
//!
//! - a nested `const` item inside a tool's body cannot name `Self` or the generics of an impl,
//!   but it can name the marker, which is never generic;
//! - the glob import lets `#[mcp_tool]` in the same module find the resource without being
//!   told; with two resources in one module the name is ambiguous only where it is used;
//! - the struct's own impl delegates to the marker, so `resource = Calendar` and the implicit
//!   marker are the same resource.
//!
//! Each declared URI template is checked by a `const` item next to the struct, spanned at the
//! template's literal, with the runtime's own grammar (`check_uri_template`, a `const fn`):
//!
//! ```ignore
//! const _: () = if let Err(error) = ::mcp_oauth::__private::check_uri_template("calendar://{day") {
//!     ::core::panic!("{}", ::mcp_oauth::__private::malformed_uri_template_message(
//!         "calendar://{day", error,
//!     ).as_str())
//! };
//! ```
//!
//! The same expansion serves as the fallback when the declaration has errors: it is built from
//! whatever parsed, so that tools in the same module do not add errors of their own.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, DeriveInput, Ident, LitStr, parse_quote};

use super::ast::Resource;
use crate::args::StrList;
use crate::cfg::cfg_attrs;

/// The name of the marker type, as `#[mcp_tool]` refers to it.
pub const MARKER: &str = "__McpOAuthResource";

/// The item, unchanged, followed by the generated declaration.
pub fn expand(resource: &Resource, item: &DeriveInput) -> TokenStream {
    let ident = &item.ident;
    let type_name = ident.unraw().to_string();
    let module = format_ident!("__mcp_oauth_resource_{}", type_name);
    let marker = format_ident!("{}", MARKER);
    let cfgs = cfg_attrs(&item.attrs);
    let declaration = declaration(resource, &type_name);
    let undeclared_message = undeclared_message(resource, &type_name);
    let template_checks = template_checks(resource, &cfgs);

    let private = quote!(::mcp_oauth::__private);
    let trait_ = quote!(#private::ProtectedResource);
    let marker_path = quote!(#module::#marker);

    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let where_clause = if item.generics.params.is_empty() {
        where_clause.cloned()
    } else {
        // The trait is `'static`: implement it for the instantiations that are.
        let mut where_clause = where_clause.cloned().unwrap_or_else(|| parse_quote!(where));
        where_clause.predicates.push(parse_quote!(Self: 'static));
        Some(where_clause)
    };

    // Spanned at the struct's name: an ambiguity error for the marker notes this line.
    let glob_module = Ident::new(&module.to_string(), ident.span());
    let glob = quote_spanned! {ident.span()=>
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(unused_imports)]
        use #glob_module::*;
    };

    quote! {
        #item

        #(#template_checks)*

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #module {
            #[doc(hidden)]
            #[allow(unreachable_pub)]
            pub struct #marker;

            impl #trait_ for #marker {
                const DECLARATION: &'static #private::ResourceDeclaration = &#declaration;
                const UNDECLARED_SCOPE_MESSAGE: &'static str = #undeclared_message;

                fn scope_hierarchy() -> &'static #private::ScopeHierarchy {
                    static HIERARCHY: #private::OnceLock<#private::ScopeHierarchy> =
                        #private::OnceLock::new();
                    HIERARCHY.get_or_init(|| {
                        #private::build_hierarchy(<Self as #trait_>::DECLARATION)
                    })
                }
            }
        }

        #glob

        #(#cfgs)*
        impl #impl_generics #trait_ for #ident #ty_generics #where_clause {
            const DECLARATION: &'static #private::ResourceDeclaration =
                <#marker_path as #trait_>::DECLARATION;
            const UNDECLARED_SCOPE_MESSAGE: &'static str =
                <#marker_path as #trait_>::UNDECLARED_SCOPE_MESSAGE;

            fn scope_hierarchy() -> &'static #private::ScopeHierarchy {
                <#marker_path as #trait_>::scope_hierarchy()
            }
        }
    }
}

/// The `ResourceDeclaration` value: the members given, the rest from `ResourceDeclaration::new`.
fn declaration(resource: &Resource, type_name: &str) -> TokenStream {
    let private = quote!(::mcp_oauth::__private);
    let some = |value: TokenStream| quote!(::core::option::Option::Some(#value));
    let mut members = Vec::new();
    let mut member = |name: &str, value: TokenStream| {
        let name = format_ident!("{}", name);
        members.push(quote!(#name: #value));
    };

    if let Some(scopes) = resource.scopes.as_ref().filter(|l| !l.items.is_empty()) {
        member("scopes", slice(scopes));
    }
    if let Some(implies) = &resource.implies {
        let pairs: Vec<TokenStream> = implies
            .pairs()
            .map(|(broader, narrower)| {
                let (broader, narrower) = (lit(broader), lit(narrower));
                quote!((#broader, #narrower))
            })
            .collect();
        if !pairs.is_empty() {
            member("scope_implications", quote!(&[#(#pairs),*]));
        }
    }
    if let Some(resources) = resource
        .resources
        .as_ref()
        .filter(|r| !r.entries.is_empty())
    {
        let entries = resources.entries.iter().map(|entry| {
            let uri = lit(&entry.uri);
            let scopes = entry.scopes.iter().map(lit);
            quote! {
                #private::DeclaredResource { uri_template: #uri, scopes: &[#(#scopes),*] }
            }
        });
        member("resources", quote!(&[#(#entries),*]));
    }
    if let Some(required) = resource
        .required_scopes
        .as_ref()
        .filter(|l| !l.items.is_empty())
    {
        member("required_scopes", slice(required));
    }
    if let Some(challenge) = &resource.challenge_scopes {
        member("challenge_scopes", some(slice(challenge)));
    }
    for (name, value) in [
        ("resource_name", &resource.resource_name),
        ("resource_documentation", &resource.resource_documentation),
        ("resource_policy_uri", &resource.resource_policy_uri),
        ("resource_tos_uri", &resource.resource_tos_uri),
    ] {
        if let Some(value) = value {
            member(name, some(lit(value).into_token_stream()));
        }
    }
    if let Some(methods) = &resource.bearer_methods_supported {
        member("bearer_methods_supported", slice(methods));
    }
    for (name, list) in [
        (
            "resource_signing_alg_values_supported",
            &resource.resource_signing_alg_values_supported,
        ),
        (
            "authorization_details_types_supported",
            &resource.authorization_details_types_supported,
        ),
        (
            "dpop_signing_alg_values_supported",
            &resource.dpop_signing_alg_values_supported,
        ),
    ] {
        if let Some(list) = list.as_ref().filter(|l| !l.items.is_empty()) {
            member(name, slice(list));
        }
    }
    // `dpop_bound_access_tokens_required` is not a member: the runtime advertises it from
    // the mode.
    if let Some(dpop) = &resource.dpop
        && let Some(mode) = dpop.mode
    {
        // At the mode's literal: an error in this path points at `dpop = "…"`.
        let variant = Ident::new(mode.variant(), dpop.lit.span());
        member(
            "dpop",
            quote_spanned!(dpop.lit.span()=> #private::DpopMode::#variant),
        );
    }

    let url = resource
        .resource
        .as_ref()
        .map_or_else(|| LitStr::new("", Span::call_site()), lit);
    let servers = resource
        .authorization_servers
        .as_ref()
        .map_or_else(|| quote!(&[]), slice);
    let base = quote!(#private::ResourceDeclaration::new(#type_name, #url, #servers));
    if members.is_empty() {
        base
    } else {
        quote!(#private::ResourceDeclaration { #(#members,)* ..#base })
    }
}

/// One `const` item per declared URI template, failing the build at the template's literal
/// when the runtime's grammar refuses it (the message says what is wrong).
fn template_checks(resource: &Resource, cfgs: &[Attribute]) -> Vec<TokenStream> {
    let private = quote!(::mcp_oauth::__private);
    let Some(resources) = &resource.resources else {
        return Vec::new();
    };
    resources
        .entries
        .iter()
        .map(|entry| {
            let uri = lit(&entry.uri);
            quote_spanned! {uri.span()=>
                #(#cfgs)*
                const _: () = if let ::core::result::Result::Err(error) =
                    #private::check_uri_template(#uri)
                {
                    ::core::panic!(
                        "{}",
                        #private::malformed_uri_template_message(#uri, error).as_str(),
                    )
                };
            }
        })
        .collect()
}

/// The resource's `UNDECLARED_SCOPE_MESSAGE`. The generated scope checks no longer read it
/// (they name the scope and the nearest declared one); it is kept for code that does.
fn undeclared_message(resource: &Resource, type_name: &str) -> String {
    let declared = resource
        .scopes
        .as_ref()
        .map(StrList::values)
        .filter(|v| !v.is_empty())
        .map_or_else(|| "none".to_owned(), |v| v.join(", "));
    format!("scope not declared by resource `{type_name}` (declared: {declared})")
}

/// A fresh string literal with the value of `lit` (dropping any suffix), at its span.
fn lit(lit: &LitStr) -> LitStr {
    LitStr::new(&lit.value(), lit.span())
}

/// `&["a", "b"]`.
fn slice(list: &StrList) -> TokenStream {
    let items = list.items.iter().map(lit);
    quote!(&[#(#items),*])
}
