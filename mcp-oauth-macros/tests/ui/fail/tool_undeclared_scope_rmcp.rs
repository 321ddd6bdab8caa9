//! In an rmcp tool of a generic impl, an undeclared scope fails the build at the literal.
use mcp_oauth::{mcp_tool, protected_resource};
use rmcp::{tool, tool_router};

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["calendar:read", "calendar:write"],
)]
pub struct Calendar;

pub struct Server<T>(std::marker::PhantomData<T>);

#[tool_router]
impl<T: Send + Sync + 'static> Server<T> {
    #[mcp_tool(scopes = ["calendar:read", "calendar:admin"])]
    #[tool(description = "Delete the calendar")]
    async fn delete_calendar(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Server::<()>::tool_router();
}
