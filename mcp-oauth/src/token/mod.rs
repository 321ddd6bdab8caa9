//! The bottom layer of validation: the verified token and what every verifier shares.
//!
//! Both verifiers — the JWT verifier ([`validation`](crate::validation)) and the RFC 7662
//! introspection verifier ([`introspection`](crate::introspection)) — stand on this module
//! and on nothing of each other's: the [`VerifiedToken`] they yield, the [`TokenError`] they
//! refuse with, the [`TokenFingerprint`] logs show instead of a token, the claims reader, the
//! time and claim rules (`exp`/`nbf`/`iat` with leeway, required claims, scopes), and the
//! compact-JWS format (whose shape also decides which verifier a token goes to). The public
//! items are re-exported from [`validation`](crate::validation), their public home.

pub(crate) mod claims;
mod error;
mod fingerprint;
mod identity;
pub(crate) mod jws;
mod rules;

pub use error::{Claim, ErrorCode, TokenError};
pub use fingerprint::TokenFingerprint;
pub(crate) use identity::{Identity, Names};
pub use identity::{Verification, VerifiedToken};
pub use rules::{MAX_LEEWAY, RequiredClaims, ScopeClaim, ScopeFormat};
pub(crate) use rules::{check_not_before, is_expired, read_issued_at, read_scopes};
