//! `mcp-oauth metadata URL`: the protected-resource metadata (RFC 9728) of an MCP endpoint and
//! the metadata (RFC 8414 / OpenID Connect Discovery) of each authorization server it names,
//! found the way MCP clients find them. The discovery helpers serve `token` too.

use std::process::ExitCode;
use std::time::Duration;

use mcp_oauth::key_set::discovery_urls;
use mcp_oauth::metadata::{root_well_known_url, well_known_url};
use serde_json::{Map, Value};

/// The largest metadata document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A metadata document and the URL it was read from.
pub struct Document {
    pub url: String,
    pub json: Map<String, Value>,
}

/// GETs `url` and reads a JSON object (200, at most [`MAX_DOCUMENT_BYTES`]).
async fn get_object(client: &reqwest::Client, url: &str) -> Result<Map<String, Value>, String> {
    let response = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {}", status.as_u16()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {}", error_chain(&e)))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("GET {url}: a body over {MAX_DOCUMENT_BYTES} bytes"));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(format!("GET {url}: the body is JSON but not an object")),
        Err(e) => Err(format!("GET {url}: the body is not JSON ({e})")),
    }
}

/// The protected-resource metadata of `resource`: at the path-inserted well-known URL, else
/// at the root one (RFC 9728 §3.1, the order MCP clients try). A document whose `resource`
/// is not `resource` is reported on standard error, and used all the same.
pub async fn resource_metadata(
    client: &reqwest::Client,
    resource: &str,
) -> Result<Document, String> {
    let inserted = well_known_url(resource).map_err(|e| format!("{resource}: {e}"))?;
    let root = root_well_known_url(resource).map_err(|e| format!("{resource}: {e}"))?;
    let mut urls = vec![inserted, root];
    urls.dedup();
    let mut errors = Vec::new();
    for url in urls {
        match get_object(client, &url).await {
            Ok(json) => {
                if json.get("resource").and_then(Value::as_str) != Some(resource) {
                    eprintln!(
                        "warning: the metadata at {url} names resource {}, not {resource} \
                         (clients refuse it: RFC 9728 §3.3)",
                        json.get("resource").unwrap_or(&Value::Null)
                    );
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
    metadata
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|servers| {
            servers
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The metadata of authorization server `issuer`: the first of the RFC 8414 and OpenID
/// Connect URLs (the library's discovery order) that answers a document whose `issuer` is
/// `issuer` (RFC 8414 §3.3: any other is discarded).
pub async fn authorization_server_metadata(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<Document, String> {
    let urls = discovery_urls(issuer).map_err(|e| format!("issuer {issuer}: {e}"))?;
    let mut errors = Vec::new();
    for url in urls {
        match get_object(client, &url).await {
            Ok(json) if json.get("issuer").and_then(Value::as_str) == Some(issuer) => {
                return Ok(Document { url, json });
            }
            Ok(json) => errors.push(format!(
                "{url} names issuer {}, not {issuer}: discarded",
                json.get("issuer").unwrap_or(&Value::Null)
            )),
            Err(e) => errors.push(e),
        }
    }
    Err(format!(
        "no metadata for authorization server {issuer}: {}",
        errors.join("; ")
    ))
}

/// An error and its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub async fn run(args: crate::MetadataArgs) -> Result<ExitCode, String> {
    let client = crate::http_client(Duration::from_secs(10))?;
    let resource = resource_metadata(&client, &args.url).await?;
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
