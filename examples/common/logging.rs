//! The examples' logging, one setup for all of them: `RUST_LOG` (default `info,rmcp=warn`),
//! formatted by `tracing-subscriber`, each line written to stderr before the call returns (so
//! none is lost when the process ends, however it ends).
//!
//! `rmcp=warn`: rmcp logs two or three INFO lines for every stateless request ("Service
//! initialized as server", "serve finished"), which say nothing the audit event does not and
//! cost more than the guard. For a non-blocking audit trail, `MCP_OAUTH_AUDIT_LOG` (README).

/// Installs the subscriber.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
