//! The arguments of `#[protected_resource(...)]`, parsed into a typed model. Syntax errors are
//! recorded in the [`Ctxt`]; what parsed is kept, so that the checks and the fallback expansion
//! still see it.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{LitStr, Token};

use crate::args::{self, Arg, Seen, StrList};
use crate::ctxt::Ctxt;
use crate::suggest;

/// The arguments `#[protected_resource]` knows.
pub const KNOWN: &[&str] = &[
    "resource",
    "authorization_servers",
    "scopes",
    "implies",
    "resources",
    "required_scopes",
    "challenge_scopes",
    "resource_name",
    "resource_documentation",
    "resource_policy_uri",
    "resource_tos_uri",
    "bearer_methods_supported",
    "resource_signing_alg_values_supported",
    "authorization_details_types_supported",
    "dpop",
    "dpop_signing_alg_values_supported",
];

/// RFC 9728 members refused until this crate enforces what they advertise.
pub const SENDER_CONSTRAINED: &[&str] = &["tls_client_certificate_bound_access_tokens"];

/// The RFC 9728 member that follows from `dpop = "required"` and is never written by hand.
pub const DPOP_REQUIRED_MEMBER: &str = "dpop_bound_access_tokens_required";

/// A DPoP mode as `dpop = "…"` names it (mirrors `mcp_oauth::dpop::DpopMode`; the names are
/// exact, lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    Disabled,
    Allowed,
    Required,
}

impl DpopMode {
    /// Every mode, in order.
    pub const ALL: [DpopMode; 3] = [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required];

    /// The name written in `dpop = "…"`.
    pub const fn name(self) -> &'static str {
        match self {
            DpopMode::Disabled => "disabled",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }

    /// The runtime enum's variant.
    pub const fn variant(self) -> &'static str {
        match self {
            DpopMode::Disabled => "Disabled",
            DpopMode::Allowed => "Allowed",
            DpopMode::Required => "Required",
        }
    }

    /// What the mode means, for the list of modes in an error.
    const fn meaning(self) -> &'static str {
        match self {
            DpopMode::Disabled => "the default: bearer tokens only",
            DpopMode::Allowed => "bearer tokens and DPoP-bound tokens with a proof",
            DpopMode::Required => "DPoP-bound tokens with a proof only",
        }
    }

    /// The mode named exactly `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// `dpop = "allowed"`.
pub struct Dpop {
    /// The literal as written.
    pub lit: LitStr,
    /// The mode it names; `None` when it names none (reported at the literal).
    pub mode: Option<DpopMode>,
}

const EXAMPLE: &str = "#[protected_resource(resource = \"https://mcp.example.com/mcp\", \
                       authorization_servers = [\"https://auth.example.com\"], \
                       scopes = [\"calendar:read\"])]";

/// `#[protected_resource(...)]`'s arguments.
#[derive(Default)]
pub struct Resource {
    pub resource: Option<LitStr>,
    pub authorization_servers: Option<StrList>,
    pub scopes: Option<StrList>,
    pub implies: Option<Implies>,
    pub resources: Option<Resources>,
    pub required_scopes: Option<StrList>,
    pub challenge_scopes: Option<StrList>,
    pub resource_name: Option<LitStr>,
    pub resource_documentation: Option<LitStr>,
    pub resource_policy_uri: Option<LitStr>,
    pub resource_tos_uri: Option<LitStr>,
    pub bearer_methods_supported: Option<StrList>,
    pub resource_signing_alg_values_supported: Option<StrList>,
    pub authorization_details_types_supported: Option<StrList>,
    pub dpop: Option<Dpop>,
    pub dpop_signing_alg_values_supported: Option<StrList>,
}

/// `implies = { "broader" => ["narrower", …], … }`.
pub struct Implies {
    pub entries: Vec<Implication>,
}

/// `"broader" => ["narrower", …]` (or `"broader" => "narrower"`).
pub struct Implication {
    pub broader: LitStr,
    pub narrower: Vec<LitStr>,
}

/// `resources = { "uri or template" => ["scope", …], … }`.
pub struct Resources {
    pub entries: Vec<ResourceEntry>,
}

/// `"calendar://events/{day}" => ["calendar:read"]` (or `=> "calendar:read"`).
pub struct ResourceEntry {
    /// The URI or RFC 6570 URI template.
    pub uri: LitStr,
    /// The scopes reading it needs.
    pub scopes: Vec<LitStr>,
}

impl Implies {
    /// Every `(broader, narrower)` pair, in written order.
    pub fn pairs(&self) -> impl Iterator<Item = (&LitStr, &LitStr)> {
        self.entries
            .iter()
            .flat_map(|e| e.narrower.iter().map(move |n| (&e.broader, n)))
    }
}

impl Resource {
    /// Parses the attribute's arguments. `attribute_span` is where a missing required argument
    /// is reported.
    pub fn parse(cx: &Ctxt, tokens: TokenStream, attribute_span: Span) -> Self {
        let mut this = Resource::default();
        let mut seen = Seen::new("protected_resource", KNOWN);
        for arg in args::parse_args(cx, tokens, "resource = \"https://mcp.example.com/mcp\"") {
            let key = arg.key();
            if key == DPOP_REQUIRED_MEMBER {
                cx.error_spanned_by(
                    &arg.name,
                    format!(
                        "`{key}` is not set by hand: the metadata says `true` exactly when DPoP \
                         is required; set `dpop = \"required\"` instead (or `dpop = \"allowed\"` \
                         to accept bearer tokens too)"
                    ),
                );
                continue;
            }
            if SENDER_CONSTRAINED.contains(&key.as_str()) {
                cx.error_spanned_by(
                    &arg.name,
                    format!(
                        "`{key}` is not supported yet: advertising sender-constrained tokens \
                         that are not enforced is a security bug"
                    ),
                );
                continue;
            }
            if !seen.accept(cx, &arg) {
                continue;
            }
            this.set(cx, &key, &arg);
        }
        for required in ["resource", "authorization_servers"] {
            if !seen.contains(required) {
                cx.error_at(
                    attribute_span,
                    format!("missing argument `{required}`, as in `{EXAMPLE}`"),
                );
            }
        }
        this
    }

    fn set(&mut self, cx: &Ctxt, key: &str, arg: &Arg) {
        let string = |example: &str| args::parse_str(cx, arg, example);
        let list = |example: &str| args::parse_str_list(cx, &arg.value, example);
        match key {
            "resource" => self.resource = string("resource = \"https://mcp.example.com/mcp\""),
            "authorization_servers" => {
                self.authorization_servers =
                    list("authorization_servers = [\"https://auth.example.com\"]");
            }
            "scopes" => self.scopes = list("scopes = [\"calendar:read\", \"calendar:write\"]"),
            "implies" => {
                self.implies = parse_map(cx, &arg.value, &IMPLIES).map(|entries| Implies {
                    entries: entries
                        .into_iter()
                        .map(|(broader, narrower)| Implication { broader, narrower })
                        .collect(),
                });
            }
            "resources" => {
                self.resources = parse_map(cx, &arg.value, &RESOURCES).map(|entries| Resources {
                    entries: entries
                        .into_iter()
                        .map(|(uri, scopes)| ResourceEntry { uri, scopes })
                        .collect(),
                });
            }
            "required_scopes" => self.required_scopes = list("required_scopes = [\"mcp:use\"]"),
            "challenge_scopes" => {
                self.challenge_scopes = list("challenge_scopes = [\"calendar:read\"]");
            }
            "resource_name" => self.resource_name = string("resource_name = \"Calendar\""),
            "resource_documentation" => {
                self.resource_documentation =
                    string("resource_documentation = \"https://docs.example.com/calendar\"");
            }
            "resource_policy_uri" => {
                self.resource_policy_uri =
                    string("resource_policy_uri = \"https://example.com/privacy\"");
            }
            "resource_tos_uri" => {
                self.resource_tos_uri = string("resource_tos_uri = \"https://example.com/tos\"");
            }
            "bearer_methods_supported" => {
                self.bearer_methods_supported = list("bearer_methods_supported = [\"header\"]");
            }
            "resource_signing_alg_values_supported" => {
                self.resource_signing_alg_values_supported =
                    list("resource_signing_alg_values_supported = [\"ES256\"]");
            }
            "authorization_details_types_supported" => {
                self.authorization_details_types_supported =
                    list("authorization_details_types_supported = [\"payment_initiation\"]");
            }
            "dpop" => {
                self.dpop = string("dpop = \"required\"").map(|lit| {
                    let mode = DpopMode::from_name(&lit.value());
                    if mode.is_none() {
                        cx.error_spanned_by(&lit, unknown_dpop_mode(&lit.value()));
                    }
                    Dpop { lit, mode }
                });
            }
            "dpop_signing_alg_values_supported" => {
                self.dpop_signing_alg_values_supported =
                    list("dpop_signing_alg_values_supported = [\"ES256\", \"EdDSA\"]");
            }
            _ => unreachable!("`{key}` is in KNOWN but has no setter"),
        }
    }
}

/// The error for `dpop = "{name}"` naming no mode: the nearest mode, then every mode.
fn unknown_dpop_mode(name: &str) -> String {
    let mut msg = format!("unknown DPoP mode {name:?}");
    if let Some(nearest) = suggest::nearest_or_case(name, DpopMode::ALL.map(DpopMode::name)) {
        msg.push_str(&format!("; did you mean {nearest:?}?"));
    }
    let modes: Vec<String> = DpopMode::ALL
        .iter()
        .map(|mode| format!("{:?} ({})", mode.name(), mode.meaning()))
        .collect();
    msg.push_str(&format!("\nDPoP modes: {}", modes.join(", ")));
    msg
}

/// How one map argument (`implies`, `resources`) is described in its errors.
struct MapSyntax {
    /// What the map is, as in "expected a map of {what}".
    what: &'static str,
    /// The shape of one entry.
    entry: &'static str,
    /// The whole argument, as an example.
    example: &'static str,
    /// One entry, as an example for its value.
    entry_example: &'static str,
}

const IMPLIES: MapSyntax = MapSyntax {
    what: "scope implications",
    entry: "\"broader\" => [\"narrower\", …]",
    example: "implies = { \"calendar:write\" => [\"calendar:read\"], \"calendar:admin\" => [\"calendar:write\"] }",
    entry_example: "\"calendar:write\" => [\"calendar:read\"]",
};

const RESOURCES: MapSyntax = MapSyntax {
    what: "MCP resources (URIs or RFC 6570 URI templates) to the scopes reading them needs",
    entry: "\"uri or template\" => [\"scope\", …]",
    example: "resources = { \"calendar://events/{day}\" => [\"calendar:read\"], \"calendar://settings\" => \"calendar:admin\" }",
    entry_example: "\"calendar://events/{day}\" => [\"calendar:read\"]",
};

/// Parses `{ "key" => ["scope", …], "key" => "scope", … }`; each malformed entry is reported
/// and skipped.
fn parse_map(
    cx: &Ctxt,
    value: &TokenStream,
    syntax: &MapSyntax,
) -> Option<Vec<(LitStr, Vec<LitStr>)>> {
    let mut tokens = value.clone().into_iter();
    let group = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Group(group)), None) if group.delimiter() == Delimiter::Brace => group,
        _ => {
            cx.error_spanned_by(
                value,
                format!(
                    "expected a map of {}, as in `{}`",
                    syntax.what, syntax.example
                ),
            );
            return None;
        }
    };
    let entries = args::split_commas(cx, group.stream())
        .into_iter()
        .filter_map(|piece| {
            let parser = |input: ParseStream| {
                let key: LitStr = input.parse()?;
                input.parse::<Token![=>]>()?;
                let rest: TokenStream = input.parse()?;
                Ok((key, rest))
            };
            let Ok((key, rest)) = parser.parse2(piece.clone()) else {
                cx.error_spanned_by(
                    &piece,
                    format!("expected `{}`, as in `{}`", syntax.entry, syntax.example),
                );
                return None;
            };
            let scopes = if let Ok(single) = syn::parse2::<LitStr>(rest.clone()) {
                vec![single]
            } else if matches!(
                rest.clone().into_iter().next(),
                Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Bracket
            ) {
                args::parse_str_list(cx, &rest, syntax.entry_example)?.items
            } else {
                let msg = format!(
                    "expected a scope or a list of scopes after `=>`, as in `{}`",
                    syntax.entry_example
                );
                if rest.is_empty() {
                    cx.error_spanned_by(&piece, msg);
                } else {
                    cx.error_spanned_by(&rest, msg);
                }
                return None;
            };
            Some((key, scopes))
        })
        .collect();
    Some(entries)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (Resource, Result<(), syn::Error>) {
        let cx = Ctxt::new();
        let resource = Resource::parse(&cx, tokens, Span::call_site());
        (resource, cx.check())
    }

    fn messages(result: Result<(), syn::Error>) -> Vec<String> {
        result
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn full_declaration_parses() {
        let (resource, result) = parse(quote! {
            resource = "https://calendar.example.com/mcp",
            authorization_servers = ["https://auth.example.com"],
            scopes = ["calendar:read", "calendar:write", "calendar:admin"],
            implies = {
                "calendar:admin" => ["calendar:write"],
                "calendar:write" => "calendar:read",
            },
            required_scopes = [],
            challenge_scopes = ["calendar:read"],
            resource_name = "Calendar",
            bearer_methods_supported = ["header"],
        });
        assert!(result.is_ok());
        assert_eq!(
            resource.resource.unwrap().value(),
            "https://calendar.example.com/mcp"
        );
        assert_eq!(resource.scopes.unwrap().values().len(), 3);
        let implies = resource.implies.unwrap();
        let pairs: Vec<(String, String)> = implies
            .pairs()
            .map(|(b, n)| (b.value(), n.value()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("calendar:admin".into(), "calendar:write".into()),
                ("calendar:write".into(), "calendar:read".into())
            ]
        );
        assert!(resource.required_scopes.unwrap().items.is_empty());
    }

    #[test]
    fn every_error_is_collected() {
        let (_, result) = parse(quote! {
            resource = 42,
            scope = ["a"],
            scopes = ["a", 7],
            scopes = ["b"],
            dpop_bound_access_tokens_required = true,
            implies = { "a" -> "b" },
        });
        let messages = messages(result);
        assert_eq!(messages.len(), 7, "{messages:#?}");
        assert!(messages[0].starts_with("expected a string literal"));
        assert!(messages[1].contains("did you mean `scopes`?"));
        assert!(messages[2].starts_with("expected a string literal"));
        assert!(messages[3].starts_with("duplicate argument `scopes`"));
        assert!(messages[4].contains("set `dpop = \"required\"` instead"));
        assert!(messages[5].starts_with("expected `\"broader\" =>"));
        assert!(messages[6].starts_with("missing argument `authorization_servers`"));
    }

    #[test]
    fn keywords_are_reported_as_unknown_arguments() {
        let (_, result) = parse(quote! {
            resource = "https://ex.com/mcp",
            authorization_servers = ["https://auth.ex.com"],
            crate = "mcp_oauth",
        });
        let messages = messages(result);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].starts_with("unknown argument `crate`"));
    }
}
