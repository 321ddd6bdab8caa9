//! The harness's keys: fixed key material, so that every run (and every reproducer) signs
//! with the same keys (ECDSA and PSS signatures are randomized; validity is not).
//!
//! Signing goes through aws-lc-rs: its C code is not instrumented, so a signature costs
//! microseconds even in a fuzz build (RustCrypto's instrumented big-number code took 10 to
//! 100 ms). Every signature made is recorded, so the oracle knows who signed what; a token the
//! harness did not sign is verified independently with the RustCrypto crates.

use std::cell::RefCell;
use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Verifier as _;
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Keypair as _;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The two trusted issuers (and none, for keys nobody trusts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    A,
    B,
    Nobody,
}

/// Who signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// Issuer A's Ed25519 key, `kid` "ed".
    EdA,
    /// Issuer A's P-256 key, published without a `kid`.
    EcA,
    /// Issuer A's RSA key (the bundled `rsa-1.pem`), `kid` "rsa", RS256. Slow to sign: rare.
    RsaA,
    /// Issuer B's Ed25519 key: the same `kid` "ed" as A's, other key material.
    EdB,
    /// Issuer B's P-256 key, `kid` "ec-b".
    EcB,
    /// An Ed25519 key nobody trusts, claiming `kid` "ed".
    Untrusted,
    /// HMAC-SHA256 keyed with A's Ed25519 public key: the algorithm-confusion forgery.
    Hmac,
}

impl Signer {
    pub const ALL: [Signer; 7] = [
        Signer::EdA,
        Signer::EcA,
        Signer::RsaA,
        Signer::EdB,
        Signer::EcB,
        Signer::Untrusted,
        Signer::Hmac,
    ];

    /// Byte 0 is A's Ed25519 key (so an empty input signs a valid token); RSA, whose
    /// signatures cost about a millisecond, only for 255.
    pub fn from_byte(byte: u8) -> Signer {
        match byte {
            0..=99 => Signer::EdA,
            100..=139 => Signer::EcA,
            140..=179 => Signer::EdB,
            180..=199 => Signer::EcB,
            200..=229 => Signer::Untrusted,
            230..=254 => Signer::Hmac,
            255 => Signer::RsaA,
        }
    }

    pub fn issuer(self) -> Issuer {
        match self {
            Signer::EdA | Signer::EcA | Signer::RsaA => Issuer::A,
            Signer::EdB | Signer::EcB => Issuer::B,
            Signer::Untrusted | Signer::Hmac => Issuer::Nobody,
        }
    }

    /// The `alg` a correct header names.
    pub fn alg(self) -> &'static str {
        match self {
            Signer::EdA | Signer::EdB | Signer::Untrusted => "EdDSA",
            Signer::EcA | Signer::EcB => "ES256",
            Signer::RsaA => "RS256",
            Signer::Hmac => "HS256",
        }
    }

    /// The `kid` a correct header names (`None`: the key is published without one).
    pub fn kid(self) -> Option<&'static str> {
        match self {
            Signer::EdA | Signer::EdB | Signer::Untrusted => Some("ed"),
            Signer::EcA => None,
            Signer::RsaA | Signer::Hmac => Some("rsa"),
            Signer::EcB => Some("ec-b"),
        }
    }

    /// Signs `message` and records the signature (see [`signed_by`]).
    pub fn sign(self, message: &[u8]) -> Vec<u8> {
        let keys = &*KEYS;
        let ec = |key: &EcdsaKeyPair| {
            key.sign(&keys.rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec()
        };
        let signature = match self {
            Signer::EdA => keys.lc_ed_a.sign(message).as_ref().to_vec(),
            Signer::EdB => keys.lc_ed_b.sign(message).as_ref().to_vec(),
            Signer::Untrusted => keys.lc_ed_x.sign(message).as_ref().to_vec(),
            Signer::EcA => ec(&keys.lc_ec_a),
            Signer::EcB => ec(&keys.lc_ec_b),
            Signer::RsaA => {
                let mut signature = vec![0; keys.lc_rsa_a.public_modulus_len()];
                keys.lc_rsa_a
                    .sign(&RSA_PKCS1_SHA256, &keys.rng, message, &mut signature)
                    .expect("RSA signing");
                signature
            }
            Signer::Hmac => hmac_sha256(keys.ed_a.verifying_key().as_bytes(), message).to_vec(),
        };
        SIGNED.with_borrow_mut(|signed| {
            signed.push((message.to_vec(), signature.clone(), self));
        });
        signature
    }

    /// Independent verification (RustCrypto), for the oracle.
    pub fn verify(self, message: &[u8], signature: &[u8]) -> bool {
        let keys = &*KEYS;
        let ed = |key: &ed25519_dalek::SigningKey| {
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verifying_key().verify(message, &s).is_ok())
        };
        let ec = |key: &p256::ecdsa::SigningKey| {
            p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verifying_key().verify(message, &s).is_ok())
        };
        match self {
            Signer::EdA => ed(&keys.ed_a),
            Signer::EdB => ed(&keys.ed_b),
            Signer::Untrusted => ed(&keys.ed_x),
            Signer::EcA => ec(&keys.ec_a),
            Signer::EcB => ec(&keys.ec_b),
            Signer::RsaA => pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| keys.rsa_a_public.verify(message, &s).is_ok()),
            Signer::Hmac => hmac_sha256(keys.ed_a.verifying_key().as_bytes(), message) == signature,
        }
    }

    /// The public JWK, as the issuer publishes it.
    pub fn jwk(self) -> Value {
        let keys = &*KEYS;
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let okp = |key: &ed25519_dalek::SigningKey, kid: &str| {
            json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                   "x": b64(key.verifying_key().as_bytes())})
        };
        let ec = |key: &p256::ecdsa::SigningKey| {
            let point = key.verifying_key().to_encoded_point(false);
            json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
                   "x": b64(point.x().expect("uncompressed")),
                   "y": b64(point.y().expect("uncompressed"))})
        };
        let mut jwk = match self {
            Signer::EdA => okp(&keys.ed_a, "ed"),
            Signer::EdB => okp(&keys.ed_b, "ed"),
            Signer::Untrusted => okp(&keys.ed_x, "ed"),
            Signer::EcA => ec(&keys.ec_a),
            Signer::EcB => ec(&keys.ec_b),
            Signer::RsaA => {
                let public = keys.rsa_a_public.as_ref();
                json!({"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256",
                       "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())})
            }
            Signer::Hmac => json!({"kty": "oct", "kid": "rsa",
                                   "k": b64(keys.ed_a.verifying_key().as_bytes())}),
        };
        if let Some(kid) = self.kid() {
            jwk["kid"] = Value::from(kid);
        }
        jwk
    }
}

/// The keys each issuer publishes.
pub fn published(issuer: Issuer) -> &'static [Signer] {
    match issuer {
        Issuer::A => &[Signer::EdA, Signer::EcA, Signer::RsaA],
        Issuer::B => &[Signer::EdB, Signer::EcB],
        Issuer::Nobody => &[],
    }
}

/// The JWKS document of `issuer`.
pub fn jwks(issuer: Issuer) -> Vec<u8> {
    let keys: Vec<Value> = published(issuer).iter().map(|s| s.jwk()).collect();
    serde_json::to_vec(&json!({ "keys": keys })).expect("JSON")
}

/// A signature the harness made: message, signature, signer.
type Signed = (Vec<u8>, Vec<u8>, Signer);

thread_local! {
    /// The signatures made since the last [`forget_signatures`].
    static SIGNED: RefCell<Vec<Signed>> = const { RefCell::new(Vec::new()) };
}

/// Who made `signature` over `message`, if the harness did (since [`forget_signatures`]).
pub fn signed_by(message: &[u8], signature: &[u8]) -> Option<Signer> {
    SIGNED.with_borrow(|signed| {
        signed
            .iter()
            .find(|(m, s, _)| m == message && s == signature)
            .map(|(.., signer)| *signer)
    })
}

/// Clears the record of signatures (once per input).
pub fn forget_signatures() {
    SIGNED.with_borrow_mut(Vec::clear);
}

struct Keys {
    rng: SystemRandom,
    lc_ed_a: Ed25519KeyPair,
    lc_ed_b: Ed25519KeyPair,
    lc_ed_x: Ed25519KeyPair,
    lc_ec_a: EcdsaKeyPair,
    lc_ec_b: EcdsaKeyPair,
    lc_rsa_a: RsaKeyPair,
    ed_a: ed25519_dalek::SigningKey,
    ed_b: ed25519_dalek::SigningKey,
    ed_x: ed25519_dalek::SigningKey,
    ec_a: p256::ecdsa::SigningKey,
    ec_b: p256::ecdsa::SigningKey,
    #[allow(dead_code)] // kept beside its public half, for clarity
    rsa_a: pkcs1v15::SigningKey<Sha256>,
    rsa_a_public: pkcs1v15::VerifyingKey<Sha256>,
}

const RSA_PEM: &str = include_str!("../../mcp-oauth/src/testing/keys/rsa-1.pem");

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).expect("the bundled RSA test key");
    let rsa_a = pkcs1v15::SigningKey::<Sha256>::new(rsa);
    let rsa_a_public = rsa_a.verifying_key();
    let ed = |seed: [u8; 32]| {
        let lc = Ed25519KeyPair::from_seed_unchecked(&seed).expect("an Ed25519 seed");
        let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(lc.public_key().as_ref(), dalek.verifying_key().as_bytes());
        (lc, dalek)
    };
    let ec = |scalar: [u8; 32]| {
        let rust = p256::ecdsa::SigningKey::from_slice(&scalar).expect("a valid scalar");
        let point = rust.verifying_key().to_encoded_point(false);
        let lc = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            point.as_bytes(),
        )
        .expect("a P-256 key pair");
        (lc, rust)
    };
    let der: String = RSA_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .expect("PEM body");
    let (lc_ed_a, ed_a) = ed([0xA1; 32]);
    let (lc_ed_b, ed_b) = ed([0xB2; 32]);
    let (lc_ed_x, ed_x) = ed([0x55; 32]);
    let (lc_ec_a, ec_a) = ec([0x1A; 32]);
    let (lc_ec_b, ec_b) = ec([0x2B; 32]);
    Keys {
        rng: SystemRandom::new(),
        lc_ed_a,
        lc_ed_b,
        lc_ed_x,
        lc_ec_a,
        lc_ec_b,
        lc_rsa_a: RsaKeyPair::from_pkcs8(&der).expect("the bundled RSA key as PKCS#8"),
        ed_a,
        ed_b,
        ed_x,
        ec_a,
        ec_b,
        rsa_a,
        rsa_a_public,
    }
});

/// HMAC-SHA256 (RFC 2104), written out so the harness needs no `hmac` crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}
