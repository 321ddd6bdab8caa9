//! The guarding service: the route, the browser checks, then [`authorize`], a short list
//! of steps each in its own module (credentials, limits, verification, streams and sessions,
//! operations and their requirement), and the endpoint. See `docs/ARCHITECTURE.md`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;

use super::Shared;
use super::body::{BoxError, ResponseBody};
use super::credentials::{form_body, presented_token, refuse_encoded_body};
use super::decision::{Decision, PendingAllowed, Refusal, echo_request_id};
use super::handler_step_up::{self, Answer, StepUpContext};
use super::handles::{SealedEventIds, TaskIds, is_event_stream};
use super::limits::FailedAuth;
use super::operations::{read_operations, require, step_up_rule};
use super::origin::OriginCheck;
use super::responses::{DPOP_NONCE, plain, preflight, serve_metadata, unknown_address, with_cors};
use super::session::Principal;
use super::streams::{
    LAST_EVENT_ID_HEADER, SESSION_HEADER, SessionState, resume_for, session_of, track_session,
};
use super::verify::verify_token;
use crate::access::Requirement;
use crate::audit::reason;
use crate::challenge::Scheme;
use crate::exchange::{AuditTrail, Downstream, IncomingToken};

/// The service [`OAuthLayer`](super::OAuthLayer) wraps around an MCP endpoint.
#[derive(Clone)]
pub struct OAuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for OAuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthService")
            .field("route", &self.shared.route)
            .finish_non_exhaustive()
    }
}

impl<S> OAuthService<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

/// The future of an [`OAuthService`] call: the layer's decision, then the endpoint's answer.
pub struct ResponseFuture<E> {
    inner: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, E>> + Send>>,
}

impl<E> std::fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response<ResponseBody>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for OAuthService<S>
where
    S: tower_service::Service<Request<ResponseBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: HttpBody<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        ResponseFuture {
            inner: Box::pin(handle(shared, inner, request)),
        }
    }
}

async fn handle<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    mut request: Request<ReqBody>,
) -> Result<Response<ResponseBody>, S::Error>
where
    S: tower_service::Service<Request<ResponseBody>, Response = Response<ResBody>>,
    ReqBody: HttpBody<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let path = request.uri().path();
    if shared.metadata_paths.iter().any(|served| served == path) {
        return Ok(serve_metadata(&shared, request.method()));
    }
    if !is_guarded(path, &shared.route) {
        let response = inner.call(request.map(ResponseBody::new)).await?;
        return Ok(response.map(ResponseBody::new));
    }

    if !shared.hosts.allows(request.uri(), request.headers()) {
        let decision = Decision::new(&shared, &mut request);
        let response = plain(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This Host is not allowed",
            None,
        );
        return Ok(decision.refuse(&shared, reason::HOST_REFUSED, response));
    }
    let origin = match shared.origins.check(request.headers()) {
        OriginCheck::Refused => {
            let decision = Decision::new(&shared, &mut request);
            let response = plain(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This Origin is not allowed",
                None,
            );
            return Ok(decision.refuse(&shared, reason::ORIGIN_REFUSED, response));
        }
        OriginCheck::Allowed(origin) => HeaderValue::from_str(origin).ok(),
        OriginCheck::NoOrigin => None,
    };
    if request.method() == Method::OPTIONS {
        return Ok(with_cors(preflight(request.headers()), origin.as_ref()));
    }
    let mut decision = Decision::new(&shared, &mut request);
    let response = match authorize(&shared, &mut decision, request).await {
        Ok(Authorized {
            request,
            session,
            principal,
            step_up,
            scheme,
        }) => {
            let method = request.method().clone();
            let request_id = decision.request_id_header.clone();
            let mut pending = PendingAllowed {
                shared: &shared,
                decision: Some(decision),
            };
            let response = inner.call(request).await?;
            let created = response.headers().get(SESSION_HEADER).cloned();
            track_session(&shared, &method, session, response.status(), created).await;
            let response = response.map(ResponseBody::new);
            let response = match step_up {
                Some(context) => {
                    match handler_step_up::inspect(&shared, &context, response).await {
                        Answer::Passed(response) => response,
                        Answer::SteppedUp(response, needed) => {
                            let response =
                                pending.refuse(reason::HANDLER_STEP_UP, needed, response);
                            return Ok(with_cors(response, origin.as_ref()));
                        }
                    }
                }
                None => response,
            };
            pending.finish(response.status());
            let mut response = match principal {
                // Event ids leave sealed for the principal (see `handles`).
                Some(principal) if is_event_stream(response.headers()) => {
                    let key = shared.handle_key.clone();
                    response
                        .map(|body| ResponseBody::new(SealedEventIds::new(body, key, principal)))
                }
                _ => response,
            };
            echo_request_id(request_id.as_ref(), &mut response);
            // RFC 9449 §8.2: the next nonce rides on successful responses too.
            if scheme == Scheme::Dpop
                && let Some(nonce) = shared.dpop.as_ref().and_then(|dpop| dpop.current_nonce())
                && let Ok(value) = HeaderValue::from_str(&nonce)
            {
                response.headers_mut().insert(DPOP_NONCE, value);
            }
            response
        }
        Err(Refusal { reason, response }) => decision.refuse(&shared, reason, *response),
    };
    Ok(with_cors(response, origin.as_ref()))
}

/// The `DPoP` header, a name parsed once.
const DPOP_HEADER: http::HeaderName = http::HeaderName::from_static(crate::dpop::HEADER);

/// Whether `path` is the guarded route or below it. Routers mount services under a prefix
/// (`nest_service("/mcp", …)` also serves `/mcp/` and `/mcp/x`, and rmcp ignores the path),
/// so everything below the route is guarded too: failing closed, never open.
fn is_guarded(path: &str, route: &str) -> bool {
    let route = route.trim_end_matches('/');
    route.is_empty()
        || path == route
        || path
            .strip_prefix(route)
            .is_some_and(|rest| rest.starts_with('/'))
}

struct Authorized {
    request: Request<ResponseBody>,
    session: SessionState,
    /// Whose state handles the response carries (`None`: a token naming no one).
    principal: Option<Principal>,
    /// For a `POST`, what a handler's step-up challenge is composed from.
    step_up: Option<StepUpContext>,
    /// The scheme the token came with.
    scheme: Scheme,
}

/// Every check, in order; `Err` is the refusal to send instead of calling the endpoint.
async fn authorize<B>(
    shared: &Shared,
    decision: &mut Decision,
    request: Request<B>,
) -> Result<Authorized, Refusal>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let failed_auth = FailedAuth::of(shared, decision).ok_or_else(unknown_address)?;
    // Boxed: every level of `async fn` nesting laid this future (≈ 2.5 KiB) out again in the
    // one above, and `handle`'s future, allocated per request, came to ≈ 32 KiB; ≈ 3.4 KiB
    // with this box and the two in `validation` (the uncached JWT path, introspection).
    let authorized = Box::pin(authorize_with(shared, decision, request, &failed_auth)).await;
    // A reservation still open is a failure the client caused: settled once, here.
    failed_auth.finish().await;
    if shared.rate_limits.store.is_degraded() {
        decision.rate_limit_fallback = true;
    }
    authorized
}

async fn authorize_with<B>(
    shared: &Shared,
    decision: &mut Decision,
    request: Request<B>,
    failed_auth: &FailedAuth<'_>,
) -> Result<Authorized, Refusal>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let mut body = Some(body);
    refuse_encoded_body(&parts)?;
    // The budget unit is taken before a form body is read.
    let presented = presented_token(shared, &parts.headers, failed_auth).await?;
    let form = form_body(shared, &parts, &mut body).await?;
    let identity = verify_token(shared, decision, presented, &parts, failed_auth).await?;
    let scheme = presented.scheme;
    // Sealed, and kept only for an exchanger (see `crate::exchange::IncomingToken`).
    let incoming = shared
        .exchanger
        .as_ref()
        .map(|_| IncomingToken::new(presented.token, &identity));
    let principal = Principal::of(&identity);
    if parts.headers.contains_key(LAST_EVENT_ID_HEADER) {
        resume_for(shared, principal, &mut parts.headers, failed_auth).await?;
    }
    let session = session_of(shared, principal, &parts.headers, failed_auth).await?;
    let (body, requirement) =
        read_operations(shared, decision, &mut parts, form, body, principal).await?;
    require(shared, decision, &parts.headers, &identity, &requirement)?;
    let step_up = match requirement {
        Requirement::Scopes(needed) if parts.method == Method::POST => Some(StepUpContext {
            rule: step_up_rule(&parts.headers),
            identity: identity.clone(),
            needed,
            scheme,
        }),
        _ => None,
    };

    // Tools must never see (or log) the raw token: it leaves with the header (and so does
    // the proof, which is bound to it).
    if let (Some(exchanger), Some(incoming)) = (&shared.exchanger, incoming) {
        let trail = AuditTrail {
            sink: shared.audit.clone(),
            request_id: decision.request_id.as_str().to_owned(),
            remote_addr: decision.remote,
            http_method: parts.method.as_str().to_owned(),
            clock: shared.clock.clone(),
        };
        let hierarchy = shared.access.hierarchy().clone();
        let downstream = Downstream::new(
            exchanger.clone(),
            incoming,
            identity.clone(),
            hierarchy,
            trail,
        );
        parts.extensions.insert(downstream);
    }
    parts.headers.remove(AUTHORIZATION);
    parts.headers.remove(DPOP_HEADER);
    parts.extensions.insert(identity);
    // The rules the endpoint's list filtering applies: the very ones decided with here.
    parts.extensions.insert(shared.access.clone());
    if let Some(principal) = principal {
        let task_ids = TaskIds::new(shared.handle_key.clone(), principal);
        parts.extensions.insert(task_ids);
    }
    Ok(Authorized {
        request: Request::from_parts(parts, body),
        session,
        principal,
        step_up,
        scheme,
    })
}
