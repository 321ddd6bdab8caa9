//! CORS: which web pages may talk to the dev server from a browser.
//!
//! The metadata documents and the JWKS are public, hold no secret and need no credentials
//! (anyone can fetch them with curl): every origin may read them
//! (`Access-Control-Allow-Origin: *`), so that a browser-based MCP client can discover the
//! server wherever it is served from.
//!
//! Every other endpoint (authorization, token, registration, introspection, revocation)
//! answers browsers on loopback origins only: an `Origin` whose host is `localhost`, a
//! `127.x.y.z` address or `[::1]`, over `http` or `https`, any port (e.g. the MCP Inspector
//! on `http://localhost:6274`). Such an origin is echoed, with `Vary: Origin`. A request
//! carrying any other `Origin` is refused with `403` before the endpoint runs, without CORS
//! headers: hiding the answer would not be enough, since a page on the web could still post
//! a form that registers a client or spends an authorization code. Requests without `Origin`
//! (native clients, curl, top-level navigations to the authorization endpoint) pass.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use url::Url;

use crate::loopback::is_loopback_url;

/// The request headers browser clients may send.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, DPoP, MCP-Protocol-Version";

/// CORS for the public documents: any origin, no credentials.
pub(super) async fn public_documents(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        preflight("GET, OPTIONS")
    } else {
        next.run(request).await
    };
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// CORS for the endpoints: loopback origins are echoed, other origins refused.
pub(super) async fn loopback_origins_only(request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    if let Some(origin) = &origin
        && !origin.to_str().is_ok_and(is_loopback_origin)
    {
        tracing::debug!("dev authorization server: refused a request from a non-loopback origin");
        return vary_origin(forbidden_origin());
    }
    let mut response = if request.method() == Method::OPTIONS {
        preflight("GET, POST, OPTIONS")
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    vary_origin(response)
}

/// Whether `origin` (an `Origin` header value) is a loopback web origin: exactly the
/// serialization of an `http` or `https` origin whose host is loopback.
pub(super) fn is_loopback_origin(origin: &str) -> bool {
    let Ok(url) = Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && is_loopback_url(&url)
        && url.origin().ascii_serialization() == origin
}

fn preflight(methods: &'static str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

fn forbidden_origin() -> Response {
    let mut response = Response::new(Body::from(
        "This Origin is not allowed: the mcp-oauth development authorization server answers \
         web pages on loopback origins only.\n",
    ));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn vary_origin(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        for origin in [
            "http://localhost:6274",
            "http://localhost",
            "https://localhost:8443",
            "http://127.0.0.1:3000",
            "http://127.1.2.3:3000",
            "http://[::1]:5173",
        ] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://[::2]:80",
            "http://10.0.0.1",
            "null",
            "",
            "file://localhost",
            "ws://localhost:6274",
            "http://localhost:6274/",
            "http://localhost:6274/path",
            "http://user@localhost:6274",
            "HTTP://LOCALHOST:6274",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }
}
