//! The dev server's state, at the bottom of its module graph: the checked configuration,
//! the signing key, the in-memory store, and what every endpoint builds on (metadata, JWKS,
//! signing and verifying its own access tokens). The endpoints (`endpoints`) sit on top of
//! it, the router and the server's lifecycle (`server`) on top of them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use url::Url;

use super::client_metadata::{ClientMetadataFetcher, DocumentRefusal, is_document_url};
use super::dpop::{Thumbprint, TokenEndpointDpop, jkt};
use super::params::{is_valid_redirect_uri, random_token};
use super::store::{Client, GrantType, Store};
use super::{DEFAULT_CLIENT_ID, DevClient};
use crate::clock::Clock;
use crate::crypto::{Algorithm, Curve, PublicKeyMaterial, VerifyingKey, random_id, sha256};
use crate::dpop::DEFAULT_PROOF_ALGORITHMS;
use crate::loopback::is_loopback_http;
use crate::scopes::is_valid_scope_token;
use crate::testing::{SigningAlgorithm, SigningKey, compact_jws};

/// The checked configuration.
pub(crate) struct Config {
    pub(crate) resources: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) dev_user: String,
    pub(crate) access_token_ttl: u64,
    pub(crate) refresh_token_ttl: u64,
    /// Every pre-registered client, the dev client included after [`Config::check`].
    pub(crate) clients: Vec<DevClient>,
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_entries: usize,
    /// The hosts, besides loopback, of redirect URIs dynamic registration accepts; each the
    /// serialization of a [`url::Host`] after [`Config::check`].
    pub(crate) redirect_hosts: Vec<String>,
    /// Where revoked access tokens are also listed (a resource server's denylist).
    pub(crate) revocations: Option<crate::revocation::Revocations>,
    /// The audiences token exchange may issue tokens for; empty: the grant is not offered.
    pub(crate) exchange_audiences: Vec<String>,
    /// `(client id, resource)`: the client is the resource server `resource`, an audience
    /// of the tokens whose `aud` names it.
    pub(crate) resource_servers: Vec<(String, String)>,
    /// The root CA (PEM) client metadata documents are fetched with, loopback hosts allowed
    /// (tests only); `None`: the system's roots, public addresses only.
    pub(crate) local_client_metadata_ca: Option<String>,
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Config {
    /// Checks the builder's settings and adds the default dev client if none was given.
    pub(crate) fn check(mut self) -> io::Result<Config> {
        for resource in &self.resources {
            let valid = Url::parse(resource)
                .is_ok_and(|url| url.fragment().is_none() && !url.cannot_be_a_base());
            if !valid {
                return Err(invalid_input(format!(
                    "resource {resource:?} is not an absolute URL without fragment"
                )));
            }
        }
        dedup(&mut self.resources);
        if let Some(bad) = self.scopes.iter().find(|s| !is_valid_scope_token(s)) {
            return Err(invalid_input(format!("{bad:?} is not a valid scope")));
        }
        dedup(&mut self.scopes);
        if self.dev_user.is_empty() {
            return Err(invalid_input("the dev user is empty".to_owned()));
        }
        if self.access_token_ttl == 0 || self.refresh_token_ttl == 0 {
            return Err(invalid_input(
                "token lifetimes must be at least one second".to_owned(),
            ));
        }
        if self.algorithm == SigningAlgorithm::HS256 {
            return Err(invalid_input(
                "the dev server signs with an asymmetric algorithm, not HS256".to_owned(),
            ));
        }
        for (i, client) in self.clients.iter().enumerate() {
            if client.id.is_empty() || client.secret.is_empty() {
                return Err(invalid_input(
                    "a client has an empty id or secret".to_owned(),
                ));
            }
            if self.clients[..i].iter().any(|c| c.id == client.id) {
                return Err(invalid_input(format!("client {:?} is repeated", client.id)));
            }
            if let Some(scope) = client.scopes.iter().find(|s| !self.scopes.contains(s)) {
                return Err(invalid_input(format!(
                    "client {:?} has scope {scope:?}, which the server does not grant",
                    client.id
                )));
            }
            if let Some(uri) = client
                .redirect_uris
                .iter()
                .find(|uri| !is_valid_redirect_uri(uri))
            {
                return Err(invalid_input(format!(
                    "client {:?} has redirect URI {uri:?}, not an absolute URL without fragment \
                     whose query carries none of code, state, error, error_description or iss",
                    client.id
                )));
            }
        }
        for host in &mut self.redirect_hosts {
            match url::Host::parse(host) {
                Ok(parsed) => *host = parsed.to_string(),
                Err(_) => {
                    return Err(invalid_input(format!(
                        "redirect host {host:?} is not a host name or IP address"
                    )));
                }
            }
        }
        dedup(&mut self.redirect_hosts);
        if let Some(bad) = self
            .exchange_audiences
            .iter()
            .find(|audience| !is_valid_audience(audience))
        {
            return Err(invalid_input(format!(
                "exchange audience {bad:?} is empty or has spaces or control characters"
            )));
        }
        dedup(&mut self.exchange_audiences);
        if !self.clients.iter().any(|c| c.id == DEFAULT_CLIENT_ID) {
            self.clients.push(DevClient {
                id: DEFAULT_CLIENT_ID.to_owned(),
                secret: random_token(""),
                scopes: self.scopes.clone(),
                redirect_uris: vec![
                    "http://127.0.0.1/callback".to_owned(),
                    "http://localhost/callback".to_owned(),
                ],
            });
        }
        for (client_id, resource) in &self.resource_servers {
            // Every pre-registered client is confidential (it has a secret); the clients
            // registered or fetched at run time are not known here.
            if !self.clients.iter().any(|c| c.id == *client_id) {
                return Err(invalid_input(format!(
                    "resource server {resource:?}: client {client_id:?} is not a pre-registered \
                     (confidential) client"
                )));
            }
            if !is_valid_audience(resource) {
                return Err(invalid_input(format!(
                    "resource server {client_id:?}: resource {resource:?} is empty or has \
                     spaces or control characters"
                )));
            }
        }
        dedup(&mut self.resource_servers);
        if let Some(pem) = &self.local_client_metadata_ca
            && let Err(error) = crate::testing::trust_only(reqwest::Client::builder(), pem)
        {
            return Err(invalid_input(format!(
                "the root CA for local client metadata documents is unusable: {error}"
            )));
        }
        Ok(self)
    }

    /// Whether the token-exchange grant is offered: some exchange audience is configured.
    pub(crate) fn offers_token_exchange(&self) -> bool {
        !self.exchange_audiences.is_empty()
    }

    /// Whether the server offers the grant type `grant`.
    pub(crate) fn offers(&self, grant: GrantType) -> bool {
        grant != GrantType::TokenExchange || self.offers_token_exchange()
    }

    /// Whether dynamic registration accepts the redirect URI `uri`: an `http` loopback URI
    /// (RFC 8252 §7.3), or an `http`/`https` URI on one of the allowed hosts.
    pub(crate) fn may_register_redirect_uri(&self, uri: &str) -> bool {
        let Ok(url) = Url::parse(uri) else {
            return false;
        };
        is_loopback_http(&url)
            || (matches!(url.scheme(), "http" | "https")
                && url
                    .host()
                    .is_some_and(|host| self.redirect_hosts.contains(&host.to_string())))
    }
}

/// Whether `audience` may be a configured audience: not empty, no whitespace or control
/// characters.
fn is_valid_audience(audience: &str) -> bool {
    !audience.is_empty()
        && !audience
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
}

/// Removes every repeated item, wherever it is, keeping the first of each in order.
fn dedup<T: PartialEq + Clone>(list: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(list.len());
    list.retain(|item| {
        if seen.contains(item) {
            false
        } else {
            seen.push(item.clone());
            true
        }
    });
}

/// State shared by the handles and the handlers.
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) issuer: String,
    pub(crate) addr: SocketAddr,
    pub(crate) jwks_uri: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) registration_endpoint: String,
    pub(crate) introspection_endpoint: String,
    pub(crate) revocation_endpoint: String,
    pub(crate) dev_client: DevClient,
    pub(super) key: SigningKey,
    pub(super) verifying_key: VerifyingKey,
    pub(super) store: Store,
    pub(super) next_family: AtomicU64,
    /// The token endpoint's DPoP proof checks and the proofs seen.
    pub(super) dpop: TokenEndpointDpop,
    /// Client ID Metadata Documents: fetched, checked, cached.
    pub(super) client_metadata: ClientMetadataFetcher,
}

impl Inner {
    /// The client `id` names: pre-registered, registered, or (an `https` URL) described by
    /// its metadata document, fetched or cached; `Ok(None)` for an unknown client.
    pub(super) async fn find_client(
        &self,
        id: &str,
    ) -> Result<Option<Arc<Client>>, DocumentRefusal> {
        if let Some(client) = self.store.client(id) {
            return Ok(Some(client));
        }
        if !is_document_url(id) {
            return Ok(None);
        }
        self.client_metadata.client(id, self.now()).await.map(Some)
    }

    /// Revokes access tokens by `jti`, with the tokens exchanged from them (transitively):
    /// refused by introspection and token exchange here, and listed in the configured
    /// [`Revocations`](crate::revocation::Revocations), which shares them with the resource
    /// servers that consult it.
    pub(super) fn revoke_access_tokens(&self, tokens: Vec<(String, u64)>, now: u64) {
        let given = tokens.len();
        let revoked = self.store.revoke_access_tokens(tokens, now);
        if revoked.len() > given {
            tracing::debug!(
                exchanged = revoked.len() - given,
                "dev authorization server: revoked the tokens exchanged from revoked ones"
            );
        }
        if let Some(revocations) = &self.config.revocations {
            for (jti, exp) in revoked.iter().filter(|(_, exp)| *exp > now) {
                revocations.revoke_in_background(
                    crate::revocation::Revocation::jwt_id(&self.issuer, jti),
                    *exp,
                );
            }
        }
    }
}

/// An access token just signed.
pub(crate) struct IssuedAccessToken {
    pub(crate) token: String,
    pub(crate) exp: u64,
    /// Whether it carries `cnf.jkt` (its `token_type` is then `DPoP`).
    pub(crate) dpop_bound: bool,
}

/// Who and what an access token is for.
#[derive(Clone, Copy)]
pub(crate) struct AccessGrant<'a> {
    pub(crate) subject: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) scopes: &'a [String],
    /// The `aud`: a string when there is one, else an array.
    pub(crate) audiences: &'a [String],
    /// The DPoP key the token is bound to (`cnf.jkt`), if any.
    pub(crate) dpop: Option<&'a Thumbprint>,
}

impl Inner {
    pub(crate) fn new(config: Config, addr: SocketAddr) -> io::Result<Inner> {
        let issuer = format!("http://{addr}");
        let kid = format!("dev-{}", &random_id()[..8]);
        let key = SigningKey::generate(config.algorithm, kid);
        let verifying_key = verifying_key(&key)?;
        let static_clients = config
            .clients
            .iter()
            .map(|c| Client {
                id: c.id.clone(),
                name: None,
                secret_hash: Some(sha256(c.secret.as_bytes())),
                grant_types: GrantType::ALL.to_vec(),
                scopes: c.scopes.clone(),
                redirect_uris: c.redirect_uris.clone(),
                document: None,
            })
            .collect();
        let dev_client = config
            .clients
            .iter()
            .find(|c| c.id == DEFAULT_CLIENT_ID)
            .cloned()
            .expect("Config::check adds the dev client");
        let store = Store::new(static_clients, config.max_entries);
        let token_endpoint = format!("{issuer}/token");
        let dpop = TokenEndpointDpop::new(&token_endpoint, config.max_entries)?;
        let client_metadata = ClientMetadataFetcher::new(
            config.local_client_metadata_ca.clone(),
            config.scopes.clone(),
            config.max_entries,
        );
        Ok(Inner {
            jwks_uri: format!("{issuer}/jwks"),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint,
            registration_endpoint: format!("{issuer}/register"),
            introspection_endpoint: format!("{issuer}/introspect"),
            revocation_endpoint: format!("{issuer}/revoke"),
            issuer,
            addr,
            dev_client,
            key,
            verifying_key,
            store,
            config,
            next_family: AtomicU64::new(0),
            dpop,
            client_metadata,
        })
    }

    pub(crate) fn now(&self) -> u64 {
        self.config.clock.now().as_secs()
    }

    /// The RFC 8414 document; with `openid`, the members OpenID discovery requires too.
    pub(crate) fn metadata(&self, openid: bool) -> Value {
        let secret_methods = ["client_secret_basic", "client_secret_post"];
        let mut doc = json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "registration_endpoint": self.registration_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GrantType::ALL
                .into_iter()
                .filter(|grant| self.config.offers(*grant))
                .map(GrantType::name)
                .collect::<Vec<_>>(),
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": secret_methods,
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
            "dpop_signing_alg_values_supported": DEFAULT_PROOF_ALGORITHMS,
        });
        let members = doc.as_object_mut().expect("an object");
        if !self.config.scopes.is_empty() {
            members.insert("scopes_supported".to_owned(), json!(self.config.scopes));
        }
        if openid {
            members.insert("subject_types_supported".to_owned(), json!(["public"]));
            members.insert(
                "id_token_signing_alg_values_supported".to_owned(),
                json!([self.key.algorithm().name()]),
            );
        }
        doc
    }

    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.key.public_jwk()] })
    }

    /// Signs an RFC 9068 access token, bound to the DPoP key `dpop` if given.
    pub(crate) fn issue_access_token(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
        audience: &str,
        dpop: Option<&Thumbprint>,
        now: u64,
    ) -> IssuedAccessToken {
        let audiences = [audience.to_owned()];
        let grant = AccessGrant {
            subject,
            client_id,
            scopes,
            audiences: &audiences,
            dpop,
        };
        self.sign_access_token(random_id(), &grant, now)
    }

    /// Signs an access token for the default resource with `extra` claims, as
    /// [`DevAuthorizationServer::mint_access_token_with_claims`](super::DevAuthorizationServer::mint_access_token_with_claims)
    /// mints it.
    pub(crate) fn mint_access_token(
        &self,
        subject: &str,
        client_id: &str,
        scopes: &[String],
        extra: Map<String, Value>,
        now: u64,
    ) -> IssuedAccessToken {
        let audiences = [self.config.resources[0].clone()];
        let grant = AccessGrant {
            subject,
            client_id,
            scopes,
            audiences: &audiences,
            dpop: None,
        };
        let exp = now.saturating_add(self.config.access_token_ttl);
        self.sign_access_token_with(random_id(), &grant, exp, extra, now)
    }

    /// Signs an access token valid for the access-token lifetime.
    pub(super) fn sign_access_token(
        &self,
        jti: String,
        grant: &AccessGrant<'_>,
        now: u64,
    ) -> IssuedAccessToken {
        let exp = now.saturating_add(self.config.access_token_ttl);
        self.sign_access_token_with(jti, grant, exp, Map::new(), now)
    }

    /// Signs an access token expiring at `exp`, with `extra` claims added (replacing any
    /// standard claim of the same name).
    pub(super) fn sign_access_token_with(
        &self,
        jti: String,
        grant: &AccessGrant<'_>,
        exp: u64,
        extra: Map<String, Value>,
        now: u64,
    ) -> IssuedAccessToken {
        let AccessGrant {
            subject,
            client_id,
            scopes,
            audiences,
            dpop,
        } = *grant;
        let header = json!({
            "alg": self.key.algorithm().name(),
            "typ": "at+jwt",
            "kid": self.key.kid(),
        });
        let aud = match audiences {
            [one] => json!(one),
            many => json!(many),
        };
        let mut claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": aud,
            "client_id": client_id,
            "iat": now,
            "exp": exp,
            "jti": jti,
        });
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        if let Some(thumbprint) = dpop {
            claims["cnf"] = json!({ "jkt": jkt(thumbprint) });
        }
        if let Value::Object(members) = &mut claims {
            members.extend(extra);
        }
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(exp);
        let token = compact_jws(&header, &claims, &self.key);
        tracing::debug!(
            %client_id,
            %jti,
            aud = %audiences.join(" "),
            dpop = dpop.is_some(),
            "dev authorization server: issued an access token"
        );
        IssuedAccessToken {
            token,
            exp,
            dpop_bound: dpop.is_some(),
        }
    }

    /// The claims of an access token this server signed, if its signature holds, it is valid
    /// already (`nbf`, if any, not after `now`), it has not expired and it was not revoked.
    /// No leeway either way: the server judges the tokens it signed on the clock it signed
    /// them with.
    pub(super) fn verify_access_token(&self, token: &str, now: u64) -> Option<Map<String, Value>> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, claims) = signing_input.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.key.algorithm().name()
            || header.get("kid")?.as_str()? != self.key.kid()
            || header.get("typ")?.as_str()? != "at+jwt"
        {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.verifying_key
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        let Value::Object(claims) = claims else {
            return None;
        };
        let live = claims.get("iss")?.as_str()? == self.issuer
            && claims.get("exp")?.as_u64()? > now
            && claims
                .get("nbf")
                .is_none_or(|nbf| nbf.as_u64().is_some_and(|nbf| nbf <= now))
            && !self.store.is_revoked(claims.get("jti")?.as_str()?);
        live.then_some(claims)
    }
}

/// The public key of `key`, for checking the server's own tokens.
fn verifying_key(key: &SigningKey) -> io::Result<VerifyingKey> {
    let jwk = key.public_jwk();
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
            .unwrap_or_default()
    };
    let algorithm = Algorithm::from_name(key.algorithm().name())
        .ok_or_else(|| invalid_input(format!("{} is not supported", key.algorithm().name())))?;
    let (n, e, x, y) = (member("n"), member("e"), member("x"), member("y"));
    let material = match (
        jwk.get("kty").and_then(Value::as_str),
        jwk.get("crv").and_then(Value::as_str),
    ) {
        (Some("RSA"), _) => PublicKeyMaterial::Rsa { n: &n, e: &e },
        (Some("EC"), Some("P-256")) => PublicKeyMaterial::Ec {
            curve: Curve::P256,
            x: &x,
            y: &y,
        },
        (Some("EC"), Some("P-384")) => PublicKeyMaterial::Ec {
            curve: Curve::P384,
            x: &x,
            y: &y,
        },
        (Some("OKP"), Some("Ed25519")) => PublicKeyMaterial::Ed25519 { x: &x },
        _ => {
            return Err(invalid_input(
                "the signing key has no public key".to_owned(),
            ));
        }
    };
    VerifyingKey::new(algorithm, material)
        .map_err(|error| io::Error::other(format!("the signing key is unusable: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            resources: vec!["http://127.0.0.1:8080/mcp".to_owned()],
            scopes: Vec::new(),
            dev_user: "dev-user".to_owned(),
            access_token_ttl: 300,
            refresh_token_ttl: 3600,
            clients: vec![DevClient {
                id: "rs".to_owned(),
                secret: "rs-secret".to_owned(),
                scopes: Vec::new(),
                redirect_uris: Vec::new(),
            }],
            algorithm: SigningAlgorithm::ES256,
            clock: Arc::new(crate::clock::SystemClock),
            max_entries: 10,
            redirect_hosts: Vec::new(),
            revocations: None,
            exchange_audiences: Vec::new(),
            resource_servers: Vec::new(),
            local_client_metadata_ca: None,
        }
    }

    #[test]
    fn repeated_settings_are_kept_once_wherever_they_are() {
        let pair = |client: &str, resource: &str| (client.to_owned(), resource.to_owned());
        let mut config = config();
        config.resource_servers = vec![
            pair("rs", "https://a.example.test"),
            pair("rs", "https://b.example.test"),
            pair("rs", "https://a.example.test"),
            pair("dev-client", "https://a.example.test"),
            pair("rs", "https://b.example.test"),
        ];
        config.exchange_audiences = ["x", "y", "x"].map(str::to_owned).to_vec();
        let config = config.check().unwrap();
        assert_eq!(
            config.resource_servers,
            [
                pair("rs", "https://a.example.test"),
                pair("rs", "https://b.example.test"),
                pair("dev-client", "https://a.example.test"),
            ]
        );
        assert_eq!(config.exchange_audiences, ["x", "y"]);
    }
}
