//! Binding MCP sessions to the principal that created them.
//!
//! Where rmcp keeps sessions (protocol versions before 2026-07-28), a session id is not a
//! credential: each `Mcp-Session-Id` is bound to the (issuer, subject, client id) whose token
//! created it, and another principal presenting it is refused. The table sits behind
//! [`SessionBindings`] so a shared store can back it when several replicas serve one endpoint.

use std::sync::Arc;

use crate::crypto::sha256;
use crate::store::StoreFuture;
use crate::validation::VerifiedToken;

/// Who a session belongs to: a digest of issuer, subject and client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal([u8; 32]);

impl Principal {
    /// The principal of a verified token; `None` when the token names neither a subject nor
    /// a client (such a token cannot own a session: every one of them would be the same
    /// principal).
    pub fn of(token: &VerifiedToken) -> Option<Self> {
        token.principal_digest().map(Self)
    }

    /// The digest, for stores that serialize it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A principal read back from [`as_bytes`](Self::as_bytes) (a shared store's copy).
    pub fn from_bytes(digest: [u8; 32]) -> Self {
        Self(digest)
    }
}

/// What the table says about a presented session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Bound to this principal.
    Owner,
    /// Bound to another principal.
    OtherPrincipal,
    /// Not in the table (never created here, ended, or evicted): refused, fail closed.
    Unknown,
    /// The table cannot be read now (a shared store is unreachable): 503 with
    /// `Retry-After`, fail closed, not charged to the client.
    Unavailable,
}

/// Where session bindings live. Implement it over a shared store for several replicas
/// ([`crate::redis`] has one); asynchronous, because a shared store answers over the network.
pub trait SessionBindings: Send + Sync + 'static {
    /// Records that `principal` created `session_id`.
    fn bind<'a>(&'a self, session_id: &'a str, principal: Principal) -> StoreFuture<'a, ()>;
    /// Looks `session_id` up for `principal`.
    fn check<'a>(
        &'a self,
        session_id: &'a str,
        principal: Principal,
    ) -> StoreFuture<'a, SessionCheck>;
    /// Forgets `session_id` (the session was deleted).
    fn unbind<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, ()>;
}

/// An in-memory, bounded binding table (default 100,000 sessions; the least recently used
/// are evicted, and an evicted session is refused as unknown).
pub struct InMemorySessionBindings {
    table: quick_cache::sync::Cache<[u8; 32], Principal>,
}

impl std::fmt::Debug for InMemorySessionBindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemorySessionBindings")
            .field("sessions", &self.table.len())
            .finish()
    }
}

impl InMemorySessionBindings {
    /// A table of at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            table: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    fn key(session_id: &str) -> [u8; 32] {
        sha256(session_id.as_bytes())
    }
}

impl Default for InMemorySessionBindings {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl InMemorySessionBindings {
    /// The owner check, synchronously.
    pub fn check_now(&self, session_id: &str, principal: Principal) -> SessionCheck {
        match self.table.get(&Self::key(session_id)) {
            Some(owner) if owner == principal => SessionCheck::Owner,
            Some(_) => SessionCheck::OtherPrincipal,
            None => SessionCheck::Unknown,
        }
    }
}

impl SessionBindings for InMemorySessionBindings {
    fn bind<'a>(&'a self, session_id: &'a str, principal: Principal) -> StoreFuture<'a, ()> {
        self.table.insert(Self::key(session_id), principal);
        Box::pin(std::future::ready(()))
    }

    fn check<'a>(
        &'a self,
        session_id: &'a str,
        principal: Principal,
    ) -> StoreFuture<'a, SessionCheck> {
        Box::pin(std::future::ready(self.check_now(session_id, principal)))
    }

    fn unbind<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, ()> {
        self.table.remove(&Self::key(session_id));
        Box::pin(std::future::ready(()))
    }
}

impl<T: SessionBindings + ?Sized> SessionBindings for Arc<T> {
    fn bind<'a>(&'a self, session_id: &'a str, principal: Principal) -> StoreFuture<'a, ()> {
        (**self).bind(session_id, principal)
    }
    fn check<'a>(
        &'a self,
        session_id: &'a str,
        principal: Principal,
    ) -> StoreFuture<'a, SessionCheck> {
        (**self).check(session_id, principal)
    }
    fn unbind<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, ()> {
        (**self).unbind(session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_empty_claims_are_different_principals() {
        let with = |sub: Option<&str>, client: Option<&str>| {
            let token = VerifiedToken::for_principal_tests("https://as.example.com", sub, client);
            Principal::of(&token)
        };
        assert!(
            with(None, None).is_none(),
            "no subject, no client: no session owner"
        );
        assert_ne!(with(Some(""), Some("c")), with(None, Some("c")));
        assert_ne!(with(Some("a"), None), with(Some("a"), Some("")));
        assert_eq!(with(Some("a"), Some("c")), with(Some("a"), Some("c")));
    }

    #[test]
    fn the_digest_is_pinned() {
        // Shared stores keep principals: the digest must not change between versions.
        // SHA-256 of 01 ‖ be64(22) ‖ "https://as.example.com" ‖ 01 ‖ be64(5) ‖ "alice"
        // ‖ 00 (no client id).
        let token =
            VerifiedToken::for_principal_tests("https://as.example.com", Some("alice"), None);
        let principal = Principal::of(&token).expect("a subject");
        let hex: String = principal
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "4d42cd77b606e1c8a9655e1c5ace766cb9335aaa210cfe5c6dcccad925a4f23e"
        );
        // Asked again (memoized in the identity): the same.
        assert_eq!(Principal::of(&token), Some(principal));
    }
}
