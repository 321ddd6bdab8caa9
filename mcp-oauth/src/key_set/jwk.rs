//! One JWK at a time: a malformed key is skipped, never spoils the set.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{KeySetError, KeySetOptions, SkippedKey};
use crate::crypto::{Algorithm, Curve, PublicKeyMaterial, VerifyingKey};

pub(super) struct ParsedKey {
    pub kid: Option<Box<str>>,
    pub key: Arc<VerifyingKey>,
    pub fingerprint: [u8; 32],
}

pub(super) struct ParsedDocument {
    pub keys: Vec<ParsedKey>,
    pub skipped: Vec<SkippedKey>,
}

const MAX_KID_LEN: usize = 256;

pub(super) fn parse_document(
    document: &[u8],
    options: &KeySetOptions,
    previous: Option<&HashMap<[u8; 32], Arc<VerifyingKey>>>,
) -> Result<ParsedDocument, KeySetError> {
    let root: Value = serde_json::from_slice(document).map_err(|_| KeySetError::NotAJwks)?;
    let entries = root
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(KeySetError::NotAJwks)?;
    let mut parsed = ParsedDocument {
        keys: Vec::new(),
        skipped: Vec::new(),
    };
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str);
        let skip = |reason| SkippedKey {
            index,
            kid: kid.map(|k| k.chars().take(64).collect()),
            reason,
        };
        if parsed.keys.len() >= options.max_keys {
            parsed.skipped.push(skip("more keys than the set may hold"));
            continue;
        }
        match parse_key(entry, options, previous) {
            Ok(key) => parsed.keys.push(key),
            Err(reason) => parsed.skipped.push(skip(reason)),
        }
    }
    Ok(parsed)
}

fn parse_key(
    entry: &Value,
    options: &KeySetOptions,
    previous: Option<&HashMap<[u8; 32], Arc<VerifyingKey>>>,
) -> Result<ParsedKey, &'static str> {
    let jwk = entry.as_object().ok_or("not a JSON object")?;
    let kty = string_member(jwk, "kty")?.ok_or("no kty")?;
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => {
            Some(kid.as_str())
        }
        Some(_) => return Err("kid is not a string of 1 to 256 bytes"),
    };
    if let Some(usage) = string_member(jwk, "use")?
        && usage != "sig"
    {
        return Err("use is not sig");
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array().ok_or("key_ops is not an array")?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("key_ops does not allow verify");
        }
    }
    if jwk.contains_key("d") || jwk.contains_key("p") || jwk.contains_key("k") && kty != "oct" {
        return Err("private key material published");
    }
    let declared_alg = match string_member(jwk, "alg")? {
        None => None,
        Some(name) => {
            Some(Algorithm::from_name(name).ok_or("alg is not an accepted asymmetric algorithm")?)
        }
    };

    let (algorithm, fields): (Algorithm, Vec<Vec<u8>>) = match kty {
        "oct" => return Err("symmetric (oct) keys are never accepted from a key set"),
        "RSA" => {
            let alg = declared_alg.unwrap_or(options.rsa_default_algorithm);
            (alg, vec![b64_member(jwk, "n")?, b64_member(jwk, "e")?])
        }
        "EC" => {
            let curve = match string_member(jwk, "crv")?.ok_or("EC key without crv")? {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                _ => return Err("unsupported EC curve"),
            };
            if declared_alg.is_some_and(|alg| alg != curve.algorithm()) {
                return Err("alg does not match the curve");
            }
            let code = [curve as u8];
            (
                curve.algorithm(),
                vec![code.to_vec(), b64_member(jwk, "x")?, b64_member(jwk, "y")?],
            )
        }
        "OKP" => {
            if string_member(jwk, "crv")? != Some("Ed25519") {
                return Err("unsupported OKP curve");
            }
            if declared_alg.is_some_and(|alg| alg != Algorithm::EdDSA) {
                return Err("alg does not match the curve");
            }
            (Algorithm::EdDSA, vec![b64_member(jwk, "x")?])
        }
        _ => return Err("unsupported kty"),
    };
    if !options.algorithms.contains(algorithm) {
        return Err("the key's algorithm is not allowed by the policy");
    }

    let fingerprint = fingerprint(kid, algorithm, &fields);
    if let Some(key) = previous.and_then(|keys| keys.get(&fingerprint)) {
        return Ok(ParsedKey {
            kid: kid.map(Into::into),
            key: key.clone(),
            fingerprint,
        });
    }
    let material = match (kty, fields.as_slice()) {
        ("RSA", [n, e]) => PublicKeyMaterial::Rsa { n, e },
        ("EC", [code, x, y]) => {
            let curve = if code[0] == Curve::P256 as u8 {
                Curve::P256
            } else {
                Curve::P384
            };
            PublicKeyMaterial::Ec { curve, x, y }
        }
        ("OKP", [x]) => PublicKeyMaterial::Ed25519 { x },
        _ => return Err("unsupported kty"),
    };
    let key = VerifyingKey::new(algorithm, material).map_err(|error| match error {
        crate::crypto::KeyError::RsaKeySize => "RSA modulus outside 2048..8192 bits",
        crate::crypto::KeyError::AlgorithmMismatch(_) => "key type does not fit its algorithm",
        crate::crypto::KeyError::Malformed => "malformed public key",
    })?;
    Ok(ParsedKey {
        kid: kid.map(Into::into),
        key: Arc::new(key),
        fingerprint,
    })
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, &'static str> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a member that must be a string is not"),
    }
}

fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let text = string_member(jwk, name)?.ok_or("a required key member is missing")?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "a key member is not base64url")
}

fn fingerprint(kid: Option<&str>, algorithm: Algorithm, fields: &[Vec<u8>]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(kid.unwrap_or_default().as_bytes());
    hash.update([0, algorithm as u8]);
    for field in fields {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field);
    }
    hash.finalize().into()
}
