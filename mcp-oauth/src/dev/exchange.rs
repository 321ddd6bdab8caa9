//! RFC 8693 token exchange at the token endpoint: a resource server that received an access
//! token of this server trades it for one whose audience is a downstream API, instead of
//! forwarding it (no token passthrough).
//!
//! Who may exchange: a confidential client (authenticated with its secret) that is an
//! audience of the subject token, i.e. the token's `aud` names its `client_id` or a resource
//! it was [declared to be](super::DevAuthorizationServerBuilder::resource_server). What it
//! gets: a token for the requested audiences (each in the configured allow-list), for the
//! same subject, with at most the scopes both the subject token and the client have, expiring
//! no later than the subject token, and naming the client as the actor (`act`, RFC 8693
//! §4.1, nesting any earlier actor). A `may_act` claim in the subject token (§4.4) limits who
//! may act to the party it names.
//!
//! Revocation: the `jti` and `exp` of every token issued here are recorded under the `jti`
//! of its subject token (bounded like the other tables), and revoking a token (RFC 7009
//! `/revoke`, a replayed code, a revoked refresh-token family) revokes the tokens exchanged
//! from it with it, transitively through chained exchanges, in the configured
//! [`Revocations`](crate::revocation::Revocations) too.
//!
//! Chains: an exchanged token may be exchanged again (by one of its audiences), each time
//! adding an actor, up to [`MAX_ACT_DEPTH`] actors in the new token's `act`; a longer chain,
//! an `act` that is not a chain of JSON objects, or a client exchanging a token whose current
//! actor (`act.sub`) is already itself (no new actor) is `invalid_grant`.
//!
//! An `actor_token` is accepted only as a consistency check: an access token of this server
//! whose `sub` and `client_id` are the exchanging client itself (its own `client_credentials`
//! token); the client's authentication already proves who acts, and the `act` claim names it
//! either way.
//!
//! DPoP: with a `DPoP` proof the new token is bound to the proof's key, the exchanging
//! client's, as at every grant; without one it is a bearer token. A DPoP-bound subject
//! token's `cnf.jkt` does not carry over and no proof of its key is asked for, by design:
//! the exchanging client is not the holder of the user's key and cannot prove possession of
//! it. It proves who it is with its own credentials, it must be an audience of the subject
//! token (a resource server that takes DPoP-bound tokens checked the user's proof when the
//! token reached it), and what it gets is a token of this server's own, issued to it for
//! the downstream audience: each hop's token is bound to the party presenting it.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::dpop::Thumbprint;
use super::endpoints::OAuthError;
use super::params::{Params, split_scopes};
use super::state::{AccessGrant, Inner};
use super::store::{Client, fingerprint};
use crate::crypto::random_id;

/// The one token type the exchange takes and issues (RFC 8693 §3).
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The most actors an exchanged token's `act` chain names, the new actor included.
pub(crate) const MAX_ACT_DEPTH: usize = 4;

impl Inner {
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` for an authenticated
    /// `client`.
    pub(super) fn token_exchange(
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
                "only a confidential client may exchange tokens",
            ));
        }
        let subject_token = params
            .get("subject_token")
            .ok_or_else(|| OAuthError::invalid_request("subject_token is missing"))?;
        match params.get("subject_token_type") {
            None => {
                return Err(OAuthError::invalid_request("subject_token_type is missing"));
            }
            Some(ACCESS_TOKEN_TYPE) => {}
            Some(_) => {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type must be {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
        if params
            .get("requested_token_type")
            .is_some_and(|requested| requested != ACCESS_TOKEN_TYPE)
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        let targets = self.exchange_targets(params)?;
        let claims = self
            .verify_access_token(subject_token, now)
            .ok_or_else(|| {
                OAuthError::invalid_grant(
                    "the subject token is not a valid, unexpired, unrevoked access token of \
                     this server",
                )
            })?;
        if !self.is_audience(client, &claims) {
            return Err(OAuthError::invalid_grant(
                "the client is not an audience of the subject token",
            ));
        }
        self.check_may_act(client, &claims)?;
        check_act_chain(client, &claims)?;
        self.check_actor_token(client, params, now)?;
        let scopes = exchange_scopes(params.get("scope"), &claims, &client.scopes)?;
        let (Some(subject), Some(subject_exp), Some(subject_jti)) = (
            claims.get("sub").and_then(Value::as_str),
            claims.get("exp").and_then(Value::as_u64),
            claims.get("jti").and_then(Value::as_str),
        ) else {
            return Err(OAuthError::invalid_grant(
                "the subject token has no sub, exp or jti",
            ));
        };
        let exp = now
            .saturating_add(self.config.access_token_ttl)
            .min(subject_exp);
        let mut act = Map::new();
        act.insert("sub".to_owned(), json!(client.id));
        if let Some(previous) = claims.get("act") {
            act.insert("act".to_owned(), previous.clone());
        }
        let mut extra = Map::new();
        extra.insert("act".to_owned(), Value::Object(act));
        let grant = AccessGrant {
            subject,
            client_id: &client.id,
            scopes: &scopes,
            audiences: &targets,
            dpop: proof,
        };
        let jti = random_id();
        // Recorded before the subject token is checked again: a revocation of it either ran
        // before that check (refused here) or finds the new token and revokes it too.
        self.store
            .exchanged
            .lock()
            .record(subject_jti, jti.clone(), exp);
        if self.store.is_revoked(subject_jti) {
            return Err(OAuthError::invalid_grant(
                "the subject token was revoked while it was being exchanged",
            ));
        }
        let issued = self.sign_access_token_with(jti, &grant, exp, extra, now);
        tracing::info!(
            subject_token = %fingerprint(subject_token),
            client_id = %client.id,
            audience = %targets.join(" "),
            scope = %scopes.join(" "),
            dpop = proof.is_some(),
            "dev authorization server: exchanged a token"
        );
        Ok(json!({
            "access_token": issued.token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": if issued.dpop_bound { "DPoP" } else { "Bearer" },
            "expires_in": issued.exp.saturating_sub(now),
            "scope": scopes.join(" "),
        }))
    }

    /// The audiences of the new token: every `audience` and `resource` parameter, at least
    /// one, each in the allow-list (`invalid_target`, RFC 8693 §2.2.2).
    fn exchange_targets(&self, params: &Params) -> Result<Vec<String>, OAuthError> {
        let mut targets: Vec<String> = Vec::new();
        for target in params.all("audience").iter().chain(params.all("resource")) {
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
        if targets.is_empty() {
            return Err(OAuthError::invalid_request(
                "audience or resource is required: the token's target",
            ));
        }
        if targets
            .iter()
            .any(|target| !self.config.exchange_audiences.contains(target))
        {
            return Err(OAuthError::invalid_target(
                "a requested audience or resource is not one tokens may be exchanged for",
            ));
        }
        Ok(targets)
    }

    /// Whether `client` is an audience of a token with these claims: `aud` names its id or a
    /// resource it is the resource server of.
    fn is_audience(&self, client: &Client, claims: &Map<String, Value>) -> bool {
        let names_client = |aud: &str| {
            aud == client.id
                || self
                    .config
                    .resource_servers
                    .iter()
                    .any(|(id, resource)| *id == client.id && resource == aud)
        };
        match claims.get("aud") {
            Some(Value::String(aud)) => names_client(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(names_client),
            _ => false,
        }
    }

    /// RFC 8693 §4.4: a subject token with `may_act` may be exchanged only by the party it
    /// names (`sub`, and `iss` if given, which must be this server).
    fn check_may_act(
        &self,
        client: &Client,
        claims: &Map<String, Value>,
    ) -> Result<(), OAuthError> {
        let Some(may_act) = claims.get("may_act") else {
            return Ok(());
        };
        let allowed = may_act.as_object().is_some_and(|may_act| {
            may_act.get("sub").and_then(Value::as_str) == Some(client.id.as_str())
                && may_act
                    .get("iss")
                    .is_none_or(|iss| iss.as_str() == Some(self.issuer.as_str()))
        });
        if allowed {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant(
                "the subject token's may_act does not name the client",
            ))
        }
    }

    /// An `actor_token`, if given, must be an access token of this server for the client
    /// itself (`sub` and `client_id` its id), with `actor_token_type` access_token.
    fn check_actor_token(
        &self,
        client: &Client,
        params: &Params,
        now: u64,
    ) -> Result<(), OAuthError> {
        let actor_type = params.get("actor_token_type");
        let Some(actor_token) = params.get("actor_token") else {
            return match actor_type {
                None => Ok(()),
                Some(_) => Err(OAuthError::invalid_request(
                    "actor_token_type without actor_token",
                )),
            };
        };
        if actor_type != Some(ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "actor_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        let is_own = self
            .verify_access_token(actor_token, now)
            .is_some_and(|claims| {
                claims.get("sub").and_then(Value::as_str) == Some(client.id.as_str())
                    && claims.get("client_id").and_then(Value::as_str) == Some(client.id.as_str())
            });
        if is_own {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant(
                "the actor token is not a valid access token of the client itself",
            ))
        }
    }
}

/// The subject token's `act` chain (RFC 8693 §4.1), if any, must be one the client may
/// extend: JSON objects nested through `act`, not naming the client as the current actor
/// (exchanging a token it already acts in adds no actor), and shorter than
/// [`MAX_ACT_DEPTH`], so that the new token's chain is at most that deep.
fn check_act_chain(client: &Client, claims: &Map<String, Value>) -> Result<(), OAuthError> {
    let Some(act) = claims.get("act") else {
        return Ok(());
    };
    let mut depth = 0;
    let mut actor = Some(act);
    while let Some(value) = actor {
        let Some(object) = value.as_object() else {
            return Err(OAuthError::invalid_grant(
                "the subject token's act claim is not a chain of JSON objects",
            ));
        };
        depth += 1;
        actor = object.get("act");
    }
    if act.get("sub").and_then(Value::as_str) == Some(client.id.as_str()) {
        return Err(OAuthError::invalid_grant(
            "the client already is the subject token's actor: exchanging it again would add \
             no actor",
        ));
    }
    if depth >= MAX_ACT_DEPTH {
        return Err(OAuthError::invalid_grant(format!(
            "the subject token's act chain already names {depth} actors: another would exceed \
             the limit of {MAX_ACT_DEPTH}"
        )));
    }
    Ok(())
}

/// The scopes of the exchanged token: the requested ones if each is both the subject token's
/// and the client's (`invalid_scope` otherwise), or, without `scope`, those the two share.
/// Never none: a token with no scope is refused (`invalid_scope`) rather than issued, so that
/// the response's `scope` always says what was granted (RFC 6749 §5.1 requires it whenever it
/// differs from the request).
fn exchange_scopes(
    requested: Option<&str>,
    claims: &Map<String, Value>,
    client_scopes: &[String],
) -> Result<Vec<String>, OAuthError> {
    let subject_scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(split_scopes)
        .unwrap_or_default();
    let shared = |scope: &String| subject_scopes.contains(scope) && client_scopes.contains(scope);
    let Some(requested) = requested else {
        let scopes: Vec<String> = subject_scopes
            .iter()
            .filter(|s| shared(s))
            .cloned()
            .collect();
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope(
                "no scope the subject token and the client share",
            ));
        }
        return Ok(scopes);
    };
    let requested = split_scopes(requested);
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope(
            "scope is empty: name at least one scope, or leave it out",
        ));
    }
    if requested.iter().all(shared) {
        Ok(requested)
    } else {
        Err(OAuthError::invalid_scope(
            "a requested scope is not both the subject token's and the client's",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_are_the_subjects_and_the_clients() {
        let subject = claims(json!({ "scope": "a b c" }));
        let client = vec!["b".to_owned(), "c".to_owned(), "d".to_owned()];
        assert_eq!(
            exchange_scopes(None, &subject, &client).unwrap(),
            ["b", "c"]
        );
        assert_eq!(
            exchange_scopes(Some("c"), &subject, &client).unwrap(),
            ["c"]
        );
        for refused in ["a", "d", "b x"] {
            let error = exchange_scopes(Some(refused), &subject, &client).unwrap_err();
            assert_eq!(error.error, "invalid_scope", "{refused}");
        }
        // Nothing shared, nothing asked for: refused, not a token without scope.
        let unscoped = claims(json!({}));
        let unshared = claims(json!({ "scope": "a" }));
        for subject in [&unscoped, &unshared] {
            let error = exchange_scopes(None, subject, &client).unwrap_err();
            assert_eq!(error.error, "invalid_scope");
        }
        assert!(exchange_scopes(Some("b"), &unscoped, &client).is_err());
        for empty in ["", "  "] {
            let error = exchange_scopes(Some(empty), &subject, &client).unwrap_err();
            assert_eq!(error.error, "invalid_scope", "{empty:?}");
        }
    }
}
