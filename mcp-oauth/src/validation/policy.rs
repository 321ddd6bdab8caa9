//! What an issuer's tokens must satisfy.

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::{Algorithm, AlgorithmSet};
use crate::key_set::{KeySet, KeySetConfig, KeySource};
use crate::token::{Claim, MAX_LEEWAY, RequiredClaims, ScopeClaim};

/// How the `typ` header is judged (RFC 9068 §2.1, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypPolicy {
    /// `typ` must be `at+jwt` or `application/at+jwt`, compared case-insensitively.
    /// The default: it stops ID tokens and other JWTs from passing as access tokens.
    #[default]
    Strict,
    /// Also accepts `JWT`, `application/jwt` or no `typ`, for providers that send those
    /// (Entra ID, Auth0). OpenID Connect ID tokens are still refused, by their
    /// `nonce`, `at_hash`, `c_hash` or `s_hash` claims (and by their audience).
    Lenient,
}

/// Why a policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The issuer is empty.
    #[error("the issuer must not be empty")]
    EmptyIssuer,
    /// No audience was configured: MCP servers must check the audience.
    #[error("at least one audience (the resource URL) is required")]
    NoAudience,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithm,
    /// Leeway above [`MAX_LEEWAY`].
    #[error("leeway above {} seconds", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
    /// `iss`, `exp` and `aud` cannot be made optional.
    #[error("claim {} is always required", .0.name())]
    ClaimAlwaysRequired(Claim),
    /// The RSA default algorithm is not an RSA algorithm.
    #[error("{0} is not an RSA algorithm")]
    NotAnRsaAlgorithm(Algorithm),
    /// An empty list of client-id claims.
    #[error("at least one client-id claim name is required")]
    NoClientIdClaim,
    /// An empty list of scope claims.
    #[error("at least one scope claim is required")]
    NoScopeClaim,
    /// An issuer template without exactly one `{tenantid}` placeholder, or whose placeholder
    /// does not stand for a whole path segment or host label.
    #[error("issuer template {0} must contain exactly one {{tenantid}} placeholder")]
    InvalidTemplate(String),
    /// A template policy has no advertised issuer (the `authorization_servers` entry).
    #[error("issuer template {0} needs an advertised issuer")]
    NoAdvertisedIssuer(String),
    /// A template policy cannot discover its keys (no single issuer to discover from): give a
    /// JWKS URL or static keys.
    #[error("issuer template {0} needs an explicit jwks_uri or static keys")]
    TemplateNeedsKeySource(String),
    /// A tenant allow-list on a policy for one exact issuer, or an empty allow-list.
    #[error("a tenant allow-list needs an issuer template and at least one tenant")]
    InvalidTenantList,
    /// An advertised issuer on a policy for one exact issuer (which advertises itself).
    #[error("only a template policy takes an advertised issuer")]
    AdvertisedIssuerWithoutTemplate,
}

/// An issuer template: one policy for the issuers `prefix{tenantid}suffix`, such as Entra ID's
/// multi-tenant `https://login.microsoftonline.com/{tenantid}/v2.0`.
///
/// A token matches when its `iss` is the template with the placeholder replaced by a tenant id
/// (letters, digits, `-`, `_` and `.`; never `/`), and its tenant claim (`tid` by default)
/// names the same tenant. A policy may further restrict the tenants with
/// [`allowed_tenants`](IssuerPolicyBuilder::allowed_tenants).
///
/// ```
/// use mcp_oauth::validation::IssuerTemplate;
///
/// let template = IssuerTemplate::parse("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap();
/// assert_eq!(
///     template.tenant_of("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"),
///     Some("72f988bf-86f1-41af-91ab-2d7cd011db47"),
/// );
/// assert_eq!(template.tenant_of("https://login.microsoftonline.com/a/b/v2.0"), None);
/// assert_eq!(template.tenant_of("https://evil.example/x/v2.0"), None);
/// assert!(IssuerTemplate::parse("https://login.microsoftonline.com/common/v2.0").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTemplate {
    template: String,
    prefix_len: usize,
}

/// The placeholder of an [`IssuerTemplate`].
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

impl IssuerTemplate {
    /// Parses a template with exactly one [`TENANT_PLACEHOLDER`], standing for a whole path
    /// segment or host label of an `https` (or loopback `http`) URL.
    pub fn parse(template: &str) -> Result<Self, PolicyError> {
        let invalid = || PolicyError::InvalidTemplate(template.to_owned());
        let prefix_len = template.find(TENANT_PLACEHOLDER).ok_or_else(invalid)?;
        let suffix = &template[prefix_len + TENANT_PLACEHOLDER.len()..];
        let prefix = &template[..prefix_len];
        if suffix.contains(TENANT_PLACEHOLDER) || suffix.contains(['{', '}']) {
            return Err(invalid());
        }
        if prefix.contains(['{', '}']) || !(prefix.ends_with('/') || prefix.ends_with("://")) {
            return Err(invalid());
        }
        if !(suffix.is_empty() || suffix.starts_with('/') || suffix.starts_with('.')) {
            return Err(invalid());
        }
        // The template with a sample tenant must be a URL we would fetch from.
        let sample = format!("{prefix}tenant{suffix}");
        let allowed = url::Url::parse(&sample)
            .ok()
            .is_some_and(|url| crate::loopback::is_https_or_loopback_http(&url));
        if !allowed {
            return Err(invalid());
        }
        Ok(Self {
            template: template.to_owned(),
            prefix_len,
        })
    }

    /// The template, as configured.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    fn prefix(&self) -> &str {
        &self.template[..self.prefix_len]
    }

    fn suffix(&self) -> &str {
        &self.template[self.prefix_len + TENANT_PLACEHOLDER.len()..]
    }

    /// The tenant id `issuer` carries in the placeholder's place, if it matches.
    pub fn tenant_of<'a>(&self, issuer: &'a str) -> Option<&'a str> {
        let rest = issuer.strip_prefix(self.prefix())?;
        let tenant = rest.strip_suffix(self.suffix())?;
        let valid = !tenant.is_empty()
            && tenant.len() <= 128
            && !tenant.starts_with('.')
            && !tenant.ends_with('.')
            && !tenant.contains("..")
            && tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        valid.then_some(tenant)
    }

    /// The issuer of `tenant`: the template with the placeholder replaced.
    pub fn issuer_for(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.prefix(), self.suffix())
    }
}

/// Which `iss` values a policy accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IssuerMatch {
    /// Exactly this issuer (the policy's `issuer`).
    Exact,
    /// Any issuer of the template whose tenant claim agrees, and is allowed.
    Template {
        template: IssuerTemplate,
        tenant_claim: String,
        allowed_tenants: Option<Vec<String>>,
    },
}

/// What one issuer's access tokens must satisfy, and where its keys come from.
///
/// Strict by default: `typ` must be `at+jwt`; `iss` must equal the issuer exactly; `aud`
/// must name the resource (compared with scheme and host case-insensitive); the RFC 9068
/// claims are required; every key is bound to one algorithm from the allow-list; 60 s of
/// leeway.
///
/// Identity providers that shape their tokens differently have presets that relax exactly
/// what each needs: see [`IssuerPolicy::preset`] and [`Profile`](super::Profile).
///
/// ```
/// use mcp_oauth::validation::{IssuerPolicy, TypPolicy};
/// use mcp_oauth::validation::Claim;
///
/// let policy = IssuerPolicy::builder("https://auth.example.com")
///     .audience("https://calendar.example.com/mcp")
///     .typ(TypPolicy::Lenient)
///     .optional_claim(Claim::JwtId)
///     .build()
///     .unwrap();
/// assert_eq!(policy.issuer(), "https://auth.example.com");
/// ```
#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    /// The exact issuer, or for a template policy the advertised one.
    pub(crate) issuer: String,
    pub(crate) issuer_match: IssuerMatch,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) leeway: Duration,
    pub(crate) required: RequiredClaims,
    pub(crate) typ: TypPolicy,
    pub(crate) scope_claims: Vec<ScopeClaim>,
    pub(crate) client_id_claims: Vec<String>,
    pub(crate) key_source: KeySource,
    pub(crate) key_set_config: KeySetConfig,
}

impl IssuerPolicy {
    /// Starts a policy for tokens whose `iss` is exactly `issuer`. Keys are discovered from
    /// the issuer's metadata unless [`jwks_uri`](IssuerPolicyBuilder::jwks_uri) or
    /// [`static_keys`](IssuerPolicyBuilder::static_keys) says otherwise.
    pub fn builder(issuer: impl Into<String>) -> IssuerPolicyBuilder {
        let issuer = issuer.into();
        IssuerPolicyBuilder {
            policy: IssuerPolicy {
                key_source: KeySource::Discover {
                    issuer: issuer.clone(),
                },
                issuer,
                issuer_match: IssuerMatch::Exact,
                audiences: Vec::new(),
                algorithms: AlgorithmSet::default(),
                leeway: Duration::from_secs(60),
                required: RequiredClaims::default(),
                typ: TypPolicy::default(),
                scope_claims: vec![ScopeClaim::default()],
                client_id_claims: vec!["client_id".to_owned()],
                key_set_config: KeySetConfig::default(),
            },
            rsa_default: Algorithm::RS256,
            template: None,
            tenant_claim: "tid".to_owned(),
            allowed_tenants: None,
            errors: Vec::new(),
        }
    }

    /// Starts a policy for every issuer of an [`IssuerTemplate`] such as
    /// `https://login.microsoftonline.com/{tenantid}/v2.0` (multi-tenant Entra ID): a token
    /// matches when its `iss` fills the placeholder with the tenant its `tid` claim names
    /// (see [`tenant_claim`](IssuerPolicyBuilder::tenant_claim) and
    /// [`allowed_tenants`](IssuerPolicyBuilder::allowed_tenants)).
    ///
    /// A template names no single issuer, so the policy needs two things an exact policy
    /// derives from its issuer: the issuer to list in the metadata's `authorization_servers`
    /// ([`advertised_issuer`](IssuerPolicyBuilder::advertised_issuer), returned by
    /// [`issuer`](Self::issuer)), and its keys ([`jwks_uri`](IssuerPolicyBuilder::jwks_uri)
    /// or [`static_keys`](IssuerPolicyBuilder::static_keys)). Every tenant shares that one
    /// key set, which is how Entra ID signs.
    ///
    /// ```
    /// use mcp_oauth::validation::{IssuerPolicy, TypPolicy};
    ///
    /// let policy = IssuerPolicy::template("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///     .advertised_issuer("https://login.microsoftonline.com/organizations/v2.0")
    ///     .jwks_uri("https://login.microsoftonline.com/common/discovery/v2.0/keys")
    ///     .allowed_tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///     .audience("api://calendar")
    ///     .typ(TypPolicy::Lenient)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(policy.issuer(), "https://login.microsoftonline.com/organizations/v2.0");
    /// assert!(policy.issuer_template().is_some());
    /// ```
    pub fn template(template: impl Into<String>) -> IssuerPolicyBuilder {
        let template = template.into();
        let mut builder = Self::builder(String::new());
        builder.policy.key_source = KeySource::Discover {
            issuer: String::new(),
        };
        match IssuerTemplate::parse(&template) {
            Ok(parsed) => builder.template = Some(parsed),
            Err(error) => builder.errors.push(error),
        }
        builder
    }

    /// The issuer: exactly as tokens' `iss` must carry it, or for a template policy the
    /// advertised issuer (what the metadata's `authorization_servers` must list).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer template, for a policy built with [`IssuerPolicy::template`].
    pub fn issuer_template(&self) -> Option<&IssuerTemplate> {
        match &self.issuer_match {
            IssuerMatch::Exact => None,
            IssuerMatch::Template { template, .. } => Some(template),
        }
    }

    /// The tenants a template policy accepts; `None` when any tenant is (and always for an
    /// exact policy).
    pub fn allowed_tenants(&self) -> Option<&[String]> {
        match &self.issuer_match {
            IssuerMatch::Template {
                allowed_tenants: Some(tenants),
                ..
            } => Some(tenants),
            _ => None,
        }
    }

    /// Whether a token naming `iss` is routed to this policy (the tenant claim and allow-list
    /// of a template policy are checked later, against the token).
    pub fn matches_issuer(&self, iss: &str) -> bool {
        match &self.issuer_match {
            IssuerMatch::Exact => self.issuer == iss,
            IssuerMatch::Template { template, .. } => template.tenant_of(iss).is_some(),
        }
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where the issuer's keys come from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The `typ` policy.
    pub fn typ(&self) -> TypPolicy {
        self.typ
    }

    /// The required claims.
    pub fn required_claims(&self) -> RequiredClaims {
        self.required
    }

    /// Where scopes are read, in order: the first claim present wins.
    pub fn scope_claims(&self) -> &[ScopeClaim] {
        &self.scope_claims
    }

    /// The claims tried, in order, for the client id.
    pub fn client_id_claims(&self) -> &[String] {
        &self.client_id_claims
    }
}

/// Builds an [`IssuerPolicy`]; see there.
#[derive(Debug, Clone)]
#[must_use]
pub struct IssuerPolicyBuilder {
    pub(super) policy: IssuerPolicy,
    rsa_default: Algorithm,
    template: Option<IssuerTemplate>,
    tenant_claim: String,
    allowed_tenants: Option<Vec<String>>,
    errors: Vec<PolicyError>,
}

impl IssuerPolicyBuilder {
    /// Accepts tokens whose `aud` names `audience` (usually the MCP endpoint URL, the
    /// `resource` of the metadata). Call again to accept several (e.g. Entra's application id
    /// GUID and its App ID URI).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.policy.audiences.push(audience.into());
        self
    }

    /// Fetches keys from this JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.policy.key_source = KeySource::JwksUri(uri.into());
        self
    }

    /// Uses this fixed key set; nothing is fetched.
    pub fn static_keys(mut self, keys: KeySet) -> Self {
        self.policy.key_source = KeySource::Static(Arc::new(keys));
        self
    }

    /// The algorithm allow-list (default: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.policy.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The algorithm of RSA keys published without `alg` (default RS256).
    pub fn rsa_default_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.rsa_default = algorithm;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most [`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.policy.leeway = leeway;
        self
    }

    /// The `typ` policy (default [`TypPolicy::Strict`]).
    pub fn typ(mut self, typ: TypPolicy) -> Self {
        self.policy.typ = typ;
        self
    }

    /// Requires `claim` (all of RFC 9068's are required by default).
    pub fn require_claim(mut self, claim: Claim) -> Self {
        self.policy.required = self.policy.required.with(claim);
        self
    }

    /// Stops requiring `claim`. `iss`, `exp` and `aud` cannot be dropped.
    pub fn optional_claim(mut self, claim: Claim) -> Self {
        if RequiredClaims::ALWAYS.contains(claim) {
            self.errors.push(PolicyError::ClaimAlwaysRequired(claim));
        } else {
            self.policy.required = self.policy.required.without(claim);
        }
        self
    }

    /// Where scopes live (default `scope`, space-separated). Replaces any list set before.
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.policy.scope_claims = vec![claim];
        self
    }

    /// Several places scopes may live, tried in order: the **first claim present** is read
    /// and the others ignored (never a union). Entra ID puts delegated scopes in `scp` and
    /// application permissions in `roles`: `[scp, roles]` reads `roles` only for app-only
    /// tokens, so a user's app roles never widen a delegated token.
    ///
    /// ```
    /// use mcp_oauth::validation::{IssuerPolicy, ScopeClaim, ScopeFormat};
    ///
    /// let policy = IssuerPolicy::builder("https://auth.example.com")
    ///     .audience("https://calendar.example.com/mcp")
    ///     .scope_claims([
    ///         ScopeClaim::new("scp", ScopeFormat::Either),
    ///         ScopeClaim::new("roles", ScopeFormat::Array),
    ///     ])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(policy.scope_claims().len(), 2);
    /// ```
    pub fn scope_claims(mut self, claims: impl IntoIterator<Item = ScopeClaim>) -> Self {
        self.policy.scope_claims = claims.into_iter().collect();
        self
    }

    /// The claims tried, in order, for the client id (default `["client_id"]`; Auth0 and
    /// Entra v2 use `azp`, Entra v1 `appid`, Okta `cid`).
    pub fn client_id_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.client_id_claims = names.into_iter().map(Into::into).collect();
        self
    }

    /// How the issuer's key set is fetched and cached.
    pub fn key_set_config(mut self, config: KeySetConfig) -> Self {
        self.policy.key_set_config = config;
        self
    }

    /// For a template policy: the issuer the metadata advertises in `authorization_servers`
    /// (what [`IssuerPolicy::issuer`] returns), e.g.
    /// `https://login.microsoftonline.com/organizations/v2.0`. Required for templates; an
    /// exact policy advertises its own issuer, and refuses this at [`build`](Self::build).
    pub fn advertised_issuer(mut self, issuer: impl Into<String>) -> Self {
        if self.template.is_some() {
            self.policy.issuer = issuer.into();
        } else {
            self.errors
                .push(PolicyError::AdvertisedIssuerWithoutTemplate);
        }
        self
    }

    /// For a template policy: the claim that names the token's tenant, which must equal the
    /// tenant in its `iss` (default `tid`, as Entra ID).
    pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }

    /// For a template policy: accepts only these tenants (compared ASCII case-insensitively);
    /// a token of any other tenant is refused with
    /// [`TokenError::TenantNotAllowed`](super::TokenError::TenantNotAllowed). Without it, every
    /// tenant of the template is accepted: the multi-tenant "any organization" setup.
    pub fn allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the policy.
    pub fn build(self) -> Result<IssuerPolicy, PolicyError> {
        let IssuerPolicyBuilder {
            mut policy,
            rsa_default,
            template,
            tenant_claim,
            allowed_tenants,
            mut errors,
        } = self;
        match template {
            None => {
                if allowed_tenants.is_some() {
                    errors.push(PolicyError::InvalidTenantList);
                }
            }
            Some(template) => {
                if policy.issuer.is_empty() {
                    errors.push(PolicyError::NoAdvertisedIssuer(
                        template.as_str().to_owned(),
                    ));
                }
                if matches!(policy.key_source, KeySource::Discover { .. }) {
                    errors.push(PolicyError::TemplateNeedsKeySource(
                        template.as_str().to_owned(),
                    ));
                }
                let allowed_tenants = match allowed_tenants {
                    Some(tenants) if tenants.is_empty() || tenants.iter().any(String::is_empty) => {
                        errors.push(PolicyError::InvalidTenantList);
                        None
                    }
                    other => other,
                };
                policy.issuer_match = IssuerMatch::Template {
                    template,
                    tenant_claim,
                    allowed_tenants,
                };
            }
        }
        if policy.issuer.is_empty() && policy.issuer_match == IssuerMatch::Exact {
            errors.push(PolicyError::EmptyIssuer);
        }
        if policy.audiences.is_empty() {
            errors.push(PolicyError::NoAudience);
        }
        if policy.algorithms.is_empty() {
            errors.push(PolicyError::NoAlgorithm);
        }
        if policy.leeway > MAX_LEEWAY {
            errors.push(PolicyError::LeewayTooLarge);
        }
        if policy.client_id_claims.is_empty() {
            errors.push(PolicyError::NoClientIdClaim);
        }
        if policy.scope_claims.is_empty() {
            errors.push(PolicyError::NoScopeClaim);
        }
        if rsa_default.key_type() != crate::crypto::KeyType::Rsa {
            errors.push(PolicyError::NotAnRsaAlgorithm(rsa_default));
        }
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        policy.key_set_config.key_options.algorithms = policy.algorithms;
        policy.key_set_config.key_options.rsa_default_algorithm = rsa_default;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_need_one_placeholder_for_a_whole_segment() {
        for bad in [
            "https://login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com/{tenantid}/{tenantid}",
            "https://login.microsoftonline.com/x{tenantid}/v2.0",
            "https://login.microsoftonline.com/{tenantid}x/v2.0",
            "http://login.microsoftonline.com/{tenantid}/v2.0",
            "https://login.microsoftonline.com/{tid}/v2.0",
        ] {
            assert!(IssuerTemplate::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            "https://sts.windows.net/{tenantid}/",
            "https://{tenantid}.auth.example.com",
            "http://127.0.0.1:8080/{tenantid}",
        ] {
            assert!(IssuerTemplate::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn tenants_are_one_restricted_segment() {
        let template = IssuerTemplate::parse("https://sts.windows.net/{tenantid}/").unwrap();
        assert_eq!(
            template.tenant_of("https://sts.windows.net/abc-1/"),
            Some("abc-1")
        );
        assert_eq!(template.tenant_of("https://sts.windows.net//"), None);
        assert_eq!(template.tenant_of("https://sts.windows.net/a/b/"), None);
        assert_eq!(template.tenant_of("https://sts.windows.net/a%2Fb/"), None);
        assert_eq!(template.tenant_of("https://sts.windows.net/abc"), None);
        assert_eq!(template.issuer_for("t"), "https://sts.windows.net/t/");
    }

    #[test]
    fn template_policies_need_an_advertised_issuer_and_explicit_keys() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let base = || IssuerPolicy::template(template).audience("api://x");
        assert_eq!(
            base()
                .jwks_uri("https://k.example/keys")
                .build()
                .unwrap_err(),
            PolicyError::NoAdvertisedIssuer(template.into())
        );
        assert_eq!(
            base()
                .advertised_issuer("https://login.microsoftonline.com/organizations/v2.0")
                .build()
                .unwrap_err(),
            PolicyError::TemplateNeedsKeySource(template.into())
        );
        assert_eq!(
            base()
                .advertised_issuer("https://login.microsoftonline.com/organizations/v2.0")
                .jwks_uri("https://k.example/keys")
                .allowed_tenants(Vec::<String>::new())
                .build()
                .unwrap_err(),
            PolicyError::InvalidTenantList
        );
        assert_eq!(
            IssuerPolicy::builder("https://as.example")
                .audience("a")
                .allowed_tenants(["t"])
                .build()
                .unwrap_err(),
            PolicyError::InvalidTenantList
        );
    }
}
