//! The listener of the embedded servers (the test kit's issuer and the dev authorization
//! server): it tells when the socket is closed, so `shutdown()` can return only once new
//! connections are refused.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP listener that reports when it has been closed (dropped by the server on shutdown).
pub(crate) struct ClosingListener {
    inner: Option<TcpListener>,
    closed: watch::Sender<bool>,
}

impl ClosingListener {
    /// `closed` is set to `true` once the socket is closed.
    pub(crate) fn new(listener: TcpListener, closed: watch::Sender<bool>) -> Self {
        Self {
            inner: Some(listener),
            closed,
        }
    }
}

impl axum::serve::Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.inner.as_mut() {
            Some(listener) => axum::serve::Listener::accept(listener).await,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listener closed",
            )),
        }
    }
}

impl Drop for ClosingListener {
    fn drop(&mut self) {
        // Close the socket first, so whoever is told sees connections refused.
        drop(self.inner.take());
        self.closed.send_replace(true);
    }
}
