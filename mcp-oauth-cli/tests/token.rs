//! `mcp-oauth token inspect`, `token get` and `metadata`, run as the built binary against
//! servers started here: the test kit's issuer (which mints any token), the dev authorization
//! server, and a small axum resource server behind the layer.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_oauth::dev::DevAuthorizationServer;
use mcp_oauth::resource::ResourceConfig;
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, TestIssuer};
use mcp_oauth::validation::TokenFingerprint;
use mcp_oauth::{IssuerPolicy, OAuthLayer, Validator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-oauth");
const RESOURCE: &str = "https://mcp.example.com/mcp";

#[mcp_oauth::protected_resource(
    resource = "http://127.0.0.1:9/mcp",
    authorization_servers = ["http://127.0.0.1:9"],
    scopes = ["calendar:read", "calendar:write"],
)]
struct Calendar;

/// Runs the binary with `args` and `stdin`, off the runtime (the servers keep serving).
async fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `token inspect --issuer … --audience RESOURCE TOKEN`.
async fn inspect(issuer: &TestIssuer, token: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "token",
        "inspect",
        "--issuer",
        issuer.issuer(),
        "--audience",
        RESOURCE,
    ];
    args.extend_from_slice(extra);
    args.push(token);
    let output = run(&args, None).await;
    assert!(
        !stdout(&output).contains(token) && !stderr(&output).contains(token),
        "the token is never printed back"
    );
    output
}

/// The report line of check `title` (`FAIL  title: …` or `pass  title: …`).
fn line<'a>(text: &'a str, mark: &str, title: &str) -> &'a str {
    let prefix = format!("{mark}  {title}: ");
    text.lines()
        .find(|l| l.trim_start().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_explains_an_expired_token_with_its_times() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let exp = now() - 3600;
    let token = issuer.token().issued_at(exp - 300).expires_at(exp).sign();
    let output = inspect(&issuer, &token, &[]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&TokenFingerprint::of(&token).to_string()));
    assert!(
        text.contains("\"exp\": ") && text.contains("\"iss\": "),
        "{text}"
    );
    let expiry = line(&text, "FAIL", "expiry");
    assert!(expiry.contains(&format!("(exp {exp})")), "{expiry}");
    assert!(
        // `1 h ago`, or `1 h 1 s ago` on a slow run.
        expiry.contains("expired at ") && expiry.contains("1 h") && expiry.contains("ago"),
        "{expiry}"
    );
    assert!(
        expiry.contains("; now ") && expiry.contains("leeway 60 s"),
        "{expiry}"
    );
    // Only the expiry fails: everything else, the signature included, is fine.
    assert!(line(&text, "pass", "signature").contains("verifies"));
    assert!(line(&text, "pass", "audience").contains(RESOURCE));
    let verdict = line(&text, "FAIL", "the validator's verdict");
    assert!(
        verdict.contains("401 (invalid_token)") && verdict.contains("expired"),
        "{verdict}"
    );
    assert!(text.contains("2 failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_explains_a_wrong_audience() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let token = issuer
        .token()
        .audiences(["https://other.example.com/mcp", "api://other"])
        .sign();
    let output = inspect(&issuer, &token, &[]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let audience = line(&text, "FAIL", "audience");
    assert!(
        audience.contains(r#"`aud` ["https://other.example.com/mcp", "api://other"] does not name `https://mcp.example.com/mcp`"#),
        "{audience}"
    );
    assert!(line(&text, "pass", "expiry").contains("expires at"));
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_explains_an_id_token_and_every_other_failure_with_it() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    // An OpenID Connect ID token: typ JWT, nonce and at_hash, no client_id, its audience the
    // client, long expired: every fault is told, not only the first.
    let token = issuer
        .token()
        .typ("JWT")
        .claim("nonce", "n-0S6_WzA2Mj")
        .claim("at_hash", "77QmUPtjPfzWtF2AnpK9RQ")
        .without_claim("client_id")
        .audience("my-client-app")
        .expires_at(now() - 120)
        .sign();
    let output = inspect(&issuer, &token, &[]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let typ = line(&text, "FAIL", "token type");
    assert!(typ.contains("`typ` is `JWT`, not `at+jwt`"), "{typ}");
    assert!(
        typ.contains("an OpenID Connect ID token (it carries `nonce`, `at_hash`)"),
        "{typ}"
    );
    assert!(line(&text, "FAIL", "audience").contains(r#"["my-client-app"]"#));
    // `2 min ago`, or `2 min 1 s ago` on a slow run.
    let expiry = line(&text, "FAIL", "expiry");
    assert!(
        expiry.contains("2 min") && expiry.contains("ago"),
        "{expiry}"
    );
    assert!(line(&text, "FAIL", "required claims").contains("missing: `client_id`"));
    assert!(line(&text, "pass", "signature").contains("verifies"));
    // The validator answers the first refusal of its order: the type.
    assert!(line(&text, "FAIL", "the validator's verdict").contains("not an access token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_passes_a_valid_token_and_reads_stdin() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let token = issuer.token().scope("calendar:read files:write").sign();
    let output = run(
        &[
            "token",
            "inspect",
            "--issuer",
            issuer.issuer(),
            "--audience",
            RESOURCE,
        ],
        Some(&format!("Bearer {token}\n")),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains(" 0 failed"), "{text}");
    assert!(line(&text, "pass", "scopes").contains("calendar:read files:write"));
    assert!(line(&text, "pass", "the validator's verdict").contains("accepted"));
    assert!(!text.contains(&token));
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_tells_an_unknown_kid_and_a_forged_signature() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let stranger = SigningKey::generate(SigningAlgorithm::RS256, "stranger-key");
    let unknown = issuer.token().key(&stranger).sign();
    let text = stdout(&inspect(&issuer, &unknown, &[]).await);
    let key = line(&text, "FAIL", "signing key");
    assert!(key.contains("unknown kid: `kid` \"stranger-key\""), "{key}");
    assert!(
        key.contains(&format!("{:?}", issuer.published_kids()[0])),
        "{key}"
    );

    // The issuer's kid on a token signed by another key.
    let forged = issuer
        .token()
        .key(&stranger)
        .kid(issuer.published_kids()[0].clone())
        .sign();
    let text = stdout(&inspect(&issuer, &forged, &[]).await);
    let signature = line(&text, "FAIL", "signature");
    assert!(
        signature.contains("does not verify with the key of"),
        "{signature}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_json_is_one_document() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let token = issuer.token().expired().sign();
    let output = inspect(&issuer, &token, &["--json"]).await;
    assert_eq!(output.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["failed"], 2, "{document:#}");
    assert_eq!(
        document["token"]["fingerprint"],
        TokenFingerprint::of(&token).to_string()
    );
    assert_eq!(document["token"]["header"]["typ"], "at+jwt");
    assert_eq!(document["token"]["claims"]["aud"], RESOURCE);
    let checks = document["checks"].as_array().unwrap();
    let exp = checks.iter().find(|c| c["id"] == "token.exp").unwrap();
    assert_eq!(exp["status"], "fail");
    assert!(exp["detail"].as_str().unwrap().starts_with("expired at "));

    let junit = stdout(&inspect(&issuer, &token, &["--junit"]).await);
    assert!(junit.contains("name=\"token.exp\"><failure"), "{junit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_without_a_policy_decodes_and_never_fails() {
    let issuer = TestIssuer::builder().audience(RESOURCE).start().await;
    let token = issuer.token().expired().sign();
    let output = run(&["token", "inspect", &token], None).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("\"typ\": \"at+jwt\"") && text.contains("ago"),
        "{text}"
    );
    assert!(text.contains("skip  validation: give --resource"), "{text}");
    assert!(!text.contains(&token));
    let opaque = stdout(&run(&["token", "inspect", "2YotnFZFEjr1zCsicMWpAA"], None).await);
    assert!(opaque.contains("not a JWT: an opaque token"), "{opaque}");
}

/// A resource server behind the layer (its metadata is what the commands read), trusting the
/// dev authorization server, which issues tokens for it.
struct Deployment {
    resource: String,
    dev: DevAuthorizationServer,
}

async fn deployment() -> Deployment {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let dev = DevAuthorizationServer::builder()
        .resource(&resource)
        .scopes(["calendar:read", "calendar:write"])
        .start()
        .await
        .unwrap();
    let config = ResourceConfig::of::<Calendar>()
        .resource(&resource)
        .authorization_servers([dev.issuer()]);
    let validator = Validator::new(
        IssuerPolicy::builder(dev.issuer())
            .audience(&resource)
            .build()
            .unwrap(),
    )
    .unwrap();
    let layer = OAuthLayer::builder(config, validator).build().unwrap();
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(|| async { "{}" }))
        .layer(layer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Deployment { resource, dev }
}

impl Deployment {
    fn validator(&self) -> Validator {
        Validator::new(
            IssuerPolicy::builder(self.dev.issuer())
                .audience(&self.resource)
                .build()
                .unwrap(),
        )
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_finds_the_issuer_through_the_resource_metadata() {
    let deployment = deployment().await;
    let dev = &deployment.dev;
    let token = dev.mint_access_token("alice", "dev-client", &["calendar:read"]);
    let output = run(
        &[
            "token",
            "inspect",
            "--resource",
            &deployment.resource,
            &token,
        ],
        None,
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(
        text.contains(&format!(
            "validated against issuer {} (strict RFC 9068 policy), audience {}",
            dev.issuer(),
            deployment.resource
        )),
        "{text}"
    );
    assert!(line(&text, "pass", "the validator's verdict").contains("\"alice\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_by_client_credentials_prints_a_token_the_validator_accepts() {
    let deployment = deployment().await;
    let client = deployment.dev.dev_client().clone();
    let output = run(
        &[
            "token",
            "get",
            "--resource",
            &deployment.resource,
            "--client-id",
            &client.id,
            "--client-secret",
            &client.secret,
            "--scope",
            "calendar:read",
        ],
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    let token = printed.trim_end();
    assert_eq!(printed, format!("{token}\n"), "only the token on stdout");
    let log = stderr(&output);
    assert!(
        log.contains(&TokenFingerprint::of(token).to_string()),
        "{log}"
    );
    assert!(!log.contains(token) && !log.contains(&client.secret));
    let verified = deployment.validator().validate(token).await.unwrap();
    assert_eq!(verified.client_id(), Some(client.id.as_str()));
    assert!(verified.scopes().contains("calendar:read"));
    assert!(!verified.scopes().contains("calendar:write"));

    let wrong = run(
        &[
            "token",
            "get",
            "--resource",
            &deployment.resource,
            "--client-id",
            &client.id,
            "--client-secret",
            "not-the-secret",
        ],
        None,
    )
    .await;
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("invalid_client"),
        "{}",
        stderr(&wrong)
    );
    assert!(wrong.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn get_by_authorization_code_with_pkce_and_a_loopback_redirect() {
    let deployment = deployment().await;
    let client = deployment.dev.dev_client().clone();
    let resource = deployment.resource.clone();
    let mut child = Command::new(BIN)
        .args([
            "token",
            "get",
            "--authorization-code",
            "--resource",
            &resource,
            "--client-id",
            &client.id,
            "--client-secret",
            &client.secret,
            "--scope",
            "calendar:write",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    // The URL to open, read from standard error as a person would.
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let log = std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        let mut lines = Vec::new();
        for line in BufReader::new(stderr_pipe).lines() {
            let line = line.unwrap();
            if let Some(tx) = line
                .trim()
                .starts_with("http://")
                .then(|| url_tx.take())
                .flatten()
            {
                let _ = tx.send(line.trim().to_owned());
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    let url = tokio::time::timeout(Duration::from_secs(20), url_rx)
        .await
        .expect("the URL to open is printed")
        .unwrap();
    let authorize = url::Url::parse(&url).unwrap();
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(authorize.path(), "/authorize");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], resource);
    assert_eq!(query["response_type"], "code");
    assert!(query["redirect_uri"].starts_with("http://127.0.0.1:"));

    // The browser: the dev server approves a loopback redirect at once.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(&url).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&query["redirect_uri"]), "{location}");
    let page = browser.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Authorization received")
    );

    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = log.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{log}");
    let token = stdout(&output).trim_end().to_owned();
    let verified = deployment.validator().validate(&token).await.unwrap();
    assert_eq!(verified.subject(), Some(deployment.dev.dev_user()));
    assert!(verified.scopes().contains("calendar:write"));
    assert!(
        log.contains("Waiting for the redirect") && !log.contains(&token),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_by_authorization_code_answers_400_to_another_state_and_keeps_waiting() {
    let deployment = deployment().await;
    let client = deployment.dev.dev_client().clone();
    let mut child = Command::new(BIN)
        .args([
            "token",
            "get",
            "--authorization-code",
            "--resource",
            &deployment.resource,
            "--client-id",
            &client.id,
            "--client-secret",
            &client.secret,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let log = std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        let mut lines = Vec::new();
        for line in BufReader::new(stderr_pipe).lines() {
            let line = line.unwrap();
            if line.trim().starts_with("http://")
                && let Some(tx) = url_tx.take()
            {
                let _ = tx.send(line.trim().to_owned());
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    let url = tokio::time::timeout(Duration::from_secs(20), url_rx)
        .await
        .expect("the URL to open is printed")
        .unwrap();
    let redirect_uri = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let listener = url::Url::parse(&redirect_uri).unwrap();
    // A connection that never sends anything: dropped after the read timeout, it must not
    // block the wait.
    let idle =
        tokio::net::TcpStream::connect((listener.host_str().unwrap(), listener.port().unwrap()))
            .await
            .unwrap();
    // An attacker's redirect: a code of its own, a state it made up; then another path.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let forged = browser
        .get(format!("{redirect_uri}?code=stolen&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let other = browser
        .get(redirect_uri.replace("/callback", "/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    drop(idle);

    // The real browser still completes: the listener kept waiting.
    let answer = browser.get(&url).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let page = browser.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);

    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = log.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(log.contains("state is not ours"), "{log}");
    let token = stdout(&output).trim_end().to_owned();
    deployment.validator().validate(&token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn token_get_refuses_metadata_naming_another_resource() {
    let deployment = deployment().await;
    let client = deployment.dev.dev_client().clone();
    // The same server under another path: its metadata names /mcp, not /other (the root
    // well-known URL answers for the whole origin).
    let other = deployment.resource.replace("/mcp", "/other");
    let output = run(
        &[
            "token",
            "get",
            "--resource",
            &other,
            "--client-id",
            &client.id,
            "--client-secret",
            &client.secret,
        ],
        None,
    )
    .await;
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(log.contains("RFC 9728 §3.3"), "{log}");
    assert!(!log.contains(&client.secret) && output.stdout.is_empty());

    let output = run(&["token", "inspect", "--resource", &other, "x.y.z"], None).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // `metadata` only shows: a warning, and the document all the same.
    let output = run(&["metadata", &other], None).await;
    assert!(stderr(&output).contains("warning:"), "{}", stderr(&output));
    assert!(stdout(&output).contains(&deployment.resource));
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_prints_both_documents() {
    let deployment = deployment().await;
    let issuer = deployment.dev.issuer().to_owned();
    let output = run(&["metadata", &deployment.resource], None).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let inserted = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        deployment.resource.trim_end_matches("/mcp")
    );
    assert!(text.contains(&format!(
        "Protected resource metadata (RFC 9728)\n  from {inserted}"
    )));
    assert!(text.contains(&format!("\"resource\": \"{}\"", deployment.resource)));
    assert!(text.contains(&format!(
        "Authorization server {issuer}\n  from {issuer}/.well-known/oauth-authorization-server"
    )));
    assert!(text.contains("\"token_endpoint\": "), "{text}");

    let output = run(&["metadata", &deployment.resource, "--json"], None).await;
    assert_eq!(output.status.code(), Some(0));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        document["resource_metadata"]["resource"],
        deployment.resource
    );
    assert_eq!(
        document["resource_metadata"]["authorization_servers"][0],
        issuer
    );
    let server = &document["authorization_servers"][&issuer];
    assert_eq!(server["issuer"], issuer);
    assert_eq!(server["code_challenge_methods_supported"][0], "S256");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_of_an_unreachable_resource_says_why() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let resource = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    drop(listener);
    let output = run(&["metadata", &resource], None).await;
    assert_eq!(output.status.code(), Some(2));
    let log = stderr(&output);
    assert!(
        log.contains("no protected-resource metadata for")
            && log.contains("/.well-known/oauth-protected-resource/mcp"),
        "{log}"
    );
}
