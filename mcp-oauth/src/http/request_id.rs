//! The request id every audit event carries: the client's `X-Request-Id` when it is a
//! plausible id, otherwise one generated here.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The header read, set on the request passed to the endpoint, and echoed in the response.
pub(crate) const HEADER: &str = "x-request-id";

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

    /// 32 hex digits, unique within the process and unpredictable across processes.
    pub fn generate() -> Self {
        static SEED: OnceLock<[u8; 16]> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = SEED.get_or_init(|| {
            // RandomState is keyed from the operating system's randomness.
            let a = RandomState::new().hash_one(0u8);
            let b = RandomState::new().hash_one(1u8);
            let mut seed = [0; 16];
            seed[..8].copy_from_slice(&a.to_le_bytes());
            seed[8..].copy_from_slice(&b.to_le_bytes());
            seed
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hash = Sha256::new();
        hash.update(seed);
        hash.update(n.to_le_bytes());
        let digest = hash.finalize();
        let mut id = String::with_capacity(32);
        for byte in &digest[..16] {
            id.push_str(&format!("{byte:02x}"));
        }
        Self(id.into())
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
}
