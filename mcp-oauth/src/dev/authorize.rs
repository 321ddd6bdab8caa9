//! The authorization endpoint: authorization code + PKCE (S256 only), for the dev user.
//!
//! A request whose redirect URI is loopback (`http` on `127.x`, `[::1]` or `localhost`: a
//! native app on this machine, RFC 8252 §7.3) is approved at once. Any other would send the
//! code off this machine, so `GET /authorize` answers a consent page instead, naming the
//! client and where the code goes; so does every request of a client identified by a metadata
//! document (`client_metadata`), whatever its redirect URI, since anyone can publish one. The
//! page's "Allow" and "Deny" buttons post a consent id back to `POST /authorize`. The id is
//! 256 random bits, bound on the server to the checked request (the form carries nothing
//! else that is trusted: not the redirect URI, not the scopes), answered once, and forgotten
//! after [`CONSENT_TTL`].
//!
//! Errors found once the redirect URI is established are sent to it (RFC 6749 §4.1.2.1)
//! only when it is trusted (RFC 9700 §4.11.2): registered with this server, or loopback. A
//! document client's other redirect URIs are whatever its publisher listed: until the user
//! consents, its errors are shown on an error page instead, so that the server is no open
//! redirector for anyone who publishes a document.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::ORIGIN;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use url::Url;

use super::AUTHORIZATION_CODE_TTL;
use super::client_metadata::DocumentRefusal;
use super::dpop::parse_jkt;
use super::endpoints::check_form_content_type;
use super::pages::{
    Consent, consent_page, error_page, redirect_host, redirect_to, refused_request_page,
    unavailable_page,
};
use super::params::{
    Params, is_s256_challenge, is_valid_redirect_uri, random_token, redirect_uri_matches,
    requested_scopes,
};
use super::state::Inner;
use super::store::{
    AuthorizationRequest, Client, CodeGrant, GrantType, PendingConsent, fingerprint,
};
use crate::crypto::sha256;
use crate::loopback::is_loopback_http;

/// How long a consent page can be answered.
const CONSENT_TTL: Duration = Duration::from_secs(600);

/// Why an authorization request is refused.
enum Refusal {
    /// While the redirect URI is not established: an error page, never a redirect
    /// (RFC 6749 §4.1.2.1). A fixed text.
    Page(&'static str),
    /// The request cannot be served now (a `503` page). A fixed text.
    Unavailable(&'static str),
    /// An error of a request whose redirect URI is not trusted before consent: shown on a
    /// page, not redirected (RFC 9700 §4.11.2). Fixed texts.
    Shown {
        error: &'static str,
        description: &'static str,
    },
    /// An error sent to the redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl Inner {
    /// `GET /authorize`: a redirect with a code (loopback redirect URI) or an error, the
    /// consent page, or an error page when the redirect URI cannot be trusted.
    pub(super) async fn authorize(&self, query: Option<&str>) -> Response {
        let (client, request) = match self.check_authorization_request(query).await {
            Ok(checked) => checked,
            Err(Refusal::Page(message)) => return error_page(message),
            Err(Refusal::Unavailable(message)) => return unavailable_page(message),
            Err(Refusal::Shown { error, description }) => {
                return refused_request_page(error, description);
            }
            Err(Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            }) => return self.redirect_error(&redirect_uri, state.as_deref(), error, &description),
        };
        let loopback = Url::parse(&request.redirect_uri).is_ok_and(|url| is_loopback_http(&url));
        if loopback && client.document.is_none() {
            self.issue_code(request)
        } else {
            self.ask_consent(&client, request)
        }
    }

    /// `POST /authorize`: the answer of a consent page, `consent_id` and `decision`
    /// (`allow` or `deny`).
    pub(super) fn answer_consent(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if !headers
            .get(ORIGIN)
            .is_none_or(|origin| self.is_own_origin(origin))
        {
            return error_page("The consent form must be sent from the consent page.");
        }
        if check_form_content_type(headers).is_err() {
            return error_page("The consent form must be sent as a form.");
        }
        let params = Params::parse(body);
        if params.first_duplicate().is_some() {
            return error_page("A parameter of the consent form is repeated.");
        }
        let allow = match params.get("decision") {
            Some("allow") => true,
            Some("deny") => false,
            _ => return error_page("The consent form has no decision."),
        };
        let Some(consent_id) = params.get("consent_id") else {
            return error_page("The consent form has no consent id.");
        };
        let pending = self
            .store
            .consents
            .lock()
            .remove(&sha256(consent_id.as_bytes()));
        let Some(pending) = pending.filter(|pending| pending.expires_at > self.now()) else {
            tracing::debug!(
                consent = %fingerprint(consent_id),
                "dev authorization server: refused an unknown, answered or expired consent"
            );
            return error_page(
                "This consent request is unknown, expired or already answered: start the \
                 sign-in again.",
            );
        };
        let request = pending.request;
        if allow {
            self.issue_code(request)
        } else {
            tracing::debug!(
                client_id = %request.client_id,
                "dev authorization server: the user denied an authorization request"
            );
            self.redirect_error(
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the user denied the authorization request",
            )
        }
    }

    /// The client and the checked request, or why it is refused.
    async fn check_authorization_request(
        &self,
        query: Option<&str>,
    ) -> Result<(Arc<Client>, AuthorizationRequest), Refusal> {
        let params = Params::parse(query.unwrap_or("").as_bytes());
        if params.is_duplicated("client_id") || params.is_duplicated("redirect_uri") {
            return Err(Refusal::Page("client_id or redirect_uri is repeated."));
        }
        let Some(client_id) = params.get("client_id") else {
            return Err(Refusal::Page("Unknown or missing client_id."));
        };
        let client = match self.find_client(client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => return Err(Refusal::Page("Unknown or missing client_id.")),
            Err(refusal @ DocumentRefusal::Busy) => {
                return Err(Refusal::Unavailable(refusal.description()));
            }
            Err(refusal) => return Err(Refusal::Page(refusal.description())),
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
                    return Err(Refusal::Page(
                        "redirect_uri is not registered for this client.",
                    ));
                }
                uri.to_owned()
            }
            None => match client.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => return Err(Refusal::Page("redirect_uri is missing.")),
            },
        };
        // RFC 9700 §4.11.2: an error is redirected automatically only to a trusted URI, one
        // registered here (by the developer, or through registration's checks) or loopback;
        // a document client's is its publisher's choice, so its errors are shown here.
        let trusted = client.document.is_none()
            || Url::parse(&redirect_uri).is_ok_and(|url| is_loopback_http(&url));
        let state = params.get("state");
        // `shown` is the fixed text a page shows instead of `description`.
        let refuse = |code: &'static str, description: String, shown: &'static str| {
            if trusted {
                Refusal::Redirect {
                    redirect_uri: redirect_uri.clone(),
                    state: state.map(str::to_owned),
                    error: code,
                    description,
                }
            } else {
                Refusal::Shown {
                    error: code,
                    description: shown,
                }
            }
        };
        let error = |code: &'static str, description: &'static str| {
            refuse(code, description.to_owned(), description)
        };
        if let Some(name) = params.first_duplicate() {
            return Err(refuse(
                "invalid_request",
                format!("parameter {name} is repeated"),
                "a parameter is repeated",
            ));
        }
        match params.get("response_type") {
            None => return Err(error("invalid_request", "response_type is missing")),
            Some("code") => {}
            Some(_) => {
                return Err(error(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(error(
                "unauthorized_client",
                "the client may not use the authorization_code grant",
            ));
        }
        let Some(challenge) = params.get("code_challenge") else {
            return Err(error(
                "invalid_request",
                "code_challenge is missing: PKCE with S256 is required",
            ));
        };
        if params.get("code_challenge_method") != Some("S256") {
            return Err(error(
                "invalid_request",
                "transform algorithm not supported: code_challenge_method must be S256",
            ));
        }
        if !is_s256_challenge(challenge) {
            return Err(error(
                "invalid_request",
                "code_challenge is not a base64url SHA-256 digest",
            ));
        }
        let Ok(scopes) = requested_scopes(params.get("scope"), &client.scopes) else {
            return Err(error(
                "invalid_scope",
                "a requested scope is not the client's",
            ));
        };
        let resource = match self.requested_resource(&params) {
            Ok(resource) => resource.unwrap_or_else(|| self.default_resource()),
            Err(e) => {
                return Err(refuse(
                    e.error,
                    e.description,
                    "the resource is not served by this authorization server, or more than \
                     one is given",
                ));
            }
        };
        let dpop_jkt = match params.get("dpop_jkt") {
            None => None,
            Some(text) => match parse_jkt(text) {
                Some(thumbprint) => Some(thumbprint),
                None => {
                    return Err(error(
                        "invalid_request",
                        "dpop_jkt is not a base64url SHA-256 JWK thumbprint",
                    ));
                }
            },
        };
        let request = AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri,
            given_redirect_uri: given_redirect.map(str::to_owned),
            code_challenge: challenge.to_owned(),
            scopes,
            resource,
            state: state.map(str::to_owned),
            dpop_jkt,
        };
        Ok((client, request))
    }

    /// Remembers the request under a new consent id and shows the consent page.
    fn ask_consent(&self, client: &Client, request: AuthorizationRequest) -> Response {
        let consent_id = random_token("");
        let host = redirect_host(&request.redirect_uri);
        let page = consent_page(&Consent {
            client_name: client.name.as_deref(),
            client_id: &client.id,
            document: client.document.as_ref(),
            redirect_host: &host,
            scopes: &request.scopes,
            resource: &request.resource,
            user: &self.config.dev_user,
            consent_id: &consent_id,
        });
        tracing::debug!(
            client_id = %client.id,
            consent = %fingerprint(&consent_id),
            document = client.document.is_some(),
            "dev authorization server: asked for consent (a redirect URI off loopback, or a client by metadata document)"
        );
        let expires_at = self.now().saturating_add(CONSENT_TTL.as_secs());
        self.store.consents.lock().insert(
            sha256(consent_id.as_bytes()),
            PendingConsent {
                request,
                expires_at,
            },
        );
        page
    }

    /// Approves the request for the dev user: a new code, sent to the redirect URI.
    fn issue_code(&self, request: AuthorizationRequest) -> Response {
        let code = random_token("dev_ac_");
        let now = self.now();
        let mut pairs = vec![("code", code.as_str())];
        pairs.extend(request.state.as_deref().map(|state| ("state", state)));
        pairs.push(("iss", &self.issuer));
        let response = redirect_to(&request.redirect_uri, &pairs);
        tracing::debug!(
            client_id = %request.client_id,
            code = %fingerprint(&code),
            "dev authorization server: approved an authorization request"
        );
        self.store.codes.lock().insert(
            sha256(code.as_bytes()),
            CodeGrant {
                client_id: request.client_id,
                redirect_uri: request.given_redirect_uri,
                code_challenge: request.code_challenge,
                scopes: request.scopes,
                resource: request.resource,
                subject: self.config.dev_user.clone(),
                expires_at: now.saturating_add(AUTHORIZATION_CODE_TTL.as_secs()),
                dpop_jkt: request.dpop_jkt,
                redeemed: None,
            },
        );
        response
    }

    /// An RFC 6749 §4.1.2.1 error sent to the redirect URI.
    fn redirect_error(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        code: &str,
        description: &str,
    ) -> Response {
        let mut pairs = vec![("error", code), ("error_description", description)];
        pairs.extend(state.map(|state| ("state", state)));
        pairs.push(("iss", &self.issuer));
        redirect_to(redirect_uri, &pairs)
    }

    /// Whether `origin` is this server's own web origin (the consent page's), under any
    /// loopback name.
    fn is_own_origin(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .ok()
            .and_then(|origin| Url::parse(origin).ok())
            .is_some_and(|url| {
                is_loopback_http(&url)
                    && url.port_or_known_default() == Some(self.addr.port())
                    && url.path() == "/"
            })
    }
}
