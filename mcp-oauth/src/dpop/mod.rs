//! DPoP (RFC 9449) on the resource server: sender-constrained access tokens.
//!
//! A DPoP-bound token carries `cnf.jkt`, the RFC 7638 thumbprint of a key its client holds;
//! each request presents it as `Authorization: DPoP <token>` with a `DPoP` header, a proof
//! JWT signed by that key for this request. A stolen token is useless without the key.
//!
//! A resource chooses a [`DpopMode`] (`#[protected_resource(dpop = "allowed")]`, or
//! `MCP_OAUTH_DPOP` at startup); the HTTP layer then runs a [`DpopVerifier`] for each
//! request with the `DPoP` scheme. Every check of RFC 9449 §4.3 and §7.1, in this order:
//!
//! 1. exactly one `DPoP` header, at most [`MAX_PROOF_BYTES`];
//! 2. the proof: a compact JWS whose header has `typ` `dpop+jwt`, no `crit`, an `alg` from
//!    the allow-list (asymmetric only; ES256 always), a public `jwk` (a private member
//!    refuses it); claims `jti`, `htm` (the method), `htu` (the configured resource origin
//!    with the request path as received; query and fragment ignored, scheme and host
//!    case-insensitive, default ports normalised, dot segments never matching), `iat` within the window (±300 s by default), `ath` (the
//!    base64url SHA-256 of the access token); then the signature by the `jwk`;
//! 3. the token, validated as any other (the verified-token cache may answer: the proof above
//!    is checked on every request whatever the cache holds), must be bound: its `cnf.jkt`
//!    equal to the proof key's thumbprint;
//! 4. with [nonces](DpopNonces) on, the proof's `nonce` must be a current one (else
//!    `use_dpop_nonce` with a `DPoP-Nonce` header);
//! 5. the proof's `jti` (with its key) must not have been seen within the window (the
//!    [`ReplayStore`], in memory by default; a store that cannot answer refuses with 503).
//!
//! [`DpopVerifier::verify`] runs all five; the HTTP layer runs 1–4 ([`DpopVerifier::check`]),
//! then the principal's request budget, then 5 ([`DpopVerifier::commit`]), so that a
//! principal over its budget cannot fill the replay store. Proofs are judged on a clock that
//! never runs backwards: a proof the store forgot under a later time cannot pass again.
//!
//! ```
//! use mcp_oauth::dpop::{DpopConfig, DpopMode, DpopVerifier, proof_algorithms};
//! use std::time::Duration;
//!
//! let verifier = DpopVerifier::new(
//!     DpopMode::Required,
//!     proof_algorithms(["ES256", "EdDSA"]).unwrap(),
//!     "https://calendar.example.com/mcp",
//!     DpopConfig::default().iat_window(Duration::from_secs(120)),
//! )
//! .unwrap();
//! assert_eq!(verifier.algs_value(), "ES256 EdDSA");
//! ```

mod htu;
pub(crate) mod mode;
mod nonce;
pub(crate) mod proof;
mod replay;
pub(crate) mod thumbprint;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use mode::{DEFAULT_PROOF_ALGORITHMS, DpopMode, ProofAlgorithmsError, proof_algorithms};
pub use nonce::{DEFAULT_NONCE_LIFETIME, DpopNonces, NoNonceKey};
pub use proof::{MAX_PROOF_BYTES, ProofError};
pub use replay::{
    DEFAULT_REPLAY_CAPACITY, Freshness, InMemoryReplayStore, ReplayFuture, ReplayStore,
    ReplayStoreError,
};

use crate::clock::{Clock, SystemClock};
use crate::crypto::AlgorithmSet;
use crate::validation::{ErrorCode, TokenError, Validator, VerifiedToken};
use htu::ExpectedOrigin;
use proof::ProofRequirements;

/// The request header a DPoP proof travels in (RFC 9449 §4.1), as `http` names it.
#[cfg_attr(not(feature = "layer"), allow(dead_code))]
pub(crate) const HEADER: &str = "dpop";

/// The default `iat` window, either way (MCP SEP-1932 for servers without shared state).
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(300);

/// How proofs are checked beyond what the declaration says (mode, algorithms).
#[derive(Clone)]
pub struct DpopConfig {
    iat_window: Duration,
    replay: Arc<dyn ReplayStore>,
    nonces: Option<Arc<DpopNonces>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopConfig")
            .field("iat_window", &self.iat_window)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl Default for DpopConfig {
    /// ±300 s, an in-memory replay store, no nonces, the system clock.
    fn default() -> Self {
        Self {
            iat_window: DEFAULT_IAT_WINDOW,
            replay: Arc::new(InMemoryReplayStore::default()),
            nonces: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl DpopConfig {
    /// How far a proof's `iat` may be from now, either way (default 300 s; at least 1 s).
    #[must_use]
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window.max(Duration::from_secs(1));
        self
    }

    /// Where proof ids are remembered (default: [`InMemoryReplayStore`]). Replicas of one
    /// deployment share one store, or a proof replayed to another replica passes.
    #[must_use]
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Arc::new(store);
        self
    }

    /// Requires server nonces in proofs (RFC 9449 §9); off by default.
    #[must_use]
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(Arc::new(nonces));
        self
    }

    /// The clock `iat`, nonces and the replay store read (tests inject a
    /// [`ManualClock`](crate::clock::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Why a [`DpopVerifier`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopSetupError {
    /// The mode is [`DpopMode::Disabled`]: there is nothing to verify.
    #[error("DPoP is disabled for this resource")]
    Disabled,
    /// The algorithms are not a valid list.
    #[error(transparent)]
    Algorithms(#[from] ProofAlgorithmsError),
    /// The resource URL is not an absolute http(s) URL (`htu` is compared with it).
    #[error("the resource URL `{0}` is not an absolute http(s) URL")]
    ResourceUrl(String),
}

/// One request as DPoP sees it.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path of the request line (no query): `htu` is the resource's configured origin
    /// with this path.
    pub path: &'a str,
    /// The access token (after `DPoP `).
    pub access_token: &'a str,
    /// The values of every `DPoP` header (exactly one is accepted).
    pub proofs: &'a [&'a str],
}

/// A request whose token and proof passed.
#[derive(Debug, Clone)]
pub struct DpopVerified {
    /// The verified token.
    pub token: VerifiedToken,
    /// The proof key's RFC 7638 thumbprint (the token's `cnf.jkt`).
    pub thumbprint: [u8; 32],
}

impl DpopVerified {
    /// The thumbprint as `cnf.jkt` writes it (base64url).
    pub fn jkt(&self) -> String {
        thumbprint::encode(&self.thumbprint)
    }
}

/// Why a DPoP request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The proof: 401 `invalid_dpop_proof`.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The token itself: as a bearer token's refusal (401 `invalid_token`, or 503).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token has no `cnf.jkt`: presented with the `DPoP` scheme, it must be bound.
    #[error("token not DPoP-bound")]
    NotBound,
    /// The token is bound to another key than the proof's.
    #[error("token bound to another key")]
    KeyMismatch,
    /// Nonces are on and the proof has none: 401 `use_dpop_nonce` (the first step of a
    /// conforming client, not charged to the failed-authentication budget).
    #[error("DPoP nonce required")]
    UseNonce,
    /// Nonces are on and the proof's is forged or expired: 401 `use_dpop_nonce`, charged.
    #[error("DPoP nonce invalid")]
    InvalidNonce,
    /// The replay store could not answer: 503 with `Retry-After`.
    #[error("DPoP replay store unavailable")]
    ReplayStoreUnavailable,
}

impl DpopError {
    /// The error code of the challenge (`invalid_dpop_proof`, `use_dpop_nonce`,
    /// `invalid_token`, or `temporarily_unavailable` for a 503).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DpopError::Proof(_) => ErrorCode::InvalidDpopProof,
            DpopError::Token(error) => error.error_code(),
            DpopError::NotBound | DpopError::KeyMismatch => ErrorCode::InvalidToken,
            DpopError::UseNonce | DpopError::InvalidNonce => ErrorCode::UseDpopNonce,
            DpopError::ReplayStoreUnavailable => ErrorCode::TemporarilyUnavailable,
        }
    }

    /// A fixed `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            DpopError::Proof(error) => error.description(),
            DpopError::Token(error) => error.description(),
            DpopError::NotBound => "The token is not bound to a DPoP key",
            DpopError::KeyMismatch => "The token is bound to another key than the proof's",
            DpopError::UseNonce => "Use the server-provided DPoP nonce",
            DpopError::InvalidNonce => "The DPoP nonce is invalid or expired",
            DpopError::ReplayStoreUnavailable => "DPoP proofs cannot be checked now",
        }
    }

    /// A stable snake_case code for audit logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DpopError::Proof(error) => error.reason(),
            DpopError::Token(error) => error.reason(),
            DpopError::NotBound => "dpop_token_not_bound",
            DpopError::KeyMismatch => "dpop_key_mismatch",
            DpopError::UseNonce => "dpop_nonce_required",
            DpopError::InvalidNonce => "dpop_nonce_invalid",
            DpopError::ReplayStoreUnavailable => "dpop_replay_store_unavailable",
        }
    }

    /// Whether the refusal is charged to the client address's failed-authentication budget:
    /// every refused proof and token is (a forged or stale nonce too), except the challenge
    /// to a proof without a nonce (the normal first step of a conforming client) and what is
    /// the server's fault.
    pub fn counts_as_failed_authentication(&self) -> bool {
        match self {
            DpopError::Token(error) => error.counts_as_failed_authentication(),
            DpopError::UseNonce | DpopError::ReplayStoreUnavailable => false,
            _ => true,
        }
    }
}

/// Verifies the DPoP requests of one resource; see the module docs for the checks.
pub struct DpopVerifier {
    mode: DpopMode,
    algorithms: AlgorithmSet,
    algs_value: String,
    origin: ExpectedOrigin,
    config: DpopConfig,
    keys: proof::ProofKeyCache,
    /// The latest clock reading seen: time never runs backwards for the `iat` window and the
    /// replay store, so a clock stepped back cannot reopen a proof the store has forgotten.
    latest: AtomicU64,
    /// The latest time a clock step back was reported for (once each).
    warned_at: AtomicU64,
}

/// A request whose proof and token passed every check but the replay: the layer applies the
/// per-principal limit before [`DpopVerifier::commit`] remembers the proof, so a principal
/// over its budget cannot fill the replay store.
#[derive(Debug)]
pub struct PendingProof {
    verified: DpopVerified,
    replay_key: [u8; 32],
    expires_at: u64,
    now: u64,
}

impl PendingProof {
    /// The verified token and thumbprint, before the replay check.
    pub fn verified(&self) -> &DpopVerified {
        &self.verified
    }
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("mode", &self.mode)
            .field("algorithms", &self.algs_value)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DpopVerifier {
    /// A verifier for the resource at `resource_url` (its configured external URL).
    pub fn new(
        mode: DpopMode,
        algorithms: AlgorithmSet,
        resource_url: &str,
        config: DpopConfig,
    ) -> Result<Self, DpopSetupError> {
        if !mode.is_enabled() {
            return Err(DpopSetupError::Disabled);
        }
        let names: Vec<&str> = algorithms.iter().map(|alg| alg.name()).collect();
        proof_algorithms(names.iter().copied())?;
        let origin = ExpectedOrigin::of(resource_url)
            .ok_or_else(|| DpopSetupError::ResourceUrl(resource_url.to_owned()))?;
        Ok(Self {
            mode,
            algorithms,
            algs_value: names.join(" "),
            origin,
            config,
            keys: proof::ProofKeyCache::new(proof::PROOF_KEY_CACHE_CAPACITY),
            latest: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
        })
    }

    /// Now, in Unix seconds, never earlier than a reading already seen.
    fn now(&self) -> u64 {
        let now = self.config.clock.now().as_secs();
        let latest = self.latest.fetch_max(now, Ordering::Relaxed).max(now);
        if latest > now.saturating_add(self.config.iat_window.as_secs())
            && self.warned_at.swap(latest, Ordering::Relaxed) != latest
        {
            // Fail closed: a proof the replay store forgot under the later time must not pass
            // again. Proofs are judged by the later time until the clock catches up.
            tracing::warn!(
                target: "mcp_oauth::dpop",
                behind_secs = latest - now,
                "the clock went back by more than the DPoP iat window; proofs are judged by the latest time seen"
            );
        }
        latest
    }

    /// The mode (`Allowed` or `Required`).
    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// The accepted proof algorithms.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// The accepted algorithms, space-separated, as a challenge's `algs` names them.
    pub fn algs_value(&self) -> &str {
        &self.algs_value
    }

    /// The nonce to send in a `DPoP-Nonce` header now, when nonces are on.
    pub fn current_nonce(&self) -> Option<String> {
        // The clock the nonces are checked against (never behind what was seen).
        let now = self.now();
        self.config.nonces.as_ref().map(|nonces| nonces.issue(now))
    }

    /// Checks a request presented with the `DPoP` scheme: the proof, then the token (with
    /// `validator`, whose cache may answer), its binding, the nonce, the replay.
    pub async fn verify(
        &self,
        validator: &Validator,
        request: DpopRequest<'_>,
    ) -> Result<DpopVerified, DpopError> {
        let pending = self.check(validator, request).await?;
        self.commit(pending).await
    }

    /// Every check of [`verify`](Self::verify) but the replay.
    pub async fn check(
        &self,
        validator: &Validator,
        request: DpopRequest<'_>,
    ) -> Result<PendingProof, DpopError> {
        let proof = match request.proofs {
            [] => return Err(ProofError::Missing.into()),
            [one] => *one,
            _ => return Err(ProofError::Multiple.into()),
        };
        let now = self.now();
        let iat_window = self.config.iat_window.as_secs();
        let htu_matches = |htu: &str| self.origin.matches(htu, request.path);
        let verified = proof::verify(
            proof,
            &ProofRequirements {
                algorithms: self.algorithms,
                method: request.method,
                htu_matches: &htu_matches,
                now,
                iat_window,
                access_token: Some(request.access_token),
                keys: Some(&self.keys),
            },
        )?;
        let token = validator.validate_dpop_bound(request.access_token).await?;
        match token.dpop_thumbprint() {
            None => return Err(DpopError::NotBound),
            Some(jkt) if *jkt != verified.thumbprint => return Err(DpopError::KeyMismatch),
            Some(_) => {}
        }
        if let Some(nonces) = &self.config.nonces {
            match verified.nonce.as_deref() {
                None => return Err(DpopError::UseNonce),
                Some(nonce) if !nonces.check(nonce, now) => return Err(DpopError::InvalidNonce),
                Some(_) => {}
            }
        }
        Ok(PendingProof {
            replay_key: verified.replay_key(),
            expires_at: verified.remember_until(iat_window),
            verified: DpopVerified {
                token,
                thumbprint: verified.thumbprint,
            },
            now,
        })
    }

    /// The replay check of a [`check`](Self::check)ed proof: remembers its `jti` (under its
    /// key) until it leaves the window; a proof seen before is refused.
    pub async fn commit(&self, pending: PendingProof) -> Result<DpopVerified, DpopError> {
        match self
            .config
            .replay
            .remember(pending.replay_key, pending.expires_at, pending.now)
            .await
        {
            Ok(Freshness::Fresh) => Ok(pending.verified),
            Ok(Freshness::Replayed) => Err(ProofError::Replayed.into()),
            Err(error) => {
                tracing::warn!(target: "mcp_oauth::dpop", %error, "DPoP proof refused: the replay store cannot answer");
                Err(DpopError::ReplayStoreUnavailable)
            }
        }
    }
}
