//! Scope-token syntax (RFC 6749 §3.3), the compile-time twin of
//! `mcp_oauth::scopes::is_valid_scope_token`.

/// Why `scope` is not a scope-token `1*( %x21 / %x23-5B / %x5D-7E )`, or `None` if it is one.
pub fn scope_token_error(scope: &str) -> Option<String> {
    const RULE: &str = "a scope is one or more printable ASCII characters other than space, \
                        '\"' and '\\' (RFC 6749 §3.3)";
    if scope.is_empty() {
        return Some(format!("empty scope: {RULE}"));
    }
    let (index, bad) = scope.char_indices().find(|&(_, c)| !is_scope_char(c))?;
    Some(format!(
        "scope {scope:?} is not a valid OAuth scope-token: {bad:?} at byte {index} is not allowed; \
         {RULE}"
    ))
}

/// Why `scope` must not be declared although it is a scope-token: it holds the name of a
/// `WWW-Authenticate` parameter followed by `=` (in any case), which a client searching the
/// challenge for `error=` or splitting it on `,` could take for a parameter. The runtime
/// leaves such a scope out of its challenges; declaring one is refused here.
pub fn challenge_parameter_error(scope: &str) -> Option<String> {
    const PARAMETERS: [&str; 6] = [
        "error_description=",
        "error_uri=",
        "error=",
        "realm=",
        "resource_metadata=",
        "scope=",
    ];
    let lower = scope.to_ascii_lowercase();
    let found = PARAMETERS.iter().find(|p| lower.contains(*p))?;
    Some(format!(
        "scope {scope:?} contains `{found}`, which a client reading the WWW-Authenticate \
         challenge could take for a parameter of its own; rename the scope (`=` elsewhere is fine)"
    ))
}

/// Whether `c` may appear in a scope-token.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_are_accepted() {
        for scope in [
            "!",
            "#",
            "[",
            "]",
            "~",
            "calendar:read",
            "https://ex.com/files.read",
        ] {
            assert_eq!(scope_token_error(scope), None, "{scope:?}");
        }
    }

    #[test]
    fn scopes_that_read_as_challenge_parameters_are_refused() {
        for scope in ["files=read", "a=b", "errors", "my-scope:error"] {
            assert_eq!(challenge_parameter_error(scope), None, "{scope:?}");
        }
        for scope in ["error=x", "a,Resource_Metadata=y", "x,scope=z", "myerror=1"] {
            assert!(challenge_parameter_error(scope).is_some(), "{scope:?}");
        }
        let msg = challenge_parameter_error("a,Error_Description=b").unwrap();
        assert!(msg.contains("`error_description=`"), "{msg}");
    }

    #[test]
    fn non_scope_tokens_are_refused_with_the_offending_character() {
        for scope in ["", "a b", "\"", "a\\b", "\u{7f}", "caf\u{e9}", "\t"] {
            assert!(scope_token_error(scope).is_some(), "{scope:?}");
        }
        let msg = scope_token_error("calendar read").unwrap();
        assert!(msg.contains("' ' at byte 8"), "{msg}");
    }
}
