//! `#[cfg]`s below the attributes: a compiled-out function takes its generated sibling with
//! it; a compiled-in one keeps it; a compiled-out resource takes its declaration with it.
#![deny(warnings)]

use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://cfg.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["a"],
)]
#[cfg(all())]
pub struct Present;

mod absent {
    // Compiled out: neither the struct nor its declaration exist, and nothing breaks.
    #[mcp_oauth::protected_resource(
        resource = "https://cfg.example.com/mcp",
        authorization_servers = ["https://auth.example.com"],
    )]
    #[cfg(any())]
    pub struct Absent;
}

#[mcp_tool(scopes = ["a"])]
#[cfg(any())]
fn gone(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

// A sibling of the same name, which would clash if the compiled-out one had left its own.
#[cfg(all())]
fn gone_scopes() -> &'static str {
    "mine"
}

#[mcp_tool(scopes = ["a"])]
#[cfg(all())]
fn kept(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

#[mcp_tool(scopes = ["a"])]
#[cfg_attr(any(), cfg(any()))]
fn kept_too(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn main() {
    use mcp_oauth::resource::ProtectedResource;
    assert_eq!(Present::DECLARATION.scopes, ["a"]);
    assert_eq!(gone_scopes(), "mine");
    assert_eq!(kept_scopes().name, "kept");
    assert_eq!(kept_too_scopes().name, "kept_too");
    let _ = (kept, kept_too);
}
