//! The command's HTTP work, in one place: bodies read with a cap (never a whole body held in
//! memory past it), JSON documents checked for their media type, authorization-server
//! metadata found and checked as RFC 8414 says, the `https`-or-loopback rule before any
//! credential leaves, and the token request.
//!
//! Every function answers `Err(String)`: a one-line message for standard error or a report's
//! detail, never containing a client secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_oauth::key_set::discovery_urls;
use reqwest::StatusCode;
use serde_json::{Map, Value};

/// The largest metadata document or token response read.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The strings of a metadata member that is a JSON array (`authorization_servers`,
/// `scopes_supported`, …); nothing when it is absent or not an array, non-strings skipped.
pub(crate) fn strings(member: Option<&Value>) -> Vec<String> {
    member
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a metadata member that is a JSON array lists `value`; `None` when the member is
/// absent or not an array (the document says nothing).
pub(crate) fn lists(member: Option<&Value>, value: &str) -> Option<bool> {
    member
        .and_then(Value::as_array)
        .map(|items| items.iter().any(|item| item.as_str() == Some(value)))
}

/// An error and its sources, on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads `response`'s body, at most `cap` bytes: refused at once when its `Content-Length`
/// says more, else read chunk by chunk and abandoned as soon as it passes the cap (the body
/// is never held whole past `cap + one chunk`).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, String> {
    if let Some(length) = response.content_length()
        && length > cap as u64
    {
        return Err(format!(
            "a body of {length} bytes (Content-Length), over the {cap}-byte limit"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(format!("a body over the {cap}-byte limit"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a `Content-Type` value is JSON: `application/json` or `application/…+json`
/// (parameters such as `charset` ignored, any case).
fn is_json_media_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// GETs `url` (no redirect is followed: the client is built so) and reads a JSON object:
/// a success status, a JSON `Content-Type`, at most `cap` bytes. Returns the status (some
/// 2xx) and the object.
pub(crate) async fn get_json_object(
    client: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<(StatusCode, Map<String, Value>), String> {
    let response = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {}", status.as_u16()));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !is_json_media_type(&content_type) {
        return Err(format!(
            "GET {url}: Content-Type {:?}, not application/json",
            content_type
        ));
    }
    let body = read_capped(response, cap)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => Ok((status, object)),
        Ok(_) => Err(format!("GET {url}: the body is JSON but not an object")),
        Err(e) => Err(format!("GET {url}: the body is not JSON ({e})")),
    }
}

/// The metadata of authorization server `issuer` and the URL it was read from: the first of
/// the RFC 8414 path-inserted URL and the OpenID Connect discovery forms (the library's
/// [`discovery_urls`] order) that answers a document whose `issuer` is exactly `issuer`.
/// RFC 8414 §3.3: a document naming another issuer must not be used, so the next URL is
/// tried, and when none matches this fails.
pub(crate) async fn authorization_server_metadata(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<(String, Map<String, Value>), String> {
    let urls = discovery_urls(issuer).map_err(|e| format!("issuer {issuer}: {e}"))?;
    let mut errors = Vec::new();
    for url in urls {
        match get_json_object(client, &url, MAX_DOCUMENT_BYTES).await {
            Ok((_, json)) if json.get("issuer").and_then(Value::as_str) == Some(issuer) => {
                return Ok((url, json));
            }
            Ok((_, json)) => errors.push(format!(
                "{url} names issuer {}, not {issuer}: discarded (RFC 8414 §3.3)",
                json.get("issuer").unwrap_or(&Value::Null)
            )),
            Err(e) => errors.push(e),
        }
    }
    Err(format!(
        "no metadata for authorization server {issuer}: {}",
        errors.join("; ")
    ))
}

/// `Ok` when `url` is `https` (with a host) or plain `http` to a loopback host, the
/// library's rule ([`mcp_oauth::is_https_or_loopback`]): checked before any credential or
/// authorization request is sent to it.
pub(crate) fn require_https_or_loopback(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL ({e})"))?;
    if mcp_oauth::is_https_or_loopback(&parsed) {
        Ok(())
    } else {
        Err(format!(
            "{url}: neither https nor http to a loopback host; no credential is sent there"
        ))
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClientAuth<'a> {
    /// A public client: `client_id` in the form, no secret.
    Public { client_id: &'a str },
    /// `client_secret_basic`: id and secret form-encoded, then Basic (RFC 6749 §2.3.1).
    Basic {
        client_id: &'a str,
        client_secret: &'a str,
    },
    /// `client_secret_post`: id and secret in the form (RFC 6749 §2.3.1).
    Post {
        client_id: &'a str,
        client_secret: &'a str,
    },
}

impl<'a> ClientAuth<'a> {
    /// The method the server supports, from its metadata: `client_secret_basic` unless its
    /// `token_endpoint_auth_methods_supported` lists `client_secret_post` and not basic; a
    /// client without a secret is public.
    pub(crate) fn for_server(
        server: &Map<String, Value>,
        client_id: &'a str,
        client_secret: Option<&'a str>,
    ) -> Self {
        let Some(client_secret) = client_secret else {
            return Self::Public { client_id };
        };
        let advertised =
            |method| lists(server.get("token_endpoint_auth_methods_supported"), method);
        if advertised("client_secret_basic") == Some(false)
            && advertised("client_secret_post") == Some(true)
        {
            Self::Post {
                client_id,
                client_secret,
            }
        } else {
            Self::Basic {
                client_id,
                client_secret,
            }
        }
    }

    fn secret(&self) -> Option<&'a str> {
        match *self {
            Self::Public { .. } => None,
            Self::Basic { client_secret, .. } | Self::Post { client_secret, .. } => {
                Some(client_secret)
            }
        }
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-encoded first).
fn basic_credentials(id: &str, secret: &str) -> String {
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub(crate) struct TokenResponse {
    /// The access token (never empty).
    pub access_token: String,
    /// The whole response object (`token_type`, `expires_in`, `scope`, `refresh_token`…).
    pub json: Map<String, Value>,
}

/// POSTs `form` to `token_endpoint`, authenticating as `auth` says, and returns the token
/// response. The endpoint must be `https` or loopback ([`require_https_or_loopback`]) before
/// anything is sent; the body is read with [`MAX_DOCUMENT_BYTES`] as cap; a refusal is told
/// with its `error` and `error_description`; the secret never appears in an error.
pub(crate) async fn token_request(
    client: &reqwest::Client,
    token_endpoint: &str,
    auth: ClientAuth<'_>,
    mut form: Vec<(&str, String)>,
) -> Result<TokenResponse, String> {
    let redact = |text: String| match auth.secret() {
        Some(secret) if !secret.is_empty() => text.replace(secret, "[client secret]"),
        _ => text,
    };
    require_https_or_loopback(token_endpoint).map_err(|e| format!("token_endpoint {e}"))?;
    let mut request = client.post(token_endpoint);
    match auth {
        ClientAuth::Public { client_id } => form.push(("client_id", client_id.to_owned())),
        ClientAuth::Basic {
            client_id,
            client_secret,
        } => request = request.header("Authorization", basic_credentials(client_id, client_secret)),
        ClientAuth::Post {
            client_id,
            client_secret,
        } => {
            form.push(("client_id", client_id.to_owned()));
            form.push(("client_secret", client_secret.to_owned()));
        }
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let response = request
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| redact(format!("POST {token_endpoint}: {}", error_chain(&e))))?;
    let status = response.status();
    let body = read_capped(response, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| {
            redact(format!(
                "POST {token_endpoint}: HTTP {}, {e}",
                status.as_u16()
            ))
        })?;
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => body,
        _ => {
            return Err(format!(
                "POST {token_endpoint}: HTTP {}, not a JSON object",
                status.as_u16()
            ));
        }
    };
    let member = |name: &str| body.get(name).and_then(Value::as_str);
    if !status.is_success() {
        return Err(redact(format!(
            "the token endpoint refused: HTTP {} {}{}",
            status.as_u16(),
            member("error").unwrap_or("(no error code)"),
            member("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )));
    }
    let access_token = member("access_token")
        .filter(|t| !t.is_empty())
        .ok_or("the token response has no access_token")?
        .to_owned();
    Ok(TokenResponse {
        access_token,
        json: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/jwk-set+json",
        ] {
            assert!(is_json_media_type(yes), "{yes}");
        }
        for no in ["text/html", "", "text/json+xml", "application/jsonx"] {
            assert!(!is_json_media_type(no), "{no}");
        }
    }

    #[test]
    fn https_or_loopback() {
        assert!(require_https_or_loopback("https://as.example.com/token").is_ok());
        assert!(require_https_or_loopback("http://127.0.0.1:9/token").is_ok());
        assert!(require_https_or_loopback("http://localhost/token").is_ok());
        assert!(require_https_or_loopback("http://as.example.com/token").is_err());
        assert!(require_https_or_loopback("not a url").is_err());
    }

    #[test]
    fn basic_credentials_form_encode_first() {
        let header = basic_credentials("a b", "p:w");
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"a+b:p%3Aw");
    }
}
