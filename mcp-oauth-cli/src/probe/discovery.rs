//! The metadata: the protected resource's (RFC 9728) at the path-inserted and root
//! well-known URLs, and each authorization server's (RFC 8414, or OIDC discovery).

use mcp_oauth::metadata::{root_well_known_url, well_known_url};
use serde_json::Value;

use super::{Found, Probe, Reply, clip};
use crate::ProbeArgs;
use crate::report::Status;

const RFC9728: &str = "RFC 9728 §3";

/// Fetches and checks the metadata; returns what later groups need.
pub async fn run(probe: &mut Probe) -> Found {
    let mut found = Found::default();
    let (path_url, root_url) = match (well_known_url(&probe.url), root_well_known_url(&probe.url)) {
        (Ok(path), Ok(root)) => (path, root),
        (Err(error), _) | (_, Err(error)) => {
            probe.push(
                "metadata.path_inserted",
                "protected-resource metadata at the path-inserted well-known URL",
                Status::Fail,
                format!("no well-known URL can be built from the endpoint URL: {error}"),
                "RFC 9728 §3.1",
            );
            return found;
        }
    };
    found.metadata_url = path_url.clone();

    let path_doc = fetch_metadata(
        probe,
        "metadata.path_inserted",
        "protected-resource metadata at the path-inserted well-known URL",
        &path_url,
        "RFC 9728 §3.1, MCP authorization (discovery)",
    )
    .await;
    let root_doc = if root_url == path_url {
        probe.push(
            "metadata.root",
            "protected-resource metadata at the root well-known URL",
            Status::Skip,
            "the endpoint has no path: the root URL is the path-inserted one",
            "RFC 9728 §3.1",
        );
        None
    } else {
        fetch_metadata(
            probe,
            "metadata.root",
            "protected-resource metadata at the root well-known URL",
            &root_url,
            "MCP authorization (clients fall back to the root URL), RFC 9728 §3.1",
        )
        .await
    };

    let Some(metadata) = path_doc.or(root_doc) else {
        for (id, title) in [
            ("metadata.resource", "`resource` is the endpoint URL"),
            (
                "metadata.authorization_servers",
                "`authorization_servers` lists an issuer",
            ),
        ] {
            probe.push(
                id,
                title,
                Status::Skip,
                "no metadata document found",
                RFC9728,
            );
        }
        return found;
    };

    let resource = metadata.get("resource").and_then(Value::as_str);
    probe.verdict(
        "metadata.resource",
        "`resource` is the endpoint URL",
        resource == Some(probe.url.as_str()),
        match resource {
            Some(r) if r == probe.url => format!("\"{r}\""),
            Some(r) => format!(
                "\"{}\", not \"{}\": clients refuse metadata for another resource",
                clip(r, 200),
                probe.url
            ),
            None => "no `resource` member".to_owned(),
        },
        "RFC 9728 §3.3, §7.3",
    );

    let servers: Vec<String> = metadata
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    probe.verdict(
        "metadata.authorization_servers",
        "`authorization_servers` lists an issuer",
        !servers.is_empty(),
        if servers.is_empty() {
            "none: MCP requires at least one".to_owned()
        } else {
            servers.join(", ")
        },
        "MCP authorization (authorization server location), RFC 9728 §2",
    );

    found.scopes = metadata
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let offline = found.scopes.iter().any(|s| s == "offline_access");
    // SEP-2207: offline_access SHOULD NOT be advertised: a warning, not a failure.
    probe.advise(
        "metadata.scopes",
        "`scopes_supported` without `offline_access`",
        !offline,
        if offline {
            "advertises offline_access".to_owned()
        } else if found.scopes.is_empty() {
            "no scopes advertised".to_owned()
        } else {
            found.scopes.join(" ")
        },
        "MCP 2026-07-28 (SEP-2207), RFC 9728 §2",
    );

    found.dpop_algs = metadata
        .get("dpop_signing_alg_values_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty());
    found.dpop_required = metadata
        .get("dpop_bound_access_tokens_required")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    // CORS: a browser-based client reads the metadata cross-origin.
    let cors_url = path_url.clone();
    match probe
        .send(|http| {
            http.get(&cors_url)
                .header("origin", "https://client.example")
        })
        .await
    {
        Ok(reply) if !probe.skipped_for_429(&reply, "metadata.cors", CORS_TITLE, CORS_SPEC) => {
            let allow = reply.header("access-control-allow-origin");
            // No MUST names CORS on the metadata: a warning, not a failure.
            probe.advise(
                "metadata.cors",
                CORS_TITLE,
                reply.status == 200 && matches!(allow, Some("*" | "https://client.example")),
                match allow {
                    Some(v) => format!(
                        "{} Access-Control-Allow-Origin: {}",
                        reply.status,
                        clip(v, 80)
                    ),
                    None => format!("{} without Access-Control-Allow-Origin", reply.status),
                },
                CORS_SPEC,
            );
        }
        Ok(_) => {}
        Err(error) => probe.unanswered("metadata.cors", CORS_TITLE, CORS_SPEC, &error),
    }

    for issuer in servers.iter().take(4) {
        if let Some(document) = authorization_server(probe, issuer).await {
            found.issuers.push((issuer.clone(), document));
        }
    }
    found.metadata = Some(metadata);
    found
}

const CORS_TITLE: &str = "the metadata readable cross-origin (CORS)";
const CORS_SPEC: &str = "MCP authorization (browser clients), Fetch §3.2";

/// GETs a metadata document; checks 200, JSON object, `application/json`.
async fn fetch_metadata(
    probe: &mut Probe,
    id: &str,
    title: &str,
    url: &str,
    spec: &str,
) -> Option<Value> {
    let reply = match probe
        .send(|http| http.get(url).header("accept", "application/json"))
        .await
    {
        Ok(reply) => reply,
        Err(error) => {
            probe.unanswered(id, title, spec, &error);
            return None;
        }
    };
    if probe.skipped_for_429(&reply, id, title, spec) {
        return None;
    }
    match json_document(&reply) {
        Ok(document) => {
            probe.push(id, title, Status::Pass, url, spec);
            Some(document)
        }
        Err(why) => {
            probe.push(id, title, Status::Fail, format!("{url}: {why}"), spec);
            None
        }
    }
}

/// A 200 `application/json` object, or why not.
fn json_document(reply: &Reply) -> Result<Value, String> {
    if reply.status != 200 {
        let location = reply
            .header("location")
            .map(|l| format!(" (redirect to {})", clip(l, 120)))
            .unwrap_or_default();
        return Err(format!("{}{location}", reply.status));
    }
    let content_type = reply.header("content-type").unwrap_or("");
    let document: Value =
        serde_json::from_str(&reply.body).map_err(|e| format!("200 but not JSON ({e})"))?;
    if !document.is_object() {
        return Err("200 but not a JSON object".to_owned());
    }
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "Content-Type {content_type:?}, not application/json"
        ));
    }
    Ok(document)
}

/// The discovery URLs of an issuer, in the order clients try them (MCP authorization,
/// RFC 8414 §3.1 path insertion, then OIDC discovery in both forms).
fn discovery_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

/// Finds and checks one authorization server's metadata.
async fn authorization_server(probe: &mut Probe, issuer: &str) -> Option<Value> {
    const TITLE: &str = "authorization server metadata found";
    const SPEC: &str = "RFC 8414 §3, OpenID Connect Discovery §4, MCP authorization";
    let mut tried = Vec::new();
    let mut document = None;
    for url in discovery_urls(issuer) {
        match probe
            .send(|http| http.get(&url).header("accept", "application/json"))
            .await
        {
            Ok(reply) => match json_document(&reply) {
                Ok(found) => {
                    document = Some((url, found));
                    break;
                }
                Err(why) => tried.push(format!("{url}: {why}")),
            },
            Err(error) => tried.push(format!("{url}: {error}")),
        }
    }
    let Some((url, document)) = document else {
        probe.push(
            "as.metadata",
            TITLE,
            Status::Fail,
            format!(
                "{issuer}: {}",
                if tried.is_empty() {
                    "not a URL".to_owned()
                } else {
                    tried.join("; ")
                }
            ),
            SPEC,
        );
        return None;
    };
    probe.push("as.metadata", TITLE, Status::Pass, url, SPEC);

    let named = document.get("issuer").and_then(Value::as_str);
    probe.verdict(
        "as.issuer",
        "its `issuer` is the advertised issuer",
        named == Some(issuer),
        match named {
            Some(n) if n == issuer => format!("\"{n}\""),
            Some(n) => format!("\"{}\" for \"{issuer}\": clients discard it", clip(n, 200)),
            None => format!("{issuer}: no `issuer` member"),
        },
        "RFC 8414 §3.3",
    );
    let jwks = document.get("jwks_uri").and_then(Value::as_str);
    // `jwks_uri` is OPTIONAL in RFC 8414 §2: a warning, not a failure.
    probe.advise(
        "as.jwks_uri",
        "it names its keys (`jwks_uri`)",
        jwks.is_some(),
        jwks.map_or_else(|| format!("{issuer}: no jwks_uri"), str::to_owned),
        "RFC 8414 §2",
    );
    let methods: Vec<&str> = document
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    probe.verdict(
        "as.pkce_s256",
        "PKCE S256 advertised (`code_challenge_methods_supported`)",
        methods.contains(&"S256"),
        if methods.is_empty() {
            format!("{issuer}: not advertised: MCP clients refuse to proceed")
        } else {
            methods.join(" ")
        },
        "MCP authorization (PKCE), RFC 8414 §2, OAuth 2.1 §4.1.1",
    );
    let registration = document
        .get("registration_endpoint")
        .and_then(Value::as_str);
    let cimd = document
        .get("client_id_metadata_document_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Registration and client ID metadata documents are SHOULD/MAY in MCP: a warning.
    probe.advise(
        "as.registration",
        "clients can register (`registration_endpoint` or client ID metadata documents)",
        registration.is_some() || cimd,
        match (registration, cimd) {
            (Some(r), true) => format!("{r}; client ID metadata documents"),
            (Some(r), false) => r.to_owned(),
            (None, true) => "client ID metadata documents".to_owned(),
            (None, false) => {
                format!("{issuer}: neither: clients without a pre-registered id cannot get one")
            }
        },
        "MCP authorization (client registration), RFC 7591, SEP-991",
    );
    Some(document)
}

/// Gets a token by client credentials from the first authorization server that names a
/// token endpoint, with `resource=` the endpoint URL (RFC 8707). Reported as a check.
pub async fn client_credentials(
    probe: &mut Probe,
    found: &Found,
    args: &ProbeArgs,
) -> Option<String> {
    const ID: &str = "token.client_credentials";
    const TITLE: &str = "a token by client credentials from the advertised authorization server";
    const SPEC: &str = "OAuth 2.1 §4.2, RFC 8707 §2";
    let endpoint = found
        .issuers
        .iter()
        .find_map(|(_, doc)| doc.get("token_endpoint").and_then(Value::as_str))
        .map(str::to_owned);
    let Some(endpoint) = endpoint else {
        probe.push(
            ID,
            TITLE,
            Status::Fail,
            "no authorization server with a token_endpoint",
            SPEC,
        );
        return None;
    };
    let (id, secret) = (
        args.client_id.clone().unwrap_or_default(),
        args.client_secret.clone().unwrap_or_default(),
    );
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("resource", &probe.url)
        .finish();
    let reply = probe
        .send(|http| {
            http.post(&endpoint)
                .basic_auth(&id, Some(&secret))
                .header("accept", "application/json")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone())
        })
        .await;
    match reply {
        Ok(reply) => {
            let token = serde_json::from_str::<Value>(&reply.body)
                .ok()
                .and_then(|v| {
                    v.get("access_token")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
            let ok = reply.status == 200 && token.is_some();
            probe.verdict(
                ID,
                TITLE,
                ok,
                if ok {
                    format!("from {endpoint}")
                } else {
                    format!("{endpoint}: {} {}", reply.status, clip(&reply.body, 200))
                },
                SPEC,
            );
            token.filter(|_| ok)
        }
        Err(error) => {
            probe.unanswered(ID, TITLE, SPEC, &error);
            None
        }
    }
}
