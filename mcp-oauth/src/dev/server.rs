//! The router and the server's lifecycle: axum handlers over the endpoints' logic
//! (`endpoints`, `authorize`), CORS (`cors`), and the handle that stops the server.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::cors;
use super::endpoints::{json_response, result_response};
use super::state::Inner;
use crate::testing::listener::ClosingListener;

/// The largest request body any endpoint reads.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long [`ServerHandle::shutdown`] waits for open connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

type Shared = State<Arc<Inner>>;

async fn rfc8414_metadata(State(inner): Shared) -> Response {
    json_response(StatusCode::OK, &inner.metadata(false), false)
}

async fn openid_configuration(State(inner): Shared) -> Response {
    json_response(StatusCode::OK, &inner.metadata(true), false)
}

async fn jwks(State(inner): Shared) -> Response {
    json_response(StatusCode::OK, &inner.jwks(), false)
}

async fn authorize(State(inner): Shared, uri: Uri) -> Response {
    inner.authorize(uri.query()).await
}

async fn answer_consent(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    inner.answer_consent(&headers, &body)
}

async fn token(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    result_response(inner.token(&headers, &body).await, StatusCode::OK)
}

async fn register(State(inner): Shared, body: Bytes) -> Response {
    result_response(inner.register(&body), StatusCode::CREATED)
}

async fn introspect(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    result_response(inner.introspect(&headers, &body).await, StatusCode::OK)
}

async fn revoke(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match inner.revoke(&headers, &body).await {
        Ok(()) => {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn not_found() -> Response {
    let mut response = Response::new(Body::from("not found"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The public documents, readable from any origin, and the endpoints, which answer
/// browsers on loopback origins only (see `cors`).
fn router(inner: Arc<Inner>) -> Router {
    let documents = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(rfc8414_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/jwks", get(jwks))
        .layer(middleware::from_fn(cors::public_documents));
    let endpoints = Router::new()
        .route("/authorize", get(authorize).post(answer_consent))
        .route("/token", post(token))
        .route("/register", post(register))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(cors::loopback_origins_only));
    documents
        .merge(endpoints)
        .fallback(not_found)
        .with_state(inner)
}

/// The running server's controls; dropping the last handle drops `shutdown`, which stops
/// it.
pub(crate) struct ServerHandle {
    shutdown: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
    stopped: watch::Receiver<bool>,
}

impl ServerHandle {
    pub(crate) fn spawn(listener: TcpListener, inner: Arc<Inner>) -> ServerHandle {
        let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let listener = ClosingListener::new(listener, closed_tx);
        let signal = async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(inner))
                .with_graceful_shutdown(signal)
                .await;
            stopped_tx.send_replace(true);
        });
        ServerHandle {
            shutdown: shutdown_tx,
            closed: closed_rx,
            stopped: stopped_rx,
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|closed| *closed).await;
        let mut stopped = self.stopped.clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, stopped.wait_for(|stopped| *stopped)).await;
    }
}
