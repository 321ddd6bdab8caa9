//! The metadata: the protected resource's (RFC 9728) at the path-inserted and root
//! well-known URLs, and each authorization server's (RFC 8414, or OIDC discovery).

use mcp_oauth::metadata::{root_well_known_url, well_known_url};
use serde_json::Value;

use super::{Found, Probe, clip};
use crate::ProbeArgs;
use crate::fetch;
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

    // MCP lets the server name its metadata in the 401 challenge instead (RFC 9728 §5.1
    // allows any URL): a URL other than the two well-known ones is fetched and judged.
    let named = challenged_metadata_url(probe).await;
    let custom = match named.filter(|n| *n != path_url && *n != root_url) {
        Some(url) => {
            let result = probe.get_json(&url).await;
            Some((url, result))
        }
        None => None,
    };
    let custom_doc = match &custom {
        Some((url, Ok(document))) => {
            found.served.push(url.clone());
            Some(document.clone())
        }
        Some((url, Err(error))) => {
            found.unserved.push((url.clone(), error.text.clone()));
            None
        }
        None => None,
    };
    let elsewhere = custom
        .as_ref()
        .filter(|(_, result)| result.is_ok())
        .map(|(url, _)| url.clone());

    let path_result = probe.get_json(&path_url).await;
    let path_doc = judge_metadata(
        probe,
        &mut found,
        "metadata.path_inserted",
        "protected-resource metadata at the path-inserted well-known URL",
        &path_url,
        path_result,
        elsewhere.as_deref(),
        "RFC 9728 §3.1, MCP authorization (discovery)",
    );
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
        let root_result = probe.get_json(&root_url).await;
        // Clients try the path-inserted URL first: with the document there, the root is a
        // fallback a server may leave out (a warning, not a failure).
        let served_elsewhere = elsewhere
            .as_deref()
            .or(path_doc.is_some().then_some(path_url.as_str()));
        judge_metadata(
            probe,
            &mut found,
            "metadata.root",
            "protected-resource metadata at the root well-known URL",
            &root_url,
            root_result,
            served_elsewhere,
            "MCP authorization (clients fall back to the root URL), RFC 9728 §3.1",
        )
    };

    // The document the challenge names is the one clients use: judge it first.
    let Some(metadata) = custom_doc.or(path_doc).or(root_doc) else {
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

    let servers = fetch::strings(metadata.get("authorization_servers"));
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

    found.scopes = fetch::strings(metadata.get("scopes_supported"));
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

    found.dpop_algs = Some(fetch::strings(
        metadata.get("dpop_signing_alg_values_supported"),
    ))
    .filter(|algs| !algs.is_empty());
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

/// The `resource_metadata` the credential-less 401's challenge names, if any (the first
/// Bearer or DPoP challenge that has one).
async fn challenged_metadata_url(probe: &mut Probe) -> Option<String> {
    let reply = probe.initialize_with(&[]).await.ok()?;
    reply.challenges().into_iter().find_map(|(_, parsed)| {
        let (_, params) = parsed?;
        super::param(&params, "resource_metadata").map(str::to_owned)
    })
}

/// Reports the metadata fetched from a well-known URL as check `id`: a pass when served, a
/// skip when rate limited, and when absent a failure, or a warning when the challenge names
/// another URL that serves it (`elsewhere`: MCP requires one of the two mechanisms).
#[allow(clippy::too_many_arguments)]
fn judge_metadata(
    probe: &mut Probe,
    found: &mut Found,
    id: &str,
    title: &str,
    url: &str,
    result: Result<Value, super::GetError>,
    elsewhere: Option<&str>,
    spec: &str,
) -> Option<Value> {
    match result {
        Ok(document) => {
            found.served.push(url.to_owned());
            probe.push(id, title, Status::Pass, url, spec);
            Some(document)
        }
        Err(why) => {
            found.unserved.push((url.to_owned(), why.text.clone()));
            let (status, detail) = match elsewhere {
                _ if why.rate_limited => (Status::Skip, why.text),
                Some(named) => (
                    Status::Warn,
                    format!(
                        "{}; the document is served at {named}, where clients look first \
                         (a client that starts at this URL finds nothing)",
                        why.text
                    ),
                ),
                None => (Status::Fail, why.text),
            };
            probe.push(id, title, status, detail, spec);
            None
        }
    }
}

/// Finds and checks one authorization server's metadata: [`fetch::authorization_server_metadata`]
/// (RFC 8414 then OpenID Connect discovery URLs; a document naming another issuer is
/// discarded, RFC 8414 §3.3, so nothing later — client credentials included — uses it).
async fn authorization_server(probe: &mut Probe, issuer: &str) -> Option<Value> {
    const TITLE: &str = "authorization server metadata found";
    const SPEC: &str = "RFC 8414 §3, OpenID Connect Discovery §4, MCP authorization";
    const ISSUER_TITLE: &str = "its `issuer` is the advertised issuer";
    let (url, document) = match fetch::authorization_server_metadata(&probe.http, issuer).await {
        Ok((url, document)) => (url, Value::Object(document)),
        Err(error) => {
            let mismatch = error.contains("RFC 8414 §3.3");
            probe.push("as.metadata", TITLE, Status::Fail, error, SPEC);
            probe.push(
                "as.issuer",
                ISSUER_TITLE,
                if mismatch { Status::Fail } else { Status::Skip },
                if mismatch {
                    format!("{issuer}: a document names another issuer: clients discard it")
                } else {
                    format!("{issuer}: no document found")
                },
                "RFC 8414 §3.3",
            );
            return None;
        }
    };
    probe.push("as.metadata", TITLE, Status::Pass, url, SPEC);
    probe.push(
        "as.issuer",
        ISSUER_TITLE,
        Status::Pass,
        format!("\"{issuer}\""),
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
    let methods = fetch::strings(document.get("code_challenge_methods_supported"));
    probe.verdict(
        "as.pkce_s256",
        "PKCE S256 advertised (`code_challenge_methods_supported`)",
        methods.iter().any(|method| method == "S256"),
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
    // Only documents whose issuer matched (RFC 8414 §3.3) are in `found.issuers`.
    let Some((issuer, endpoint, server)) = found.issuers.iter().find_map(|(issuer, doc)| {
        let endpoint = doc.get("token_endpoint").and_then(Value::as_str)?;
        Some((
            issuer.clone(),
            endpoint.to_owned(),
            doc.as_object()?.clone(),
        ))
    }) else {
        probe.push(
            ID,
            TITLE,
            Status::Fail,
            "no authorization server (whose metadata names it as issuer) with a token_endpoint",
            SPEC,
        );
        return None;
    };
    let client_id = args.client_id.clone().unwrap_or_default();
    let auth = fetch::ClientAuth::for_server(&server, &client_id, args.client_secret.as_deref());
    let form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("resource", probe.url.clone()),
    ];
    // The endpoint must be https or loopback: token_request refuses before sending.
    match fetch::token_request(&probe.http, &endpoint, auth, form).await {
        Ok(response) => {
            probe.secret(&response.access_token);
            probe.push(
                ID,
                TITLE,
                Status::Pass,
                format!("from {endpoint} ({issuer})"),
                SPEC,
            );
            Some(response.access_token)
        }
        Err(error) => {
            probe.push(ID, TITLE, Status::Fail, error, SPEC);
            None
        }
    }
}
