//! #[mcp_tool] goes on a function with a body.
use mcp_oauth::mcp_tool;

#[mcp_tool(scopes = ["calendar:read"], resource = Calendar)]
pub struct Calendar;

pub trait Tools {
    #[mcp_tool(scopes = ["calendar:read"], resource = Calendar)]
    fn list_events(&self) -> Result<(), mcp_oauth::tools::InsufficientScope>;
}

fn main() {
    let _ = Calendar;
}
