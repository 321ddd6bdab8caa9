//! The calendar example: an rmcp server behind mcp-oauth, configured from the environment
//! (`MCP_OAUTH_*`, the table in the README), with an embedded dev authorization server when
//! no issuer is configured. `cargo run --example calendar` needs no configuration.

#[path = "../common/logging.rs"]
mod logging;
mod server;

use std::process::ExitCode;

use mcp_oauth::ProtectedResourceExt;
use mcp_oauth::app::OAuthServer;
use server::Calendar;

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The downstream API of `public_holidays`; with the dev server, its exchange audience.
    let holidays_api = std::env::var("CALENDAR_HOLIDAYS_API")
        .unwrap_or_else(|_| server::DEFAULT_HOLIDAYS_API.to_owned());
    let app = Calendar::oauth()
        .with_env()?
        .tool_router(&Calendar::tool_router())
        .prompt_router(&Calendar::prompt_router())
        .dev_server_if_unconfigured()
        .dev_exchange_audiences([holidays_api.clone()])
        .build()
        .await?;
    print_banner(&app, &holidays_api);
    // One calendar, shared by every session (the factory runs per session).
    let calendar = Calendar::new()
        .filtering_tools(app.settings().filter_tools)
        .with_holidays_api(&holidays_api);
    app.serve_rmcp(move || Ok(calendar.clone())).await?;
    Ok(())
}

fn print_banner(app: &OAuthServer, holidays_api: &str) {
    let resource = app.layer().resource_url();
    println!("mcp-oauth calendar example");
    println!("  MCP endpoint:      {resource}");
    println!("  metadata:          {}", app.layer().metadata_url());
    println!("  issuer:            {}", app.issuers().join(", "));
    match app.token_exchanger() {
        Some(exchanger) => {
            println!("  public_holidays:   calls {holidays_api} with a token exchanged for it");
            println!("  exchange client:   {}", exchanger.client_id());
            println!(
                "  holidays API:      MCP_OAUTH_ISSUER={} CALENDAR_HOLIDAYS_API={holidays_api} cargo run --example holidays_api",
                app.issuers().join(",")
            );
        }
        None => println!("  public_holidays:   needs token exchange (MCP_OAUTH_EXCHANGE_*)"),
    }
    let Some(dev) = app.dev_server() else {
        println!("  tokens:            from {}", app.issuers().join(", "));
        println!("ready");
        return;
    };
    {
        let client = dev.dev_client();
        println!("  dev client id:     {}", client.id);
        println!("  dev client secret: {}", client.secret);
        let token = |scope| dev.mint_access_token(dev.dev_user(), &client.id, &[scope]);
        let read = token("calendar:read");
        println!();
        if app.layer().dpop_mode() == mcp_oauth::dpop::DpopMode::Required {
            println!("DPoP is required: the bearer tokens below are refused. A client gets a");
            println!("DPoP-bound token by sending a DPoP proof with its token request.");
        }
        println!("Dev tokens (valid one hour):");
        println!("  read-only token (calendar:read):   {read}");
        println!(
            "  read-write token (calendar:write): {}",
            token("calendar:write")
        );
        println!(
            "  admin token (calendar:admin):      {}",
            token("calendar:admin")
        );
        println!();
        println!("Try it:");
        println!("  curl -s {}", app.layer().metadata_url());
        println!("  curl -si -X POST {resource} -H 'Authorization: Bearer {read}' \\");
        println!(
            "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\"
        );
        println!(
            "    -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'"
        );
        println!(
            "  Client credentials: POST {} with the client id/secret above and resource={resource}",
            dev.token_endpoint()
        );
    }
    println!("ready");
}
