//! What is known about a request on the guarded route, and how its outcome is recorded:
//! one audit event per decision, a refusal carried with its reason.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::Shared;
use super::body::ResponseBody;
use super::request_id::{self, RequestId};
use crate::audit::{AuditEvent, Outcome, reason};
use crate::challenge::Scheme;
use crate::scopes::ScopeSet;
use crate::validation::{TokenFingerprint, VerifiedToken};

/// The status recorded for an allowed request whose endpoint never answered (the client went
/// away, or the endpoint failed), as common access logs do.
pub(super) const NO_RESPONSE_STATUS: u16 = 499;

/// What is known about a request on the guarded route, for its audit event.
pub(super) struct Decision {
    /// When the request reached the layer (clock time since the epoch).
    pub(super) arrived: Duration,
    pub(super) request_id: RequestId,
    /// The request id as a header value, set on the request and echoed in the response.
    pub(super) request_id_header: Option<HeaderValue>,
    pub(super) remote: Option<IpAddr>,
    pub(super) http_method: Method,
    pub(super) fingerprint: Option<TokenFingerprint>,
    /// The scheme the token came with (`Bearer` until a `DPoP` credential is read).
    pub(super) scheme: Scheme,
    /// Whether a token was presented (the scheme is then recorded).
    pub(super) presented: bool,
    /// The DPoP proof key's thumbprint, once the proof verified.
    pub(super) dpop_jkt: Option<[u8; 32]>,
    pub(super) identity: Option<VerifiedToken>,
    pub(super) tools: Vec<String>,
    pub(super) rpc_methods: Vec<String>,
    pub(super) required: Option<ScopeSet>,
    /// The rate limits were decided on the local fallback share.
    pub(super) rate_limit_fallback: bool,
    /// Whether the sink records events of either outcome: when not, what only the event
    /// would carry (the tools' and methods' names) is not copied.
    pub(super) audited: bool,
}

impl Decision {
    /// Reads (or assigns) the request id, puts it in the request for the endpoint, and
    /// resolves the client address.
    pub(super) fn new<B>(shared: &Shared, request: &mut Request<B>) -> Self {
        let request_id = request_id::of(request.headers());
        let request_id_header = HeaderValue::from_str(request_id.as_str()).ok();
        if let Some(value) = &request_id_header {
            request
                .headers_mut()
                .insert(request_id::HEADER, value.clone());
        }
        request.extensions_mut().insert(request_id.clone());
        let remote = shared
            .client_address
            .resolve(request.headers(), request.extensions());
        Self {
            arrived: shared.clock.now(),
            request_id,
            request_id_header,
            remote,
            http_method: request.method().clone(),
            fingerprint: None,
            scheme: Scheme::Bearer,
            presented: false,
            dpop_jkt: None,
            identity: None,
            tools: Vec::new(),
            rpc_methods: Vec::new(),
            required: None,
            rate_limit_fallback: false,
            audited: shared.audit.enabled(Outcome::Allowed)
                || shared.audit.enabled(Outcome::Refused),
        }
    }

    /// The audit event of this decision, built only when the sink records it. It borrows
    /// the decision's strings (the identity's names, the request id, the tools and methods):
    /// building it allocates nothing but a DPoP thumbprint.
    pub(super) fn event(
        &self,
        outcome: Outcome,
        reason: &'static str,
        status: u16,
        retry_after: Option<Duration>,
    ) -> AuditEvent<'_> {
        let mut event = AuditEvent::new(outcome, reason, status, self.request_id.as_str());
        event.time = UNIX_EPOCH + self.arrived;
        event.http_method = Cow::Borrowed(self.http_method.as_str());
        if let Some(identity) = &self.identity {
            event.issuer = Some(Cow::Borrowed(identity.issuer()));
            event.subject = identity.subject().map(Cow::Borrowed);
            event.client_id = identity.client_id().map(Cow::Borrowed);
            event.granted_scopes = Some(identity.scopes().clone());
        }
        event.tools = Cow::Borrowed(&self.tools);
        event.rpc_methods = Cow::Borrowed(&self.rpc_methods);
        event.required_scopes = self.required.clone();
        event.fingerprint = self.fingerprint;
        event.scheme = self.presented.then_some(self.scheme.as_str());
        event.dpop_jkt = self.dpop_jkt.as_ref().map(crate::dpop::thumbprint::encode);
        event.remote_addr = self.remote;
        event.retry_after = retry_after;
        event.rate_limit_fallback = self.rate_limit_fallback;
        event
    }

    /// Records the refusal and returns its response, carrying the request id.
    pub(super) fn refuse(
        mut self,
        shared: &Shared,
        reason: &'static str,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        let request_id = self.request_id_header.take();
        shared.record(Outcome::Refused, reason, || {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            self.event(
                Outcome::Refused,
                reason,
                response.status().as_u16(),
                retry_after,
            )
        });
        echo_request_id(request_id.as_ref(), &mut response);
        response
    }
}

/// Puts the request id in the response, unless the endpoint set one.
pub(super) fn echo_request_id<B>(request_id: Option<&HeaderValue>, response: &mut Response<B>) {
    if let Some(value) = request_id
        && !response.headers().contains_key(request_id::HEADER)
    {
        response
            .headers_mut()
            .insert(request_id::HEADER, value.clone());
    }
}

/// The allowed event, recorded once the endpoint answered: with its status, or (dropped
/// unanswered) with [`NO_RESPONSE_STATUS`].
pub(super) struct PendingAllowed<'a> {
    pub(super) shared: &'a Shared,
    pub(super) decision: Option<Decision>,
}

impl PendingAllowed<'_> {
    /// Records a refusal after all: a handler asked for scopes the token lacks (`needed`
    /// being every scope the operation needs).
    pub(super) fn refuse(
        &mut self,
        reason: &'static str,
        needed: ScopeSet,
        response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        match self.decision.take() {
            Some(mut decision) => {
                decision.required = Some(needed);
                decision.refuse(self.shared, reason, response)
            }
            None => response,
        }
    }

    pub(super) fn finish(mut self, status: StatusCode) {
        if let Some(decision) = self.decision.take() {
            self.shared.record(Outcome::Allowed, reason::ALLOWED, || {
                decision.event(Outcome::Allowed, reason::ALLOWED, status.as_u16(), None)
            });
        }
    }
}

impl Drop for PendingAllowed<'_> {
    fn drop(&mut self) {
        if let Some(decision) = self.decision.take() {
            self.shared.record(Outcome::Allowed, reason::ALLOWED, || {
                decision.event(Outcome::Allowed, reason::ALLOWED, NO_RESPONSE_STATUS, None)
            });
        }
    }
}

/// A refusal: the reason code for the audit event and the response to send.
pub(super) struct Refusal {
    pub(super) reason: &'static str,
    /// Boxed: every step returns `Result<_, Refusal>`, and the refusal is the cold path.
    pub(super) response: Box<Response<ResponseBody>>,
}

impl Refusal {
    pub(super) fn new(reason: &'static str, response: Response<ResponseBody>) -> Self {
        Self {
            reason,
            response: Box::new(response),
        }
    }
}
