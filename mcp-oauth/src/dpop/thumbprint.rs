//! RFC 7638 JWK thumbprints: SHA-256 over the key's required members, in lexicographic
//! order, as JSON without whitespace. The bytes hashed are exactly those (a known bug of
//! another stack hashed the JWK as received); the member values are the JWK's own strings,
//! which [`proof`](super::proof) has already checked are base64url or a known curve name, so
//! none needs escaping.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::sha256;

/// The public members of a proof key that its thumbprint covers.
pub(crate) enum ThumbprintMembers<'a> {
    /// `{"e":…,"kty":"RSA","n":…}`
    Rsa { e: &'a str, n: &'a str },
    /// `{"crv":…,"kty":"EC","x":…,"y":…}`
    Ec {
        crv: &'a str,
        x: &'a str,
        y: &'a str,
    },
    /// `{"crv":…,"kty":"OKP","x":…}`
    Okp { crv: &'a str, x: &'a str },
}

impl ThumbprintMembers<'_> {
    /// The canonical JSON RFC 7638 §3 hashes.
    pub(crate) fn canonical_json(&self) -> String {
        match self {
            Self::Rsa { e, n } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            Self::Okp { crv, x } => format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#),
        }
    }

    /// The SHA-256 thumbprint.
    pub(crate) fn sha256(&self) -> [u8; 32] {
        sha256(self.canonical_json().as_bytes())
    }
}

/// The base64url text of a thumbprint, as `cnf.jkt` carries it.
pub(crate) fn encode(thumbprint: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(thumbprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = ThumbprintMembers::Rsa { e: "AQAB", n };
        assert_eq!(
            encode(&members.sha256()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 9449 §4.1's example proof key (P-256) has this thumbprint in its §6.1 example
    /// (`cnf.jkt`).
    #[test]
    fn rfc_9449_example() {
        let members = ThumbprintMembers::Ec {
            crv: "P-256",
            x: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        };
        assert_eq!(
            encode(&members.sha256()),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }
}
