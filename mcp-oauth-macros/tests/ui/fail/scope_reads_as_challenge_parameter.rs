//! A declared scope must not hold a challenge parameter's name followed by `=`: a client
//! reading the 401/403 challenge could take it for a parameter. `=` elsewhere is fine.
use mcp_oauth::protected_resource;

#[protected_resource(
    resource = "https://calendar.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["files=read", "error=x", "a,Resource_Metadata=https"],
)]
pub struct Calendar;

fn main() {}
