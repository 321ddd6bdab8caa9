//! The aws-lc-rs backend: each key is parsed once into a [`ParsedPublicKey`], so a
//! verification is only the signature arithmetic (no per-call DER parsing, unlike
//! `UnparsedPublicKey` or jsonwebtoken's `DecodingKey`).
//!
//! - RSA: `n` and `e` become a DER `RSAPublicKey` (RFC 8017 §A.1.1), parsed once.
//! - EC: the uncompressed SEC 1 point `0x04 || x || y`; aws-lc checks it is on the curve
//!   (`EC_KEY_check_key`) while parsing. Signatures are JWS fixed-size `r || s`.
//! - Ed25519: the raw 32-byte key. aws-lc does not decode the point while parsing, so the key
//!   is checked here, as `ed25519-dalek` does for the RustCrypto backend: the encoding must be a
//!   point on the curve, and not a point of small order.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

use super::{Algorithm, KeyError, PublicKeyMaterial, SignatureError};

/// A public key parsed by aws-lc, bound to one algorithm.
pub(super) struct Key {
    parsed: ParsedPublicKey,
}

impl Key {
    /// Parses `material` for `algorithm`. The caller has already checked that the material
    /// suits the algorithm (key type, curve, coordinate lengths, RSA modulus size).
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
                if !edwards25519::is_acceptable_public_key(x) {
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

/// Just enough arithmetic in GF(2^255 - 19) to tell whether a 32-byte Ed25519 public key
/// decodes to a point of the curve, and whether that point has small order.
///
/// The RustCrypto backend gets both answers from `ed25519-dalek` (`from_bytes`, `is_weak`);
/// computing them here makes both backends refuse the same keys when a key set loads.
/// Speed does not matter: this runs once per key. Only public data is involved.
mod edwards25519 {
    /// A field element as four little-endian 64-bit limbs, any value below 2^256.
    type Fe = [u64; 4];

    /// p = 2^255 - 19.
    const P: Fe = [
        0xffff_ffff_ffff_ffed,
        u64::MAX,
        u64::MAX,
        0x7fff_ffff_ffff_ffff,
    ];
    /// d = -121665 / 121666, the curve constant of edwards25519.
    pub(super) const D: Fe = [
        0x75eb_4dca_1359_78a3,
        0x0070_0a4d_4141_d8ab,
        0x8cc7_4079_7779_e898,
        0x5203_6cee_2b6f_fe73,
    ];
    /// (p - 1) / 2 = 2^254 - 10, the exponent of Euler's criterion.
    const HALF_P_MINUS_1: Fe = [
        0xffff_ffff_ffff_fff6,
        u64::MAX,
        u64::MAX,
        0x3fff_ffff_ffff_ffff,
    ];
    const ONE: Fe = [1, 0, 0, 0];
    const P_MINUS_1: Fe = [
        0xffff_ffff_ffff_ffec,
        u64::MAX,
        u64::MAX,
        0x7fff_ffff_ffff_ffff,
    ];
    /// The y coordinate of a point of order 8 (its negation is the other one's).
    const Y_ORDER_8: Fe = [
        0xb027_b2c2_8f95_e826,
        0xf098_eff2_89f4_c345,
        0x3933_c6d3_05ac_dfd5,
        0x05fc_536d_8802_38b1,
    ];

    /// Whether `encoded` (RFC 8032 §5.1.3: y little-endian, x's sign in the top bit) is a
    /// point of the curve that does not have small order.
    pub(super) fn is_acceptable_public_key(encoded: &[u8; 32]) -> bool {
        let y = canonical(from_bytes(encoded));
        is_on_curve(&y) && !has_small_order(&y)
    }

    /// Decodes the 255-bit y coordinate (the sign bit of x is cleared). May be >= p, as RFC
    /// 8032 decoders and `ed25519-dalek` reduce it.
    fn from_bytes(encoded: &[u8; 32]) -> Fe {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(encoded.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        limbs[3] &= 0x7fff_ffff_ffff_ffff;
        limbs
    }

    /// Some x satisfies -x^2 + y^2 = 1 + d x^2 y^2 iff x^2 = (y^2 - 1) / (d y^2 + 1) is a
    /// square; d y^2 + 1 is never zero (-1/d is not a square), so the quotient is a square iff
    /// the product u v is one (or zero): Euler's criterion (u v)^((p-1)/2) ∈ {0, 1}.
    fn is_on_curve(y: &Fe) -> bool {
        let yy = mul(y, y);
        let u = add(&yy, &P_MINUS_1);
        let v = add(&mul(&D, &yy), &ONE);
        let legendre = canonical(pow(&mul(&u, &v), &HALF_P_MINUS_1));
        legendre == [0; 4] || legendre == ONE
    }

    /// The eight points of small order have y ∈ {1, -1, 0, ±Y_ORDER_8} (orders 1, 2, 4, 8).
    fn has_small_order(y: &Fe) -> bool {
        let minus_y8 = canonical(sub_from_p(&Y_ORDER_8));
        [ONE, P_MINUS_1, [0; 4], Y_ORDER_8, minus_y8].contains(y)
    }

    /// `a * b mod p`, not fully reduced (below 2^256).
    pub(super) fn mul(a: &Fe, b: &Fe) -> Fe {
        let mut wide = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let t = u128::from(wide[i + j]) + u128::from(a[i]) * u128::from(b[j]) + carry;
                wide[i + j] = t as u64;
                carry = t >> 64;
            }
            wide[i + 4] = carry as u64;
        }
        // 2^256 = 38 (mod p): fold the high half into the low one.
        let mut low = [0u64; 4];
        let mut carry = 0u128;
        for i in 0..4 {
            let t = u128::from(wide[i]) + 38 * u128::from(wide[i + 4]) + carry;
            low[i] = t as u64;
            carry = t >> 64;
        }
        fold_carry(low, carry)
    }

    /// `a + b mod p`, not fully reduced (below 2^256).
    fn add(a: &Fe, b: &Fe) -> Fe {
        let mut sum = [0u64; 4];
        let mut carry = 0u128;
        for i in 0..4 {
            let t = u128::from(a[i]) + u128::from(b[i]) + carry;
            sum[i] = t as u64;
            carry = t >> 64;
        }
        fold_carry(sum, carry)
    }

    /// Adds `carry * 2^256 = carry * 38 (mod p)` to `value`.
    fn fold_carry(mut value: Fe, carry: u128) -> Fe {
        let mut carry = carry * 38;
        for limb in &mut value {
            let t = u128::from(*limb) + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        if carry != 0 {
            // The sum wrapped past 2^256, so `value` is now tiny: adding 38 cannot overflow.
            value[0] += 38;
        }
        value
    }

    /// `p - a` for a fully reduced `a`.
    fn sub_from_p(a: &Fe) -> Fe {
        let (diff, _) = sub(&P, a);
        diff
    }

    /// `a - b` and whether it borrowed.
    fn sub(a: &Fe, b: &Fe) -> (Fe, bool) {
        let mut diff = [0u64; 4];
        let mut borrow = false;
        for i in 0..4 {
            let (d1, b1) = a[i].overflowing_sub(b[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            diff[i] = d2;
            borrow = b1 || b2;
        }
        (diff, borrow)
    }

    /// The representative in `0..p` (values below 2^256 are less than 3p).
    pub(super) fn canonical(mut a: Fe) -> Fe {
        for _ in 0..2 {
            let (diff, borrow) = sub(&a, &P);
            if !borrow {
                a = diff;
            }
        }
        a
    }

    /// `base^exponent mod p` by square-and-multiply (variable time: public inputs only).
    fn pow(base: &Fe, exponent: &Fe) -> Fe {
        let mut result = ONE;
        for limb in exponent.iter().rev() {
            for bit in (0..64).rev() {
                result = mul(&result, &result);
                if (limb >> bit) & 1 == 1 {
                    result = mul(&result, base);
                }
            }
        }
        result
    }
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

    #[test]
    fn curve_constant_d_is_minus_121665_over_121666() {
        let product = edwards25519::mul(&edwards25519::D, &[121_666, 0, 0, 0]);
        let minus_121665 = [
            0xffff_ffff_ffff_ffed - 121_665,
            u64::MAX,
            u64::MAX,
            0x7fff_ffff_ffff_ffff,
        ];
        assert_eq!(edwards25519::canonical(product), minus_121665);
    }

    #[test]
    fn ed25519_point_checks_agree_with_ed25519_dalek() {
        use rand::RngCore;
        let mut rng = rand::thread_rng();
        let (mut on_curve, mut off_curve) = (0, 0);
        for _ in 0..2000 {
            let mut encoded = [0u8; 32];
            rng.fill_bytes(&mut encoded);
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&encoded);
            let dalek_accepts = dalek.is_ok_and(|key| !key.is_weak());
            assert_eq!(
                edwards25519::is_acceptable_public_key(&encoded),
                dalek_accepts,
                "{encoded:02x?}"
            );
            if dalek_accepts {
                on_curve += 1
            } else {
                off_curve += 1
            }
        }
        assert!(
            on_curve > 500 && off_curve > 500,
            "{on_curve} / {off_curve}"
        );
    }

    #[test]
    fn ed25519_small_order_and_off_curve_keys_are_refused() {
        for encoded in small_order_encodings() {
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&encoded);
            assert!(dalek.is_err() || dalek.unwrap().is_weak(), "{encoded:02x?}");
            let material = PublicKeyMaterial::Ed25519 { x: &encoded };
            assert_eq!(
                Key::new(Algorithm::EdDSA, material).err(),
                Some(KeyError::Malformed)
            );
        }
        // y = 2 is not the y of any point.
        let mut two = [0u8; 32];
        two[0] = 2;
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&two).is_err());
        let material = PublicKeyMaterial::Ed25519 { x: &two };
        assert_eq!(
            Key::new(Algorithm::EdDSA, material).err(),
            Some(KeyError::Malformed)
        );
    }

    /// Every encoding of the eight small-order points: y ∈ {0, 1, -1, ±y8}, plus the
    /// non-canonical y + p for y ∈ {0, 1}, each with both sign bits.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let y8: [u8; 32] = [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ];
        let minus_y8: [u8; 32] = [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ];
        // p + k for k in -1..=1: 0xed + k, then 0xff bytes, then 0x7f.
        let p_plus = |low: u8| {
            let mut p = [0xff; 32];
            p[0] = low;
            p[31] = 0x7f;
            p
        };
        let small = |k: u8| {
            let mut e = [0u8; 32];
            e[0] = k;
            e
        };
        let mut all = Vec::new();
        for y in [
            small(0),
            small(1),
            p_plus(0xec),
            p_plus(0xed),
            p_plus(0xee),
            y8,
            minus_y8,
        ] {
            let mut negative = y;
            negative[31] |= 0x80;
            all.extend([y, negative]);
        }
        all
    }
}
