//! From the two attributes to a served app in one call (feature `serve`).
//!
//! ```no_run
//! # #[cfg(all(feature = "rmcp", feature = "serve"))]
//! # mod example {
//! use mcp_oauth::{ProtectedResourceExt, mcp_tool, protected_resource};
//! use rmcp::model::{CallToolResult, ContentBlock};
//! use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
//!
//! #[protected_resource(
//!     resource = "http://127.0.0.1:8080/mcp",
//!     authorization_servers = ["https://auth.example.com"],
//!     scopes = ["calendar:read"],
//! )]
//! #[derive(Clone)]
//! pub struct Calendar;
//!
//! #[tool_router]
//! impl Calendar {
//!     #[mcp_tool(scopes = ["calendar:read"])]
//!     #[tool(description = "List events")]
//!     async fn list_events(&self) -> Result<CallToolResult, ErrorData> {
//!         Ok(CallToolResult::success(vec![ContentBlock::text("standup")]))
//!     }
//! }
//!
//! #[tool_handler]
//! impl ServerHandler for Calendar {}
//!
//! pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Calendar::oauth()                       // the declaration's defaults
//!         .with_env()?                        // MCP_OAUTH_* over them
//!         .tool_router(&Calendar::tool_router())
//!         .build()
//!         .await?                             // keys, layer, listener: startup errors here
//!         .serve_rmcp(|| Ok(Calendar))        // TCP_NODELAY, client addresses, SIGINT/SIGTERM
//!         .await?;
//!     Ok(())
//! }
//! # }
//! ```
//!
//! Every fact is stated once: the validator trusts exactly the issuers the metadata
//! advertises (with the resource as audience unless [`Settings::audience`] says otherwise),
//! the tool table comes from the router, and the layer's `Host` rule and rmcp's
//! `allowed_hosts` come from [`Settings::allowed_hosts`]. The builders underneath
//! ([`OAuthLayer::builder`], [`Validator::builder`]) stay public for what this does not
//! cover; [`OAuthApp::layer_with`] reaches the layer builder from here.

use std::marker::PhantomData;
use std::net::SocketAddr;

use crate::audit::{JsonLinesSink, TracingSink};
use crate::dpop::{DpopConfig, DpopMode, DpopNonces};
use crate::exchange::{ExchangeConfigError, TokenExchanger};
use crate::http::{
    ClientAddress, LayerError, OAuthLayer, OAuthLayerBuilder, OriginPolicy, TrustedProxies,
};
use crate::introspection::{ClientAuth, Introspection, IntrospectionConfigError};
use crate::rate_limit::{Budget, RateLimits};
use crate::resource::{ConfigError, ProtectedResource, ResourceConfig};
use crate::settings::{AuditLog, ExchangeGrant, Provider, Settings, SettingsError};
use crate::tools::ToolTable;
use crate::validation::{IssuerPolicy, PolicyError, Validator, ValidatorError};

/// The burst of the failed-authentication budget: a client that mistypes a token a few
/// times is never locked out, a guesser is after 60 attempts.
const FAILED_AUTH_BURST: u32 = 60;

/// Why the app could not start: each names the setting or step that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// A setting is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The effective resource configuration is invalid.
    #[error("invalid resource configuration: {0}")]
    Config(#[from] ConfigError),
    /// An issuer policy is invalid.
    #[error("invalid issuer policy: {0}")]
    Policy(#[from] PolicyError),
    /// The validator could not be built.
    #[error("invalid validator configuration: {0}")]
    Validator(#[from] ValidatorError),
    /// The introspection configuration is invalid.
    #[error("invalid introspection configuration: {0}")]
    Introspection(#[from] IntrospectionConfigError),
    /// The layer's startup self-check failed.
    #[error("invalid configuration: {0}")]
    Layer(#[from] LayerError),
    /// The token exchanger could not be built (`MCP_OAUTH_EXCHANGE_*`): the variable, and
    /// why.
    #[error("{name}: invalid token exchange configuration: {source}")]
    TokenExchange {
        /// The variable to look at.
        name: &'static str,
        /// Why.
        source: ExchangeConfigError,
    },
    /// No issuer is configured and the embedded dev server may not run here.
    #[error("{0}")]
    NoIssuer(String),
    /// The listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server using the port? set MCP_OAUTH_RESOURCE or MCP_OAUTH_BIND)"
    )]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log file could not be opened.
    #[error("MCP_OAUTH_AUDIT_LOG: cannot open {path}: {source}")]
    AuditLog {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The shared state on Redis could not be set up (`MCP_OAUTH_REDIS_URL`).
    #[cfg(feature = "redis")]
    #[error("MCP_OAUTH_REDIS_URL: {0}")]
    Redis(#[from] crate::redis::RedisSetupError),
    /// The embedded dev authorization server could not start.
    #[cfg(feature = "dev")]
    #[error("cannot start the dev authorization server: {0}")]
    DevServer(std::io::Error),
}

/// `Calendar::oauth()`: the one-call setup for every [`ProtectedResource`] (import the
/// trait: `use mcp_oauth::ProtectedResourceExt;`).
pub trait ProtectedResourceExt: ProtectedResource + Sized {
    /// Starts the setup with the declaration's defaults.
    fn oauth() -> OAuthApp<Self> {
        OAuthApp {
            settings: Settings::default(),
            tools: None,
            customize: Vec::new(),
            dev_if_unconfigured: false,
            #[cfg(feature = "dev")]
            dev_exchange_audiences: Vec::new(),
            resource: PhantomData,
        }
    }
}

impl<R: ProtectedResource> ProtectedResourceExt for R {}

type Customize = Box<dyn FnOnce(OAuthLayerBuilder) -> OAuthLayerBuilder + Send>;

/// The one-call setup of a protected MCP server; see the [module docs](self).
#[must_use]
pub struct OAuthApp<R> {
    settings: Settings,
    tools: Option<ToolTable>,
    customize: Vec<Customize>,
    dev_if_unconfigured: bool,
    #[cfg(feature = "dev")]
    dev_exchange_audiences: Vec<String>,
    resource: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for OAuthApp<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<R: ProtectedResource> OAuthApp<R> {
    /// Replaces the settings (from a configuration file, say).
    /// Replaces the settings (from a configuration file, say); they are checked like the
    /// environment's when the app is built.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Reads `MCP_OAUTH_*` over the settings so far (see [`Settings::from_env`]): an
    /// unknown variable or an invalid value is an error naming it.
    pub fn with_env(mut self) -> Result<Self, SettingsError> {
        self.settings = self.settings.with_env()?;
        Ok(self)
    }

    /// The per-tool scope table (with rmcp, prefer [`tool_router`](Self::tool_router)).
    pub fn tools(mut self, tools: ToolTable) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The per-tool scope table, read from the router's `#[mcp_tool]` annotations.
    #[cfg(feature = "rmcp")]
    pub fn tool_router<S: Send + Sync + 'static>(
        self,
        router: &rmcp::handler::server::router::tool::ToolRouter<S>,
    ) -> Self {
        self.tools(crate::rmcp::tool_table(router))
    }

    /// The per-prompt scope table, read from the router's `#[mcp_prompt]` annotations.
    /// (Resources need no call: the layer reads `#[protected_resource(resources = {...})]`.)
    #[cfg(feature = "rmcp")]
    pub fn prompt_router<S: Send + Sync + 'static>(
        self,
        router: &rmcp::handler::server::router::prompt::PromptRouter<S>,
    ) -> Self {
        let prompts = crate::rmcp::prompt_table(router);
        self.layer_with(move |layer| layer.prompts(prompts))
    }

    /// Scopes methods need whatever they operate on (`tasks/list`, `subscriptions/listen`,
    /// a method the server adds, …), beyond the resource-wide ones.
    pub fn methods(self, methods: crate::operations::MethodTable) -> Self {
        self.layer_with(move |layer| layer.methods(methods))
    }

    /// Adjusts the layer builder after the settings applied (an audit sink, session
    /// bindings, a body bound, …).
    pub fn layer_with(
        mut self,
        customize: impl FnOnce(OAuthLayerBuilder) -> OAuthLayerBuilder + Send + 'static,
    ) -> Self {
        self.customize.push(Box::new(customize));
        self
    }

    /// With no issuer configured (no `issuers`, no `provider`), run the embedded dev
    /// authorization server (feature `dev`), and only where it is safe: the resource URL
    /// is loopback and the server binds a loopback address. Anywhere else startup fails:
    /// never a silent dev issuer.
    #[cfg(feature = "dev")]
    pub fn dev_server_if_unconfigured(mut self) -> Self {
        self.dev_if_unconfigured = true;
        self
    }

    /// With the embedded dev server ([`dev_server_if_unconfigured`](Self::dev_server_if_unconfigured))
    /// and no token exchange in the settings, token exchange for these downstream audiences
    /// (adding to those given before): a demo calls its demo API with no configuration.
    /// The dev server allows them, and registers this server's confidential client for them
    /// as with `MCP_OAUTH_EXCHANGE_AUDIENCES` alone (see [`build`](Self::build)).
    /// `MCP_OAUTH_EXCHANGE_*` replaces them; with any other issuer they mean nothing.
    ///
    /// ```no_run
    /// # #[cfg(feature = "rmcp")] mod example {
    /// # use mcp_oauth::{ProtectedResourceExt, protected_resource};
    /// # #[protected_resource(resource = "http://127.0.0.1:8080/mcp", authorization_servers = ["https://auth.example.com"], scopes = ["calendar:read"])]
    /// # pub struct Calendar;
    /// # pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Calendar::oauth()
    ///     .with_env()?
    ///     .dev_server_if_unconfigured()
    ///     .dev_exchange_audiences(["http://127.0.0.1:8081"])
    ///     .build()
    ///     .await?;
    /// assert!(app.token_exchanger().is_some() || app.dev_server().is_none());
    /// # Ok(()) }
    /// # }
    /// ```
    #[cfg(feature = "dev")]
    pub fn dev_exchange_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dev_exchange_audiences
            .extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Binds the listener, resolves the issuers (starting the dev server if asked and
    /// allowed), builds the validator and the layer, and preloads the keys.
    ///
    /// With [`Settings::token_exchange`], a [`TokenExchanger`] for the layer (tools take a
    /// [`Downstream`](crate::exchange::Downstream)): the server authenticates with
    /// `client_secret_basic`, at the configured token endpoint or the one the issuer's
    /// metadata names (several issuers need the endpoint), with the grant of
    /// [`Settings::token_exchange_grant`]. With the embedded dev server the audiences alone
    /// suffice: the dev server registers this server's client (the configured id, or
    /// `<type>-server`, e.g. `calendar-server`; the configured secret, or a random one
    /// never shown), as the resource server of its audience, allowed to exchange for them.
    pub async fn build(self) -> Result<OAuthServer, StartupError> {
        let settings = self.settings;
        settings.validate()?;
        let mut config = ResourceConfig::of::<R>();
        if let Some(resource) = &settings.resource {
            config = config.resource(resource);
        }
        if let Some(mode) = settings.dpop {
            config = config.dpop(mode);
        }
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut dpop = dpop_config(&settings, config.dpop_mode())?;
        #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
        let shared = shared_state(&settings)?;
        // One list: the validator consults it, the embedded dev server's revocation endpoint
        // feeds it, and with Redis every replica shares it.
        let revocations = crate::revocation::Revocations::new();
        #[cfg(feature = "redis")]
        if let Some(redis) = &shared
            && settings.dpop_nonce
            && settings.dpop_nonce_keys.is_empty()
        {
            // Replicas share the nonce key, or each would refuse the others' nonces.
            let key = redis.dpop_nonce_key().await?;
            let nonces = DpopNonces::new([key]).map_err(|_| SettingsError::Invalid {
                name: "MCP_OAUTH_DPOP_NONCE_KEYS".into(),
                reason: "no key".into(),
            })?;
            dpop = dpop.nonces(nonces);
        }
        let resource = config.resource_url().to_owned();
        let resource_url = url::Url::parse(&resource).map_err(|e| SettingsError::Invalid {
            name: "MCP_OAUTH_RESOURCE".into(),
            reason: format!("{resource:?} is not a URL: {e}"),
        })?;
        let bind = bind_address(&settings, &resource_url)?;
        let audience = settings
            .audience
            .clone()
            .unwrap_or_else(|| resource.clone());
        let issuers = configured_issuers(&settings)?;
        let use_dev = issuers.is_empty() && self.dev_if_unconfigured;
        if use_dev {
            // Decided before anything listens: a dev issuer never serves off loopback.
            require_loopback(&resource_url, &bind).await?;
        }
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| StartupError::Listen {
                addr: bind.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: bind.clone(),
                source,
            })?;

        #[cfg(feature = "dev")]
        let dev_exchange = if use_dev {
            dev_exchange_client::<R>(&settings, &self.dev_exchange_audiences)?
        } else {
            None
        };
        #[cfg(feature = "dev")]
        let mut dev = None;
        let (issuers, policies) = if !issuers.is_empty() {
            let policies = issuer_policies(&settings, &issuers, &audience)?;
            (issuers, policies)
        } else if use_dev {
            #[cfg(feature = "dev")]
            {
                let server =
                    start_dev_server::<R>(&audience, &revocations, dev_exchange.as_ref()).await?;
                let policy = IssuerPolicy::builder(server.issuer())
                    .audience(&audience)
                    .jwks_uri(server.jwks_uri())
                    .build()?;
                let issuer = server.issuer().to_owned();
                dev = Some(server);
                (vec![issuer], vec![policy])
            }
            #[cfg(not(feature = "dev"))]
            unreachable!("dev_server_if_unconfigured needs the dev feature")
        } else {
            let declared = config.issuers().to_vec();
            let policies = issuer_policies(&settings, &declared, &audience)?;
            (declared, policies)
        };
        let mut validator = Validator::builder();
        for policy in policies {
            validator = validator.issuer(policy);
        }
        if let Some(introspection) = &settings.introspection {
            let issuer = issuers.first().ok_or_else(|| {
                StartupError::NoIssuer("introspection needs an issuer (MCP_OAUTH_ISSUER)".into())
            })?;
            let mut builder = Introspection::builder(issuer)
                .audience(&audience)
                .client_secret_basic(
                    introspection.client_id.clone(),
                    introspection.client_secret.expose().to_owned(),
                );
            if let Some(endpoint) = &introspection.endpoint {
                builder = builder.endpoint(endpoint);
            }
            #[cfg(feature = "redis")]
            if let Some(redis) = &shared {
                builder = builder.shared_cache(std::sync::Arc::new(redis.clone()));
            }
            validator = validator.introspection(builder.build()?);
        }
        let validator = validator.revocations(revocations).build()?;
        // The metadata advertises exactly the issuers the validator trusts (for a
        // multi-tenant policy, its advertised issuer rather than the template).
        let issuers: Vec<String> = validator
            .advertised_issuers()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let config = config.authorization_servers(issuers.iter().cloned());
        if let Err(error) = validator.preload().await {
            tracing::warn!(%error, "the issuer's keys could not be loaded yet; requests will retry");
        }
        #[cfg(feature = "dev")]
        let exchanger = match (&dev, dev_exchange) {
            (Some(server), Some(client)) => Some(dev_exchanger(server, client)?),
            _ => token_exchanger(&settings, &issuers)?,
        };
        #[cfg(not(feature = "dev"))]
        let exchanger = token_exchanger(&settings, &issuers)?;

        let mut layer = OAuthLayer::builder(config, validator)
            .tools(self.tools.unwrap_or_default())
            .origins(origins(&resource, &settings.allowed_origins))
            .allowed_hosts(settings.allowed_hosts.iter().cloned())
            .rate_limits(rate_limits(&settings))
            .client_address(client_address(&settings)?)
            .dpop(dpop);
        if let Some(exchanger) = &exchanger {
            tracing::info!(
                client_id = exchanger.client_id(),
                grant = ?exchanger.grant(),
                audiences = ?exchanger.allowed_audiences(),
                "token exchange for downstream APIs"
            );
            layer = layer.token_exchange(exchanger.clone());
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = &shared {
            layer = layer.shared_state(redis.clone());
        }
        layer = match &settings.audit_log {
            None => layer.audit_sink(TracingSink),
            // Written by the sink's own thread: a request never waits for the log.
            Some(AuditLog::Stderr) => {
                layer.audit_sink(JsonLinesSink::non_blocking(std::io::stderr()).map_err(
                    |source| StartupError::AuditLog {
                        path: "stderr".to_owned(),
                        source,
                    },
                )?)
            }
            Some(AuditLog::File(path)) => {
                let failed = |source| StartupError::AuditLog {
                    path: path.display().to_string(),
                    source,
                };
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(failed)?;
                layer.audit_sink(JsonLinesSink::non_blocking(file).map_err(failed)?)
            }
        };
        for customize in self.customize {
            layer = customize(layer);
        }
        let layer = layer.build()?;
        Ok(OAuthServer {
            layer,
            listener,
            local_addr,
            resource_is_loopback: crate::loopback::is_loopback_url(&resource_url),
            settings,
            issuers,
            exchanger,
            signals: ShutdownSignals::install(),
            #[cfg(feature = "dev")]
            dev,
            #[cfg(feature = "redis")]
            redis: shared,
        })
    }
}

/// `MCP_OAUTH_BIND`, or the resource URL's host and port (an https resource needs an
/// explicit bind: its TLS is terminated in front of this server).
fn bind_address(settings: &Settings, resource: &url::Url) -> Result<String, SettingsError> {
    if let Some(bind) = &settings.bind {
        return Ok(bind.clone());
    }
    if resource.scheme() == "https" {
        return Err(SettingsError::Invalid {
            name: "MCP_OAUTH_BIND".into(),
            reason: "required when MCP_OAUTH_RESOURCE is https (TLS is terminated in front of \
                     this server)"
                .into(),
        });
    }
    let host = resource
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = resource.port_or_known_default().unwrap_or(80);
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The issuers the settings name: `issuers`, or the provider's.
fn configured_issuers(settings: &Settings) -> Result<Vec<String>, SettingsError> {
    if !settings.issuers.is_empty() {
        return Ok(settings.issuers.clone());
    }
    match &settings.provider {
        None | Some(Provider::Generic) => Ok(Vec::new()),
        Some(provider) => Ok(vec![provider.profile(None)?.issuer()]),
    }
}

/// One policy per issuer: the provider's conventions when one is named, the strict RFC 9068
/// profile otherwise; audience the resource unless overridden.
fn issuer_policies(
    settings: &Settings,
    issuers: &[String],
    audience: &str,
) -> Result<Vec<IssuerPolicy>, StartupError> {
    issuers
        .iter()
        .map(|issuer| {
            let mut builder = match &settings.provider {
                Some(provider) => IssuerPolicy::preset(provider.profile(Some(issuer))?),
                None => IssuerPolicy::builder(issuer),
            };
            if let Some(Provider::Entra {
                allowed_tenants, ..
            }) = &settings.provider
                && !allowed_tenants.is_empty()
            {
                builder = builder.allowed_tenants(allowed_tenants.iter().cloned());
            }
            builder = builder.audience(audience);
            if let Some(jwks) = &settings.jwks_uri {
                builder = builder.jwks_uri(jwks);
            }
            Ok(builder.build()?)
        })
        .collect()
}

fn origins(resource: &str, extra: &[String]) -> OriginPolicy {
    extra
        .iter()
        .fold(OriginPolicy::for_resource(resource), |policy, origin| {
            policy.and(origin)
        })
}

fn rate_limits(settings: &Settings) -> RateLimits {
    let mut limits = match settings.failed_auth_per_minute {
        None => RateLimits::default(),
        Some(0) => RateLimits::default().without_failed_auth_limit(),
        Some(n) => {
            RateLimits::default().failed_auth(Budget::per_minute(n).burst(FAILED_AUTH_BURST))
        }
    };
    if let Some(n) = settings.requests_per_minute {
        limits = limits.per_principal(Budget::per_minute(n).burst(n));
    }
    limits
}

fn client_address(settings: &Settings) -> Result<ClientAddress, SettingsError> {
    if settings.trusted_proxies.is_empty() {
        return Ok(ClientAddress::peer());
    }
    let proxies =
        TrustedProxies::new(&settings.trusted_proxies).map_err(|e| SettingsError::Invalid {
            name: "MCP_OAUTH_TRUSTED_PROXIES".into(),
            reason: e.to_string(),
        })?;
    Ok(ClientAddress::x_forwarded_for(proxies))
}

/// The embedded dev server runs only for a loopback resource bound to loopback addresses
/// (a host name in the bind address is resolved: every address must be loopback).
async fn require_loopback(resource: &url::Url, bind: &str) -> Result<(), StartupError> {
    let refuse = |why: &str| {
        StartupError::NoIssuer(format!(
            "no issuer is configured (set MCP_OAUTH_ISSUER or MCP_OAUTH_PROVIDER); the embedded \
             dev authorization server runs only for a loopback resource bound to a loopback \
             address, and {why}"
        ))
    };
    if !crate::loopback::is_loopback_url(resource) {
        return Err(refuse(&format!("the resource {resource} is not loopback")));
    }
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(bind)
        .await
        .map_err(|e| refuse(&format!("the bind address {bind} does not resolve: {e}")))?
        .collect();
    if addresses.is_empty() || addresses.iter().any(|a| !a.ip().is_loopback()) {
        return Err(refuse(&format!("the bind address {bind} is not loopback")));
    }
    Ok(())
}

/// The DPoP options the settings state. Nonces or a window with DPoP disabled (by the
/// declaration, the settings not naming a mode) stop startup: a control that is set must
/// never be silently off.
fn dpop_config(settings: &Settings, mode: DpopMode) -> Result<DpopConfig, SettingsError> {
    if !mode.is_enabled() && (settings.dpop_nonce || settings.dpop_iat_window.is_some()) {
        return Err(SettingsError::Invalid {
            name: "MCP_OAUTH_DPOP".into(),
            reason: "DPoP nonces or an iat window are set, but DPoP is disabled (the \
                     declaration's `dpop`): set MCP_OAUTH_DPOP=allowed or required"
                .into(),
        });
    }
    let mut config = DpopConfig::default();
    if let Some(window) = settings.dpop_iat_window {
        config = config.iat_window(std::time::Duration::from_secs(window));
    }
    if settings.dpop_nonce {
        let nonces = if settings.dpop_nonce_keys.is_empty() {
            DpopNonces::random()
        } else {
            let keys = settings
                .dpop_nonce_keys
                .iter()
                .map(crate::settings::nonce_key)
                .collect::<Result<Vec<_>, _>>()?;
            DpopNonces::new(keys).map_err(|_| SettingsError::Invalid {
                name: "MCP_OAUTH_DPOP_NONCE_KEYS".into(),
                reason: "no key".into(),
            })?
        };
        config = config.nonces(nonces);
    }
    Ok(config)
}

/// The shared state `MCP_OAUTH_REDIS_URL` names: connected in the background (an
/// unreachable Redis is an outage, not a startup failure). Without the `redis` feature, a
/// URL stops startup: the replicas would silently not share their limits.
#[cfg(feature = "redis")]
fn shared_state(settings: &Settings) -> Result<Option<crate::redis::RedisState>, StartupError> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let mut config = crate::redis::RedisConfig::new(url.expose());
    if let Some(prefix) = &settings.redis_prefix {
        config = config.prefix(prefix);
    }
    if let Some(ms) = settings.redis_timeout_ms {
        config = config.timeout(std::time::Duration::from_millis(u64::from(ms)));
    }
    if let Some(replicas) = settings.replicas {
        config = config.replicas(replicas);
    }
    let redis = crate::redis::RedisState::connect(config)?;
    tracing::info!(
        url = %crate::redis::redacted(url.expose()),
        "state shared by replicas on Redis"
    );
    Ok(Some(redis))
}

#[cfg(not(feature = "redis"))]
fn shared_state(settings: &Settings) -> Result<Option<std::convert::Infallible>, StartupError> {
    if settings.redis_url.is_some() {
        return Err(SettingsError::Invalid {
            name: "MCP_OAUTH_REDIS_URL".into(),
            reason: "this build has no Redis support: enable the `redis` feature of mcp-oauth"
                .into(),
        }
        .into());
    }
    Ok(None)
}

#[cfg(feature = "dev")]
async fn start_dev_server<R: ProtectedResource>(
    audience: &str,
    revocations: &crate::revocation::Revocations,
    exchange: Option<&DevExchange>,
) -> Result<crate::dev::DevAuthorizationServer, StartupError> {
    let mut builder = crate::dev::DevAuthorizationServer::builder()
        .revocations(revocations.clone())
        .resource(audience)
        .scopes(R::DECLARATION.scopes.iter().copied())
        // Banner tokens are pasted by hand: an hour instead of five minutes.
        .access_token_ttl(std::time::Duration::from_secs(3600));
    if let Some(exchange) = exchange {
        // This server's own client, an audience of the tokens issued for this resource,
        // allowed to exchange them for the downstream audiences.
        builder = builder
            .client(exchange.client.clone())
            .resource_server(exchange.client.id.clone(), audience)
            .exchange_audiences(exchange.audiences.iter().cloned());
    }
    builder.start().await.map_err(StartupError::DevServer)
}

/// The variables of token exchange, as errors name them.
const EXCHANGE_CLIENT_ID: &str = "MCP_OAUTH_EXCHANGE_CLIENT_ID";
const EXCHANGE_TOKEN_ENDPOINT: &str = "MCP_OAUTH_EXCHANGE_TOKEN_ENDPOINT";
const EXCHANGE_AUDIENCES: &str = "MCP_OAUTH_EXCHANGE_AUDIENCES";

fn exchange_setting(name: &str, reason: impl Into<String>) -> StartupError {
    StartupError::Settings(SettingsError::Invalid {
        name: name.to_owned(),
        reason: reason.into(),
    })
}

/// The exchanger [`Settings::token_exchange`] describes, against a configured issuer: the
/// server's client id and secret are required here (the audiences alone configure it only
/// with the embedded dev server).
fn token_exchanger(
    settings: &Settings,
    issuers: &[String],
) -> Result<Option<TokenExchanger>, StartupError> {
    let Some(exchange) = &settings.token_exchange else {
        return Ok(None);
    };
    let (Some(client_id), Some(client_secret)) = (&exchange.client_id, &exchange.client_secret)
    else {
        return Err(exchange_setting(
            EXCHANGE_CLIENT_ID,
            format!(
                "required (with MCP_OAUTH_EXCHANGE_CLIENT_SECRET) for token exchange: this \
                 server's confidential client at the authorization server. {EXCHANGE_AUDIENCES} \
                 alone configures it only with the embedded dev server (no issuer configured, \
                 loopback)"
            ),
        ));
    };
    let mut builder = TokenExchanger::builder(ClientAuth::SecretBasic {
        client_id: client_id.clone(),
        client_secret: client_secret.expose().to_owned(),
    })
    .allow_audiences(exchange.audiences.iter().cloned());
    builder = match (&exchange.token_endpoint, issuers) {
        // The one issuer's tokens go to the endpoint configured for it.
        (Some(endpoint), [issuer]) => builder.token_endpoint(endpoint).subject_issuer(issuer),
        (Some(endpoint), several) => {
            // Only the tokens of the issuers on the endpoint's host: another authorization
            // server could replay a token it receives to this resource.
            let origin = |url: &str| url::Url::parse(url).ok().map(|u| u.origin());
            let own: Vec<&String> = several
                .iter()
                .filter(|issuer| origin(issuer).is_some() && origin(issuer) == origin(endpoint))
                .collect();
            if own.is_empty() {
                return Err(exchange_setting(
                    EXCHANGE_TOKEN_ENDPOINT,
                    format!(
                        "{endpoint:?} is on none of the issuers' hosts ({}): whose tokens may \
                         it exchange? (with one issuer, its tokens)",
                        several.join(", ")
                    ),
                ));
            }
            own.into_iter()
                .fold(builder.token_endpoint(endpoint), |builder, issuer| {
                    builder.subject_issuer(issuer)
                })
        }
        (None, [issuer]) => builder.issuer(issuer),
        (None, []) => {
            return Err(exchange_setting(
                EXCHANGE_TOKEN_ENDPOINT,
                "required: no issuer is configured to discover the token endpoint from",
            ));
        }
        (None, several) => {
            return Err(exchange_setting(
                EXCHANGE_TOKEN_ENDPOINT,
                format!(
                    "required with several issuers ({}): which token endpoint exchanges the \
                     users' tokens?",
                    several.join(", ")
                ),
            ));
        }
    };
    if settings.token_exchange_grant() == Some(ExchangeGrant::EntraObo) {
        builder = builder.entra_on_behalf_of();
    }
    builder
        .build()
        .map_err(|source| {
            let name = match &source {
                ExchangeConfigError::NotHttps(url)
                    if exchange.token_endpoint.as_ref() != Some(url) =>
                {
                    "MCP_OAUTH_ISSUER"
                }
                ExchangeConfigError::NoAudience | ExchangeConfigError::InvalidAudience(_) => {
                    EXCHANGE_AUDIENCES
                }
                ExchangeConfigError::NoClientCredentials => EXCHANGE_CLIENT_ID,
                _ => EXCHANGE_TOKEN_ENDPOINT,
            };
            StartupError::TokenExchange { name, source }
        })
        .map(Some)
}

/// This server's client at the embedded dev server, and the audiences it may exchange for.
#[cfg(feature = "dev")]
struct DevExchange {
    client: crate::dev::DevClient,
    audiences: Vec<String>,
}

/// The token exchange the embedded dev server is set up for: the settings' (their client, or
/// one registered here), else the program's [`OAuthApp::dev_exchange_audiences`]; `None`
/// when neither asks for it.
#[cfg(feature = "dev")]
fn dev_exchange_client<R: ProtectedResource>(
    settings: &Settings,
    default_audiences: &[String],
) -> Result<Option<DevExchange>, StartupError> {
    let (client_id, secret, audiences) = match &settings.token_exchange {
        Some(exchange) => {
            if settings.token_exchange_grant() == Some(ExchangeGrant::EntraObo) {
                return Err(exchange_setting(
                    "MCP_OAUTH_EXCHANGE_GRANT",
                    "the embedded dev server speaks RFC 8693 token exchange \
                     (`token-exchange`), not Entra ID's on-behalf-of flow",
                ));
            }
            if exchange.token_endpoint.is_some() {
                return Err(exchange_setting(
                    EXCHANGE_TOKEN_ENDPOINT,
                    "the embedded dev server's token endpoint is used: unset this, or \
                     configure the issuer it belongs to (MCP_OAUTH_ISSUER)",
                ));
            }
            (
                exchange.client_id.clone(),
                exchange
                    .client_secret
                    .as_ref()
                    .map(|s| s.expose().to_owned()),
                exchange.audiences.clone(),
            )
        }
        None if !default_audiences.is_empty() => (None, None, default_audiences.to_vec()),
        None => return Ok(None),
    };
    let id = client_id.unwrap_or_else(|| dev_server_client_id(R::DECLARATION.type_name));
    if id == crate::dev::DEFAULT_CLIENT_ID {
        return Err(exchange_setting(
            EXCHANGE_CLIENT_ID,
            format!(
                "{id:?} is the dev server's client for MCP clients: this server needs one of \
                 its own"
            ),
        ));
    }
    // 256 random bits, never shown: only this process uses it.
    let secret = secret.unwrap_or_else(|| {
        format!(
            "{}{}",
            crate::crypto::random_id(),
            crate::crypto::random_id()
        )
    });
    Ok(Some(DevExchange {
        client: crate::dev::DevClient {
            id,
            secret,
            scopes: R::DECLARATION
                .scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            redirect_uris: Vec::new(),
        },
        audiences,
    }))
}

/// `<type>-server`: the resource type's name in lower case, e.g. `calendar-server`.
#[cfg(feature = "dev")]
fn dev_server_client_id(type_name: &str) -> String {
    let name: String = type_name
        .rsplit("::")
        .next()
        .unwrap_or_default()
        .chars()
        .take_while(|c| *c != '<')
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if name.is_empty() {
        "mcp-server".to_owned()
    } else {
        format!("{name}-server")
    }
}

/// The exchanger of the server's client at the embedded dev server's token endpoint.
#[cfg(feature = "dev")]
fn dev_exchanger(
    server: &crate::dev::DevAuthorizationServer,
    exchange: DevExchange,
) -> Result<TokenExchanger, StartupError> {
    TokenExchanger::builder(ClientAuth::SecretBasic {
        client_id: exchange.client.id,
        client_secret: exchange.client.secret,
    })
    .token_endpoint(server.token_endpoint())
    .subject_issuer(server.issuer())
    .allow_audiences(exchange.audiences)
    .build()
    .map_err(|source| StartupError::TokenExchange {
        name: EXCHANGE_AUDIENCES,
        source,
    })
}

/// A built app: the layer, the bound listener, the issuers (and the dev server, if one
/// runs). Serve it with [`serve`](Self::serve) or [`serve_rmcp`](Self::serve_rmcp), or take
/// its [`router`](Self::router) into a larger axum app.
pub struct OAuthServer {
    layer: OAuthLayer,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    resource_is_loopback: bool,
    settings: Settings,
    issuers: Vec<String>,
    exchanger: Option<TokenExchanger>,
    signals: ShutdownSignals,
    #[cfg(feature = "dev")]
    dev: Option<crate::dev::DevAuthorizationServer>,
    #[cfg(feature = "redis")]
    redis: Option<crate::redis::RedisState>,
}

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServer")
            .field("layer", &self.layer)
            .field("local_addr", &self.local_addr)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl OAuthServer {
    /// The layer (its metadata URL, route, validator).
    pub fn layer(&self) -> &OAuthLayer {
        &self.layer
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The issuers the metadata advertises and the validator trusts.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The token exchanger the layer hands tools (through each request's
    /// [`Downstream`](crate::exchange::Downstream)), when token exchange is configured: its
    /// [`client_id`](TokenExchanger::client_id) is the `act.sub` of the tokens it obtains.
    pub fn token_exchanger(&self) -> Option<&TokenExchanger> {
        self.exchanger.as_ref()
    }

    /// The revocation list the validator consults: revoke a token here (by issuer and `jti`,
    /// or by the token) and every replica sharing the Redis of `MCP_OAUTH_REDIS_URL` refuses
    /// it within a second; without Redis, this replica does at once.
    ///
    /// ```no_run
    /// # async fn demo(app: &mcp_oauth::app::OAuthServer) {
    /// use mcp_oauth::revocation::Revocation;
    /// let until = 1_900_000_000; // the token's `exp`
    /// if let Err(error) = app.revocations().revoke(Revocation::jwt_id("https://auth.example.com", "4f1c2a"), until).await {
    ///     eprintln!("revoked here, not yet shared: {error}");
    /// }
    /// # }
    /// ```
    pub fn revocations(&self) -> &crate::revocation::Revocations {
        self.layer.validator().revocations()
    }

    /// The state shared with the other replicas, when `MCP_OAUTH_REDIS_URL` is set.
    #[cfg(feature = "redis")]
    pub fn shared_state(&self) -> Option<&crate::redis::RedisState> {
        self.redis.as_ref()
    }

    /// The embedded dev authorization server, when one runs.
    #[cfg(feature = "dev")]
    pub fn dev_server(&self) -> Option<&crate::dev::DevAuthorizationServer> {
        self.dev.as_ref()
    }

    /// The `Host` names rmcp's own check accepts: the same setting as the layer's (for a
    /// loopback resource, the loopback names too; for another resource, none configured
    /// means no check, since proxies rewrite `Host`).
    pub fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        if self.resource_is_loopback {
            // rmcp compares host names without IPv6 brackets.
            hosts.extend(crate::loopback::LOOPBACK_URL_HOSTS.map(|host| {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            }));
        }
        hosts.extend(self.settings.allowed_hosts.iter().cloned());
        hosts
    }

    /// rmcp's streamable HTTP configuration with [`allowed_hosts`](Self::allowed_hosts) and
    /// `json_response` on: a request rmcp serves statelessly (MCP 2026-07-28) whose handler
    /// answers with one message gets it as `application/json`, so a step-up a handler raises
    /// ([`require_scopes`](crate::rmcp::require_scopes)) reaches the client as a 403
    /// challenge. A handler that sends notifications first still streams (rmcp falls back
    /// to SSE).
    #[cfg(feature = "rmcp")]
    pub fn streamable_http_config(
        &self,
    ) -> rmcp::transport::streamable_http_server::StreamableHttpServerConfig {
        let mut config =
            rmcp::transport::streamable_http_server::StreamableHttpServerConfig::default();
        config.allowed_hosts = self.allowed_hosts();
        config.json_response = true;
        // A session made on another replica is restored from the shared store (the layer
        // has checked it is the principal's).
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            config.session_store = Some(std::sync::Arc::new(redis.session_store()));
        }
        config
    }

    /// An axum router serving `mcp` at the resource's route, behind the layer (which also
    /// serves the metadata).
    pub fn router<S>(&self, mcp: S) -> axum::Router
    where
        S: tower_service::Service<
                http::Request<crate::http::ResponseBody>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let inner = axum::Router::new().route_service(self.layer.route(), mcp);
        axum::Router::new().fallback_service(tower_layer::Layer::layer(&self.layer, inner))
    }

    /// Serves `mcp` until SIGINT or SIGTERM: `TCP_NODELAY`, each client's address for the
    /// failed-authentication budget, graceful shutdown (in-flight requests finish).
    pub async fn serve<S>(self, mcp: S) -> std::io::Result<()>
    where
        S: tower_service::Service<
                http::Request<crate::http::ResponseBody>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let router = self.router(mcp);
        serve_router(self.listener, router, self.signals).await?;
        #[cfg(feature = "dev")]
        if let Some(dev) = &self.dev {
            dev.shutdown().await;
        }
        Ok(())
    }

    /// Serves the rmcp server `factory` makes (one per session, or per request when
    /// stateless), with [`streamable_http_config`](Self::streamable_http_config).
    #[cfg(feature = "rmcp")]
    pub async fn serve_rmcp<H>(
        self,
        factory: impl Fn() -> Result<H, std::io::Error> + Send + Sync + 'static,
    ) -> std::io::Result<()>
    where
        H: rmcp::ServerHandler + Send + 'static,
    {
        use rmcp::transport::streamable_http_server::StreamableHttpService;
        use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
        let service = StreamableHttpService::new(
            factory,
            LocalSessionManager::default().into(),
            self.streamable_http_config(),
        );
        self.serve(service).await
    }
}

/// `axum::serve` with `TCP_NODELAY` (a streamed response written in pieces must not wait
/// for delayed ACKs), connect info, and graceful shutdown on SIGINT or SIGTERM.
async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    signals: ShutdownSignals,
) -> std::io::Result<()> {
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signals.recv())
    .await
}

/// SIGINT and SIGTERM (what container runtimes send), listened for from the moment the app
/// is built: a signal that arrives before serving starts still stops it gracefully instead
/// of killing the process.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        {
            async fn on(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = on(&mut self.interrupt) => {}
                () = on(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!(target: "mcp_oauth::http", "shutting down: in-flight requests finish");
    }
}
