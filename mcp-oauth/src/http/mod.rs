//! The HTTP layer (feature `layer`, on by default): a tower [`Layer`](tower_layer::Layer)
//! that makes an MCP endpoint an OAuth 2.1 resource server.
//!
//! - serves the RFC 9728 metadata at the path-inserted well-known URL and at the root alias
//!   (200, `application/json`, `Cache-Control`, readable cross-origin);
//! - guards the MCP endpoint: 401 with `resource_metadata` and `scope` (no `error`) when
//!   credentials are missing or of another scheme; 400 `invalid_request` for two
//!   `Authorization` headers, a header plus a form-body token, or a malformed bearer value;
//!   401 `invalid_token` with a fixed description when validation fails; 503 with
//!   `Retry-After` when the issuer's keys have never loaded;
//! - decides per-tool step-up before dispatch from the JSON-RPC body (batches included),
//!   checking `Mcp-Method`/`Mcp-Name` agree with it: 403 `insufficient_scope` with every
//!   scope the operation needs; bodies over the bound get 413; responses are never buffered;
//! - refuses a browser `Origin` that is not allowed (403) before any token work, and a `Host`
//!   that is not the endpoint's (403; for a loopback resource, any non-loopback name), against
//!   DNS rebinding;
//! - binds each `Mcp-Session-Id` to the principal that created it;
//! - puts the [`VerifiedToken`](crate::VerifiedToken) in the request extensions and removes
//!   the `Authorization` header, so tools never see the raw token;
//! - records one [`crate::audit::AuditEvent`] per decision (see
//!   [`audit`](crate::audit)) and counts it in the [`metrics`](crate::metrics);
//! - limits failed authentications per client address and, when configured, requests per
//!   principal: 429 with `Retry-After` (see [`rate_limit`](crate::rate_limit)).
//!
//! Every URL in a challenge or the metadata comes from configuration, never from `Host`.
//!
//! ```
//! use mcp_oauth::tools::{ToolScopes, ToolTable};
//! use mcp_oauth::{IssuerPolicy, OAuthLayer, ResourceConfig, ResourceDeclaration, Validator};
//!
//! static CALENDAR: ResourceDeclaration = ResourceDeclaration {
//!     scopes: &["calendar:read", "calendar:write"],
//!     ..ResourceDeclaration::new("Calendar", "https://calendar.example.com/mcp", &["https://auth.example.com"])
//! };
//! let config = ResourceConfig::from_declaration(&CALENDAR).unwrap();
//! let validator = Validator::new(
//!     IssuerPolicy::builder("https://auth.example.com").audience(config.resource_url()).build().unwrap(),
//! )
//! .unwrap();
//! let layer = OAuthLayer::builder(config, validator)
//!     .tools(ToolTable::new([ToolScopes::new("create_event", &["calendar:write"])]))
//!     .build()
//!     .unwrap();
//! assert_eq!(layer.metadata_path(), "/.well-known/oauth-protected-resource/mcp");
//! // axum: layer.layer(Router::new().route_service("/mcp", rmcp_service)); everything at
//! // and below the route is guarded, so nest_service("/mcp", …) is safe too.
//! ```

pub(crate) mod bearer; // pub(crate): reached by `crate::__fuzz` (feature `fuzzing`)
mod body;
mod client_addr;
mod credentials;
mod decision;
mod handler_step_up;
mod handles;
pub(crate) mod jsonrpc; // pub(crate): reached by `crate::__fuzz` (feature `fuzzing`)
mod limits;
mod operations;
mod origin;
mod request_id;
mod responses;
mod service;
mod session;
mod streams;
mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;

pub use body::{RequestBody, ResponseBody};
pub use client_addr::{ClientAddress, InvalidProxy, PeerAddr, TrustedProxies};
pub use handles::TaskIds;
pub use origin::OriginPolicy;
pub use request_id::RequestId;
pub use service::{OAuthService, ResponseFuture};
pub use session::{InMemorySessionBindings, Principal, SessionBindings, SessionCheck};

use crate::access::AccessPolicy;
use crate::audit::{AuditEvent, AuditSink, Outcome, TracingSink};
use crate::challenge::{Challenge, Scheme};
use crate::clock::{Clock, SystemClock};
use crate::dpop::{DpopConfig, DpopSetupError, DpopVerifier};
use crate::metadata::{self, MetadataError};
use crate::rate_limit::RateLimits;
use crate::resource::ResourceConfig;

use crate::operations::{MethodTable, PromptTable, ResourceTable};
use crate::tools::ToolTable;
use crate::validation::Validator;

/// Every table the layer keeps that the replicas of one deployment must share, from one
/// store ([`RedisState`](crate::redis::RedisState) with the feature `redis`); given to
/// [`OAuthLayerBuilder::shared_state`].
pub trait SharedState: Send + Sync + 'static {
    /// The rate-limit buckets.
    fn rate_limit_store(&self) -> Arc<dyn crate::rate_limit::RateLimitStore>;
    /// The DPoP proof ids.
    fn replay_store(&self) -> Arc<dyn crate::dpop::ReplayStore>;
    /// Which principal each session belongs to.
    fn session_bindings(&self) -> Arc<dyn SessionBindings>;
    /// Shares `revocations` (the validator's list) with the other replicas.
    fn share_revocations(&self, revocations: &crate::revocation::Revocations);
}

/// The default bound of a request body the layer reads (4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why the layer could not be built: the startup self-check failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The resource configuration yields invalid metadata.
    #[error("invalid resource metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// The guarded route is not the path of the `resource` URL: clients would be sent to
    /// metadata for another endpoint (see typescript-sdk #2751).
    #[error(
        "the guarded route `{route}` is not the path of the resource URL `{resource}`: \
         clients build the metadata URL from the endpoint they call"
    )]
    RouteMismatch {
        /// The route given to the builder.
        route: String,
        /// The configured resource URL.
        resource: String,
    },
    /// The metadata URL named in challenges is not served by this layer.
    #[error("the challenge names {challenge} but the metadata is served at {served}")]
    MetadataUrlMismatch {
        /// The URL the challenge carries.
        challenge: String,
        /// The path the layer serves.
        served: String,
    },
    /// No issuer of the validator appears in the metadata's `authorization_servers`.
    #[error(
        "the validator trusts issuer {0}, which the metadata does not list in authorization_servers"
    )]
    IssuerNotAdvertised(String),
    /// An [`OAuthLayerBuilder::allowed_hosts`] entry is not a host name or `host:port`.
    #[error("allowed_hosts: `{0}` is not a host name, an IP address or `host:port`")]
    InvalidAllowedHost(String),
    /// The resource's DPoP configuration is unusable (its algorithms, its URL).
    #[error("DPoP: {0}")]
    Dpop(#[from] DpopSetupError),
}

/// Builds an [`OAuthLayer`]; see the module docs.
#[must_use]
pub struct OAuthLayerBuilder {
    config: ResourceConfig,
    validator: Validator,
    tools: ToolTable,
    prompts: PromptTable,
    resources: ResourceTable,
    methods: MethodTable,
    route: Option<String>,
    origins: Option<OriginPolicy>,
    allowed_hosts: Vec<String>,
    sessions: Arc<dyn SessionBindings>,
    max_body_bytes: usize,
    metadata_max_age: Duration,
    audit: Arc<dyn AuditSink>,
    rate_limits: RateLimits,
    client_address: ClientAddress,
    clock: Arc<dyn Clock>,
    handle_key: Option<[u8; 32]>,
    dpop: DpopConfig,
    shared_state: Option<Arc<dyn SharedState>>,
    exchanger: Option<crate::exchange::TokenExchanger>,
}

impl std::fmt::Debug for OAuthLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthLayerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OAuthLayerBuilder {
    /// The per-tool scope table (with rmcp: `mcp_oauth::rmcp::tool_table(&router)`).
    pub fn tools(mut self, tools: ToolTable) -> Self {
        self.tools = tools;
        self
    }

    /// The per-prompt scope table (with rmcp: `mcp_oauth::rmcp::prompt_table(&router)`).
    pub fn prompts(mut self, prompts: PromptTable) -> Self {
        self.prompts = prompts;
        self
    }

    /// Resource URIs and URI templates with their scopes, registered at startup: added to
    /// those the declaration names (`#[protected_resource(resources = {...})]`); a template
    /// written in both needs the scopes of both.
    pub fn resources(mut self, resources: ResourceTable) -> Self {
        self.resources = resources;
        self
    }

    /// Scopes methods need whatever they operate on (`tasks/list`, `subscriptions/listen`,
    /// a method the server adds, …).
    pub fn methods(mut self, methods: MethodTable) -> Self {
        self.methods = methods;
        self
    }

    /// The path the MCP endpoint is served at, checked against the `resource` URL's path
    /// (by default, that path is guarded).
    pub fn route(mut self, path: impl Into<String>) -> Self {
        self.route = Some(path.into());
        self
    }

    /// Which browser origins may call the endpoint (default:
    /// [`OriginPolicy::for_resource`], the resource URL's own origin and, for a loopback
    /// resource, every loopback alias on its port).
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = Some(policy);
        self
    }

    /// More `Host` names the endpoint may be reached by: `name` (any port) or `name:port`.
    /// A request with another `Host` gets 403 before any token work (DNS rebinding).
    ///
    /// For a loopback resource (`localhost`, `127.0.0.1`, `[::1]`) the check is always on and
    /// these names are added to the loopback names. For another resource it is off by
    /// default, because a reverse proxy may rewrite `Host` to its upstream's name; naming
    /// hosts here turns it on, with the resource URL's host always allowed. An entry that is
    /// not a host fails [`build`](Self::build) with [`LayerError::InvalidAllowedHost`].
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Where session bindings live (default: in memory, 100,000 sessions).
    pub fn session_bindings(mut self, bindings: impl SessionBindings) -> Self {
        self.sessions = Arc::new(bindings);
        self
    }

    /// The largest request body read to decide step-up (default 4 MiB); larger is 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long clients and shared caches may keep the metadata document:
    /// `Cache-Control: public, max-age=<seconds>` (default 5 minutes). A change of the
    /// deployment's issuers or scopes reaches clients within this time.
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.metadata_max_age = max_age;
        self
    }

    /// Where audit events go (default: [`TracingSink`], `tracing` events under the
    /// `mcp_oauth::audit` target). Combine sinks as a tuple:
    /// `.audit_sink((TracingSink, JsonLinesSink::new(file)))`; see [`crate::audit`].
    pub fn audit_sink(mut self, sink: impl AuditSink) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// The rate limits (default: failed authentications limited per client address,
    /// principals not limited); see [`crate::rate_limit`].
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Where the client address comes from (default: the connection's peer; a forwarding
    /// header only when configured here).
    pub fn client_address(mut self, source: ClientAddress) -> Self {
        self.client_address = source;
        self
    }

    /// The key that binds state handles (event ids for `Last-Event-ID`, task ids) to the
    /// principal they were issued to (default: random per process). Replicas that serve one
    /// endpoint share one key, 32 random bytes from a secret store, so that a stream or task
    /// begun on one can be resumed or polled on another; see [`TaskIds`].
    pub fn handle_key(mut self, key: [u8; 32]) -> Self {
        self.handle_key = Some(key);
        self
    }

    /// How DPoP proofs are checked when the resource's [`DpopMode`](crate::dpop::DpopMode)
    /// enables them ([`ResourceConfig::dpop`], `#[protected_resource(dpop = ...)]`): the `iat`
    /// window, the replay store (shared by replicas), server nonces. The mode and the
    /// algorithms come from the resource configuration, and the clock is the layer's.
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.dpop = config;
        self
    }

    /// Shares this layer's state with the other replicas of the deployment (with Redis:
    /// `.shared_state(redis_state.clone())`, see [`crate::redis`]): the rate-limit buckets,
    /// the DPoP replay store, the session bindings, and the validator's
    /// [revocation list](crate::Validator::revocations). Applied when the layer is built,
    /// over [`rate_limits`](Self::rate_limits)' store, [`dpop`](Self::dpop)'s replay store
    /// and [`session_bindings`](Self::session_bindings), whatever the order of the calls.
    /// The introspection cache is the validator's: see
    /// [`IntrospectionBuilder::shared_cache`](crate::introspection::IntrospectionBuilder::shared_cache).
    /// With shared state, [`build`](Self::build) runs inside a Tokio runtime (the revocation
    /// subscription is a task).
    pub fn shared_state(mut self, state: impl SharedState) -> Self {
        self.shared_state = Some(Arc::new(state));
        self
    }

    /// Lets tools obtain tokens for downstream APIs on the caller's behalf (RFC 8693 token
    /// exchange; see [`crate::exchange`]). Only then does the layer keep the incoming token,
    /// sealed in the request's [`Downstream`](crate::exchange::Downstream) (which a tool
    /// takes as a parameter), never in a header the endpoint could forward; exchanges are
    /// recorded by this layer's [audit sink](Self::audit_sink).
    pub fn token_exchange(mut self, exchanger: crate::exchange::TokenExchanger) -> Self {
        self.exchanger = Some(exchanger);
        self
    }

    /// The clock of rate limits, DPoP proofs and audit timestamps (default: the system
    /// clock; tests inject a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Renders the metadata and runs the startup self-check.
    pub fn build(mut self) -> Result<OAuthLayer, LayerError> {
        if let Some(shared) = self.shared_state.take() {
            self.rate_limits.store = shared.rate_limit_store();
            self.dpop = self.dpop.replay_store(shared.replay_store());
            self.sessions = shared.session_bindings();
            shared.share_revocations(self.validator.revocations());
        }
        let resource = self.config.resource_url().to_owned();
        let document = self.config.metadata()?;
        let metadata_url = metadata::well_known_url(&resource)?;
        let metadata_path = metadata::well_known_path(&resource)?;
        let root_path = metadata::WELL_KNOWN_PREFIX.to_owned();
        let resource_path = path_of(&resource).unwrap_or_else(|| "/".to_owned());
        let route = self.route.unwrap_or_else(|| resource_path.clone());
        if route != resource_path {
            return Err(LayerError::RouteMismatch { route, resource });
        }
        if path_of(&metadata_url).as_deref() != Some(metadata_path.as_str())
            || origin::origin_of(&metadata_url) != origin::origin_of(&resource)
        {
            return Err(LayerError::MetadataUrlMismatch {
                challenge: metadata_url,
                served: metadata_path,
            });
        }
        for policy in self.validator.policies() {
            // A validator whose audiences do not name this resource would accept tokens meant
            // for another one (token passthrough). Audiences that are not the URL (Entra's
            // application id) are legitimate, so this warns rather than fails.
            if !policy
                .audiences()
                .iter()
                .any(|aud| crate::validation::audience_names(aud, &resource))
            {
                tracing::warn!(
                    target: "mcp_oauth::http",
                    issuer = policy.issuer(),
                    audiences = ?policy.audiences(),
                    resource = %resource,
                    "no audience of this issuer's policy is the resource URL: make sure each one identifies this resource only"
                );
            }
            if !document
                .authorization_servers
                .iter()
                .any(|server| server == policy.issuer())
            {
                return Err(LayerError::IssuerNotAdvertised(policy.issuer().to_owned()));
            }
        }
        let origins = match self.origins {
            Some(policy) => policy,
            None => OriginPolicy::for_resource(&resource),
        };
        let hosts = origin::HostPolicy::for_resource(&resource, &self.allowed_hosts)
            .map_err(LayerError::InvalidAllowedHost)?;
        let dpop = if self.config.dpop_mode().is_enabled() {
            Some(DpopVerifier::new(
                self.config.dpop_mode(),
                self.config
                    .dpop_algorithms()
                    .map_err(DpopSetupError::Algorithms)?,
                &resource,
                self.dpop.clock(self.clock.clone()),
            )?)
        } else {
            None
        };
        let discovery = Challenge::new(metadata_url.clone()).scope(self.config.challenge_scopes());
        let discovery_headers = responses::challenge_values_with(
            dpop.as_ref(),
            &metadata_url,
            &self.config.challenge_scopes(),
            Scheme::Bearer,
            http::StatusCode::UNAUTHORIZED,
            discovery,
        );
        if discovery_headers.is_empty() {
            return Err(LayerError::MetadataUrlMismatch {
                challenge: metadata_url.clone(),
                served: metadata_path.clone(),
            });
        }
        let cache_control = HeaderValue::from_str(&format!(
            "public, max-age={}",
            self.metadata_max_age.as_secs()
        ))
        .unwrap_or(HeaderValue::from_static("public, max-age=300"));
        Ok(OAuthLayer {
            shared: Arc::new(Shared {
                access: Arc::new(
                    AccessPolicy::new(
                        self.config.required_scopes(),
                        self.config.scope_hierarchy().clone(),
                        self.tools,
                    )
                    .with_prompts(self.prompts)
                    .with_resources(
                        ResourceTable::from_declared(self.config.declaration().resources)
                            .merged(self.resources),
                    )
                    .with_methods(self.methods),
                ),
                validator: self.validator,
                metadata_json: Bytes::from(document.to_json()),
                metadata_url,
                metadata_paths: if metadata_path == root_path {
                    vec![metadata_path]
                } else {
                    vec![metadata_path, root_path]
                },
                route,
                origins,
                hosts,
                sessions: self.sessions,
                max_body_bytes: self.max_body_bytes,
                discovery_headers,
                dpop,
                metadata_cache_control: cache_control,
                config: self.config,
                audit: self.audit,
                exchanger: self.exchanger,
                rate_limits: self.rate_limits,
                client_address: self.client_address,
                clock: self.clock,
                handle_key: self
                    .handle_key
                    .map_or_else(handles::HandleKey::random, handles::HandleKey::new),
                #[cfg(feature = "metrics")]
                metrics_exported_at: std::sync::atomic::AtomicU64::new(0),
                warned_no_address: AtomicBool::new(false),
            }),
        })
    }
}

fn path_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let path = parsed.path();
    Some(if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    })
}

pub(crate) struct Shared {
    pub(crate) config: ResourceConfig,
    pub(crate) validator: Validator,
    /// What each operation needs (the one rule, shared with the rmcp guards).
    pub(crate) access: Arc<AccessPolicy>,
    pub(crate) metadata_json: Bytes,
    pub(crate) metadata_url: String,
    pub(crate) metadata_paths: Vec<String>,
    pub(crate) route: String,
    pub(crate) origins: OriginPolicy,
    pub(crate) hosts: origin::HostPolicy,
    pub(crate) sessions: Arc<dyn SessionBindings>,
    pub(crate) max_body_bytes: usize,
    /// The `WWW-Authenticate` values of the credential-less 401 (two when both schemes are
    /// accepted).
    pub(crate) discovery_headers: Vec<HeaderValue>,
    /// The DPoP verifier, when the resource's mode enables DPoP.
    pub(crate) dpop: Option<DpopVerifier>,
    pub(crate) metadata_cache_control: HeaderValue,
    pub(crate) audit: Arc<dyn AuditSink>,
    /// The token exchanger tools reach through the request's `Downstream`, when configured.
    pub(crate) exchanger: Option<crate::exchange::TokenExchanger>,
    pub(crate) rate_limits: RateLimits,
    pub(crate) client_address: ClientAddress,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) handle_key: handles::HandleKey,
    /// Clock seconds of the last metrics export of the validator's statistics.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_exported_at: std::sync::atomic::AtomicU64,
    pub(crate) warned_no_address: AtomicBool,
}

impl Shared {
    /// One decision: to the audit sink and the decision counter. `event` builds the audit
    /// event, only when the sink will record it ([`AuditSink::enabled`]).
    pub(crate) fn record<'e>(
        &self,
        outcome: Outcome,
        reason: &'static str,
        event: impl FnOnce() -> AuditEvent<'e>,
    ) {
        if self.audit.enabled(outcome) {
            self.audit.record(&event());
        }
        crate::metrics::record_decision(outcome.as_str(), reason);
        #[cfg(feature = "metrics")]
        {
            use std::sync::atomic::Ordering;
            let now = self.clock.now().as_secs();
            let last = self.metrics_exported_at.load(Ordering::Relaxed);
            if now >= last + crate::metrics::EXPORT_INTERVAL.as_secs()
                && self
                    .metrics_exported_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                crate::metrics::export_validator(&self.validator);
            }
        }
    }
}

/// The layer: wrap the router that serves the MCP endpoint (apply it at the top level, so
/// it sees full request paths). Cheap to clone.
#[derive(Clone)]
pub struct OAuthLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthLayer")
            .field("resource", &self.shared.config.resource_url())
            .field("route", &self.shared.route)
            .finish_non_exhaustive()
    }
}

impl OAuthLayer {
    /// Starts a layer for `config`, validating tokens with `validator`.
    pub fn builder(config: ResourceConfig, validator: Validator) -> OAuthLayerBuilder {
        OAuthLayerBuilder {
            config,
            validator,
            tools: ToolTable::default(),
            prompts: PromptTable::default(),
            resources: ResourceTable::default(),
            methods: MethodTable::default(),
            route: None,
            origins: None,
            allowed_hosts: Vec::new(),
            sessions: Arc::new(InMemorySessionBindings::default()),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metadata_max_age: Duration::from_secs(300),
            audit: Arc::new(TracingSink),
            rate_limits: RateLimits::default(),
            client_address: ClientAddress::default(),
            clock: Arc::new(SystemClock),
            handle_key: None,
            dpop: DpopConfig::default(),
            shared_state: None,
            exchanger: None,
        }
    }

    /// The path the metadata is served at (path-inserted form).
    pub fn metadata_path(&self) -> &str {
        &self.shared.metadata_paths[0]
    }

    /// The resource URL: the MCP endpoint clients use.
    pub fn resource_url(&self) -> &str {
        self.shared.config.resource_url()
    }

    /// The metadata URL every challenge names.
    pub fn metadata_url(&self) -> &str {
        &self.shared.metadata_url
    }

    /// The resource's DPoP mode (see [`crate::dpop`]).
    pub fn dpop_mode(&self) -> crate::dpop::DpopMode {
        self.shared.config.dpop_mode()
    }

    /// The guarded route.
    pub fn route(&self) -> &str {
        &self.shared.route
    }

    /// The validator (for its stats, or to preload keys at startup).
    pub fn validator(&self) -> &Validator {
        &self.shared.validator
    }

    /// Exports the validator's key-set and token-cache statistics to the `metrics` facade
    /// now (the layer also does on decisions, at most once a second); a no-op without the
    /// `metrics` feature. See [`crate::metrics`].
    pub fn export_metrics(&self) {
        crate::metrics::export_validator(&self.shared.validator);
    }
}

impl<S> tower_layer::Layer<S> for OAuthLayer {
    type Service = OAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OAuthService::new(inner, self.shared.clone())
    }
}
