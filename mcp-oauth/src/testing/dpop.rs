//! A DPoP client for tests: a key pair that signs proofs (RFC 9449 §4), correct by default
//! and breakable in any one respect. Its thumbprint is computed here independently of the
//! verifier's (a sorted `serde_json` map, not the verifier's fixed templates), so a test that
//! binds a token to [`DpopKey::jkt`] checks the verifier's RFC 7638 bytes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::keys::{SigningAlgorithm, SigningKey, compact_jws};

/// A DPoP key pair for tests.
///
/// ```
/// use mcp_oauth::testing::DpopKey;
///
/// let key = DpopKey::es256();
/// let proof = key.proof("POST", "https://mcp.example.com/mcp", Some("the-token"));
/// assert_eq!(proof.split('.').count(), 3);
/// assert_eq!(key.jkt().len(), 43);
/// ```
#[derive(Clone)]
pub struct DpopKey {
    key: SigningKey,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.key.algorithm().name())
            .field("jkt", &self.jkt())
            .finish()
    }
}

static NEXT_JTI: AtomicU64 = AtomicU64::new(1);

impl DpopKey {
    /// A fresh P-256 key (ES256, what every DPoP client supports).
    pub fn es256() -> Self {
        Self::generate(SigningAlgorithm::ES256)
    }

    /// A fresh key for `alg` (HS256 gives a symmetric key, for proofs that must be refused).
    pub fn generate(alg: SigningAlgorithm) -> Self {
        Self {
            key: SigningKey::generate(alg, "dpop"),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public JWK a proof carries: `kty` and the key members only.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk_without_alg();
        if let Some(object) = jwk.as_object_mut() {
            object.remove("kid");
            object.remove("use");
        }
        jwk
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: the `cnf.jkt` of a token
    /// bound to this key.
    pub fn jkt(&self) -> String {
        thumbprint(&self.public_jwk())
    }

    /// The header of a correct proof: `typ`, `alg`, `jwk`.
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.key.algorithm().name(), "jwk": self.public_jwk() })
    }

    /// The claims of a correct proof for `method` and `url`, now, with a unique `jti`, and
    /// `ath` when `access_token` is given.
    pub fn claims(&self, method: &str, url: &str, access_token: Option<&str>) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = json!({
            "jti": format!("jti-{}-{}", NEXT_JTI.fetch_add(1, Ordering::Relaxed), rand_suffix()),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = Value::from(ath(token));
        }
        claims
    }

    /// A correct proof for `method` and `url` (with `ath` for `access_token`).
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        self.sign(&self.header(), &self.claims(method, url, access_token))
    }

    /// Signs any header and claims with this key (to break a proof in one respect).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        compact_jws(header, claims, &self.key)
    }
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: its required members (by `kty`), sorted, as
/// compact JSON, SHA-256, base64url.
pub fn thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str() {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => &["k", "kty"],
    };
    let members: BTreeMap<&str, &Value> =
        required.iter().map(|name| (*name, &jwk[*name])).collect();
    let canonical = serde_json::to_string(&members).expect("a JSON map always serializes");
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn rand_suffix() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
