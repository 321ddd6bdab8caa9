//! Differential tests: our signature verification accepts exactly the tokens that
//! `jsonwebtoken::decode` accepts (signature checks only: no `exp`, `aud` or required claims),
//! for every algorithm, on valid tokens and on tokens tampered with in every part.
//!
//! Tokens are minted with the test kit; our side is `mcp_oauth::crypto::VerifyingKey` over the
//! signing input `header.payload` and the base64url-decoded signature. Runs with whichever
//! backend the build selects (aws-lc-rs by default, RustCrypto with `--no-default-features
//! --features rust-crypto`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use mcp_oauth::crypto::{Algorithm, Curve, PublicKeyMaterial, VerifyingKey};
use mcp_oauth::testing::{SigningAlgorithm, SigningKey, compact_jws};
use serde_json::{Value, json};

/// Both verifiers for one public key.
struct Verifiers {
    ours: VerifyingKey,
    theirs: DecodingKey,
    validation: Validation,
}

impl Verifiers {
    /// Both verifiers built from the key's published JWK, bound to the key's algorithm.
    fn for_key(key: &SigningKey) -> Self {
        let jwk = key.public_jwk();
        let algorithm = Algorithm::from_name(key.algorithm().name()).unwrap();
        let ours = our_verifying_key(algorithm, &jwk);
        let theirs = DecodingKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap();
        let mut validation = Validation::new(key.algorithm().name().parse().unwrap());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.validate_nbf = false;
        Verifiers {
            ours,
            theirs,
            validation,
        }
    }

    /// Whether our verifier accepts the signature of `token`.
    fn ours_accepts(&self, token: &str) -> bool {
        let Some((signing_input, signature)) = token.rsplit_once('.') else {
            return false;
        };
        if signing_input.matches('.').count() != 1 {
            return false;
        }
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.ours
            .verify(signing_input.as_bytes(), &signature)
            .is_ok()
    }

    /// Whether `jsonwebtoken::decode` accepts `token`.
    fn theirs_accepts(&self, token: &str) -> bool {
        jsonwebtoken::decode::<Value>(token, &self.theirs, &self.validation).is_ok()
    }

    /// Asserts that both verifiers decide `token` the same way, and that way is `expected`.
    #[track_caller]
    fn assert_agree(&self, token: &str, expected: bool, case: &str) {
        let ours = self.ours_accepts(token);
        let theirs = self.theirs_accepts(token);
        assert_eq!(
            ours, theirs,
            "{case}: we accept: {ours}, jsonwebtoken: {theirs}\n{token}"
        );
        assert_eq!(
            ours, expected,
            "{case}: both verifiers accept: {ours}\n{token}"
        );
    }
}

fn our_verifying_key(algorithm: Algorithm, jwk: &Value) -> VerifyingKey {
    let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    match jwk["kty"].as_str().unwrap() {
        "RSA" => {
            let (n, e) = (member("n"), member("e"));
            VerifyingKey::new(algorithm, PublicKeyMaterial::Rsa { n: &n, e: &e }).unwrap()
        }
        "EC" => {
            let curve = match jwk["crv"].as_str().unwrap() {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                other => panic!("unexpected curve {other}"),
            };
            let (x, y) = (member("x"), member("y"));
            VerifyingKey::new(
                algorithm,
                PublicKeyMaterial::Ec {
                    curve,
                    x: &x,
                    y: &y,
                },
            )
            .unwrap()
        }
        "OKP" => {
            let x = member("x");
            VerifyingKey::new(algorithm, PublicKeyMaterial::Ed25519 { x: &x }).unwrap()
        }
        other => panic!("unexpected kty {other}"),
    }
}

fn header(key: &SigningKey) -> Value {
    json!({ "alg": key.algorithm().name(), "typ": "at+jwt", "kid": key.kid() })
}

fn claims() -> Value {
    json!({
        "iss": "https://issuer.example",
        "sub": "alice",
        "aud": "https://mcp.example/mcp",
        "scope": "calendar.read calendar.write",
        "exp": 4_102_444_800_u64,
    })
}

/// The three base64url parts of a compact JWS.
fn parts(token: &str) -> [String; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    [
        parts[0].to_owned(),
        parts[1].to_owned(),
        parts[2].to_owned(),
    ]
}

/// `token` with part `index` base64url-decoded, changed by `change`, and re-encoded.
fn with_decoded_part(token: &str, index: usize, change: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts = parts(token);
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[index]).unwrap();
    change(&mut bytes);
    parts[index] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// Positions spread over `len` bytes: the first, the last, and about a dozen in between.
fn positions(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 12).max(1);
    (0..len).step_by(step).chain([len - 1])
}

/// Every case for one algorithm: valid tokens accepted, tampered ones refused, by both.
fn check_algorithm(alg: SigningAlgorithm) {
    let key = SigningKey::generate(alg, "key-1");
    // RSA keys rotate through a pool shared with the tests running concurrently: draw until
    // the other key really differs.
    let other_key = std::iter::repeat_with(|| SigningKey::generate(alg, "key-1"))
        .find(|other| other.public_jwk() != key.public_jwk())
        .unwrap();
    let verifiers = Verifiers::for_key(&key);

    let token = compact_jws(&header(&key), &claims(), &key);
    verifiers.assert_agree(&token, true, "valid token");
    let token_2 = compact_jws(&header(&key), &json!({ "sub": "bob", "n": 2 }), &key);
    verifiers.assert_agree(&token_2, true, "another valid token");

    let signature_len = URL_SAFE_NO_PAD.decode(&parts(&token)[2]).unwrap().len();
    for i in positions(signature_len) {
        for bit in [0, 7] {
            let tampered = with_decoded_part(&token, 2, |sig| sig[i] ^= 1 << bit);
            verifiers.assert_agree(&tampered, false, &format!("signature byte {i} bit {bit}"));
        }
    }

    let [encoded_header, encoded_claims, _] = parts(&token);
    for (index, name, len) in [
        (1, "payload", encoded_claims.len()),
        (0, "header", encoded_header.len()),
    ] {
        let decoded_len = URL_SAFE_NO_PAD.decode(&parts(&token)[index]).unwrap().len();
        for i in positions(decoded_len) {
            let tampered = with_decoded_part(&token, index, |bytes| bytes[i] ^= 0x01);
            verifiers.assert_agree(&tampered, false, &format!("{name} byte {i} flipped"));
        }
        // A change in the encoded text itself (another base64url character).
        for i in positions(len) {
            let mut parts = parts(&token);
            let mut text = parts[index].clone().into_bytes();
            text[i] = if text[i] == b'A' { b'B' } else { b'A' };
            parts[index] = String::from_utf8(text).unwrap();
            verifiers.assert_agree(&parts.join("."), false, &format!("{name} character {i}"));
        }
    }

    // Swapped payloads: a valid signature over other claims.
    let [_, _, signature_2] = parts(&token_2);
    let spliced = format!("{encoded_header}.{encoded_claims}.{signature_2}");
    verifiers.assert_agree(&spliced, false, "signature of another token");

    let truncated = with_decoded_part(&token, 2, |sig| {
        sig.pop();
    });
    verifiers.assert_agree(&truncated, false, "signature missing its last byte");
    let halved = with_decoded_part(&token, 2, |sig| sig.truncate(sig.len() / 2));
    verifiers.assert_agree(&halved, false, "half a signature");
    let extended = with_decoded_part(&token, 2, |sig| sig.push(0));
    verifiers.assert_agree(&extended, false, "signature with a trailing zero byte");
    let zero_prefixed = with_decoded_part(&token, 2, |sig| sig.insert(0, 0));
    verifiers.assert_agree(&zero_prefixed, false, "signature with a leading zero byte");
    let empty = with_decoded_part(&token, 2, Vec::clear);
    verifiers.assert_agree(&empty, false, "empty signature");
    let zeros = with_decoded_part(&token, 2, |sig| sig.fill(0));
    verifiers.assert_agree(&zeros, false, "all-zero signature");
    let ones = with_decoded_part(&token, 2, |sig| sig.fill(0xff));
    verifiers.assert_agree(&ones, false, "all-ones signature");

    let by_other_key = compact_jws(&header(&key), &claims(), &other_key);
    verifiers.assert_agree(
        &by_other_key,
        false,
        "signed by another key of the same algorithm",
    );
    let other_verifiers = Verifiers::for_key(&other_key);
    other_verifiers.assert_agree(&by_other_key, true, "valid token of the other key");
}

#[test]
fn rs256_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::RS256);
}

#[test]
fn rs384_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::RS384);
}

#[test]
fn rs512_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::RS512);
}

#[test]
fn ps256_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::PS256);
}

#[test]
fn ps384_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::PS384);
}

#[test]
fn ps512_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::PS512);
}

#[test]
fn es256_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::ES256);
}

#[test]
fn es384_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::ES384);
}

#[test]
fn eddsa_agrees_with_jsonwebtoken() {
    check_algorithm(SigningAlgorithm::EdDSA);
}

/// The same RSA key bound to another algorithm of its family refuses the signature: a
/// PKCS#1 v1.5 signature is not a PSS one, SHA-256 is not SHA-512.
#[test]
fn rsa_signature_under_another_rsa_algorithm_is_refused_by_both() {
    let rs256 = SigningKey::generate(SigningAlgorithm::RS256, "rsa");
    for alg in [
        SigningAlgorithm::RS512,
        SigningAlgorithm::PS256,
        SigningAlgorithm::PS512,
    ] {
        let as_alg = rs256.with_algorithm(alg);
        let verifiers = Verifiers::for_key(&as_alg);
        // The header names the key's algorithm; the signature was made with RS256.
        let signing_input = compact_jws(&header(&as_alg), &claims(), &as_alg);
        let [h, p, _] = parts(&signing_input);
        let signature = rs256.sign(format!("{h}.{p}").as_bytes());
        let token = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(signature));
        verifiers.assert_agree(&token, false, &format!("RS256 signature as {}", alg.name()));
    }
    // And PS256 signatures are not RS256 ones.
    let ps256 = rs256.with_algorithm(SigningAlgorithm::PS256);
    let verifiers = Verifiers::for_key(&rs256);
    let [h, p, _] = parts(&compact_jws(&header(&rs256), &claims(), &rs256));
    let signature = ps256.sign(format!("{h}.{p}").as_bytes());
    let token = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(signature));
    verifiers.assert_agree(&token, false, "PS256 signature as RS256");
}

/// ECDSA signatures are malleable: (r, n - s) verifies whenever (r, s) does. Neither verifier
/// enforces low-S (JWS does not ask for it); what matters is that they agree.
#[test]
fn ecdsa_high_s_twin_is_accepted_by_both() {
    const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
                              581a0db248b0a77aecec196accc52973";
    for (alg, order) in [
        (SigningAlgorithm::ES256, P256_ORDER),
        (SigningAlgorithm::ES384, P384_ORDER),
    ] {
        let order = hex(order);
        let key = SigningKey::generate(alg, "ec");
        let verifiers = Verifiers::for_key(&key);
        let token = compact_jws(&header(&key), &claims(), &key);
        let twin = with_decoded_part(&token, 2, |sig| {
            let half = sig.len() / 2;
            let s = sig[half..].to_vec();
            sig[half..].copy_from_slice(&sub_be(&order, &s));
        });
        assert_ne!(twin, token);
        verifiers.assert_agree(&twin, true, &format!("{alg:?} (r, n - s)"));
        // s = n is out of range for both.
        let s_is_n = with_decoded_part(&token, 2, |sig| {
            let half = sig.len() / 2;
            sig[half..].copy_from_slice(&order);
        });
        verifiers.assert_agree(&s_is_n, false, &format!("{alg:?} s = n"));
        // A DER-encoded signature is not a JWS ECDSA signature.
        let der = with_decoded_part(&token, 2, |sig| {
            let half = sig.len() / 2;
            let (r, s) = (sig[..half].to_vec(), sig[half..].to_vec());
            *sig = der_ecdsa_signature(&r, &s);
        });
        verifiers.assert_agree(&der, false, &format!("{alg:?} DER signature"));
    }
}

/// Ed25519 signatures with S + l (the group order) in place of S are refused by both: S must
/// be canonical (RFC 8032 §5.1.7).
#[test]
fn ed25519_non_canonical_s_is_refused_by_both() {
    // l = 2^252 + 27742317777372353535851937790883648493, as 32 little-endian bytes.
    let l = hex(
        "edd3f55c1a631258d69cf7a2def9de14000000000000000000000000000000\
                 10",
    );
    assert_eq!(l.len(), 32);
    let key = SigningKey::generate(SigningAlgorithm::EdDSA, "ed");
    let verifiers = Verifiers::for_key(&key);
    let token = compact_jws(&header(&key), &claims(), &key);
    let non_canonical = with_decoded_part(&token, 2, |sig| {
        let mut carry = 0u16;
        for (byte, l_byte) in sig[32..].iter_mut().zip(&l) {
            let sum = u16::from(*byte) + u16::from(*l_byte) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
    });
    verifiers.assert_agree(&non_canonical, false, "Ed25519 S + l");
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `a - b` for big-endian numbers of the same length, `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut diff = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(diff < 0);
        if diff < 0 {
            diff += 256;
        }
        out[i] = diff as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (short-form lengths suffice here).
fn der_ecdsa_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let integer = |value: &[u8]| {
        let first = value
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(value.len() - 1);
        let mut value = value[first..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    };
    let body = [integer(r), integer(s)].concat();
    let mut der = vec![0x30];
    if body.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(body.len() as u8);
    der.extend(body);
    der
}
