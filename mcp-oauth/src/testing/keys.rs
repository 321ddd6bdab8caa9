//! Signing keys for tests: mint JWS signatures with any algorithm this crate verifies, plus
//! HS256 to forge algorithm-confusion attacks, and publish the public halves as JWKs.
//!
//! Signing always goes through the pure-Rust RustCrypto crates, whichever backend verifies,
//! so the test kit never pulls aws-lc into a pure-Rust build. RSA keys come from a small pool
//! of pre-generated 2048-bit keys (generating RSA keys is slow); EC and Ed25519 keys are fresh.
//!
//! ```
//! use mcp_oauth::testing::{SigningAlgorithm, SigningKey, compact_jws};
//! use serde_json::json;
//!
//! let key = SigningKey::generate(SigningAlgorithm::ES256, "key-1");
//! let jwks = json!({ "keys": [key.public_jwk()] });
//! assert_eq!(jwks["keys"][0]["crv"], "P-256");
//!
//! let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": key.kid() });
//! let token = compact_jws(&header, &json!({ "sub": "alice" }), &key);
//! assert_eq!(token.split('.').count(), 3);
//! ```

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::Mac;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, pkcs1v15, pss};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

/// A JWS algorithm the test kit signs with.
///
/// Every [`crate::crypto::Algorithm`] is here, plus `HS256`, which exists only to forge attack
/// tokens (an HMAC over the issuer's public key, an `oct` key in a key set): the verifier must
/// refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum SigningAlgorithm {
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
    /// Ed25519.
    EdDSA,
    /// HMAC with SHA-256: for forging tokens that must be refused.
    HS256,
}

impl SigningAlgorithm {
    /// The JOSE name (`"RS256"`, …, `"HS256"`).
    ///
    /// ```
    /// use mcp_oauth::testing::SigningAlgorithm;
    ///
    /// assert_eq!(SigningAlgorithm::EdDSA.name(), "EdDSA");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::RS384 => "RS384",
            SigningAlgorithm::RS512 => "RS512",
            SigningAlgorithm::PS256 => "PS256",
            SigningAlgorithm::PS384 => "PS384",
            SigningAlgorithm::PS512 => "PS512",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::ES384 => "ES384",
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::HS256 => "HS256",
        }
    }

    /// The kind of key material the algorithm signs with.
    fn family(self) -> Family {
        match self {
            SigningAlgorithm::RS256
            | SigningAlgorithm::RS384
            | SigningAlgorithm::RS512
            | SigningAlgorithm::PS256
            | SigningAlgorithm::PS384
            | SigningAlgorithm::PS512 => Family::Rsa,
            SigningAlgorithm::ES256 => Family::P256,
            SigningAlgorithm::ES384 => Family::P384,
            SigningAlgorithm::EdDSA => Family::Ed25519,
            SigningAlgorithm::HS256 => Family::Hmac,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
    Hmac,
}

/// A private key with a `kid` and the algorithm it signs with.
///
/// Cloning is cheap (RSA keys and HMAC secrets are shared). `Debug` shows the `kid` and the
/// algorithm, never the secret.
///
/// ```
/// use base64::Engine;
/// use base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// use mcp_oauth::crypto::{Algorithm, PublicKeyMaterial, VerifyingKey};
/// use mcp_oauth::testing::{SigningAlgorithm, SigningKey};
///
/// let key = SigningKey::generate(SigningAlgorithm::RS256, "rsa-1");
/// let signature = key.sign(b"header.payload");
///
/// // The verifier side: the key as published in a JWKS.
/// let jwk = key.public_jwk();
/// assert_eq!(jwk["alg"], "RS256");
/// let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
/// let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
/// let verifying_key =
///     VerifyingKey::new(Algorithm::RS256, PublicKeyMaterial::Rsa { n: &n, e: &e }).unwrap();
/// assert!(verifying_key.verify(b"header.payload", &signature).is_ok());
///
/// // The same RSA key used for PS256.
/// let ps256 = key.with_algorithm(SigningAlgorithm::PS256);
/// assert_eq!(ps256.public_jwk()["n"], jwk["n"]);
/// ```
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    algorithm: SigningAlgorithm,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Rsa(Arc<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Hmac(Arc<[u8]>),
}

/// The pre-generated 2048-bit RSA keys (`openssl genpkey`, PKCS#8), parsed on first use.
static RSA_POOL: LazyLock<[Arc<RsaPrivateKey>; 4]> = LazyLock::new(|| {
    [
        include_str!("keys/rsa-1.pem"),
        include_str!("keys/rsa-2.pem"),
        include_str!("keys/rsa-3.pem"),
        include_str!("keys/rsa-4.pem"),
    ]
    .map(parse_rsa_pem)
});

/// A 1024-bit RSA key, too short to be accepted.
static RSA_1024: LazyLock<Arc<RsaPrivateKey>> =
    LazyLock::new(|| parse_rsa_pem(include_str!("keys/rsa-1024.pem")));

thread_local! {
    /// Which pool key the next RSA [`SigningKey::generate`] on this thread takes. Per thread,
    /// not global: with one counter shared by the tests running in parallel, another test
    /// could draw 3 (or 7...) keys between two draws of one test, and hand it the same key
    /// twice (a forged token then verifies).
    static NEXT_RSA_KEY: Cell<usize> = const { Cell::new(0) };
}

fn parse_rsa_pem(pem: &str) -> Arc<RsaPrivateKey> {
    Arc::new(
        RsaPrivateKey::from_pkcs8_pem(pem).expect("the bundled RSA test keys are valid PKCS#8"),
    )
}

/// A 1024-bit RSA key (RS256), for testing that short RSA keys are refused (RFC 8725 asks
/// for at least 2048 bits).
///
/// ```
/// use mcp_oauth::testing::keys::weak_rsa_1024;
///
/// let key = weak_rsa_1024("weak");
/// assert_eq!(key.public_jwk()["kty"], "RSA");
/// ```
pub fn weak_rsa_1024(kid: impl Into<String>) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: SigningAlgorithm::RS256,
        material: Material::Rsa(Arc::clone(&RSA_1024)),
    }
}

impl SigningKey {
    /// A key for `alg` named `kid`.
    ///
    /// RSA algorithms (`RS*`, `PS*`) take the next key of a pool of four pre-generated
    /// 2048-bit keys, so consecutive RSA keys made on one thread differ (the fifth repeats
    /// the first), whatever other threads (tests running in parallel) generate. EC and
    /// Ed25519 keys are freshly random; `HS256` gets a random 32-byte secret.
    pub fn generate(alg: SigningAlgorithm, kid: impl Into<String>) -> SigningKey {
        let mut rng = rand::thread_rng();
        let material = match alg.family() {
            Family::Rsa => {
                let next = NEXT_RSA_KEY.with(|next| next.replace(next.get().wrapping_add(1)));
                Material::Rsa(Arc::clone(&RSA_POOL[next % RSA_POOL.len()]))
            }
            Family::P256 => Material::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            Family::P384 => Material::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            Family::Ed25519 => {
                let mut seed = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rng, &mut seed);
                Material::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            Family::Hmac => {
                let mut secret = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rng, &mut secret);
                Material::Hmac(Arc::from(&secret[..]))
            }
        };
        SigningKey {
            kid: kid.into(),
            algorithm: alg,
            material,
        }
    }

    /// An `HS256` key with the given secret, e.g. the PEM of an issuer's RSA public key, to
    /// forge the classic algorithm-confusion token.
    ///
    /// ```
    /// use mcp_oauth::testing::{SigningAlgorithm, SigningKey};
    ///
    /// let issuer_key = SigningKey::generate(SigningAlgorithm::RS256, "rsa");
    /// let pem = issuer_key.public_key_pem().unwrap();
    /// let forger = SigningKey::hmac(pem.as_bytes(), "rsa");
    /// assert_eq!(forger.algorithm(), SigningAlgorithm::HS256);
    /// ```
    pub fn hmac(secret: &[u8], kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            algorithm: SigningAlgorithm::HS256,
            material: Material::Hmac(Arc::from(secret)),
        }
    }

    /// The same key material, and `kid`, signing with `alg`: an RSA key may switch between
    /// `RS256`…`PS512`; the other families have a single algorithm each.
    ///
    /// # Panics
    ///
    /// If `alg` needs another kind of key (e.g. `ES256` for an RSA key, `ES384` for a P-256
    /// key). This is a test-only API: a panic is the clearest report of a misuse.
    pub fn with_algorithm(&self, alg: SigningAlgorithm) -> SigningKey {
        assert_eq!(
            alg.family(),
            self.algorithm.family(),
            "SigningKey::with_algorithm: a {} key cannot sign {}",
            self.algorithm.name(),
            alg.name()
        );
        SigningKey {
            algorithm: alg,
            ..self.clone()
        }
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The JWS signature of `message` (RFC 7515 / 7518 encoding: ECDSA as fixed-size `r || s`,
    /// RSA as big-endian bytes as long as the modulus). PSS signatures are randomized; the
    /// others are deterministic.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.material {
            Material::Rsa(key) => sign_rsa(key, self.algorithm, message),
            Material::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Material::P384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Material::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Material::Hmac(secret) => {
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret)
                    .expect("HMAC accepts keys of any length");
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// The public key as a JWK: `kty`, `kid`, `use: "sig"`, `alg` and the key members
    /// (`n`/`e`, `crv`/`x`/`y`, or `crv`/`x`), base64url without padding.
    ///
    /// An `HS256` key gives `{"kty": "oct", "kid", "alg": "HS256", "k"}`: the secret itself,
    /// as a malicious key set would publish it.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_jwk_without_alg();
        jwk["alg"] = Value::from(self.algorithm.name());
        jwk
    }

    /// [`public_jwk`](Self::public_jwk) without `alg`, as Entra ID publishes its keys.
    pub fn public_jwk_without_alg(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let kid = self.kid.as_str();
        match &self.material {
            Material::Rsa(key) => json!({
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "n": b64(&key.n().to_bytes_be()),
                "e": b64(&key.e().to_bytes_be()),
            }),
            Material::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                ec_jwk(kid, "P-256", point.as_bytes())
            }
            Material::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                ec_jwk(kid, "P-384", point.as_bytes())
            }
            Material::Ed25519(key) => json!({
                "kty": "OKP",
                "kid": kid,
                "use": "sig",
                "crv": "Ed25519",
                "x": b64(key.verifying_key().as_bytes()),
            }),
            Material::Hmac(secret) => json!({ "kty": "oct", "kid": kid, "k": b64(secret) }),
        }
    }

    /// The public key as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`) for RSA and EC keys, the
    /// text a confused verifier would use as an HMAC secret; `None` for Ed25519 and HMAC keys.
    pub fn public_key_pem(&self) -> Option<String> {
        match &self.material {
            Material::Rsa(key) => Some(
                key.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("an RSA public key always encodes"),
            ),
            Material::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                Some(spki_pem(P256_SPKI_PREFIX, point.as_bytes()))
            }
            Material::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                Some(spki_pem(P384_SPKI_PREFIX, point.as_bytes()))
            }
            Material::Ed25519(_) | Material::Hmac(_) => None,
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn sign_rsa(key: &RsaPrivateKey, alg: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
    // The typed signing keys own their `RsaPrivateKey`: a clone costs far less than a signature.
    let key = key.clone();
    let mut rng = rand::thread_rng();
    match alg {
        SigningAlgorithm::RS256 => pkcs1v15::SigningKey::<Sha256>::new(key)
            .sign(message)
            .to_vec(),
        SigningAlgorithm::RS384 => pkcs1v15::SigningKey::<Sha384>::new(key)
            .sign(message)
            .to_vec(),
        SigningAlgorithm::RS512 => pkcs1v15::SigningKey::<Sha512>::new(key)
            .sign(message)
            .to_vec(),
        // The PSS salt is as long as the digest (RFC 7518 §3.5).
        SigningAlgorithm::PS256 => pss::SigningKey::<Sha256>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        SigningAlgorithm::PS384 => pss::SigningKey::<Sha384>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        SigningAlgorithm::PS512 => pss::SigningKey::<Sha512>::new(key)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        other => unreachable!("{} is not an RSA algorithm", other.name()),
    }
}

/// An EC JWK from the uncompressed SEC 1 point `0x04 || x || y`.
fn ec_jwk(kid: &str, crv: &str, point: &[u8]) -> Value {
    let (x, y) = point[1..].split_at((point.len() - 1) / 2);
    json!({
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    })
}

/// DER of `SubjectPublicKeyInfo` up to the point, for id-ecPublicKey on prime256v1.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER of `SubjectPublicKeyInfo` up to the point, for id-ecPublicKey on secp384r1.
const P384_SPKI_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// A `PUBLIC KEY` PEM of `prefix || point`, lines of 64 characters, LF endings.
fn spki_pem(prefix: &[u8], point: &[u8]) -> String {
    let der = [prefix, point].concat();
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// Signs `header` and `claims` (serialized exactly as given with `serde_json::to_vec`) and
/// returns the compact JWS `b64(header).b64(claims).b64(sig)`.
///
/// The header is not checked against the key: it may name another `alg` or `kid`, as attack
/// tokens do.
///
/// ```
/// use mcp_oauth::testing::{SigningAlgorithm, SigningKey, compact_jws};
/// use serde_json::json;
///
/// let key = SigningKey::generate(SigningAlgorithm::EdDSA, "ed");
/// let token = compact_jws(&json!({ "alg": "EdDSA" }), &json!({ "sub": "bob" }), &key);
/// assert!(token.starts_with("eyJhbGciOiJFZERTQSJ9."));
/// ```
pub fn compact_jws(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let encode = |value: &Value| {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("a JSON value always serializes"))
    };
    let signing_input = format!("{}.{}", encode(header), encode(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Helpers for the crypto backends' unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::{SigningAlgorithm, SigningKey};
    use crate::crypto::{Algorithm, Curve, PublicKeyMaterial};

    /// The public key of a [`SigningKey`], decoded from its JWK.
    pub(crate) enum PublicKeyBytes {
        Rsa {
            n: Vec<u8>,
            e: Vec<u8>,
        },
        Ec {
            curve: Curve,
            x: Vec<u8>,
            y: Vec<u8>,
        },
        Ed25519 {
            x: Vec<u8>,
        },
    }

    impl PublicKeyBytes {
        /// Decodes the base64url members of `key.public_jwk()`. Panics for HMAC keys.
        pub(crate) fn of(key: &SigningKey) -> Self {
            let jwk = key.public_jwk();
            let member = |name: &str| {
                URL_SAFE_NO_PAD
                    .decode(jwk[name].as_str().expect("a JWK member"))
                    .expect("base64url")
            };
            match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
                (Some("RSA"), _) => PublicKeyBytes::Rsa {
                    n: member("n"),
                    e: member("e"),
                },
                (Some("EC"), Some("P-256")) => PublicKeyBytes::Ec {
                    curve: Curve::P256,
                    x: member("x"),
                    y: member("y"),
                },
                (Some("EC"), Some("P-384")) => PublicKeyBytes::Ec {
                    curve: Curve::P384,
                    x: member("x"),
                    y: member("y"),
                },
                (Some("OKP"), Some("Ed25519")) => PublicKeyBytes::Ed25519 { x: member("x") },
                _ => panic!("no public key in {jwk}"),
            }
        }

        /// The bytes as [`PublicKeyMaterial`].
        pub(crate) fn material(&self) -> PublicKeyMaterial<'_> {
            match self {
                PublicKeyBytes::Rsa { n, e } => PublicKeyMaterial::Rsa { n, e },
                PublicKeyBytes::Ec { curve, x, y } => PublicKeyMaterial::Ec {
                    curve: *curve,
                    x,
                    y,
                },
                PublicKeyBytes::Ed25519 { x } => PublicKeyMaterial::Ed25519 { x },
            }
        }
    }

    /// A key of the same algorithm with other key material. RSA keys rotate through a small
    /// pool shared by concurrently running tests, so two consecutive `generate` calls may
    /// rarely return the same RSA key: draw until they differ.
    pub(crate) fn another_key(key: &SigningKey, kid: &str) -> SigningKey {
        loop {
            let mut other = SigningKey::generate(key.algorithm(), key.kid());
            if other.public_jwk() != key.public_jwk() {
                other.kid = kid.to_owned();
                return other;
            }
        }
    }

    /// The test kit's name for `algorithm`.
    pub(crate) fn signing_algorithm(algorithm: Algorithm) -> SigningAlgorithm {
        match algorithm {
            Algorithm::RS256 => SigningAlgorithm::RS256,
            Algorithm::RS384 => SigningAlgorithm::RS384,
            Algorithm::RS512 => SigningAlgorithm::RS512,
            Algorithm::PS256 => SigningAlgorithm::PS256,
            Algorithm::PS384 => SigningAlgorithm::PS384,
            Algorithm::PS512 => SigningAlgorithm::PS512,
            Algorithm::ES256 => SigningAlgorithm::ES256,
            Algorithm::ES384 => SigningAlgorithm::ES384,
            Algorithm::EdDSA => SigningAlgorithm::EdDSA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{PublicKeyBytes, another_key, signing_algorithm};
    use super::*;
    use crate::crypto::{Algorithm, VerifyingKey};

    const ALL: [SigningAlgorithm; 10] = [
        SigningAlgorithm::RS256,
        SigningAlgorithm::RS384,
        SigningAlgorithm::RS512,
        SigningAlgorithm::PS256,
        SigningAlgorithm::PS384,
        SigningAlgorithm::PS512,
        SigningAlgorithm::ES256,
        SigningAlgorithm::ES384,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::HS256,
    ];

    fn verifying_key(key: &SigningKey) -> VerifyingKey {
        let algorithm = Algorithm::from_name(key.algorithm().name()).unwrap();
        VerifyingKey::new(algorithm, PublicKeyBytes::of(key).material()).unwrap()
    }

    #[test]
    fn names_are_the_jose_names() {
        for alg in ALL {
            assert_eq!(format!("{alg:?}"), alg.name());
        }
        for algorithm in Algorithm::ALL {
            assert_eq!(signing_algorithm(algorithm).name(), algorithm.name());
        }
    }

    #[test]
    fn every_public_jwk_round_trips_through_verifying_key() {
        for algorithm in Algorithm::ALL {
            let key = SigningKey::generate(signing_algorithm(algorithm), "kid-1");
            let jwk = key.public_jwk();
            assert_eq!(jwk["kid"], "kid-1");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], algorithm.name());
            let verifying_key = verifying_key(&key);
            assert_eq!(verifying_key.algorithm(), algorithm);
            assert!(
                verifying_key
                    .verify(b"message", &key.sign(b"message"))
                    .is_ok(),
                "{algorithm}"
            );
            assert!(
                verifying_key
                    .verify(b"messagf", &key.sign(b"message"))
                    .is_err()
            );
        }
    }

    #[test]
    fn compact_jws_tokens_verify() {
        for algorithm in Algorithm::ALL {
            let key = SigningKey::generate(signing_algorithm(algorithm), "k");
            let header = json!({ "alg": algorithm.name(), "kid": "k", "typ": "at+jwt" });
            let claims = json!({ "sub": "alice", "scope": "read write" });
            let token = compact_jws(&header, &claims, &key);
            let (signing_input, signature) = token.rsplit_once('.').unwrap();
            let (encoded_header, encoded_claims) = signing_input.split_once('.').unwrap();
            assert_eq!(
                URL_SAFE_NO_PAD.decode(encoded_header).unwrap(),
                header.to_string().as_bytes()
            );
            assert_eq!(
                URL_SAFE_NO_PAD.decode(encoded_claims).unwrap(),
                claims.to_string().as_bytes()
            );
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let verifying_key = verifying_key(&key);
            assert!(
                verifying_key
                    .verify(signing_input.as_bytes(), &signature)
                    .is_ok(),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn signatures_have_the_jws_sizes() {
        let sizes = [
            (SigningAlgorithm::ES256, 64),
            (SigningAlgorithm::ES384, 96),
            (SigningAlgorithm::EdDSA, 64),
            (SigningAlgorithm::HS256, 32),
            (SigningAlgorithm::RS256, 256),
            (SigningAlgorithm::PS512, 256),
        ];
        for (alg, size) in sizes {
            assert_eq!(
                SigningKey::generate(alg, "k").sign(b"m").len(),
                size,
                "{alg:?}"
            );
        }
    }

    #[test]
    fn consecutive_rsa_keys_differ() {
        // Other tests draw RSA keys concurrently and may advance the shared counter by a
        // multiple of the pool size between the two calls; several tries make that moot.
        let differ = (0..8).any(|_| {
            let first = SigningKey::generate(SigningAlgorithm::RS256, "a");
            let second = SigningKey::generate(SigningAlgorithm::PS256, "b");
            first.public_jwk()["n"] != second.public_jwk()["n"]
        });
        assert!(differ);
        for key in RSA_POOL.iter() {
            assert_eq!(key.n().bits(), 2048);
        }
    }

    #[test]
    fn another_key_has_the_algorithm_but_not_the_material() {
        for alg in ALL {
            let key = SigningKey::generate(alg, "k");
            let other = another_key(&key, "other");
            assert_eq!(other.algorithm(), alg);
            assert_eq!(other.kid(), "other");
            assert_ne!(other.sign(b"m"), key.sign(b"m"), "{alg:?}");
        }
    }

    #[test]
    fn with_algorithm_keeps_the_key_and_kid() {
        let rs256 = SigningKey::generate(SigningAlgorithm::RS256, "k");
        let ps384 = rs256.with_algorithm(SigningAlgorithm::PS384);
        assert_eq!(ps384.kid(), "k");
        assert_eq!(ps384.algorithm(), SigningAlgorithm::PS384);
        assert_eq!(ps384.public_jwk()["alg"], "PS384");
        assert_eq!(
            ps384.public_jwk_without_alg(),
            rs256.public_jwk_without_alg()
        );
        assert!(
            verifying_key(&ps384)
                .verify(b"m", &ps384.sign(b"m"))
                .is_ok()
        );
        assert!(
            verifying_key(&rs256)
                .verify(b"m", &ps384.sign(b"m"))
                .is_err()
        );
    }

    #[test]
    #[should_panic(expected = "cannot sign")]
    fn with_algorithm_of_another_family_panics() {
        let _ = SigningKey::generate(SigningAlgorithm::ES256, "k")
            .with_algorithm(SigningAlgorithm::ES384);
    }

    #[test]
    fn public_jwk_without_alg_has_no_alg() {
        for alg in ALL {
            let key = SigningKey::generate(alg, "k");
            let jwk = key.public_jwk_without_alg();
            assert!(jwk.get("alg").is_none());
            let mut with_alg = key.public_jwk();
            with_alg.as_object_mut().unwrap().remove("alg");
            assert_eq!(with_alg, jwk);
        }
    }

    #[test]
    fn hmac_key_publishes_an_oct_jwk_and_signs_hs256() {
        let key = SigningKey::hmac(b"secret", "h");
        assert_eq!(
            key.public_jwk(),
            json!({ "kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0" })
        );
        // RFC 4231 style check: HMAC-SHA256("secret", "message").
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"message");
        assert_eq!(key.sign(b"message"), mac.finalize().into_bytes().to_vec());
        assert_eq!(key.public_key_pem(), None);
    }

    #[test]
    fn public_key_pem_is_spki() {
        use rsa::pkcs8::DecodePublicKey;

        let rsa = SigningKey::generate(SigningAlgorithm::RS256, "r");
        let pem = rsa.public_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let parsed = rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(parsed.n().to_bytes_be()),
            rsa.public_jwk()["n"]
        );

        for (alg, len) in [
            (SigningAlgorithm::ES256, 91),
            (SigningAlgorithm::ES384, 120),
        ] {
            let key = SigningKey::generate(alg, "e");
            let pem = key.public_key_pem().unwrap();
            let body: String = pem
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            assert!(pem.lines().all(|line| line.len() <= 64));
            let der = STANDARD.decode(body).unwrap();
            assert_eq!(der.len(), len);
            let PublicKeyBytes::Ec { x, y, .. } = PublicKeyBytes::of(&key) else {
                unreachable!()
            };
            assert_eq!(der[der.len() - x.len() - y.len()..], [x, y].concat());
        }
        assert_eq!(
            SigningKey::generate(SigningAlgorithm::EdDSA, "d").public_key_pem(),
            None
        );
    }

    #[test]
    fn weak_rsa_key_is_1024_bits_and_refused() {
        let key = weak_rsa_1024("weak");
        assert_eq!(key.algorithm(), SigningAlgorithm::RS256);
        assert_eq!(key.sign(b"m").len(), 128);
        let error = VerifyingKey::new(Algorithm::RS256, PublicKeyBytes::of(&key).material());
        assert_eq!(error.err(), Some(crate::crypto::KeyError::RsaKeySize));
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = SigningKey::hmac(b"top-secret", "h");
        let debug = format!("{key:?}");
        assert_eq!(debug, r#"SigningKey { kid: "h", algorithm: HS256, .. }"#);
    }
}
