//! Two resources in one crate, one per module: each module's tools find their own resource.
#![deny(warnings)]

mod calendar {
    use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

    #[protected_resource(
        resource = "https://calendar.example.com/mcp",
        authorization_servers = ["https://auth.example.com"],
        scopes = ["calendar:read"],
    )]
    pub struct Calendar;

    #[mcp_tool(scopes = ["calendar:read"])]
    pub fn list_events(identity: &VerifiedToken) -> Result<(), mcp_oauth::tools::InsufficientScope> {
        let _ = identity;
        Ok(())
    }
}

mod files {
    use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

    #[protected_resource(
        resource = "https://files.example.com/mcp",
        authorization_servers = ["https://auth.example.com"],
        scopes = ["files:read"],
    )]
    pub struct Files;

    #[mcp_tool(scopes = ["files:read"])]
    pub fn read_file(identity: &VerifiedToken) -> Result<(), mcp_oauth::tools::InsufficientScope> {
        let _ = identity;
        Ok(())
    }

    // A tool of the other module's resource, named explicitly.
    #[mcp_tool(scopes = ["calendar:read"], resource = crate::calendar::Calendar)]
    pub fn read_calendar(
        identity: &VerifiedToken,
    ) -> Result<(), mcp_oauth::tools::InsufficientScope> {
        let _ = identity;
        Ok(())
    }
}

fn main() {
    use mcp_oauth::resource::ProtectedResource;

    assert_eq!(calendar::Calendar::DECLARATION.type_name, "Calendar");
    assert_eq!(files::Files::DECLARATION.scopes, ["files:read"]);
    assert_eq!(calendar::list_events_scopes().name, "list_events");
    assert_eq!(files::read_file_scopes().name, "read_file");
    assert_eq!(files::read_calendar_scopes().name, "read_calendar");
    let _ = (calendar::list_events, files::read_file, files::read_calendar);
}
