//! The shared argument syntax of both attributes: `name = value` pairs separated by commas,
//! where a value is a string literal, a list of string literals, or something an attribute
//! parses itself (a type, a map).
//!
//! Each argument is split off at the top-level commas before its value is parsed, so one
//! malformed argument is reported and the others are still checked.

use std::collections::HashSet;

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Token};

use crate::ctxt::Ctxt;
use crate::suggest;

/// One `name = value` argument.
pub struct Arg {
    /// The argument's name (keywords are accepted as names, so `crate = …` is reported as an
    /// unknown argument rather than a parse error).
    pub name: Ident,
    /// Everything after `=`, up to the next top-level comma.
    pub value: TokenStream,
}

impl Arg {
    /// The name as a string.
    pub fn key(&self) -> String {
        self.name.unraw().to_string()
    }
}

/// Splits `tokens` at its top-level commas. Commas inside brackets, braces, parentheses and
/// the angle brackets of generic arguments (`Backend<'static, u8>`) do not split. An empty
/// piece (`a = 1,, b = 2`) is reported; a trailing comma is fine.
pub fn split_commas(cx: &Ctxt, tokens: TokenStream) -> Vec<TokenStream> {
    let mut pieces = Vec::new();
    let mut current = TokenStream::new();
    let mut angle_depth = 0usize;
    // Whether the previous token is the joint `-` of `->` or `=` of `=>`.
    let mut arrow = false;
    for token in tokens {
        let was_arrow = std::mem::replace(&mut arrow, false);
        match &token {
            TokenTree::Punct(p) if p.as_char() == ',' && angle_depth == 0 => {
                if current.is_empty() {
                    cx.error_at(p.span(), "expected an argument before this `,`");
                } else {
                    pieces.push(std::mem::take(&mut current));
                }
                continue;
            }
            TokenTree::Punct(p) => match p.as_char() {
                '<' => angle_depth += 1,
                '>' if !was_arrow => angle_depth = angle_depth.saturating_sub(1),
                '-' | '=' => arrow = p.spacing() == Spacing::Joint,
                _ => {}
            },
            _ => {}
        }
        current.extend([token]);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Parses the arguments of an attribute into `name = value` pairs, reporting malformed ones.
pub fn parse_args(cx: &Ctxt, tokens: TokenStream, example: &str) -> Vec<Arg> {
    split_commas(cx, tokens)
        .into_iter()
        .filter_map(|piece| {
            let parser = |input: ParseStream| {
                let name = Ident::parse_any(input)?;
                input.parse::<Token![=]>()?;
                let value: TokenStream = input.parse()?;
                Ok((name, value))
            };
            match parser.parse2(piece.clone()) {
                Ok((name, value)) if value.is_empty() => {
                    cx.error_spanned_by(
                        &piece,
                        format!("expected a value after `{name} =`, as in `{example}`"),
                    );
                    None
                }
                Ok((name, value)) => Some(Arg { name, value }),
                Err(_) => {
                    cx.error_spanned_by(
                        &piece,
                        format!("expected an argument `name = value`, as in `{example}`"),
                    );
                    None
                }
            }
        })
        .collect()
}

/// Tracks which arguments were given: reports unknown names (with the nearest known one) and
/// duplicates (at the duplicate), tokio-macros style.
pub struct Seen<'a> {
    attribute: &'static str,
    known: &'a [&'static str],
    seen: HashSet<String>,
}

impl<'a> Seen<'a> {
    /// A tracker for the arguments `known` of `#[attribute]`.
    pub fn new(attribute: &'static str, known: &'a [&'static str]) -> Self {
        Self {
            attribute,
            known,
            seen: HashSet::new(),
        }
    }

    /// Whether `arg` is the first occurrence of a known argument; reports it otherwise.
    pub fn accept(&mut self, cx: &Ctxt, arg: &Arg) -> bool {
        let key = arg.key();
        if !self.known.contains(&key.as_str()) {
            let mut msg = format!("unknown argument `{key}` of #[{}]", self.attribute);
            if let Some(nearest) = suggest::nearest(&key, self.known.iter().copied()) {
                msg.push_str(&format!("; did you mean `{nearest}`?"));
            }
            msg.push_str(&format!("\nknown arguments: {}", self.known.join(", ")));
            cx.error_spanned_by(&arg.name, msg);
            return false;
        }
        if !self.seen.insert(key.clone()) {
            cx.error_spanned_by(
                &arg.name,
                format!("duplicate argument `{key}`; give each argument once"),
            );
            return false;
        }
        true
    }

    /// Whether `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.seen.contains(name)
    }
}

/// A bracketed list of string literals, `["a", "b"]`.
pub struct StrList {
    /// The span of the brackets (the whole list).
    pub span: Span,
    /// The literals that parsed.
    pub items: Vec<LitStr>,
}

impl StrList {
    /// The values of the literals.
    pub fn values(&self) -> Vec<String> {
        self.items.iter().map(LitStr::value).collect()
    }
}

/// Parses a single string literal.
pub fn parse_str(cx: &Ctxt, arg: &Arg, example: &str) -> Option<LitStr> {
    match syn::parse2::<LitStr>(arg.value.clone()) {
        Ok(lit) => Some(lit),
        Err(_) => {
            cx.error_spanned_by(
                &arg.value,
                format!("expected a string literal, as in `{example}`"),
            );
            None
        }
    }
}

/// Parses a list of string literals; each element that is not a string literal is reported
/// and skipped.
pub fn parse_str_list(cx: &Ctxt, value: &TokenStream, example: &str) -> Option<StrList> {
    let mut tokens = value.clone().into_iter();
    let group = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Group(group)), None) if group.delimiter() == Delimiter::Bracket => group,
        _ => {
            cx.error_spanned_by(
                value,
                format!("expected a list of string literals, as in `{example}`"),
            );
            // A lone string is kept as a one-element list, so that the fallback expansion
            // still declares it and its users add no errors.
            let lit = syn::parse2::<LitStr>(value.clone()).ok()?;
            return Some(StrList {
                span: lit.span(),
                items: vec![lit],
            });
        }
    };
    let items = split_commas(cx, group.stream())
        .into_iter()
        .filter_map(|piece| match syn::parse2::<LitStr>(piece.clone()) {
            Ok(lit) => Some(lit),
            Err(_) => {
                cx.error_spanned_by(&piece, "expected a string literal");
                None
            }
        })
        .collect();
    Some(StrList {
        span: group.span(),
        items,
    })
}

/// Reports every literal of `items` whose value appeared earlier, at the repeated literal.
pub fn report_duplicates<'l>(cx: &Ctxt, items: impl IntoIterator<Item = &'l LitStr>, what: &str) {
    let mut seen = HashSet::new();
    for lit in items {
        let value = lit.value();
        if !seen.insert(value.clone()) {
            cx.error_spanned_by(lit, format!("duplicate {what} {value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn split(tokens: TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let pieces = split_commas(&cx, tokens);
        cx.check().unwrap();
        pieces.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn commas_inside_groups_and_generic_arguments_do_not_split() {
        let pieces = split(quote! {
            scopes = ["a", "b"],
            resource = Backend<'static, fn(u8, u16) -> Vec<u8>, 2>,
            implies = { "a" => ["b", "c"], "b" => "c" },
        });
        assert_eq!(pieces.len(), 3, "{pieces:#?}");
        assert!(pieces[1].ends_with("2 >"), "{}", pieces[1]);
    }

    #[test]
    fn empty_argument_is_reported() {
        let cx = Ctxt::new();
        let pieces = split_commas(&cx, quote!(a = 1,, b = 2,));
        assert_eq!(pieces.len(), 2);
        assert!(cx.check().is_err());
    }
}
