//! The token path, driven through claim validation: the fuzzer chooses the header, the
//! claims, how they are serialized and encoded, who signs and what becomes of the signature;
//! the harness signs with fixed keys, so tokens that pass every cheap check reach the key
//! lookup and the signature check, and valid ones are accepted.
//!
//! Every choice's first variant (and every zero) is the valid one: the empty input is a valid
//! token of issuer A, and mutations explore the ways away from it.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::json::{Json, write_f64, write_name, write_str};
use crate::keys::{Issuer, Signer};
use crate::oracle::{AUDIENCE, AUDIENCE_B, ISSUER_A, ISSUER_B, T0, validate_everywhere};

pub fn run(data: &[u8]) {
    crate::keys::forget_signatures();
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (token, now1, now2) = input.build();
    validate_everywhere(&token, now1, now2);
}

/// The token an input builds, and the two times it is validated at (for tests and seeds).
pub fn build(data: &[u8]) -> Option<(String, Duration, Duration)> {
    Input::arbitrary_take_rest(Unstructured::new(data))
        .ok()
        .map(|input| input.build())
}

#[derive(Arbitrary, Debug)]
pub enum Input {
    Structured(Box<Spec>),
    /// Header and claims as free text, signed as they are.
    RawJson {
        signer: u8,
        clock: ClockSpec,
        header: String,
        claims: String,
        signature: SigSpec,
    },
}

#[derive(Arbitrary, Debug)]
pub struct Spec {
    pub signer: u8,
    pub clock: ClockSpec,
    pub header: HeaderSpec,
    pub claims: ClaimsSpec,
    pub encoding: EncodingSpec,
    pub signature: SigSpec,
    pub shape: ShapeSpec,
}

/// First validation at `T0 + offset` (+ `nanos`), the second `later` seconds after.
#[derive(Arbitrary, Debug)]
pub struct ClockSpec {
    pub offset: i32,
    pub nanos: u32,
    pub later: u32,
}

#[derive(Arbitrary, Debug)]
pub struct HeaderSpec {
    pub alg: AlgSpec,
    pub typ: TypSpec,
    pub kid: KidSpec,
    pub extras: Vec<Member<HeaderName>>,
    /// Rotates the members: order must not matter.
    pub rotate: u8,
}

#[derive(Arbitrary, Debug)]
pub enum AlgSpec {
    Signer,
    Named(u8),
    Other(String),
    Value(Json),
    Missing,
}

const ALG_NAMES: [&str; 16] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "none", "None", "ES512", "eddsa", "EdDSA ", "Ed25519",
];

#[derive(Arbitrary, Debug)]
pub enum TypSpec {
    AtJwt,
    Missing,
    ApplicationAtJwt,
    AtJwtUpper,
    Jwt,
    ApplicationJwt,
    Null,
    Other(String),
    Value(Json),
}

#[derive(Arbitrary, Debug)]
pub enum KidSpec {
    Signer,
    Missing,
    Named(u8),
    Other(String),
    Long(u16),
    Value(Json),
}

const KID_NAMES: [&str; 6] = ["ed", "rsa", "ec-b", "ec", "", "ED"];

#[derive(Arbitrary, Debug)]
pub struct Member<N> {
    pub name: N,
    pub escape_first: bool,
    pub value: Json,
}

#[derive(Arbitrary, Debug)]
pub enum HeaderName {
    Jku,
    X5u,
    Jwk,
    Crit,
    Cty,
    Enc,
    Zip,
    Alg,
    Typ,
    Kid,
    B64,
    X5c,
    Other(String),
}

impl HeaderName {
    fn text(&self) -> &str {
        match self {
            HeaderName::Jku => "jku",
            HeaderName::X5u => "x5u",
            HeaderName::Jwk => "jwk",
            HeaderName::Crit => "crit",
            HeaderName::Cty => "cty",
            HeaderName::Enc => "enc",
            HeaderName::Zip => "zip",
            HeaderName::Alg => "alg",
            HeaderName::Typ => "typ",
            HeaderName::Kid => "kid",
            HeaderName::B64 => "b64",
            HeaderName::X5c => "x5c",
            HeaderName::Other(name) => name,
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct ClaimsSpec {
    pub iss: IssSpec,
    pub aud: AudSpec,
    pub exp: TimeSpec,
    pub nbf: Option<TimeSpec>,
    pub iat: TimeSpec,
    pub sub: StrSpec,
    pub client_id: StrSpec,
    pub azp: Option<StrSpec>,
    pub appid: Option<StrSpec>,
    pub jti: StrSpec,
    pub scope: ScopeSpec,
    pub scp: Option<ScopeSpec>,
    pub cnf: Option<Json>,
    pub id_token: Option<(u8, Json)>,
    pub extras: Vec<Member<ClaimName>>,
    pub rotate: u8,
}

#[derive(Arbitrary, Debug)]
pub enum IssSpec {
    Signer,
    A,
    B,
    Missing,
    Other(String),
    Value(Json),
    UpperA,
    SlashA,
    PrefixOfA(u8),
}

#[derive(Arbitrary, Debug)]
pub enum AudSpec {
    Ours,
    Missing,
    OfB,
    Array(Vec<AudItem>),
    Other(String),
    Value(Json),
    UpperHost,
    UpperPath,
    TrailingSlash,
    WithQuery,
    EmptyArray,
}

#[derive(Arbitrary, Debug)]
pub enum AudItem {
    Ours,
    OfB,
    Other(String),
    Value(Json),
}

/// A time claim; `Default` is the claim's valid default (exp in an hour, iat 10 s ago).
#[derive(Arbitrary, Debug)]
pub enum TimeSpec {
    Default,
    Offset(i32),
    Absolute(u64),
    Float(f64),
    FractionalOffset(i16, u16),
    Exponent(i16),
    Missing,
    Value(Json),
}

#[derive(Arbitrary, Debug)]
pub enum StrSpec {
    Default,
    Missing,
    Text(String),
    Value(Json),
}

#[derive(Arbitrary, Debug)]
pub enum ScopeSpec {
    Default,
    Missing,
    Text(String),
    Array(Vec<String>),
    Value(Json),
}

#[derive(Arbitrary, Debug)]
pub enum ClaimName {
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
    Sub,
    ClientId,
    Azp,
    Appid,
    Jti,
    Scope,
    Scp,
    Cnf,
    Nonce,
    AtHash,
    Other(String),
}

impl ClaimName {
    fn text(&self) -> &str {
        match self {
            ClaimName::Iss => "iss",
            ClaimName::Aud => "aud",
            ClaimName::Exp => "exp",
            ClaimName::Nbf => "nbf",
            ClaimName::Iat => "iat",
            ClaimName::Sub => "sub",
            ClaimName::ClientId => "client_id",
            ClaimName::Azp => "azp",
            ClaimName::Appid => "appid",
            ClaimName::Jti => "jti",
            ClaimName::Scope => "scope",
            ClaimName::Scp => "scp",
            ClaimName::Cnf => "cnf",
            ClaimName::Nonce => "nonce",
            ClaimName::AtHash => "at_hash",
            ClaimName::Other(name) => name,
        }
    }
}

/// How the header and claims are turned into segments.
#[derive(Arbitrary, Debug)]
pub enum EncodingSpec {
    Canonical,
    /// Whitespace around members and values.
    Spaced,
    /// Base64 with `=` padding.
    Padded,
    /// The standard alphabet (`+`, `/`).
    StandardAlphabet,
    /// A byte-order mark before the JSON.
    Bom,
    /// Trailing bytes after the JSON.
    Trailing(String),
}

#[derive(Arbitrary, Debug)]
pub enum SigSpec {
    Valid,
    Garbage(Vec<u8>),
    Empty,
    FlipBit(u16),
    Truncate(u8),
    Extend(u8),
    /// Signed by another key.
    By(u8),
    /// Valid signature, then one more base64 character (non-canonical length/bits).
    ExtraChar(u8),
    Padded,
}

#[derive(Arbitrary, Debug)]
pub enum ShapeSpec {
    Normal,
    /// Five segments: a JWE's shape.
    Jwe,
    FourSegments,
    Leading(String),
    Trailing(String),
    /// Claims padded to about this many bytes (the size cap is 16 KiB).
    Oversize(u16),
    /// An empty header or payload segment.
    EmptyHeader,
    EmptyPayload,
}

impl Input {
    fn build(&self) -> (String, Duration, Duration) {
        match self {
            Input::Structured(spec) => spec.build(),
            Input::RawJson {
                signer,
                clock,
                header,
                claims,
                signature,
            } => {
                let signer = Signer::from_byte(*signer);
                let signing_input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header),
                    URL_SAFE_NO_PAD.encode(claims)
                );
                let token = sign(signer, signing_input, signature);
                let (now1, now2) = clock.times();
                (token, now1, now2)
            }
        }
    }
}

impl ClockSpec {
    fn times(&self) -> (Duration, Duration) {
        let now1 = Duration::new(
            T0.saturating_add_signed(i64::from(self.offset)),
            self.nanos % 1_000_000_000,
        );
        (now1, now1 + Duration::from_secs(u64::from(self.later)))
    }
}

impl Spec {
    fn build(&self) -> (String, Duration, Duration) {
        let signer = Signer::from_byte(self.signer);
        let spaced = matches!(self.encoding, EncodingSpec::Spaced);
        let header = object(self.header.members(signer), self.header.rotate, spaced);
        let mut claim_members = self.claims.members(signer);
        if let ShapeSpec::Oversize(size) = self.shape {
            let mut filler = String::new();
            write_str(&mut filler, &"x".repeat(usize::from(size)));
            claim_members.push(("\"filler\"".to_owned(), filler));
        }
        let claims = object(claim_members, self.claims.rotate, spaced);
        let encode = |json: &str| -> String {
            match &self.encoding {
                EncodingSpec::Canonical | EncodingSpec::Spaced => URL_SAFE_NO_PAD.encode(json),
                EncodingSpec::Padded => URL_SAFE.encode(json),
                EncodingSpec::StandardAlphabet => STANDARD_NO_PAD.encode(json),
                EncodingSpec::Bom => URL_SAFE_NO_PAD.encode(format!("\u{feff}{json}")),
                EncodingSpec::Trailing(tail) => URL_SAFE_NO_PAD.encode(format!("{json}{tail}")),
            }
        };
        let (header, claims) = match self.shape {
            ShapeSpec::EmptyHeader => (String::new(), encode(&claims)),
            ShapeSpec::EmptyPayload => (encode(&header), String::new()),
            _ => (encode(&header), encode(&claims)),
        };
        let token = sign(signer, format!("{header}.{claims}"), &self.signature);
        let token = match &self.shape {
            ShapeSpec::Jwe => format!("{token}.AAAA.BBBB"),
            ShapeSpec::FourSegments => format!("{token}.AAAA"),
            ShapeSpec::Leading(text) => format!("{text}{token}"),
            ShapeSpec::Trailing(text) => format!("{token}{text}"),
            _ => token,
        };
        let (now1, now2) = self.clock.times();
        (token, now1, now2)
    }
}

/// `signing_input.signature`, the signature as `spec` says.
fn sign(signer: Signer, signing_input: String, spec: &SigSpec) -> String {
    let signature = match spec {
        SigSpec::Valid | SigSpec::ExtraChar(_) | SigSpec::Padded => {
            signer.sign(signing_input.as_bytes())
        }
        SigSpec::Garbage(bytes) => bytes.clone(),
        SigSpec::Empty => Vec::new(),
        SigSpec::FlipBit(bit) => {
            let mut signature = signer.sign(signing_input.as_bytes());
            let len = signature.len() * 8;
            let bit = usize::from(*bit) % len;
            signature[bit / 8] ^= 1 << (bit % 8);
            signature
        }
        SigSpec::Truncate(n) => {
            let mut signature = signer.sign(signing_input.as_bytes());
            signature.truncate(signature.len().saturating_sub(usize::from(*n).max(1)));
            signature
        }
        SigSpec::Extend(byte) => {
            let mut signature = signer.sign(signing_input.as_bytes());
            signature.push(*byte);
            signature
        }
        SigSpec::By(other) => Signer::from_byte(*other).sign(signing_input.as_bytes()),
    };
    let mut encoded = match spec {
        SigSpec::Padded => URL_SAFE.encode(&signature),
        _ => URL_SAFE_NO_PAD.encode(&signature),
    };
    if let SigSpec::ExtraChar(c) = spec {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        encoded.push(char::from(ALPHABET[usize::from(*c) % ALPHABET.len()]));
    }
    format!("{signing_input}.{encoded}")
}

/// `{members}`, rotated, each member already written as `"name"` and a JSON value.
fn object(mut members: Vec<(String, String)>, rotate: u8, spaced: bool) -> String {
    if !members.is_empty() {
        let by = usize::from(rotate) % members.len();
        members.rotate_left(by);
    }
    let (sep, colon, open, close) = if spaced {
        (" ,\n", " : ", "{ ", "\t}")
    } else {
        (",", ":", "{", "}")
    };
    let mut out = String::from(open);
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(name);
        out.push_str(colon);
        out.push_str(value);
    }
    out.push_str(close);
    out
}

fn name(text: &str) -> String {
    let mut out = String::new();
    write_name(&mut out, text, false);
    out
}

fn string(text: &str) -> String {
    let mut out = String::new();
    write_str(&mut out, text);
    out
}

fn extra<N>(member: &Member<N>, text: &str) -> (String, String) {
    let mut name = String::new();
    write_name(&mut name, text, member.escape_first);
    (name, member.value.to_text())
}

impl HeaderSpec {
    fn members(&self, signer: Signer) -> Vec<(String, String)> {
        let mut members = Vec::new();
        let alg = match &self.alg {
            AlgSpec::Signer => Some(string(signer.alg())),
            AlgSpec::Named(i) => Some(string(ALG_NAMES[usize::from(*i) % ALG_NAMES.len()])),
            AlgSpec::Other(text) => Some(string(text)),
            AlgSpec::Value(json) => Some(json.to_text()),
            AlgSpec::Missing => None,
        };
        if let Some(alg) = alg {
            members.push((name("alg"), alg));
        }
        let typ = match &self.typ {
            TypSpec::AtJwt => Some(string("at+jwt")),
            TypSpec::Missing => None,
            TypSpec::ApplicationAtJwt => Some(string("application/at+jwt")),
            TypSpec::AtJwtUpper => Some(string("AT+JWT")),
            TypSpec::Jwt => Some(string("JWT")),
            TypSpec::ApplicationJwt => Some(string("application/jwt")),
            TypSpec::Null => Some("null".to_owned()),
            TypSpec::Other(text) => Some(string(text)),
            TypSpec::Value(json) => Some(json.to_text()),
        };
        if let Some(typ) = typ {
            members.push((name("typ"), typ));
        }
        let kid = match &self.kid {
            KidSpec::Signer => signer.kid().map(string),
            KidSpec::Missing => None,
            KidSpec::Named(i) => Some(string(KID_NAMES[usize::from(*i) % KID_NAMES.len()])),
            KidSpec::Other(text) => Some(string(text)),
            KidSpec::Long(n) => Some(string(&"k".repeat(usize::from(*n) % 1024))),
            KidSpec::Value(json) => Some(json.to_text()),
        };
        if let Some(kid) = kid {
            members.push((name("kid"), kid));
        }
        for member in &self.extras {
            members.push(extra(member, member.name.text()));
        }
        members
    }
}

impl TimeSpec {
    /// The JSON of the claim, `None` when absent.
    fn json(&self, default_offset: i64) -> Option<String> {
        let at = |offset: i64| T0.saturating_add_signed(offset).to_string();
        match self {
            TimeSpec::Default => Some(at(default_offset)),
            TimeSpec::Offset(offset) => Some(at(i64::from(*offset))),
            TimeSpec::Absolute(seconds) => Some(seconds.to_string()),
            TimeSpec::Float(f) => {
                let mut out = String::new();
                write_f64(&mut out, *f);
                Some(out)
            }
            TimeSpec::FractionalOffset(offset, fraction) => {
                Some(format!("{}.{fraction}", at(i64::from(*offset))))
            }
            TimeSpec::Exponent(offset) => {
                // T0 + offset written as a mantissa and an exponent: 1.7672256e9.
                let value = T0.saturating_add_signed(i64::from(*offset));
                Some(format!("{}e-3", u128::from(value) * 1000))
            }
            TimeSpec::Missing => None,
            TimeSpec::Value(json) => Some(json.to_text()),
        }
    }
}

impl StrSpec {
    fn json(&self, default: &str) -> Option<String> {
        match self {
            StrSpec::Default => Some(string(default)),
            StrSpec::Missing => None,
            StrSpec::Text(text) => Some(string(text)),
            StrSpec::Value(json) => Some(json.to_text()),
        }
    }
}

impl ScopeSpec {
    fn json(&self, default: &str) -> Option<String> {
        match self {
            ScopeSpec::Default => Some(string(default)),
            ScopeSpec::Missing => None,
            ScopeSpec::Text(text) => Some(string(text)),
            ScopeSpec::Array(items) => Some(serde_json::to_string(items).expect("JSON")),
            ScopeSpec::Value(json) => Some(json.to_text()),
        }
    }
}

impl ClaimsSpec {
    fn members(&self, signer: Signer) -> Vec<(String, String)> {
        let mut members = Vec::new();
        let mut push = |claim: &str, value: Option<String>| {
            if let Some(value) = value {
                members.push((name(claim), value));
            }
        };
        let own_issuer = match signer.issuer() {
            Issuer::B => ISSUER_B,
            Issuer::A | Issuer::Nobody => ISSUER_A,
        };
        push(
            "iss",
            match &self.iss {
                IssSpec::Signer => Some(string(own_issuer)),
                IssSpec::A => Some(string(ISSUER_A)),
                IssSpec::B => Some(string(ISSUER_B)),
                IssSpec::Missing => None,
                IssSpec::Other(text) => Some(string(text)),
                IssSpec::Value(json) => Some(json.to_text()),
                IssSpec::UpperA => Some(string(&ISSUER_A.to_uppercase())),
                IssSpec::SlashA => Some(string(&format!("{ISSUER_A}/"))),
                IssSpec::PrefixOfA(n) => {
                    Some(string(&ISSUER_A[..usize::from(*n) % ISSUER_A.len()]))
                }
            },
        );
        let aud_item = |item: &AudItem| match item {
            AudItem::Ours => string(AUDIENCE),
            AudItem::OfB => string(AUDIENCE_B),
            AudItem::Other(text) => string(text),
            AudItem::Value(json) => json.to_text(),
        };
        push(
            "aud",
            match &self.aud {
                AudSpec::Ours => Some(string(AUDIENCE)),
                AudSpec::Missing => None,
                AudSpec::OfB => Some(string(AUDIENCE_B)),
                AudSpec::Array(items) => Some(format!(
                    "[{}]",
                    items.iter().map(aud_item).collect::<Vec<_>>().join(",")
                )),
                AudSpec::Other(text) => Some(string(text)),
                AudSpec::Value(json) => Some(json.to_text()),
                AudSpec::UpperHost => Some(string("HTTPS://MCP.EXAMPLE.COM/mcp")),
                AudSpec::UpperPath => Some(string("https://mcp.example.com/MCP")),
                AudSpec::TrailingSlash => Some(string("https://mcp.example.com/mcp/")),
                AudSpec::WithQuery => Some(string("https://mcp.example.com/mcp?x=1")),
                AudSpec::EmptyArray => Some("[]".to_owned()),
            },
        );
        push("exp", self.exp.json(3600));
        push("nbf", self.nbf.as_ref().and_then(|t| t.json(-10)));
        push("iat", self.iat.json(-10));
        push("sub", self.sub.json("user-1"));
        push("client_id", self.client_id.json("client-1"));
        push("azp", self.azp.as_ref().and_then(|s| s.json("client-azp")));
        push(
            "appid",
            self.appid.as_ref().and_then(|s| s.json("client-appid")),
        );
        push("jti", self.jti.json("jti-1"));
        push("scope", self.scope.json("files:read files:write"));
        push("scp", self.scp.as_ref().and_then(|s| s.json("files:read")));
        push("cnf", self.cnf.as_ref().map(Json::to_text));
        if let Some((which, value)) = &self.id_token {
            let claim = ["nonce", "at_hash", "c_hash", "s_hash"][usize::from(*which) % 4];
            push(claim, Some(value.to_text()));
        }
        for member in &self.extras {
            members.push(extra(member, member.name.text()));
        }
        members
    }
}
