//! SHA-256, the one digest helper of the crate: token fingerprints, cache and session-table
//! keys, the dev server's hashed codes, tokens and secrets.

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of a prefix of a text, kept open so that the hash of the whole text continues from
/// it: one pass over a compact JWS gives both the digest its RS256, PS256 or ES256 signature
/// covers (of `header.payload`) and the token's own SHA-256 (the fingerprint, cache and
/// revocation key), each the plain SHA-256 of its bytes.
///
/// ```text
/// let prefix = PrefixSha256::new(&token[..n]);
/// prefix.digest() == sha256(&token[..n]);
/// prefix.then(&token[n..]) == sha256(token);
/// ```
#[derive(Clone)]
pub(crate) struct PrefixSha256 {
    state: Sha256,
    len: usize,
}

impl PrefixSha256 {
    /// Hashes `prefix`.
    pub(crate) fn new(prefix: &[u8]) -> Self {
        Self {
            state: Sha256::new_with_prefix(prefix),
            len: prefix.len(),
        }
    }

    /// The length of the prefix hashed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// SHA-256 of the prefix. The state stays open.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.state.clone().finalize().into()
    }

    /// SHA-256 of the prefix followed by `rest`.
    pub(crate) fn then(&self, rest: &[u8]) -> [u8; 32] {
        self.state.clone().chain_update(rest).finalize().into()
    }
}

/// The two lowercase hex digits of `byte`, high nibble first: the one spelling of bytes as
/// hex (fingerprints, request ids, Redis keys, JSON `\u00XX` escapes).
pub(crate) fn hex_digits(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xf)],
    ]
}

/// The 32 bytes `text` encodes as unpadded base64url (a digest as `cnf.jkt`, `ath` or
/// `dpop_jkt` carry it, or a 32-byte key); `None` for any other length, padding, or text that
/// is not canonical base64url.
pub(crate) fn base64url_32(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let mut bytes = [0u8; 33];
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut bytes)
    {
        Ok(32) => bytes[..32].try_into().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_is_the_fips_180_2_vector() {
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_prefix_hash_continues_into_the_hash_of_the_whole() {
        // Around the 55/56/64-byte padding and block boundaries, and past several blocks.
        let text: Vec<u8> = (0..300u16).map(|i| (i * 7 % 251) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 300] {
            let whole = &text[..len];
            for cut in [0, len / 3, len / 2, len.saturating_sub(1), len] {
                let prefix = PrefixSha256::new(&whole[..cut]);
                assert_eq!(prefix.len(), cut);
                assert_eq!(prefix.digest(), sha256(&whole[..cut]), "{len} {cut}");
                assert_eq!(prefix.then(&whole[cut..]), sha256(whole), "{len} {cut}");
                // Asking for one does not change the other.
                assert_eq!(prefix.digest(), sha256(&whole[..cut]), "{len} {cut}");
            }
        }
    }
}
