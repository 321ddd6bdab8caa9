//! `mcp-oauth metadata` (being written).
use std::process::ExitCode;

pub async fn run(_args: crate::MetadataArgs) -> Result<ExitCode, String> {
    Err("metadata: not built yet".into())
}
