//! The validators under test and the oracle that re-checks every token they accept.
//!
//! Two issuers, each with a static key set: A, strict (the defaults: `typ` must be `at+jwt`,
//! RFC 9068's claims required, 60 s leeway, all algorithms); B, lenient the way Entra-like
//! providers need (any of `at+jwt`/`JWT`/none as `typ` but no ID tokens, only `iss`/`exp`/`aud`
//! required, scopes in `scp` as string or array, client id in `azp` then `appid`, no leeway,
//! EdDSA and ES256 only). B's Ed25519 key has the same `kid` as A's: keys must never cross
//! issuers. Each token is validated by a validator without the token cache and by one with it
//! (cleared before each input): both must give the same answer.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth::challenge::{self, Challenge};
use mcp_oauth::key_set::{KeySet, KeySetOptions};
use mcp_oauth::token_cache::TokenCacheConfig;
use mcp_oauth::validation::{Claim, ErrorCode, ScopeClaim, ScopeFormat, TypPolicy};
use mcp_oauth::{
    IssuerPolicy, ManualClock, ScopeSet, TokenError, Validator, VerifiedToken, crypto::Algorithm,
};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::{has_duplicates, object_names};
use crate::keys::{self, Issuer, Signer};
use crate::ready;

/// The clock's base time (2026-01-01T00:00:00Z); tokens' times are offsets from it.
pub const T0: u64 = 1_767_225_600;
pub const ISSUER_A: &str = "https://as.example.com";
pub const ISSUER_B: &str = "https://login.example.net/tenant-1/v2.0";
/// The resource: both issuers accept it.
pub const AUDIENCE: &str = "https://mcp.example.com/mcp";
/// B also accepts its application id URI.
pub const AUDIENCE_B: &str = "api://fuzz-resource";
/// The latest NumericDate the validator accepts (documented in `validation/claims.rs`).
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Set to `false` once F3 is fixed, so that any regression is caught.
const TOLERATE_F3: bool = false;

/// The header members the validator reads (`validation/jws.rs`).
const HEADER_MEMBERS_READ: [&str; 10] = [
    "alg", "typ", "kid", "cty", "crit", "jku", "x5u", "jwk", "enc", "zip",
];

/// What the oracle knows of a policy: written out again, not read from the library.
pub struct PolicyModel {
    pub issuer: &'static str,
    pub audiences: &'static [&'static str],
    pub algorithms: &'static [&'static str],
    pub strict_typ: bool,
    pub leeway: u64,
    /// sub, client id, iat, jti.
    pub required: [bool; 4],
    pub scope_claim: &'static str,
    pub scope_array_allowed: bool,
    pub scope_string_allowed: bool,
    pub client_id_claims: &'static [&'static str],
    pub keys: Issuer,
}

pub static POLICY_A: PolicyModel = PolicyModel {
    issuer: ISSUER_A,
    audiences: &[AUDIENCE],
    algorithms: &[
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ],
    strict_typ: true,
    leeway: 60,
    required: [true; 4],
    scope_claim: "scope",
    scope_array_allowed: false,
    scope_string_allowed: true,
    client_id_claims: &["client_id"],
    keys: Issuer::A,
};

pub static POLICY_B: PolicyModel = PolicyModel {
    issuer: ISSUER_B,
    audiences: &[AUDIENCE_B, AUDIENCE],
    algorithms: &["EdDSA", "ES256"],
    strict_typ: false,
    leeway: 0,
    required: [false; 4],
    scope_claim: "scp",
    scope_array_allowed: true,
    scope_string_allowed: true,
    client_id_claims: &["azp", "appid"],
    keys: Issuer::B,
};

pub struct Validators {
    pub clock: ManualClock,
    pub plain: Validator,
    pub cached: Validator,
}

pub static VALIDATORS: LazyLock<Validators> = LazyLock::new(|| {
    let key_set = |issuer| {
        KeySet::from_jwks(&keys::jwks(issuer), &KeySetOptions::default()).expect("our JWKS")
    };
    let a = IssuerPolicy::builder(ISSUER_A)
        .audience(AUDIENCE)
        .static_keys(key_set(Issuer::A))
        .build()
        .expect("policy A");
    let b = IssuerPolicy::builder(ISSUER_B)
        .audience(AUDIENCE_B)
        .audience(AUDIENCE)
        .typ(TypPolicy::Lenient)
        .optional_claim(Claim::Subject)
        .optional_claim(Claim::ClientId)
        .optional_claim(Claim::IssuedAt)
        .optional_claim(Claim::JwtId)
        .scope_claim(ScopeClaim::new("scp", ScopeFormat::Either))
        .client_id_claims(["azp", "appid"])
        .leeway(Duration::ZERO)
        .algorithms([Algorithm::EdDSA, Algorithm::ES256])
        .static_keys(key_set(Issuer::B))
        .build()
        .expect("policy B");
    let clock = ManualClock::new(T0);
    let build = |cache: bool| {
        let builder = Validator::builder()
            .issuer(a.clone())
            .issuer(b.clone())
            .clock(std::sync::Arc::new(clock.clone()));
        let builder = if cache {
            builder.token_cache(TokenCacheConfig {
                max_entries: 64,
                ..TokenCacheConfig::default()
            })
        } else {
            builder.without_token_cache()
        };
        builder.build().expect("validator")
    };
    Validators {
        plain: build(false),
        cached: build(true),
        clock: clock.clone(),
    }
});

/// Validates `token` at `now1` then at `now2 >= now1`, with and without the token cache, and
/// checks every answer. Returns whether the uncached validator accepted it at each time.
pub fn validate_everywhere(token: &str, now1: Duration, now2: Duration) -> [bool; 2] {
    assert!(now2 >= now1, "the harness only moves time forward");
    // The clock and the cache are shared: one input at a time (tests run in threads).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let v = &*VALIDATORS;
    v.cached.token_cache().expect("cache on").clear();
    let mut accepted = [false; 2];
    for (i, now) in [now1, now2].into_iter().enumerate() {
        v.clock.set(now);
        let plain = ready(v.plain.validate(token));
        let cached = ready(v.cached.validate(token));
        same_answer(&plain, &cached, now);
        match &plain {
            Ok(verified) => {
                check_accepted(token, now, verified);
                accepted[i] = true;
            }
            Err(error) => check_refusal(error),
        }
    }
    accepted
}

/// The cached validator must answer as the uncached one: time only moves forward, so a cached
/// acceptance can only have become `Expired`, which the cache must notice.
fn same_answer(
    plain: &Result<VerifiedToken, TokenError>,
    cached: &Result<VerifiedToken, TokenError>,
    now: Duration,
) {
    match (plain, cached) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.issuer(), b.issuer());
            assert_eq!(a.subject(), b.subject());
            assert_eq!(a.client_id(), b.client_id());
            assert_eq!(a.scopes(), b.scopes());
            assert_eq!(a.audiences(), b.audiences());
            assert_eq!(a.expires_at(), b.expires_at());
            assert_eq!(a.issued_at(), b.issued_at());
            assert_eq!(a.jwt_id(), b.jwt_id());
            assert_eq!(a.fingerprint(), b.fingerprint());
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "cache on and off refuse for different reasons"),
        (a, b) => panic!(
            "token cache changes the answer at {now:?}: without cache {:?}, with cache {:?}",
            a.as_ref().map(|t| t.expires_at()),
            b.as_ref().map(|t| t.expires_at()),
        ),
    }
}

/// A refusal is a header-safe, fixed text; static keys are never "unavailable".
pub fn check_refusal(error: &TokenError) {
    assert!(
        !matches!(error, TokenError::KeysUnavailable { .. }),
        "a static key set is never unavailable: {error:?}"
    );
    let description = error.description();
    let reason = error.reason();
    for text in [description, reason] {
        assert!(
            !text.is_empty() && text.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{text:?}"
        );
    }
    let code = error.error_code();
    assert_ne!(
        code,
        ErrorCode::TemporarilyUnavailable,
        "nothing is fetched, yet {error:?}"
    );
    let rendered = Challenge::new(AUDIENCE)
        .error(code)
        .description(description)
        .render();
    let params = challenge::parse(&rendered).expect("a refusal's challenge parses");
    assert_eq!(params[0], ("error".to_owned(), code.as_str().to_owned()));
    assert_eq!(
        params[1],
        ("error_description".to_owned(), description.to_owned())
    );
}

fn b64(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|e| panic!("accepted a token with a segment that is not base64url: {e}"))
}

/// An object's members, values still raw JSON: the validator decodes only the members it
/// reads, so a value it ignores may be one `serde_json::Value` cannot hold (a number beyond
/// `f64`), and the oracle must not trip on it either.
type Members = BTreeMap<String, Box<RawValue>>;

/// A member the validator reads, as a JSON value.
fn member(object: &Members, name: &str) -> Option<Value> {
    object.get(name).map(|raw| {
        serde_json::from_str(raw.get())
            .unwrap_or_else(|e| panic!("accepted a token whose {name:?} is {} ({e})", raw.get()))
    })
}

/// A header member read as an optional string: absent is `None`; `null` is no string, so
/// a header holding one is never accepted (finding F4, fixed).
fn optional_str(object: &Members, name: &str) -> Option<String> {
    match member(object, name) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => panic!("accepted a token whose {name:?} is {other}"),
    }
}

/// A claim read as a string: `null` is not a string.
fn string_claim(claims: &Members, name: &str) -> Option<String> {
    member(claims, name).map(|value| match value {
        Value::String(s) => s,
        other => panic!("accepted a token whose {name:?} claim is {other}"),
    })
}

/// RFC 7519 NumericDate as the validator documents it: non-negative, fractions truncated,
/// at most year 9999.
fn numeric_date(claims: &Members, name: &str) -> Option<u64> {
    let value = member(claims, name)?;
    let Value::Number(number) = value else {
        panic!("accepted a token whose {name:?} is {value}");
    };
    let seconds = match (number.as_u64(), number.as_f64()) {
        (Some(s), _) => s,
        (None, Some(f)) if f.is_finite() && f >= 0.0 => f as u64,
        _ => panic!("accepted a token whose {name:?} is {number}"),
    };
    assert!(
        seconds <= MAX_NUMERIC_DATE,
        "accepted {name:?} = {seconds} (after year 9999)"
    );
    Some(seconds)
}

fn audience_matches(configured: &str, presented: &str) -> bool {
    fn split(url: &str) -> Option<(&str, &str, &str)> {
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some((scheme, &rest[..end], &rest[end..]))
    }
    match (split(configured), split(presented)) {
        (Some((s1, a1, r1)), Some((s2, a2, r2))) => {
            s1.eq_ignore_ascii_case(s2) && a1.eq_ignore_ascii_case(a2) && r1 == r2
        }
        _ => configured == presented,
    }
}

/// Re-checks an accepted token from scratch: every rule a token must satisfy, the signature
/// under a key *of its own issuer* bound to the header's algorithm, and the identity's fields.
pub fn check_accepted(token: &str, now: Duration, verified: &VerifiedToken) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a token that is not a 3-part JWS");
    let header_bytes = b64(parts[0]);
    let payload = b64(parts[1]);
    let signature = b64(parts[2]);

    let header_names = object_names(&header_bytes).expect("accepted header is an object");
    // Finding F3 (FUZZING.md): duplicates of header members the validator does not read are
    // accepted (serde's derive only refuses duplicates of declared fields). Tolerated here;
    // duplicates of the members it reads are never accepted.
    let judged: Vec<String> = header_names
        .iter()
        .filter(|name| !TOLERATE_F3 || HEADER_MEMBERS_READ.contains(&name.as_str()))
        .cloned()
        .collect();
    assert!(
        !has_duplicates(&judged),
        "accepted a header with duplicate members: {header_names:?}"
    );
    let claim_names = object_names(&payload).expect("accepted claims are an object");
    assert!(
        !has_duplicates(&claim_names),
        "accepted claims with duplicate members: {claim_names:?}"
    );
    let header: Members = serde_json::from_slice(&header_bytes).expect("header members");
    let claims: Members = serde_json::from_slice(&payload).expect("claim members");

    // The issuer routes to exactly one policy.
    let iss = string_claim(&claims, "iss").expect("accepted a token without iss");
    let iss = iss.as_str();
    let policy = [&POLICY_A, &POLICY_B]
        .into_iter()
        .find(|p| p.issuer == iss)
        .unwrap_or_else(|| panic!("accepted a token of an unknown issuer {iss:?}"));

    // The header.
    let alg = optional_str(&header, "alg").expect("accepted a token without alg");
    let alg = alg.as_str();
    assert!(
        policy.algorithms.contains(&alg),
        "accepted alg {alg:?} for {iss}"
    );
    for member in ["jku", "x5u", "jwk", "enc", "zip", "crit"] {
        // Present in any form, `null` included (finding F4, fixed), these refuse the token.
        assert!(
            !header.contains_key(member),
            "accepted a header with {member:?}: {header:?}"
        );
    }
    if let Some(cty) = optional_str(&header, "cty") {
        assert!(
            !cty.eq_ignore_ascii_case("JWT"),
            "accepted a nested JWT (cty {cty:?})"
        );
    }
    let kid = optional_str(&header, "kid");
    let kid = kid.as_deref();
    if let Some(kid) = kid {
        assert!(
            !kid.is_empty() && kid.len() <= 256,
            "accepted kid of {} bytes",
            kid.len()
        );
    }
    let typ = optional_str(&header, "typ");
    let typ = typ.as_deref();
    let access_token_typ = typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if policy.strict_typ {
        assert!(access_token_typ, "strict policy accepted typ {typ:?}");
    } else if !access_token_typ {
        assert!(
            typ.is_none_or(
                |t| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt")
            ),
            "lenient policy accepted typ {typ:?}"
        );
        for id_token_claim in ["nonce", "at_hash", "c_hash", "s_hash"] {
            assert!(
                !claims.contains_key(id_token_claim),
                "accepted an ID token (has {id_token_claim:?}, typ {typ:?})"
            );
        }
    }

    // The audience, the times, sender constraint.
    let audiences: Vec<String> = match member(&claims, "aud") {
        Some(Value::String(aud)) => vec![aud],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .expect("accepted an aud array with a non-string")
                    .to_owned()
            })
            .collect(),
        other => panic!("accepted aud {other:?}"),
    };
    assert!(
        audiences.iter().any(|presented| policy
            .audiences
            .iter()
            .any(|ours| audience_matches(ours, presented))),
        "accepted audiences {audiences:?} for {iss}"
    );
    let now_secs = now.as_secs();
    let exp = numeric_date(&claims, "exp").expect("accepted a token without exp");
    assert!(
        now_secs < exp.saturating_add(policy.leeway),
        "accepted an expired token: exp {exp}, now {now_secs}, leeway {}",
        policy.leeway
    );
    if let Some(nbf) = numeric_date(&claims, "nbf") {
        assert!(
            now_secs.saturating_add(policy.leeway) >= nbf,
            "accepted a token before nbf {nbf} (now {now_secs})"
        );
    }
    let iat = numeric_date(&claims, "iat");
    if let Some(iat) = iat {
        assert!(
            iat <= now_secs.saturating_add(policy.leeway),
            "accepted a token issued in the future: iat {iat}, now {now_secs}"
        );
    }
    assert!(
        !claims.contains_key("cnf"),
        "accepted a sender-constrained token"
    );

    // Required claims.
    let sub = string_claim(&claims, "sub");
    let jti = string_claim(&claims, "jti");
    let mut client_id = None;
    for name in policy.client_id_claims {
        if let Some(value) = string_claim(&claims, name) {
            client_id = Some(value);
            break;
        }
    }
    let (sub, jti, client_id) = (sub.as_deref(), jti.as_deref(), client_id.as_deref());
    for (required, present, name) in [
        (policy.required[0], sub.is_some(), "sub"),
        (policy.required[1], client_id.is_some(), "client_id"),
        (policy.required[2], iat.is_some(), "iat"),
        (policy.required[3], jti.is_some(), "jti"),
    ] {
        assert!(
            !required || present,
            "accepted a token without required {name}"
        );
    }

    // Scopes.
    let scopes = match member(&claims, policy.scope_claim) {
        None => ScopeSet::new(),
        Some(Value::String(text)) if policy.scope_string_allowed => {
            ScopeSet::from_space_separated(&text)
        }
        Some(Value::Array(items)) if policy.scope_array_allowed => items
            .iter()
            .map(|item| match item.as_str() {
                Some(scope) if !scope.is_empty() && !scope.contains(' ') => scope.to_owned(),
                _ => panic!("accepted scope array member {item}"),
            })
            .collect(),
        Some(other) => panic!("accepted {} = {other}", policy.scope_claim),
    };

    // The signature: by a key of this issuer, bound to the header's alg, chosen by kid (or,
    // without one, the only key of the set bound to that alg).
    let published = keys::published(policy.keys);
    let candidates: Vec<Signer> = match kid {
        Some(kid) => published
            .iter()
            .copied()
            .filter(|k| k.kid() == Some(kid) && k.alg() == alg)
            .collect(),
        None => {
            let for_alg: Vec<Signer> = published
                .iter()
                .copied()
                .filter(|k| k.alg() == alg)
                .collect();
            assert_eq!(
                for_alg.len(),
                1,
                "accepted a token without kid while {} keys of {iss} are bound to {alg}",
                for_alg.len()
            );
            for_alg
        }
    };
    let signing_input = &token.as_bytes()[..parts[0].len() + 1 + parts[1].len()];
    let verified_by_candidate = match keys::signed_by(signing_input, &signature) {
        // The harness made this very signature: no need to verify it again.
        Some(signer) => candidates.contains(&signer),
        None => candidates
            .iter()
            .any(|key| key.verify(signing_input, &signature)),
    };
    assert!(
        verified_by_candidate,
        "accepted a signature that no key of {iss} bound to {alg} (kid {kid:?}) verifies \
         (signed by {:?})",
        keys::signed_by(signing_input, &signature)
    );

    // The identity the application sees.
    assert_eq!(verified.issuer(), iss);
    assert_eq!(verified.subject(), sub);
    assert_eq!(verified.client_id(), client_id);
    assert_eq!(verified.audiences(), audiences.as_slice());
    assert_eq!(verified.expires_at(), exp);
    assert_eq!(verified.issued_at(), iat);
    assert_eq!(verified.jwt_id(), jti);
    assert_eq!(verified.scopes(), &scopes);
    // Every claim reads back through `claim()` as the claims say, whatever the other claims
    // hold (finding F5: a number beyond `f64` elsewhere once hid them all), and one that a
    // `Value` cannot hold is an error for `claim_as()`, not an absence.
    for (name, raw) in &claims {
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => assert_eq!(
                verified.claim(name).as_ref(),
                Some(&value),
                "claim {name:?}"
            ),
            Err(_) => assert!(
                verified.claim_as::<Value>(name).is_err(),
                "claim {name:?} ({}) read as absent",
                raw.get()
            ),
        }
    }
    if !claims.contains_key("\u{0}absent") {
        assert_eq!(verified.claim_as::<Value>("\u{0}absent").ok(), Some(None));
    }
}
