//! What the endpoint answers without valid credentials: the discovery 401, forged and
//! malformed tokens, and DNS-rebinding requests (a foreign `Origin` or `Host`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::challenge::Scheme;
use serde_json::json;

use super::{Found, Probe, Reply, echoes, param};
use crate::report::Status;

/// Runs the group.
pub async fn run(probe: &mut Probe, found: &Found) {
    discovery_challenge(probe, found).await;
    forged_tokens(probe, found).await;
    rebinding(probe).await;
}

/// POSTs an `initialize` with `authorization` (none: no header).
async fn post(probe: &mut Probe, authorization: Option<&str>) -> Result<Reply, String> {
    match authorization {
        Some(value) => probe.initialize_with(&[("authorization", value)]).await,
        None => probe.initialize_with(&[]).await,
    }
}

async fn discovery_challenge(probe: &mut Probe, found: &Found) {
    const SPEC_401: &str = "MCP authorization (discovery), RFC 9728 §5.1";
    let reply = match post(probe, None).await {
        Ok(reply) => reply,
        Err(error) => {
            probe.unanswered("challenge.status", "no credentials: 401", SPEC_401, &error);
            return;
        }
    };
    if probe.skipped_for_429(&reply, "challenge.status", "no credentials: 401", SPEC_401) {
        return;
    }
    probe.verdict(
        "challenge.status",
        "no credentials: 401",
        reply.status == 401,
        reply.summary(),
        "RFC 6750 §3, MCP authorization",
    );
    // With DPoP required the challenge may be DPoP only; otherwise a Bearer one.
    let scheme = if found.dpop_required {
        Scheme::Dpop
    } else {
        Scheme::Bearer
    };
    let params = reply
        .challenge(scheme)
        .or_else(|| reply.challenge(Scheme::Bearer))
        .or_else(|| reply.challenge(Scheme::Dpop));
    let Some(params) = params else {
        let raw: Vec<String> = reply.challenges().into_iter().map(|(raw, _)| raw).collect();
        probe.push(
            "challenge.resource_metadata",
            "the 401 challenge names the metadata (`resource_metadata`)",
            Status::Fail,
            if raw.is_empty() {
                "no WWW-Authenticate header".to_owned()
            } else {
                format!(
                    "no readable Bearer or DPoP challenge in {}",
                    super::clip(&raw.join(" | "), 200)
                )
            },
            SPEC_401,
        );
        return;
    };
    // It passes when the URL it names serves the metadata: a well-known one, or any other
    // (RFC 9728 §5.1, MCP), which discovery fetched and judged.
    let named = param(&params, "resource_metadata");
    let root = mcp_oauth::metadata::root_well_known_url(&probe.url).ok();
    let served = named.is_some_and(|n| found.served.iter().any(|s| s == n));
    let unserved = named.and_then(|n| {
        found
            .unserved
            .iter()
            .find(|(u, _)| u == n)
            .map(|(_, why)| why.clone())
    });
    probe.verdict(
        "challenge.resource_metadata",
        "the 401 challenge names the metadata (`resource_metadata`)",
        served,
        match named {
            Some(url) if served && url == found.metadata_url => url.to_owned(),
            Some(url) if served && Some(url) == root.as_deref() => {
                format!("{url} (the root URL; the path-inserted one is preferred)")
            }
            Some(url) if served => format!("{url} (not a well-known URL; it serves the metadata)"),
            Some(url) => format!(
                "\"{}\" serves no metadata document: {}",
                super::clip(url, 200),
                unserved.unwrap_or_else(|| "not fetched".to_owned())
            ),
            None => "no resource_metadata parameter".to_owned(),
        },
        SPEC_401,
    );
    let error = param(&params, "error");
    probe.verdict(
        "challenge.no_error",
        "the credential-less 401 carries no `error`",
        error.is_none(),
        match error {
            Some(e) => format!(
                "error=\"{}\": a request without credentials is not an error",
                super::clip(e, 60)
            ),
            None => "no error parameter".to_owned(),
        },
        "RFC 6750 §3.1",
    );
    let scope = param(&params, "scope");
    if found.scopes.is_empty() {
        probe.push(
            "challenge.scope",
            "the 401 challenge says which scopes to ask for (`scope`)",
            Status::Skip,
            "the metadata advertises no scopes",
            "MCP authorization (scope selection)",
        );
    } else {
        let offline = scope.is_some_and(|s| s.split(' ').any(|s| s == "offline_access"));
        // `scope` in the challenge is a SHOULD (MCP scope selection): a warning.
        probe.advise(
            "challenge.scope",
            "the 401 challenge says which scopes to ask for (`scope`)",
            scope.is_some_and(|s| !s.trim().is_empty()) && !offline,
            match scope {
                Some(s) if offline => format!("scope=\"{s}\" names offline_access"),
                Some(s) => format!("scope=\"{s}\""),
                None => "no scope parameter: clients fall back to scopes_supported".to_owned(),
            },
            "MCP authorization (scope selection), MCP 2026-07-28 (SEP-2207)",
        );
    }
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// One forged or malformed credential and what a refusal may look like.
struct Forgery {
    id: &'static str,
    title: &'static str,
    header: String,
    /// A part of the token the answer must not repeat.
    secret: String,
    accepts: fn(&Reply) -> bool,
    expected: &'static str,
}

fn invalid_token(reply: &Reply) -> bool {
    reply.status == 401
        && [Scheme::Bearer, Scheme::Dpop].iter().any(|s| {
            reply
                .challenge(*s)
                .is_some_and(|p| param(&p, "error") == Some("invalid_token"))
        })
}

/// Whether an error challenge (Bearer or DPoP) names the metadata (`resource_metadata`).
pub fn names_metadata(reply: &Reply) -> bool {
    [Scheme::Bearer, Scheme::Dpop].iter().any(|s| {
        reply
            .challenge(*s)
            .is_some_and(|p| param(&p, "resource_metadata").is_some())
    })
}

async fn forged_tokens(probe: &mut Probe, found: &Found) {
    const SPEC: &str = "RFC 6750 §3.1, RFC 8725 §3.1, OAuth 2.1 §5.2";
    let issuer = found
        .issuers
        .first()
        .map(|(issuer, _)| issuer.clone())
        .unwrap_or_else(|| "https://issuer.invalid".to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let marker = format!("mcp-oauth-probe-{now:x}");
    let claims = json!({
        "iss": issuer, "aud": probe.url, "sub": marker, "client_id": marker, "jti": marker,
        "iat": now, "exp": now + 300, "scope": found.scopes.join(" "),
    });
    let payload = b64(&claims);
    let es256 = b64(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "mcp-oauth-probe"}));
    let none = b64(&json!({"alg": "none", "typ": "at+jwt"}));
    let signature = URL_SAFE_NO_PAD.encode([0x5a_u8; 64]);
    let huge = "A".repeat(64 * 1024);
    for minted in [&payload, &signature] {
        probe.secret(minted);
    }
    let forgeries = [
        Forgery {
            id: "forged.unsigned",
            title: "a token without a signature refused",
            header: format!("Bearer {es256}.{payload}."),
            secret: payload.clone(),
            accepts: invalid_token,
            expected: "401 invalid_token",
        },
        Forgery {
            id: "forged.alg_none",
            title: "an `alg: none` token refused",
            header: format!("Bearer {none}.{payload}."),
            secret: payload.clone(),
            accepts: invalid_token,
            expected: "401 invalid_token",
        },
        Forgery {
            id: "forged.bad_signature",
            title: "a token with a signature by no key of the issuer refused",
            header: format!("Bearer {es256}.{payload}.{signature}"),
            secret: signature.clone(),
            accepts: invalid_token,
            expected: "401 invalid_token",
        },
        Forgery {
            id: "forged.huge",
            title: "a 64 KiB token refused",
            header: format!("Bearer {huge}"),
            secret: huge[..256].to_owned(),
            // A proxy's header limit may answer 400 (or 413, 431) before the resource sees it.
            accepts: |r| invalid_token(r) || matches!(r.status, 400 | 413 | 431),
            expected: "401 invalid_token, 400, 413 or 431",
        },
        Forgery {
            id: "forged.non_token68",
            title: "a Bearer value that is not token68 refused",
            header: "Bearer not a token68 {value}".to_owned(),
            secret: "{value}".to_owned(),
            accepts: |r| r.status == 400 || invalid_token(r),
            expected: "400 invalid_request or 401 invalid_token",
        },
    ];
    let mut echoed = Vec::new();
    let mut answered = 0;
    for forgery in forgeries {
        let reply = match post(probe, Some(&forgery.header)).await {
            Ok(reply) => reply,
            Err(error) => {
                probe.unanswered(forgery.id, forgery.title, SPEC, &error);
                continue;
            }
        };
        if probe.skipped_for_429(&reply, forgery.id, forgery.title, SPEC) {
            continue;
        }
        answered += 1;
        let ok = (forgery.accepts)(&reply);
        // The SPEC's test vectors put `resource_metadata` in every error challenge too.
        let unpointed = ok && reply.status == 401 && !names_metadata(&reply);
        let detail = if unpointed {
            format!(
                "{}: refused, but the challenge has no resource_metadata",
                reply.summary()
            )
        } else if ok {
            reply.summary()
        } else {
            format!("{}, expected {}", reply.summary(), forgery.expected)
        };
        let status = match (ok, unpointed) {
            (false, _) => Status::Fail,
            (true, true) => Status::Warn,
            (true, false) => Status::Pass,
        };
        probe.push(forgery.id, forgery.title, status, detail, SPEC);
        if echoes(&reply, &forgery.secret) || echoes(&reply, &marker) {
            echoed.push(forgery.id);
        }
    }
    if answered > 0 {
        probe.verdict(
            "forged.no_echo",
            "refusals never repeat token material (body or headers)",
            echoed.is_empty(),
            if echoed.is_empty() {
                format!("{answered} refusals checked")
            } else {
                format!("echoed by the answers to {}", echoed.join(", "))
            },
            "RFC 6750 §5.1, MCP security best practices (no token logging)",
        );
    }
    probe.push(
        "forged.claims",
        "expired, wrong-audience or wrong-`typ` tokens",
        Status::Skip,
        "from outside, a forged expired or wrong-typ token only exercises the signature check \
         (the probe holds no key the issuer's JWKS trusts); `mcp-oauth token inspect` explains \
         a real token's claims",
        "RFC 9068 §4",
    );
}

async fn rebinding(probe: &mut Probe) {
    const SPEC: &str = "MCP transports (DNS rebinding: servers MUST validate Origin)";
    let url = probe.url.clone();
    match probe
        .initialize_with(&[("origin", "http://evil.example")])
        .await
    {
        Ok(reply) => {
            if !probe.skipped_for_429(&reply, "rebinding.origin", ORIGIN_TITLE, SPEC) {
                probe.verdict(
                    "rebinding.origin",
                    ORIGIN_TITLE,
                    reply.status == 403,
                    if reply.status == 403 {
                        "403".to_owned()
                    } else {
                        format!(
                            "{}: a page on another site reaches the endpoint",
                            reply.summary()
                        )
                    },
                    SPEC,
                );
            }
        }
        Err(error) => probe.unanswered("rebinding.origin", ORIGIN_TITLE, SPEC, &error),
    }

    const HOST_TITLE: &str = "a foreign `Host` refused (loopback resource)";
    const HOST_SPEC: &str =
        "MCP transports (DNS rebinding), MCP conformance dns-rebinding-protection";
    let parsed = url::Url::parse(&url).ok();
    // The library's loopback rule: plain http is allowed to a loopback host only.
    let loopback = parsed.as_ref().is_some_and(|u| {
        let mut plain = u.clone();
        plain.set_scheme("http").is_ok() && mcp_oauth::is_https_or_loopback(&plain)
    });
    if !loopback {
        probe.push(
            "rebinding.host",
            HOST_TITLE,
            Status::Skip,
            "not a loopback resource: which Host names reach it is the deployment's choice",
            HOST_SPEC,
        );
        return;
    }
    let port = parsed.and_then(|u| u.port_or_known_default()).unwrap_or(80);
    let host = format!("evil.example:{port}");
    match probe.initialize_with(&[("host", &host)]).await {
        Ok(reply) => {
            if !probe.skipped_for_429(&reply, "rebinding.host", HOST_TITLE, HOST_SPEC) {
                let refused = matches!(reply.status, 400 | 403 | 421);
                probe.verdict(
                    "rebinding.host",
                    HOST_TITLE,
                    refused,
                    if refused {
                        format!("{}", reply.status)
                    } else {
                        format!("{}: a rebound name reaches the endpoint", reply.summary())
                    },
                    HOST_SPEC,
                );
            }
        }
        Err(error) => probe.unanswered("rebinding.host", HOST_TITLE, HOST_SPEC, &error),
    }
}

const ORIGIN_TITLE: &str = "a foreign `Origin` refused with 403";
