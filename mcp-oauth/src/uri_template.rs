//! RFC 6570 URI templates, read to decide which declared resource a URI belongs to.
//!
//! The grammar is checked once, by a `const fn` ([`check`]): `#[protected_resource(resources
//! = {...})]` evaluates it at compile time (a malformed template fails the build at its
//! literal), and [`UriTemplate::parse`] runs it for templates registered at startup.
//!
//! Matching answers "could this URI be one of the template's resources?", erring on the side
//! of yes, because it decides which scopes a read needs and a server's handler often parses
//! URIs more loosely than RFC 6570 expands them (`+1` for `1`, a `@` unescaped, a trailing
//! query): every literal must appear as written (the scheme in any case), an expression's
//! first byte is its operator's (`{/x}` a `/`, `{?x}` a `?`, …), and then a simple `{var}`,
//! `{.x}` or `{;x}` covers anything but `/`, `?` and `#`; `{/x}` anything but `?` and `#`;
//! `{?x}` and `{&x}` anything but `#`; `{+x}` and `{#x}` anything. Matching walks the URI once
//! with the set of template positions it may be at, so no URI makes it slow.
//!
//! ```
//! use mcp_oauth::uri_template::UriTemplate;
//!
//! let day = UriTemplate::parse("calendar://events/{day}").unwrap();
//! assert!(day.matches("calendar://events/2026-12-06"));
//! assert!(!day.matches("calendar://events/2026/12")); // `{day}` never covers a `/`
//! let any = UriTemplate::parse("file:///{+path}").unwrap();
//! assert!(any.matches("file:///notes/today.md"));
//! assert!(UriTemplate::parse("calendar://events/{day").is_err());
//! ```

use std::fmt;

/// Why a URI template is malformed (RFC 6570 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriTemplateError {
    /// The template is empty.
    Empty,
    /// A `{` without its `}`.
    Unclosed,
    /// A `}` without its `{`.
    UnopenedBrace,
    /// An expression with no variable, or an empty name in its list (`{}`, `{a,}`).
    EmptyVariable,
    /// A character a variable name may not hold.
    BadVariableChar,
    /// An operator RFC 6570 reserves for future use (`=`, `,`, `!`, `@`, `|`).
    ReservedOperator,
    /// A prefix modifier that is not `:1` to `:9999`.
    BadPrefix,
    /// A character a template literal may not hold (space, `"`, `<`, `>`, `\`, `^`, `` ` ``,
    /// `|`, a control character) or a `%` not followed by two hex digits.
    BadLiteral,
}

impl UriTemplateError {
    /// A short description, usable at compile time.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "the template is empty",
            Self::Unclosed => "a `{` is not closed",
            Self::UnopenedBrace => "a `}` has no `{`",
            Self::EmptyVariable => "an expression names no variable",
            Self::BadVariableChar => {
                "a variable name holds a character other than A-Z a-z 0-9 _ . or %XX"
            }
            Self::ReservedOperator => {
                "the operators = , ! @ | are reserved by RFC 6570 for future use"
            }
            Self::BadPrefix => "a prefix modifier must be `:1` to `:9999`",
            Self::BadLiteral => {
                "the literal text holds a character a URI may not (space, \" < > \\ ^ ` | a control character) or a `%` without two hex digits"
            }
        }
    }
}

impl fmt::Display for UriTemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for UriTemplateError {}

/// Checks `template` against RFC 6570's grammar (levels 1 to 4). A `const fn`, so that a
/// declared template is checked at compile time.
pub const fn check(template: &str) -> Result<(), UriTemplateError> {
    let bytes = template.as_bytes();
    if bytes.is_empty() {
        return Err(UriTemplateError::Empty);
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                let mut end = i + 1;
                while end < bytes.len() && bytes[end] != b'}' {
                    if bytes[end] == b'{' {
                        return Err(UriTemplateError::Unclosed);
                    }
                    end += 1;
                }
                if end == bytes.len() {
                    return Err(UriTemplateError::Unclosed);
                }
                if let Err(error) = check_expression(bytes, i + 1, end) {
                    return Err(error);
                }
                i = end + 1;
            }
            b'}' => return Err(UriTemplateError::UnopenedBrace),
            b'%' => {
                if !is_pct_encoded(bytes, i) {
                    return Err(UriTemplateError::BadLiteral);
                }
                i += 3;
            }
            b if is_literal_byte(b) => i += 1,
            _ => return Err(UriTemplateError::BadLiteral),
        }
    }
    Ok(())
}

/// `[ operator ] variable-list` between `start` and `end` (the braces excluded).
const fn check_expression(bytes: &[u8], start: usize, end: usize) -> Result<(), UriTemplateError> {
    let mut i = start;
    if i < end {
        match bytes[i] {
            b'+' | b'#' | b'.' | b'/' | b';' | b'?' | b'&' => i += 1,
            b'=' | b',' | b'!' | b'@' | b'|' => return Err(UriTemplateError::ReservedOperator),
            _ => {}
        }
    }
    // varspec *( "," varspec )
    loop {
        let name_start = i;
        let mut last_dot = true; // a name starts with a varchar, and no ".." inside
        while i < end && bytes[i] != b',' && bytes[i] != b':' && bytes[i] != b'*' {
            let b = bytes[i];
            if b == b'.' {
                if last_dot {
                    return Err(UriTemplateError::BadVariableChar);
                }
                last_dot = true;
                i += 1;
            } else if b == b'%' {
                if !is_pct_encoded(bytes, i) || i + 3 > end {
                    return Err(UriTemplateError::BadVariableChar);
                }
                last_dot = false;
                i += 3;
            } else if b.is_ascii_alphanumeric() || b == b'_' {
                last_dot = false;
                i += 1;
            } else {
                return Err(UriTemplateError::BadVariableChar);
            }
        }
        if i == name_start {
            return Err(UriTemplateError::EmptyVariable);
        }
        if last_dot {
            return Err(UriTemplateError::BadVariableChar);
        }
        if i < end && bytes[i] == b':' {
            i += 1;
            let digits_start = i;
            while i < end && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = i - digits_start;
            if digits == 0 || digits > 4 || bytes[digits_start] == b'0' {
                return Err(UriTemplateError::BadPrefix);
            }
        } else if i < end && bytes[i] == b'*' {
            i += 1;
        }
        if i == end {
            return Ok(());
        }
        if bytes[i] != b',' {
            return Err(if bytes[i] == b':' {
                UriTemplateError::BadPrefix
            } else {
                UriTemplateError::BadVariableChar
            });
        }
        i += 1;
        if i == end {
            return Err(UriTemplateError::EmptyVariable);
        }
    }
}

const fn is_pct_encoded(bytes: &[u8], i: usize) -> bool {
    i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()
}

/// RFC 6570 §2.1 `literals`, for ASCII; every non-ASCII byte (UTF-8 of `ucschar`/`iprivate`)
/// is allowed.
const fn is_literal_byte(b: u8) -> bool {
    matches!(
        b,
        0x80..=0xff
            | 0x21
            | 0x23
            | 0x24
            | 0x26
            | 0x28..=0x3b
            | 0x3d
            | 0x3f..=0x5b
            | 0x5d
            | 0x5f
            | 0x61..=0x7a
            | 0x7e
    )
}

/// A parsed URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    text: String,
    parts: Vec<Part>,
    /// How much of the first literal is the URI scheme (compared in any case).
    scheme_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Expression(Operator),
}

/// What an expression can expand to, by operator (RFC 6570 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `{var}`: unreserved characters and percent-escapes, `,` between list items.
    Simple,
    /// `{+var}`: reserved characters too.
    Reserved,
    /// `{#var}`: a fragment, `#` then reserved characters.
    Fragment,
    /// `{.var}`: `.` labels.
    Label,
    /// `{/var}`: `/` segments.
    Path,
    /// `{;var}`: `;name=value` parameters.
    PathParameter,
    /// `{?var}`: a query, `?` then `name=value` pairs.
    Query,
    /// `{&var}`: a query continuation, `&name=value` pairs.
    QueryContinuation,
}

impl UriTemplate {
    /// Parses a template (RFC 6570 levels 1 to 4).
    pub fn parse(template: &str) -> Result<Self, UriTemplateError> {
        check(template)?;
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    // `check` passed: the `}` is there.
                    let close = rest.find('}').ok_or(UriTemplateError::Unclosed)?;
                    let operator = match rest.as_bytes().get(1) {
                        Some(b'+') => Operator::Reserved,
                        Some(b'#') => Operator::Fragment,
                        Some(b'.') => Operator::Label,
                        Some(b'/') => Operator::Path,
                        Some(b';') => Operator::PathParameter,
                        Some(b'?') => Operator::Query,
                        Some(b'&') => Operator::QueryContinuation,
                        _ => Operator::Simple,
                    };
                    parts.push(Part::Expression(operator));
                    rest = &rest[close + 1..];
                }
                Some(open) => {
                    parts.push(Part::Literal(rest[..open].to_owned()));
                    rest = &rest[open..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        let scheme_len = match parts.first() {
            Some(Part::Literal(text)) => scheme_len(text),
            _ => 0,
        };
        Ok(Self {
            text: template.to_owned(),
            parts,
            scheme_len,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has no expression (it names one URI).
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// Whether some expansion of the template is `uri`. A set-of-states walk over the URI,
    /// linear in its length whatever the template.
    pub fn matches(&self, uri: &str) -> bool {
        self.walk(uri)
            .is_some_and(|states| !states[self.parts.len()].is_empty())
    }

    /// Whether some URI of the template starts with `prefix` (a directory holding some of
    /// its resources).
    pub fn may_extend(&self, prefix: &str) -> bool {
        self.walk(prefix).is_some()
    }

    /// The states after reading `text` (`None` once no state is left). A state is (part,
    /// step): within a literal, how much of it matched; within an expression, 0 = nothing
    /// yet, 1 = inside.
    fn walk(&self, text: &str) -> Option<Vec<Vec<usize>>> {
        let mut current = vec![Vec::new(); self.parts.len() + 1];
        let mut next = current.clone();
        self.enter(&mut current, 0, 0);
        for &b in text.as_bytes() {
            for steps in &mut next {
                steps.clear();
            }
            for (part, steps) in current.iter().enumerate().take(self.parts.len()) {
                for &step in steps {
                    if let Some(step) = self.advance(part, step, b) {
                        self.enter(&mut next, part, step);
                    }
                }
            }
            std::mem::swap(&mut current, &mut next);
            if current.iter().all(Vec::is_empty) {
                return None;
            }
        }
        Some(current)
    }

    /// Adds the state (and what it reaches without reading: a literal's end, an expression
    /// that expands to nothing or ends here).
    fn enter(&self, states: &mut [Vec<usize>], part: usize, step: usize) {
        if states[part].contains(&step) {
            return;
        }
        states[part].push(step);
        let done = match self.parts.get(part) {
            None => false,
            Some(Part::Literal(text)) => step == text.len(),
            Some(Part::Expression(_)) => step <= 1,
        };
        if done {
            self.enter(states, part + 1, 0);
        }
    }

    /// The state after reading `b` in `step` of `part`, if the part can read it.
    fn advance(&self, part: usize, step: usize, b: u8) -> Option<usize> {
        match &self.parts[part] {
            Part::Literal(text) => {
                let expected = *text.as_bytes().get(step)?;
                let in_scheme = part == 0 && self.scheme_len > step;
                let same = expected == b || (in_scheme && expected.eq_ignore_ascii_case(&b));
                same.then_some(step + 1)
            }
            Part::Expression(operator) => operator.may_hold(b, step == 0).then_some(1),
        }
    }
}

impl Operator {
    /// Whether the expansion may hold `b` (`first`: as its first byte): generously (see the
    /// module docs), only the bytes that end the part of a URI the operator expands in are
    /// out.
    fn may_hold(self, b: u8, first: bool) -> bool {
        match self {
            Self::Reserved => true,
            Self::Fragment => !first || b == b'#',
            Self::Path if first => b == b'/',
            Self::Path => !matches!(b, b'?' | b'#'),
            Self::Query if first => b == b'?',
            Self::QueryContinuation if first => b == b'&',
            Self::Query | Self::QueryContinuation => b != b'#',
            Self::Label if first => b == b'.',
            Self::PathParameter if first => b == b';',
            Self::Simple | Self::Label | Self::PathParameter => !matches!(b, b'/' | b'?' | b'#'),
        }
    }
}

/// The length of the URI scheme and its `:` at the start of `text` (RFC 3986 §3.1: `ALPHA
/// *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`), or 0.
fn scheme_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    match bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    {
        Some(end) if bytes[end] == b':' => end + 1,
        _ => 0,
    }
}

/// Whether `uri` is spelled so that a server may read it as another resource than the one a
/// template match names, which access refuses to judge: a dot segment (`.` or `..`, escaped
/// or not, also behind an escaped `/`), a backslash (escaped or not), a double escape, an
/// escaped unreserved character (`%65` for `e`), userinfo or an uppercase letter in the
/// authority, or an empty path segment.
pub fn is_ambiguous(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    if lower.contains('\\') || lower.contains("%5c") || lower.contains("%25") {
        return true;
    }
    if escapes_unreserved(uri.as_bytes()) {
        return true;
    }
    let rest = &uri[scheme_len(uri)..];
    let before_query = rest.split(['?', '#']).next().unwrap_or("");
    let path = match before_query.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let authority = &after[..end];
            if authority.contains('@') || authority.bytes().any(|b| b.is_ascii_uppercase()) {
                return true;
            }
            &after[end..]
        }
        None => before_query,
    };
    let path = path.to_ascii_lowercase().replace("%2f", "/");
    path.contains("//")
        || path.split('/').any(|segment| {
            let decoded = segment.replace("%2e", ".");
            decoded == "." || decoded == ".."
        })
}

/// Whether `bytes` hold a `%XX` escape of an RFC 3986 unreserved character.
fn escapes_unreserved(bytes: &[u8]) -> bool {
    let hex = |b: u8| char::from(b).to_digit(16);
    bytes.windows(3).any(|w| {
        let (Some(high), Some(low)) = (hex(w[1]), hex(w[2])) else {
            return false;
        };
        let escaped = (high * 16 + low) as u8;
        w[0] == b'%'
            && (escaped.is_ascii_alphanumeric() || matches!(escaped, b'-' | b'.' | b'_' | b'~'))
    })
}

impl fmt::Display for UriTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_is_rfc_6570s() {
        for good in [
            "calendar://events",
            "calendar://events/{day}",
            "file:///{+path}",
            "https://x.example/{a,b}{?q,lang}{&page}{#frag}",
            "x:{.ext}{/seg*}{;p:3}",
            "x:{var.name}{v%41r}",
            "x:%20é",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for (bad, error) in [
            ("", UriTemplateError::Empty),
            ("x:{day", UriTemplateError::Unclosed),
            ("x:{a{b}}", UriTemplateError::Unclosed),
            ("x:day}", UriTemplateError::UnopenedBrace),
            ("x:{}", UriTemplateError::EmptyVariable),
            ("x:{a,}", UriTemplateError::EmptyVariable),
            ("x:{+}", UriTemplateError::EmptyVariable),
            ("x:{a-b}", UriTemplateError::BadVariableChar),
            ("x:{.a.}", UriTemplateError::BadVariableChar),
            ("x:{a..b}", UriTemplateError::BadVariableChar),
            ("x:{=a}", UriTemplateError::ReservedOperator),
            ("x:{a:0}", UriTemplateError::BadPrefix),
            ("x:{a:10000}", UriTemplateError::BadPrefix),
            ("x:{a:}", UriTemplateError::BadPrefix),
            ("x:a b", UriTemplateError::BadLiteral),
            ("x:a|b", UriTemplateError::BadLiteral),
            ("x:%zz", UriTemplateError::BadLiteral),
            ("x:%2", UriTemplateError::BadLiteral),
        ] {
            assert_eq!(check(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn operators_match_what_they_can_expand_to() {
        let t = |s| UriTemplate::parse(s).unwrap();
        let day = t("calendar://events/{day}");
        assert!(day.matches("calendar://events/2026-12-06"));
        assert!(day.matches("calendar://events/")); // an undefined variable expands to ""
        assert!(day.matches("calendar://events/a%2Fb"));
        // Generous: what a handler parsing loosely may still serve as a `{day}` matches.
        assert!(day.matches("calendar://events/+1"));
        assert!(day.matches("calendar://events/a@b c"));
        assert!(day.matches("CALENDAR://events/x"));
        assert!(!day.matches("calendar://events/a/b"));
        assert!(!day.matches("calendar://events/a?b"));
        assert!(!day.matches("calendar://EVENTS/x"));
        assert!(!day.matches("calendar://event/x"));
        assert!(!day.matches("xcalendar://events/x"));

        let path = t("file:///{+path}");
        assert!(path.matches("file:///a/b/c?d#e"));
        assert!(path.matches("file:///a b"));

        let segments = t("x:{/seg*}/end");
        assert!(segments.matches("x:/a/b/end"));
        assert!(segments.matches("x:/end"));
        assert!(!segments.matches("x:a/end"));

        let query = t("x:/search{?q,lang}");
        assert!(query.matches("x:/search?q=cat&lang=en"));
        assert!(query.matches("x:/search"));
        assert!(!query.matches("x:/search?q=cat#frag"));

        let label = t("x:file{.ext}");
        assert!(label.matches("x:file.txt"));
        assert!(label.matches("x:file.a,b"));
        assert!(!label.matches("x:file/txt"));

        let exploded = t("x:/{k*}");
        assert!(exploded.matches("x:/a=1,b=2"));

        let literal = t("calendar://settings");
        assert!(literal.is_literal());
        assert!(literal.matches("calendar://settings"));
        assert!(!literal.matches("calendar://settings/x"));
    }

    #[test]
    fn ambiguous_spellings_are_seen_in_any_form() {
        for uri in [
            "file:///public/../secret",
            "file:///public/%2e%2E/secret",
            "file:///public/./x",
            "file:///public/..",
            "file:///public\\..\\secret",
            "file:///public%5c..",
            "file:///public/..%2Fsecret%2Fkeys",
            "file:///public/%2e%2e%2fsecret",
            "file:///public/%252e%252e/secret",
            "calendar://x@events/1",
            "calendar://Events/1",
            "calendar://%65vents/1",
            "calendar://events//1",
        ] {
            assert!(is_ambiguous(uri), "{uri}");
        }
        for uri in [
            "file:///a/b.c",
            "file:///a/...",
            "x:/q?a=../b",
            "x:/p#../f",
            "calendar://events/1",
            "calendar://events/",
            "calendar://events/a%2Fb",
            "mail:alice@example.com",
            "urn:isbn:0451450523",
            "https://api.example.com:8443/v1/items/42",
        ] {
            assert!(!is_ambiguous(uri), "{uri}");
        }
    }

    #[test]
    fn a_prefix_may_extend_to_a_templates_uri() {
        let t = |s| UriTemplate::parse(s).unwrap();
        let private = t("files://{user}/private/{name}.txt");
        assert!(private.may_extend("files://alice/private/"));
        assert!(private.may_extend("FILES://alice/"));
        assert!(!private.may_extend("files://alice/public/"));
    }

    #[test]
    fn a_long_adversarial_uri_is_matched_quickly() {
        let t = UriTemplate::parse("x:{a}{b}{c}{d}{e}{f}{g}{h}!").unwrap();
        let uri = format!("x:{}", "a".repeat(4000));
        assert!(!t.matches(&uri));
    }
}
