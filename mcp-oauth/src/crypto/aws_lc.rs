//! The aws-lc-rs backend: each key is parsed once into a [`ParsedPublicKey`], so a
//! verification is only the signature arithmetic (no per-call DER parsing, unlike
//! `UnparsedPublicKey` or jsonwebtoken's `DecodingKey`).
//!
//! - RSA: `n` and `e` become a DER `RSAPublicKey` (RFC 8017 §A.1.1), parsed once.
//! - EC: the uncompressed SEC 1 point `0x04 || x || y`; aws-lc checks it is on the curve
//!   (`EC_KEY_check_key`) while parsing. Signatures are JWS fixed-size `r || s`.
//! - Ed25519: the raw 32-byte key. aws-lc decodes the point only when it verifies, and never
//!   refuses a point of small order, under which forged signatures verify; so the encodings of
//!   those points are refused here (see [`Key::new`]).

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

use super::{Algorithm, KeyError, PublicKeyMaterial, SignatureError};

/// A public key parsed by aws-lc, bound to one algorithm.
pub(super) struct Key {
    parsed: ParsedPublicKey,
}

impl Key {
    /// Parses `material` for `algorithm`. The caller has already checked that the material
    /// suits the algorithm (key type, curve, coordinate lengths, RSA modulus size).
    ///
    /// One documented difference from the RustCrypto backend: an Ed25519 key whose encoding is
    /// not a point of the curve loads here (aws-lc decodes the point only when it verifies),
    /// but no signature ever verifies under it; RustCrypto refuses it at load. Keys of small
    /// order are refused by both: aws-lc alone would accept forgeries under them.
    pub(super) fn new(
        algorithm: Algorithm,
        material: PublicKeyMaterial<'_>,
    ) -> Result<Key, KeyError> {
        let verification = verification_algorithm(algorithm);
        let bytes = match material {
            PublicKeyMaterial::Rsa { n, e } => rsa_public_key_der(n, e),
            PublicKeyMaterial::Ec { x, y, .. } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                point
            }
            PublicKeyMaterial::Ed25519 { x } => {
                let x: &[u8; 32] = x.try_into().map_err(|_| KeyError::Malformed)?;
                if has_small_order(x) {
                    return Err(KeyError::Malformed);
                }
                x.to_vec()
            }
        };
        let parsed = ParsedPublicKey::new(verification, bytes).map_err(|_| KeyError::Malformed)?;
        Ok(Key { parsed })
    }

    /// Verifies a JWS signature over `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| SignatureError)
    }

    /// Verifies a JWS signature over the message whose SHA-256 is `digest` (aws-lc's
    /// `EVP_PKEY_verify` on the digest: the same padding and key-size checks as
    /// [`verify`](Self::verify), without the hashing). A key of an algorithm that hashes with
    /// another digest, or Ed25519, refuses.
    pub(super) fn verify_sha256_digest(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let digest =
            Digest::import_less_safe(digest, &digest::SHA256).map_err(|_| SignatureError)?;
        self.parsed
            .verify_digest_sig(&digest, signature)
            .map_err(|_| SignatureError)
    }
}

fn verification_algorithm(algorithm: Algorithm) -> &'static dyn VerificationAlgorithm {
    match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
    }
}

/// The DER encoding of `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// from big-endian unsigned `n` and `e`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    der_unsigned_integer(&mut body, n);
    der_unsigned_integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 6);
    der.push(0x30); // SEQUENCE
    der_length(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

/// A DER INTEGER holding the unsigned big-endian `value`: minimal (no redundant leading zero
/// bytes), with a `0x00` prefix when the high bit is set, so it stays positive.
fn der_unsigned_integer(out: &mut Vec<u8>, value: &[u8]) {
    let first = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let value = &value[first..];
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02); // INTEGER
    der_length(out, value.len() + usize::from(pad));
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(value);
}

/// A DER length: short form below 128, else long form with the minimal number of bytes.
fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let bytes = &bytes[first..];
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
}

/// The Ed25519 encodings of the eight points of small order, with the top bit (the sign of x)
/// cleared: y ∈ {0, 1, -1, ±y8} (orders 4, 1, 2, 8), plus the non-canonical y + p for y ∈ {0, 1}.
/// The list libsodium checks (`has_small_order`): constants, no field arithmetic.
///
/// aws-lc verifies under such a key: under the identity (y = 1) the signature R = identity,
/// S = 0 verifies every message; under the others, a fixed share of messages.
pub(super) const SMALL_ORDER_ED25519: [[u8; 32]; 7] = [
    small_y(0),
    small_y(1),
    // -1 = p - 1, then the non-canonical p (= 0) and p + 1 (= 1).
    p_plus(0xec),
    p_plus(0xed),
    p_plus(0xee),
    // y8 and -y8.
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// The little-endian encoding of a small y.
const fn small_y(y: u8) -> [u8; 32] {
    let mut encoded = [0; 32];
    encoded[0] = y;
    encoded
}

/// The encoding of p + k = 2^255 - 19 + k for a small k, given its low byte `0xed + k`.
const fn p_plus(low: u8) -> [u8; 32] {
    let mut encoded = [0xff; 32];
    encoded[0] = low;
    encoded[31] = 0x7f;
    encoded
}

/// Whether the Ed25519 key `encoded` is one of [`SMALL_ORDER_ED25519`], with either sign bit.
fn has_small_order(encoded: &[u8; 32]) -> bool {
    let mut y = *encoded;
    y[31] &= 0x7f;
    SMALL_ORDER_ED25519.contains(&y)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::crypto::Curve;
    use crate::testing::keys::tests_support::{PublicKeyBytes, signing_algorithm};
    use crate::testing::keys::{SigningAlgorithm, SigningKey, weak_rsa_1024};

    crate::crypto::backend_conformance_tests!();

    #[test]
    fn rsa_1024_bit_modulus_is_refused() {
        let weak = weak_rsa_1024("weak");
        assert_eq!(
            key_for(&weak, Algorithm::RS256).err(),
            Some(KeyError::RsaKeySize)
        );
        // Even past the shared check, aws-lc's 2048..8192 range refuses its signatures.
        let public = PublicKeyBytes::of(&weak);
        let key = Key::new(Algorithm::RS256, public.material()).unwrap();
        assert_eq!(key.verify(b"m", &weak.sign(b"m")), Err(SignatureError));
    }

    #[test]
    fn ec_point_off_the_curve_is_refused_by_the_parse() {
        for (algorithm, alg, curve) in [
            (Algorithm::ES256, SigningAlgorithm::ES256, Curve::P256),
            (Algorithm::ES384, SigningAlgorithm::ES384, Curve::P384),
        ] {
            let public = PublicKeyBytes::of(&SigningKey::generate(alg, "k"));
            let PublicKeyMaterial::Ec { x, y, .. } = public.material() else {
                unreachable!()
            };
            let mut y = y.to_vec();
            *y.last_mut().unwrap() ^= 1;
            let off_curve = PublicKeyMaterial::Ec { curve, x, y: &y };
            assert_eq!(
                Key::new(algorithm, off_curve).err(),
                Some(KeyError::Malformed)
            );
            let zeros = vec![0; curve.coordinate_len()];
            let origin = PublicKeyMaterial::Ec {
                curve,
                x: &zeros,
                y: &zeros,
            };
            assert_eq!(Key::new(algorithm, origin).err(), Some(KeyError::Malformed));
        }
    }

    #[test]
    fn p384_material_for_es256_is_refused() {
        let p384 = SigningKey::generate(SigningAlgorithm::ES384, "k");
        assert_eq!(
            key_for(&p384, Algorithm::ES256).err(),
            Some(KeyError::AlgorithmMismatch(Algorithm::ES256))
        );
        // The parse alone refuses a 97-byte point for P-256, too.
        let public = PublicKeyBytes::of(&p384);
        let PublicKeyMaterial::Ec { x, y, .. } = public.material() else {
            unreachable!()
        };
        let as_p256 = PublicKeyMaterial::Ec {
            curve: Curve::P256,
            x,
            y,
        };
        assert_eq!(
            Key::new(Algorithm::ES256, as_p256).err(),
            Some(KeyError::Malformed)
        );
    }

    #[test]
    fn rsa_public_key_der_uses_minimal_integers_and_long_form_lengths() {
        assert_eq!(
            rsa_public_key_der(&[0x00, 0x7f], &[0x01, 0x00, 0x01]),
            vec![0x30, 0x08, 0x02, 0x01, 0x7f, 0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert_eq!(
            rsa_public_key_der(&[0x80], &[0x03]),
            vec![0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x03]
        );
        assert_eq!(rsa_public_key_der(&[], &[0x03])[2..5], [0x02, 0x01, 0x00]);
        let n = [0xc5; 256];
        let der = rsa_public_key_der(&n, &[0x01, 0x00, 0x01]);
        // 257-byte INTEGER (0x00 pad), then the exponent: 4 + 257 + 5 = 266 bytes of body.
        assert_eq!(der[..8], [0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01]);
        assert_eq!(der[8], 0x00);
        assert_eq!(der.len(), 4 + 266);
        let mut long = Vec::new();
        der_length(&mut long, 0x80);
        assert_eq!(long, [0x81, 0x80]);
    }

    /// R = the identity point, S = 0.
    fn identity_signature() -> [u8; 64] {
        let mut signature = [0; 64];
        signature[0] = 1;
        signature
    }

    /// Why the list exists: aws-lc itself loads a small-order key, then accepts a forgery under
    /// it. Should this fail one day, aws-lc refuses such keys itself and the list may go.
    #[test]
    fn aws_lc_alone_accepts_forgeries_under_a_small_order_key() {
        let identity = ParsedPublicKey::new(&signature::ED25519, small_y(1)).unwrap();
        for message in [
            &b""[..],
            b"any message",
            b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJyb290In0",
        ] {
            assert!(identity.verify_sig(message, &identity_signature()).is_ok());
        }
    }

    #[test]
    fn ed25519_small_order_keys_are_refused() {
        let mut count = 0;
        for y in SMALL_ORDER_ED25519 {
            let mut negative = y;
            negative[31] |= 0x80;
            for encoded in [y, negative] {
                let dalek = ed25519_dalek::VerifyingKey::from_bytes(&encoded);
                assert!(dalek.is_err() || dalek.unwrap().is_weak(), "{encoded:02x?}");
                let material = PublicKeyMaterial::Ed25519 { x: &encoded };
                assert_eq!(
                    Key::new(Algorithm::EdDSA, material).err(),
                    Some(KeyError::Malformed),
                    "{encoded:02x?}"
                );
                count += 1;
            }
        }
        assert_eq!(count, 14);
        // ±y8 are points (of order 8), not typos: ed25519-dalek decodes them and finds them weak.
        for y in &SMALL_ORDER_ED25519[5..] {
            let key = ed25519_dalek::VerifyingKey::from_bytes(y).unwrap();
            assert!(key.is_weak());
        }
    }

    #[test]
    fn ed25519_off_curve_key_loads_but_verifies_nothing() {
        // y = 2 is not the y of any point: ed25519-dalek refuses it, aws-lc loads it.
        let two = small_y(2);
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&two).is_err());
        let key = Key::new(Algorithm::EdDSA, PublicKeyMaterial::Ed25519 { x: &two }).unwrap();
        let signer = SigningKey::generate(SigningAlgorithm::EdDSA, "k");
        for signature in [
            signer.sign(b"m"),
            identity_signature().to_vec(),
            vec![0; 64],
        ] {
            assert_eq!(key.verify(b"m", &signature), Err(SignatureError));
        }
    }

    #[test]
    fn real_ed25519_keys_do_not_have_small_order() {
        for _ in 0..100 {
            let public = PublicKeyBytes::of(&SigningKey::generate(SigningAlgorithm::EdDSA, "k"));
            let PublicKeyMaterial::Ed25519 { x } = public.material() else {
                unreachable!()
            };
            assert!(!has_small_order(x.try_into().unwrap()));
        }
    }
}
