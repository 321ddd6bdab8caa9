//! `testing::HttpsServer`: a client trusting only `TEST_ROOT_CA_PEM` reaches it by name
//! (`localhost`) and by address (`127.0.0.1`), handlers see the peer address; a client with
//! the default roots refuses its certificate; it stops listening on shutdown and on drop.
//! Runs in both crypto configurations (the rustls provider is picked explicitly).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use mcp_oauth::testing::{HttpsServer, TEST_ROOT_CA_PEM, http_client, https_client, trust_only};

/// Generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn router() -> Router {
    Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("hello {}", peer.ip()) }),
    )
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<(u16, String), reqwest::Error> {
    let response = client.get(url).timeout(PATIENCE).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_client_trusting_the_test_root_ca_gets_200_by_name_and_by_address() {
    let server = HttpsServer::start(router()).await.unwrap();
    let port = server.addr().port();
    assert_eq!(server.url(), format!("https://localhost:{port}"));
    assert_eq!(server.addr().ip(), std::net::Ipv4Addr::LOCALHOST);

    let client = https_client();
    let (status, body) = get_text(&client, &server.url()).await.unwrap();
    assert_eq!(status, 200);
    // `localhost` may resolve to either loopback address; the server listens on both.
    assert!(body == "hello 127.0.0.1" || body == "hello ::1", "{body}");

    let (status, body) = get_text(&client, &format!("https://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "hello 127.0.0.1"));

    // The public building block: any reqwest builder, made to trust the test root CA only.
    let own = trust_only(reqwest::Client::builder().no_proxy(), TEST_ROOT_CA_PEM)
        .unwrap()
        .build()
        .unwrap();
    let (status, _) = get_text(&own, &server.url()).await.unwrap();
    assert_eq!(status, 200);

    server.shutdown().await;
}

#[tokio::test]
async fn a_client_with_the_default_roots_refuses_its_certificate() {
    let server = HttpsServer::start(router()).await.unwrap();
    // The test kit's client for loopback servers: this build's backend, the platform's roots.
    let error = get_text(&http_client(), &server.url()).await.unwrap_err();
    assert!(error.is_connect(), "{}", chain(&error));
    let text = chain(&error).to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("issuer"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn trust_only_needs_a_certificate() {
    for pem in [
        "",
        "not a PEM",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        assert!(
            trust_only(reqwest::Client::builder(), pem).is_err(),
            "{pem:?}"
        );
    }
}

#[tokio::test]
async fn it_stops_listening_on_shutdown_and_on_drop() {
    let server = HttpsServer::start(router()).await.unwrap();
    let addr = server.addr();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let server = HttpsServer::start(router()).await.unwrap();
    let addr = server.addr();
    let client = https_client();
    assert_eq!(get_text(&client, &server.url()).await.unwrap().0, 200);
    drop(server);
    // Dropping stops it in the background: wait for connections to be refused.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
