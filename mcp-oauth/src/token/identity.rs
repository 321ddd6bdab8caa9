//! The verified identity a valid token yields.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::claims::{self, ClaimsView};
use super::fingerprint::TokenFingerprint;
use crate::json::ObjectView;
use crate::scopes::ScopeSet;

/// How a token was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verification {
    /// A JWT whose signature verified with its issuer's key.
    Signature,
    /// A token the issuer's RFC 7662 introspection endpoint called active.
    Introspection,
}

impl Verification {
    /// A stable snake_case name, for logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verification::Signature => "signature",
            Verification::Introspection => "introspection",
        }
    }
}

/// The identity of a verified access token: who, for which client, with which scopes,
/// until when. Cheap to clone.
///
/// It holds the token's claims (for typed extraction with [`claims`](Self::claims)) — for an
/// introspected token, the members of the introspection response — but never the token
/// itself.
#[derive(Clone)]
pub struct VerifiedToken(Arc<Identity>);

pub(crate) struct Identity {
    /// Issuer, subject, client id, token id and username, in one allocation.
    pub names: Names,
    pub scopes: ScopeSet,
    /// The audiences, read from the payload when first asked for: a validation checks them
    /// without keeping them, and most requests never ask.
    pub audiences: OnceLock<Box<[String]>>,
    pub expires_at: u64,
    pub issued_at: Option<u64>,
    pub verification: Verification,
    pub payload: Box<[u8]>,
    /// The token's full SHA-256: the revocation denylist's key (never the short
    /// fingerprint, whose collisions an attacker could aim at) and the fingerprint's source.
    pub token_hash: [u8; 32],
    /// `cnf.jkt`: the SHA-256 thumbprint of the DPoP key the token is bound to.
    pub dpop_jkt: Option<[u8; 32]>,
    /// [`VerifiedToken::principal_digest`], computed when first asked for: once per verified
    /// token, not once per request (a cache hit hands out the same identity).
    pub principal: OnceLock<Option<[u8; 32]>>,
}

/// The string claims of an identity, concatenated into one allocation instead of one
/// `String` each (a validation built five of them, plus the audiences).
pub(crate) struct Names {
    text: Box<str>,
    /// Where each name ends in `text` (issuer, subject, client id, token id, username), each
    /// starting where the previous one ends; `None` for an absent one.
    ends: [Option<u32>; 5],
}

impl Names {
    const ISSUER: usize = 0;
    const SUBJECT: usize = 1;
    const CLIENT_ID: usize = 2;
    const JWT_ID: usize = 3;
    const USERNAME: usize = 4;

    pub(crate) fn new(
        issuer: &str,
        subject: Option<&str>,
        client_id: Option<&str>,
        jwt_id: Option<&str>,
        username: Option<&str>,
    ) -> Self {
        let names = [Some(issuer), subject, client_id, jwt_id, username];
        let len = names.iter().flatten().map(|name| name.len()).sum();
        let mut text = String::with_capacity(len);
        let ends = names.map(|name| {
            name.map(|name| {
                text.push_str(name);
                // Names come from a token or an introspection response, within the crate's
                // size caps, far below 4 GiB.
                u32::try_from(text.len()).expect("names shorter than 4 GiB")
            })
        });
        Self {
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn get(&self, which: usize) -> Option<&str> {
        let end = self.ends[which]? as usize;
        let start = self.ends[..which].iter().rev().find_map(|end| *end);
        Some(&self.text[start.map_or(0, |start| start as usize)..end])
    }

    fn issuer(&self) -> &str {
        self.get(Self::ISSUER).unwrap_or_default()
    }
}

/// The audiences of a payload, as the validation read them (an absent `aud`: none).
fn audiences_of(payload: &[u8]) -> Box<[String]> {
    ClaimsView::parse(payload)
        .ok()
        .and_then(|claims| claims::audiences(claims.registered.aud).ok().flatten())
        .map(|audiences| audiences.into_iter().map(Cow::into_owned).collect())
        .unwrap_or_default()
}

impl VerifiedToken {
    pub(crate) fn new(identity: Identity) -> Self {
        Self(Arc::new(identity))
    }

    /// The issuer (`iss`): the policy's issuer, or for a template policy the concrete issuer
    /// of the token's tenant (`https://login.microsoftonline.com/{tid}/v2.0`). For an
    /// introspected token, the introspection endpoint's issuer.
    pub fn issuer(&self) -> &str {
        self.0.names.issuer()
    }

    /// The subject (`sub`): the user, or the client for client-credentials tokens.
    /// `None` only when the policy made `sub` optional and the token has none.
    pub fn subject(&self) -> Option<&str> {
        self.0.names.get(Names::SUBJECT)
    }

    /// The OAuth client the token was issued to (`client_id`, or the policy's
    /// configured alternative such as `azp`).
    pub fn client_id(&self) -> Option<&str> {
        self.0.names.get(Names::CLIENT_ID)
    }

    /// Who the token speaks for, as a digest of (issuer, subject, client id), absent and
    /// empty told apart; `None` when the token names neither a subject nor a client (every
    /// such token would be the same principal). What sessions, stream handles and task ids
    /// are bound to (`http::Principal`).
    pub(crate) fn principal_digest(&self) -> Option<[u8; 32]> {
        *self.0.principal.get_or_init(|| {
            if self.subject().is_none() && self.client_id().is_none() {
                return None;
            }
            let mut hash = Sha256::new();
            for part in [Some(self.issuer()), self.subject(), self.client_id()] {
                match part {
                    None => hash.update([0]),
                    Some(part) => {
                        hash.update([1]);
                        hash.update((part.len() as u64).to_be_bytes());
                        hash.update(part.as_bytes());
                    }
                }
            }
            Some(hash.finalize().into())
        })
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// The audiences (`aud`), as presented.
    pub fn audiences(&self) -> &[String] {
        self.0
            .audiences
            .get_or_init(|| audiences_of(&self.0.payload))
    }

    /// Expiry (`exp`) as seconds since the Unix epoch. For an introspected token without
    /// `exp` (accepted only when the introspection is configured with a maximum lifetime),
    /// the end of that lifetime.
    pub fn expires_at(&self) -> u64 {
        self.0.expires_at
    }

    /// Expiry as a duration since the Unix epoch.
    pub fn expires_at_duration(&self) -> Duration {
        Duration::from_secs(self.0.expires_at)
    }

    /// Issue time (`iat`), seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<u64> {
        self.0.issued_at
    }

    /// The token id (`jti`).
    pub fn jwt_id(&self) -> Option<&str> {
        self.0.names.get(Names::JWT_ID)
    }

    /// The resource owner's human-readable name (`username`), when the token carries one;
    /// introspection responses often do (RFC 7662 §2.2).
    pub fn username(&self) -> Option<&str> {
        self.0.names.get(Names::USERNAME)
    }

    /// How the token was verified: a JWT signature or an introspection call.
    pub fn verification(&self) -> Verification {
        self.0.verification
    }

    /// The token's fingerprint, for logs.
    pub fn fingerprint(&self) -> TokenFingerprint {
        TokenFingerprint::from_sha256(&self.0.token_hash)
    }

    /// The full SHA-256 of the token (for revocation by token: see
    /// [`Revocations`](crate::revocation::Revocations)).
    pub(crate) fn token_hash(&self) -> &[u8; 32] {
        &self.0.token_hash
    }

    /// The RFC 7638 SHA-256 thumbprint of the DPoP key the token is bound to (`cnf.jkt`,
    /// RFC 9449 §6), if it is. A bound token is only accepted with a proof by that key
    /// ([`crate::dpop`]).
    pub fn dpop_thumbprint(&self) -> Option<&[u8; 32]> {
        self.0.dpop_jkt.as_ref()
    }

    /// Deserializes the full claims set into `T` (use your own struct for custom claims).
    ///
    /// ```
    /// # use mcp_oauth::validation::VerifiedToken;
    /// #[derive(serde::Deserialize)]
    /// struct TenantClaims { tenant: String }
    ///
    /// fn tenant(token: &VerifiedToken) -> Option<String> {
    ///     token.claims::<TenantClaims>().ok().map(|c| c.tenant)
    /// }
    /// ```
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0.payload)
    }

    /// One claim as a JSON value, if present. Only that member is decoded, so other claims
    /// a `serde_json::Value` cannot hold (a number beyond `f64`'s range) do not hide it.
    /// `None` also when the claim's own value is such a number: use
    /// [`claim_as`](Self::claim_as) to tell an absent claim from an unreadable one.
    ///
    /// ```
    /// # use mcp_oauth::validation::VerifiedToken;
    /// fn tenant(token: &VerifiedToken) -> Option<String> {
    ///     token.claim("tenant")?.as_str().map(str::to_owned)
    /// }
    /// ```
    pub fn claim(&self, name: &str) -> Option<serde_json::Value> {
        self.claim_as(name).ok().flatten()
    }

    /// One claim deserialized into `T`: `Ok(None)` when absent, `Err` when present but not a
    /// `T`. Fail closed on `Err`: a claim that restricts access and cannot be read must not
    /// count as absent.
    ///
    /// ```
    /// # use mcp_oauth::validation::VerifiedToken;
    /// fn tenant(token: &VerifiedToken) -> Result<Option<String>, serde_json::Error> {
    ///     token.claim_as::<String>("tenant")
    /// }
    /// ```
    pub fn claim_as<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, serde_json::Error> {
        // The payload was read this way when the token was verified (an introspected token
        // keeps the response's object), so it parses; an empty one has no claims.
        let Some(members) = ObjectView::parse(&self.0.payload) else {
            return Ok(None);
        };
        members
            .get(name)
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
    }

    /// A token with these scopes, for unit tests of scope checks.
    #[cfg(all(test, any(feature = "rmcp", feature = "layer")))]
    pub(crate) fn for_tests(scopes: &str) -> Self {
        Self::new(Identity {
            names: Names::new(
                "https://as.example.com",
                Some("user"),
                Some("client"),
                None,
                None,
            ),
            scopes: ScopeSet::from_space_separated(scopes),
            audiences: OnceLock::from(Box::from(["https://mcp.example.com/mcp".to_owned()])),
            expires_at: u64::MAX / 2,
            issued_at: None,
            verification: Verification::Signature,
            payload: Box::default(),
            token_hash: [0; 32],
            dpop_jkt: None,
            principal: OnceLock::new(),
        })
    }

    /// A token of this principal, for unit tests of session binding.
    #[cfg(all(test, feature = "layer"))]
    pub(crate) fn for_principal_tests(
        issuer: &str,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Self {
        let mut token = Self::for_tests("");
        let identity = std::sync::Arc::get_mut(&mut token.0).expect("a fresh token");
        identity.names = Names::new(issuer, subject, client_id, None, None);
        identity.principal = OnceLock::new();
        token
    }

    /// Whether both handles come from the same verification: a verified-token cache hit
    /// returns the very identity the first validation produced.
    pub fn is_same_verification(&self, other: &VerifiedToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("issuer", &self.issuer())
            .field("subject", &self.subject())
            .field("client_id", &self.client_id())
            .field("scopes", &self.0.scopes)
            .field("expires_at", &self.0.expires_at)
            .field("verification", &self.0.verification)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_each_claim_and_its_absence() {
        let names = Names::new("https://as", Some(""), None, Some("jti-1"), Some("Zoë"));
        assert_eq!(names.issuer(), "https://as");
        assert_eq!(names.get(Names::SUBJECT), Some(""));
        assert_eq!(names.get(Names::CLIENT_ID), None);
        assert_eq!(names.get(Names::JWT_ID), Some("jti-1"));
        assert_eq!(names.get(Names::USERNAME), Some("Zoë"));
        let none = Names::new("", None, None, None, None);
        assert_eq!(none.issuer(), "");
        assert_eq!(none.get(Names::USERNAME), None);
    }

    #[test]
    fn audiences_are_read_from_the_payload_as_presented() {
        assert_eq!(
            &*audiences_of(br#"{"aud":"https:\/\/a","sub":"x"}"#),
            ["https://a"]
        );
        assert_eq!(&*audiences_of(br#"{"aud":["a","b"]}"#), ["a", "b"]);
        assert!(audiences_of(br#"{"sub":"x"}"#).is_empty());
        assert!(audiences_of(b"").is_empty());
    }
}
