//! SHA-256, the one digest helper of the crate: token fingerprints, cache and session-table
//! keys, the dev server's hashed codes, tokens and secrets.

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
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
}
