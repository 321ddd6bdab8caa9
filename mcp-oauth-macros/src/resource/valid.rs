//! The semantic checks of a `#[protected_resource]` declaration: URLs, scope syntax, the
//! hierarchy, the declared MCP resources, the metadata members. Every violation is recorded at
//! the offending literal. (A malformed URI template is reported by the compiler: the expansion
//! checks each one with the runtime's `const fn`, so that the grammar is written once.)

use std::collections::{BTreeMap, HashMap, HashSet};

use syn::LitStr;

use super::ast::{DpopMode, Resource};
use crate::args::{self, StrList};
use crate::ctxt::Ctxt;
use crate::scope::{challenge_parameter_error, scope_token_error, undeclared_scope_message};
use crate::suggest;
use crate::url::{check_https_url, check_identifier};

/// The most scopes one resource may declare: tool requirements are 128-bit masks, with the
/// all-ones mask reserved for "undeclared" (mirrors `mcp_oauth::resource::MAX_DECLARED_SCOPES`).
pub const MAX_DECLARED_SCOPES: usize = 127;

/// The DPoP proof algorithms the runtime verifies: asymmetric JWS algorithms only, as a proof
/// is signed by the key it carries (mirrors `mcp_oauth::crypto::Algorithm::ALL`).
pub const DPOP_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The proof algorithms of a resource that names none (mirrors
/// `mcp_oauth::dpop::DEFAULT_PROOF_ALGORITHMS`).
pub const DEFAULT_DPOP_ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "PS256", "RS256"];

/// The algorithm every DPoP client supports, which every list must include.
const MANDATORY_DPOP_ALGORITHM: &str = "ES256";

/// Runs every check; `type_name` is the struct's name, for messages.
pub fn check(cx: &Ctxt, resource: &Resource, type_name: &str) {
    check_urls(cx, resource);
    let declared = check_scopes(cx, resource.scopes.as_ref());
    check_hierarchy(cx, resource, &declared);
    check_resources(cx, resource, type_name);
    for (member, list) in [
        ("required_scopes", &resource.required_scopes),
        ("challenge_scopes", &resource.challenge_scopes),
    ] {
        if let Some(list) = list {
            check_declared(cx, &list.items, &declared, member);
            args::report_duplicates(cx, &list.items, &format!("scope in {member}"));
        }
    }
    check_bearer_methods(cx, resource.bearer_methods_supported.as_ref());
    check_signing_algs(cx, resource.resource_signing_alg_values_supported.as_ref());
    check_dpop(cx, resource);
    if let Some(types) = &resource.authorization_details_types_supported {
        args::report_duplicates(cx, &types.items, "authorization details type");
    }
}

fn check_urls(cx: &Ctxt, resource: &Resource) {
    if let Some(url) = &resource.resource
        && let Err(msg) = check_identifier("resource", &url.value())
    {
        cx.error_spanned_by(url, msg);
    }
    if let Some(servers) = &resource.authorization_servers {
        if servers.items.is_empty() {
            cx.error_at(
                servers.span,
                "authorization_servers is empty: MCP requires at least one; add the issuer of \
                 the tokens this server accepts",
            );
        }
        for issuer in &servers.items {
            if let Err(msg) = check_identifier("authorization_servers", &issuer.value()) {
                cx.error_spanned_by(issuer, msg);
            }
        }
        args::report_duplicates(cx, &servers.items, "authorization server");
    }
    for (member, url) in [
        ("resource_documentation", &resource.resource_documentation),
        ("resource_policy_uri", &resource.resource_policy_uri),
        ("resource_tos_uri", &resource.resource_tos_uri),
    ] {
        if let Some(url) = url
            && let Err(msg) = check_https_url(member, &url.value())
        {
            cx.error_spanned_by(url, msg);
        }
    }
}

/// Checks the declared scopes; returns the set of declared values (valid or not, so that a
/// malformed scope is reported once, not again by every reference to it).
fn check_scopes(cx: &Ctxt, scopes: Option<&StrList>) -> HashSet<String> {
    let Some(scopes) = scopes else {
        return HashSet::new();
    };
    for scope in &scopes.items {
        let value = scope.value();
        if let Some(msg) = scope_token_error(&value).or_else(|| challenge_parameter_error(&value)) {
            cx.error_spanned_by(scope, msg);
        } else if value == "offline_access" {
            cx.error_spanned_by(
                scope,
                "do not declare \"offline_access\": MCP says resources should not advertise it \
                 (refresh tokens are between the client and the authorization server); remove it",
            );
        }
    }
    args::report_duplicates(cx, &scopes.items, "scope");
    if let Some(extra) = scopes.items.get(MAX_DECLARED_SCOPES) {
        cx.error_spanned_by(
            extra,
            format!(
                "too many scopes: {} declared, at most {MAX_DECLARED_SCOPES} (each tool's \
                 requirement is a bit mask over the declared scopes)",
                scopes.items.len()
            ),
        );
    }
    scopes.values().into_iter().collect()
}

fn check_declared(cx: &Ctxt, items: &[LitStr], declared: &HashSet<String>, member: &str) {
    for scope in items {
        let value = scope.value();
        if !declared.contains(&value) {
            cx.error_spanned_by(scope, undeclared(member, &value, declared));
        }
    }
}

fn undeclared(member: &str, scope: &str, declared: &HashSet<String>) -> String {
    let mut msg = format!("{member} names {scope:?}, which is not in `scopes`");
    if let Some(nearest) = crate::suggest::nearest(scope, declared.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean {nearest:?}?"));
    } else {
        msg.push_str("; declare it there first");
    }
    msg
}

fn check_hierarchy(cx: &Ctxt, resource: &Resource, declared: &HashSet<String>) {
    let Some(implies) = &resource.implies else {
        return;
    };
    // Each broader scope once, each of its narrower scopes once.
    let mut keys = HashSet::new();
    for entry in &implies.entries {
        if !keys.insert(entry.broader.value()) {
            cx.error_spanned_by(
                &entry.broader,
                format!(
                    "{:?} appears twice in `implies`; list all the scopes it implies in one entry",
                    entry.broader.value()
                ),
            );
        }
        args::report_duplicates(
            cx,
            &entry.narrower,
            &format!("implication of {:?}:", entry.broader.value()),
        );
    }

    // Every scope named must be declared; a scope may not imply itself.
    let mut edges: BTreeMap<String, Vec<&LitStr>> = BTreeMap::new();
    for entry in &implies.entries {
        check_declared(
            cx,
            std::slice::from_ref(&entry.broader),
            declared,
            "implies",
        );
        check_declared(cx, &entry.narrower, declared, "implies");
        for narrower in &entry.narrower {
            if narrower.value() == entry.broader.value() {
                cx.error_spanned_by(
                    narrower,
                    format!(
                        "{:?} implies itself; a scope always satisfies itself, remove this",
                        narrower.value()
                    ),
                );
            } else {
                edges
                    .entry(entry.broader.value())
                    .or_default()
                    .push(narrower);
            }
        }
    }
    for cycle in cycles(&edges) {
        let (_, closing) = cycle.last().expect("a cycle has an edge");
        let mut path: Vec<String> = cycle.iter().map(|(from, _)| format!("{from:?}")).collect();
        path.push(format!("{:?}", closing.value()));
        cx.error_spanned_by(
            closing,
            format!(
                "scope hierarchy cycle: {}; implications go from a broader scope to narrower \
                 ones, remove one of these",
                path.join(" => ")
            ),
        );
    }
}

/// The cycles of the implication graph, each as its edges `(from, to literal)` in order, the
/// last edge closing the cycle. Each cycle is reported once, by the edge that closes it in a
/// depth-first search from the scopes in sorted order.
fn cycles<'a>(edges: &BTreeMap<String, Vec<&'a LitStr>>) -> Vec<Vec<(String, &'a LitStr)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        OnPath,
        Done,
    }
    let mut state: HashMap<String, State> = HashMap::new();
    let mut found = Vec::new();
    for start in edges.keys() {
        if state.contains_key(start) {
            continue;
        }
        state.insert(start.clone(), State::OnPath);
        // The current path: (node, index of the next edge to follow, edge that led here).
        let mut path: Vec<(String, usize, Option<&'a LitStr>)> = vec![(start.clone(), 0, None)];
        while let Some((node, next, _)) = path.last_mut() {
            let node = node.clone();
            let targets = edges.get(&node).map(Vec::as_slice).unwrap_or_default();
            let Some(&lit) = targets.get(*next) else {
                state.insert(node, State::Done);
                path.pop();
                continue;
            };
            *next += 1;
            let target = lit.value();
            match state.get(&target) {
                None => {
                    state.insert(target.clone(), State::OnPath);
                    path.push((target, 0, Some(lit)));
                }
                Some(State::OnPath) => {
                    let from = path.iter().position(|(n, _, _)| *n == target).unwrap_or(0);
                    let mut cycle: Vec<(String, &LitStr)> = path[from + 1..]
                        .iter()
                        .zip(&path[from..])
                        .map(|((_, _, via), (prev, _, _))| {
                            (prev.clone(), via.expect("not the root"))
                        })
                        .collect();
                    cycle.push((node, lit));
                    found.push(cycle);
                }
                Some(State::Done) => {}
            }
        }
    }
    found
}

/// Each URI or template once, each of its scopes declared (at the scope, with the nearest
/// declared one) and named once.
fn check_resources(cx: &Ctxt, resource: &Resource, type_name: &str) {
    let Some(resources) = &resource.resources else {
        return;
    };
    let declared = resource
        .scopes
        .as_ref()
        .map(StrList::values)
        .unwrap_or_default();
    let mut uris = HashSet::new();
    for entry in &resources.entries {
        let uri = entry.uri.value();
        if !uris.insert(uri.clone()) {
            cx.error_spanned_by(
                &entry.uri,
                format!(
                    "`{uri}` appears twice in `resources`; list all the scopes it needs in one \
                     entry"
                ),
            );
        }
        for scope in &entry.scopes {
            let value = scope.value();
            if !declared.contains(&value) {
                cx.error_spanned_by(
                    scope,
                    undeclared_scope_message(&value, type_name, &declared),
                );
            }
        }
        args::report_duplicates(cx, &entry.scopes, &format!("scope of `{uri}`:"));
    }
}

fn check_bearer_methods(cx: &Ctxt, methods: Option<&StrList>) {
    let Some(methods) = methods else {
        return;
    };
    for method in &methods.items {
        match method.value().as_str() {
            "header" => {}
            "body" => cx.error_spanned_by(
                method,
                "bearer method \"body\" is not supported: the layer reads access tokens from the \
                 Authorization header only, and advertising a method that is not enforced \
                 misleads clients; remove it",
            ),
            "query" => cx.error_spanned_by(
                method,
                "bearer method \"query\" is refused: MCP forbids access tokens in the URI and \
                 mcp-oauth never reads them there; remove it",
            ),
            other => cx.error_spanned_by(
                method,
                format!("unknown bearer method {other:?}; use \"header\""),
            ),
        }
    }
    args::report_duplicates(cx, &methods.items, "bearer method");
}

fn check_signing_algs(cx: &Ctxt, algs: Option<&StrList>) {
    let Some(algs) = algs else {
        return;
    };
    for alg in &algs.items {
        if alg.value().eq_ignore_ascii_case("none") {
            cx.error_spanned_by(
                alg,
                format!(
                    "resource_signing_alg_values_supported lists {:?}: unsigned responses are \
                     never acceptable; remove it",
                    alg.value()
                ),
            );
        }
    }
    args::report_duplicates(cx, &algs.items, "algorithm");
}

/// The proof algorithms against the mode, then each algorithm, as the runtime's
/// `proof_algorithms` judges them (a list it would refuse at startup fails the build here).
fn check_dpop(cx: &Ctxt, resource: &Resource) {
    const LIST: &str = "dpop_signing_alg_values_supported";
    let Some(algs) = &resource.dpop_signing_alg_values_supported else {
        return;
    };
    match resource.dpop.as_ref().map(|dpop| dpop.mode) {
        // The mode names none: reported at its literal, and which was meant is unknown.
        Some(None) => {}
        None => cx.error_at(
            algs.span,
            format!(
                "these algorithms are never used: DPoP is disabled unless `dpop` says otherwise; \
                 set `dpop = \"allowed\"` or `\"required\"`, or remove `{LIST}`"
            ),
        ),
        Some(Some(DpopMode::Disabled)) => cx.error_at(
            algs.span,
            format!(
                "these algorithms are never used: `dpop = \"disabled\"` verifies no proof; set \
                 `dpop = \"allowed\"` or `\"required\"`, or remove `{LIST}`"
            ),
        ),
        Some(Some(mode)) if algs.items.is_empty() => cx.error_at(
            algs.span,
            format!(
                "`dpop = {:?}` with no algorithms: no DPoP proof could ever be accepted; list \
                 the algorithms clients sign proofs with, as in `{LIST} = [\"ES256\", \
                 \"EdDSA\"]`, or remove `{LIST}` for the default ({})",
                mode.name(),
                DEFAULT_DPOP_ALGORITHMS.join(", ")
            ),
        ),
        Some(Some(_)) => {}
    }
    for alg in &algs.items {
        if let Some(msg) = dpop_algorithm_error(&alg.value()) {
            cx.error_spanned_by(alg, msg);
        }
    }
    // A miscased "es256" is reported above, with "ES256" as the suggestion.
    if !algs.items.is_empty()
        && !algs
            .items
            .iter()
            .any(|alg| alg.value().eq_ignore_ascii_case(MANDATORY_DPOP_ALGORITHM))
    {
        cx.error_at(
            algs.span,
            format!(
                "{LIST} must include {MANDATORY_DPOP_ALGORITHM:?}: it is the one DPoP proof \
                 algorithm every client supports; add it"
            ),
        );
    }
    args::report_duplicates(cx, &algs.items, "DPoP proof algorithm");
}

/// Why `name` is not a DPoP proof algorithm, if it is not.
fn dpop_algorithm_error(name: &str) -> Option<String> {
    if DPOP_ALGORITHMS.contains(&name) {
        return None;
    }
    let accepted = format!(
        "accepted (asymmetric JWS algorithms, case-sensitive): {}",
        DPOP_ALGORITHMS.join(", ")
    );
    let msg = if name.eq_ignore_ascii_case("none") {
        format!(
            "{name:?} is never a DPoP proof algorithm: a proof must be signed by the key it \
             carries; remove it"
        )
    } else if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        format!(
            "{name:?} is symmetric: a DPoP proof is signed with the client's private key and \
             checked with the public key it carries, never with a shared secret; use \"ES256\""
        )
    } else if ["ES512", "ES256K"].contains(&name) {
        // Near "PS512" and "ES256" by spelling, not by meaning: no "did you mean".
        format!(
            "{name:?} is not a DPoP proof algorithm mcp-oauth verifies; use \"ES256\" or \
             \"ES384\"\n{accepted}"
        )
    } else {
        let mut msg = format!("{name:?} is not a DPoP proof algorithm mcp-oauth verifies");
        if let Some(nearest) = suggest::nearest_or_case(name, DPOP_ALGORITHMS.iter().copied()) {
            msg.push_str(&format!("; did you mean {nearest:?}?"));
        }
        msg.push_str(&format!("\n{accepted}"));
        msg
    };
    Some(msg)
}

#[cfg(test)]
mod tests {
    use proc_macro2::{Span, TokenStream};
    use quote::quote;

    use super::*;

    fn errors(tokens: TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let resource = Resource::parse(&cx, tokens, Span::call_site());
        check(&cx, &resource, "Calendar");
        cx.check()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    fn with(extra: TokenStream) -> Vec<String> {
        errors(quote! {
            resource = "https://calendar.example.com/mcp",
            authorization_servers = ["https://auth.example.com"],
            #extra
        })
    }

    #[test]
    fn valid_declaration_has_no_errors() {
        assert_eq!(
            with(quote! {
                scopes = ["a", "b", "c"],
                implies = { "a" => ["b", "c"], "b" => "c" },
                required_scopes = ["c"],
                challenge_scopes = [],
                resource_documentation = "https://docs.example.com/#auth",
                bearer_methods_supported = ["header"],
                resource_signing_alg_values_supported = ["ES256"],
            }),
            Vec::<String>::new()
        );
    }

    #[test]
    fn two_scope_cycle_is_reported_once() {
        let errors = with(quote! {
            scopes = ["a", "b"],
            implies = { "a" => ["b"], "b" => ["a"] },
        });
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("\"a\" => \"b\" => \"a\""),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn three_scope_cycle_is_reported_with_its_path() {
        let errors = with(quote! {
            scopes = ["a", "b", "c", "x"],
            implies = { "x" => "a", "a" => "b", "b" => "c", "c" => "a" },
        });
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("\"a\" => \"b\" => \"c\" => \"a\""),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn self_implication_is_reported() {
        let errors = with(quote! { scopes = ["a"], implies = { "a" => "a" } });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("implies itself"));
    }

    #[test]
    fn undeclared_scopes_are_reported_with_a_suggestion() {
        let errors = with(quote! {
            scopes = ["calendar:read", "calendar:write"],
            implies = { "calendar:write" => "calendar:raed" },
            required_scopes = ["calendar:admin"],
        });
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].contains("did you mean \"calendar:read\"?"),
            "{}",
            errors[0]
        );
        assert!(errors[1].starts_with("required_scopes names \"calendar:admin\""));
    }

    #[test]
    fn more_than_127_scopes_are_refused() {
        let scopes: Vec<String> = (0..128).map(|i| format!("s{i}")).collect();
        let errors = with(quote! { scopes = [#(#scopes),*] });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("too many scopes: 128 declared"));
        let scopes = &scopes[..127];
        assert!(with(quote! { scopes = [#(#scopes),*] }).is_empty());
    }

    #[test]
    fn metadata_rules_are_mirrored() {
        let errors = with(quote! {
            scopes = ["offline_access", "a b"],
            bearer_methods_supported = ["query", "cookie"],
            resource_signing_alg_values_supported = ["NONE"],
            resource_tos_uri = "http://example.com/tos",
        });
        assert_eq!(errors.len(), 6, "{errors:#?}");
    }

    #[test]
    fn declared_resources_are_checked() {
        let errors = with(quote! {
            scopes = ["calendar:read", "calendar:write", "calendar:admin"],
            resources = {
                "calendar://events/{day}" => ["calendar:read", "calendar:wirte", "calendar:read"],
                "calendar://settings" => "calendar:admin",
                "calendar://events/{day}" => [],
                "calendar://contacts" => "contacts:read",
            },
        });
        assert_eq!(
            errors,
            [
                "`calendar:wirte` is not declared by `Calendar`; did you mean `calendar:write`?",
                "duplicate scope of `calendar://events/{day}`: \"calendar:read\"",
                "`calendar://events/{day}` appears twice in `resources`; list all the scopes it \
                 needs in one entry",
                "`contacts:read` is not declared by `Calendar` (it declares `calendar:read`, \
                 `calendar:write`, `calendar:admin`)",
            ]
        );
    }

    #[test]
    fn dpop_names_mirror_the_runtime() {
        let runtime: Vec<&str> = mcp_oauth::crypto::Algorithm::ALL
            .iter()
            .map(|alg| alg.name())
            .collect();
        assert_eq!(DPOP_ALGORITHMS, runtime);
        assert_eq!(
            DEFAULT_DPOP_ALGORITHMS,
            mcp_oauth::dpop::DEFAULT_PROOF_ALGORITHMS
        );
        let modes = mcp_oauth::dpop::DpopMode::ALL;
        assert_eq!(DpopMode::ALL.map(DpopMode::name), modes.map(|m| m.as_str()));
        assert_eq!(
            DpopMode::ALL.map(DpopMode::variant),
            modes.map(|m| format!("{m:?}")),
        );
    }

    #[test]
    fn dpop_algorithms_are_judged_as_the_runtime_judges_them() {
        let cases: &[&[&str]] = &[
            &[],
            &["ES256"],
            &["ES256", "EdDSA"],
            &["EdDSA"],
            &["ES256", "HS256"],
            &["ES256", "none"],
            &["es256"],
            &["ES256", "ES512"],
            &["ES256", "ES-256"],
            &[
                "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
            ],
        ];
        for algs in cases {
            let errors = with(
                quote! { dpop = "required", dpop_signing_alg_values_supported = [#(#algs),*] },
            );
            let runtime = mcp_oauth::dpop::proof_algorithms(algs.iter().copied());
            assert_eq!(errors.is_empty(), runtime.is_ok(), "{algs:?}: {errors:#?}");
        }
    }

    #[test]
    fn dpop_mistakes_are_all_reported() {
        assert!(with(quote! { dpop = "allowed" }).is_empty());
        assert!(with(quote! { dpop = "disabled" }).is_empty());
        let errors = with(quote! {
            dpop = "Required",
            dpop_signing_alg_values_supported = ["EdDSA", "HS256", "EdDSA"],
            dpop_bound_access_tokens_required = true,
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(
            errors[0].starts_with("unknown DPoP mode \"Required\"; did you mean \"required\"?")
        );
        assert!(errors[1].contains("set `dpop = \"required\"` instead"));
        assert!(errors[2].starts_with("\"HS256\" is symmetric"));
        assert!(errors[3].contains("must include \"ES256\""));
        assert!(errors[4].starts_with("duplicate DPoP proof algorithm \"EdDSA\""));

        let errors = with(quote! { dpop_signing_alg_values_supported = ["ES256"] });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("these algorithms are never used"));
        let errors = with(quote! { dpop = "allowed", dpop_signing_alg_values_supported = [] });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("`dpop = \"allowed\"` with no algorithms"));
    }
}
