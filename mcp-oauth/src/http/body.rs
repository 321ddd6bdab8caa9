//! The body types of the layer, and the one bounded read of a request body.

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;

/// The body of every response the layer returns (the inner service's, boxed, or its own).
pub type ResponseBody = axum_core::body::Body;

/// The body of the request the layer hands the endpoint: the client's, or the bytes the
/// layer read to decide step-up. The endpoint is a `Service<Request<RequestBody>>`; the type
/// is axum's `Body`, the same as [`ResponseBody`], so an axum `Router` is one as it stands.
pub type RequestBody = axum_core::body::Body;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(super) async fn read_bounded<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, StatusCode>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}
