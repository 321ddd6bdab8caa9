//! Scope-token syntax (RFC 6749 §3.3), the compile-time twin of
//! `mcp_oauth::scopes::is_valid_scope_token`, and the scopes a challenge would misread (the
//! twin of what `mcp_oauth::challenge` leaves out). The tests below run both over the same
//! inputs.

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

/// The error of a scope that the resource `type_name` does not declare: "`calendar:wirte` is
/// not declared by `Calendar`; did you mean `calendar:write`?" when a declared scope is near,
/// else the declared scopes. The twin of `mcp_oauth::__private::undeclared_scope_message`,
/// which assembles the same text at compile time for the checks `#[mcp_tool]` and
/// `#[mcp_prompt]` generate; `declared` is in declaration order (the first of equally near
/// scopes is suggested).
pub fn undeclared_scope_message(scope: &str, type_name: &str, declared: &[String]) -> String {
    let mut msg = format!("`{scope}` is not declared by `{type_name}`");
    if let Some(nearest) = crate::suggest::nearest(scope, declared.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean `{nearest}`?"));
    } else if declared.is_empty() {
        msg.push_str(" (it declares no scopes)");
    } else {
        let list: Vec<String> = declared.iter().map(|s| format!("`{s}`")).collect();
        msg.push_str(&format!(" (it declares {})", list.join(", ")));
    }
    msg
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

    /// Every ASCII character and a few beyond, alone, between letters and repeated.
    fn scope_cases() -> Vec<String> {
        let chars = (0u8..=0x7f).map(char::from).chain([
            '\u{80}',
            '\u{a0}',
            '\u{e9}',
            '\u{2028}',
            '\u{1f600}',
        ]);
        let mut cases = vec![String::new()];
        for c in chars {
            cases.extend([c.to_string(), format!("a{c}b"), format!("{c}{c}")]);
        }
        cases
    }

    #[test]
    fn scope_tokens_are_judged_as_the_runtime_judges_them() {
        for scope in scope_cases() {
            assert_eq!(
                scope_token_error(&scope).is_none(),
                mcp_oauth::scopes::is_valid_scope_token(&scope),
                "{scope:?}"
            );
        }
    }

    /// Whether the runtime names `scope` in a challenge's `scope` parameter (it leaves out a
    /// scope that is not a scope-token or that reads like a parameter).
    fn runtime_challenge_keeps(scope: &str) -> bool {
        let scopes = mcp_oauth::ScopeSet::from_iter([scope]);
        mcp_oauth::challenge::Challenge::new("https://mcp.example.com/.well-known/x")
            .scope(scopes)
            .render()
            .contains(", scope=\"")
    }

    #[test]
    fn declarable_scopes_are_the_scopes_the_runtime_challenge_names() {
        let names = [
            "error",
            "error_description",
            "error_uri",
            "realm",
            "resource_metadata",
            "scope",
            "scopes",
            "errors",
            "my_error",
        ];
        let mut cases = scope_cases();
        for name in names {
            let upper = name.to_ascii_uppercase();
            for form in [
                name.to_owned(),
                format!("{name}="),
                format!("{upper}=x"),
                format!("a,{name}=b"),
                format!("x{name}=1"),
                format!("{name}:=1"),
                format!("{name} =1"),
            ] {
                cases.push(form);
            }
        }
        for scope in cases {
            let declarable =
                scope_token_error(&scope).is_none() && challenge_parameter_error(&scope).is_none();
            assert_eq!(declarable, runtime_challenge_keeps(&scope), "{scope:?}");
        }
    }

    /// What the runtime's compile-time check says of `scope` with `declared`.
    fn runtime_undeclared_message(scope: &str, declared: &[&str]) -> String {
        let declared: &'static [&'static str] = Vec::leak(
            declared
                .iter()
                .map(|s| &*String::leak((*s).to_owned()))
                .collect(),
        );
        let declaration = mcp_oauth::ResourceDeclaration {
            scopes: declared,
            ..mcp_oauth::ResourceDeclaration::new("Calendar", "https://ex.com/mcp", &[])
        };
        mcp_oauth::__private::undeclared_scope_message(&declaration, scope)
            .as_str()
            .to_owned()
    }

    #[test]
    fn undeclared_scope_messages_are_the_runtime_messages() {
        let declared = [
            "calendar:read",
            "calendar:write",
            "calendar:admin",
            "a",
            "b",
        ];
        for scope in [
            "calendar:wirte",
            "calendar:raed",
            "calendar:reads",
            "calendar:writer",
            "calendar:delete",
            "Calendar:read",
            "c",
            "ab",
            "",
            "contacts:read",
            "calendar:readwrite",
        ] {
            for declared in [&declared[..], &declared[..3], &declared[3..], &[]] {
                let owned: Vec<String> = declared.iter().map(|s| (*s).to_owned()).collect();
                assert_eq!(
                    undeclared_scope_message(scope, "Calendar", &owned),
                    runtime_undeclared_message(scope, declared),
                    "{scope:?} with {declared:?}"
                );
            }
        }
        assert_eq!(
            runtime_undeclared_message("calendar:wirte", &declared),
            "`calendar:wirte` is not declared by `Calendar`; did you mean `calendar:write`?"
        );
        assert_eq!(
            runtime_undeclared_message("x:y", &[]),
            "`x:y` is not declared by `Calendar` (it declares no scopes)"
        );
    }

    #[test]
    fn a_long_runtime_message_is_cut_on_a_character_boundary() {
        let declared: Vec<String> = (0..100).map(|i| format!("scope-{i}")).collect();
        let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
        let message = runtime_undeclared_message("z\u{e9}\u{e9}\u{e9}", &declared);
        assert_eq!(message.len(), mcp_oauth::__private::ConstMessage::CAPACITY);
        assert!(message.ends_with("..."), "{message}");
        assert!(message.starts_with("`z\u{e9}\u{e9}\u{e9}` is not declared by `Calendar`"));

        let scope = "\u{e9}".repeat(400);
        let message = runtime_undeclared_message(&scope, &[]);
        assert!(message.ends_with("\u{e9}..."), "{message}");
        assert!(message.len() <= mcp_oauth::__private::ConstMessage::CAPACITY);
    }
}
