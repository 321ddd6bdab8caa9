//! RFC 8693 token exchange at the dev authorization server's token endpoint: who may
//! exchange, for which audiences and scopes, what the new token says, and every refusal.
#![cfg(feature = "dev")]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::dev::{DevAuthorizationServer, DevAuthorizationServerBuilder, DevClient};
use mcp_oauth::revocation::{Revocation, Revocations};
use mcp_oauth::testing::DpopKey;
use mcp_oauth::{IssuerPolicy, ManualClock, Validator};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Digest as _;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const SCOPES: [&str; 3] = ["calendar:read", "calendar:write", "mail:send"];
/// The MCP server: a confidential client that is the resource server [`RESOURCE`].
const MCP: &str = "calendar-mcp";
const MCP_SECRET: &str = "calendar-mcp-secret";
/// Another confidential client, the resource server of nothing.
const OTHER: &str = "other-client";
const OTHER_SECRET: &str = "other-secret";
const DOWNSTREAM: &str = "https://calendar-api.example.test";
const MAIL: &str = "https://mail-api.example.test";
const NOT_ALLOWED: &str = "https://elsewhere.example.test";

fn builder() -> DevAuthorizationServerBuilder {
    DevAuthorizationServer::builder()
        .resource(RESOURCE)
        .scopes(SCOPES)
        .client(DevClient {
            id: MCP.into(),
            secret: MCP_SECRET.into(),
            scopes: vec!["calendar:read".into(), "calendar:write".into()],
            redirect_uris: vec![],
        })
        .client(DevClient {
            id: OTHER.into(),
            secret: OTHER_SECRET.into(),
            scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            redirect_uris: vec![],
        })
        .resource_server(MCP, RESOURCE)
        .exchange_audiences([DOWNSTREAM, MAIL])
}

async fn server() -> DevAuthorizationServer {
    builder().start().await.expect("the dev server starts")
}

struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    /// The `error` of an RFC 6749 error response, checking its status and description.
    fn oauth_error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body["error_description"].is_string(), "{}", self.body);
        self.body["error"].as_str().unwrap()
    }

    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        &self.body
    }
}

enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Public(&'a str),
}

async fn post(url: &str, auth: Auth<'_>, pairs: &[(&str, &str)], dpop: Option<String>) -> Reply {
    let mut pairs: Vec<(&str, &str)> = pairs.to_vec();
    let mut request = mcp_oauth::testing::http_client().post(url);
    match auth {
        Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => {
            pairs.push(("client_id", id));
            pairs.push(("client_secret", secret));
        }
        Auth::Public(id) => pairs.push(("client_id", id)),
    }
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let response = request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Reply { status, body }
}

async fn register(server: &DevAuthorizationServer, metadata: &Value) -> Reply {
    let response = mcp_oauth::testing::http_client()
        .post(server.registration_endpoint())
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    Reply { status, body }
}

/// An exchange by `auth` of `subject` with the extra parameters `more`.
async fn exchange(
    server: &DevAuthorizationServer,
    auth: Auth<'_>,
    subject: &str,
    more: &[(&str, &str)],
) -> Reply {
    let mut pairs = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    pairs.extend_from_slice(more);
    post(server.token_endpoint(), auth, &pairs, None).await
}

/// An exchange by the MCP server for [`DOWNSTREAM`].
async fn mcp_exchange(server: &DevAuthorizationServer, subject: &str) -> Reply {
    exchange(
        server,
        Auth::Basic(MCP, MCP_SECRET),
        subject,
        &[("audience", DOWNSTREAM)],
    )
    .await
}

/// A user's token for the MCP server, as its client obtained it.
fn user_token(server: &DevAuthorizationServer, scopes: &[&str]) -> String {
    server.mint_access_token("alice", "dev-client", scopes)
}

fn with_claims(server: &DevAuthorizationServer, scopes: &[&str], extra: Value) -> String {
    let Value::Object(extra) = extra else {
        panic!("claims are an object")
    };
    server.mint_access_token_with_claims("alice", "dev-client", scopes, extra)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn introspect(server: &DevAuthorizationServer, token: &str) -> Value {
    post(
        server.introspection_endpoint(),
        Auth::Basic(OTHER, OTHER_SECRET),
        &[("token", token)],
        None,
    )
    .await
    .ok()
    .clone()
}

#[tokio::test]
async fn a_resource_server_exchanges_a_users_token_for_a_downstream_one() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read", "calendar:write", "mail:send"]);
    let reply = mcp_exchange(&server, &subject).await;
    let body = reply.ok();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    // The subject's scopes the client has too; `mail:send` is not the client's.
    assert_eq!(body["scope"], "calendar:read calendar:write");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!((1..=300).contains(&expires_in), "{expires_in}");
    assert!(body.get("refresh_token").is_none());

    let token = body["access_token"].as_str().unwrap();
    let issued = claims(token);
    let original = claims(&subject);
    assert_eq!(issued["iss"], server.issuer());
    assert_eq!(issued["aud"], DOWNSTREAM);
    assert_eq!(issued["sub"], "alice");
    assert_eq!(issued["client_id"], MCP);
    assert_eq!(issued["act"], json!({ "sub": MCP }));
    assert_eq!(issued["scope"], "calendar:read calendar:write");
    assert_ne!(issued["jti"], original["jti"]);
    assert!(issued["exp"].as_u64().unwrap() <= original["exp"].as_u64().unwrap());

    // The downstream API accepts it; the MCP server itself does not (another audience).
    let downstream = IssuerPolicy::builder(server.issuer())
        .audience(DOWNSTREAM)
        .build()
        .unwrap();
    let verified = Validator::new(downstream).unwrap().validate(token).await;
    let verified = verified.expect("the downstream API accepts the exchanged token");
    assert_eq!(verified.subject(), Some("alice"));
    let mcp = IssuerPolicy::builder(server.issuer())
        .audience(RESOURCE)
        .build()
        .unwrap();
    assert!(Validator::new(mcp).unwrap().validate(token).await.is_err());
}

#[tokio::test]
async fn client_secret_post_several_audiences_and_resource_parameters() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let reply = exchange(
        &server,
        Auth::Post(MCP, MCP_SECRET),
        &subject,
        &[
            ("audience", DOWNSTREAM),
            ("resource", MAIL),
            ("requested_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    let token = reply.ok()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["aud"], json!([DOWNSTREAM, MAIL]));

    // `resource` alone names the target too; a repeated one is the same target.
    let reply = exchange(
        &server,
        Auth::Post(MCP, MCP_SECRET),
        &subject,
        &[("resource", MAIL), ("audience", MAIL)],
    )
    .await;
    assert_eq!(
        claims(reply.ok()["access_token"].as_str().unwrap())["aud"],
        MAIL
    );
}

#[tokio::test]
async fn the_grant_is_offered_only_with_exchange_audiences() {
    let offered = server().await;
    let grants = offered.metadata()["grant_types_supported"].clone();
    assert!(
        grants.as_array().unwrap().contains(&json!(GRANT)),
        "{grants}"
    );

    let plain = DevAuthorizationServer::builder()
        .resource(RESOURCE)
        .client(DevClient {
            id: MCP.into(),
            secret: MCP_SECRET.into(),
            scopes: vec![],
            redirect_uris: vec![],
        })
        .resource_server(MCP, RESOURCE)
        .start()
        .await
        .unwrap();
    let grants = plain.metadata()["grant_types_supported"].clone();
    assert_eq!(
        grants,
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    let subject = plain.mint_access_token("alice", "dev-client", &[]);
    let reply = mcp_exchange(&plain, &subject).await;
    assert_eq!(reply.oauth_error(400), "unsupported_grant_type");
    // The description lists what is supported, not the exchange.
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(!description.contains("token-exchange"), "{description}");
}

#[tokio::test]
async fn only_an_authenticated_confidential_client_may_exchange() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let wrong_secret = exchange(
        &server,
        Auth::Basic(MCP, "nope"),
        &subject,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    assert_eq!(wrong_secret.oauth_error(401), "invalid_client");

    // A public client (dynamically registered, authorization code only).
    let registered = register(
        &server,
        &json!({
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        }),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let registered = registered.body;
    let public_id = registered["client_id"].as_str().unwrap();
    let public = exchange(
        &server,
        Auth::Public(public_id),
        &subject,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    assert_eq!(public.oauth_error(400), "unauthorized_client");

    // Registration does not hand the exchange grant out.
    let refused = register(
        &server,
        &json!({ "grant_types": [GRANT, "client_credentials"] }),
    )
    .await;
    assert_eq!(refused.oauth_error(400), "invalid_client_metadata");
}

#[tokio::test]
async fn the_client_must_be_an_audience_of_the_subject_token() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    // OTHER is not the resource server of RESOURCE.
    let reply = exchange(
        &server,
        Auth::Basic(OTHER, OTHER_SECRET),
        &subject,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");

    // Its client id in `aud` makes it one, alone or among others.
    for aud in [json!(OTHER), json!(["https://x.example.test", OTHER])] {
        let subject = with_claims(&server, &["calendar:read"], json!({ "aud": aud }));
        let reply = exchange(
            &server,
            Auth::Basic(OTHER, OTHER_SECRET),
            &subject,
            &[("audience", DOWNSTREAM)],
        )
        .await;
        assert_eq!(
            claims(reply.ok()["access_token"].as_str().unwrap())["sub"],
            "alice"
        );
    }

    // MCP is RESOURCE's resource server, not the one of another resource.
    let elsewhere = with_claims(
        &server,
        &["calendar:read"],
        json!({ "aud": "http://127.0.0.1:9999/mcp" }),
    );
    assert_eq!(
        mcp_exchange(&server, &elsewhere).await.oauth_error(400),
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_subject_token_must_be_a_live_access_token_of_this_server() {
    let clock = ManualClock::new(1_000_000);
    let server = builder().clock(clock.clone()).start().await.unwrap();
    let other_server = builder().start().await.unwrap();

    let mut refused = vec![
        ("garbage", "not-a-token".to_owned()),
        (
            "another server's token",
            other_server.mint_access_token("alice", "dev-client", &["calendar:read"]),
        ),
        (
            "a token of another issuer",
            with_claims(&server, &[], json!({ "iss": "https://evil.example.test" })),
        ),
    ];
    // A tampered payload (the signature no longer holds).
    let genuine = user_token(&server, &["calendar:read"]);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut payload = claims(&genuine);
    payload["sub"] = json!("mallory");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    refused.push(("a tampered token", parts.join(".")));
    // A header with another `typ` (the signature breaks too: refused whichever check is
    // first).
    let mut header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(genuine.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["typ"] = json!("JWT");
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    refused.push(("another typ", parts.join(".")));

    for (what, subject) in &refused {
        let reply = mcp_exchange(&server, subject).await;
        assert_eq!(reply.oauth_error(400), "invalid_grant", "{what}");
    }

    // Revoked by its client.
    let revoked = user_token(&server, &["calendar:read"]);
    let dev = server.dev_client();
    let reply = post(
        server.revocation_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[("token", &revoked)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        mcp_exchange(&server, &revoked).await.oauth_error(400),
        "invalid_grant"
    );

    // Expired.
    let expiring = user_token(&server, &["calendar:read"]);
    mcp_exchange(&server, &expiring).await.ok();
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        mcp_exchange(&server, &expiring).await.oauth_error(400),
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_subject_token_is_not_taken_before_its_nbf() {
    let clock = ManualClock::new(3_000_000);
    let server = builder().clock(clock.clone()).start().await.unwrap();
    let early = with_claims(
        &server,
        &["calendar:read"],
        json!({ "nbf": 3_000_000 + 60 }),
    );
    assert_eq!(
        mcp_exchange(&server, &early).await.oauth_error(400),
        "invalid_grant"
    );
    // Introspection judges it the same way (the same check).
    assert_eq!(
        introspect(&server, &early).await,
        json!({ "active": false })
    );
    // A malformed nbf never passes.
    let malformed = with_claims(&server, &["calendar:read"], json!({ "nbf": "soon" }));
    assert_eq!(
        mcp_exchange(&server, &malformed).await.oauth_error(400),
        "invalid_grant"
    );

    // From its nbf on (the server checks the tokens it signed on its own clock: no leeway).
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        mcp_exchange(&server, &early).await.oauth_error(400),
        "invalid_grant"
    );
    clock.advance(Duration::from_secs(1));
    mcp_exchange(&server, &early).await.ok();
    assert_eq!(introspect(&server, &early).await["active"], true);
}

#[tokio::test]
async fn audiences_outside_the_allow_list_are_invalid_target() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    for more in [
        vec![("audience", NOT_ALLOWED)],
        vec![("resource", NOT_ALLOWED)],
        vec![("audience", DOWNSTREAM), ("audience", NOT_ALLOWED)],
        vec![("audience", DOWNSTREAM), ("resource", NOT_ALLOWED)],
        // The server's own resource is not a downstream audience unless listed.
        vec![("resource", RESOURCE)],
    ] {
        let reply = exchange(&server, Auth::Basic(MCP, MCP_SECRET), &subject, &more).await;
        assert_eq!(reply.oauth_error(400), "invalid_target", "{more:?}");
    }
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let auth = || Auth::Basic(MCP, MCP_SECRET);
    let endpoint = server.token_endpoint();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "no target",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
            ],
        ),
        (
            "no subject token",
            vec![
                ("grant_type", GRANT),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", DOWNSTREAM),
            ],
        ),
        (
            "no subject token type",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("audience", DOWNSTREAM),
            ],
        ),
        (
            "an id token as subject",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
                ("audience", DOWNSTREAM),
            ],
        ),
        (
            "a JWT requested",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", DOWNSTREAM),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:jwt",
                ),
            ],
        ),
        (
            "an actor token type without actor token",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", DOWNSTREAM),
                ("actor_token_type", ACCESS_TOKEN),
            ],
        ),
        (
            "a repeated subject token",
            vec![
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", DOWNSTREAM),
            ],
        ),
    ];
    for (what, pairs) in cases {
        let reply = post(endpoint, auth(), &pairs, None).await;
        assert_eq!(reply.oauth_error(400), "invalid_request", "{what}");
    }
}

#[tokio::test]
async fn scopes_are_limited_to_the_subjects_and_the_clients() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read", "mail:send"]);
    let auth = || Auth::Basic(MCP, MCP_SECRET);
    let down_scoped = exchange(
        &server,
        auth(),
        &subject,
        &[("audience", DOWNSTREAM), ("scope", "calendar:read")],
    )
    .await;
    assert_eq!(down_scoped.ok()["scope"], "calendar:read");
    // `calendar:write` is the client's, not the subject's; `mail:send` the subject's, not the
    // client's; `admin` nobody's.
    for scope in ["calendar:write", "mail:send", "calendar:read admin"] {
        let reply = exchange(
            &server,
            auth(),
            &subject,
            &[("audience", DOWNSTREAM), ("scope", scope)],
        )
        .await;
        assert_eq!(reply.oauth_error(400), "invalid_scope", "{scope}");
    }
    // Without `scope`: what the two share.
    assert_eq!(
        mcp_exchange(&server, &subject).await.ok()["scope"],
        "calendar:read"
    );
}

#[tokio::test]
async fn an_exchange_that_would_grant_no_scope_is_refused() {
    let server = server().await;
    // `mail:send` is not the client's; an unscoped token shares nothing with anyone.
    let unshared = user_token(&server, &["mail:send"]);
    let unscoped = user_token(&server, &[]);
    for subject in [&unshared, &unscoped] {
        let reply = mcp_exchange(&server, subject).await;
        assert_eq!(reply.oauth_error(400), "invalid_scope");
        assert_eq!(
            reply.body["error_description"],
            "no scope the subject token and the client share"
        );
    }
    // `scope=` is no `scope` (RFC 6749 §3.1); one of spaces only asks for nothing: refused
    // too, rather than a token without scope.
    let blank = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &unshared,
        &[("audience", DOWNSTREAM), ("scope", "")],
    )
    .await;
    assert_eq!(
        blank.body["error_description"],
        "no scope the subject token and the client share"
    );
    let subject = user_token(&server, &["calendar:read"]);
    let spaces = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &subject,
        &[("audience", DOWNSTREAM), ("scope", "  ")],
    )
    .await;
    assert_eq!(spaces.oauth_error(400), "invalid_scope");
}

#[tokio::test]
async fn may_act_names_who_may_exchange() {
    let server = server().await;
    let allowed = [
        json!({ "sub": MCP }),
        json!({ "sub": MCP, "iss": server.issuer() }),
    ];
    for may_act in allowed {
        let subject = with_claims(&server, &["calendar:read"], json!({ "may_act": may_act }));
        mcp_exchange(&server, &subject).await.ok();
    }
    let refused = [
        json!({ "sub": OTHER }),
        json!({ "sub": MCP, "iss": "https://other-issuer.example.test" }),
        json!({ "iss": server.issuer() }),
        json!(MCP),
        json!({ "sub": [MCP] }),
    ];
    for may_act in refused {
        let subject = with_claims(&server, &["calendar:read"], json!({ "may_act": may_act }));
        let reply = mcp_exchange(&server, &subject).await;
        assert_eq!(reply.oauth_error(400), "invalid_grant", "{may_act}");
    }
}

#[tokio::test]
async fn an_earlier_actor_is_nested_under_the_new_one() {
    let server = builder()
        .exchange_audiences([RESOURCE])
        .start()
        .await
        .unwrap();
    let earlier = json!({ "sub": "gateway", "act": { "sub": "edge" } });
    let subject = with_claims(&server, &["calendar:read"], json!({ "act": earlier }));
    let reply = mcp_exchange(&server, &subject).await;
    let issued = claims(reply.ok()["access_token"].as_str().unwrap());
    assert_eq!(issued["act"], json!({ "sub": MCP, "act": earlier }));

    // A chain through the server itself: OTHER exchanges a token for MCP, then MCP
    // exchanges that one downstream.
    let for_other = with_claims(&server, &["calendar:read"], json!({ "aud": OTHER }));
    let first = exchange(
        &server,
        Auth::Basic(OTHER, OTHER_SECRET),
        &for_other,
        &[("resource", RESOURCE)],
    )
    .await;
    let first = first.ok()["access_token"].as_str().unwrap().to_owned();
    let second = mcp_exchange(&server, &first).await;
    let issued = claims(second.ok()["access_token"].as_str().unwrap());
    assert_eq!(
        issued["act"],
        json!({ "sub": MCP, "act": { "sub": OTHER } })
    );
    assert_eq!(issued["sub"], "alice");
}

/// An `act` chain of these actors, the first outermost.
fn act_chain(actors: &[&str]) -> Value {
    actors.iter().rev().fold(Value::Null, |inner, actor| {
        let mut act = json!({ "sub": actor });
        if !inner.is_null() {
            act["act"] = inner;
        }
        act
    })
}

/// How many actors the `act` chain of `token` names.
fn act_depth(token: &str) -> usize {
    let mut depth = 0;
    let mut act = claims(token)["act"].clone();
    while act.is_object() {
        depth += 1;
        act = act["act"].clone();
    }
    depth
}

#[tokio::test]
async fn an_act_chain_is_at_most_four_actors_deep() {
    let server = builder()
        .exchange_audiences([RESOURCE, OTHER])
        .start()
        .await
        .unwrap();
    // Three earlier actors: the new token names four.
    let three = with_claims(
        &server,
        &["calendar:read"],
        json!({ "act": act_chain(&["a", "b", "c"]) }),
    );
    let reply = mcp_exchange(&server, &three).await;
    assert_eq!(act_depth(reply.ok()["access_token"].as_str().unwrap()), 4);
    // Four: a fifth is one too many.
    let four = with_claims(
        &server,
        &["calendar:read"],
        json!({ "act": act_chain(&["a", "b", "c", "d"]) }),
    );
    let reply = mcp_exchange(&server, &four).await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(description.contains("limit of 4"), "{description}");
    // An `act` that is not a chain of objects is no chain to extend.
    for act in [json!("gateway"), json!({ "sub": "a", "act": ["b"] })] {
        let subject = with_claims(&server, &["calendar:read"], json!({ "act": act }));
        let reply = mcp_exchange(&server, &subject).await;
        assert_eq!(reply.oauth_error(400), "invalid_grant", "{act}");
    }

    // Through the server itself: OTHER and MCP exchange the token back and forth, each
    // exchange adding an actor, until the fifth is refused.
    let mut token = with_claims(&server, &["calendar:read"], json!({ "aud": OTHER }));
    for depth in 1..=5 {
        let (auth, target) = if depth % 2 == 1 {
            (Auth::Basic(OTHER, OTHER_SECRET), ("resource", RESOURCE))
        } else {
            (Auth::Basic(MCP, MCP_SECRET), ("audience", OTHER))
        };
        let reply = exchange(&server, auth, &token, &[target]).await;
        if depth == 5 {
            assert_eq!(reply.oauth_error(400), "invalid_grant");
            break;
        }
        token = reply.ok()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(act_depth(&token), depth);
        assert_eq!(claims(&token)["sub"], "alice");
    }
}

#[tokio::test]
async fn a_client_may_not_exchange_a_token_it_already_acts_in() {
    let server = builder()
        .exchange_audiences([RESOURCE])
        .start()
        .await
        .unwrap();
    // MCP exchanges the user's token for its own resource: it is the actor.
    let subject = user_token(&server, &["calendar:read"]);
    let reply = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &subject,
        &[("resource", RESOURCE)],
    )
    .await;
    let own = reply.ok()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&own)["act"], json!({ "sub": MCP }));
    // Exchanging that one again would name no new actor.
    let reply = mcp_exchange(&server, &own).await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(description.contains("already"), "{description}");

    // The same for a token minted so, whatever may_act says.
    for extra in [
        json!({ "act": { "sub": MCP } }),
        json!({ "act": { "sub": MCP, "act": { "sub": "edge" } }, "may_act": { "sub": MCP } }),
    ] {
        let subject = with_claims(&server, &["calendar:read"], extra.clone());
        let reply = mcp_exchange(&server, &subject).await;
        assert_eq!(reply.oauth_error(400), "invalid_grant", "{extra}");
    }
}

#[tokio::test]
async fn the_new_token_expires_no_later_than_the_subject_token() {
    let clock = ManualClock::new(2_000_000);
    let server = builder().clock(clock.clone()).start().await.unwrap();
    let soon = 2_000_000 + 40;
    let subject = with_claims(&server, &["calendar:read"], json!({ "exp": soon }));
    let reply = mcp_exchange(&server, &subject).await;
    let body = reply.ok();
    assert_eq!(body["expires_in"], 40);
    assert_eq!(claims(body["access_token"].as_str().unwrap())["exp"], soon);

    // A long-lived subject token: the access-token lifetime caps it.
    let later = with_claims(
        &server,
        &["calendar:read"],
        json!({ "exp": 2_000_000 + 9_999 }),
    );
    let reply = mcp_exchange(&server, &later).await;
    assert_eq!(reply.ok()["expires_in"], 300);
}

#[tokio::test]
async fn an_actor_token_must_be_the_clients_own() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let own = post(
        server.token_endpoint(),
        Auth::Basic(MCP, MCP_SECRET),
        &[("grant_type", "client_credentials")],
        None,
    )
    .await
    .ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_actor = |actor: String| {
        let server = server.clone();
        let subject = subject.clone();
        async move {
            exchange(
                &server,
                Auth::Basic(MCP, MCP_SECRET),
                &subject,
                &[
                    ("audience", DOWNSTREAM),
                    ("actor_token", &actor),
                    ("actor_token_type", ACCESS_TOKEN),
                ],
            )
            .await
        }
    };
    let reply = with_actor(own.clone()).await;
    assert_eq!(
        claims(reply.ok()["access_token"].as_str().unwrap())["act"],
        json!({ "sub": MCP })
    );
    // Another client's token, the subject token itself, garbage.
    let others = server.mint_access_token(OTHER, OTHER, &[]);
    for actor in [others, subject.clone(), "garbage".to_owned()] {
        assert_eq!(with_actor(actor).await.oauth_error(400), "invalid_grant");
    }
    // The actor token needs its type.
    let reply = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &subject,
        &[("audience", DOWNSTREAM), ("actor_token", &own)],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_request");
}

#[tokio::test]
async fn exchanged_tokens_are_introspected_and_revoked_like_others() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let token = mcp_exchange(&server, &subject).await.ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let active = introspect(&server, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["aud"], DOWNSTREAM);
    assert_eq!(active["sub"], "alice");
    assert_eq!(active["client_id"], MCP);
    assert_eq!(active["act"], json!({ "sub": MCP }));
    assert_eq!(active["token_type"], "Bearer");

    // Only its client (the exchanging one) revokes it.
    let not_owner = post(
        server.revocation_endpoint(),
        Auth::Basic(OTHER, OTHER_SECRET),
        &[("token", &token)],
        None,
    )
    .await;
    assert_eq!(not_owner.status, 200);
    assert_eq!(introspect(&server, &token).await["active"], true);
    let owner = post(
        server.revocation_endpoint(),
        Auth::Basic(MCP, MCP_SECRET),
        &[("token", &token)],
        None,
    )
    .await;
    assert_eq!(owner.status, 200);
    assert_eq!(
        introspect(&server, &token).await,
        json!({ "active": false })
    );
    // The subject token lives on.
    assert_eq!(introspect(&server, &subject).await["active"], true);
}

/// The `jti` of a token.
fn jti(token: &str) -> String {
    claims(token)["jti"].as_str().unwrap().to_owned()
}

/// The `access_token` of a successful reply.
fn access_token(reply: &Reply) -> String {
    reply.ok()["access_token"].as_str().unwrap().to_owned()
}

/// Whether the resource servers' list (as [`DevAuthorizationServerBuilder::revocations`]
/// fills it) holds `token`.
fn listed(server: &DevAuthorizationServer, list: &Revocations, token: &str) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    list.contains(&Revocation::jwt_id(server.issuer(), jti(token)), now)
}

const VERIFIER: &str = "dev-token-exchange-test-verifier-0123456789-abcdef";

/// The dev client's authorization-code flow for [`RESOURCE`]: the code (not yet redeemed).
async fn dev_code(server: &DevAuthorizationServer) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let pairs = [
        ("response_type", "code"),
        ("client_id", "dev-client"),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", "calendar:read"),
        ("resource", RESOURCE),
    ];
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let response = mcp_oauth::testing::http_client()
        .get(format!("{}?{query}", server.authorization_endpoint()))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap();
    let location = url::Url::parse(location).unwrap();
    let code = location.query_pairs().find(|(name, _)| name == "code");
    code.expect("a code").1.into_owned()
}

/// Redeems `code` for the dev client.
async fn redeem(server: &DevAuthorizationServer, code: &str) -> Reply {
    let dev = server.dev_client();
    post(
        server.token_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
}

/// RFC 7009 revocation of `token` by the dev client.
async fn dev_revoke(server: &DevAuthorizationServer, token: &str) {
    let dev = server.dev_client();
    let reply = post(
        server.revocation_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[("token", token)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn revoking_a_subject_token_revokes_what_was_exchanged_from_it() {
    let list = Revocations::new();
    let server = builder()
        .exchange_audiences([OTHER])
        .revocations(list.clone())
        .start()
        .await
        .unwrap();
    let subject = user_token(&server, &["calendar:read"]);
    // MCP exchanges it twice, for the downstream API and for OTHER; OTHER exchanges its
    // token again (a chain).
    let downstream = access_token(&mcp_exchange(&server, &subject).await);
    let for_other = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &subject,
        &[("audience", OTHER)],
    )
    .await;
    let for_other = access_token(&for_other);
    let chained = exchange(
        &server,
        Auth::Basic(OTHER, OTHER_SECRET),
        &for_other,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    let chained = access_token(&chained);
    // Another user token's exchange is no concern of this one's revocation.
    let unrelated =
        access_token(&mcp_exchange(&server, &user_token(&server, &["calendar:read"])).await);

    let downstream_api = Validator::builder()
        .issuer(
            IssuerPolicy::builder(server.issuer())
                .audience(DOWNSTREAM)
                .build()
                .unwrap(),
        )
        .revocations(list.clone())
        .build()
        .unwrap();
    downstream_api.validate(&chained).await.unwrap();

    dev_revoke(&server, &subject).await;
    for (what, token) in [
        ("the subject token", &subject),
        ("exchanged", &downstream),
        ("exchanged for OTHER", &for_other),
        ("exchanged from an exchanged token", &chained),
    ] {
        assert_eq!(
            introspect(&server, token).await,
            json!({ "active": false }),
            "{what}"
        );
        assert!(listed(&server, &list, token), "{what}");
    }
    // The resource servers consulting the list refuse them at once.
    assert!(downstream_api.validate(&chained).await.is_err());
    assert!(downstream_api.validate(&downstream).await.is_err());
    // Nor may they be exchanged again.
    let reply = exchange(
        &server,
        Auth::Basic(OTHER, OTHER_SECRET),
        &for_other,
        &[("audience", MAIL)],
    )
    .await;
    assert_eq!(reply.oauth_error(400), "invalid_grant");
    assert_eq!(introspect(&server, &unrelated).await["active"], true);
    assert!(!listed(&server, &list, &unrelated));
    downstream_api.validate(&unrelated).await.unwrap();

    // Revoking an exchanged token revokes what was exchanged from it, not its subject.
    let subject = user_token(&server, &["calendar:read"]);
    let for_other = exchange(
        &server,
        Auth::Basic(MCP, MCP_SECRET),
        &subject,
        &[("audience", OTHER)],
    )
    .await;
    let for_other = access_token(&for_other);
    let chained = exchange(
        &server,
        Auth::Basic(OTHER, OTHER_SECRET),
        &for_other,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    let chained = access_token(&chained);
    let reply = post(
        server.revocation_endpoint(),
        Auth::Basic(MCP, MCP_SECRET),
        &[("token", &for_other)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(introspect(&server, &chained).await["active"], false);
    assert!(listed(&server, &list, &chained));
    assert_eq!(introspect(&server, &subject).await["active"], true);
}

#[tokio::test]
async fn a_replayed_code_revokes_what_was_exchanged_from_its_token() {
    let list = Revocations::new();
    let server = builder().revocations(list.clone()).start().await.unwrap();
    let code = dev_code(&server).await;
    let access = access_token(&redeem(&server, &code).await);
    let exchanged = access_token(&mcp_exchange(&server, &access).await);
    assert_eq!(introspect(&server, &exchanged).await["active"], true);

    let replay = redeem(&server, &code).await;
    assert_eq!(replay.oauth_error(400), "invalid_grant");
    for token in [&access, &exchanged] {
        assert_eq!(introspect(&server, token).await["active"], false);
        assert!(listed(&server, &list, token));
    }
}

#[tokio::test]
async fn revoking_a_refresh_token_family_revokes_what_was_exchanged_from_it() {
    let list = Revocations::new();
    let server = builder().revocations(list.clone()).start().await.unwrap();
    let code = dev_code(&server).await;
    let tokens = redeem(&server, &code).await;
    let first = access_token(&tokens);
    let refresh = tokens.ok()["refresh_token"].as_str().unwrap().to_owned();
    let dev = server.dev_client();
    let refreshed = post(
        server.token_endpoint(),
        Auth::Basic(&dev.id, &dev.secret),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        None,
    )
    .await;
    let second = access_token(&refreshed);
    let refresh = refreshed.ok()["refresh_token"].as_str().unwrap().to_owned();
    let exchanged = [
        access_token(&mcp_exchange(&server, &first).await),
        access_token(&mcp_exchange(&server, &second).await),
    ];

    dev_revoke(&server, &refresh).await;
    for token in exchanged.iter().chain([&first, &second]) {
        assert_eq!(introspect(&server, token).await["active"], false);
        assert!(listed(&server, &list, token));
    }
}

#[tokio::test]
async fn a_dpop_proof_binds_the_exchanged_token() {
    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let key = DpopKey::es256();
    let reply = post(
        server.token_endpoint(),
        Auth::Basic(MCP, MCP_SECRET),
        &[
            ("grant_type", GRANT),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", DOWNSTREAM),
        ],
        Some(key.proof("POST", server.token_endpoint(), None)),
    )
    .await;
    let body = reply.ok();
    assert_eq!(body["token_type"], "DPoP");
    let issued = claims(body["access_token"].as_str().unwrap());
    assert_eq!(issued["cnf"]["jkt"], key.jkt());
}

#[tokio::test]
async fn a_dpop_bound_subject_tokens_binding_does_not_carry_over() {
    // The user's token is bound to the user's key, which the MCP server does not hold.
    let server = server().await;
    let user_key = DpopKey::es256();
    let subject = with_claims(
        &server,
        &["calendar:read"],
        json!({ "cnf": { "jkt": user_key.jkt() } }),
    );
    assert_eq!(introspect(&server, &subject).await["token_type"], "DPoP");

    // Without a proof: a bearer token of the server's own for the downstream API.
    let reply = mcp_exchange(&server, &subject).await;
    let body = reply.ok();
    assert_eq!(body["token_type"], "Bearer");
    let issued = claims(body["access_token"].as_str().unwrap());
    assert!(issued.get("cnf").is_none(), "{issued}");

    // With the MCP server's own proof: bound to the MCP server's key, never the user's.
    let mcp_key = DpopKey::es256();
    let reply = post(
        server.token_endpoint(),
        Auth::Basic(MCP, MCP_SECRET),
        &[
            ("grant_type", GRANT),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", DOWNSTREAM),
        ],
        Some(mcp_key.proof("POST", server.token_endpoint(), None)),
    )
    .await;
    let body = reply.ok();
    assert_eq!(body["token_type"], "DPoP");
    let issued = claims(body["access_token"].as_str().unwrap());
    assert_eq!(issued["cnf"], json!({ "jkt": mcp_key.jkt() }));
    assert_ne!(issued["cnf"]["jkt"], user_key.jkt());
}

#[tokio::test]
async fn the_configuration_is_checked_at_start() {
    let unknown = builder().resource_server("nobody", RESOURCE).start().await;
    assert_eq!(unknown.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let empty = builder().resource_server(MCP, "").start().await;
    assert_eq!(empty.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    for audience in ["", "two words", "tab\there"] {
        let error = builder().exchange_audiences([audience]).start().await;
        assert_eq!(
            error.unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "{audience:?}"
        );
    }
    // The default dev client may be declared a resource server.
    let server = DevAuthorizationServer::builder()
        .scopes(["calendar:read"])
        .resource_server("dev-client", RESOURCE)
        .exchange_audiences([DOWNSTREAM])
        .start()
        .await
        .unwrap();
    let dev = server.dev_client().clone();
    let subject = server.mint_access_token("alice", "some-app", &["calendar:read"]);
    let reply = exchange(
        &server,
        Auth::Basic(&dev.id, &dev.secret),
        &subject,
        &[("audience", DOWNSTREAM)],
    )
    .await;
    assert_eq!(reply.ok()["issued_token_type"], ACCESS_TOKEN);
}

/// A `Write` into shared memory, for the log capture.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_exchange_is_logged_once_without_the_tokens() {
    // A global subscriber (a scoped one misses events whose callsite another test's thread
    // registered first); the other tests of this file log into it too, so the line is found
    // by the subject token's fingerprint.
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let server = server().await;
    let subject = user_token(&server, &["calendar:read"]);
    let token = mcp_exchange(&server, &subject).await.ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let log = String::from_utf8_lossy(&buffer.0.lock()).into_owned();
    let fingerprint: String = sha2::Sha256::digest(subject.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("exchanged a token") && line.contains(&fingerprint))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(line.contains(MCP) && line.contains(DOWNSTREAM), "{line}");
    assert!(line.contains("calendar:read"), "{line}");
    for secret in [subject.as_str(), token.as_str(), MCP_SECRET] {
        for part in secret.split('.').filter(|part| part.len() > 8) {
            assert!(!log.contains(part), "a token or secret part is in the log");
        }
    }
}
