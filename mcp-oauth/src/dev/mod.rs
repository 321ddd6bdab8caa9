//! A development OAuth 2.1 authorization server (feature `dev`): the test kit grown up.
//!
//! [`DevAuthorizationServer`] runs in-process on 127.0.0.1 and issues real RFC 9068 JWT
//! access tokens for your MCP server, so that real MCP clients (and tests) can go through
//! the whole OAuth dance against it without any external identity provider:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server` | RFC 8414 metadata |
//! | `GET /.well-known/openid-configuration` | the same, as OpenID discovery |
//! | `GET /jwks` | the public signing key |
//! | `GET /authorize` | authorization code + PKCE (S256 only) for the dev user: approved at once for a loopback redirect URI, else a consent page; every redirect carries `iss` (RFC 9207) |
//! | `POST /authorize` | the consent page's answer ("Allow" or "Deny"), redirected with `iss` too |
//! | `POST /token` | `authorization_code`, `refresh_token` (rotating), `client_credentials`, and RFC 8693 token exchange when [configured](DevAuthorizationServerBuilder::exchange_audiences); with a `DPoP` proof, DPoP-bound tokens |
//! | `POST /register` | RFC 7591 dynamic client registration (open; loopback redirect URIs only unless [configured](DevAuthorizationServerBuilder::allow_redirect_hosts)) |
//! | (any `client_id` that is an `https` URL) | a Client ID Metadata Document, fetched from that URL (SEP-991): a public client, PKCE required, always shown the consent page |
//! | `POST /introspect` | RFC 7662 introspection (client-authenticated; exchanged tokens report `act`) |
//! | `POST /revoke` | RFC 7009 revocation |
//!
//! It is a development tool: plain HTTP on loopback, every authorization request made for a
//! single configured user, all state in memory (bounded: the oldest codes, refresh tokens,
//! registered clients and exchanged-token records are evicted past [`DEFAULT_MAX_ENTRIES`]
//! each). Never expose it.
//!
//! Browsers: the metadata documents and the JWKS are readable from any origin (they are
//! public); every other endpoint answers web pages on loopback origins only (`localhost`,
//! `127.x.y.z`, `[::1]`, any port, e.g. the MCP Inspector on `http://localhost:6274`),
//! echoing the origin with `Vary: Origin`, and refuses a request with any other `Origin`
//! with `403`, so that a web page the developer visits can neither read nor drive it.
//!
//! Authorization codes stay on this machine unless the developer says otherwise: a request
//! whose redirect URI is loopback (`http` on `127.x`, `[::1]` or `localhost`, as a native MCP
//! client uses, RFC 8252 §7.3) is approved at once, any other is shown a consent page naming
//! the client and the redirect host, and only its "Allow" button issues the code ("Deny"
//! redirects with `error=access_denied`). Every redirect back to the client, the code and
//! every error alike, carries `iss=<issuer>` (RFC 9207, MCP SEP-2468), advertised as
//! `authorization_response_iss_parameter_supported`, so that a client talking to several
//! authorization servers can tell which one answered (mix-up attacks). Dynamic registration
//! accepts loopback redirect URIs only unless
//! [`allow_redirect_hosts`](DevAuthorizationServerBuilder::allow_redirect_hosts) says
//! otherwise.
//!
//! DPoP (RFC 9449): a token request with a `DPoP` header (a proof for `POST` to the token
//! endpoint, signed with one of [`DEFAULT_PROOF_ALGORITHMS`](crate::dpop::DEFAULT_PROOF_ALGORITHMS),
//! `iat` within 300 s, each `jti` accepted once) gets an access token bound to the proof key
//! (`cnf.jkt`) and `token_type: DPoP`; a refused proof is `400 invalid_dpop_proof`. A
//! `dpop_jkt` on the authorization request binds the code to that key. A public client's
//! refresh token issued with a proof is bound to its key too: refreshing needs a proof by it,
//! and the access tokens refreshed are bound to it. Introspection reports `cnf`. No server
//! nonces are asked for. Requests without a `DPoP` header get bearer tokens, as ever. Token
//! exchange follows the same rule, for the exchanging client's own key: a DPoP-bound subject
//! token's binding does not carry over (the exchanging client is not the holder of the
//! user's key and cannot prove possession of it); the server issues a token of its own for
//! the downstream audience, bound to the client's key if it sends a proof, a bearer token
//! otherwise (see below).
//!
//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP SEP-991),
//! advertised as `client_id_metadata_document_supported`: a `client_id` that is an `https`
//! URL (canonical, with a path other than `/`, no fragment, userinfo or dot segments, at most
//! 2 KiB) is the address of a JSON document describing the client. It is fetched when the
//! client shows up at the authorization or token endpoint: no redirect followed, at most
//! 5 KiB, within 2 s, `200` and `application/json` only; never from a private, loopback,
//! link-local, CGNAT, unique-local, multicast, documentation or otherwise reserved address
//! (checked on the resolved addresses the connection uses, and on IP-literal hosts), through
//! no proxy; its certificate checked against the system's root certificates by rustls'
//! own verifier, which fetches nothing (no AIA, CRL or OCSP). At most 16 documents are
//! fetched at once (past that, refused at once: a `503` error page, or `503
//! temporarily_unavailable` at the token endpoint), and concurrent requests for one URL share
//! one fetch. The document's `client_id`
//! must be the URL exactly, its `token_endpoint_auth_method` must be `none` (such clients are
//! public, with PKCE S256 as every client; a document with a secret is refused), its
//! `redirect_uris` are matched as a registered client's and must each be `https`, `http` on a
//! loopback host, or a private-use scheme with a dot (`com.example.app:/cb`, RFC 8252 §7.1),
//! its `grant_types` (default `authorization_code`) may add `refresh_token`, its `scope` is
//! narrowed to the server's. Every authorization request of such a client is shown the
//! consent page, even with a loopback redirect URI (anyone can publish a document): the page
//! names the host that published the document, the one thing verified (in its title too),
//! apart from the name and website the document claims (the name without control or format
//! characters, at most 100 characters, isolated from the text around it). Until the user
//! consents, an error in such a client's request is redirected only to a loopback redirect
//! URI, and shown on an error page otherwise (RFC 9700 §4.11.2: the server redirects
//! automatically only to URIs it trusts). Documents are cached per URL, bounded like the other
//! tables, for their `Cache-Control: max-age` up to 5 minutes (1 minute without one, not at
//! all with `no-store` or `no-cache`); a document refused once fetched (or looked up) is
//! remembered for 5 seconds, a `client_id` refused on its face never. A refusal is an error
//! page at the authorization endpoint and `invalid_client` at the token endpoint, with a fixed
//! description; logs name the `client_id` by its first characters, escaped, and a
//! fingerprint. Tests serve documents from loopback with
//! [`allow_local_client_metadata`](DevAuthorizationServerBuilder::allow_local_client_metadata).
//! An `https` `client_id` that breaks the URL rules is refused; any other unknown id is an
//! unknown client. Dynamic client registration stays.
//!
//! No redirect URI (pre-registered, registered or in a document) may carry `code`, `state`,
//! `error`, `error_description` or `iss` in its query: the server adds them, and a second
//! `iss` would defeat the client's RFC 9207 check.
//!
//! Token exchange (RFC 8693), offered only when
//! [`exchange_audiences`](DevAuthorizationServerBuilder::exchange_audiences) are
//! configured: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` with a
//! `subject_token` of type `urn:ietf:params:oauth:token-type:access_token` (the only type
//! taken or issued) and one or more `audience` and/or `resource` parameters, each in the
//! allow-list (`invalid_target` otherwise), which become the new token's `aud`. The client
//! must be confidential (`unauthorized_client` otherwise), authenticated as at every grant,
//! and an audience of the subject token: its `aud` names the client's id or a resource the
//! client [is the resource server of](DevAuthorizationServerBuilder::resource_server). The
//! subject token must be an unexpired, unrevoked access token of this server whose `nbf`,
//! if any, has passed (no leeway: the server checks its own tokens on its own clock), and
//! when it carries `may_act` (RFC 8693 §4.4) that claim must name the client (`sub`; `iss`,
//! if present, this server); every such refusal is `invalid_grant`. An `actor_token` (with
//! `actor_token_type` access_token) is optional and checked only for consistency: it must
//! be an access token of this server for the client itself (its `client_credentials`
//! token).
//!
//! `scope` may ask for scopes both the subject token and the client have (`invalid_scope`
//! otherwise); without it the token gets those they share. A token with no scope is never
//! issued: an empty `scope`, or none when the two share nothing, is `invalid_scope` ("no
//! scope the subject token and the client share"), so that the response's `scope` always
//! names what was granted.
//!
//! The new token keeps the subject token's `sub`, names the client in `client_id` and in
//! `act: {"sub": <client>}` (nesting the subject token's own `act`, if any, under it), and
//! expires no later than the subject token nor past the access-token lifetime; no refresh
//! token is issued. The response carries `issued_token_type`
//! (`urn:ietf:params:oauth:token-type:access_token`). An exchanged token may itself be
//! exchanged again by one of its audiences (a chain), up to 4 actors in the new `act`; a
//! deeper chain, a malformed `act`, or a client exchanging a token whose current actor
//! (`act.sub`) is already itself is `invalid_grant`.
//!
//! DPoP at token exchange: the new token is the server's own, issued to the exchanging
//! client for the downstream audience, and the subject token's binding (`cnf.jkt`) does not
//! carry over. The exchanging client is not the holder of the user's key, so it cannot prove
//! possession of it, and no proof of that key is asked for: the client proves who it is with
//! its own credentials and must be an audience of the subject token (a resource server that
//! takes DPoP-bound tokens checked the user's proof when the token reached it). With a `DPoP`
//! proof of its own, the client's new token is bound to the client's key (`token_type:
//! DPoP`); without one it is a bearer token, whether or not the subject token was bound.
//! This is the intended design: each hop's token is bound to the party presenting it.
//!
//! Each exchange is logged in one line (the subject token's fingerprint, the client, the
//! audiences and scopes). Exchanged tokens are introspected and revoked (by the exchanging
//! client) like any other access token, and revoked with the token they were exchanged
//! from: revoking an access token (at `/revoke`, by a replayed code, with its refresh-token
//! family) revokes every token exchanged from it, transitively through chained exchanges, in
//! the [`revocations`](DevAuthorizationServerBuilder::revocations) list too. The server
//! remembers the last [`DEFAULT_MAX_ENTRIES`] exchanged tokens so; an older one evicted from
//! that table is no longer revoked with its subject token and lives until its `exp` (no
//! later than the subject token's, at most the access-token lifetime).
//!
//! Raw tokens and secrets are never logged; log lines carry at most a short SHA-256 prefix.

mod authorize;
mod client_metadata;
mod cors;
mod dpop;
mod endpoints;
mod exchange;
mod pages;
mod params;
mod server;
mod state;
mod store;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::testing::SigningAlgorithm;
use server::ServerHandle;
use state::{Config, Inner};

/// The resource (token audience) when none is configured.
pub const DEFAULT_RESOURCE: &str = "http://127.0.0.1:8080/mcp";
/// The id of the client every server has unless configured otherwise; see
/// [`DevAuthorizationServer::dev_client`].
pub const DEFAULT_CLIENT_ID: &str = "dev-client";
/// The subject of authorization-code tokens when none is configured.
pub const DEFAULT_DEV_USER: &str = "dev-user";
/// The default lifetime of access tokens: short-lived.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(300);
/// The default lifetime of refresh tokens.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// The lifetime of authorization codes.
pub const AUTHORIZATION_CODE_TTL: Duration = Duration::from_secs(60);
/// The default bound of each in-memory table (codes, refresh tokens, registered clients,
/// revoked tokens, exchanged tokens by their subject token, the DPoP proofs seen within their
/// `iat` window).
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// A pre-registered confidential client of a [`DevAuthorizationServer`].
///
/// Confidential clients authenticate at the token, introspection and revocation endpoints
/// with `client_secret_basic` or `client_secret_post` (either is accepted), and may use every
/// grant type. `Debug` does not show the secret.
///
/// ```
/// use mcp_oauth::dev::DevClient;
///
/// let client = DevClient {
///     id: "calendar-agent".into(),
///     secret: "agent-secret".into(),
///     scopes: vec!["calendar:read".into()],
///     redirect_uris: vec!["http://127.0.0.1/callback".into()],
/// };
/// assert!(!format!("{client:?}").contains("agent-secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DevClient {
    /// The `client_id`.
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// The scopes the client may be granted; each must be one of the server's
    /// ([`DevAuthorizationServerBuilder::scopes`]). A request without `scope` gets them all.
    pub scopes: Vec<String>,
    /// The redirect URIs of the authorization-code flow, matched exactly, except that
    /// `http` loopback URIs (`127.0.0.1`, `[::1]`, `localhost`) match with any port
    /// (RFC 8252 §7.3). A request redirecting to any other URI is shown a consent page.
    /// Their query may not carry `code`, `state`, `error`, `error_description` or `iss`.
    pub redirect_uris: Vec<String>,
}

impl fmt::Debug for DevClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevClient")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// Configures and starts a [`DevAuthorizationServer`]; from
/// [`DevAuthorizationServer::builder`].
#[must_use = "call .start().await to run the server"]
pub struct DevAuthorizationServerBuilder {
    port: u16,
    resources: Vec<String>,
    scopes: Vec<String>,
    dev_user: String,
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    clients: Vec<DevClient>,
    algorithm: SigningAlgorithm,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    redirect_hosts: Vec<String>,
    revocations: Option<crate::revocation::Revocations>,
    exchange_audiences: Vec<String>,
    resource_servers: Vec<(String, String)>,
    local_client_metadata_ca: Option<String>,
}

impl fmt::Debug for DevAuthorizationServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevAuthorizationServerBuilder")
            .field("port", &self.port)
            .field("resources", &self.resources)
            .field("scopes", &self.scopes)
            .field("dev_user", &self.dev_user)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("clients", &self.clients)
            .field("algorithm", &self.algorithm.name())
            .field("clock", &self.clock)
            .field("max_entries", &self.max_entries)
            .field("redirect_hosts", &self.redirect_hosts)
            .field("revocations", &self.revocations)
            .field("exchange_audiences", &self.exchange_audiences)
            .field("resource_servers", &self.resource_servers)
            .field(
                "allow_local_client_metadata",
                &self.local_client_metadata_ca.is_some(),
            )
            .finish()
    }
}

impl Default for DevAuthorizationServerBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            resources: Vec::new(),
            scopes: Vec::new(),
            dev_user: DEFAULT_DEV_USER.to_owned(),
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            clients: Vec::new(),
            algorithm: SigningAlgorithm::ES256,
            clock: Arc::new(SystemClock),
            max_entries: DEFAULT_MAX_ENTRIES,
            redirect_hosts: Vec::new(),
            revocations: None,
            exchange_audiences: Vec::new(),
            resource_servers: Vec::new(),
            local_client_metadata_ca: None,
        }
    }
}

impl DevAuthorizationServerBuilder {
    /// Listens on this port of 127.0.0.1 (default 0: an ephemeral port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// A resource (RFC 8707) the server issues tokens for, e.g. the MCP endpoint URL
    /// `http://127.0.0.1:8080/mcp`. Call again to serve several: a token's `aud` is the
    /// `resource` parameter of the request, which must be one of them, or the first one when
    /// the request has none. Default: [`DEFAULT_RESOURCE`].
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The scopes the server grants (replacing any set before), advertised as
    /// `scopes_supported`. Default: none.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The subject (`sub`) of authorization-code tokens: every authorization request is
    /// made for this user, approved without asking when its redirect URI is loopback.
    /// Default: [`DEFAULT_DEV_USER`].
    pub fn dev_user(mut self, subject: impl Into<String>) -> Self {
        self.dev_user = subject.into();
        self
    }

    /// The lifetime of access tokens (whole seconds, at least one). Default:
    /// [`DEFAULT_ACCESS_TOKEN_TTL`].
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// The lifetime of each refresh token (whole seconds, at least one); every rotation issues
    /// a new one with a fresh lifetime. Default: [`DEFAULT_REFRESH_TOKEN_TTL`].
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Pre-registers a confidential client. A client with the id [`DEFAULT_CLIENT_ID`]
    /// replaces the default one.
    pub fn client(mut self, client: DevClient) -> Self {
        self.clients.push(client);
        self
    }

    /// The signing algorithm (default `ES256`; `RS256` works too, as does any asymmetric
    /// algorithm of the test kit). `HS256` is refused at [`start`](Self::start).
    pub fn signing_algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The clock every time-based decision reads (default: the system clock). A
    /// [`ManualClock`](crate::clock::ManualClock) lets tests expire codes and tokens.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The bound of each in-memory table (default [`DEFAULT_MAX_ENTRIES`]; at least 1).
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries.max(1);
        self
    }

    /// Lets dynamically registered clients use redirect URIs on these hosts too (`http` or
    /// `https`, any port and path), adding to the hosts allowed before; a host is a domain
    /// name (matched ASCII case-insensitively), an IPv4 address or a bracketed IPv6 address,
    /// without scheme or port.
    ///
    /// By default registration accepts only the `http` loopback redirect URIs of native apps
    /// (RFC 8252 §7.3: `http://127.0.0.1`, `http://[::1]`, `http://localhost`, any port) and
    /// refuses any other with `400 invalid_redirect_uri`. Registration is open, so without
    /// this limit any web page the developer visits could register itself a client that
    /// redirects to it. Every host added here widens that: authorization requests redirecting
    /// off loopback are shown a consent page, but a web page can still lead the developer to
    /// it. Add only hosts you control (e.g. a web client you are developing).
    ///
    /// ```
    /// use mcp_oauth::dev::DevAuthorizationServer;
    ///
    /// let builder = DevAuthorizationServer::builder().allow_redirect_hosts(["app.example.test"]);
    /// assert!(format!("{builder:?}").contains("app.example.test"));
    /// ```
    pub fn allow_redirect_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redirect_hosts
            .extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Lists the access tokens revoked at `POST /revoke` (and those revoked with a replayed
    /// code or refresh token, and those [exchanged](Self::exchange_audiences) from any of
    /// them, transitively) in `revocations` too, by issuer and `jti`: give it a resource
    /// server's validator list ([`Validator::revocations`](crate::Validator::revocations)) and
    /// the resource server refuses them at once; shared through Redis
    /// ([`crate::redis`]), every replica does.
    pub fn revocations(mut self, revocations: crate::revocation::Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Offers RFC 8693 token exchange for these downstream audiences (adding to those given
    /// before): a confidential client that is an audience of an access token of this server
    /// may trade it at `POST /token` for a token whose `aud` is one or more of them (the
    /// request's `audience` and `resource` parameters), for the same subject, naming the
    /// client in `act`. See the [module](self) documentation for the rules.
    ///
    /// Empty (the default): the grant is not offered, not advertised in
    /// `grant_types_supported`, and a request for it is `unsupported_grant_type`. An audience
    /// is any string without whitespace or control characters, compared exactly.
    ///
    /// ```
    /// use mcp_oauth::dev::DevAuthorizationServer;
    ///
    /// let builder = DevAuthorizationServer::builder()
    ///     .exchange_audiences(["https://calendar-api.example.test"]);
    /// assert!(format!("{builder:?}").contains("calendar-api"));
    /// ```
    pub fn exchange_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exchange_audiences
            .extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Declares that the pre-registered confidential client `client_id` (see
    /// [`client`](Self::client)) *is* the resource server `resource`: it counts as an audience
    /// of the access tokens whose `aud` contains `resource`, and may exchange them (token
    /// exchange, [`exchange_audiences`](Self::exchange_audiences)). A client also counts as
    /// an audience of the tokens whose `aud` contains its `client_id`. Call again to declare
    /// more.
    ///
    /// [`start`](Self::start) fails if `client_id` is not a pre-registered client (the
    /// default [`DEFAULT_CLIENT_ID`] included); pre-registered clients are all confidential.
    pub fn resource_server(
        mut self,
        client_id: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        self.resource_servers
            .push((client_id.into(), resource.into()));
        self
    }

    /// **For tests only**: lets client metadata documents be fetched from loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `::1`), over https with a certificate issued by
    /// `root_ca_pem` (one or more PEM certificates), e.g. a
    /// [`testing::HttpsServer`](crate::testing::HttpsServer) with
    /// [`TEST_ROOT_CA_PEM`](crate::testing::TEST_ROOT_CA_PEM).
    ///
    /// The root CA is trusted *instead of* the system's roots: a server so configured fetches
    /// no document from a real https site. Private, link-local and other reserved addresses
    /// stay refused. Without this setting (the default), documents are fetched from public
    /// addresses only, with the system's roots. [`start`](Self::start) fails if the PEM holds
    /// no usable certificate, and logs a warning that the setting is on.
    pub fn allow_local_client_metadata(mut self, root_ca_pem: impl Into<String>) -> Self {
        self.local_client_metadata_ca = Some(root_ca_pem.into());
        self
    }

    /// Binds 127.0.0.1 and serves on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if the port cannot be bound (e.g. [`io::ErrorKind::AddrInUse`]), if
    /// called outside a tokio runtime, or ([`io::ErrorKind::InvalidInput`]) if the
    /// configuration is invalid: a resource that is not an absolute URL without fragment, a
    /// malformed scope, a client scope the server does not grant, an empty or duplicate
    /// client id or secret, a malformed redirect URI (or one whose query carries a parameter
    /// of the authorization response), a symmetric signing algorithm, a zero
    /// lifetime, a malformed [redirect host](Self::allow_redirect_hosts) or
    /// [exchange audience](Self::exchange_audiences), a [resource
    /// server](Self::resource_server) that is not a pre-registered client, an unusable root CA
    /// for [local client metadata documents](Self::allow_local_client_metadata).
    pub async fn start(self) -> io::Result<DevAuthorizationServer> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "DevAuthorizationServer::start needs a tokio runtime",
            ));
        }
        let config = Config::check(Config {
            resources: if self.resources.is_empty() {
                vec![DEFAULT_RESOURCE.to_owned()]
            } else {
                self.resources
            },
            scopes: self.scopes,
            dev_user: self.dev_user,
            access_token_ttl: self.access_token_ttl.as_secs(),
            refresh_token_ttl: self.refresh_token_ttl.as_secs(),
            clients: self.clients,
            algorithm: self.algorithm,
            clock: self.clock,
            max_entries: self.max_entries,
            redirect_hosts: self.redirect_hosts,
            revocations: self.revocations,
            exchange_audiences: self.exchange_audiences,
            resource_servers: self.resource_servers,
            local_client_metadata_ca: self.local_client_metadata_ca,
        })?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::new(config, addr)?);
        let server = ServerHandle::spawn(listener, Arc::clone(&inner));
        tracing::info!(issuer = %inner.issuer, "dev authorization server listening");
        Ok(DevAuthorizationServer {
            inner,
            server: Arc::new(server),
        })
    }
}

/// A development OAuth 2.1 authorization server on 127.0.0.1; see the [module](self)
/// documentation for its endpoints.
///
/// Clones are cheap handles onto the same server. It runs on the tokio runtime that started
/// it until [`shutdown`](Self::shutdown), until the last handle is dropped, or until the
/// runtime ends.
///
/// ```
/// use mcp_oauth::dev::DevAuthorizationServer;
/// use mcp_oauth::{IssuerPolicy, Validator};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// tokio::runtime::Runtime::new()?.block_on(async {
///     let server = DevAuthorizationServer::builder()
///         .resource("http://127.0.0.1:8080/mcp")
///         .scopes(["calendar:read", "calendar:write"])
///         .start()
///         .await?;
///
///     // The default confidential client, for `client_credentials` against
///     // `server.token_endpoint()`.
///     let client = server.dev_client();
///     assert_eq!(client.id, "dev-client");
///
///     // A ready-to-paste token for `Authorization: Bearer …`.
///     let token = server.mint_access_token("dev-user", &client.id, &["calendar:read"]);
///
///     // The MCP server's side: strict RFC 9068 validation, keys found by discovery.
///     let policy = IssuerPolicy::builder(server.issuer())
///         .audience("http://127.0.0.1:8080/mcp")
///         .build()?;
///     let verified = Validator::new(policy)?.validate(&token).await?;
///     assert_eq!(verified.subject(), Some("dev-user"));
///     assert!(verified.scopes().contains("calendar:read"));
///
///     server.shutdown().await;
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct DevAuthorizationServer {
    inner: Arc<Inner>,
    server: Arc<ServerHandle>,
}

impl fmt::Debug for DevAuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevAuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .field("resources", &self.inner.config.resources)
            .field("scopes", &self.inner.config.scopes)
            .field("dev_client", &self.inner.dev_client)
            .finish_non_exhaustive()
    }
}

impl DevAuthorizationServer {
    /// A builder with the defaults: an ephemeral port, [`DEFAULT_RESOURCE`], no scopes,
    /// [`DEFAULT_DEV_USER`], 5-minute access tokens, one client [`DEFAULT_CLIENT_ID`].
    pub fn builder() -> DevAuthorizationServerBuilder {
        DevAuthorizationServerBuilder::default()
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (the `iss` of its tokens).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The RFC 8414 metadata URL: `<issuer>/.well-known/oauth-authorization-server`.
    pub fn metadata_url(&self) -> String {
        format!(
            "{}/.well-known/oauth-authorization-server",
            self.inner.issuer
        )
    }

    /// The JWKS URL: `<issuer>/jwks`.
    pub fn jwks_uri(&self) -> &str {
        &self.inner.jwks_uri
    }

    /// The authorization endpoint: `<issuer>/authorize`.
    pub fn authorization_endpoint(&self) -> &str {
        &self.inner.authorization_endpoint
    }

    /// The token endpoint: `<issuer>/token`.
    pub fn token_endpoint(&self) -> &str {
        &self.inner.token_endpoint
    }

    /// The dynamic client registration endpoint: `<issuer>/register`.
    pub fn registration_endpoint(&self) -> &str {
        &self.inner.registration_endpoint
    }

    /// The introspection endpoint: `<issuer>/introspect`.
    pub fn introspection_endpoint(&self) -> &str {
        &self.inner.introspection_endpoint
    }

    /// The revocation endpoint: `<issuer>/revoke`.
    pub fn revocation_endpoint(&self) -> &str {
        &self.inner.revocation_endpoint
    }

    /// The default resource: the audience of tokens whose request names none.
    pub fn resource(&self) -> &str {
        &self.inner.config.resources[0]
    }

    /// Every resource the server issues tokens for, the default first.
    pub fn resources(&self) -> &[String] {
        &self.inner.config.resources
    }

    /// The scopes the server grants.
    pub fn scopes(&self) -> &[String] {
        &self.inner.config.scopes
    }

    /// The subject of authorization-code tokens.
    pub fn dev_user(&self) -> &str {
        &self.inner.config.dev_user
    }

    /// The client [`DEFAULT_CLIENT_ID`]: the default one (a random secret, every scope,
    /// redirect URIs `http://127.0.0.1/callback` and `http://localhost/callback`, any port),
    /// or the one configured with that id.
    pub fn dev_client(&self) -> &DevClient {
        &self.inner.dev_client
    }

    /// The RFC 8414 metadata document, as served.
    pub fn metadata(&self) -> Value {
        self.inner.metadata(false)
    }

    /// The JWKS, as served.
    pub fn jwks(&self) -> Value {
        self.inner.jwks()
    }

    /// Mints an access token as the token endpoint would: an RFC 9068 JWT for the default
    /// resource, signed by the server's key, valid for the access-token lifetime. Nothing is
    /// checked: `subject`, `client_id` and `scopes` are taken as given (an empty `scopes`
    /// gives a token without `scope`).
    pub fn mint_access_token(&self, subject: &str, client_id: &str, scopes: &[&str]) -> String {
        self.mint_access_token_with_claims(subject, client_id, scopes, Map::new())
    }

    /// Mints an access token as [`mint_access_token`](Self::mint_access_token) does, with
    /// `extra` claims added, for tests: a `may_act` or `act` claim, say. An extra claim
    /// replaces the standard claim of the same name (`aud`, `exp`, …), so that a test can
    /// shape the token freely; the token is still signed by the server's key and is judged by
    /// its endpoints (introspection, token exchange) like any other.
    ///
    /// ```
    /// use mcp_oauth::dev::DevAuthorizationServer;
    /// use serde_json::json;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// tokio::runtime::Runtime::new()?.block_on(async {
    ///     let server = DevAuthorizationServer::builder().start().await?;
    ///     let mut extra = serde_json::Map::new();
    ///     extra.insert("may_act".into(), json!({ "sub": "calendar-server" }));
    ///     let token = server.mint_access_token_with_claims("dev-user", "dev-client", &[], extra);
    ///     assert_eq!(token.split('.').count(), 3);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn mint_access_token_with_claims(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[&str],
        extra: Map<String, Value>,
    ) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let now = self.inner.now();
        self.inner
            .mint_access_token(subject, client_id, &scopes, extra, now)
            .token
    }

    /// Stops listening: once this returns, new connections are refused. Open connections
    /// are closed gracefully; this waits up to a second for them. Idempotent.
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}
