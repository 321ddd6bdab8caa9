//! The request id every audit event carries: the client's `X-Request-Id` when it is a
//! plausible id, otherwise one generated here.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

/// The header read, set on the request passed to the endpoint, and echoed in the response.
pub(crate) const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
const MAX_LEN: usize = 128;

/// The id of a request on the guarded route, as its audit event records it. The layer puts
/// it in the request extensions (and the `X-Request-Id` header) for the endpoint, and in the
/// response's `X-Request-Id`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 32 hex digits, unique within the process (with overwhelming probability) and not
    /// guessable from earlier ids. An id correlates log lines; it is not a secret (a client
    /// may send its own, which is kept).
    pub fn generate() -> Self {
        // An id needs to be unguessable, not collision-resistant against chosen inputs: the
        // input is our own counter. A keyed hash of it does that as well as SHA-256 of (seed,
        // counter) did, far cheaper: `RandomState` is SipHash keyed with 128 bits of the
        // operating system's randomness (a PRF: without the key, past ids say nothing about
        // the next one), and two lanes give the 128 bits the id always had.
        static KEY: OnceLock<RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let key = KEY.get_or_init(RandomState::new);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let high = key.hash_one((n, 0u8));
        let low = key.hash_one((n, 1u8));
        let mut digits = [0u8; 32];
        hex_into(&mut digits[..16], high);
        hex_into(&mut digits[16..], low);
        let id = std::str::from_utf8(&digits).expect("hex digits are ASCII");
        Self(Arc::from(id))
    }
}

/// Writes `value` as 16 lowercase hex digits, most significant first.
fn hex_into(out: &mut [u8], value: u64) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair.copy_from_slice(&crate::crypto::hex_digits(byte));
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// The client's id when there is exactly one, of 1–128 visible ASCII characters other than
/// `"` and `\` (nothing that could break a log line); otherwise a generated one.
pub(crate) fn of(headers: &HeaderMap) -> RequestId {
    let mut values = headers.get_all(HEADER).iter();
    if let (Some(value), None) = (values.next(), values.next()) {
        let bytes = value.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_graphic() && *b != b'"' && *b != b'\\')
            && let Ok(text) = value.to_str()
        {
            return RequestId(text.into());
        }
    }
    RequestId::generate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_plausible_client_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("req-42"));
        assert_eq!(of(&headers).as_str(), "req-42");
        for bad in ["", "a b", "x\"y", &"a".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            let id = of(&headers);
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32);
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[test]
    fn generated_ids_are_32_lowercase_hex_digits_and_distinct() {
        let ids: std::collections::HashSet<RequestId> =
            (0..10_000).map(|_| RequestId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.as_str().len(), 32);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        let mut digits = [0; 16];
        hex_into(&mut digits, 0x0123_4567_89ab_cdef);
        assert_eq!(&digits, b"0123456789abcdef");
    }
}
