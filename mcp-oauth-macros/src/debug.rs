//! `MCP_OAUTH_MACRO_DEBUG=1` prints every expansion to stderr (axum-macros style).

use proc_macro2::TokenStream;

/// Prints `expansion` when `MCP_OAUTH_MACRO_DEBUG` is set to anything but `0` or empty.
pub fn print(attribute: &str, item: &str, expansion: &TokenStream) {
    let enabled =
        std::env::var_os("MCP_OAUTH_MACRO_DEBUG").is_some_and(|v| !v.is_empty() && v != "0");
    if enabled {
        eprintln!("#[{attribute}] on `{item}` expands to:\n{expansion}\n");
    }
}
