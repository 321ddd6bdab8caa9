//! Tools in a generic impl (rmcp and plain): the compile-time checks are nested items, which
//! do not depend on the impl's generics.
#![deny(warnings)]

use std::marker::PhantomData;

use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};
use rmcp::{tool, tool_router};

#[protected_resource(
    resource = "https://store.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["store:read", "store:write"],
)]
pub struct Store;

pub struct Server<T> {
    _backend: PhantomData<T>,
}

#[tool_router]
impl<T: Send + Sync + 'static> Server<T> {
    #[mcp_tool(scopes = ["store:read"])]
    #[tool(description = "Get")]
    async fn get(&self) -> String {
        std::any::type_name::<T>().to_owned()
    }

    #[mcp_tool(scopes = ["store:write"], resource = Store)]
    #[tool(description = "Put")]
    fn put(&self) -> String {
        "ok".to_owned()
    }

    #[mcp_tool(scopes = ["store:read", "store:write"])]
    pub async fn plain(&self, identity: &VerifiedToken) -> Result<usize, InsufficientScope> {
        let _ = identity;
        Ok(std::mem::size_of::<T>())
    }
}

fn main() {
    let router = Server::<u32>::tool_router();
    assert!(router.has_route("get") && router.has_route("put"));
    assert_eq!(Server::<u32>::plain_scopes().name, "plain");
    let _ = Server::<u32>::plain;
}
