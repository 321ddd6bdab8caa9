//! The DPoP proof verifier (RFC 9449 §4.3), stateless part. The first input byte picks the
//! mode: even, the rest of the bytes are the proof (lossily UTF-8); odd, they are a header and
//! claims (split at the first `\n`, each parsed as JSON when it can be, else taken as raw
//! bytes), base64url-encoded and signed with the harness's ES256 key, whose public JWK is put
//! in the header when the header names none. A proof is judged for a `POST` to
//! `https://mcp.example.com/mcp` with a fixed access token at `NOW`.
//!
//! Invariants: no panic; an accepted proof has `typ` `dpop+jwt`, a `jwk` with no private
//! member, `htm` `POST`, an `iat` within 300 s of `NOW`, and `ath` the token's hash; and an
//! accepted proof signed by the harness's key has that key's thumbprint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::__fuzz::dpop_proof;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::keys::Signer;

/// The access token the proofs are presented with.
pub const TOKEN: &str = "the-access-token";
/// The verifier's clock.
pub const NOW: u64 = 1_800_000_000;

pub fn run(data: &[u8]) {
    crate::keys::forget_signatures();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let proof = String::from_utf8_lossy(rest);
        if let Ok(thumbprint) = dpop_proof(&proof, TOKEN, NOW) {
            check_accepted(&proof, None, thumbprint);
        }
        return;
    }
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let proof = signed(header, claims);
    if let Ok(thumbprint) = dpop_proof(&proof, TOKEN, NOW) {
        check_accepted(&proof, Some(Signer::EcA), thumbprint);
    }
}

/// `header` and `claims` as a proof signed by the harness's ES256 key (its public JWK added
/// to a JSON header that names none).
pub fn signed(header: &[u8], claims: &[u8]) -> String {
    let signer = Signer::EcA;
    let mut header_bytes = header.to_vec();
    if let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(header)
        && !object.contains_key("jwk")
    {
        let mut jwk = signer.jwk();
        if let Some(jwk) = jwk.as_object_mut() {
            jwk.remove("kid");
            jwk.remove("use");
            jwk.remove("alg");
        }
        object.insert("jwk".into(), jwk);
        header_bytes = serde_json::to_vec(&Value::Object(object)).expect("JSON");
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&header_bytes),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = signer.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn segment(proof: &str, index: usize) -> Value {
    let part = proof.split('.').nth(index).expect("three segments");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn check_accepted(proof: &str, signer: Option<Signer>, thumbprint: [u8; 32]) {
    assert_eq!(proof.split('.').count(), 3, "{proof}");
    let header = segment(proof, 0);
    let claims = segment(proof, 1);
    let typ = header["typ"].as_str().expect("typ").to_ascii_lowercase();
    assert!(
        typ == "dpop+jwt" || typ == "application/dpop+jwt",
        "{header}"
    );
    assert!(header.get("crit").is_none(), "{header}");
    let jwk = header["jwk"].as_object().expect("jwk");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!jwk.contains_key(private), "{header}");
    }
    assert_eq!(claims["htm"], "POST", "{claims}");
    let iat = claims["iat"].as_f64().expect("iat");
    assert!((iat - NOW as f64).abs() <= 301.0, "{claims}");
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(TOKEN.as_bytes()));
    assert_eq!(claims["ath"], Value::from(ath), "{claims}");
    if let Some(signer) = signer {
        let key = signer.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            key["x"], key["y"]
        );
        let expected: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
        assert_eq!(thumbprint, expected, "the harness key's thumbprint");
    }
}
