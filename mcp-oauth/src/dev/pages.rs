//! What the browser sees: redirects back to the client and HTML pages (the consent page and
//! error pages). Every text from a request or a registration is HTML-escaped.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use url::Url;

use super::store::MetadataDocument;

/// The page may not run scripts, load anything, or be framed (no clickjacking of "Allow").
const PAGE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// What the consent page shows.
pub(super) struct Consent<'a> {
    /// The client's registered name, or its id.
    pub(super) client_name: &'a str,
    pub(super) client_id: &'a str,
    /// For a client identified by a metadata document: where it is published.
    pub(super) document: Option<&'a MetadataDocument>,
    /// Where the code will be sent (see [`redirect_host`]).
    pub(super) redirect_host: &'a str,
    pub(super) scopes: &'a [String],
    pub(super) resource: &'a str,
    pub(super) user: &'a str,
    /// The single-use id the form posts back.
    pub(super) consent_id: &'a str,
}

/// The consent page: names the client and where the code goes, with an "Allow" and a "Deny"
/// button posting the consent id back to `POST /authorize`. For a client identified by a
/// metadata document, it says which host published the document (verified: it was fetched
/// there over https) apart from what the document claims (its name and website).
pub(super) fn consent_page(consent: &Consent<'_>) -> Response {
    let (provenance, publisher) = match consent.document {
        None => (String::new(), String::new()),
        Some(document) => {
            let host = escape_html(&document.host);
            let claims = match &document.client_uri_host {
                Some(site) => format!(
                    "Its name and its website (<strong>{}</strong>) are what the document \
                     claims, not verified.",
                    escape_html(site)
                ),
                None => "Its name is what the document claims, not verified.".to_owned(),
            };
            (
                format!(
                    "<p>This client is identified by a metadata document published by \
                     <strong>{host}</strong>: that host is what this server verified. \
                     {claims}</p>"
                ),
                format!(" from {host}"),
            )
        }
    };
    let scopes = if consent.scopes.is_empty() {
        "<li>(no scope)</li>".to_owned()
    } else {
        consent
            .scopes
            .iter()
            .map(|scope| format!("<li><code>{}</code></li>", escape_html(scope)))
            .collect()
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Authorize {name}?</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}\
         button{{font-size:1em;margin-right:1em}}</style></head>\
         <body><h1>Authorize <q>{name}</q>{publisher}?</h1>\
         <p>The client <q>{name}</q> (client id <code>{id}</code>) asks for access as \
         <strong>{user}</strong> to <code>{resource}</code> with these scopes:</p><ul>{scopes}</ul>\
         {provenance}\
         <p>If you allow it, the authorization code is sent to <strong>{host}</strong>. \
         Allow only if you started this sign-in and trust that site.</p>\
         <form method=\"post\" action=\"/authorize\">\
         <input type=\"hidden\" name=\"consent_id\" value=\"{consent_id}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
         <p>This is the mcp-oauth development authorization server.</p></body></html>\n",
        name = escape_html(consent.client_name),
        id = escape_html(consent.client_id),
        user = escape_html(consent.user),
        resource = escape_html(consent.resource),
        host = escape_html(consent.redirect_host),
        consent_id = escape_html(consent.consent_id),
    );
    html_response(StatusCode::OK, html)
}

/// How the consent page names where a redirect URI sends the code: its host and port (or,
/// for a URI without a host, its scheme).
pub(super) fn redirect_host(redirect_uri: &str) -> String {
    let Ok(url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => format!("{}:", url.scheme()),
    }
}

/// `text` with the characters that are markup in HTML text and attribute values escaped.
pub(super) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

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
    page(StatusCode::BAD_REQUEST, message)
}

/// A `503` HTML page: the request cannot be served now (`temporarily_unavailable`), try
/// again. `message` is a fixed text.
pub(super) fn unavailable_page(message: &'static str) -> Response {
    page(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// A `400` HTML page for an error of an authorization request whose redirect URI is not
/// trusted before consent (RFC 9700 §4.11.2: a client identified by a metadata document,
/// redirecting off loopback): the error is shown here, not sent there. `error` and
/// `description` are fixed texts.
pub(super) fn refused_request_page(error: &'static str, description: &'static str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Authorization error</title></head>\
         <body><h1>Authorization error</h1><p>The authorization request is refused \
         (<code>{error}</code>): {description}.</p>\
         <p>The error is shown here rather than sent to the client's redirect URI: a client \
         identified by a metadata document is sent back to a site other than this machine only \
         once you allow it.</p>\
         <p>This is the mcp-oauth development authorization server.</p></body></html>\n"
    );
    html_response(StatusCode::BAD_REQUEST, html)
}

fn page(status: StatusCode, message: &'static str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Authorization error</title></head>\
         <body><h1>Authorization error</h1><p>{message}</p>\
         <p>This is the mcp-oauth development authorization server.</p></body></html>\n"
    );
    html_response(status, html)
}

/// An HTML page that is never cached, framed, or given scripts.
fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the consent form.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x" + 'y')</script> & co"#),
            "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;)&lt;/script&gt; &amp; co"
        );
        assert_eq!(escape_html("calendar:read"), "calendar:read");
    }

    #[test]
    fn redirect_hosts_name_host_and_port() {
        assert_eq!(redirect_host("https://app.example/cb"), "app.example");
        assert_eq!(
            redirect_host("https://app.example:8443/cb"),
            "app.example:8443"
        );
        assert_eq!(redirect_host("https://[::2]/cb"), "[::2]");
        assert_eq!(redirect_host("com.example.app:/cb"), "com.example.app:");
    }
}
