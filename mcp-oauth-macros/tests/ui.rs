//! Compile-time behaviour of the attributes: what compiles (`ui/pass`), and what does not with
//! which error at which token (`ui/fail`, one validation rule per file, `.stderr` snapshots).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p mcp-oauth-macros --test ui`
//! and read every one: each error must be the intended one, at the intended token.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
