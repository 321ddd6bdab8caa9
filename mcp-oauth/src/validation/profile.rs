//! Identity-provider presets: what each provider's access tokens look like, as a policy.
//!
//! [`IssuerPolicy::preset`] starts an [`IssuerPolicyBuilder`] with one provider's conventions;
//! everything stays overridable, and the audience is always yours to set. Each preset relaxes
//! exactly what the provider needs and nothing else: `iss`, `exp` and `aud` stay required, the
//! algorithm stays pinned per key, `crit`/`jku`/`x5u`/`jwk` stay refused, and a lenient `typ`
//! still refuses OpenID Connect ID tokens.
//!
//! | preset | `iss` | `typ` | scopes (first present wins) | client id | not required | keys |
//! |---|---|---|---|---|---|---|
//! | [`Rfc9068`](Profile::Rfc9068) | as given | `at+jwt` (strict) | `scope` (string) | `client_id` | — | discovered |
//! | [`Scalekit`](Profile::Scalekit) | the environment URL | lenient (`JWT`) | `scope` (string), then `permissions` (array) | `client_id` | — | discovered |
//! | [`Auth0`](Profile::Auth0) | `https://{domain}/` | lenient (`JWT`; `at+jwt` with Auth0's RFC 9068 profile) | `scope` (string), then `permissions` (array, RBAC) | `client_id`, then `azp` | `jti` | discovered |
//! | [`EntraId`](Profile::EntraId) v2, one tenant | `https://login.microsoftonline.com/{tenant}/v2.0` | lenient (`JWT`) | `scp` (string or array), then `roles` (array, app permissions) | `azp` | `jti` (Entra sends `uti`) | `…/{tenant}/discovery/v2.0/keys` |
//! | [`EntraId`](Profile::EntraId) v1, one tenant | `https://sts.windows.net/{tenant}/` | lenient (`JWT`) | `scp`, then `roles` | `appid` | `jti` | `…/{tenant}/discovery/keys` |
//! | [`EntraId`](Profile::EntraId) v2, multi-tenant | template `https://login.microsoftonline.com/{tenantid}/v2.0`, `tid` must agree | lenient (`JWT`) | `scp`, then `roles` | `azp` | `jti` | `…/common/discovery/v2.0/keys` |
//! | [`EntraId`](Profile::EntraId) v1, multi-tenant | template `https://sts.windows.net/{tenantid}/`, `tid` must agree | lenient (`JWT`) | `scp`, then `roles` | `appid` | `jti` | `…/common/discovery/keys` |
//! | [`Keycloak`](Profile::Keycloak) | `{base_url}/realms/{realm}` | lenient (`JWT`) | `scope` (string) | `client_id`, then `azp` | — | discovered |
//! | [`Okta`](Profile::Okta) | `https://{domain}/oauth2/{authorization_server}` | lenient (no `typ`) | `scp` (array or string) | `cid`, then `client_id` | — | discovered |
//!
//! "Lenient" is [`TypPolicy::Lenient`]: `typ` may be `at+jwt`, `JWT`, `application/jwt` or
//! absent, and ID tokens are refused by their `nonce`/`at_hash`/`c_hash`/`s_hash` claims.
//! Claims not listed under "not required" are the RFC 9068 set (`sub`, `client_id` — read from
//! the preset's client-id claims —, `iat`, `jti`), on top of `iss`, `exp` and `aud`.
//!
//! Multi-tenant Entra presets advertise `https://login.microsoftonline.com/organizations/v2.0`
//! ([`IssuerPolicy::issuer`]): list that in the metadata's `authorization_servers` (or change it
//! with [`advertised_issuer`](IssuerPolicyBuilder::advertised_issuer)), and restrict the tenants
//! with [`allowed_tenants`](IssuerPolicyBuilder::allowed_tenants) unless any organization may
//! call.

use super::{
    Claim, IssuerPolicy, IssuerPolicyBuilder, RequiredClaims, ScopeClaim, ScopeFormat, TypPolicy,
};

/// Microsoft's login host, for Entra ID issuers and keys.
const ENTRA_LOGIN: &str = "https://login.microsoftonline.com";
/// The issuer multi-tenant Entra presets advertise.
pub const ENTRA_ORGANIZATIONS_V2: &str = "https://login.microsoftonline.com/organizations/v2.0";

/// An identity provider whose access-token conventions [`IssuerPolicy::preset`] knows; see the
/// [module](self) documentation for what each one sets.
///
/// ```
/// use mcp_oauth::validation::{EntraTenant, EntraVersion, IssuerPolicy, Profile};
///
/// let auth0 = IssuerPolicy::preset(Profile::Auth0 { domain: "acme.us.auth0.com".into() })
///     .audience("https://calendar.example.com/mcp")
///     .build()
///     .unwrap();
/// assert_eq!(auth0.issuer(), "https://acme.us.auth0.com/");
///
/// let entra = IssuerPolicy::preset(Profile::EntraId {
///     version: EntraVersion::V2,
///     tenant: EntraTenant::Multi,
/// })
/// .allowed_tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
/// .audience("6e74172b-be56-4843-9ff4-e66a39bb12e3") // the application (client) id
/// .audience("api://calendar")                          // and/or its App ID URI
/// .build()
/// .unwrap();
/// assert_eq!(entra.issuer(), "https://login.microsoftonline.com/organizations/v2.0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// Plain RFC 9068 JWT access tokens: the strict default, for authorization servers that
    /// follow the profile (the dev server, Auth0's RFC 9068 token profile, many others).
    Rfc9068 {
        /// The issuer, exactly as tokens' `iss`.
        issuer: String,
    },
    /// Scalekit: tokens for an MCP server registered in the dashboard.
    Scalekit {
        /// The environment URL, e.g. `https://acme.scalekit.com` (tokens' `iss`).
        environment_url: String,
    },
    /// Auth0: tokens for an API whose identifier is the MCP URL.
    Auth0 {
        /// The tenant's domain, e.g. `acme.us.auth0.com` (or a custom domain); a leading
        /// `https://` and trailing `/` are dropped.
        domain: String,
    },
    /// Microsoft Entra ID (v1 or v2 tokens, one tenant or many).
    EntraId {
        /// The token version the API's manifest asks for (`accessTokenAcceptedVersion`).
        version: EntraVersion,
        /// One tenant, or any tenant through the issuer template.
        tenant: EntraTenant,
    },
    /// Keycloak: one realm.
    Keycloak {
        /// The server's base URL, e.g. `https://keycloak.example.com` (with `/auth` for
        /// versions before 17).
        base_url: String,
        /// The realm.
        realm: String,
    },
    /// Okta: a custom authorization server (the org authorization server issues tokens only
    /// for Okta's own APIs).
    Okta {
        /// The Okta domain, e.g. `acme.okta.com`; a leading `https://` and trailing `/` are
        /// dropped.
        domain: String,
        /// The authorization server id, e.g. `default`.
        authorization_server: String,
    },
}

/// The version of Entra ID access tokens (the `ver` claim), set by the API's app manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntraVersion {
    /// v1.0: `iss` `https://sts.windows.net/{tenant}/`, client id in `appid`, `aud` usually
    /// the App ID URI.
    V1,
    /// v2.0 (`accessTokenAcceptedVersion: 2`): `iss`
    /// `https://login.microsoftonline.com/{tenant}/v2.0`, client id in `azp`, `aud` the
    /// application (client) id GUID.
    V2,
}

/// Which Entra ID tenants a preset trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraTenant {
    /// One tenant, by its id (a GUID): an exact issuer.
    Single(String),
    /// Any tenant (a multi-tenant app): the issuer template, with the token's `tid` required
    /// to name the tenant of its `iss`. Restrict it with
    /// [`allowed_tenants`](IssuerPolicyBuilder::allowed_tenants).
    Multi,
}

impl Profile {
    /// A short, stable name of the provider, e.g. for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Rfc9068 { .. } => "rfc9068",
            Profile::Scalekit { .. } => "scalekit",
            Profile::Auth0 { .. } => "auth0",
            Profile::EntraId { .. } => "entra_id",
            Profile::Keycloak { .. } => "keycloak",
            Profile::Okta { .. } => "okta",
        }
    }

    /// The `iss` of the provider's tokens, or the issuer template for multi-tenant Entra ID.
    ///
    /// ```
    /// use mcp_oauth::validation::Profile;
    ///
    /// let okta = Profile::Okta { domain: "https://acme.okta.com/".into(), authorization_server: "default".into() };
    /// assert_eq!(okta.issuer(), "https://acme.okta.com/oauth2/default");
    /// ```
    pub fn issuer(&self) -> String {
        match self {
            Profile::Rfc9068 { issuer } => issuer.clone(),
            Profile::Scalekit { environment_url } => environment_url.trim_end_matches('/').into(),
            Profile::Auth0 { domain } => format!("https://{}/", bare_host(domain)),
            Profile::EntraId { version, tenant } => {
                let tenant = match tenant {
                    EntraTenant::Single(id) => id.as_str(),
                    EntraTenant::Multi => super::TENANT_PLACEHOLDER,
                };
                match version {
                    EntraVersion::V1 => format!("https://sts.windows.net/{tenant}/"),
                    EntraVersion::V2 => format!("{ENTRA_LOGIN}/{tenant}/v2.0"),
                }
            }
            Profile::Keycloak { base_url, realm } => {
                format!("{}/realms/{realm}", base_url.trim_end_matches('/'))
            }
            Profile::Okta {
                domain,
                authorization_server,
            } => format!(
                "https://{}/oauth2/{authorization_server}",
                bare_host(domain)
            ),
        }
    }
}

fn bare_host(domain: &str) -> &str {
    let domain = domain.trim();
    domain
        .strip_prefix("https://")
        .unwrap_or(domain)
        .trim_end_matches('/')
}

impl IssuerPolicy {
    /// Starts a policy with an identity provider's conventions (see [`Profile`] and the table
    /// in the [profile module](super::profile)); add the audience, and override anything.
    ///
    /// ```
    /// use mcp_oauth::validation::{IssuerPolicy, Profile, TypPolicy};
    ///
    /// let policy = IssuerPolicy::preset(Profile::Keycloak {
    ///     base_url: "https://keycloak.example.com".into(),
    ///     realm: "acme".into(),
    /// })
    /// .audience("https://calendar.example.com/mcp")
    /// .build()
    /// .unwrap();
    /// assert_eq!(policy.issuer(), "https://keycloak.example.com/realms/acme");
    /// assert_eq!(policy.typ(), TypPolicy::Lenient);
    /// ```
    pub fn preset(profile: Profile) -> IssuerPolicyBuilder {
        let issuer = profile.issuer();
        let scope = || ScopeClaim::new("scope", ScopeFormat::SpaceSeparated);
        let permissions = || ScopeClaim::new("permissions", ScopeFormat::Array);
        match &profile {
            Profile::Rfc9068 { .. } => IssuerPolicy::builder(issuer),
            Profile::Scalekit { .. } => IssuerPolicy::builder(issuer)
                .typ(TypPolicy::Lenient)
                .scope_claims([scope(), permissions()]),
            Profile::Auth0 { .. } => IssuerPolicy::builder(issuer)
                .typ(TypPolicy::Lenient)
                .scope_claims([scope(), permissions()])
                .client_id_claims(["client_id", "azp"])
                .optional_claim(Claim::JwtId),
            Profile::EntraId { version, tenant } => {
                let (keys_path, client_id) = match version {
                    EntraVersion::V1 => ("discovery/keys", "appid"),
                    EntraVersion::V2 => ("discovery/v2.0/keys", "azp"),
                };
                let builder = match tenant {
                    EntraTenant::Single(id) => IssuerPolicy::builder(issuer)
                        .jwks_uri(format!("{ENTRA_LOGIN}/{id}/{keys_path}")),
                    EntraTenant::Multi => IssuerPolicy::template(issuer)
                        .advertised_issuer(ENTRA_ORGANIZATIONS_V2)
                        .tenant_claim("tid")
                        .jwks_uri(format!("{ENTRA_LOGIN}/common/{keys_path}")),
                };
                builder
                    .typ(TypPolicy::Lenient)
                    .scope_claims([
                        ScopeClaim::new("scp", ScopeFormat::Either),
                        ScopeClaim::new("roles", ScopeFormat::Array),
                    ])
                    .client_id_claims([client_id])
                    .optional_claim(Claim::JwtId)
            }
            Profile::Keycloak { .. } => IssuerPolicy::builder(issuer)
                .typ(TypPolicy::Lenient)
                .client_id_claims(["client_id", "azp"]),
            Profile::Okta { .. } => IssuerPolicy::builder(issuer)
                .typ(TypPolicy::Lenient)
                .scope_claim(ScopeClaim::new("scp", ScopeFormat::Either))
                .client_id_claims(["cid", "client_id"]),
        }
    }
}

impl RequiredClaims {
    /// What a preset requires; for the documentation table's tests.
    #[cfg(test)]
    fn names(self) -> Vec<&'static str> {
        [
            Claim::Issuer,
            Claim::Expiry,
            Claim::Audience,
            Claim::Subject,
            Claim::ClientId,
            Claim::IssuedAt,
            Claim::JwtId,
        ]
        .into_iter()
        .filter(|c| self.contains(*c))
        .map(Claim::name)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(profile: Profile) -> IssuerPolicy {
        IssuerPolicy::preset(profile)
            .audience("https://mcp.example.com/mcp")
            .build()
            .unwrap()
    }

    #[test]
    fn the_table_matches_the_presets() {
        let rfc = build(Profile::Rfc9068 {
            issuer: "https://as.example.com".into(),
        });
        assert_eq!(rfc.typ(), TypPolicy::Strict);
        assert_eq!(
            rfc.required_claims().names(),
            ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"]
        );

        let auth0 = build(Profile::Auth0 {
            domain: "https://acme.us.auth0.com/".into(),
        });
        assert_eq!(auth0.issuer(), "https://acme.us.auth0.com/");
        assert_eq!(auth0.client_id_claims(), ["client_id", "azp"]);
        assert!(!auth0.required_claims().contains(Claim::JwtId));
        assert_eq!(auth0.scope_claims()[1].name(), "permissions");

        let entra_v1 = build(Profile::EntraId {
            version: EntraVersion::V1,
            tenant: EntraTenant::Single("tenant-1".into()),
        });
        assert_eq!(entra_v1.issuer(), "https://sts.windows.net/tenant-1/");
        assert_eq!(entra_v1.client_id_claims(), ["appid"]);
        assert!(matches!(
            entra_v1.key_source(),
            crate::key_set::KeySource::JwksUri(uri)
                if uri == "https://login.microsoftonline.com/tenant-1/discovery/keys"
        ));

        let entra_multi = build(Profile::EntraId {
            version: EntraVersion::V2,
            tenant: EntraTenant::Multi,
        });
        assert_eq!(entra_multi.issuer(), ENTRA_ORGANIZATIONS_V2);
        assert_eq!(
            entra_multi.issuer_template().unwrap().as_str(),
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        );
        assert_eq!(entra_multi.allowed_tenants(), None);

        let okta = build(Profile::Okta {
            domain: "acme.okta.com".into(),
            authorization_server: "default".into(),
        });
        assert_eq!(okta.issuer(), "https://acme.okta.com/oauth2/default");
        assert_eq!(okta.client_id_claims(), ["cid", "client_id"]);

        let keycloak = build(Profile::Keycloak {
            base_url: "https://kc.example.com/".into(),
            realm: "acme".into(),
        });
        assert_eq!(keycloak.issuer(), "https://kc.example.com/realms/acme");

        let scalekit = build(Profile::Scalekit {
            environment_url: "https://acme.scalekit.com/".into(),
        });
        assert_eq!(scalekit.issuer(), "https://acme.scalekit.com");
        assert_eq!(scalekit.required_claims(), RequiredClaims::RFC_9068);
    }
}
