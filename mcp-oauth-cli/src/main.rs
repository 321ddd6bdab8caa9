//! `mcp-oauth`: check that a deployed MCP server's authorization behaves as the specification
//! says, explain a token, get one, show the metadata. See the README's "Operate" section.
//!
//! Exit status: 0 when every check passed (or was skipped), 1 when one failed, 2 when the
//! command could not run (bad arguments, the server unreachable before any check).

mod fetch;
mod metadata;
mod probe;
mod report;
mod token;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use report::Format;

/// The longest `--timeout` honoured, in seconds (larger values are clamped to it; 0 to 1).
const MAX_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-oauth",
    version,
    about = "Probe an MCP server's OAuth 2.1 authorization; explain and get tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a deployed MCP endpoint's authorization from outside (RFC 9728, RFC 6750, MCP).
    Probe(ProbeArgs),
    /// Work with access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Fetch and print a server's protected-resource metadata and its authorization servers'.
    Metadata(MetadataArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Decode a token, show its audit fingerprint, and with --resource or --issuer/--audience
    /// explain every check the validator would fail.
    Inspect(InspectArgs),
    /// Get a token from the server's advertised authorization server (client credentials, or
    /// authorization code + PKCE with a loopback redirect), with `resource=` (RFC 8707).
    Get(GetArgs),
}

/// Output options shared by the commands that report.
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// Print exactly one JSON document on standard output.
    #[arg(long, conflicts_with = "junit")]
    pub json: bool,
    /// Print JUnit XML (for CI).
    #[arg(long)]
    pub junit: bool,
}

impl Output {
    /// The chosen format.
    pub fn format(self) -> Format {
        if self.json {
            Format::Json
        } else if self.junit {
            Format::Junit
        } else {
            Format::Human
        }
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The MCP endpoint URL (the protected resource), e.g. https://mcp.example.com/mcp.
    pub url: String,
    /// An access token for the resource: enables the checks that need one (or
    /// MCP_OAUTH_TOKEN, which `ps` does not show).
    #[arg(
        long,
        env = "MCP_OAUTH_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,
    /// A token lacking the scopes of the scoped operations (with --call: each must get 403;
    /// or MCP_OAUTH_TOKEN_LOW).
    #[arg(
        long,
        env = "MCP_OAUTH_TOKEN_LOW",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token_low: Option<String>,
    /// Get a token by client credentials from the advertised authorization server.
    #[arg(long, requires_all = ["client_id", "client_secret"])]
    pub client_credentials: bool,
    /// The client id for --client-credentials.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The client secret for --client-credentials (or MCP_OAUTH_CLIENT_SECRET).
    #[arg(
        long,
        env = "MCP_OAUTH_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// Call each scoped operation with --token-low (real calls: a broken server may act on them).
    #[arg(long)]
    pub call: bool,
    /// Seconds to wait for each answer (1 to 300; others are clamped).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The token; `-` or absent: read from standard input.
    pub token: Option<String>,
    /// The MCP endpoint the token is for: its metadata names the issuer, the audience is it.
    #[arg(long, conflicts_with_all = ["issuer", "audience"])]
    pub resource: Option<String>,
    /// The issuer to validate against (with --audience).
    #[arg(long, requires = "audience")]
    pub issuer: Option<String>,
    /// The audience to validate against (with --issuer).
    #[arg(long, requires = "issuer")]
    pub audience: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The MCP endpoint URL: its metadata names the authorization server; `resource=` is it.
    #[arg(long)]
    pub resource: String,
    /// The client id.
    #[arg(long)]
    pub client_id: String,
    /// The client secret (client credentials; or MCP_OAUTH_CLIENT_SECRET).
    #[arg(
        long,
        env = "MCP_OAUTH_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// The scopes to ask for, space-separated.
    #[arg(long)]
    pub scope: Option<String>,
    /// Authorization code + PKCE with a loopback redirect (prints the URL to open) instead of
    /// client credentials.
    #[arg(long)]
    pub authorization_code: bool,
    /// The loopback port of the redirect (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub redirect_port: u16,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// The MCP endpoint URL.
    pub url: String,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// An HTTP client for the commands: no redirects followed (a probe reports them), no proxy
/// surprises beyond the environment's, the given timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Rust ignores SIGPIPE, so writing to a closed pipe (`mcp-oauth probe … | head`) would fail
/// every `println!` with a panic; a command-line tool ends quietly instead, as `cat` does.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: signal(2) sets the process-wide disposition and is safe to call from any
    // thread; nothing else in this process handles SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(mut args) => {
            // A huge --timeout would overflow the deadline arithmetic (Instant + Duration).
            args.timeout = args.timeout.clamp(1, MAX_TIMEOUT_SECS);
            probe::run(args).await
        }
        Command::Token(TokenCommand::Inspect(args)) => token::inspect(args).await,
        Command::Token(TokenCommand::Get(args)) => token::get(args).await,
        Command::Metadata(args) => metadata::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets and tokens are base64url: one in 64 begins with `-` (a CI run met one).
    #[test]
    fn secrets_and_tokens_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "mcp-oauth",
            "token",
            "get",
            "--resource",
            "https://a.example/mcp",
            "--client-id",
            "c",
            "--client-secret",
            "-Zsecret",
        ])
        .unwrap();
        let Command::Token(TokenCommand::Get(args)) = cli.command else {
            panic!("not token get")
        };
        assert_eq!(args.client_secret.as_deref(), Some("-Zsecret"));

        let cli = Cli::try_parse_from([
            "mcp-oauth",
            "probe",
            "https://a.example/mcp",
            "--token",
            "-a.b.c",
            "--token-low",
            "-d.e.f",
            "--client-id",
            "c",
            "--client-secret",
            "-s",
        ])
        .unwrap();
        let Command::Probe(args) = cli.command else {
            panic!("not probe")
        };
        assert_eq!(args.token.as_deref(), Some("-a.b.c"));
        assert_eq!(args.token_low.as_deref(), Some("-d.e.f"));
        assert_eq!(args.client_secret.as_deref(), Some("-s"));
    }
}
