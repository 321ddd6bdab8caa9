//! A loopback https server for tests, with a test root CA whose keys are public.
//!
//! **For tests only.** The server's private key is committed to this repository (and shipped
//! in the crate), so anyone can impersonate the server: never trust [`TEST_ROOT_CA_PEM`]
//! outside a test. The root CA's own key was thrown away once the leaf was signed, and the
//! CA is name-constrained to `localhost`, `127.0.0.0/8` and `::1`, so it vouches for nothing
//! else even in a client that trusts it.
//!
//! The fixtures in `src/testing/tls/` were generated once (OpenSSL 3.0) with:
//!
//! ```sh
//! openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//!   -keyout ca.key -out test-root-ca.pem -days 36500 -set_serial 1 \
//!   -subj "/O=mcp-oauth tests/CN=mcp-oauth test root CA (public, tests only)" \
//!   -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
//!   -addext "keyUsage=critical,keyCertSign,cRLSign" \
//!   -addext "nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
//! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//!   -keyout localhost-key.pem -out localhost.csr -subj "/O=mcp-oauth tests/CN=localhost"
//! openssl x509 -req -in localhost.csr -CA test-root-ca.pem -CAkey ca.key -set_serial 2 \
//!   -days 36500 -out localhost-cert.pem -extfile <(printf '%s\n' \
//!     'basicConstraints=critical,CA:FALSE' \
//!     'keyUsage=critical,digitalSignature' \
//!     'extendedKeyUsage=serverAuth' \
//!     'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1')
//! rm ca.key localhost.csr
//! ```
//!
//! (100 years from generation; the certificates are ECDSA P-256, which both crypto backends'
//! rustls providers accept.)

use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// The test root CA (PEM) that signed the certificate of every [`HttpsServer`]: trust it
/// in the client under test, e.g. with [`trust_only`].
///
/// **For tests only; its keys are public** (see the [module documentation](crate::testing::https)). It is
/// name-constrained to `localhost`, `127.0.0.0/8` and `::1`.
pub const TEST_ROOT_CA_PEM: &str = include_str!("tls/test-root-ca.pem");

/// The server's certificate: `localhost`, `127.0.0.1`, `::1`, signed by the test root CA.
const LEAF_CERT_PEM: &str = include_str!("tls/localhost-cert.pem");
/// The server's private key. Public: it is in this file.
const LEAF_KEY_PEM: &str = include_str!("tls/localhost-key.pem");

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`HttpsServer::shutdown`] waits for open connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How many ports to try to find one free on both 127.0.0.1 and ::1.
const BIND_ATTEMPTS: usize = 16;

/// A loopback https server for an [`axum::Router`], **for tests only**: its certificate
/// (for `localhost`, `127.0.0.1` and `::1`) is signed by [`TEST_ROOT_CA_PEM`], whose keys are
/// public.
///
/// It listens on an ephemeral port of 127.0.0.1, and of `::1` as well where the machine has
/// IPv6 loopback (so `localhost` works whichever address a client resolves it to). The router
/// is served over HTTP/1.1 with connect info, so handlers may extract
/// `axum::extract::ConnectInfo<SocketAddr>`.
///
/// The server runs on the tokio runtime that started it until [`shutdown`](Self::shutdown),
/// until it is dropped (which stops it gracefully in the background), or until the runtime
/// ends.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use mcp_oauth::testing::HttpsServer;
///
/// # async fn demo() -> std::io::Result<()> {
/// let server = HttpsServer::start(Router::new().route("/", get(|| async { "hello" }))).await?;
/// let client = mcp_oauth::testing::https_client();
/// let body = client.get(server.url()).send().await.unwrap().text().await.unwrap();
/// assert_eq!(body, "hello");
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpsServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
    stopped: watch::Receiver<bool>,
}

impl HttpsServer {
    /// Starts serving `router` over https on an ephemeral loopback port.
    ///
    /// Fails if no loopback port can be bound, or (never in a build with a crypto backend)
    /// if TLS cannot be set up.
    pub async fn start(router: axum::Router) -> io::Result<HttpsServer> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config()?));
        let (v4, v6) = bind_loopback().await?;
        let addr = v4.local_addr()?;

        let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let (handshaken_tx, handshaken) = mpsc::channel(16);
        let listener = TlsListener {
            sockets: Some((v4, v6)),
            acceptor,
            handshaken_tx,
            handshaken,
            addr,
            closed: closed_tx,
        };
        // Stops on `shutdown()` and once the handle is dropped (the sender goes with it).
        let signal = async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        // axum tells a listener's peer address to `ConnectInfo` through `TapIo` (or for its
        // own `TcpListener`); the tap itself does nothing.
        let listener = listener.tap_io(|_| {});
        tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(signal)
                .await;
            stopped_tx.send_replace(true);
        });
        Ok(HttpsServer {
            addr,
            shutdown: shutdown_tx,
            closed: closed_rx,
            stopped: stopped_rx,
        })
    }

    /// `https://localhost:PORT`, no trailing slash. The same server also answers at
    /// `https://127.0.0.1:PORT` (its certificate names both).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The address it listens on: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening: once this returns, new connections are refused. Open connections
    /// are closed gracefully (idle ones at once, in-flight requests after answering); this
    /// waits up to a second for them. Dropping the server stops it the same way, without
    /// waiting.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|closed| *closed).await;
        let mut stopped = self.stopped.clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, stopped.wait_for(|stopped| *stopped)).await;
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// An HTTP client for tests that trusts only [`TEST_ROOT_CA_PEM`] (so it reaches an
/// [`HttpsServer`], and no real https site): no proxy, no redirects followed, TLS through this
/// build's crypto backend. **For tests only.**
pub fn https_client() -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    trust_only(builder, TEST_ROOT_CA_PEM)
        .and_then(|builder| builder.build().map_err(io::Error::other))
        .expect("an https client trusting the test root CA")
}

/// Sets `builder`'s TLS so that it trusts only the root certificates in `root_ca_pem` (one
/// or more PEM `CERTIFICATE` blocks), through this build's crypto backend (aws-lc-rs, or
/// ring in the pure-Rust build), chosen explicitly: no process-wide rustls provider is needed
/// or installed. Replaces any TLS setting made on `builder` before.
///
/// Meant for tests, with [`TEST_ROOT_CA_PEM`]: a client set up so trusts no public CA.
///
/// Fails if `root_ca_pem` holds no certificate, or one that cannot be used as a root.
pub fn trust_only(
    builder: reqwest::ClientBuilder,
    root_ca_pem: &str,
) -> io::Result<reqwest::ClientBuilder> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(invalid_data)?)
            .map_err(invalid_data)?;
    }
    if roots.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no certificate in the root CA PEM",
        ));
    }
    trust_roots(builder, Arc::new(roots))
}

/// Sets `builder`'s TLS as [`trust_only`] does, for the root certificates `roots`: rustls'
/// own verifier (webpki, which fetches nothing: no AIA, CRL or OCSP), through this build's
/// crypto provider. The dev server's client metadata fetcher uses it with the system's roots.
pub(crate) fn trust_roots(
    builder: reqwest::ClientBuilder,
    roots: Arc<rustls::RootCertStore>,
) -> io::Result<reqwest::ClientBuilder> {
    let config = rustls::ClientConfig::builder_with_provider(provider()?)
        .with_safe_default_protocol_versions()
        .map_err(invalid_data)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(builder.tls_backend_preconfigured(config))
}

/// The rustls provider of this build's crypto backend; aws-lc-rs wins when both are on.
fn provider() -> io::Result<Arc<rustls::crypto::CryptoProvider>> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    // Such a build does not compile (see compile_checks.rs); this keeps the error message
    // there the only one.
    #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
    return Err(io::Error::other(
        "mcp-oauth was built without a crypto backend",
    ));
}

fn server_config() -> io::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(LEAF_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid_data)?;
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY_PEM.as_bytes()).map_err(invalid_data)?;
    rustls::ServerConfig::builder_with_provider(provider()?)
        .with_safe_default_protocol_versions()
        .map_err(invalid_data)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(invalid_data)
}

fn invalid_data(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// Binds an ephemeral port on 127.0.0.1 and, where the machine has IPv6 loopback, the same
/// port on ::1 (retrying with another port when that one is taken there, so that `localhost`
/// never reaches somebody else's server).
async fn bind_loopback() -> io::Result<(TcpListener, Option<TcpListener>)> {
    for _ in 0..BIND_ATTEMPTS {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = v4.local_addr()?.port();
        match TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await {
            Ok(v6) => return Ok((v4, Some(v6))),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
            // No IPv6 loopback here: `localhost` is 127.0.0.1 only.
            Err(_) => return Ok((v4, None)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no port free on both 127.0.0.1 and ::1",
    ))
}

/// axum's listener: accepts TCP connections and hands each to a task of its own for the TLS
/// handshake (so a slow or silent client delays nobody), yielding the finished ones.
struct TlsListener {
    /// The 127.0.0.1 socket and the ::1 one; `None` once dropped.
    sockets: Option<(TcpListener, Option<TcpListener>)>,
    acceptor: TlsAcceptor,
    handshaken_tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    /// Set once the sockets are closed.
    closed: watch::Sender<bool>,
}

impl TlsListener {
    fn handshake(&self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let acceptor = self.acceptor.clone();
        let done = self.handshaken_tx.clone();
        tokio::spawn(async move {
            if let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            {
                let _ = done.send((tls, peer)).await;
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let next = poll_fn(|cx| {
                if let Poll::Ready(Some(done)) = self.handshaken.poll_recv(cx) {
                    return Poll::Ready(Ok(Some(done)));
                }
                let Some((v4, v6)) = &self.sockets else {
                    return Poll::Pending;
                };
                for socket in std::iter::once(v4).chain(v6) {
                    if let Poll::Ready(accepted) = socket.poll_accept(cx) {
                        return Poll::Ready(accepted.map(|(stream, peer)| {
                            self.handshake(stream, peer);
                            None
                        }));
                    }
                }
                Poll::Pending
            })
            .await;
            match next {
                Ok(Some(done)) => return done,
                Ok(None) => {}
                // Out of file descriptors and the like: wait a little, as axum's own listener.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Close the sockets first, so whoever is told sees connections refused.
        drop(self.sockets.take());
        self.closed.send_replace(true);
    }
}
