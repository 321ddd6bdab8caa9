//! What the browser sees: redirects back to the client and HTML pages.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use url::Url;

/// A `302` to `redirect_uri` with `pairs` appended to its query.
pub(super) fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let location = match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => return error_page("redirect_uri is not a valid URL."),
    };
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_page("redirect_uri is not a valid URL.");
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `400` HTML page for errors that must not redirect (RFC 6749 §4.1.2.1). `message` is a
/// fixed text, never request input.
pub(super) fn error_page(message: &'static str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Authorization error</title></head>\
         <body><h1>Authorization error</h1><p>{message}</p>\
         <p>This is the mcp-oauth development authorization server.</p></body></html>\n"
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
