//! The workspace keeps the layout the README and CI rely on.

use std::path::Path;

#[test]
fn readme_names_the_test_command_that_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    let command = "cargo test --workspace";
    assert!(readme.contains(command), "README.md must show `{command}`");
    assert!(ci.contains(command), ".ci/run must run `{command}`");
}

#[test]
fn the_readme_quick_start_is_the_minimal_example_ci_builds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(root.join("examples/minimal.rs")).expect("examples/minimal.rs");
    let block = format!("```rust,ignore\n{example}```");
    assert!(
        readme.contains(&block),
        "README.md's quick start must be examples/minimal.rs verbatim, in a rust block"
    );
}
