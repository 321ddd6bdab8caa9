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

/// The most characters of a client's name the consent page shows.
pub(super) const MAX_CLIENT_NAME_CHARS: usize = 100;

/// What the consent page shows.
pub(super) struct Consent<'a> {
    /// The client's registered name (as the client claims it), if any.
    pub(super) client_name: Option<&'a str>,
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
/// there over https) apart from what the document claims (its name and website), in the
/// heading and in the title (what a tab or window list shows).
///
/// The client's name is the client's claim: shown as [`display_name`] makes it (no control or
/// format character, at most [`MAX_CLIENT_NAME_CHARS`]), isolated from the text around it
/// (`<bdi>`; first-strong isolate marks in the title, which holds no markup), so that it
/// can neither reorder nor hide the words after it; the client id when it has no name left.
pub(super) fn consent_page(consent: &Consent<'_>) -> Response {
    let name = consent
        .client_name
        .map(display_name)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| display_name(consent.client_id));
    let (provenance, publisher, title_publisher) = match consent.document {
        None => (String::new(), String::new(), String::new()),
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
                format!(" from <strong>{host}</strong>"),
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
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>Authorize \u{2068}{name}\u{2069}{title_publisher}?</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}\
         button{{font-size:1em;margin-right:1em}}</style></head>\
         <body><h1>Authorize <q><bdi>{name}</bdi></q>{publisher}?</h1>\
         <p>The client <q><bdi>{name}</bdi></q> (client id <code>{id}</code>) asks for access as \
         <strong>{user}</strong> to <code>{resource}</code> with these scopes:</p><ul>{scopes}</ul>\
         {provenance}\
         <p>If you allow it, the authorization code is sent to <strong>{host}</strong>. \
         Allow only if you started this sign-in and trust that site.</p>\
         <form method=\"post\" action=\"/authorize\">\
         <input type=\"hidden\" name=\"consent_id\" value=\"{consent_id}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
         <p>This is the mcp-oauth development authorization server.</p></body></html>\n",
        name = escape_html(&name),
        id = escape_html(consent.client_id),
        user = escape_html(consent.user),
        resource = escape_html(consent.resource),
        host = escape_html(consent.redirect_host),
        consent_id = escape_html(consent.consent_id),
    );
    html_response(StatusCode::OK, html)
}

/// A client's name as the consent page shows it: without control or format characters
/// (Unicode `Cc`, `Cf`: bidi embeddings, overrides and isolates, zero-width characters,
/// soft hyphens, tags…), each run of whitespace one space, trimmed, and cut to
/// [`MAX_CLIENT_NAME_CHARS`] characters (ending in `…` when cut). Not yet HTML-escaped.
pub(super) fn display_name(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|&c| !c.is_control() && !is_format_char(c))
        .collect();
    let mut shown = String::new();
    let mut count = 0;
    let mut cut = false;
    'words: for word in visible.split_whitespace() {
        if !shown.is_empty() {
            if count == MAX_CLIENT_NAME_CHARS {
                cut = true;
                break;
            }
            shown.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count == MAX_CLIENT_NAME_CHARS {
                cut = true;
                break 'words;
            }
            shown.push(c);
            count += 1;
        }
    }
    if cut {
        shown.truncate(shown.trim_end().len());
        shown.push('…');
    }
    shown
}

/// Whether `c` is a format character (Unicode general category `Cf`, as of Unicode 16).
fn is_format_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
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
    fn client_names_lose_control_and_format_characters_and_are_cut() {
        assert_eq!(display_name("Calendar Desktop"), "Calendar Desktop");
        // Bidi overrides and isolates, zero-width characters, a BOM, tags, controls.
        assert_eq!(
            display_name("Good\u{202E}exe.pdf\u{202C} App\u{2066}x\u{2069}"),
            "Goodexe.pdf Appx"
        );
        assert_eq!(
            display_name("Pay\u{200B}Pal\u{200D}\u{FEFF}\u{00AD}\u{E0041}"),
            "PayPal"
        );
        assert_eq!(display_name("a\u{0}b\u{7}c\u{1b}[31m\u{85}"), "abc[31m");
        // Whitespace of any kind is one space; names of nothing visible are empty.
        assert_eq!(
            display_name("  Calendar\n\t\u{2028}\u{3000}Desktop  "),
            "Calendar Desktop"
        );
        assert_eq!(display_name("\u{202E}\u{200B} \u{2066}"), "");
        // At most 100 characters, then an ellipsis.
        let long = "é".repeat(150);
        let shown = display_name(&long);
        assert_eq!(shown.chars().count(), MAX_CLIENT_NAME_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(display_name(&"x".repeat(100)), "x".repeat(100));
        let words = format!("{} tail", "y".repeat(99));
        assert_eq!(display_name(&words), format!("{}…", "y".repeat(99)));
        for c in [
            '\u{061C}',
            '\u{180E}',
            '\u{2060}',
            '\u{206F}',
            '\u{FFF9}',
            '\u{1343F}',
        ] {
            assert!(is_format_char(c), "{c:?}");
        }
        for c in ['a', ' ', '\u{2028}', '\u{3164}', '\u{1F600}'] {
            assert!(!is_format_char(c), "{c:?}");
        }
    }

    #[test]
    fn the_consent_page_isolates_the_claimed_name_and_names_the_publisher_in_its_title() {
        let document = MetadataDocument {
            host: "app.example.com".to_owned(),
            client_uri_host: None,
        };
        let page = |name: Option<&str>, document: Option<&MetadataDocument>| {
            let response = consent_page(&Consent {
                client_name: name,
                client_id: "https://app.example.com/client.json",
                document,
                redirect_host: "127.0.0.1:8977",
                scopes: &[],
                resource: "http://127.0.0.1:8080/mcp",
                user: "dev-user",
                consent_id: "cid",
            });
            text(response)
        };
        let html = page(Some("Evil\u{202E}gnp.exe"), Some(&document));
        assert!(!html.contains('\u{202E}'), "{html}");
        assert!(
            html.contains(
                "<title>Authorize \u{2068}Evilgnp.exe\u{2069} from app.example.com?</title>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<h1>Authorize <q><bdi>Evilgnp.exe</bdi></q> from <strong>app.example.com</strong>?</h1>"
            ),
            "{html}"
        );
        // No name left: the client id.
        let html = page(Some("\u{200B}"), None);
        assert!(
            html.contains("<bdi>https://app.example.com/client.json</bdi>"),
            "{html}"
        );
    }

    /// The body of a page (a full body, ready at once).
    fn text(response: Response) -> String {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
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
