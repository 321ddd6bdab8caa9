//! A one-tool MCP server against an external issuer, configured from the environment:
//! `MCP_OAUTH_RESOURCE=http://127.0.0.1:8080/mcp MCP_OAUTH_ISSUER=https://auth.example.com cargo run --example minimal`
use mcp_oauth::{Authenticated, ProtectedResourceExt, mcp_tool, protected_resource};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

#[protected_resource(
    resource = "https://greeter.example.com/mcp", // defaults: the environment overrides them
    authorization_servers = ["https://auth.example.com"],
    scopes = ["greet"],
)]
#[derive(Clone)]
struct Greeter;

#[tool_router]
impl Greeter {
    #[mcp_tool(scopes = ["greet"])] // a typo here fails `cargo check`; 403 step-up without it
    #[tool(description = "Say hello to the caller")]
    async fn hello(&self, auth: Authenticated) -> Result<CallToolResult, ErrorData> {
        let who = auth.subject().unwrap_or("stranger");
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "hello, {who}"
        ))]))
    }
}

#[tool_handler]
impl ServerHandler for Greeter {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Greeter::oauth()
        .with_env()?
        .tool_router(&Greeter::tool_router());
    app.build().await?.serve_rmcp(|| Ok(Greeter)).await?; // until SIGINT or SIGTERM
    Ok(())
}
