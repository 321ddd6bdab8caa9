//! A resource and a tool declared inside a function body.
#![deny(warnings)]

use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

fn main() {
    #[protected_resource(
        resource = "https://local.example.com/mcp",
        authorization_servers = ["https://auth.example.com"],
        scopes = ["local"],
    )]
    struct Local;

    #[mcp_tool(scopes = ["local"])]
    fn tool(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
        let _ = identity;
        Ok(())
    }

    assert_eq!(Local::DECLARATION.scopes, ["local"]);
    assert_eq!(tool_scopes().name, "tool");
    let _ = (Local, tool);
}
