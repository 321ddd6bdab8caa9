//! The messages of the compile-time checks the macros generate: an undeclared scope with the
//! nearest declared one, a malformed URI template with what is wrong. Assembled by `const fn`s
//! (a `const` may raise only `panic!("{}", text)`), reached through `__private`.

use crate::resource::ResourceDeclaration;

/// A message assembled at compile time, for the `const` panics of the generated checks:
/// `panic!("{}", message.as_str())` is the one formatted panic a `const` may raise. Text
/// beyond [`CAPACITY`](Self::CAPACITY) bytes is cut, ending in `...`.
pub struct ConstMessage {
    bytes: [u8; ConstMessage::CAPACITY],
    len: usize,
    full: bool,
}

impl ConstMessage {
    /// The most bytes a message holds.
    pub const CAPACITY: usize = 512;

    const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
            full: false,
        }
    }

    const fn push(&mut self, text: &str) {
        let text = text.as_bytes();
        let mut i = 0;
        if self.full {
            return;
        }
        if self.len + text.len() <= Self::CAPACITY {
            while i < text.len() {
                self.bytes[self.len] = text[i];
                self.len += 1;
                i += 1;
            }
            return;
        }
        // Fill the buffer, then cut on a character boundary leaving room for "...".
        while self.len < Self::CAPACITY {
            self.bytes[self.len] = text[i];
            self.len += 1;
            i += 1;
        }
        self.len = Self::CAPACITY - 3;
        while self.len > 0 && self.bytes[self.len] & 0xC0 == 0x80 {
            self.len -= 1;
        }
        self.full = true;
        let mut dot = 0;
        while dot < 3 {
            self.bytes[self.len] = b'.';
            self.len += 1;
            dot += 1;
        }
    }

    /// The message.
    pub const fn as_str(&self) -> &str {
        match ::core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "(message not UTF-8)",
        }
    }
}

/// The compile-time error of a scope that `declaration` does not declare:
/// "`calendar:wirte` is not declared by `Calendar`; did you mean `calendar:write`?" when
/// a declared scope is near (the rule of the macros' "did you mean"), else the declared
/// scopes. Evaluated by the checks `#[mcp_tool]` and `#[mcp_prompt]` generate.
pub const fn undeclared_scope_message(
    declaration: &ResourceDeclaration,
    scope: &str,
) -> ConstMessage {
    let mut message = ConstMessage::new();
    message.push("`");
    message.push(scope);
    message.push("` is not declared by `");
    message.push(declaration.type_name);
    message.push("`");
    if let Some(nearest) = nearest_scope(declaration.scopes, scope) {
        message.push("; did you mean `");
        message.push(nearest);
        message.push("`?");
        return message;
    }
    if declaration.scopes.is_empty() {
        message.push(" (it declares no scopes)");
        return message;
    }
    message.push(" (it declares ");
    let mut i = 0;
    while i < declaration.scopes.len() {
        if i > 0 {
            message.push(", ");
        }
        message.push("`");
        message.push(declaration.scopes[i]);
        message.push("`");
        i += 1;
    }
    message.push(")");
    message
}

/// The declared scope nearest to `scope` if it is a plausible typo: an edit distance of
/// at most a quarter of `scope`'s length (at least 1), the first of equally near ones.
/// Scopes are ASCII (RFC 6749 scope-tokens), so bytes are characters.
pub const fn nearest_scope(declared: &'static [&'static str], scope: &str) -> Option<&'static str> {
    let limit = if scope.len() / 4 > 1 {
        scope.len() / 4
    } else {
        1
    };
    let mut best: Option<&'static str> = None;
    let mut best_distance = limit + 1;
    let mut i = 0;
    while i < declared.len() {
        let distance = bounded_edit_distance(scope.as_bytes(), declared[i].as_bytes(), limit);
        if distance < best_distance {
            best = Some(declared[i]);
            best_distance = distance;
        }
        i += 1;
    }
    best
}

/// The Levenshtein distance between `a` and `b`, or more than `limit` when it is (or
/// when `b` is too long to compare at compile time).
const fn bounded_edit_distance(a: &[u8], b: &[u8], limit: usize) -> usize {
    const MAX: usize = 255;
    if a.len().abs_diff(b.len()) > limit || b.len() > MAX {
        return limit + 1;
    }
    let mut previous = [0usize; MAX + 1];
    let mut current = [0usize; MAX + 1];
    let mut j = 0;
    while j <= b.len() {
        previous[j] = j;
        j += 1;
    }
    let mut i = 0;
    while i < a.len() {
        current[0] = i + 1;
        let mut j = 0;
        while j < b.len() {
            let substitution = previous[j] + (a[i] != b[j]) as usize;
            let deletion = previous[j + 1] + 1;
            let insertion = current[j] + 1;
            let mut best = substitution;
            if deletion < best {
                best = deletion;
            }
            if insertion < best {
                best = insertion;
            }
            current[j + 1] = best;
            j += 1;
        }
        let swap = previous;
        previous = current;
        current = swap;
        i += 1;
    }
    previous[b.len()]
}

/// The compile-time error of a malformed URI template in `#[protected_resource(resources
/// = {...})]`: the template and what [`check`](crate::uri_template::check) found wrong.
pub const fn malformed_uri_template_message(
    template: &str,
    error: crate::uri_template::UriTemplateError,
) -> ConstMessage {
    let mut message = ConstMessage::new();
    message.push("`");
    message.push(template);
    message.push("` is not a URI or RFC 6570 URI template: ");
    message.push(error.as_str());
    message
}
