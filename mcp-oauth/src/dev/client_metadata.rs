//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP SEP-991):
//! a `client_id` that is an `https` URL names a JSON document describing the client, fetched
//! when the client first shows up and cached briefly.
//!
//! The URL must be `https`, with a host and a path other than `/`, without fragment,
//! userinfo or dot segments, in its canonical form (the document's `client_id` must equal it
//! exactly, so a second spelling would be a second client), and at most
//! [`MAX_CLIENT_ID_BYTES`] long (checked before anything else). The fetch follows no
//! redirect, reads at most [`MAX_DOCUMENT_BYTES`], gives up after [`FETCH_TIMEOUT`], and takes
//! only `200` with an `application/json` body. The document must name the URL as its
//! `client_id`, list its `redirect_uris`, and say `token_endpoint_auth_method: none`: such a
//! client is public (PKCE S256, as for every client); one with a secret is refused. Its
//! redirect URIs must be `https`, `http` on a loopback host, or an RFC 8252 §7.1 private-use
//! scheme (one with a dot, reverse-domain style: `com.example.app:/cb`); never `javascript:`,
//! `data:`, `file:` or plain `http` elsewhere, nor (as for every client) one whose query
//! already carries a parameter of the authorization response.
//!
//! SSRF: the fetcher never connects to a private, loopback, link-local, unspecified,
//! multicast, shared (CGNAT `100.64.0.0/10`), unique-local (`fc00::/7`), documentation,
//! benchmarking or otherwise reserved address, nor to the IPv4-mapped, NAT64 or compatible
//! IPv6 forms of one. Host names are resolved by [`FilteringResolver`], which drops such
//! addresses from the answer, so the addresses checked are the ones connected to; IP-literal
//! hosts (which reqwest does not resolve) are checked before the request. No proxy is used.
//! A test may allow loopback hosts
//! ([`allow_local_client_metadata`](super::DevAuthorizationServerBuilder::allow_local_client_metadata)).
//!
//! TLS: the certificate is checked against the system's root certificates, loaded once per
//! process (`rustls-native-certs`), by rustls' own verifier, through this build's crypto
//! provider. Not through the platform verifier other fetches use: on Windows and macOS it may
//! fetch the intermediate certificates, CRLs or OCSP answers named in the (attacker's)
//! certificate, from addresses the resolver above never sees, for up to seconds. Checking the
//! chain here touches no network.
//!
//! Resources: at most [`MAX_CONCURRENT_FETCHES`] documents are fetched at once per server;
//! past that a request is refused at once ([`DocumentRefusal::Busy`]). Concurrent requests for
//! the same URL share one fetch. Host names are resolved by the system's `getaddrinfo`, on
//! tokio's blocking pool: [`FETCH_TIMEOUT`] gives up on the answer but cannot cancel the
//! lookup, which goes on in its thread; the resolver therefore holds one of at most
//! [`MAX_CONCURRENT_FETCHES`] lookup slots until the lookup itself returns, so slow DNS ties up
//! that many blocking threads at most.
//!
//! Documents are cached per URL (bounded like the other tables): for their `Cache-Control:
//! max-age`, at most [`MAX_CACHE_TTL`], [`DEFAULT_CACHE_TTL`] without one, not at all with
//! `no-store` or `no-cache`; a refusal for [`FAILURE_CACHE_TTL`], but only one that cost a
//! fetch (or a lookup): a `client_id` refused on its face (its length, its form, an IP-literal
//! host) is never cached, so that made-up strings cannot fill the cache.
//!
//! Logs name a refused `client_id` by [`LoggedId`]: its first characters, escaped, and a
//! fingerprint of the whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::{OnceCell, Semaphore};
use tokio_rustls::rustls::RootCertStore;
use url::{Host, Url};

use super::params::is_valid_redirect_uri;
use super::store::{BoundedMap, Client, GrantType, MetadataDocument, fingerprint};
use crate::http_client::{FetchError, read_capped};
use crate::loopback::is_loopback_http;

/// The longest `client_id` taken as a document URL: 2 KiB; a longer one is refused before
/// it is parsed, looked up or fetched.
pub(crate) const MAX_CLIENT_ID_BYTES: usize = 2 * 1024;
/// The largest document read: 5 KiB (reading stops past it).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The whole fetch (resolution, connection, TLS, the body) must end within this.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// How many documents are fetched at once at most (and how many host name lookups run at
/// most, abandoned ones included); past it, [`DocumentRefusal::Busy`].
pub(crate) const MAX_CONCURRENT_FETCHES: usize = 16;
/// How long a document is cached at most, whatever its `max-age`.
pub(crate) const MAX_CACHE_TTL: u64 = 300;
/// How long a document without `max-age` is cached.
pub(crate) const DEFAULT_CACHE_TTL: u64 = 60;
/// How long a failed fetch is remembered (so that a bad URL is not fetched on every request).
pub(crate) const FAILURE_CACHE_TTL: u64 = 5;
/// The most redirect URIs a document may list.
const MAX_REDIRECT_URIS: usize = 20;
/// How many characters of a `client_id` a log line shows.
const LOGGED_ID_CHARS: usize = 64;

/// Whether `client_id` is meant as a metadata document URL: it says `https://`. Only such
/// ids are ever fetched; any other unknown id is an unknown client.
pub(crate) fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Why a client's metadata document is refused. Each has a fixed description: nothing the
/// document or its server said is echoed to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentRefusal {
    /// The `client_id` is longer than [`MAX_CLIENT_ID_BYTES`].
    TooLong,
    /// The URL breaks the rules for a client id URL.
    InvalidUrl,
    /// The host is, or resolves only to, an address the fetcher may not reach.
    ForbiddenAddress,
    /// The document could not be fetched (connection, TLS, HTTP).
    Unreachable,
    /// The fetch took longer than [`FETCH_TIMEOUT`].
    Timeout,
    /// The server answered with a redirect, which is not followed.
    Redirect,
    /// The server answered with another status than 200.
    Status,
    /// The body is not `application/json`.
    ContentType,
    /// The body exceeds [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// The body is not a JSON object.
    NotJson,
    /// The document's `client_id` is not the URL it was fetched from.
    ClientIdMismatch,
    /// `token_endpoint_auth_method` is not `none`.
    AuthMethod,
    /// The document carries a `client_secret`.
    Secret,
    /// `redirect_uris` is missing, empty, too long or holds an invalid URI.
    RedirectUris,
    /// `grant_types` does not include `authorization_code`, or `response_types` not `code`.
    GrantTypes,
    /// A member has the wrong type (`client_name`, `client_uri`, `scope`, …).
    Malformed,
    /// The fetcher could not be set up (TLS).
    Unavailable,
    /// [`MAX_CONCURRENT_FETCHES`] documents are being fetched (or host names looked up)
    /// already.
    Busy,
}

impl DocumentRefusal {
    /// A fixed description, for the error page and the token endpoint's `error_description`
    /// (so within RFC 6749's characters for it: printable ASCII but `"` and `\`).
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::TooLong => "The client_id is longer than 2 KiB.",
            Self::InvalidUrl => {
                "The client_id is not a valid client metadata document URL (https, a host and a \
                 path, no fragment, userinfo or dot segments, in canonical form)."
            }
            Self::ForbiddenAddress => {
                "The client metadata document's host is a private, loopback or otherwise \
                 reserved address, which this server does not fetch from."
            }
            Self::Unreachable => "The client metadata document could not be fetched.",
            Self::Timeout => "Fetching the client metadata document timed out.",
            Self::Redirect => {
                "The client metadata document URL answered with a redirect, which is not followed."
            }
            Self::Status => "The client metadata document URL did not answer 200 OK.",
            Self::ContentType => "The client metadata document is not application/json.",
            Self::TooLarge => "The client metadata document is larger than 5 KiB.",
            Self::NotJson => "The client metadata document is not a JSON object.",
            Self::ClientIdMismatch => {
                "The client metadata document's client_id is not the URL it was fetched from."
            }
            Self::AuthMethod => {
                "The client metadata document must say token_endpoint_auth_method none: this \
                 server accepts only public clients (with PKCE) by metadata document."
            }
            Self::Secret => "A client metadata document must not carry a client_secret.",
            Self::RedirectUris => {
                "The client metadata document must list redirect_uris, at most 20: https URLs, \
                 http URLs on a loopback host, or private-use schemes (with a dot, as \
                 com.example.app:/cb); without fragment, nor code, state, error or iss in \
                 their query."
            }
            Self::GrantTypes => {
                "The client metadata document's grant_types must include authorization_code \
                 (and its response_types, if any, only code)."
            }
            Self::Malformed => "A member of the client metadata document has the wrong type.",
            Self::Unavailable => "This server cannot fetch client metadata documents now.",
            Self::Busy => {
                "This server is fetching too many client metadata documents now: try again in \
                 a moment."
            }
        }
    }

    /// Whether the refusal is remembered for [`FAILURE_CACHE_TTL`]: only if finding it cost
    /// a fetch or a lookup. A refusal on the `client_id`'s face (its length, its form, an
    /// IP-literal host) costs nothing to repeat, and caching it would let anyone fill the
    /// cache with made-up ids; one for want of resources (busy, no TLS) says nothing of the
    /// document.
    fn is_cached(self) -> bool {
        !matches!(
            self,
            Self::TooLong | Self::InvalidUrl | Self::Unavailable | Self::Busy
        )
    }
}

/// How a log line names a `client_id` (any string a request sent): its first
/// [`LOGGED_ID_CHARS`] characters, escaped as a Rust string literal (no control or format
/// character, no line break, reaches the log), `…` if cut, and the fingerprint of the whole.
pub(crate) struct LoggedId<'a>(pub(crate) &'a str);

impl std::fmt::Display for LoggedId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.0;
        let end = id
            .char_indices()
            .nth(LOGGED_ID_CHARS)
            .map_or(id.len(), |(at, _)| at);
        let cut = if end < id.len() { "…" } else { "" };
        write!(f, "{:?}{cut} #{}", &id[..end], fingerprint(id))
    }
}

/// What a lookup of a document ends in: the client, or why it was refused.
type Outcome = Result<Arc<Client>, DocumentRefusal>;

/// A cached outcome, until `expires_at`.
struct Cached {
    outcome: Outcome,
    expires_at: u64,
}

/// A fetch under way, which the requests for the same URL wait for.
type Flight = Arc<OnceCell<Outcome>>;

/// Fetches, checks and caches client metadata documents.
pub(crate) struct ClientMetadataFetcher {
    /// With [`allow_local_client_metadata`](super::DevAuthorizationServerBuilder::allow_local_client_metadata):
    /// the only root CA trusted, and loopback hosts allowed.
    local_root_ca: Option<String>,
    /// Built on first use (so that a server whose clients never use documents never loads
    /// root certificates); an error is not kept (the next fetch tries again).
    client: OnceCell<reqwest::Client>,
    cache: Mutex<BoundedMap<String, Cached>>,
    /// The fetches under way, by URL: one per URL (single flight). An entry lives as long as
    /// the request that started the fetch.
    flights: Mutex<HashMap<String, Flight>>,
    /// One permit per fetch under way ([`MAX_CONCURRENT_FETCHES`]).
    fetches: Semaphore,
    /// One permit per host name lookup running, held until `getaddrinfo` returns, even when
    /// the fetch that asked has given up ([`MAX_CONCURRENT_FETCHES`]).
    lookups: Arc<Semaphore>,
    /// The scopes the server grants: a document's `scope` is narrowed to them.
    server_scopes: Vec<String>,
}

/// Removes its URL's flight from [`ClientMetadataFetcher::flights`] when the request that
/// started the fetch ends, done or dropped. Requests already waiting keep the flight: if it
/// was dropped unfinished, one of them fetches instead.
struct FlightGuard<'a> {
    flights: &'a Mutex<HashMap<String, Flight>>,
    url: &'a str,
    flight: Flight,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock();
        if flights
            .get(self.url)
            .is_some_and(|flight| Arc::ptr_eq(flight, &self.flight))
        {
            flights.remove(self.url);
        }
    }
}

impl ClientMetadataFetcher {
    pub(crate) fn new(
        local_root_ca: Option<String>,
        server_scopes: Vec<String>,
        capacity: usize,
    ) -> Self {
        if local_root_ca.is_some() {
            tracing::warn!(
                "dev authorization server: allow_local_client_metadata is set (tests only): \
                 client metadata documents may be fetched from loopback hosts, and only the \
                 given root CA is trusted for them"
            );
        }
        Self {
            local_root_ca,
            client: OnceCell::new(),
            cache: Mutex::new(BoundedMap::new(capacity)),
            flights: Mutex::new(HashMap::new()),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
            lookups: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
            server_scopes,
        }
    }

    /// Whether loopback hosts may be fetched from (a test setting).
    fn allow_loopback(&self) -> bool {
        self.local_root_ca.is_some()
    }

    /// The client whose metadata document `url` is, from the cache or fetched now (or by a
    /// request for the same URL already fetching it).
    pub(crate) async fn client(&self, url: &str, now: u64) -> Outcome {
        let parsed = self.check_on_its_face(url).inspect_err(|refusal| {
            tracing::debug!(
                client_id = %LoggedId(url),
                ?refusal,
                "dev authorization server: refused a client metadata document URL"
            );
        })?;
        if let Some(cached) = self.cache.lock().get(url)
            && cached.expires_at > now
        {
            return cached.outcome.clone();
        }
        let (flight, _guard) = {
            let mut flights = self.flights.lock();
            match flights.get(url) {
                Some(flight) => (Arc::clone(flight), None),
                None => {
                    let flight = Flight::default();
                    flights.insert(url.to_owned(), Arc::clone(&flight));
                    let guard = FlightGuard {
                        flights: &self.flights,
                        url,
                        flight: Arc::clone(&flight),
                    };
                    (flight, Some(guard))
                }
            }
        };
        flight
            .get_or_init(|| self.fetch_and_cache(url, &parsed, now))
            .await
            .clone()
    }

    /// What is refused without a fetch: a `client_id` too long (before anything else), not a
    /// valid document URL, or with an IP-literal host the fetcher may not reach.
    fn check_on_its_face(&self, url: &str) -> Result<Url, DocumentRefusal> {
        if url.len() > MAX_CLIENT_ID_BYTES {
            return Err(DocumentRefusal::TooLong);
        }
        let parsed = check_url(url)?;
        let literal = match parsed.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) | None => None,
        };
        if literal.is_some_and(|ip| !is_fetchable(ip, self.allow_loopback())) {
            return Err(DocumentRefusal::ForbiddenAddress);
        }
        Ok(parsed)
    }

    /// Fetches the document (if a fetch slot is free), caches the outcome, and returns it.
    async fn fetch_and_cache(&self, url: &str, parsed: &Url, now: u64) -> Outcome {
        let outcome = match self.fetches.try_acquire() {
            Ok(_permit) => self.fetch(parsed, url).await,
            Err(_) => Err(DocumentRefusal::Busy),
        };
        let (outcome, ttl) = match outcome {
            Ok((client, ttl)) => (Ok(Arc::new(client)), ttl),
            Err(refusal) => {
                tracing::debug!(
                    client_id = %LoggedId(url),
                    ?refusal,
                    "dev authorization server: refused a client metadata document"
                );
                let ttl = if refusal.is_cached() {
                    FAILURE_CACHE_TTL
                } else {
                    0
                };
                (Err(refusal), ttl)
            }
        };
        if ttl > 0 {
            self.cache.lock().insert(
                url.to_owned(),
                Cached {
                    outcome: outcome.clone(),
                    expires_at: now.saturating_add(ttl),
                },
            );
        } else {
            self.cache.lock().remove(url);
        }
        outcome
    }

    /// Fetches and checks the document at `url` (checked on its face already): the client
    /// and how long to cache it.
    async fn fetch(&self, parsed: &Url, url: &str) -> Result<(Client, u64), DocumentRefusal> {
        let client = self
            .client
            .get_or_try_init(|| self.build_client())
            .await
            .map_err(|error| {
                tracing::error!(%error, "dev authorization server: cannot fetch client metadata documents");
                DocumentRefusal::Unavailable
            })?;
        let request = async {
            let response = client
                .get(parsed.clone())
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|error| refusal_of(&error))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(DocumentRefusal::Redirect);
            }
            if status != reqwest::StatusCode::OK {
                return Err(DocumentRefusal::Status);
            }
            if !is_json(response.headers().get(CONTENT_TYPE)) {
                return Err(DocumentRefusal::ContentType);
            }
            let ttl = cache_ttl(response.headers().get_all(CACHE_CONTROL).iter());
            let (_, body) = read_capped(response, MAX_DOCUMENT_BYTES)
                .await
                .map_err(|error| match error {
                    FetchError::TooLarge => DocumentRefusal::TooLarge,
                    FetchError::Timeout => DocumentRefusal::Timeout,
                    FetchError::Request(_) => DocumentRefusal::Unreachable,
                })?;
            Ok((body, ttl))
        };
        let (body, ttl) = tokio::time::timeout(FETCH_TIMEOUT, request)
            .await
            .map_err(|_| DocumentRefusal::Timeout)??;
        let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(&body) else {
            return Err(DocumentRefusal::NotJson);
        };
        let client = document_client(url, parsed, &document, &self.server_scopes)?;
        Ok((client, ttl))
    }

    async fn build_client(&self) -> Result<reqwest::Client, String> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .dns_resolver(Arc::new(FilteringResolver {
                allow_loopback: self.allow_loopback(),
                lookups: Arc::clone(&self.lookups),
            }))
            .user_agent(concat!("mcp-oauth-dev/", env!("CARGO_PKG_VERSION")));
        // Either way rustls' own verifier over a fixed set of roots: nothing fetched while
        // checking a certificate (see the module documentation).
        let builder = match &self.local_root_ca {
            Some(pem) => crate::testing::trust_only(builder, pem),
            None => crate::testing::https::trust_roots(builder, system_roots().await?),
        }
        .map_err(|error| error.to_string())?;
        builder.build().map_err(|error| error.to_string())
    }
}

/// The system's root certificates, loaded once per process (on the blocking pool: it reads
/// files, or asks the OS's store); a failure is not kept.
async fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceCell<Arc<RootCertStore>> = OnceCell::const_new();
    ROOTS
        .get_or_try_init(|| async {
            tokio::task::spawn_blocking(load_system_roots)
                .await
                .map_err(|error| error.to_string())?
        })
        .await
        .cloned()
}

fn load_system_roots() -> Result<Arc<RootCertStore>, String> {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::debug!(%error, "dev authorization server: a system root certificate store could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(loaded.certs);
    if unusable > 0 {
        tracing::debug!(
            unusable,
            "dev authorization server: system root certificates left out (unparsable)"
        );
    }
    if roots.is_empty() {
        return Err("no usable root certificate in the system's store".to_owned());
    }
    Ok(Arc::new(roots))
}

/// The refusal for a failed request: a forbidden address if the resolver said so.
fn refusal_of(error: &reqwest::Error) -> DocumentRefusal {
    if error.is_timeout() {
        return DocumentRefusal::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> =
        Some(error as &(dyn std::error::Error + 'static));
    while let Some(cause) = source {
        if cause.downcast_ref::<NoFetchableAddress>().is_some() {
            return DocumentRefusal::ForbiddenAddress;
        }
        if cause.downcast_ref::<LookupsBusy>().is_some() {
            return DocumentRefusal::Busy;
        }
        source = cause.source();
    }
    DocumentRefusal::Unreachable
}

/// Checks a client id URL (see the module documentation) and parses it.
pub(crate) fn check_url(client_id: &str) -> Result<Url, DocumentRefusal> {
    let url = Url::parse(client_id).map_err(|_| DocumentRefusal::InvalidUrl)?;
    let valid = url.scheme() == "https"
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.path() != "/"
        // Dot segments (also `%2e`) are normalised away by the parser, as are an upper-case
        // scheme or host and a default port: the canonical form is the only spelling taken.
        && url.as_str() == client_id
        && !url
            .path_segments()
            .is_some_and(|mut segments| segments.any(|s| s == "." || s == ".."));
    if valid {
        Ok(url)
    } else {
        Err(DocumentRefusal::InvalidUrl)
    }
}

/// Whether a `Content-Type` is `application/json` (parameters allowed).
fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    value
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// How long to cache a document: its `max-age` up to [`MAX_CACHE_TTL`], none with
/// `no-store` or `no-cache`, [`DEFAULT_CACHE_TTL`] without either.
pub(crate) fn cache_ttl<'a>(values: impl Iterator<Item = &'a axum::http::HeaderValue>) -> u64 {
    let mut max_age: Option<u64> = None;
    for value in values {
        let Ok(value) = value.to_str() else {
            return 0;
        };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return 0;
            }
            if name.eq_ignore_ascii_case("max-age") {
                // A malformed max-age is not a reason to cache long.
                let seconds = argument.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
                max_age = Some(max_age.map_or(seconds, |m| m.min(seconds)));
            }
        }
    }
    max_age.map_or(DEFAULT_CACHE_TTL, |seconds| seconds.min(MAX_CACHE_TTL))
}

/// The client a document describes, if it follows the rules.
fn document_client(
    url: &str,
    parsed: &Url,
    document: &Map<String, Value>,
    server_scopes: &[String],
) -> Result<Client, DocumentRefusal> {
    if document.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(DocumentRefusal::ClientIdMismatch);
    }
    if document.contains_key("client_secret") || document.contains_key("client_secret_expires_at") {
        return Err(DocumentRefusal::Secret);
    }
    if document
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        != Some("none")
    {
        return Err(DocumentRefusal::AuthMethod);
    }
    let string = |name: &str| -> Result<Option<String>, DocumentRefusal> {
        match document.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DocumentRefusal::Malformed),
        }
    };
    let strings =
        |name: &str, refusal: DocumentRefusal| -> Result<Option<Vec<String>>, DocumentRefusal> {
            match document.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned).ok_or(refusal))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(refusal),
            }
        };
    let redirect_uris =
        strings("redirect_uris", DocumentRefusal::RedirectUris)?.unwrap_or_default();
    if redirect_uris.is_empty()
        || redirect_uris.len() > MAX_REDIRECT_URIS
        || !redirect_uris
            .iter()
            .all(|uri| is_valid_redirect_uri(uri) && is_document_redirect_uri(uri))
    {
        return Err(DocumentRefusal::RedirectUris);
    }
    // RFC 7591 §2: without grant_types, authorization_code only.
    let grant_types = match strings("grant_types", DocumentRefusal::GrantTypes)? {
        None => vec![GrantType::AuthorizationCode],
        Some(names) => {
            if !names.iter().any(|name| name == "authorization_code") {
                return Err(DocumentRefusal::GrantTypes);
            }
            let mut grants = vec![GrantType::AuthorizationCode];
            if names.iter().any(|name| name == "refresh_token") {
                grants.push(GrantType::RefreshToken);
            }
            grants
        }
    };
    if let Some(response_types) = strings("response_types", DocumentRefusal::GrantTypes)?
        && response_types.iter().any(|t| t != "code")
    {
        return Err(DocumentRefusal::GrantTypes);
    }
    let scopes = match string("scope")? {
        None => server_scopes.to_vec(),
        Some(scope) => super::params::split_scopes(&scope)
            .into_iter()
            .filter(|s| server_scopes.contains(s))
            .collect(),
    };
    let name = string("client_name")?.filter(|name| !name.trim().is_empty());
    let client_uri_host = string("client_uri")?
        .and_then(|uri| Url::parse(&uri).ok())
        .filter(|uri| matches!(uri.scheme(), "https" | "http"))
        .and_then(|uri| uri.host_str().map(str::to_owned));
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(DocumentRefusal::InvalidUrl),
    };
    Ok(Client {
        id: url.to_owned(),
        name,
        secret_hash: None,
        grant_types,
        scopes,
        redirect_uris,
        document: Some(MetadataDocument {
            host,
            client_uri_host,
        }),
    })
}

/// Whether a document may list `uri` (valid already) as a redirect URI: `https`; `http` on a
/// loopback host (RFC 8252 §7.3); or a private-use scheme (RFC 8252 §7.1), which must
/// contain a dot (reverse domain name, `com.example.app:/cb`). Never a scheme a browser runs
/// or reads locally (`javascript:`, `data:`, `file:`, …), nor plain `http` off this machine:
/// whoever publishes a document chooses where codes and errors go.
fn is_document_redirect_uri(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback_http(&url),
        scheme => scheme.contains('.'),
    }
}

/// The error the resolver gives when no address of a host may be fetched from.
#[derive(Debug)]
struct NoFetchableAddress;

impl std::fmt::Display for NoFetchableAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host resolves only to addresses the fetcher may not reach")
    }
}

impl std::error::Error for NoFetchableAddress {}

/// The error the resolver gives when [`MAX_CONCURRENT_FETCHES`] lookups are running.
#[derive(Debug)]
struct LookupsBusy;

impl std::fmt::Display for LookupsBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many host name lookups are running")
    }
}

impl std::error::Error for LookupsBusy {}

/// A DNS resolver that drops every address [`is_fetchable`] refuses from the answer, so
/// that the addresses checked are the ones connected to (no time-of-check/time-of-use gap,
/// no DNS rebinding between the two).
///
/// The lookup is the system's `getaddrinfo`, on tokio's blocking pool, which nothing can
/// cancel: each holds one of the `lookups` permits until it returns, whoever still waits for
/// it, and none is started without one.
pub(crate) struct FilteringResolver {
    allow_loopback: bool,
    lookups: Arc<Semaphore>,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        let permit = Arc::clone(&self.lookups).try_acquire_owned();
        Box::pin(async move {
            let Ok(permit) = permit else {
                return Err(Box::new(LookupsBusy) as Box<dyn std::error::Error + Send + Sync>);
            };
            let resolved = tokio::task::spawn_blocking(move || {
                let resolved = (host.as_str(), 0).to_socket_addrs();
                drop(permit);
                resolved
            })
            .await
            .map_err(std::io::Error::other)??;
            let fetchable: Vec<SocketAddr> = resolved
                .filter(|addr| is_fetchable(addr.ip(), allow_loopback))
                .collect();
            if fetchable.is_empty() {
                return Err(
                    Box::new(NoFetchableAddress) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(fetchable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether the fetcher may connect to `ip`: a globally reachable unicast address, or (with
/// `allow_loopback`, for tests) a loopback one.
pub(crate) fn is_fetchable(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(ip) => is_fetchable_v4(ip, allow_loopback),
        IpAddr::V6(ip) => is_fetchable_v6(ip, allow_loopback),
    }
}

fn is_fetchable_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", 0.0.0.0/8
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64.0.0/10
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !reserved
}

fn is_fetchable_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    // Forms that carry an IPv4 address: judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_fetchable_v4(v4, allow_loopback);
    }
    let segments = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96: the embedded IPv4 address is the real target.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return is_fetchable_v4(v4, false);
    }
    // Everything else must be global unicast, 2000::/3, minus its special ranges.
    if segments[0] & 0xe000 != 0x2000 {
        // ::/8 (unspecified, IPv4-compatible), fc00::/7, fe80::/10, ff00::/8, 64:ff9b:1::/48…
        return false;
    }
    let special = match segments[0] {
        // IETF protocol assignments 2001::/23 (Teredo, ORCHID, benchmarking…), and the
        // documentation prefix 2001:db8::/32.
        0x2001 => segments[1] < 0x0200 || segments[1] == 0x0db8,
        // 6to4 (the tunnelled IPv4 address could be anything).
        0x2002 => true,
        // Documentation, 3fff::/20.
        0x3fff => segments[1] < 0x1000,
        _ => false,
    };
    !special
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn only_canonical_https_urls_with_a_path_are_client_ids() {
        for good in [
            "https://app.example.com/client.json",
            "https://app.example.com:8443/oauth/client-metadata.json",
            "https://app.example.com/client?v=1",
            "https://127.0.0.1:4000/client.json",
            "https://[2001:4860::1]/c",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/client.json#frag",
            "https://app.example.com/client.json#",
            "https://user@app.example.com/client.json",
            "https://user:pw@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/./client.json",
            "https://app.example.com/a/%2e%2e/client.json",
            "https://App.Example.com/client.json",
            "HTTPS://app.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https:app.example.com/client.json",
            "app.example.com/client.json",
            "",
        ] {
            assert_eq!(
                check_url(bad).unwrap_err(),
                DocumentRefusal::InvalidUrl,
                "{bad}"
            );
        }
        assert!(is_document_url("https://x/y") && is_document_url("HTTPS://x/y"));
        assert!(!is_document_url("http://x/y") && !is_document_url("dev-client"));
        assert!(!is_document_url("https:/"));
    }

    #[test]
    fn private_and_reserved_addresses_are_not_fetched() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "100::1",
        ];
        for ip in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_fetchable(ip, false), "{ip}");
        }
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.0.1",
            "203.0.114.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "2a00:1450::1",
        ];
        for ip in allowed {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_fetchable(ip, false), "{ip}");
        }
        // The test setting allows loopback, and nothing else private.
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_fetchable(ip.parse().unwrap(), true), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "169.254.169.254",
            "fd00::1",
            "0.0.0.0",
            "::",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_fetchable(ip.parse().unwrap(), true), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        use reqwest::dns::Resolve as _;
        let strict = FilteringResolver {
            allow_loopback: false,
            lookups: Arc::new(Semaphore::new(1)),
        };
        let error = strict
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(
            error.downcast_ref::<NoFetchableAddress>().is_some(),
            "{error}"
        );
        let local = FilteringResolver {
            allow_loopback: true,
            lookups: Arc::new(Semaphore::new(1)),
        };
        let addrs: Vec<SocketAddr> = local
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn cache_control_sets_a_bounded_lifetime() {
        let ttl = |values: &[&str]| {
            let values: Vec<HeaderValue> = values
                .iter()
                .map(|v| HeaderValue::from_str(v).unwrap())
                .collect();
            cache_ttl(values.iter())
        };
        assert_eq!(ttl(&[]), DEFAULT_CACHE_TTL);
        assert_eq!(ttl(&["max-age=30"]), 30);
        assert_eq!(ttl(&["public, max-age=\"45\""]), 45);
        assert_eq!(ttl(&["max-age=86400"]), MAX_CACHE_TTL);
        assert_eq!(ttl(&["max-age=100", "max-age=20"]), 20);
        assert_eq!(ttl(&["max-age=0"]), 0);
        assert_eq!(ttl(&["max-age=soon"]), 0);
        assert_eq!(ttl(&["max-age=300, no-store"]), 0);
        assert_eq!(ttl(&["No-Cache"]), 0);
        assert_eq!(ttl(&["private"]), DEFAULT_CACHE_TTL);
    }

    #[test]
    fn only_application_json_is_a_document() {
        for good in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(good))), "{good}");
        }
        for bad in [
            "text/html",
            "application/jsonx",
            "application/jwt",
            "text/json",
        ] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }

    const URL: &str = "https://app.example.com/client.json";

    fn judge(document: Value) -> Result<Client, DocumentRefusal> {
        let scopes = vec!["calendar:read".to_owned(), "calendar:write".to_owned()];
        let Value::Object(document) = document else {
            panic!("an object")
        };
        document_client(URL, &Url::parse(URL).unwrap(), &document, &scopes)
    }

    fn valid() -> Value {
        json!({
            "client_id": URL,
            "client_name": "Example App",
            "client_uri": "https://www.example.com/about",
            "redirect_uris": ["http://127.0.0.1/callback", "https://app.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "calendar:read other:scope",
        })
    }

    #[test]
    fn a_valid_document_is_a_public_client() {
        let client = judge(valid()).unwrap();
        assert_eq!(client.id, URL);
        assert!(client.is_public());
        assert_eq!(client.name.as_deref(), Some("Example App"));
        assert_eq!(client.scopes, ["calendar:read"]);
        assert_eq!(
            client.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        let document = client.document.unwrap();
        assert_eq!(document.host, "app.example.com");
        assert_eq!(document.client_uri_host.as_deref(), Some("www.example.com"));

        // The least a document says.
        let minimal = judge(json!({
            "client_id": URL,
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .unwrap();
        assert_eq!(minimal.name, None);
        assert_eq!(minimal.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(minimal.scopes, ["calendar:read", "calendar:write"]);

        // Redirect URIs: https, http on loopback, private-use schemes with a dot.
        let mut document = valid();
        let uris = [
            "https://app.example.com/cb?tenant=1",
            "http://localhost:3000/cb",
            "http://[::1]/cb",
            "com.example.app:/oauth2redirect",
            "com.example.app:///cb",
        ];
        document["redirect_uris"] = json!(uris);
        assert_eq!(judge(document).unwrap().redirect_uris, uris);
    }

    #[test]
    fn descriptions_stay_within_rfc_6749_characters() {
        use DocumentRefusal::*;
        for refusal in [
            TooLong,
            InvalidUrl,
            ForbiddenAddress,
            Unreachable,
            Timeout,
            Redirect,
            Status,
            ContentType,
            TooLarge,
            NotJson,
            ClientIdMismatch,
            AuthMethod,
            Secret,
            RedirectUris,
            GrantTypes,
            Malformed,
            Unavailable,
            Busy,
        ] {
            let description = refusal.description();
            // RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                description
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{refusal:?}: {description}"
            );
        }
    }

    #[tokio::test]
    async fn refusals_on_the_face_of_a_client_id_are_not_cached() {
        let fetcher = ClientMetadataFetcher::new(None, Vec::new(), 100);
        let long = format!(
            "https://app.example.com/{}",
            "a".repeat(MAX_CLIENT_ID_BYTES)
        );
        for (client_id, refusal) in [
            (long.as_str(), DocumentRefusal::TooLong),
            ("https://app.example.com/", DocumentRefusal::InvalidUrl),
            ("https://App.example.com/c", DocumentRefusal::InvalidUrl),
            ("https://app.example.com/c#x", DocumentRefusal::InvalidUrl),
            ("https://10.0.0.1/c.json", DocumentRefusal::ForbiddenAddress),
            ("https://[::1]/c.json", DocumentRefusal::ForbiddenAddress),
        ] {
            assert_eq!(fetcher.client(client_id, 1000).await.unwrap_err(), refusal);
        }
        assert_eq!(fetcher.cache.lock().len(), 0);
        assert!(fetcher.flights.lock().is_empty());
        // Refusals for want of resources are not kept either; those a fetch found are.
        assert!(!DocumentRefusal::Busy.is_cached() && !DocumentRefusal::Unavailable.is_cached());
        assert!(DocumentRefusal::Status.is_cached() && DocumentRefusal::Timeout.is_cached());
    }

    #[test]
    fn logs_show_a_client_id_cut_escaped_and_fingerprinted() {
        let short = "https://a.example/c";
        assert_eq!(
            LoggedId(short).to_string(),
            format!("\"{short}\" #{}", fingerprint(short))
        );
        let hostile = format!("https://a.example/\u{202E}\n\u{1b}[2J\"{}", "é".repeat(100));
        let logged = LoggedId(&hostile).to_string();
        for raw in ['\u{202E}', '\n', '\u{1b}'] {
            assert!(!logged.contains(raw), "{logged}");
        }
        assert!(
            logged.starts_with(r#""https://a.example/\u{202e}\n\u{1b}[2J\"éé"#),
            "{logged}"
        );
        assert!(
            logged.ends_with(&format!("é\"… #{}", fingerprint(&hostile))),
            "{logged}"
        );
        assert_eq!(logged.matches('é').count(), LOGGED_ID_CHARS - 25);
    }

    #[test]
    fn documents_breaking_the_rules_are_refused() {
        let with = |name: &str, value: Value| {
            let mut document = valid();
            document[name] = value;
            judge(document).unwrap_err()
        };
        let without = |name: &str| {
            let mut document = valid();
            document.as_object_mut().unwrap().remove(name);
            judge(document).unwrap_err()
        };
        use DocumentRefusal::*;
        assert_eq!(
            with("client_id", json!(format!("{URL}/other"))),
            ClientIdMismatch
        );
        assert_eq!(
            with("client_id", json!("https://App.example.com/client.json")),
            ClientIdMismatch
        );
        assert_eq!(without("client_id"), ClientIdMismatch);
        assert_eq!(
            with("token_endpoint_auth_method", json!("client_secret_basic")),
            AuthMethod
        );
        assert_eq!(
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            AuthMethod
        );
        assert_eq!(without("token_endpoint_auth_method"), AuthMethod);
        assert_eq!(with("client_secret", json!("s3cret")), Secret);
        assert_eq!(without("redirect_uris"), RedirectUris);
        assert_eq!(with("redirect_uris", json!([])), RedirectUris);
        assert_eq!(
            with("redirect_uris", json!("http://127.0.0.1/cb")),
            RedirectUris
        );
        assert_eq!(with("redirect_uris", json!(["/relative"])), RedirectUris);
        assert_eq!(
            with("redirect_uris", json!(["https://a.example/cb#f"])),
            RedirectUris
        );
        assert_eq!(
            with("redirect_uris", json!(vec!["http://127.0.0.1/cb"; 21])),
            RedirectUris
        );
        assert_eq!(
            with("grant_types", json!(["client_credentials"])),
            GrantTypes
        );
        assert_eq!(with("response_types", json!(["token"])), GrantTypes);
        for unsafe_uri in [
            "javascript:alert(1)//",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "http://app.example.com/cb",
            "http://10.0.0.1/cb",
            "ftp://app.example.com/cb",
            "custom:/cb",
            "https://app.example.com/cb?code=x",
            "https://app.example.com/cb?iss=https%3A%2F%2Fevil.example",
            "http://127.0.0.1/cb?state=s",
            "com.example.app:/cb?error=x",
        ] {
            assert_eq!(
                with("redirect_uris", json!(["http://127.0.0.1/cb", unsafe_uri])),
                RedirectUris,
                "{unsafe_uri}"
            );
        }
        assert_eq!(with("client_name", json!(42)), Malformed);
        assert_eq!(with("scope", json!(["calendar:read"])), Malformed);
        assert_eq!(with("client_uri", json!({})), Malformed);
        for refusal in [ClientIdMismatch, AuthMethod, RedirectUris, ForbiddenAddress] {
            assert!(refusal.description().len() > 20);
        }
    }
}
