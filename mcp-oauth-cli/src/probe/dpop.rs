//! DPoP (RFC 9449), when the metadata advertises it: what can be checked without a key the
//! server trusts. Proofs are signed by a fresh P-256 key made for the probe, so a correct
//! server refuses every one of these requests; the check is that it does, with a `DPoP`
//! challenge that names the accepted algorithms.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::challenge::Scheme;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{Found, Probe, Reply, param};
use crate::report::Status;

const SPEC: &str = "RFC 9449 §7.1";

/// A key pair for proofs.
struct ProofKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl ProofKey {
    fn new() -> Option<Self> {
        Some(Self {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).ok()?,
            rng: SystemRandom::new(),
        })
    }

    fn jwk(&self) -> Value {
        // The uncompressed point: 0x04 || x || y.
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// A proof for `POST htu` presenting `token`; `tamper` flips its signature.
    fn proof(&self, htu: &str, token: &str, tamper: bool) -> Option<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let claims = json!({
            "jti": format!("mcp-oauth-probe-{}", now.as_nanos()),
            "htm": "POST",
            "htu": htu,
            "iat": now.as_secs(),
            "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .ok()?
            .as_ref()
            .to_vec();
        if tamper {
            signature[10] ^= 0x01;
        }
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Runs the group.
pub async fn run(probe: &mut Probe, found: &Found, token: Option<&str>) {
    let Some(algs) = &found.dpop_algs else {
        probe.push(
            "dpop",
            "DPoP checks",
            Status::Skip,
            "the metadata advertises no dpop_signing_alg_values_supported",
            SPEC,
        );
        return;
    };
    let Some(key) = ProofKey::new() else {
        probe.push(
            "dpop",
            "DPoP checks",
            Status::Skip,
            "cannot generate a P-256 key",
            SPEC,
        );
        return;
    };
    // Without a token, a well-formed one that no issuer signed.
    let forged = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"aud":"{}","sub":"mcp-oauth-probe"}}"#,
            probe.url
        )),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    );
    probe.secret(&forged);
    let token = token.unwrap_or(&forged).to_owned();
    let url = probe.url.clone();
    let cases: [(&str, &str, Option<String>); 3] = [
        (
            "dpop.no_proof",
            "`DPoP` scheme without a proof refused with a `DPoP` challenge naming `algs`",
            None,
        ),
        (
            "dpop.bad_signature",
            "a proof whose signature was altered refused",
            key.proof(&url, &token, true),
        ),
        (
            "dpop.wrong_htu",
            "a proof for another URL (`htu`) refused",
            key.proof("https://other.example/mcp", &token, false),
        ),
    ];
    for (id, title, proof) in cases {
        if id != "dpop.no_proof" && proof.is_none() {
            probe.push(id, title, Status::Skip, "cannot sign a proof", SPEC);
            continue;
        }
        let reply = match send(probe, &token, proof.as_deref()).await {
            Ok(reply) => reply,
            Err(error) => {
                probe.unanswered(id, title, SPEC, &error);
                continue;
            }
        };
        if probe.skipped_for_429(&reply, id, title, SPEC) {
            continue;
        }
        judge(probe, id, title, &reply, algs);
    }

    const UNBOUND: &str = "an unbound token with a valid proof by an unknown key refused";
    if token == forged {
        probe.push(
            "dpop.unbound_token",
            UNBOUND,
            Status::Skip,
            "needs --token (a bearer token: bound to no key)",
            "RFC 9449 §7.1, §6",
        );
        return;
    }
    let Some(proof) = key.proof(&url, &token, false) else {
        return;
    };
    match send(probe, &token, Some(&proof)).await {
        Ok(reply) => {
            if !probe.skipped_for_429(&reply, "dpop.unbound_token", UNBOUND, SPEC) {
                judge(probe, "dpop.unbound_token", UNBOUND, &reply, algs);
            }
        }
        Err(error) => probe.unanswered("dpop.unbound_token", UNBOUND, SPEC, &error),
    }
}

async fn send(probe: &mut Probe, token: &str, proof: Option<&str>) -> Result<Reply, String> {
    let authorization = format!("DPoP {token}");
    match proof {
        Some(proof) => {
            probe
                .initialize_with(&[("authorization", &authorization), ("dpop", proof)])
                .await
        }
        None => {
            probe
                .initialize_with(&[("authorization", &authorization)])
                .await
        }
    }
}

/// Passes a 401 with a `DPoP` challenge carrying `algs`; warns when the challenge has no
/// `algs` (RFC 9449 §7.1 defines the parameter but does not require it).
fn judge(probe: &mut Probe, id: &str, title: &str, reply: &Reply, advertised: &[String]) {
    let challenge = reply.challenge(Scheme::Dpop);
    let algs = challenge
        .as_ref()
        .and_then(|p| param(p, "algs"))
        .filter(|a| !a.trim().is_empty());
    let status = match (reply.status, &challenge, algs) {
        (401, Some(_), Some(_)) => Status::Pass,
        (401, Some(_), None) => Status::Warn,
        _ => Status::Fail,
    };
    let detail = match (reply.status, &challenge, algs) {
        (401, Some(_), Some(algs)) => format!("{} algs=\"{algs}\"", reply.summary()),
        (401, Some(_), None) => format!(
            "{}: refused, but the DPoP challenge names no algs (RFC 9449 §7.1 defines it, \
             without a MUST)",
            reply.summary()
        ),
        (401, None, _) => format!(
            "{}: no DPoP challenge (advertised: {})",
            reply.summary(),
            advertised.join(" ")
        ),
        _ => format!("{}: expected 401", reply.summary()),
    };
    probe.push(id, title, status, detail, SPEC);
}
