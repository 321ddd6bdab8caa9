//! The endpoints' logic: client authentication, the token endpoint's three grants,
//! registration, introspection and revocation, and RFC 6749 error responses. The
//! authorization endpoint is in `authorize`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::client_metadata::DocumentRefusal;
use super::dpop::{BoundGrant, DpopRefusal, Thumbprint, check_bound, jkt};
use super::params::{
    Params, form_decode, is_code_verifier, is_valid_redirect_uri, random_token, requested_scopes,
    s256, split_scopes,
};
use super::state::{AccessGrant, Inner, IssuedAccessToken};
use super::store::{AuthMethod, Client, GrantType, Redemption, RefreshEntry, fingerprint};
use crate::crypto::{random_id, sha256};

/// The realm of `WWW-Authenticate: Basic` on `invalid_client`.
const BASIC_CHALLENGE: &str = "Basic realm=\"mcp-oauth dev authorization server\"";
/// Limits of dynamic client registration.
const MAX_REDIRECT_URIS: usize = 20;
const MAX_METADATA_STRING: usize = 2048;

impl Inner {
    /// The client a request authenticates as (RFC 6749 §2.3). With `confidential_only`,
    /// public clients (identified by `client_id` alone) are refused, and no client metadata
    /// document is fetched (such clients are public).
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        params: &Params,
        confidential_only: bool,
    ) -> Result<Arc<Client>, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        let (id, secret) = match headers.get(AUTHORIZATION) {
            Some(value) => {
                if body_secret.is_some() {
                    return Err(OAuthError::invalid_request(
                        "more than one client authentication method",
                    ));
                }
                let (id, secret) = basic_credentials(value).ok_or_else(|| {
                    OAuthError::invalid_client("malformed HTTP Basic client credentials")
                })?;
                if body_id.is_some_and(|body_id| body_id != id) {
                    return Err(OAuthError::invalid_client(
                        "client_id differs from the authenticated client",
                    ));
                }
                (id, secret)
            }
            None => match (body_id, body_secret) {
                (Some(id), secret) => (id.to_owned(), secret.map(str::to_owned)),
                (None, _) => {
                    return Err(OAuthError::invalid_client("client authentication required"));
                }
            },
        };
        let unknown = || OAuthError::invalid_client("unknown client or wrong credentials");
        let client = if confidential_only {
            self.store.client(&id)
        } else {
            self.find_client(&id).await.map_err(OAuthError::from)?
        };
        let client = client.ok_or_else(unknown)?;
        match secret {
            Some(secret) if client.secret_matches(&secret) => Ok(client),
            Some(_) => Err(unknown()),
            None if client.is_public() && !confidential_only => Ok(client),
            None if client.is_public() => Err(OAuthError::invalid_client(
                "this endpoint needs a confidential client",
            )),
            None => Err(OAuthError::invalid_client("client authentication required")),
        }
    }

    /// The `resource` parameter (RFC 8707), checked against the configured resources.
    pub(super) fn requested_resource(&self, params: &Params) -> Result<Option<String>, OAuthError> {
        match params.all("resource") {
            [] => Ok(None),
            [resource] if self.config.resources.contains(resource) => Ok(Some(resource.clone())),
            [_] => Err(OAuthError::invalid_target(
                "the resource is not served by this authorization server",
            )),
            _ => Err(OAuthError::invalid_target(
                "at most one resource per request",
            )),
        }
    }

    pub(super) fn default_resource(&self) -> String {
        self.config.resources[0].clone()
    }

    fn new_family_id(&self) -> u64 {
        self.next_family.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates a refresh token in `family` and returns it.
    fn issue_refresh_token(&self, grant: RefreshGrant<'_>, family: u64, now: u64) -> String {
        let token = random_token("dev_rt_");
        let entry = RefreshEntry {
            family,
            client_id: grant.client_id.to_owned(),
            subject: grant.subject.to_owned(),
            scopes: grant.scopes.to_vec(),
            resource: grant.resource.to_owned(),
            issued_at: now,
            expires_at: now.saturating_add(self.config.refresh_token_ttl),
            used: false,
            dpop_jkt: grant.dpop_jkt.copied(),
        };
        self.store
            .refresh
            .lock()
            .tokens
            .insert(sha256(token.as_bytes()), entry);
        tracing::debug!(
            client_id = %grant.client_id,
            family,
            refresh_token = %fingerprint(&token),
            dpop = grant.dpop_jkt.is_some(),
            "dev authorization server: issued a refresh token"
        );
        token
    }

    /// `POST /token`. With a `DPoP` header (RFC 9449 §5), the proof is checked and the access
    /// token bound to its key; without one, a bearer token is issued.
    pub(super) async fn token(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, OAuthError> {
        check_form_content_type(headers)?;
        let params = Params::parse(body);
        if let Some(name) = params.first_duplicate() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        let client = self.authenticate(headers, &params, false).await?;
        let grant = match params.get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(name) => GrantType::parse(name)
                .filter(|grant| self.config.offers(*grant))
                .ok_or_else(|| {
                    let supported: Vec<&str> = GrantType::ALL
                        .into_iter()
                        .filter(|grant| self.config.offers(*grant))
                        .map(GrantType::name)
                        .collect();
                    OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "unsupported_grant_type",
                        format!("supported: {}", supported.join(", ")),
                    )
                })?,
        };
        if !client.allows(grant) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                format!("the client may not use the {} grant", grant.name()),
            ));
        }
        let now = self.now();
        let proof = self.dpop.check(headers, now).await?;
        let proof = proof.as_ref();
        match grant {
            GrantType::ClientCredentials => self.client_credentials(&client, &params, proof, now),
            GrantType::AuthorizationCode => self.authorization_code(&client, &params, proof, now),
            GrantType::RefreshToken => self.refresh_token(&client, &params, proof, now),
            GrantType::TokenExchange => self.token_exchange(&client, &params, proof, now),
        }
    }

    fn client_credentials(
        &self,
        client: &Client,
        params: &Params,
        proof: Option<&Thumbprint>,
        now: u64,
    ) -> Result<Value, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "public clients may not use client_credentials",
            ));
        }
        let scopes = requested_scopes(params.get("scope"), &client.scopes)
            .map_err(|_| OAuthError::invalid_scope("a requested scope is not the client's"))?;
        let resource = self
            .requested_resource(params)?
            .unwrap_or_else(|| self.default_resource());
        let issued =
            self.issue_access_token(&client.id, &client.id, &scopes, &resource, proof, now);
        Ok(self.token_response(&issued, &scopes, None, now))
    }

    fn authorization_code(
        &self,
        client: &Client,
        params: &Params,
        proof: Option<&Thumbprint>,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let code = params
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let verifier = params.get("code_verifier").ok_or_else(|| {
            OAuthError::invalid_request("code_verifier is missing: PKCE is required")
        })?;
        let resource = self.requested_resource(params)?;
        let hash = sha256(code.as_bytes());
        let with_refresh = client.allows(GrantType::RefreshToken);
        let jti = random_id();
        let jti_expires_at = now.saturating_add(self.config.access_token_ttl);
        let family = with_refresh.then(|| self.new_family_id());

        let grant = {
            let mut codes = self.store.codes.lock();
            let Some(grant) = codes.get_mut(&hash) else {
                return Err(OAuthError::invalid_grant("unknown authorization code"));
            };
            if grant.client_id != client.id {
                return Err(OAuthError::invalid_grant(
                    "the code was issued to another client",
                ));
            }
            // RFC 9449 §10: a code issued for a `dpop_jkt` needs a proof by that key, checked
            // before anything the code's holder could otherwise change (a replay's revocation,
            // a PKCE failure that burns it): a thief without the key changes nothing.
            check_bound(BoundGrant::Code, grant.dpop_jkt.as_ref(), proof)?;
            if let Some(redemption) = grant.redeemed.clone() {
                drop(codes);
                self.revoke_redemption(redemption, now);
                tracing::debug!(
                    client_id = %client.id,
                    "dev authorization server: authorization code replayed, its tokens revoked"
                );
                return Err(OAuthError::invalid_grant(
                    "the code was already used: the tokens issued for it are revoked",
                ));
            }
            if grant.expires_at <= now {
                codes.remove(&hash);
                return Err(OAuthError::invalid_grant("the code has expired"));
            }
            let redirect_ok = match (&grant.redirect_uri, params.get("redirect_uri")) {
                (Some(bound), Some(given)) => bound == given,
                (Some(_), None) => false,
                (None, given) => given.is_none_or(|given| client.redirect_uris[..] == [given]),
            };
            if !redirect_ok {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            if !is_code_verifier(verifier) || s256(verifier) != grant.code_challenge {
                // A failed PKCE check burns the code.
                codes.remove(&hash);
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            if resource.as_ref().is_some_and(|r| *r != grant.resource) {
                return Err(OAuthError::invalid_target(
                    "the resource differs from the authorization request",
                ));
            }
            grant.redeemed = Some(Redemption {
                family,
                jti: jti.clone(),
                jti_expires_at,
            });
            RedeemedCode {
                subject: grant.subject.clone(),
                scopes: grant.scopes.clone(),
                resource: grant.resource.clone(),
            }
        };

        let refresh_token = family.map(|family| {
            self.store
                .refresh
                .lock()
                .create_family(family, jti.clone(), jti_expires_at, now);
            let refresh_grant = RefreshGrant {
                client_id: &client.id,
                subject: &grant.subject,
                scopes: &grant.scopes,
                resource: &grant.resource,
                dpop_jkt: refresh_binding(client, proof),
            };
            self.issue_refresh_token(refresh_grant, family, now)
        });
        let access = AccessGrant {
            subject: &grant.subject,
            client_id: &client.id,
            scopes: &grant.scopes,
            audiences: std::slice::from_ref(&grant.resource),
            dpop: proof,
        };
        let issued = self.sign_access_token(jti, &access, now);
        Ok(self.token_response(&issued, &grant.scopes, refresh_token, now))
    }

    /// Revokes what a replayed authorization code was exchanged for.
    fn revoke_redemption(&self, redemption: Redemption, now: u64) {
        let mut access_tokens = vec![(redemption.jti, redemption.jti_expires_at)];
        if let Some(family) = redemption.family {
            access_tokens.extend(self.store.refresh.lock().revoke_family(family));
        }
        self.revoke_access_tokens(access_tokens, now);
    }

    fn refresh_token(
        &self,
        client: &Client,
        params: &Params,
        proof: Option<&Thumbprint>,
        now: u64,
    ) -> Result<Value, OAuthError> {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let resource = self.requested_resource(params)?;
        let hash = sha256(presented.as_bytes());
        let jti = random_id();
        let jti_expires_at = now.saturating_add(self.config.access_token_ttl);

        let (family, subject, granted, requested, audience) = {
            let mut tables = self.store.refresh.lock();
            let Some(entry) = tables.tokens.get(&hash) else {
                return Err(OAuthError::invalid_grant("unknown refresh token"));
            };
            if entry.client_id != client.id {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            let family = entry.family;
            if !tables.family_live(family) {
                return Err(OAuthError::invalid_grant("the refresh token was revoked"));
            }
            // RFC 9449 §5: a public client's bound refresh token needs a proof by its key
            // (checked first: without the key, a presented token changes nothing).
            check_bound(BoundGrant::RefreshToken, entry.dpop_jkt.as_ref(), proof)?;
            if entry.used {
                let revoked = tables.revoke_family(family);
                drop(tables);
                self.revoke_access_tokens(revoked, now);
                tracing::debug!(
                    client_id = %client.id,
                    family,
                    refresh_token = %fingerprint(presented),
                    "dev authorization server: rotated refresh token replayed, family revoked"
                );
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used: its whole family is revoked",
                ));
            }
            if entry.expires_at <= now {
                return Err(OAuthError::invalid_grant("the refresh token has expired"));
            }
            let requested = requested_scopes(params.get("scope"), &entry.scopes).map_err(|_| {
                OAuthError::invalid_scope("a requested scope exceeds the original grant")
            })?;
            if resource.as_ref().is_some_and(|r| *r != entry.resource) {
                return Err(OAuthError::invalid_target(
                    "the resource differs from the original grant",
                ));
            }
            let snapshot = (
                family,
                entry.subject.clone(),
                entry.scopes.clone(),
                requested,
                entry.resource.clone(),
            );
            if let Some(entry) = tables.tokens.get_mut(&hash) {
                entry.used = true;
            }
            if let Some(family) = tables.families.get_mut(&family) {
                family.remember(jti.clone(), jti_expires_at, now);
            }
            snapshot
        };

        // The new refresh token keeps the grant's scopes (RFC 6749 §6); only the access
        // token is down-scoped.
        let refresh_grant = RefreshGrant {
            client_id: &client.id,
            subject: &subject,
            scopes: &granted,
            resource: &audience,
            dpop_jkt: refresh_binding(client, proof),
        };
        let refresh_token = self.issue_refresh_token(refresh_grant, family, now);
        let access = AccessGrant {
            subject: &subject,
            client_id: &client.id,
            scopes: &requested,
            audiences: std::slice::from_ref(&audience),
            dpop: proof,
        };
        let issued = self.sign_access_token(jti, &access, now);
        Ok(self.token_response(&issued, &requested, Some(refresh_token), now))
    }

    fn token_response(
        &self,
        issued: &IssuedAccessToken,
        scopes: &[String],
        refresh_token: Option<String>,
        now: u64,
    ) -> Value {
        let mut response = json!({
            "access_token": issued.token,
            "token_type": if issued.dpop_bound { "DPoP" } else { "Bearer" },
            "expires_in": issued.exp.saturating_sub(now),
            "scope": scopes.join(" "),
        });
        if let Some(refresh_token) = refresh_token {
            response["refresh_token"] = Value::String(refresh_token);
        }
        response
    }

    pub(super) fn register(&self, body: &[u8]) -> Result<Value, OAuthError> {
        let metadata_error = |description: &str| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_client_metadata",
                description,
            )
        };
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return Err(metadata_error("the body is not a JSON object"));
        };
        let strings = |name: &str| -> Result<Option<Vec<String>>, OAuthError> {
            match request.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) if s.len() <= MAX_METADATA_STRING => Ok(s.clone()),
                        _ => Err(metadata_error(&format!("{name} must hold short strings"))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(metadata_error(&format!("{name} must be an array"))),
            }
        };
        let string = |name: &str| -> Result<Option<String>, OAuthError> {
            match request.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= MAX_METADATA_STRING => Ok(Some(s.clone())),
                Some(_) => Err(metadata_error(&format!("{name} must be a short string"))),
            }
        };

        let auth_method = match string("token_endpoint_auth_method")? {
            None => AuthMethod::ClientSecretBasic,
            Some(name) => AuthMethod::parse(&name).ok_or_else(|| {
                metadata_error(
                    "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
                )
            })?,
        };
        let grant_types = match strings("grant_types")? {
            None => vec![GrantType::AuthorizationCode],
            Some(names) => {
                let mut grants = Vec::new();
                for name in names {
                    let grant = GrantType::parse(&name)
                        .filter(|grant| *grant != GrantType::TokenExchange)
                        .ok_or_else(|| metadata_error("unsupported grant type"))?;
                    if !grants.contains(&grant) {
                        grants.push(grant);
                    }
                }
                grants
            }
        };
        if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(metadata_error(
                "public clients may not use client_credentials",
            ));
        }
        if let Some(response_types) = strings("response_types")?
            && response_types.iter().any(|t| t != "code")
        {
            return Err(metadata_error("only the code response type is supported"));
        }
        let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
        let redirect_error = |description: &str| {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
        };
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(redirect_error("too many redirect_uris"));
        }
        if redirect_uris.iter().any(|uri| !is_valid_redirect_uri(uri)) {
            return Err(redirect_error(
                "a redirect URI is not an absolute URL without fragment, or its query carries \
                 code, state, error, error_description or iss",
            ));
        }
        if !redirect_uris
            .iter()
            .all(|uri| self.config.may_register_redirect_uri(uri))
        {
            return Err(redirect_error(
                "only loopback redirect URIs (http://127.0.0.1, http://[::1] or http://localhost, \
                 any port) may be registered: see DevAuthorizationServerBuilder::allow_redirect_hosts",
            ));
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
            return Err(redirect_error(
                "redirect_uris is required for the authorization_code grant",
            ));
        }
        let scopes = match string("scope")? {
            None => self.config.scopes.clone(),
            Some(scope) => {
                let scopes = split_scopes(&scope);
                if scopes.iter().any(|s| !self.config.scopes.contains(s)) {
                    return Err(metadata_error("a requested scope is not supported"));
                }
                scopes
            }
        };
        let client_name = string("client_name")?;

        let id = format!("dcr-{}", random_id());
        let secret = (auth_method != AuthMethod::None).then(|| random_token(""));
        let now = self.now();
        let mut response = json!({
            "client_id": id,
            "client_id_issued_at": now,
            "redirect_uris": redirect_uris,
            "grant_types": grant_types.iter().map(|g| g.name()).collect::<Vec<_>>(),
            "response_types": if grant_types.contains(&GrantType::AuthorizationCode) {
                json!(["code"])
            } else {
                json!([])
            },
            "token_endpoint_auth_method": auth_method.name(),
            "scope": scopes.join(" "),
        });
        if let Some(secret) = &secret {
            response["client_secret"] = json!(secret);
            response["client_secret_expires_at"] = json!(0);
        }
        if let Some(name) = &client_name {
            response["client_name"] = json!(name);
        }
        self.store.registered.lock().insert(
            id.clone(),
            Arc::new(Client {
                id: id.clone(),
                name: client_name,
                secret_hash: secret.as_deref().map(|s| sha256(s.as_bytes())),
                grant_types,
                scopes,
                redirect_uris,
                document: None,
            }),
        );
        tracing::debug!(client_id = %id, "dev authorization server: registered a client");
        Ok(response)
    }

    pub(super) async fn introspect(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, OAuthError> {
        check_form_content_type(headers)?;
        let params = Params::parse(body);
        if let Some(name) = params.first_duplicate() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        self.authenticate(headers, &params, true).await?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let now = self.now();
        if let Some(response) = self.introspect_refresh_token(token, now) {
            return Ok(response);
        }
        let Some(claims) = self.verify_access_token(token, now) else {
            return Ok(json!({ "active": false }));
        };
        let mut response = Map::new();
        response.insert("active".to_owned(), Value::Bool(true));
        for name in [
            "scope",
            "client_id",
            "sub",
            "aud",
            "iss",
            "exp",
            "iat",
            "jti",
            "cnf",
            "act",
        ] {
            if let Some(value) = claims.get(name) {
                response.insert(name.to_owned(), value.clone());
            }
        }
        let token_type = if claims.contains_key("cnf") {
            "DPoP"
        } else {
            "Bearer"
        };
        response.insert("token_type".to_owned(), json!(token_type));
        Ok(Value::Object(response))
    }

    fn introspect_refresh_token(&self, token: &str, now: u64) -> Option<Value> {
        let tables = self.store.refresh.lock();
        let entry = tables.tokens.get(&sha256(token.as_bytes()))?;
        let active = !entry.used && entry.expires_at > now && tables.family_live(entry.family);
        if !active {
            return Some(json!({ "active": false }));
        }
        let mut response = json!({
            "active": true,
            "client_id": entry.client_id,
            "sub": entry.subject,
            "aud": entry.resource,
            "iss": self.issuer,
            "exp": entry.expires_at,
            "iat": entry.issued_at,
            "token_type": "refresh_token",
        });
        if !entry.scopes.is_empty() {
            response["scope"] = json!(entry.scopes.join(" "));
        }
        if let Some(thumbprint) = &entry.dpop_jkt {
            response["cnf"] = json!({ "jkt": jkt(thumbprint) });
        }
        Some(response)
    }

    pub(super) async fn revoke(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
        check_form_content_type(headers)?;
        let params = Params::parse(body);
        if let Some(name) = params.first_duplicate() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        let client = self.authenticate(headers, &params, false).await?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let now = self.now();
        let hash = sha256(token.as_bytes());
        let mut tables = self.store.refresh.lock();
        if let Some(entry) = tables.tokens.get(&hash) {
            if entry.client_id == client.id {
                let family = entry.family;
                let revoked = tables.revoke_family(family);
                drop(tables);
                self.revoke_access_tokens(revoked, now);
                tracing::debug!(client_id = %client.id, family, "dev authorization server: revoked a refresh token family");
            }
            return Ok(());
        }
        drop(tables);
        if let Some(claims) = self.verify_access_token(token, now) {
            let owned = claims.get("client_id").and_then(Value::as_str) == Some(&client.id);
            let jti = claims.get("jti").and_then(Value::as_str);
            let exp = claims.get("exp").and_then(Value::as_u64);
            if let (true, Some(jti), Some(exp)) = (owned, jti, exp) {
                self.revoke_access_tokens(vec![(jti.to_owned(), exp)], now);
                tracing::debug!(client_id = %client.id, %jti, "dev authorization server: revoked an access token");
            }
        }
        Ok(())
    }
}

/// The fields of a grant a refresh token carries.
struct RefreshGrant<'a> {
    client_id: &'a str,
    subject: &'a str,
    scopes: &'a [String],
    resource: &'a str,
    /// The DPoP key it is bound to (public clients only).
    dpop_jkt: Option<&'a Thumbprint>,
}

/// The key a new refresh token is bound to: a public client's refresh tokens are bound to the
/// key of the proof they were issued with (RFC 9449 §5); a confidential client's never are
/// (its authentication protects them).
fn refresh_binding<'a>(client: &Client, proof: Option<&'a Thumbprint>) -> Option<&'a Thumbprint> {
    if client.is_public() { proof } else { None }
}

/// What an authorization code grants, copied out of the code table.
struct RedeemedCode {
    subject: String,
    scopes: Vec<String>,
    resource: String,
}

/// The id and secret of `Authorization: Basic …`, form-decoded (RFC 6749 §2.3.1); an empty
/// secret is none.
fn basic_credentials(value: &HeaderValue) -> Option<(String, Option<String>)> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_decode(id)?;
    (!id.is_empty()).then_some(())?;
    let secret = form_decode(secret)?;
    // Some public clients send `client_id:` with an empty password: no secret.
    Some((id, (!secret.is_empty()).then_some(secret)))
}

/// Refuses a body announced as anything but a form (a missing `Content-Type` is accepted).
pub(super) fn check_form_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    }
}

impl From<DpopRefusal> for OAuthError {
    /// `400 invalid_dpop_proof` (RFC 9449 §5), or `503 temporarily_unavailable` when the
    /// proof cannot be checked now.
    fn from(refusal: DpopRefusal) -> Self {
        tracing::debug!(
            ?refusal,
            "dev authorization server: refused a token request's DPoP"
        );
        match refusal {
            DpopRefusal::StoreFull => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                refusal.description(),
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                refusal.description(),
            ),
        }
    }
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub(super) struct OAuthError {
    status: StatusCode,
    pub(super) error: &'static str,
    pub(super) description: String,
}

impl OAuthError {
    pub(super) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(super) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub(super) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(super) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub(super) fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub(super) fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = json_response(self.status, &body, true);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
        }
        response
    }
}

pub(super) fn json_response(status: StatusCode, body: &Value, no_store: bool) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if no_store {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    }
    response
}

pub(super) fn result_response(result: Result<Value, OAuthError>, status: StatusCode) -> Response {
    match result {
        Ok(body) => json_response(status, &body, true),
        Err(error) => error.into_response(),
    }
}

impl From<DocumentRefusal> for OAuthError {
    /// At the token endpoint: `503 temporarily_unavailable` when busy, else `401
    /// invalid_client`; the fixed description either way.
    fn from(refusal: DocumentRefusal) -> Self {
        match refusal {
            DocumentRefusal::Busy => OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                refusal.description(),
            ),
            _ => OAuthError::invalid_client(refusal.description()),
        }
    }
}
