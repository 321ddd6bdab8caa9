//! The pure-Rust backend over the RustCrypto crates: each key is turned once into the
//! crate's verifying key for its one algorithm (RSA modulus and exponent decoded, the PKCS#1
//! v1.5 digest prefix or PSS parameters chosen, EC points decompressed and checked on the
//! curve, the Ed25519 point decoded and refused if off the curve or of small order).

use rsa::signature::Verifier;
use rsa::signature::hazmat::PrehashVerifier;
use rsa::{BigUint, RsaPublicKey, pkcs1v15, pss};
use sha2::{Sha256, Sha384, Sha512};

use super::{Algorithm, KeyError, PublicKeyMaterial, SignatureError};

/// The largest modulus accepted, as with aws-lc's `*_2048_8192_*` algorithms (the `rsa` crate
/// defaults to 4096 bits).
const RSA_MAX_BITS: usize = 8192;

/// A public key prepared by the RustCrypto crates, bound to one algorithm.
pub(super) struct Key {
    inner: Inner,
}

enum Inner {
    Rs256(pkcs1v15::VerifyingKey<Sha256>),
    Rs384(pkcs1v15::VerifyingKey<Sha384>),
    Rs512(pkcs1v15::VerifyingKey<Sha512>),
    Ps256(pss::VerifyingKey<Sha256>),
    Ps384(pss::VerifyingKey<Sha384>),
    Ps512(pss::VerifyingKey<Sha512>),
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
                    // The `DigestInfo` prefix comes from the digest's OID (sha2's `oid` feature).
                    Algorithm::RS256 => Inner::Rs256(pkcs1v15::VerifyingKey::new(key)),
                    Algorithm::RS384 => Inner::Rs384(pkcs1v15::VerifyingKey::new(key)),
                    Algorithm::RS512 => Inner::Rs512(pkcs1v15::VerifyingKey::new(key)),
                    // The PSS salt is as long as the digest (RFC 7518 §3.5).
                    Algorithm::PS256 => Inner::Ps256(pss::VerifyingKey::new(key)),
                    Algorithm::PS384 => Inner::Ps384(pss::VerifyingKey::new(key)),
                    Algorithm::PS512 => Inner::Ps512(pss::VerifyingKey::new(key)),
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
            Inner::Rs256(key) => verify_rsa::<pkcs1v15::Signature>(key, message, signature),
            Inner::Rs384(key) => verify_rsa::<pkcs1v15::Signature>(key, message, signature),
            Inner::Rs512(key) => verify_rsa::<pkcs1v15::Signature>(key, message, signature),
            Inner::Ps256(key) => verify_rsa::<pss::Signature>(key, message, signature),
            Inner::Ps384(key) => verify_rsa::<pss::Signature>(key, message, signature),
            Inner::Ps512(key) => verify_rsa::<pss::Signature>(key, message, signature),
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

impl Key {
    /// Verifies a JWS signature over the message whose SHA-256 is `digest`, for RS256, PS256
    /// and ES256 keys (the crates' prehash verification: the same checks as
    /// [`verify`](Self::verify), without the hashing). Any other key refuses.
    pub(super) fn verify_sha256_digest(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let verified = match &self.inner {
            Inner::Rs256(key) => verify_rsa_prehash::<pkcs1v15::Signature>(key, digest, signature),
            Inner::Ps256(key) => verify_rsa_prehash::<pss::Signature>(key, digest, signature),
            Inner::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_prehash(digest, &signature).is_ok()),
            _ => false,
        };
        if verified {
            Ok(())
        } else {
            Err(SignatureError)
        }
    }
}

/// An RSA signature check of a message given by its digest, as [`verify_rsa`].
fn verify_rsa_prehash<S>(key: &impl PrehashVerifier<S>, digest: &[u8], signature: &[u8]) -> bool
where
    S: for<'a> TryFrom<&'a [u8]>,
{
    S::try_from(signature).is_ok_and(|signature| key.verify_prehash(digest, &signature).is_ok())
}

/// An RSA signature check. The conversion never fails; a signature of another length than the
/// modulus, or not below it, fails `verify`.
fn verify_rsa<S>(key: &impl Verifier<S>, message: &[u8], signature: &[u8]) -> bool
where
    S: for<'a> TryFrom<&'a [u8]>,
{
    S::try_from(signature).is_ok_and(|signature| key.verify(message, &signature).is_ok())
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

    crate::crypto::backend_conformance_tests!();

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

    /// Both backends refuse the same malformed keys when they load, but for the one documented
    /// difference of the next test: Ed25519 keys of small order, EC points off the curve.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn aws_lc_and_rust_crypto_refuse_the_same_keys() {
        use crate::crypto::aws_lc::SMALL_ORDER_ED25519;
        use crate::crypto::{Backend, VerifyingKey};
        use rand::RngCore;

        for y in SMALL_ORDER_ED25519 {
            for sign in [0, 0x80] {
                let mut x = y;
                x[31] |= sign;
                for backend in [Backend::AwsLc, Backend::RustCrypto] {
                    let material = PublicKeyMaterial::Ed25519 { x: &x };
                    let key = VerifyingKey::with_backend(backend, Algorithm::EdDSA, material);
                    assert_eq!(key.err(), Some(KeyError::Malformed), "{backend:?} {x:02x?}");
                }
            }
        }
        let mut rng = rand::thread_rng();
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

    /// The documented difference (`aws_lc::Key::new`): an Ed25519 key that is not a point of
    /// the curve is refused by RustCrypto when it loads; aws-lc loads it, and then no signature
    /// verifies under it. Random 32 bytes are such a key about half of the time.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn ed25519_key_off_the_curve_is_refused_by_rust_crypto_and_verifies_nothing_on_aws_lc() {
        use crate::crypto::{Backend, VerifyingKey};
        use rand::RngCore;

        let load = |backend, x: &[u8; 32]| {
            let material = PublicKeyMaterial::Ed25519 { x };
            VerifyingKey::with_backend(backend, Algorithm::EdDSA, material)
        };
        let message = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJyb290In0";
        let mut identity_and_zero = [0u8; 64]; // R = the identity point, S = 0
        identity_and_zero[0] = 1;
        let signatures = [
            SigningKey::generate(SigningAlgorithm::EdDSA, "other").sign(message),
            identity_and_zero.to_vec(),
            vec![0; 64],
        ];

        let mut two = [0u8; 32]; // y = 2 is the y of no point
        two[0] = 2;
        let mut keys = vec![two];
        let mut rng = rand::thread_rng();
        keys.extend((0..400).map(|_| {
            let mut x = [0u8; 32];
            rng.fill_bytes(&mut x);
            x
        }));
        let (mut on_curve, mut off_curve) = (0, 0);
        for x in keys {
            let aws_lc = load(Backend::AwsLc, &x).unwrap();
            match load(Backend::RustCrypto, &x) {
                Ok(rust_crypto) => {
                    on_curve += 1;
                    for signature in &signatures {
                        assert_eq!(rust_crypto.verify(message, signature), Err(SignatureError));
                        assert_eq!(aws_lc.verify(message, signature), Err(SignatureError));
                    }
                }
                Err(error) => {
                    assert_eq!(error, KeyError::Malformed);
                    off_curve += 1;
                    for signature in &signatures {
                        let verified = aws_lc.verify(message, signature);
                        assert_eq!(verified, Err(SignatureError), "{x:02x?}");
                    }
                }
            }
        }
        assert!(
            on_curve > 100 && off_curve > 100,
            "{on_curve} / {off_curve}"
        );
        assert!(load(Backend::RustCrypto, &two).is_err());
    }
}
