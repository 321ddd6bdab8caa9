//! A generic resource struct: the trait is implemented for every `'static` instantiation,
//! with the struct's own bounds; tools use the module's marker or name an instantiation.
#![deny(warnings)]

use std::fmt::Debug;

use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::tools::InsufficientScope;
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://generic.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["g:read"],
)]
pub struct Backend<'a, T: Debug, const N: usize>
where
    T: Clone,
{
    pub items: &'a [T; N],
}

#[mcp_tool(scopes = ["g:read"])]
fn implicit(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

#[mcp_tool(scopes = ["g:read"], resource = Backend<'static, u8, 2>)]
fn explicit(identity: &VerifiedToken) -> Result<(), InsufficientScope> {
    let _ = identity;
    Ok(())
}

fn declaration<R: ProtectedResource>() -> &'static mcp_oauth::resource::ResourceDeclaration {
    R::DECLARATION
}

fn main() {
    assert_eq!(declaration::<Backend<'static, String, 3>>().type_name, "Backend");
    assert_eq!(
        declaration::<Backend<'static, u8, 0>>().scopes,
        declaration::<Backend<'static, i64, 9>>().scopes
    );
    let items = [1u8, 2];
    let _ = Backend { items: &items }.items;
    let _ = (implicit, explicit);
}
