//! The pure-Rust backend over the RustCrypto crates: each key is turned once into the
//! crate's verifying key for its one algorithm (RSA modulus and exponent decoded, the PKCS#1
//! v1.5 digest prefix or PSS parameters chosen, EC points decompressed and checked on the
//! curve, the Ed25519 point decoded and refused if of small order).

use rsa::signature::Verifier;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::digest::FixedOutputReset;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{Algorithm, KeyError, PublicKeyMaterial, SignatureError};

/// The largest modulus accepted, as with aws-lc's `*_2048_8192_*` algorithms (the `rsa` crate
/// defaults to 4096 bits).
const RSA_MAX_BITS: usize = 8192;

/// A public key prepared by the RustCrypto crates, bound to one algorithm.
pub(super) struct Key {
    inner: Inner,
}

enum Inner {
    // RSASSA-PKCS1-v1_5 goes through `RsaPublicKey::verify` with an explicit `DigestInfo`
    // prefix: `rsa::pkcs1v15::VerifyingKey::<Sha256>::new` needs sha2's `oid` feature, which
    // only a dev-dependency turns on.
    Rs256(RsaPublicKey),
    Rs384(RsaPublicKey),
    Rs512(RsaPublicKey),
    Ps256(rsa::pss::VerifyingKey<Sha256>),
    Ps384(rsa::pss::VerifyingKey<Sha384>),
    Ps512(rsa::pss::VerifyingKey<Sha512>),
    Es256(p256::ecdsa::VerifyingKey),
    Es384(p384::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl Key {
    /// Prepares `material` for `algorithm`. The caller has already checked that the material
    /// suits the algorithm (key type, curve, coordinate lengths, RSA modulus size).
    pub(super) fn new(
        algorithm: Algorithm,
        material: PublicKeyMaterial<'_>,
    ) -> Result<Key, KeyError> {
        let inner = match (algorithm, material) {
            (_, PublicKeyMaterial::Rsa { n, e }) => {
                let key = RsaPublicKey::new_with_max_size(
                    BigUint::from_bytes_be(n),
                    BigUint::from_bytes_be(e),
                    RSA_MAX_BITS,
                )
                .map_err(|_| KeyError::Malformed)?;
                match algorithm {
                    Algorithm::RS256 => Inner::Rs256(key),
                    Algorithm::RS384 => Inner::Rs384(key),
                    Algorithm::RS512 => Inner::Rs512(key),
                    // The PSS salt is as long as the digest (RFC 7518 §3.5).
                    Algorithm::PS256 => Inner::Ps256(rsa::pss::VerifyingKey::new(key)),
                    Algorithm::PS384 => Inner::Ps384(rsa::pss::VerifyingKey::new(key)),
                    Algorithm::PS512 => Inner::Ps512(rsa::pss::VerifyingKey::new(key)),
                    _ => return Err(KeyError::AlgorithmMismatch(algorithm)),
                }
            }
            (Algorithm::ES256, PublicKeyMaterial::Ec { x, y, .. }) => Inner::Es256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(x, y))
                    .map_err(|_| KeyError::Malformed)?,
            ),
            (Algorithm::ES384, PublicKeyMaterial::Ec { x, y, .. }) => Inner::Es384(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(x, y))
                    .map_err(|_| KeyError::Malformed)?,
            ),
            (Algorithm::EdDSA, PublicKeyMaterial::Ed25519 { x }) => {
                let x: &[u8; 32] = x.try_into().map_err(|_| KeyError::Malformed)?;
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| KeyError::Malformed)?;
                if key.is_weak() {
                    return Err(KeyError::Malformed);
                }
                Inner::EdDsa(key)
            }
            _ => return Err(KeyError::AlgorithmMismatch(algorithm)),
        };
        Ok(Key { inner })
    }

    /// Verifies a JWS signature over `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let verified = match &self.inner {
            Inner::Rs256(key) => {
                verify_pkcs1v15::<Sha256>(key, &SHA256_DIGEST_INFO, message, signature)
            }
            Inner::Rs384(key) => {
                verify_pkcs1v15::<Sha384>(key, &SHA384_DIGEST_INFO, message, signature)
            }
            Inner::Rs512(key) => {
                verify_pkcs1v15::<Sha512>(key, &SHA512_DIGEST_INFO, message, signature)
            }
            Inner::Ps256(key) => verify_pss(key, message, signature),
            Inner::Ps384(key) => verify_pss(key, message, signature),
            Inner::Ps512(key) => verify_pss(key, message, signature),
            // JWS ECDSA signatures are the fixed-size r || s (RFC 7518 §3.4), not DER;
            // `from_slice` refuses any other length and r or s of zero or not below n.
            Inner::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
            Inner::Es384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
            // `verify_strict` also refuses small-order R and non-canonical encodings.
            Inner::EdDsa(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok()),
        };
        if verified {
            Ok(())
        } else {
            Err(SignatureError)
        }
    }
}

/// The DER `DigestInfo` header that precedes a SHA-256 hash (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// The DER `DigestInfo` header that precedes a SHA-384 hash.
const SHA384_DIGEST_INFO: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
/// The DER `DigestInfo` header that precedes a SHA-512 hash.
const SHA512_DIGEST_INFO: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

fn verify_pkcs1v15<D: Digest>(
    key: &RsaPublicKey,
    digest_info: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let scheme = Pkcs1v15Sign {
        hash_len: Some(<D as Digest>::output_size()),
        prefix: digest_info.into(),
    };
    // A signature of another length than the modulus, or not below it, fails here.
    key.verify(scheme, &D::digest(message), signature).is_ok()
}

fn verify_pss<D>(key: &rsa::pss::VerifyingKey<D>, message: &[u8], signature: &[u8]) -> bool
where
    D: Digest + FixedOutputReset,
{
    // The conversion never fails; a signature of the wrong length fails `verify`.
    rsa::pss::Signature::try_from(signature)
        .is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

/// The uncompressed SEC 1 encoding `0x04 || x || y`.
fn sec1_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::crypto::Curve;
    use crate::testing::keys::tests_support::{PublicKeyBytes, signing_algorithm};
    use crate::testing::keys::{SigningAlgorithm, SigningKey, weak_rsa_1024};

    fn key_for(signing_key: &SigningKey, algorithm: Algorithm) -> Result<Key, KeyError> {
        let public = PublicKeyBytes::of(signing_key);
        crate::crypto::check_material_fits(algorithm, &public.material())?;
        Key::new(algorithm, public.material())
    }

    #[test]
    fn every_algorithm_verifies_its_own_signatures() {
        for algorithm in Algorithm::ALL {
            let signing_key = SigningKey::generate(signing_algorithm(algorithm), "k");
            let key = key_for(&signing_key, algorithm).unwrap();
            let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
            let signature = signing_key.sign(message);
            assert_eq!(key.verify(message, &signature), Ok(()), "{algorithm}");
        }
    }

    #[test]
    fn tampered_message_or_signature_fails() {
        for algorithm in Algorithm::ALL {
            let signing_key = SigningKey::generate(signing_algorithm(algorithm), "k");
            let key = key_for(&signing_key, algorithm).unwrap();
            let message = b"header.payload".to_vec();
            let signature = signing_key.sign(&message);
            for i in 0..message.len() {
                let mut tampered = message.clone();
                tampered[i] ^= 0x01;
                assert_eq!(
                    key.verify(&tampered, &signature),
                    Err(SignatureError),
                    "{algorithm}"
                );
            }
            for i in [0, signature.len() / 2, signature.len() - 1] {
                let mut tampered = signature.clone();
                tampered[i] ^= 0x80;
                assert_eq!(
                    key.verify(&message, &tampered),
                    Err(SignatureError),
                    "{algorithm}"
                );
            }
        }
    }

    #[test]
    fn wrong_signature_length_fails_without_panicking() {
        for algorithm in Algorithm::ALL {
            let signing_key = SigningKey::generate(signing_algorithm(algorithm), "k");
            let key = key_for(&signing_key, algorithm).unwrap();
            let signature = signing_key.sign(b"m");
            let mut longer = signature.clone();
            longer.push(0);
            let mut zero_prefixed = vec![0];
            zero_prefixed.extend_from_slice(&signature);
            for bad in [
                &[][..],
                &signature[..signature.len() - 1],
                &longer,
                &zero_prefixed,
            ] {
                assert_eq!(key.verify(b"m", bad), Err(SignatureError), "{algorithm}");
            }
            assert_eq!(key.verify(b"", b""), Err(SignatureError));
        }
    }

    #[test]
    fn ecdsa_signature_with_zero_or_out_of_range_scalars_fails() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::ES384] {
            let signing_key = SigningKey::generate(alg, "k");
            let algorithm = Algorithm::from_name(alg.name()).unwrap();
            let key = key_for(&signing_key, algorithm).unwrap();
            let len = signing_key.sign(b"m").len();
            for bad in [vec![0u8; len], vec![0xff; len]] {
                assert_eq!(key.verify(b"m", &bad), Err(SignatureError), "{algorithm}");
            }
        }
    }

    /// In test builds a dev-dependency turns on sha2's `oid` feature: the hand-written prefixes
    /// must equal the ones the `rsa` crate derives from the digest OIDs.
    #[test]
    fn digest_info_prefixes_match_the_rsa_crate() {
        assert_eq!(*Pkcs1v15Sign::new::<Sha256>().prefix, SHA256_DIGEST_INFO);
        assert_eq!(*Pkcs1v15Sign::new::<Sha384>().prefix, SHA384_DIGEST_INFO);
        assert_eq!(*Pkcs1v15Sign::new::<Sha512>().prefix, SHA512_DIGEST_INFO);
    }

    #[test]
    fn rsa_1024_bit_modulus_is_refused() {
        let weak = weak_rsa_1024("weak");
        assert_eq!(
            key_for(&weak, Algorithm::RS256).err(),
            Some(KeyError::RsaKeySize)
        );
    }

    #[test]
    fn rsa_modulus_up_to_8192_bits_is_accepted() {
        // Beyond the `rsa` crate's 4096-bit default, as aws-lc accepts (an odd 8192-bit n).
        let mut n = vec![0xff; 1024];
        n[1023] = 0xfb;
        let material = PublicKeyMaterial::Rsa {
            n: &n,
            e: &[1, 0, 1],
        };
        assert!(Key::new(Algorithm::RS256, material).is_ok());
    }

    #[test]
    fn ec_point_off_the_curve_is_refused() {
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
    fn ed25519_small_order_key_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let material = PublicKeyMaterial::Ed25519 { x: &identity };
        assert_eq!(
            Key::new(Algorithm::EdDSA, material).err(),
            Some(KeyError::Malformed)
        );
    }

    /// With both backends compiled in, aws-lc and RustCrypto accept and refuse exactly the same
    /// signatures.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn aws_lc_and_rust_crypto_backends_agree() {
        use crate::crypto::{Backend, VerifyingKey};
        use crate::testing::keys::tests_support::another_key;

        for algorithm in Algorithm::ALL {
            let signing_key = SigningKey::generate(signing_algorithm(algorithm), "k");
            let other_key = another_key(&signing_key, "other");
            let public = PublicKeyBytes::of(&signing_key);
            let aws_lc =
                VerifyingKey::with_backend(Backend::AwsLc, algorithm, public.material()).unwrap();
            let rust_crypto =
                VerifyingKey::with_backend(Backend::RustCrypto, algorithm, public.material())
                    .unwrap();

            let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ".to_vec();
            let signature = signing_key.sign(&message);
            let mut cases: Vec<(Vec<u8>, Vec<u8>, bool)> = vec![
                (message.clone(), signature.clone(), true),
                (message.clone(), other_key.sign(&message), false),
                (message.clone(), Vec::new(), false),
                (
                    message.clone(),
                    signature[..signature.len() - 1].to_vec(),
                    false,
                ),
                (Vec::new(), signature.clone(), false),
            ];
            for i in (0..signature.len()).step_by(7) {
                let mut tampered = signature.clone();
                tampered[i] ^= 1 << (i % 8);
                cases.push((message.clone(), tampered, false));
            }
            for i in 0..message.len() {
                let mut tampered = message.clone();
                tampered[i] ^= 0x20;
                cases.push((tampered, signature.clone(), false));
            }
            for (message, signature, expected) in cases {
                let by_aws_lc = aws_lc.verify(&message, &signature).is_ok();
                let by_rust_crypto = rust_crypto.verify(&message, &signature).is_ok();
                assert_eq!(by_aws_lc, by_rust_crypto, "{algorithm}: backends disagree");
                assert_eq!(by_aws_lc, expected, "{algorithm}");
            }
        }
    }

    /// Both backends refuse the same malformed keys when they load.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn aws_lc_and_rust_crypto_refuse_the_same_keys() {
        use crate::crypto::{Backend, VerifyingKey};
        use rand::RngCore;

        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let mut x = [0u8; 32];
            rng.fill_bytes(&mut x);
            let material = PublicKeyMaterial::Ed25519 { x: &x };
            let aws_lc = VerifyingKey::with_backend(Backend::AwsLc, Algorithm::EdDSA, material);
            let rust_crypto =
                VerifyingKey::with_backend(Backend::RustCrypto, Algorithm::EdDSA, material);
            assert_eq!(aws_lc.err(), rust_crypto.err(), "{x:02x?}");
        }
        for (algorithm, curve) in [
            (Algorithm::ES256, Curve::P256),
            (Algorithm::ES384, Curve::P384),
        ] {
            for _ in 0..50 {
                let mut x = vec![0u8; curve.coordinate_len()];
                let mut y = vec![0u8; curve.coordinate_len()];
                rng.fill_bytes(&mut x);
                rng.fill_bytes(&mut y);
                let material = PublicKeyMaterial::Ec {
                    curve,
                    x: &x,
                    y: &y,
                };
                let aws_lc = VerifyingKey::with_backend(Backend::AwsLc, algorithm, material);
                let rust_crypto =
                    VerifyingKey::with_backend(Backend::RustCrypto, algorithm, material);
                assert_eq!(aws_lc.err(), Some(KeyError::Malformed));
                assert_eq!(rust_crypto.err(), Some(KeyError::Malformed));
            }
        }
    }
}
