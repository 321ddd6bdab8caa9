//! Conditional compilation carried over to generated items: what a `#[cfg]` removes, the
//! items generated next to it must lose too (rmcp's `#[tool]` forgets this).

use syn::punctuated::Punctuated;
use syn::{Attribute, Meta, Token, parse_quote};

/// The attributes of `attrs` that decide whether the item exists: every `#[cfg(…)]`, and every
/// `#[cfg_attr(pred, …)]` reduced to the `cfg(…)` attributes it applies (other attributes a
/// `cfg_attr` applies, such as `tool(…)`, belong to the item alone and are not copied).
pub fn cfg_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter_map(|attr| reduce(&attr.meta).map(|meta| parse_quote!(#[#meta])))
        .collect()
}

/// `meta` reduced to the part that is conditional compilation, if any.
fn reduce(meta: &Meta) -> Option<Meta> {
    if meta.path().is_ident("cfg") {
        return Some(meta.clone());
    }
    if !meta.path().is_ident("cfg_attr") {
        return None;
    }
    let Meta::List(list) = meta else {
        return None;
    };
    let mut args = list
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .ok()?
        .into_iter();
    let predicate = args.next()?;
    let kept: Vec<Meta> = args.filter_map(|meta| reduce(&meta)).collect();
    if kept.is_empty() {
        return None;
    }
    Some(parse_quote!(cfg_attr(#predicate, #(#kept),*)))
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::ItemFn;

    use super::*;

    fn cfgs_of(item: ItemFn) -> String {
        let attrs = cfg_attrs(&item.attrs);
        quote!(#(#attrs)*).to_string()
    }

    #[test]
    fn cfg_is_copied() {
        let item: ItemFn = parse_quote! {
            #[doc = "x"]
            #[cfg(feature = "a")]
            #[inline]
            fn f() {}
        };
        assert_eq!(cfgs_of(item), quote!(#[cfg(feature = "a")]).to_string());
    }

    #[test]
    fn cfg_attr_is_reduced_to_its_cfgs() {
        let item: ItemFn = parse_quote! {
            #[cfg_attr(test, allow(dead_code), cfg(unix))]
            #[cfg_attr(feature = "rmcp", tool(name = "x"))]
            #[cfg_attr(a, cfg_attr(b, cfg(c), inline))]
            fn f() {}
        };
        assert_eq!(
            cfgs_of(item),
            quote!(#[cfg_attr(test, cfg(unix))] #[cfg_attr(a, cfg_attr(b, cfg(c)))]).to_string()
        );
    }
}
