//! The dev server's in-memory state: registered clients, authorization requests waiting for
//! consent, authorization codes, refresh-token families and revoked access tokens, each table
//! bounded (the oldest entry is evicted).
//!
//! Consent ids, codes and refresh tokens are keyed by their SHA-256, never by themselves.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::sha256;

/// The most recent access tokens remembered per refresh-token family, to revoke them with it.
const ACCESS_TOKENS_PER_FAMILY: usize = 64;

/// A hash map that holds at most `capacity` entries: inserting into a full map evicts the
/// oldest insertion.
pub(crate) struct BoundedMap<K, V> {
    capacity: usize,
    next: u64,
    entries: HashMap<K, (u64, V)>,
    order: BTreeMap<u64, K>,
}

impl<K: Eq + Hash + Clone, V> BoundedMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// Inserts (or replaces, which counts as the newest insertion), evicting the oldest
    /// entries beyond the capacity.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.insert_evicting(key, value);
    }

    /// [`insert`](Self::insert), returning the entries evicted to make room (not the one
    /// replaced).
    pub(crate) fn insert_evicting(&mut self, key: K, value: V) -> Vec<(K, V)> {
        self.remove(&key);
        let mut evicted = Vec::new();
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, value)) = self.entries.remove(&oldest) {
                evicted.push((oldest, value));
            }
        }
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, key.clone());
        self.entries.insert(key, (seq, value));
        evicted
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.get(key).map(|(_, value)| value)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.get_mut(key).map(|(_, value)| value)
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let (seq, value) = self.entries.remove(key)?;
        self.order.remove(&seq);
        Some(value)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(AuthMethod::None),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

/// The grant types the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// RFC 8693 token exchange, offered only when exchange audiences are configured.
    TokenExchange,
}

/// The `grant_type` of RFC 8693 token exchange.
pub(crate) const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl GrantType {
    pub(crate) const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            TOKEN_EXCHANGE_GRANT => Some(GrantType::TokenExchange),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }
}

/// A client the server knows: pre-registered or dynamically registered. Confidential
/// clients may authenticate with `client_secret_basic` or `client_secret_post`, whichever
/// they registered.
pub(crate) struct Client {
    pub(crate) id: String,
    /// The `client_name` it registered with, if any.
    pub(crate) name: Option<String>,
    /// SHA-256 of the secret; `None` for public clients.
    pub(crate) secret_hash: Option<[u8; 32]>,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) scopes: Vec<String>,
    pub(crate) redirect_uris: Vec<String>,
    /// For a client identified by a metadata document (its id is the document's URL): what
    /// the consent page shows of it.
    pub(crate) document: Option<MetadataDocument>,
}

/// What the consent page shows of a client identified by a metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataDocument {
    /// The host (and port, if any) of the document's URL: the one thing about the client
    /// this server verified (it fetched the document there, over https).
    pub(crate) host: String,
    /// The host of the document's `client_uri`, as the document claims it.
    pub(crate) client_uri_host: Option<String>,
}

impl std::fmt::Debug for Client {
    /// Without the secret's hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("public", &self.is_public())
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("redirect_uris", &self.redirect_uris)
            .field("document", &self.document)
            .finish()
    }
}

impl Client {
    pub(crate) fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub(crate) fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether `secret` is this client's secret (compared as SHA-256 digests, in constant
    /// time).
    pub(crate) fn secret_matches(&self, secret: &str) -> bool {
        let Some(expected) = &self.secret_hash else {
            return false;
        };
        let actual = sha256(secret.as_bytes());
        expected
            .iter()
            .zip(actual.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// An authorization request that passed every check: what an authorization code issued for
/// it will grant, and where it goes.
pub(crate) struct AuthorizationRequest {
    pub(crate) client_id: String,
    /// Where the response goes: the request's `redirect_uri`, or the client's only one.
    pub(crate) redirect_uri: String,
    /// The `redirect_uri` parameter, if the request had one: the code is bound to it.
    pub(crate) given_redirect_uri: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    pub(crate) state: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key the code is bound to.
    pub(crate) dpop_jkt: Option<[u8; 32]>,
}

/// An authorization request shown on the consent page, waiting for the user's answer (keyed
/// by the hash of its single-use consent id).
pub(crate) struct PendingConsent {
    pub(crate) request: AuthorizationRequest,
    pub(crate) expires_at: u64,
}

/// An issued authorization code.
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    /// The `redirect_uri` of the authorization request, if it carried one.
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    pub(crate) subject: String,
    pub(crate) expires_at: u64,
    /// The authorization request's `dpop_jkt`: the code is redeemed only with a DPoP proof
    /// by that key.
    pub(crate) dpop_jkt: Option<[u8; 32]>,
    /// Set on redemption: what the code was exchanged for, revoked if the code is replayed.
    pub(crate) redeemed: Option<Redemption>,
}

/// What an authorization code was exchanged for.
#[derive(Clone)]
pub(crate) struct Redemption {
    pub(crate) family: Option<u64>,
    pub(crate) jti: String,
    pub(crate) jti_expires_at: u64,
}

/// A refresh token (keyed by its hash).
pub(crate) struct RefreshEntry {
    pub(crate) family: u64,
    pub(crate) client_id: String,
    pub(crate) subject: String,
    /// The scopes of the grant (a refresh keeps them; only access tokens are down-scoped).
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: String,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    /// Rotated away: presenting it again is a replay and revokes the family.
    pub(crate) used: bool,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449 §5): refreshing
    /// needs a proof by it. Confidential clients' refresh tokens are never bound.
    pub(crate) dpop_jkt: Option<[u8; 32]>,
}

/// The chain of refresh tokens descending from one authorization code.
pub(crate) struct Family {
    pub(crate) revoked: bool,
    /// Recent access tokens issued in this family: `(jti, exp)`.
    pub(crate) access_tokens: Vec<(String, u64)>,
}

impl Family {
    pub(crate) fn new() -> Self {
        Self {
            revoked: false,
            access_tokens: Vec::new(),
        }
    }

    /// Remembers an access token, forgetting expired and the oldest ones.
    pub(crate) fn remember(&mut self, jti: String, exp: u64, now: u64) {
        self.access_tokens.retain(|(_, exp)| *exp > now);
        if self.access_tokens.len() >= ACCESS_TOKENS_PER_FAMILY {
            self.access_tokens.remove(0);
        }
        self.access_tokens.push((jti, exp));
    }
}

/// Refresh tokens and their families, under one lock so that rotation and replay
/// detection are atomic.
pub(crate) struct RefreshTables {
    pub(crate) tokens: BoundedMap<[u8; 32], RefreshEntry>,
    pub(crate) families: BoundedMap<u64, Family>,
}

impl RefreshTables {
    /// Creates family `id` remembering its first access token. A family revoked before it
    /// was created (a code replayed while being redeemed) stays revoked.
    pub(crate) fn create_family(&mut self, id: u64, jti: String, exp: u64, now: u64) {
        match self.families.get_mut(&id) {
            Some(family) => family.remember(jti, exp, now),
            None => {
                let mut family = Family::new();
                family.remember(jti, exp, now);
                self.families.insert(id, family);
            }
        }
    }

    /// Marks a family revoked (creating it revoked if unknown); returns its access tokens,
    /// to revoke them too.
    pub(crate) fn revoke_family(&mut self, id: u64) -> Vec<(String, u64)> {
        match self.families.get_mut(&id) {
            Some(family) => {
                family.revoked = true;
                std::mem::take(&mut family.access_tokens)
            }
            None => {
                let mut family = Family::new();
                family.revoked = true;
                self.families.insert(id, family);
                Vec::new()
            }
        }
    }

    /// Whether the family exists and is not revoked (evicted families count as revoked).
    pub(crate) fn family_live(&self, family: u64) -> bool {
        self.families.get(&family).is_some_and(|f| !f.revoked)
    }
}

/// The access tokens issued by token exchange (RFC 8693), by the `jti` of the subject token
/// each was exchanged from, so that revoking a token revokes what was exchanged from it (and,
/// the subject of a chained exchange being itself an exchanged token, what was exchanged from
/// that in turn). One entry per exchanged token, the oldest evicted past the bound: a token
/// evicted so is no longer revoked with its subject token, and lives until its `exp` (no
/// later than its subject token's).
pub(crate) struct ExchangedTokens {
    /// Exchanged token `jti` → (its subject token's `jti`, its `exp`).
    tokens: BoundedMap<String, (String, u64)>,
    /// Subject token `jti` → the `jti`s exchanged from it: an index of `tokens`.
    by_subject: HashMap<String, Vec<String>>,
}

impl ExchangedTokens {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tokens: BoundedMap::new(capacity),
            by_subject: HashMap::new(),
        }
    }

    /// Remembers that the token `jti`, expiring at `exp`, was exchanged from the token
    /// `subject` (both `jti`s).
    pub(crate) fn record(&mut self, subject: &str, jti: String, exp: u64) {
        let evicted = self
            .tokens
            .insert_evicting(jti.clone(), (subject.to_owned(), exp));
        for (old, (old_subject, _)) in evicted {
            self.unindex(&old_subject, &old);
        }
        self.by_subject
            .entry(subject.to_owned())
            .or_default()
            .push(jti);
    }

    /// Forgets and returns the tokens exchanged from `subject`: `(jti, exp)`.
    pub(crate) fn take_exchanged_from(&mut self, subject: &str) -> Vec<(String, u64)> {
        let Some(jtis) = self.by_subject.remove(subject) else {
            return Vec::new();
        };
        jtis.into_iter()
            .filter_map(|jti| {
                let (_, exp) = self.tokens.remove(&jti)?;
                Some((jti, exp))
            })
            .collect()
    }

    fn unindex(&mut self, subject: &str, jti: &str) {
        if let Some(jtis) = self.by_subject.get_mut(subject) {
            jtis.retain(|have| have != jti);
            if jtis.is_empty() {
                self.by_subject.remove(subject);
            }
        }
    }
}

/// All mutable state of a dev server.
pub(crate) struct Store {
    pub(crate) static_clients: HashMap<String, Arc<Client>>,
    pub(crate) registered: Mutex<BoundedMap<String, Arc<Client>>>,
    pub(crate) consents: Mutex<BoundedMap<[u8; 32], PendingConsent>>,
    pub(crate) codes: Mutex<BoundedMap<[u8; 32], CodeGrant>>,
    pub(crate) refresh: Mutex<RefreshTables>,
    /// Revoked access tokens: `jti` → `exp`.
    pub(crate) revoked: Mutex<BoundedMap<String, u64>>,
    /// The tokens exchanged from each access token, revoked with it.
    pub(crate) exchanged: Mutex<ExchangedTokens>,
}

impl Store {
    pub(crate) fn new(static_clients: Vec<Client>, capacity: usize) -> Self {
        Self {
            static_clients: static_clients
                .into_iter()
                .map(|c| (c.id.clone(), Arc::new(c)))
                .collect(),
            registered: Mutex::new(BoundedMap::new(capacity)),
            consents: Mutex::new(BoundedMap::new(capacity)),
            codes: Mutex::new(BoundedMap::new(capacity)),
            refresh: Mutex::new(RefreshTables {
                tokens: BoundedMap::new(capacity),
                families: BoundedMap::new(capacity),
            }),
            revoked: Mutex::new(BoundedMap::new(capacity)),
            exchanged: Mutex::new(ExchangedTokens::new(capacity)),
        }
    }

    pub(crate) fn client(&self, id: &str) -> Option<Arc<Client>> {
        if let Some(client) = self.static_clients.get(id) {
            return Some(Arc::clone(client));
        }
        self.registered.lock().get(id).cloned()
    }

    /// Revokes access tokens by `jti` (expired ones need no entry) with every token exchanged
    /// from them, transitively; returns them all, `(jti, exp)`, the given ones first.
    ///
    /// Each token is listed as revoked before what was exchanged from it is looked up: an
    /// exchange that checks its subject token after recording the new token
    /// ([`ExchangedTokens::record`], then [`is_revoked`](Self::is_revoked)) either sees the
    /// revocation or had its token found here.
    pub(crate) fn revoke_access_tokens(
        &self,
        tokens: Vec<(String, u64)>,
        now: u64,
    ) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        let mut level = tokens;
        // Each token is taken out of the exchange table once: this ends.
        while !level.is_empty() {
            {
                let mut revoked = self.revoked.lock();
                for (jti, exp) in &level {
                    if *exp > now {
                        revoked.insert(jti.clone(), *exp);
                    }
                }
            }
            let next: Vec<(String, u64)> = {
                let mut exchanged = self.exchanged.lock();
                level
                    .iter()
                    .flat_map(|(jti, _)| exchanged.take_exchanged_from(jti))
                    .collect()
            };
            all.extend(level);
            level = next;
        }
        all
    }

    pub(crate) fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.lock().get(jti).is_some()
    }
}

/// A short, loggable fingerprint of a secret: the first 8 hex digits of its SHA-256.
pub(crate) fn fingerprint(secret: &str) -> String {
    sha256(secret.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_evicts_the_oldest() {
        let mut map = BoundedMap::new(3);
        for i in 0..5 {
            map.insert(i, i * 10);
        }
        assert_eq!(map.len(), 3);
        assert!(map.get(&0).is_none() && map.get(&1).is_none());
        assert_eq!(map.get(&4), Some(&40));
        // Replacing refreshes the age.
        map.insert(2, 21);
        map.insert(5, 50);
        assert!(map.get(&3).is_none());
        assert_eq!(map.get(&2), Some(&21));
        assert_eq!(map.remove(&2), Some(21));
        assert_eq!(map.len(), 2);
        // Removals keep the order table small.
        for i in 100..10_000 {
            map.insert(i, i);
            map.remove(&i);
        }
        assert_eq!(map.order.len(), map.entries.len());
    }

    #[test]
    fn family_remembers_a_bounded_number_of_access_tokens() {
        let mut family = Family::new();
        for i in 0..200 {
            family.remember(format!("jti-{i}"), 1_000, 10);
        }
        assert_eq!(family.access_tokens.len(), ACCESS_TOKENS_PER_FAMILY);
        family.remember("fresh".into(), 2_000, 1_500);
        assert_eq!(family.access_tokens, [("fresh".to_owned(), 2_000)]);
    }

    #[test]
    fn revoking_a_token_revokes_what_was_exchanged_from_it_transitively() {
        let store = Store::new(Vec::new(), 100);
        {
            let mut exchanged = store.exchanged.lock();
            exchanged.record("root", "a".into(), 50);
            exchanged.record("root", "b".into(), 60);
            exchanged.record("a", "a1".into(), 40);
            exchanged.record("a1", "a11".into(), 30);
            exchanged.record("other", "x".into(), 70);
        }
        let mut revoked = store.revoke_access_tokens(vec![("root".into(), 90)], 10);
        revoked.sort();
        let expected = [("a", 50), ("a1", 40), ("a11", 30), ("b", 60), ("root", 90)];
        assert_eq!(revoked, expected.map(|(jti, exp)| (jti.to_owned(), exp)));
        for (jti, _) in expected {
            assert!(store.is_revoked(jti), "{jti}");
        }
        assert!(!store.is_revoked("x") && !store.is_revoked("other"));
        // Taken once: revoking again finds nothing more.
        assert_eq!(
            store
                .revoke_access_tokens(vec![("root".into(), 90)], 10)
                .len(),
            1
        );
        assert!(store.exchanged.lock().by_subject.contains_key("other"));
        // Expired ones are returned but need no entry.
        store.exchanged.lock().record("old", "old1".into(), 5);
        let revoked = store.revoke_access_tokens(vec![("old".into(), 8)], 10);
        assert_eq!(revoked.len(), 2);
        assert!(!store.is_revoked("old1"));
    }

    #[test]
    fn exchanged_tokens_are_bounded_and_their_index_kept_in_step() {
        let mut exchanged = ExchangedTokens::new(3);
        for i in 0..5 {
            exchanged.record(&format!("s{}", i % 2), format!("t{i}"), 100);
        }
        // t0 and t1 evicted, from the index too.
        assert_eq!(exchanged.tokens.len(), 3);
        assert_eq!(exchanged.by_subject["s0"], ["t2", "t4"]);
        assert_eq!(exchanged.by_subject["s1"], ["t3"]);
        for i in 5..8 {
            exchanged.record("s2", format!("t{i}"), 100);
        }
        assert!(!exchanged.by_subject.contains_key("s0"));
        assert!(exchanged.take_exchanged_from("s1").is_empty());
        assert_eq!(exchanged.take_exchanged_from("s2").len(), 3);
        assert_eq!(exchanged.tokens.len(), 0);
        assert!(exchanged.by_subject.is_empty());
    }

    #[test]
    fn bounded_map_reports_what_it_evicts() {
        let mut map = BoundedMap::new(2);
        assert!(map.insert_evicting(1, "a").is_empty());
        assert!(map.insert_evicting(2, "b").is_empty());
        // Replacing evicts nothing.
        assert!(map.insert_evicting(1, "c").is_empty());
        assert_eq!(map.insert_evicting(3, "d"), [(2, "b")]);
    }

    #[test]
    fn secrets_compare_by_digest() {
        let client = Client {
            id: "c".into(),
            name: None,
            secret_hash: Some(sha256(b"s3cret")),
            grant_types: GrantType::ALL.to_vec(),
            scopes: Vec::new(),
            redirect_uris: Vec::new(),
            document: None,
        };
        assert!(client.secret_matches("s3cret"));
        assert!(!client.secret_matches("s3cres"));
        assert_eq!(fingerprint("x").len(), 8);
    }
}
