//! `mcp-oauth token` (being written).
use std::process::ExitCode;

pub async fn inspect(_args: crate::InspectArgs) -> Result<ExitCode, String> {
    Err("token inspect: not built yet".into())
}

pub async fn get(_args: crate::GetArgs) -> Result<ExitCode, String> {
    Err("token get: not built yet".into())
}
