//! The peer address for the layer's per-address rate limits, in every feature set: with the
//! `axum` feature the layer reads axum's `ConnectInfo` itself; without it, the test servers
//! hand it over as `PeerAddr`, as a non-axum stack would. Serve the result with
//! `into_make_service_with_connect_info::<SocketAddr>()`.

#[cfg(not(feature = "axum"))]
use std::net::SocketAddr;

/// With the `axum` feature the layer reads `ConnectInfo` itself; without it, the peer is
/// handed over as `PeerAddr`, as a non-axum stack would.
#[cfg(feature = "axum")]
pub fn with_peer<S>(service: S) -> S {
    service
}

#[cfg(not(feature = "axum"))]
pub fn with_peer<S>(service: S) -> WithPeer<S> {
    WithPeer(service)
}

#[cfg(not(feature = "axum"))]
#[derive(Clone)]
pub struct WithPeer<S>(S);

#[cfg(not(feature = "axum"))]
impl<S, B> tower_service::Service<http::Request<B>> for WithPeer<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(axum::extract::ConnectInfo(addr)) = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .copied()
        {
            request
                .extensions_mut()
                .insert(mcp_oauth::http::PeerAddr(addr));
        }
        self.0.call(request)
    }
}
