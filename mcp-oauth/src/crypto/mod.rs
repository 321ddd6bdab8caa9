//! Signature algorithms and verifying keys.
//!
//! A [`VerifyingKey`] is parsed once, when its key set is loaded, and bound to exactly one
//! [`Algorithm`] (RFC 8725 §3.1): a token whose header names another algorithm is refused
//! before any cryptography runs. Only asymmetric algorithms exist here: HMAC and `none`
//! cannot be expressed, so an RSA public key can never be misused as an HMAC secret.
//!
//! ```
//! use mcp_oauth::crypto::{Algorithm, AlgorithmSet};
//!
//! let alg = Algorithm::from_name("ES256").unwrap();
//! assert!(AlgorithmSet::default().contains(alg));
//! assert_eq!(Algorithm::from_name("HS256"), None); // symmetric: never accepted
//! assert_eq!(Algorithm::from_name("none"), None);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "aws-lc-rs")]
mod aws_lc;
mod digest;
#[cfg(feature = "testing")]
mod random;
#[cfg(feature = "rust-crypto")]
mod rust_crypto;

pub(crate) use digest::{PrefixSha256, base64url_32, hex_digits, sha256};
#[cfg(feature = "testing")]
pub(crate) use random::random_id;

/// A JWS signature algorithm this crate verifies (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (the only EdDSA curve accepted).
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// Parses a JOSE `alg` value. Case-sensitive, as JOSE names are. `none` and the HMAC
    /// algorithms return `None`: they are never accepted.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE name (`"RS256"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The key type (`kty`) this algorithm needs.
    pub const fn key_type(self) -> KeyType {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyType::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => KeyType::Ec,
            Algorithm::EdDSA => KeyType::Okp,
        }
    }

    /// Whether the signature covers the message's SHA-256 (RS256, PS256, ES256): then
    /// [`VerifyingKey::verify_sha256_digest`] verifies it from that digest, which the
    /// validator has already computed on its way to the token's own SHA-256.
    pub(crate) const fn signs_sha256(self) -> bool {
        matches!(self, Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256)
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JWK key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `RSA`.
    Rsa,
    /// `EC`.
    Ec,
    /// `OKP` (Ed25519).
    Okp,
}

/// An elliptic curve of an `EC` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (`ES256`).
    P256,
    /// NIST P-384 (`ES384`).
    P384,
}

impl Curve {
    /// The only algorithm a key on this curve may be used with.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
        }
    }

    /// The byte length of one coordinate.
    pub const fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// A set of allowed algorithms (the allow-list of RFC 8725 §3.1).
///
/// The default holds every algorithm of [`Algorithm::ALL`]: RS256/384/512, PS256/384/512,
/// ES256, ES384 and EdDSA.
///
/// ```
/// use mcp_oauth::crypto::{Algorithm, AlgorithmSet};
///
/// let only_rsa: AlgorithmSet = [Algorithm::RS256, Algorithm::PS256].into_iter().collect();
/// assert!(only_rsa.contains(Algorithm::PS256));
/// assert!(!only_rsa.contains(Algorithm::ES256));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);

    /// Whether `alg` is in the set.
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// The set with `alg` added.
    #[must_use]
    pub const fn with(self, alg: Algorithm) -> Self {
        AlgorithmSet(self.0 | alg.bit())
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |alg| self.contains(*alg))
    }
}

impl Default for AlgorithmSet {
    fn default() -> Self {
        Algorithm::ALL.into_iter().collect()
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter()
            .fold(AlgorithmSet::EMPTY, AlgorithmSet::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The public part of a key, as decoded from a JWK (big-endian unsigned integers and
/// curve points, already base64url-decoded).
#[derive(Debug, Clone, Copy)]
pub enum PublicKeyMaterial<'a> {
    /// An RSA public key: modulus `n` and exponent `e`.
    Rsa {
        /// The modulus.
        n: &'a [u8],
        /// The public exponent.
        e: &'a [u8],
    },
    /// An EC public key: affine coordinates on `curve`.
    Ec {
        /// The curve.
        curve: Curve,
        /// The x coordinate.
        x: &'a [u8],
        /// The y coordinate.
        y: &'a [u8],
    },
    /// An Ed25519 public key (`OKP`, `crv: Ed25519`).
    Ed25519 {
        /// The 32-byte public key.
        x: &'a [u8],
    },
}

/// Which implementation verifies signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// aws-lc-rs (feature `aws-lc-rs`).
    #[cfg(feature = "aws-lc-rs")]
    AwsLc,
    /// The RustCrypto crates (feature `rust-crypto`).
    #[cfg(feature = "rust-crypto")]
    RustCrypto,
    /// No backend compiled in: only exists so that the `compile_error!` asking for one is
    /// the only error of such a build.
    #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
    #[doc(hidden)]
    Unavailable,
}

impl Backend {
    /// The backend this build uses: aws-lc-rs when its feature is on, RustCrypto otherwise.
    pub const DEFAULT: Backend = {
        #[cfg(feature = "aws-lc-rs")]
        {
            Backend::AwsLc
        }
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        {
            Backend::RustCrypto
        }
        #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
        {
            Backend::Unavailable
        }
    };
}

/// Why a key could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key material does not suit the algorithm (an EC key for RS256, a P-384 key for ES256).
    #[error("the key type or curve does not match algorithm {0}")]
    AlgorithmMismatch(Algorithm),
    /// An RSA modulus outside 2048..=8192 bits (RFC 8725: short RSA keys are refused).
    #[error("RSA modulus must be 2048 to 8192 bits")]
    RsaKeySize,
    /// The key material is malformed: a point not on the curve, a bad length, an even modulus.
    #[error("malformed public key")]
    Malformed,
}

/// A public key bound to one algorithm, parsed once and reused for every verification.
///
/// ```
/// use mcp_oauth::crypto::{Algorithm, PublicKeyMaterial, VerifyingKey, KeyError};
///
/// // An EC point that is not on P-256 is refused when the key is loaded, not at first use.
/// let err = VerifyingKey::new(
///     Algorithm::ES256,
///     PublicKeyMaterial::Ec { curve: mcp_oauth::crypto::Curve::P256, x: &[1; 32], y: &[2; 32] },
/// )
/// .unwrap_err();
/// assert_eq!(err, KeyError::Malformed);
/// ```
pub struct VerifyingKey {
    algorithm: Algorithm,
    inner: BackendKey,
}

enum BackendKey {
    #[cfg(feature = "aws-lc-rs")]
    AwsLc(aws_lc::Key),
    #[cfg(feature = "rust-crypto")]
    RustCrypto(rust_crypto::Key),
    #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
    Unavailable(std::convert::Infallible),
}

/// How many keys have been parsed in this process: tests assert that keys are parsed when a
/// key set loads, never per token.
static KEYS_PARSED: AtomicU64 = AtomicU64::new(0);

/// The number of [`VerifyingKey`]s constructed so far in this process. For the test that
/// keys are parsed when a key set loads, never per token (`tests/key_parse_count.rs`); not
/// public API.
#[doc(hidden)]
pub fn keys_parsed() -> u64 {
    KEYS_PARSED.load(Ordering::Relaxed)
}

impl VerifyingKey {
    /// Prepares `material` for verifying `algorithm` signatures with the default [`Backend`].
    pub fn new(algorithm: Algorithm, material: PublicKeyMaterial<'_>) -> Result<Self, KeyError> {
        Self::with_backend(Backend::DEFAULT, algorithm, material)
    }

    /// Prepares `material` with an explicit backend.
    pub fn with_backend(
        backend: Backend,
        algorithm: Algorithm,
        material: PublicKeyMaterial<'_>,
    ) -> Result<Self, KeyError> {
        check_material_fits(algorithm, &material)?;
        let inner = match backend {
            #[cfg(feature = "aws-lc-rs")]
            Backend::AwsLc => BackendKey::AwsLc(aws_lc::Key::new(algorithm, material)?),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => {
                BackendKey::RustCrypto(rust_crypto::Key::new(algorithm, material)?)
            }
            #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
            Backend::Unavailable => return Err(KeyError::Malformed),
        };
        KEYS_PARSED.fetch_add(1, Ordering::Relaxed);
        Ok(Self { algorithm, inner })
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Verifies `signature` over `message`. `Ok(())` only for a valid signature.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match &self.inner {
            #[cfg(feature = "aws-lc-rs")]
            BackendKey::AwsLc(key) => key.verify(message, signature),
            #[cfg(feature = "rust-crypto")]
            BackendKey::RustCrypto(key) => key.verify(message, signature),
            #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
            BackendKey::Unavailable(never) => match *never {},
        }
    }

    /// Verifies `signature` over the message whose SHA-256 is `digest`, for a key whose
    /// algorithm [signs a SHA-256 digest](Algorithm::signs_sha256) (RS256, PS256, ES256):
    /// the same verdict as [`verify`](Self::verify) of that message, without hashing it again.
    /// Any other algorithm's key refuses.
    pub(crate) fn verify_sha256_digest(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if !self.algorithm.signs_sha256() {
            return Err(SignatureError);
        }
        match &self.inner {
            #[cfg(feature = "aws-lc-rs")]
            BackendKey::AwsLc(key) => key.verify_sha256_digest(digest, signature),
            #[cfg(feature = "rust-crypto")]
            BackendKey::RustCrypto(key) => key.verify_sha256_digest(digest, signature),
            #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
            BackendKey::Unavailable(never) => match *never {},
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct SignatureError;

/// Backend-independent checks, so both backends refuse the same keys.
fn check_material_fits(
    algorithm: Algorithm,
    material: &PublicKeyMaterial<'_>,
) -> Result<(), KeyError> {
    match (algorithm.key_type(), material) {
        (KeyType::Rsa, PublicKeyMaterial::Rsa { n, e }) => {
            let n = strip_leading_zeros(n);
            let e = strip_leading_zeros(e);
            // Leading zeros are stripped, so the first byte (if any) is non-zero.
            let bits = match n.first() {
                Some(first) => n.len() * 8 - first.leading_zeros() as usize,
                None => 0,
            };
            if !(2048..=8192).contains(&bits) {
                return Err(KeyError::RsaKeySize);
            }
            // An even modulus is not an RSA modulus; e must be odd, > 1 and at most 33 bits
            // (what aws-lc accepts), so both backends agree.
            let odd_e = e.last().is_some_and(|b| b & 1 == 1);
            if n.last().is_none_or(|b| b & 1 == 0) || !odd_e || e.len() > 5 || e == [1] {
                return Err(KeyError::Malformed);
            }
            Ok(())
        }
        (KeyType::Ec, PublicKeyMaterial::Ec { curve, x, y }) => {
            if curve.algorithm() != algorithm {
                return Err(KeyError::AlgorithmMismatch(algorithm));
            }
            if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                return Err(KeyError::Malformed);
            }
            Ok(())
        }
        (KeyType::Okp, PublicKeyMaterial::Ed25519 { x }) => {
            if x.len() != 32 {
                return Err(KeyError::Malformed);
            }
            Ok(())
        }
        _ => Err(KeyError::AlgorithmMismatch(algorithm)),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The tests every backend passes, written once: invoked inside each backend's test module,
/// where its `Key`, and `Algorithm`, `KeyError`, `SignatureError`, `SigningKey`,
/// `SigningAlgorithm`, `PublicKeyBytes` and `signing_algorithm` are in scope.
#[cfg(all(test, feature = "testing"))]
macro_rules! backend_conformance_tests {
    () => {
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
        fn the_sha256_digest_path_gives_the_message_path_verdict() {
            for algorithm in Algorithm::ALL {
                let signing_key = SigningKey::generate(signing_algorithm(algorithm), "k");
                let key = key_for(&signing_key, algorithm).unwrap();
                let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
                let digest = crate::crypto::sha256(message);
                let signature = signing_key.sign(message);
                if !algorithm.signs_sha256() {
                    assert_eq!(
                        key.verify_sha256_digest(&digest, &signature),
                        Err(SignatureError),
                        "{algorithm}"
                    );
                    continue;
                }
                assert_eq!(
                    key.verify_sha256_digest(&digest, &signature),
                    Ok(()),
                    "{algorithm}"
                );
                let mut other = digest;
                other[31] ^= 1;
                assert_eq!(
                    key.verify_sha256_digest(&other, &signature),
                    Err(SignatureError),
                    "{algorithm}"
                );
                let mut tampered = signature.clone();
                tampered[0] ^= 0x80;
                assert_eq!(
                    key.verify_sha256_digest(&digest, &tampered),
                    Err(SignatureError),
                    "{algorithm}"
                );
                assert_eq!(key.verify_sha256_digest(&digest, &[]), Err(SignatureError));
                let mut longer = signature.clone();
                longer.push(0);
                assert_eq!(
                    key.verify_sha256_digest(&digest, &longer),
                    Err(SignatureError),
                    "{algorithm}"
                );
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
    };
}
#[cfg(all(test, feature = "testing"))]
pub(crate) use backend_conformance_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_zero_rsa_modulus_is_refused_not_a_panic() {
        for n in [&[][..], &[0][..], &[0, 0, 0][..]] {
            let material = PublicKeyMaterial::Rsa { n, e: &[1, 0, 1] };
            assert_eq!(
                check_material_fits(Algorithm::RS256, &material),
                Err(KeyError::RsaKeySize)
            );
        }
    }
}
