//! Plain functions (no rmcp): free and associated, async and sync, the identity by reference,
//! by value, or as rmcp's `Authenticated`; each gets a `<name>_scopes()` sibling.
#![deny(warnings)]

use mcp_oauth::rmcp::Authenticated;
use mcp_oauth::tools::{InsufficientScope, ToolScopes, ToolTable};
use mcp_oauth::{VerifiedToken, mcp_tool, protected_resource};

#[protected_resource(
    resource = "https://files.example.com/mcp",
    authorization_servers = ["https://auth.example.com"],
    scopes = ["files:read", "files:write"],
    implies = { "files:write" => "files:read" },
)]
pub struct Files;

#[derive(Debug)]
pub enum AppError {
    Forbidden(InsufficientScope),
}

impl From<InsufficientScope> for AppError {
    fn from(error: InsufficientScope) -> Self {
        AppError::Forbidden(error)
    }
}

/// Reads a file.
#[mcp_tool(scopes = ["files:read"])]
pub async fn read_file(identity: &VerifiedToken, path: &str) -> Result<String, AppError> {
    Ok(format!("{path} for {:?}", identity.subject()))
}

#[mcp_tool(scopes = ["files:write", "files:read"])]
fn write_file(identity: VerifiedToken, path: String) -> Result<(), AppError> {
    let _ = (identity, path);
    Ok(())
}

#[mcp_tool(scopes = [])]
fn whoami(auth: Authenticated) -> std::result::Result<String, AppError> {
    Ok(auth.subject().unwrap_or_default().to_owned())
}

pub struct FileServer {
    root: String,
}

impl FileServer {
    #[mcp_tool(scopes = ["files:read"])]
    pub async fn list(&self, identity: &VerifiedToken) -> Result<Vec<String>, AppError> {
        let _ = identity;
        Ok(vec![self.root.clone()])
    }

    #[mcp_tool(scopes = ["files:write"], resource = Files)]
    pub fn delete(&mut self, who: &mcp_oauth::VerifiedToken, path: &str) -> Result<(), AppError> {
        let _ = who;
        self.root.push_str(path);
        Ok(())
    }

    #[mcp_tool(scopes = ["files:read"])]
    fn stat(identity: &VerifiedToken) -> Result<u64, AppError> {
        let _ = identity;
        Ok(0)
    }
}

fn main() {
    assert_eq!(read_file_scopes(), ToolScopes::new("read_file", &["files:read"]));
    assert_eq!(
        write_file_scopes(),
        ToolScopes::new("write_file", &["files:write", "files:read"])
    );
    assert_eq!(whoami_scopes(), ToolScopes::new("whoami", &[]));
    assert_eq!(FileServer::list_scopes(), ToolScopes::new("list", &["files:read"]));
    assert_eq!(FileServer::delete_scopes().name, "delete");
    assert_eq!(FileServer::stat_scopes().name, "stat");

    let table = ToolTable::new([read_file_scopes(), write_file_scopes(), whoami_scopes()]);
    assert_eq!(table.len(), 3);

    // The functions keep their signatures.
    let _ = (read_file, write_file, whoami, FileServer::list, FileServer::delete, FileServer::stat);
    let _ = FileServer { root: String::new() };
}
