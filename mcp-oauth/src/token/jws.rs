//! The compact JWS serialization and its protected header, parsed strictly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::json::ObjectView;

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
    let mut decoded = vec![0; decoded_len(segment)?];
    let written = URL_SAFE_NO_PAD
        .decode_slice(segment, &mut decoded)
        .map_err(|_| TokenError::Malformed)?;
    // Exactly sized, so the payload becomes the identity's `Box<[u8]>` without a copy.
    debug_assert_eq!(written, decoded.len());
    decoded.truncate(written);
    Ok(decoded)
}

/// Decodes `segment` into `stack` when it fits, else into `heap`: the header and the
/// signature of a validation cost no allocation (a 512-byte buffer holds any RSA-4096
/// signature; larger ones, like larger headers, take the heap).
pub(crate) fn decode_into<'b, const N: usize>(
    segment: &str,
    stack: &'b mut [u8; N],
    heap: &'b mut Vec<u8>,
) -> Result<&'b [u8], TokenError> {
    let len = decoded_len(segment)?;
    let out: &mut [u8] = if len <= N {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        heap
    };
    let written = URL_SAFE_NO_PAD
        .decode_slice(segment, &mut *out)
        .map_err(|_| TokenError::Malformed)?;
    Ok(&out[..written])
}

/// The length of the bytes an unpadded base64url `segment` encodes; an empty segment, or
/// one whose length no encoding has (4k + 1), is malformed.
fn decoded_len(segment: &str) -> Result<usize, TokenError> {
    let len = segment.len();
    let tail = match len % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return Err(TokenError::Malformed),
    };
    if len == 0 {
        return Err(TokenError::Malformed);
    }
    Ok(len / 4 * 3 + tail)
}

/// Why a JWS header with `crit` is refused: always, one way or the other.
pub(crate) enum Crit {
    /// Not a non-empty array (RFC 7515 §4.1.11).
    Malformed,
    /// It names an extension, and none is understood.
    Unknown,
}

/// RFC 7515 §4.1.11: `crit` is a non-empty array of names; this crate understands no
/// extension, so any entry means the JWS (a token, a DPoP proof) must be refused.
pub(crate) fn crit_verdict(crit: &RawValue) -> Crit {
    match serde_json::from_str::<Vec<&RawValue>>(crit.get()) {
        Ok(names) if !names.is_empty() => Crit::Unknown,
        _ => Crit::Malformed,
    }
}

/// The members of the protected header this validator reads. The header is read like the
/// claims, through [`ObjectView`]: a duplicate member name (even one nobody reads, even
/// spelled with escapes) is a parse error, as RFC 7515 §4 allows, so that no two JOSE parsers
/// can see different headers. Members are typed strictly: `"kid": null` is malformed, not
/// absent. Unknown members are ignored unless listed in `crit`.
pub(crate) struct Header<'a> {
    pub alg: Cow<'a, str>,
    pub typ: Option<Cow<'a, str>>,
    pub kid: Option<Cow<'a, str>>,
}

impl<'a> Header<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Header<'a>, TokenError> {
        // RFC 7515 §5.2: the header is UTF-8 JSON. serde_json skips the bytes of raw values
        // without checking them, so check the whole header first.
        if std::str::from_utf8(bytes).is_err() {
            return Err(TokenError::Malformed);
        }
        let members = ObjectView::parse(bytes).ok_or(TokenError::Malformed)?;
        let string = |name: &str| members.string(name).map_err(|()| TokenError::Malformed);
        // Present in any form, `null` included, these refuse the token.
        if members.get("enc").is_some() || members.get("zip").is_some() {
            return Err(TokenError::Encrypted);
        }
        // RFC 8725 §3.10 / SPEC §5: a token naming where its own key lives is never trusted.
        if ["jku", "x5u", "jwk"]
            .into_iter()
            .any(|name| members.get(name).is_some())
        {
            return Err(TokenError::EmbeddedKeyReference);
        }
        if let Some(crit) = members.get("crit") {
            return Err(match crit_verdict(crit) {
                Crit::Malformed => TokenError::Malformed,
                Crit::Unknown => TokenError::UnknownCriticalHeader,
            });
        }
        if string("cty")?.is_some_and(|cty| cty.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::Nested);
        }
        let alg = string("alg")?.ok_or(TokenError::Malformed)?;
        let typ = string("typ")?;
        let kid = string("kid")?;
        if kid
            .as_deref()
            .is_some_and(|kid| kid.is_empty() || kid.len() > MAX_KID_LEN)
        {
            return Err(TokenError::Malformed);
        }
        Ok(Header { alg, typ, kid })
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
    fn duplicate_members_nobody_reads_are_malformed_too() {
        assert!(Header::parse(br#"{"alg":"EdDSA","x":1}"#).is_ok());
        for header in [
            &br#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed","x":1,"x":2}"#[..],
            br#"{"alg":"EdDSA","":null,"":-1.2e-88}"#,
            br#"{"alg":"EdDSA","x":1,"\u0078":1}"#,
        ] {
            assert_eq!(
                Header::parse(header).err(),
                Some(TokenError::Malformed),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn null_members_are_not_absent() {
        for (header, error) in [
            (&br#"{"alg":"RS256","kid":null}"#[..], TokenError::Malformed),
            (br#"{"alg":"RS256","typ":null}"#, TokenError::Malformed),
            (br#"{"alg":"RS256","cty":null}"#, TokenError::Malformed),
            (br#"{"alg":null}"#, TokenError::Malformed),
            (br#"{"typ":"at+jwt"}"#, TokenError::Malformed),
            (
                br#"{"alg":"RS256","jku":null}"#,
                TokenError::EmbeddedKeyReference,
            ),
            (
                br#"{"alg":"RS256","x5u":null}"#,
                TokenError::EmbeddedKeyReference,
            ),
            (
                br#"{"alg":"RS256","jwk":null}"#,
                TokenError::EmbeddedKeyReference,
            ),
            (br#"{"alg":"RS256","enc":null}"#, TokenError::Encrypted),
            (br#"{"alg":"RS256","zip":null}"#, TokenError::Encrypted),
            (br#"{"alg":"RS256","kid":1}"#, TokenError::Malformed),
            (br#"{"alg":"RS256","crit":"exp"}"#, TokenError::Malformed),
        ] {
            assert_eq!(
                Header::parse(header).err(),
                Some(error),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
        let header = Header::parse(br#"{"alg":"RS256","typ":"at+jwt","kid":"k\u0031"}"#).unwrap();
        assert_eq!(
            (&*header.alg, header.typ.as_deref(), header.kid.as_deref()),
            ("RS256", Some("at+jwt"), Some("k1"))
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
        // Non-zero trailing bits are not canonical.
        assert!(decode("eh").is_err());
        assert!(decode("eyJ").is_err());
        assert!(decode("a").is_err());
    }

    #[test]
    fn segments_decode_alike_on_the_stack_the_heap_and_into_a_vec() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let segment = URL_SAFE_NO_PAD.encode(&bytes);
            let expected = URL_SAFE_NO_PAD.decode(&segment).ok().filter(|_| len > 0);
            assert_eq!(decode(&segment).ok(), expected, "{len}");
            let (mut small, mut big) = ([0; 8], [0; 128]);
            let (mut heap_a, mut heap_b) = (Vec::new(), Vec::new());
            let on_small = decode_into(&segment, &mut small, &mut heap_a)
                .ok()
                .map(<[u8]>::to_vec);
            let on_big = decode_into(&segment, &mut big, &mut heap_b)
                .ok()
                .map(<[u8]>::to_vec);
            assert_eq!(on_small, expected, "{len}");
            assert_eq!(on_big, expected, "{len}");
            // Every corruption refused by the base64 crate is refused here too.
            for bad in [
                format!("{segment}="),
                format!("{segment}*"),
                format!("{segment}A"),
            ] {
                let plain = URL_SAFE_NO_PAD.decode(&bad).ok();
                assert_eq!(
                    decode(&bad).ok(),
                    plain.filter(|_| !bad.is_empty()),
                    "{bad}"
                );
                assert_eq!(
                    decode_into(&bad, &mut [0; 8], &mut Vec::new())
                        .ok()
                        .map(<[u8]>::to_vec),
                    URL_SAFE_NO_PAD.decode(&bad).ok(),
                    "{bad}"
                );
            }
        }
    }
}
