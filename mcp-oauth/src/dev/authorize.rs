//! The authorization endpoint: authorization code + PKCE (S256 only), approved for the dev
//! user.

use axum::response::Response;

use super::AUTHORIZATION_CODE_TTL;
use super::pages::{error_page, redirect_to};
use super::params::{
    Params, is_s256_challenge, is_valid_redirect_uri, random_token, redirect_uri_matches,
    requested_scopes,
};
use super::state::Inner;
use super::store::{CodeGrant, GrantType, fingerprint, sha256};

impl Inner {
    pub(super) fn authorize(&self, query: Option<&str>) -> Response {
        let params = Params::parse(query.unwrap_or("").as_bytes());
        if params.is_duplicated("client_id") || params.is_duplicated("redirect_uri") {
            return error_page("client_id or redirect_uri is repeated.");
        }
        let Some(client) = params.get("client_id").and_then(|id| self.store.client(id)) else {
            return error_page("Unknown or missing client_id.");
        };
        let given_redirect = params.get("redirect_uri");
        let redirect_uri = match given_redirect {
            Some(uri) => {
                let registered = is_valid_redirect_uri(uri)
                    && client
                        .redirect_uris
                        .iter()
                        .any(|r| redirect_uri_matches(r, uri));
                if !registered {
                    return error_page("redirect_uri is not registered for this client.");
                }
                uri.to_owned()
            }
            None => match client.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => return error_page("redirect_uri is missing."),
            },
        };
        let state = params.get("state");
        let error = |code: &str, description: &str| {
            let mut pairs = vec![("error", code), ("error_description", description)];
            pairs.extend(state.map(|state| ("state", state)));
            pairs.push(("iss", &self.issuer));
            redirect_to(&redirect_uri, &pairs)
        };
        if let Some(name) = params.first_duplicate() {
            return error("invalid_request", &format!("parameter {name} is repeated"));
        }
        match params.get("response_type") {
            None => return error("invalid_request", "response_type is missing"),
            Some("code") => {}
            Some(_) => {
                return error(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                );
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return error(
                "unauthorized_client",
                "the client may not use the authorization_code grant",
            );
        }
        let Some(challenge) = params.get("code_challenge") else {
            return error(
                "invalid_request",
                "code_challenge is missing: PKCE with S256 is required",
            );
        };
        if params.get("code_challenge_method") != Some("S256") {
            return error(
                "invalid_request",
                "transform algorithm not supported: code_challenge_method must be S256",
            );
        }
        if !is_s256_challenge(challenge) {
            return error(
                "invalid_request",
                "code_challenge is not a base64url SHA-256 digest",
            );
        }
        let Ok(scopes) = requested_scopes(params.get("scope"), &client.scopes) else {
            return error("invalid_scope", "a requested scope is not the client's");
        };
        let resource = match self.requested_resource(&params) {
            Ok(resource) => resource.unwrap_or_else(|| self.default_resource()),
            Err(e) => return error(e.error, &e.description),
        };
        let code = random_token("dev_ac_");
        let now = self.now();
        self.store.codes.lock().insert(
            sha256(code.as_bytes()),
            CodeGrant {
                client_id: client.id.clone(),
                redirect_uri: given_redirect.map(str::to_owned),
                code_challenge: challenge.to_owned(),
                scopes,
                resource,
                subject: self.config.dev_user.clone(),
                expires_at: now.saturating_add(AUTHORIZATION_CODE_TTL.as_secs()),
                redeemed: None,
            },
        );
        tracing::debug!(
            client_id = %client.id,
            code = %fingerprint(&code),
            "dev authorization server: approved an authorization request"
        );
        let mut pairs = vec![("code", code.as_str())];
        pairs.extend(state.map(|state| ("state", state)));
        pairs.push(("iss", &self.issuer));
        redirect_to(&redirect_uri, &pairs)
    }
}
