//! The compact JWS serialization and its protected header, parsed strictly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::error::TokenError;

/// A `kid` longer than this is refused: it is untrusted input.
pub(crate) const MAX_KID_LEN: usize = 256;

/// The three parts of a compact JWS, still encoded.
pub(crate) struct Compact<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'a str,
}

pub(crate) fn split(token: &str) -> Result<Compact<'_>, TokenError> {
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(first), Some(second)) = (dots.next(), dots.next()) else {
        return Err(TokenError::Malformed);
    };
    match dots.count() {
        0 => {}
        2 => return Err(TokenError::Encrypted),
        _ => return Err(TokenError::Malformed),
    }
    Ok(Compact {
        header: &token[..first],
        payload: &token[first + 1..second],
        signature: &token[second + 1..],
        signing_input: &token[..second],
    })
}

/// What a bearer token looks like, before anything is verified: which verifier it goes to.
pub(crate) enum TokenShape<'a> {
    /// Not a JOSE object: an opaque token (introspection's, when configured).
    Opaque,
    /// A compact JWS (three segments, the first a base64url JSON object).
    Jws {
        /// The payload segment, still encoded.
        payload: &'a str,
    },
    /// A compact JWE (five segments, the first a base64url JSON object).
    Jwe,
}

/// Classifies `token` cheaply: a segment count and one small base64url-and-JSON check of the
/// header. A token is JWT-shaped when it has three (or five) dot-separated segments and the
/// first decodes to a JSON object; anything else is opaque.
pub(crate) fn shape(token: &str) -> TokenShape<'_> {
    let dots = token.bytes().filter(|&b| b == b'.').count();
    if dots != 2 && dots != 4 {
        return TokenShape::Opaque;
    }
    let mut segments = token.split('.');
    let header = segments.next().unwrap_or_default();
    let is_object = URL_SAFE_NO_PAD.decode(header).is_ok_and(|bytes| {
        bytes.trim_ascii_start().first() == Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
    });
    match (is_object, dots) {
        (false, _) => TokenShape::Opaque,
        (true, 2) => TokenShape::Jws {
            payload: segments.next().unwrap_or_default(),
        },
        (true, _) => TokenShape::Jwe,
    }
}

pub(crate) fn decode(segment: &str) -> Result<Vec<u8>, TokenError> {
    if segment.is_empty() {
        return Err(TokenError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

/// The members of the protected header this validator reads. Duplicate members are a
/// parse error (serde refuses a duplicate field); unknown members are ignored unless
/// listed in `crit`.
#[derive(Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub cty: Option<String>,
    // `deserialize_with` keeps a present `null` distinguishable from an absent member.
    #[serde(default, deserialize_with = "present")]
    pub crit: Option<serde_json::Value>,
    #[serde(default)]
    pub jku: Option<serde_json::Value>,
    #[serde(default)]
    pub x5u: Option<serde_json::Value>,
    #[serde(default)]
    pub jwk: Option<serde_json::Value>,
    #[serde(default)]
    pub enc: Option<serde_json::Value>,
    #[serde(default)]
    pub zip: Option<serde_json::Value>,
}

/// `Some(value)` for any present member, `null` included (plain `Option` maps `null` to
/// `None`, which would let `"crit": null` pass as "no crit").
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

impl Header {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Header, TokenError> {
        // RFC 7515 §5.2: the header is UTF-8 JSON. serde_json skips members it does not read
        // without checking their bytes, so check the whole header first.
        if std::str::from_utf8(bytes).is_err() {
            return Err(TokenError::Malformed);
        }
        let header: Header = serde_json::from_slice(bytes).map_err(|_| TokenError::Malformed)?;
        if header.enc.is_some() || header.zip.is_some() {
            return Err(TokenError::Encrypted);
        }
        // RFC 8725 §3.10 / SPEC §5: a token naming where its own key lives is never trusted.
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() {
            return Err(TokenError::EmbeddedKeyReference);
        }
        // RFC 7515 §4.1.11: `crit` is a non-empty array of names; we understand no
        // extension, so any entry means the token must be refused.
        match &header.crit {
            None => {}
            Some(serde_json::Value::Array(names)) if !names.is_empty() => {
                return Err(TokenError::UnknownCriticalHeader);
            }
            Some(_) => return Err(TokenError::Malformed),
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::Nested);
        }
        if header
            .kid
            .as_deref()
            .is_some_and(|kid| kid.is_empty() || kid.len() > MAX_KID_LEN)
        {
            return Err(TokenError::Malformed);
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        assert!(matches!(
            shape(&format!("{header}.cGF5.c2ln")),
            TokenShape::Jws { payload: "cGF5" }
        ));
        assert!(matches!(
            shape(&format!("{header}.a.b.c.d")),
            TokenShape::Jwe
        ));
        for opaque in [
            "2YotnFZFEjr1zCsicMWpAA",
            "a.b.c",
            "",
            "....",
            &format!("{header}.a"),
            &format!("{}.a.b", URL_SAFE_NO_PAD.encode(b"[1]")),
            &format!("{}.a.b", URL_SAFE_NO_PAD.encode(b"{nope")),
        ] {
            assert!(matches!(shape(opaque), TokenShape::Opaque), "{opaque}");
        }
    }

    #[test]
    fn five_segments_are_a_jwe() {
        assert!(matches!(split("a.b.c.d.e"), Err(TokenError::Encrypted)));
        assert!(matches!(split("a.b"), Err(TokenError::Malformed)));
        assert!(matches!(split("a.b.c.d"), Err(TokenError::Malformed)));
        assert!(split("a.b.c").is_ok());
    }

    #[test]
    fn duplicate_header_members_are_malformed() {
        assert_eq!(
            Header::parse(br#"{"alg":"RS256","alg":"none"}"#).err(),
            Some(TokenError::Malformed)
        );
    }

    #[test]
    fn empty_crit_is_malformed_and_any_entry_is_refused() {
        assert_eq!(
            Header::parse(br#"{"alg":"RS256","crit":null}"#).err(),
            Some(TokenError::Malformed)
        );
        assert_eq!(
            Header::parse(br#"{"alg":"RS256","crit":[]}"#).err(),
            Some(TokenError::Malformed)
        );
        assert_eq!(
            Header::parse(br#"{"alg":"RS256","crit":["exp"],"exp":1}"#).err(),
            Some(TokenError::UnknownCriticalHeader)
        );
    }

    #[test]
    fn padding_and_non_canonical_base64_are_refused() {
        assert!(decode("eyJ9").is_ok());
        assert!(decode("eyJ9=").is_err());
        assert!(decode("eyJ+").is_err());
        assert!(decode("").is_err());
    }
}
