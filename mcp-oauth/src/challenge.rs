//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1, MCP authorization).
//!
//! The challenges MCP clients act on: a 401 without `error` that points at the metadata
//! (discovery), a 401 `invalid_token` (refresh or re-authorize), a 403 `insufficient_scope`
//! naming every scope the operation needs (step-up). Rendering never puts attacker-controlled
//! text in a challenge, and checks every value against the RFC 6750 character rules, so naive
//! `name="value"` parsers used by real clients read it right.
//!
//! ```
//! use mcp_oauth::challenge::Challenge;
//! use mcp_oauth::validation::ErrorCode;
//! use mcp_oauth::ScopeSet;
//!
//! let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
//! let discovery = Challenge::new(metadata).scope(ScopeSet::from_space_separated("files:read"));
//! assert_eq!(
//!     discovery.render(),
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read""#
//! );
//!
//! let step_up = Challenge::new(metadata)
//!     .error(ErrorCode::InsufficientScope)
//!     .scope(ScopeSet::from_space_separated("files:read files:write"));
//! assert_eq!(
//!     step_up.render(),
//!     r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
//! );
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use crate::scopes::{
    OFFLINE_ACCESS, ScopeHierarchy, ScopeSet, is_scope_char, is_valid_scope_token,
};
use crate::validation::ErrorCode;

/// The JSON-RPC error code with which a handler refuses for want of scopes (a step-up
/// raised from inside the handler, when what is needed depends on the arguments), reserved
/// by mcp-oauth in JSON-RPC's server-error range (no MCP revision nor rmcp 3.11 uses it).
/// Its `data` is `{"error": "insufficient_scope", "scope": "<every scope needed>"}`
/// ([`step_up_error_data`]). Where the HTTP layer sees the error before the status is sent
/// (a JSON response), it answers 403 with the step-up challenge; elsewhere the client reads
/// the same information from the error. With rmcp, `mcp_oauth::rmcp::require_scopes` writes
/// it.
pub const INSUFFICIENT_SCOPE_ERROR_CODE: i32 = -32043;

/// The `data` of an [`INSUFFICIENT_SCOPE_ERROR_CODE`] error: `needed`, every scope the
/// operation needs; `missing`, those the token lacks; and `scope`, what a client that reads
/// the error itself should ask for — `granted` ∪ `needed` (without `offline_access`), so
/// that a client of any MCP revision keeps what it holds.
///
/// ```
/// use mcp_oauth::challenge::{step_up_error_data, step_up_scopes_of};
/// use mcp_oauth::ScopeSet;
///
/// let granted = ScopeSet::from_space_separated("calendar:read");
/// let needed = ScopeSet::from_space_separated("calendar:read calendar:admin");
/// let missing = ScopeSet::from_space_separated("calendar:admin");
/// let data = step_up_error_data(&granted, &needed, &missing);
/// assert_eq!(data["scope"], "calendar:admin calendar:read");
/// assert_eq!(step_up_scopes_of(&data), Some(needed));
/// ```
pub fn step_up_error_data(
    granted: &ScopeSet,
    needed: &ScopeSet,
    missing: &ScopeSet,
) -> serde_json::Value {
    let ask = StepUpScopes::GrantedAndNeeded.compose(granted, needed, &ScopeHierarchy::new());
    serde_json::json!({
        "error": "insufficient_scope",
        "scope": ask.to_space_separated(),
        "needed": needed.iter().collect::<Vec<_>>(),
        "missing": missing.iter().collect::<Vec<_>>(),
    })
}

/// The scopes an operation needs according to an [`INSUFFICIENT_SCOPE_ERROR_CODE`] error's
/// `data`: its `needed` list, else its `scope`; `None` unless `error` is
/// `insufficient_scope` and at least one well-formed scope is named (malformed ones are
/// dropped: a challenge never carries them).
pub fn step_up_scopes_of(data: &serde_json::Value) -> Option<ScopeSet> {
    if data.get("error")?.as_str()? != "insufficient_scope" {
        return None;
    }
    let scopes: ScopeSet = match data.get("needed") {
        Some(needed) => needed
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_str)
            .filter(|scope| is_valid_scope_token(scope))
            .collect(),
        None => data
            .get("scope")?
            .as_str()?
            .split(' ')
            .filter(|scope| is_valid_scope_token(scope))
            .collect(),
    };
    (!scopes.is_empty()).then_some(scopes)
}

/// How a 403 step-up challenge's `scope` is composed, which changed between MCP revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpScopes {
    /// MCP 2025-06-18 and 2025-11-25: the client asks for exactly the challenged scopes, so
    /// the challenge repeats what the token was already granted next to what the operation
    /// needs (the scopes granted ∪ needed), lest the new token lose them.
    GrantedAndNeeded,
    /// MCP 2026-07-28 and later (SEP-2350): every scope the operation needs, in one
    /// challenge; clients merge what they already hold themselves. A needed scope the token
    /// holds through a broader one is named as that broader scope, so re-authorizing never
    /// narrows the grant (the hierarchy accounted for).
    Needed,
}

impl StepUpScopes {
    /// The composition for the negotiated protocol version (the `MCP-Protocol-Version`
    /// header; none, or an unreadable one, is taken as an older client: the union holds
    /// every scope either rule names).
    ///
    /// ```
    /// use mcp_oauth::challenge::StepUpScopes;
    /// assert_eq!(StepUpScopes::for_protocol_version(Some("2026-07-28")), StepUpScopes::Needed);
    /// assert_eq!(StepUpScopes::for_protocol_version(Some("2025-11-25")), StepUpScopes::GrantedAndNeeded);
    /// assert_eq!(StepUpScopes::for_protocol_version(None), StepUpScopes::GrantedAndNeeded);
    /// ```
    pub fn for_protocol_version(version: Option<&str>) -> Self {
        // Versions are ISO dates; text comparison orders them.
        let is_date = |v: &str| {
            v.len() == 10
                && v.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        match version {
            Some(v) if is_date(v) && v >= "2026-07-28" => Self::Needed,
            _ => Self::GrantedAndNeeded,
        }
    }

    /// The challenge's scopes for a token granted `granted` and an operation that needs
    /// `needed`; never [`OFFLINE_ACCESS`].
    ///
    /// ```
    /// use mcp_oauth::challenge::StepUpScopes;
    /// use mcp_oauth::scopes::{ScopeHierarchy, ScopeSet};
    ///
    /// let hierarchy = ScopeHierarchy::builder().imply("files:admin", "files:read").build().unwrap();
    /// let granted = ScopeSet::from_space_separated("files:admin offline_access profile");
    /// let needed = ScopeSet::from_space_separated("files:read files:share");
    /// let scopes = |rule: StepUpScopes| rule.compose(&granted, &needed, &hierarchy).to_space_separated();
    /// assert_eq!(scopes(StepUpScopes::Needed), "files:admin files:share");
    /// assert_eq!(scopes(StepUpScopes::GrantedAndNeeded), "files:admin files:read files:share profile");
    /// ```
    pub fn compose(
        self,
        granted: &ScopeSet,
        needed: &ScopeSet,
        hierarchy: &ScopeHierarchy,
    ) -> ScopeSet {
        let mut scopes = ScopeSet::new();
        match self {
            Self::GrantedAndNeeded => {
                scopes.extend(granted.iter());
                scopes.extend(needed.iter());
            }
            Self::Needed => {
                for scope in needed {
                    let held_as = (!granted.contains(scope))
                        .then(|| granted.iter().find(|g| hierarchy.implies(g, scope)))
                        .flatten();
                    scopes.insert(held_as.unwrap_or(scope));
                }
            }
        }
        scopes.iter().filter(|s| *s != OFFLINE_ACCESS).collect()
    }
}

/// The authentication scheme a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    #[default]
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
}

impl Scheme {
    /// `Bearer` or `DPoP`, as written in headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::Dpop => "DPoP",
        }
    }
}

/// A `WWW-Authenticate` challenge: `Bearer` by default, or `DPoP` (with its `algs`).
///
/// ```
/// use mcp_oauth::challenge::{Challenge, Scheme};
/// use mcp_oauth::validation::ErrorCode;
///
/// let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
/// let proof = Challenge::new(metadata)
///     .scheme(Scheme::Dpop)
///     .algs("ES256 EdDSA")
///     .error(ErrorCode::InvalidDpopProof);
/// assert_eq!(
///     proof.render(),
///     r#"DPoP error="invalid_dpop_proof", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", algs="ES256 EdDSA""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: Scheme,
    resource_metadata: String,
    error: Option<ErrorCode>,
    description: Option<&'static str>,
    scope: Option<ScopeSet>,
    algs: Option<String>,
}

impl Challenge {
    /// A challenge pointing at the metadata URL (RFC 9728 §5.1), without error: the answer
    /// to a request with no credentials or another scheme.
    pub fn new(resource_metadata: impl Into<String>) -> Self {
        Self {
            scheme: Scheme::Bearer,
            resource_metadata: resource_metadata.into(),
            error: None,
            description: None,
            scope: None,
            algs: None,
        }
    }

    /// The scheme (default `Bearer`).
    #[must_use]
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Adds `algs=` (RFC 9449 §7.1: the DPoP proof algorithms accepted, space-separated);
    /// rendered for the `DPoP` scheme only.
    #[must_use]
    pub fn algs(mut self, algs: impl Into<String>) -> Self {
        self.algs = Some(algs.into());
        self
    }

    /// Adds `error=` (RFC 6750 §3.1).
    #[must_use]
    pub fn error(mut self, error: ErrorCode) -> Self {
        self.error = Some(error);
        self
    }

    /// Adds `error_description=`: a fixed text (the validator's descriptions are). Characters
    /// outside RFC 6750's set, and `=`, are dropped when rendering.
    #[must_use]
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// Adds `scope=`: for a 401 the scopes of basic use, for a 403 every scope the operation
    /// needs. An empty set adds nothing.
    #[must_use]
    pub fn scope(mut self, scope: ScopeSet) -> Self {
        self.scope = (!scope.is_empty()).then_some(scope);
        self
    }

    /// The error code, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error
    }

    fn scope_value(&self) -> Option<String> {
        self.scope
            .as_ref()
            .map(scope_value)
            .filter(|value| !value.is_empty())
    }

    /// Renders the header value. `error` comes first when present, so that parsers taking the
    /// first `error=` match see it; `resource_metadata` is always present.
    pub fn render(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::with_capacity(4);
        if let Some(error) = self.error {
            params.push(("error", error.as_str().to_owned()));
            if let Some(description) = self.description {
                params.push(("error_description", sanitize_text(description)));
            }
            if let Some(scope) = self.scope_value() {
                params.push(("scope", scope));
            }
            params.push(("resource_metadata", sanitize(&self.resource_metadata)));
        } else {
            params.push(("resource_metadata", sanitize(&self.resource_metadata)));
            if let Some(scope) = self.scope_value() {
                params.push(("scope", scope));
            }
        }
        if self.scheme == Scheme::Dpop
            && let Some(algs) = self.algs.as_deref()
        {
            let algs = sanitize_text(algs);
            if !algs.trim().is_empty() {
                params.push(("algs", algs));
            }
        }
        let mut out = String::from(self.scheme.as_str());
        out.push(' ');
        for (i, (name, value)) in params.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        }
        out
    }
}

/// Keeps only RFC 6750's `%x20-21 / %x23-5B / %x5D-7E` (RFC 6749's `NQSCHAR`: a space or a
/// scope-token character; no `"` or `\`). Descriptions also lose `=`, so a naive parser
/// cannot find a parameter inside free text; URLs and scopes keep theirs (a query is refused
/// in resource URLs anyway, and `=` is a legal scope character: dropping it would name a
/// scope that does not exist and step-up could never succeed).
fn sanitize(value: &str) -> String {
    value
        .chars()
        .filter(|&c| c == ' ' || u8::try_from(c).is_ok_and(is_scope_char))
        .collect()
}

fn sanitize_text(value: &str) -> String {
    sanitize(value).replace('=', "")
}

/// The scopes, space-separated. A scope is left out whole, never altered into another
/// scope's name, when it is not an RFC 6749 §3.3 scope-token (declared scopes are checked at
/// compile time, but a `ScopeSet` can be built from any string), or when it could read as a
/// parameter of its own to a parser that searches for `error=` or splits on `,` and takes
/// the first match: `=` is a scope-token character, so `error=x` or `a,resource_metadata=x`
/// are valid scopes.
/// A scope left out is reported once, as a warning.
fn scope_value(scopes: &ScopeSet) -> String {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let mut out = String::new();
    for scope in scopes.iter() {
        if !is_valid_scope_token(scope) || mimics_a_parameter(scope) {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "mcp_oauth::challenge",
                    "a scope that is not a scope-token, or that reads like a challenge \
                     parameter, was left out of a WWW-Authenticate challenge; rename it"
                );
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(scope);
    }
    out
}

/// Whether `scope` holds a parameter name followed by `=` anywhere (case-insensitively): a
/// substring search for `error=` must not find one inside a scope.
fn mimics_a_parameter(scope: &str) -> bool {
    const PARAMETERS: [&str; 7] = [
        "algs=",
        "error=",
        "error_description=",
        "error_uri=",
        "realm=",
        "resource_metadata=",
        "scope=",
    ];
    let bytes = scope.as_bytes();
    PARAMETERS.iter().any(|parameter| {
        bytes
            .windows(parameter.len())
            .any(|window| window.eq_ignore_ascii_case(parameter.as_bytes()))
    })
}

/// Parses a `Bearer` challenge into its parameters (for tests, tools and fuzzing): the
/// scheme (case-insensitive) followed by `name="value"` or `name=token` pairs separated by
/// commas. `None` if it is not a well-formed Bearer challenge or a parameter repeats.
pub fn parse(header: &str) -> Option<Vec<(String, String)>> {
    match parse_with_scheme(header)? {
        (Scheme::Bearer, params) => Some(params),
        (Scheme::Dpop, _) => None,
    }
}

/// Parses one `Bearer` or `DPoP` challenge (RFC 6750 §3, RFC 9449 §7.1) into its scheme and
/// parameters, by the rules of [`parse`]: what a client (or `mcp-oauth probe`) reads from
/// each `WWW-Authenticate` value, whichever scheme the resource challenges with. `None` if
/// the scheme is another one, the parameters are not well-formed, or one repeats. A header
/// value holding several challenges (`Bearer …, DPoP …`) is not one challenge: `None` (read
/// it with [`parse_all`]).
///
/// ```
/// use mcp_oauth::challenge::{Scheme, parse_with_scheme};
///
/// let (scheme, params) = parse_with_scheme(r#"DPoP algs="ES256 EdDSA", error="invalid_token""#).unwrap();
/// assert_eq!(scheme, Scheme::Dpop);
/// assert_eq!(params[0], ("algs".to_owned(), "ES256 EdDSA".to_owned()));
/// assert_eq!(parse_with_scheme("Bearer").unwrap(), (Scheme::Bearer, vec![]));
/// assert!(parse_with_scheme(r#"Basic realm="x""#).is_none());
/// ```
pub fn parse_with_scheme(header: &str) -> Option<(Scheme, Vec<(String, String)>)> {
    let rest = header.trim_start();
    let (scheme, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        Scheme::Dpop
    } else {
        return None;
    };
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return None;
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if params
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(name))
        {
            return None;
        }
        params.push((name.to_owned(), value));
        rest = after;
    }
    Some((scheme, params))
}

/// Reads every challenge of a `WWW-Authenticate` field value (RFC 9110 §11.6.1: one value
/// may carry several, `DPoP algs="ES256", Bearer resource_metadata="…"`), whatever the
/// schemes, into each one's scheme (as written) and parameters (names as written; quoted
/// values unescaped). A challenge with a `token68` instead of parameters (`Basic`-style
/// credentials, `Negotiate abc==`) has none. What a client, or `mcp-oauth probe`, needs to
/// find the Bearer or DPoP challenge among others. The value is read up to its first
/// malformed part (an unterminated quoted string, a parameter without a scheme, a
/// parameter repeated within its challenge): the challenges before it are returned, the
/// malformed one and the rest are not.
///
/// ```
/// use mcp_oauth::challenge::parse_all;
///
/// let challenges = parse_all(
///     r#"DPoP algs="ES256 EdDSA", Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="a b""#,
/// );
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[0].0, "DPoP");
/// assert_eq!(challenges[0].1, [("algs".to_owned(), "ES256 EdDSA".to_owned())]);
/// assert_eq!(challenges[1].0, "Bearer");
/// assert_eq!(challenges[1].1[1], ("scope".to_owned(), "a b".to_owned()));
/// assert_eq!(parse_all("Negotiate abc==, Bearer"), [
///     ("Negotiate".to_owned(), vec![]),
///     ("Bearer".to_owned(), vec![]),
/// ]);
/// ```
pub fn parse_all(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    // RFC 9110 §5.6.2: tchar.
    fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }
    // RFC 9110 §11.2: token68.
    fn is_token68(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
    }
    let bytes = header.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        i
    };
    let token_end = |mut i: usize| {
        while i < bytes.len() && is_tchar(bytes[i]) {
            i += 1;
        }
        i
    };
    let mut challenges: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut i = 0;
    // Right after a scheme, before any comma: a token68 may follow.
    let mut after_scheme = false;
    loop {
        let start = i;
        i = skip_ws(i);
        let mut comma = false;
        while i < bytes.len() && matches!(bytes[i], b',' | b' ' | b'\t') {
            comma |= bytes[i] == b',';
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if after_scheme && !comma && i > start {
            // token68?
            let mut end = i;
            while end < bytes.len() && is_token68(bytes[end]) {
                end += 1;
            }
            let chars_end = end;
            while end < bytes.len() && bytes[end] == b'=' {
                end += 1;
            }
            let next = skip_ws(end);
            if chars_end > i && (next >= bytes.len() || bytes[next] == b',') {
                i = next;
                after_scheme = false;
                continue;
            }
        }
        if !comma && !after_scheme && !challenges.is_empty() {
            // Two items with no comma between them, and not a scheme's first parameter.
            break;
        }
        let end = token_end(i);
        if end == i {
            break;
        }
        let token = &header[i..end];
        let next = skip_ws(end);
        if next < bytes.len() && bytes[next] == b'=' {
            // A parameter of the current challenge.
            let Some((_, params)) = challenges.last_mut() else {
                break;
            };
            let mut j = skip_ws(next + 1);
            let value = if j < bytes.len() && bytes[j] == b'"' {
                j += 1;
                let mut value = String::new();
                let mut closed = false;
                let mut chars = header[j..].char_indices();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '"' => {
                            j += k + 1;
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => break,
                        },
                        c => value.push(c),
                    }
                }
                if !closed {
                    challenges.pop();
                    break;
                }
                value
            } else {
                // A token, by RFC 9110; read up to the next comma or space, as lenient
                // clients do (an unquoted URL).
                let mut end = j;
                while end < bytes.len() && !matches!(bytes[end], b',' | b' ' | b'\t') {
                    end += 1;
                }
                let value = header[j..end].to_owned();
                j = end;
                value
            };
            if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(token)) {
                challenges.pop();
                break;
            }
            params.push((token.to_owned(), value));
            i = j;
            after_scheme = false;
        } else {
            // A new challenge's scheme.
            challenges.push((token.to_owned(), Vec::new()));
            i = end;
            after_scheme = true;
        }
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

    fn param(challenge: &Challenge, name: &str) -> Option<String> {
        parse(&challenge.render())?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn every_rendered_challenge_parses_back_to_its_parameters() {
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InvalidToken)
            .description("The access token expired")
            .scope(ScopeSet::from_space_separated("a b"));
        let params = parse(&challenge.render()).unwrap();
        assert_eq!(params.len(), 4);
        assert_eq!(param(&challenge, "error").as_deref(), Some("invalid_token"));
        assert_eq!(
            param(&challenge, "error_description").as_deref(),
            Some("The access token expired")
        );
        assert_eq!(param(&challenge, "scope").as_deref(), Some("a b"));
        assert_eq!(
            param(&challenge, "resource_metadata").as_deref(),
            Some(METADATA)
        );
    }

    #[test]
    fn scopes_keep_every_scope_token_character_and_drop_what_is_not_one() {
        // `=` is legal in a scope-token (RFC 6749 §3.3): step-up must name the real scope.
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InsufficientScope)
            .scope(ScopeSet::from_space_separated(
                "files=read =d-re a!#$%&'()*+,-./:;<>?@[]^_`{|}~",
            ));
        assert_eq!(
            param(&challenge, "scope").as_deref(),
            Some("=d-re a!#$%&'()*+,-./:;<>?@[]^_`{|}~ files=read")
        );
        // Not scope-tokens: left out whole, never altered into another scope's name.
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InsufficientScope)
            .scope(ScopeSet::from_space_separated("ok a\"b c\\d é"));
        assert_eq!(param(&challenge, "scope").as_deref(), Some("ok"));
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InsufficientScope)
            .scope(ScopeSet::from_space_separated("a\"b"));
        assert_eq!(param(&challenge, "scope"), None);
        // Scopes in which a first-match parser could find a parameter are left out too;
        // `=` elsewhere is fine.
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InsufficientScope)
            .scope(ScopeSet::from_space_separated(
                "error=x a,resource_metadata=x Scope=y realm=z,b myerror=1 ok=1 files=read",
            ));
        assert_eq!(
            param(&challenge, "scope").as_deref(),
            Some("files=read ok=1")
        );
        let rendered = challenge.render();
        assert_eq!(rendered.matches("error=").count(), 1, "{rendered}");
        assert_eq!(
            rendered.matches("resource_metadata=").count(),
            1,
            "{rendered}"
        );
    }

    #[test]
    fn no_credentials_means_no_error_parameter() {
        let challenge =
            Challenge::new(METADATA).scope(ScopeSet::from_space_separated("calendar:read"));
        assert_eq!(param(&challenge, "error"), None);
        assert_eq!(param(&challenge, "scope").as_deref(), Some("calendar:read"));
    }

    #[test]
    fn rendered_values_keep_exactly_the_rfc_6750_characters() {
        // RFC 6750 §3: error and error_description are `*( %x20-21 / %x23-5B / %x5D-7E )`.
        let chars = (0..=0x2ff).filter_map(char::from_u32);
        for c in chars.chain(['\u{2028}', '\u{1f600}']) {
            let allowed = matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            let kept: String = allowed.then_some(c).into_iter().collect();
            assert_eq!(sanitize(&c.to_string()), kept, "{c:?}");
        }
    }

    #[test]
    fn descriptions_cannot_smuggle_parameters_or_quotes() {
        let challenge = Challenge::new(METADATA)
            .error(ErrorCode::InvalidToken)
            .description("bad \"token\" scope=admin error=\\x");
        let rendered = challenge.render();
        assert_eq!(param(&challenge, "scope"), None, "{rendered}");
        assert_eq!(param(&challenge, "error").as_deref(), Some("invalid_token"));
        assert!(!rendered.contains("scope="), "{rendered}");
    }

    #[test]
    fn parse_refuses_other_schemes_and_repeated_parameters() {
        assert!(parse("Basic realm=\"x\"").is_none());
        assert!(
            parse("DPoP algs=\"ES256\"").is_none(),
            "parse reads Bearer only"
        );
        assert_eq!(
            parse_with_scheme("dpop algs=\"ES256\"").unwrap(),
            (Scheme::Dpop, vec![("algs".to_owned(), "ES256".to_owned())])
        );
        assert!(parse_with_scheme("Bearer a=\"1\", DPoP algs=\"ES256\"").is_none());
        assert!(parse("Bearer error=\"a\", error=\"b\"").is_none());
        assert_eq!(parse("bEaReR").unwrap().len(), 0);
        assert_eq!(
            parse("Bearer realm=example").unwrap(),
            [("realm".to_owned(), "example".to_owned())]
        );
    }

    #[test]
    fn parse_all_reads_every_challenge_of_one_value() {
        let all = parse_all(
            r#"DPoP algs="ES256", Bearer resource_metadata="https://r.example/.well-known/oauth-protected-resource", error="invalid_token""#,
        );
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0],
            (
                "DPoP".to_owned(),
                vec![("algs".to_owned(), "ES256".to_owned())]
            )
        );
        assert_eq!(all[1].0, "Bearer");
        assert_eq!(all[1].1.len(), 2);
        assert_eq!(
            all[1].1[1],
            ("error".to_owned(), "invalid_token".to_owned())
        );
        // Unquoted values, spaces around `=`, escapes in quoted strings, empty challenges.
        assert_eq!(
            parse_all(r#"Bearer realm = example , error="a\"b", Basic realm="x""#),
            [
                (
                    "Bearer".to_owned(),
                    vec![
                        ("realm".to_owned(), "example".to_owned()),
                        ("error".to_owned(), "a\"b".to_owned()),
                    ]
                ),
                (
                    "Basic".to_owned(),
                    vec![("realm".to_owned(), "x".to_owned())]
                ),
            ]
        );
        assert_eq!(
            parse_all("Bearer, DPoP"),
            [("Bearer".to_owned(), vec![]), ("DPoP".to_owned(), vec![])]
        );
        assert_eq!(
            parse_all("Negotiate a+b/c=="),
            [("Negotiate".to_owned(), vec![])]
        );
        assert_eq!(
            parse_all("Bearer resource_metadata=https://r.example/m,DPoP"),
            [
                (
                    "Bearer".to_owned(),
                    vec![(
                        "resource_metadata".to_owned(),
                        "https://r.example/m".to_owned()
                    )]
                ),
                ("DPoP".to_owned(), vec![]),
            ]
        );
        // Each challenge parses as parse_with_scheme would read it alone.
        let rendered = Challenge::new(METADATA)
            .error(ErrorCode::InsufficientScope)
            .scope(ScopeSet::from_space_separated("a b"))
            .render();
        let all = parse_all(&rendered);
        assert_eq!(all.len(), 1);
        assert_eq!(Some(all[0].1.clone()), parse(&rendered));
    }

    #[test]
    fn parse_all_stops_at_what_is_malformed() {
        assert!(parse_all("").is_empty());
        assert!(parse_all("   ,  ").is_empty());
        assert!(
            parse_all("realm=\"x\"").is_empty(),
            "a parameter without a scheme"
        );
        // An unterminated quote: the challenge is dropped, those before it kept.
        assert_eq!(
            parse_all(r#"DPoP algs="ES256", Bearer error="invalid"#),
            [(
                "DPoP".to_owned(),
                vec![("algs".to_owned(), "ES256".to_owned())]
            )]
        );
        // A parameter repeated within its challenge (not across challenges).
        assert_eq!(
            parse_all(r#"Bearer error="a", DPoP error="b", error="c""#),
            [(
                "Bearer".to_owned(),
                vec![("error".to_owned(), "a".to_owned())]
            )]
        );
        // Two items without a comma between them, after the first parameter.
        assert_eq!(
            parse_all(r#"Bearer a="1" b="2""#),
            [("Bearer".to_owned(), vec![("a".to_owned(), "1".to_owned())])]
        );
    }
}
