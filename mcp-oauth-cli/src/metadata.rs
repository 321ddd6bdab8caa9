//! `mcp-oauth metadata URL`: the protected-resource metadata (RFC 9728) of an MCP endpoint and
//! the metadata (RFC 8414 / OpenID Connect Discovery) of each authorization server it names,
//! found the way MCP clients find them. The discovery helpers serve `token` too.

use std::process::ExitCode;
use std::time::Duration;

use mcp_oauth::metadata::{root_well_known_url, well_known_url};
use serde_json::{Map, Value};

use crate::fetch::{self, MAX_DOCUMENT_BYTES};

/// A metadata document and the URL it was read from.
pub struct Document {
    pub url: String,
    pub json: Map<String, Value>,
}

/// What to do with a protected-resource metadata document whose `resource` is not the URL
/// asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceMismatch {
    /// Refuse it: RFC 9728 §3.3 says a client must not use it (`token get`, `token inspect`).
    Refuse,
    /// Warn on standard error and show it all the same (`metadata`, which only displays).
    Warn,
}

/// The protected-resource metadata of `resource`: at the path-inserted well-known URL, else
/// at the root one (RFC 9728 §3.1, the order MCP clients try). Read through
/// [`fetch::get_json_object`] (JSON, capped). A document whose `resource` is not `resource`
/// is refused or warned about, as `mismatch` says.
pub async fn resource_metadata(
    client: &reqwest::Client,
    resource: &str,
    mismatch: ResourceMismatch,
) -> Result<Document, String> {
    let inserted = well_known_url(resource).map_err(|e| format!("{resource}: {e}"))?;
    let root = root_well_known_url(resource).map_err(|e| format!("{resource}: {e}"))?;
    let mut urls = vec![inserted, root];
    urls.dedup();
    let mut errors = Vec::new();
    for url in urls {
        match fetch::get_json_object(client, &url, MAX_DOCUMENT_BYTES).await {
            Ok((_, json)) => {
                if json.get("resource").and_then(Value::as_str) != Some(resource) {
                    let problem = format!(
                        "the metadata at {url} names resource {}, not {resource} \
                         (RFC 9728 §3.3: a client must not use it)",
                        json.get("resource").unwrap_or(&Value::Null)
                    );
                    match mismatch {
                        ResourceMismatch::Refuse => return Err(problem),
                        ResourceMismatch::Warn => eprintln!("warning: {problem}"),
                    }
                }
                return Ok(Document { url, json });
            }
            Err(e) => errors.push(e),
        }
    }
    Err(format!(
        "no protected-resource metadata for {resource}: {}",
        errors.join("; ")
    ))
}

/// The `authorization_servers` of a protected-resource metadata document.
pub fn authorization_servers(metadata: &Map<String, Value>) -> Vec<String> {
    fetch::strings(metadata.get("authorization_servers"))
}

/// The metadata of authorization server `issuer`, as [`fetch::authorization_server_metadata`]
/// finds it (RFC 8414 §3.3: only a document naming `issuer` is kept).
pub async fn authorization_server_metadata(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<Document, String> {
    let (url, json) = fetch::authorization_server_metadata(client, issuer).await?;
    Ok(Document { url, json })
}

pub async fn run(args: crate::MetadataArgs) -> Result<ExitCode, String> {
    let client = crate::http_client(Duration::from_secs(10))?;
    let resource = resource_metadata(&client, &args.url, ResourceMismatch::Warn).await?;
    let mut servers = Vec::new();
    for issuer in authorization_servers(&resource.json) {
        let found = authorization_server_metadata(&client, &issuer).await;
        servers.push((issuer, found));
    }
    let failed = servers.iter().any(|(_, found)| found.is_err());
    if args.json {
        let authorization_servers: Map<String, Value> = servers
            .iter()
            .map(|(issuer, found)| {
                let value = match found {
                    Ok(document) => Value::Object(document.json.clone()),
                    Err(_) => Value::Null,
                };
                (issuer.clone(), value)
            })
            .collect();
        let document = serde_json::json!({
            "resource_metadata": resource.json,
            "authorization_servers": authorization_servers,
        });
        println!("{}", pretty(&document));
        for (_, found) in &servers {
            if let Err(e) = found {
                eprintln!("error: {e}");
            }
        }
    } else {
        println!("Protected resource metadata (RFC 9728)");
        println!("  from {}", resource.url);
        println!("{}", indent(&pretty(&Value::Object(resource.json.clone()))));
        if servers.is_empty() {
            println!("\nNo authorization_servers: MCP requires at least one.");
        }
        for (issuer, found) in &servers {
            println!("\nAuthorization server {issuer}");
            match found {
                Ok(document) => {
                    println!("  from {}", document.url);
                    println!("{}", indent(&pretty(&Value::Object(document.json.clone()))));
                }
                Err(e) => println!("  unavailable: {e}"),
            }
        }
    }
    Ok(if failed || servers.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Pretty JSON.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Each line indented by two spaces.
pub fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
