//! `mcp-oauth probe` (being written).
use std::process::ExitCode;

pub async fn run(_args: crate::ProbeArgs) -> Result<ExitCode, String> {
    Err("probe: not built yet".into())
}
