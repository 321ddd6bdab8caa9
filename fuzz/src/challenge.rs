//! `WWW-Authenticate` challenges: whatever the metadata URL, description and scopes, the
//! rendered header is a valid header value and parses back (with `challenge::parse`) to
//! exactly the parameters given, in the documented order, sanitized as documented: only
//! RFC 6750's `%x20-21 / %x23-5B / %x5D-7E` are kept, `=` is dropped from the description,
//! and the scope lists exactly the valid scope-tokens that hold no `<parameter>=`,
//! unchanged. `challenge::parse` is also run on arbitrary text.

use arbitrary::{Arbitrary, Unstructured};
use mcp_oauth::ScopeSet;
use mcp_oauth::challenge::{self, Challenge};
use mcp_oauth::validation::ErrorCode;

#[derive(Arbitrary, Debug)]
struct Input {
    metadata: String,
    error: Option<u8>,
    description: Option<String>,
    scopes: Scopes,
    other: String,
}

#[derive(Arbitrary, Debug)]
enum Scopes {
    None,
    SpaceSeparated(String),
    Members(Vec<String>),
}

const CODES: [ErrorCode; 4] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidToken,
    ErrorCode::InsufficientScope,
    ErrorCode::TemporarilyUnavailable,
];

pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    check_render(&input);
    check_parse(&input.other);
    check_parse(&input.metadata);
}

fn check_render(input: &Input) {
    let scopes = match &input.scopes {
        Scopes::None => ScopeSet::new(),
        Scopes::SpaceSeparated(text) => ScopeSet::from_space_separated(text),
        Scopes::Members(members) => members.iter().cloned().collect(),
    };
    let error = input.error.map(|i| CODES[usize::from(i) % CODES.len()]);
    let rendered = with_static(input.description.as_deref(), |description| {
        let mut challenge = Challenge::new(input.metadata.clone()).scope(scopes.clone());
        if let Some(code) = error {
            challenge = challenge.error(code);
        }
        if let Some(description) = description {
            challenge = challenge.description(description);
        }
        challenge.render()
    });

    assert!(
        http::HeaderValue::from_str(&rendered).is_ok(),
        "not a header value: {rendered:?}"
    );
    // Scopes that are RFC 6749 scope-tokens are kept verbatim (`=` included: finding F2,
    // fixed) unless they hold a challenge parameter's name and `=`; any other member is left
    // out whole; no member kept, no `scope` parameter.
    let members: Vec<&str> = scopes.iter().filter(|scope| kept(scope)).collect();
    let scope = (!members.is_empty()).then(|| members.join(" "));
    let mut expected: Vec<(String, String)> = Vec::new();
    let metadata = ("resource_metadata".to_owned(), sanitize(&input.metadata));
    if let Some(code) = error {
        expected.push(("error".to_owned(), code.as_str().to_owned()));
        if let Some(description) = &input.description {
            expected.push(("error_description".to_owned(), sanitize_text(description)));
        }
        if let Some(scope) = scope {
            expected.push(("scope".to_owned(), scope));
        }
        expected.push(metadata);
    } else {
        expected.push(metadata);
        if let Some(scope) = scope {
            expected.push(("scope".to_owned(), scope));
        }
    }
    assert_eq!(
        challenge::parse(&rendered).as_ref(),
        Some(&expected),
        "rendered {rendered:?}"
    );
    // Valid scope tokens survive the trip as a set: a 403 names exactly the scopes needed
    // (finding F2, fixed: `=` is a scope-token character and was once dropped).
    if scopes.iter().all(kept) && !scopes.is_empty() {
        let (_, scope) = expected.iter().find(|(n, _)| n == "scope").expect("scope");
        assert_eq!(ScopeSet::from_space_separated(scope), scopes);
    }
}

/// Whether a scope is rendered: a scope-token in which no parameter name followed by `=`
/// appears, in any case (a first-match parser must not find a parameter inside it).
fn kept(scope: &str) -> bool {
    let lower = scope.to_ascii_lowercase();
    mcp_oauth::scopes::is_valid_scope_token(scope)
        && ![
            "error=",
            "error_description=",
            "error_uri=",
            "realm=",
            "resource_metadata=",
            "scope=",
        ]
        .iter()
        .any(|parameter| lower.contains(parameter))
}

fn check_parse(text: &str) {
    if let Some(params) = challenge::parse(text) {
        for (i, (name, _)) in params.iter().enumerate() {
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{name:?}"
            );
            assert!(
                params[..i]
                    .iter()
                    .all(|(other, _)| !other.eq_ignore_ascii_case(name)),
                "repeated {name:?}"
            );
        }
    }
}

fn sanitize(value: &str) -> String {
    value
        .chars()
        .filter(|&c| c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c))
        .collect()
}

fn sanitize_text(value: &str) -> String {
    sanitize(value).chars().filter(|&c| c != '=').collect()
}

/// Calls `f` with `text` as a `&'static str` (what `Challenge::description` takes) without
/// leaking it: the string is freed once `f` has returned, and `f` returns owned data only.
fn with_static<R: 'static>(text: Option<&str>, f: impl FnOnce(Option<&'static str>) -> R) -> R {
    let Some(text) = text else {
        return f(None);
    };
    let raw: *mut str = Box::into_raw(text.to_owned().into_boxed_str());
    // SAFETY: `raw` is a live allocation until the `Box::from_raw` below; `f` cannot keep the
    // reference (its result is `'static` data that `f` built, the challenge is dropped inside).
    let result = f(Some(unsafe { &*raw }));
    // SAFETY: `raw` came from `Box::into_raw` and is freed exactly once.
    drop(unsafe { Box::from_raw(raw) });
    result
}
