//! Step 1 of a decision: the credentials. Only bodies the server reads as sent are judged, a
//! form body is looked at only beside an `Authorization` header (one method per request,
//! RFC 6750 §2), and the bearer token is borrowed from the headers.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use http_body::Body as HttpBody;

use super::Shared;
use super::bearer::{self, Credentials, MalformedCredentials};
use super::body::{BoxError, read_bounded};
use super::decision::Refusal;
use super::limits::FailedAuth;
use super::responses::{body_refusal, challenge_response, discovery_challenge, plain};
use crate::audit::reason;
use crate::challenge::{Challenge, Scheme};
use crate::validation::ErrorCode;

/// Refuses a `POST` body with a `Content-Encoding` other than `identity` (415): the guard
/// reads the body to decide, and must read what the server will.
pub(super) fn refuse_encoded_body(parts: &Parts) -> Result<(), Refusal> {
    if parts.method == Method::POST && !identity_encoded(&parts.headers) {
        return Err(Refusal::new(
            reason::UNSUPPORTED_CONTENT_ENCODING,
            plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "Content-Encoding is not supported",
                None,
            ),
        ));
    }
    Ok(())
}

/// The form body that comes with an `Authorization` header, read (small, before validation)
/// so that a header token plus a body token is a 400 whatever the header token is worth;
/// without the header a form body is not read at all. `body` is taken when it was read.
pub(super) async fn form_body<B>(
    shared: &Shared,
    parts: &Parts,
    body: &mut Option<B>,
) -> Result<Option<Bytes>, Refusal>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if parts.method != Method::POST
        || !is_form(&parts.headers)
        || !parts.headers.contains_key(AUTHORIZATION)
    {
        return Ok(None);
    }
    let Some(form) = body.take() else {
        return Ok(None);
    };
    let bytes = read_bounded(
        form,
        &parts.headers,
        shared.max_body_bytes.min(MAX_FORM_BODY_BYTES),
    )
    .await
    .map_err(body_refusal)?;
    if form_has_access_token(&bytes) {
        let challenge = Challenge::new(&shared.metadata_url)
            .error(ErrorCode::InvalidRequest)
            .description("The token was sent by more than one method");
        return Err(Refusal::new(
            reason::TOKEN_IN_HEADER_AND_BODY,
            challenge_response(
                shared,
                Scheme::Bearer,
                StatusCode::BAD_REQUEST,
                challenge,
                None,
            ),
        ));
    }
    Ok(Some(bytes))
}

/// A token and the scheme it came with.
#[derive(Clone, Copy)]
pub(super) struct Presented<'h> {
    pub(super) scheme: Scheme,
    pub(super) token: &'h str,
}

/// The token, borrowed from the headers (which keep it until validation is over; the header
/// is removed before the endpoint sees the request), with its scheme as the resource's DPoP
/// mode accepts it: without DPoP the `DPoP` scheme is unknown, and with DPoP required
/// `Bearer` is; either is answered like no credentials. Every attempt with an accepted
/// scheme, or a malformed one, takes a unit of the failed-authentication budget first.
pub(super) async fn presented_token<'h>(
    shared: &Shared,
    headers: &'h HeaderMap,
    failed_auth: &FailedAuth<'_>,
) -> Result<Presented<'h>, Refusal> {
    let mode = shared.dpop.as_ref().map(|dpop| dpop.mode());
    let presented = |scheme, token| Presented { scheme, token };
    match bearer::credentials(headers) {
        Ok(Credentials::Bearer(_)) if mode.is_some_and(|mode| !mode.accepts_bearer()) => Err(
            Refusal::new(reason::BEARER_NOT_ACCEPTED, discovery_challenge(shared)),
        ),
        Ok(Credentials::Bearer(token)) => {
            failed_auth.reserve().await?;
            Ok(presented(Scheme::Bearer, token))
        }
        Ok(Credentials::Dpop(token)) if mode.is_some() => {
            failed_auth.reserve().await?;
            Ok(presented(Scheme::Dpop, token))
        }
        Ok(Credentials::Missing | Credentials::OtherScheme | Credentials::Dpop(_)) => Err(
            Refusal::new(reason::NO_CREDENTIALS, discovery_challenge(shared)),
        ),
        // Without DPoP the scheme is unknown, however its value is spelt (as before DPoP).
        Err(MalformedCredentials::NotAToken) if mode.is_none() && is_dpop_scheme(headers) => Err(
            Refusal::new(reason::NO_CREDENTIALS, discovery_challenge(shared)),
        ),
        Err(malformed) => {
            failed_auth.reserve().await?;
            let challenge = Challenge::new(&shared.metadata_url)
                .error(ErrorCode::InvalidRequest)
                .description(malformed.description());
            let scheme = if is_dpop_scheme(headers) {
                Scheme::Dpop
            } else {
                Scheme::Bearer
            };
            // `multiple_authorization_headers` or `malformed_bearer` (audit::reason).
            Err(Refusal::new(
                malformed.reason(),
                challenge_response(shared, scheme, StatusCode::BAD_REQUEST, challenge, None),
            ))
        }
    }
}

/// Whether the (first) `Authorization` header is of the `DPoP` scheme.
fn is_dpop_scheme(headers: &HeaderMap) -> bool {
    headers.get(AUTHORIZATION).is_some_and(|value| {
        let bytes = value.as_bytes();
        bytes.len() >= 4
            && bytes[..4].eq_ignore_ascii_case(b"DPoP")
            && bytes.get(4).is_none_or(|&b| b == b' ')
    })
}

/// The largest form body read before authentication, only to find a second token (RFC 6750
/// §2: one method per request). MCP bodies are JSON; a form body is never the MCP message.
pub(super) const MAX_FORM_BODY_BYTES: usize = 16 * 1024;

/// Whether the body is sent as is (`Content-Encoding` absent or `identity`).
pub(super) fn identity_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',').all(|coding| {
                    coding.trim().eq_ignore_ascii_case("identity") || coding.trim().is_empty()
                })
            })
        })
}

pub(super) fn is_form(headers: &HeaderMap) -> bool {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // Case-insensitive, without a lowercased copy of the header per request.
            v.trim_start()
                .as_bytes()
                .get(..FORM.len())
                .is_some_and(|media_type| media_type.eq_ignore_ascii_case(FORM))
        })
}

/// Whether a form body carries `access_token`, names percent-decoded as a form parser would
/// (`access%5Ftoken` too).
pub(super) fn form_has_access_token(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(name, _)| name == "access_token")
}
