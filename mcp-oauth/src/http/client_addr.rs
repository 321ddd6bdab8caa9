//! Which address a request comes from: the connection's peer, or a trusted proxy's header.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::header::HeaderName;
use http::{Extensions, HeaderMap};

/// The connection's peer address, for stacks other than axum's
/// `into_make_service_with_connect_info`: insert it in the request extensions in front of the
/// layer. (With the `axum` feature, on by default, the layer also reads
/// `axum::extract::ConnectInfo<SocketAddr>`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Proxies whose forwarding headers are believed: addresses and CIDR blocks.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
    any_peer: bool,
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let networks: Vec<String> = self
            .networks
            .iter()
            .map(|(ip, prefix)| format!("{ip}/{prefix}"))
            .collect();
        f.debug_struct("TrustedProxies")
            .field("networks", &networks)
            .field("any_peer", &self.any_peer)
            .finish()
    }
}

/// A proxy entry that is neither an address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR block: {0:?}")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// Addresses (`10.1.2.3`, `::1`) and CIDR blocks (`10.0.0.0/8`, `fd00::/8`).
    pub fn new<I, S>(entries: I) -> Result<Self, InvalidProxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut networks = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let invalid = || InvalidProxy(entry.to_owned());
            let (ip, prefix) = match entry.split_once('/') {
                Some((ip, prefix)) => {
                    let ip: IpAddr = ip.parse().map_err(|_| invalid())?;
                    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
                    (ip, prefix)
                }
                None => {
                    let ip: IpAddr = entry.parse().map_err(|_| invalid())?;
                    (ip, if ip.is_ipv4() { 32 } else { 128 })
                }
            };
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(invalid());
            }
            networks.push((ip, prefix));
        }
        Ok(Self {
            networks,
            any_peer: false,
        })
    }

    /// Believe the header whatever the connection's peer: only for deployments that nothing
    /// but the proxy can reach (a private network, a platform's router). The entries given
    /// to [`new`](Self::new) still count as proxy hops inside `X-Forwarded-For`.
    #[must_use]
    pub fn from_any_peer(mut self) -> Self {
        self.any_peer = true;
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|(network, prefix)| in_network(ip, *network, *prefix))
    }

    fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            Some(peer) => self.any_peer || self.contains(peer),
            // The deployment said a proxy is in front, and the stack gives no peer to check.
            None => true,
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Where the client address (for the failed-authentication budget and the audit events)
/// comes from. By default the connection's peer; a forwarding header is believed *only* when
/// configured here and, unless [`TrustedProxies::from_any_peer`], only from a trusted peer:
/// anything else can write `X-Forwarded-For`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAddress {
    source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Source {
    #[default]
    Peer,
    ForwardedFor(TrustedProxies),
    Header(HeaderName, TrustedProxies),
}

impl ClientAddress {
    /// The connection's peer (the default).
    pub fn peer() -> Self {
        Self::default()
    }

    /// `X-Forwarded-For`, read from the right: the first address that is not a trusted proxy
    /// is the client (the rightmost-untrusted rule: entries to its left were written by the
    /// client and prove nothing). Believed only when the peer is a trusted proxy; otherwise,
    /// or when the header is absent or unparsable, the peer.
    pub fn x_forwarded_for(proxies: TrustedProxies) -> Self {
        Self {
            source: Source::ForwardedFor(proxies),
        }
    }

    /// A single header holding the client's address, set (overwritten) by the proxy:
    /// `X-Real-IP`, `CF-Connecting-IP`, `Fly-Client-IP`… Believed only when the peer is a
    /// trusted proxy; otherwise, or when the header is absent, repeated or unparsable, the peer.
    pub fn header(name: HeaderName, proxies: TrustedProxies) -> Self {
        Self {
            source: Source::Header(name, proxies),
        }
    }

    /// The client address of a request, if known.
    pub(crate) fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = peer_of(extensions).map(|ip| ip.to_canonical());
        match &self.source {
            Source::Peer => peer,
            Source::ForwardedFor(proxies) => {
                if !proxies.trusts_peer(peer) {
                    return peer;
                }
                forwarded_for(headers, proxies).or(peer)
            }
            Source::Header(name, proxies) => {
                if !proxies.trusts_peer(peer) {
                    return peer;
                }
                let mut values = headers.get_all(name).iter();
                let single = match (values.next(), values.next()) {
                    (Some(value), None) => value.to_str().ok().and_then(parse_entry),
                    _ => None,
                };
                single.or(peer)
            }
        }
    }
}

fn peer_of(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    None
}

fn forwarded_for(headers: &HeaderMap, proxies: &TrustedProxies) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        entries.extend(value.split(',').map(str::trim));
    }
    let mut leftmost = None;
    for entry in entries.iter().rev() {
        let ip = parse_entry(entry)?;
        if !proxies.contains(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    // Every hop is a trusted proxy: the first one is as far as the chain goes.
    leftmost
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]`, `[::1]:443`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(peer: Option<&str>, xff: &[&str]) -> (HeaderMap, Extensions) {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        let mut extensions = Extensions::new();
        if let Some(peer) = peer {
            extensions.insert(PeerAddr(peer.parse().unwrap()));
        }
        (headers, extensions)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_peer_is_the_default_and_forwarding_headers_are_ignored() {
        let (headers, extensions) = request(Some("203.0.113.9:5000"), &["198.51.100.1"]);
        assert_eq!(
            ClientAddress::peer().resolve(&headers, &extensions),
            ip("203.0.113.9")
        );
        assert_eq!(
            ClientAddress::peer().resolve(&headers, &Extensions::new()),
            None
        );
    }

    #[test]
    fn x_forwarded_for_is_read_rightmost_untrusted_from_a_trusted_peer_only() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "192.168.1.1"]).unwrap();
        let source = ClientAddress::x_forwarded_for(proxies);
        // client-written spoof, then the real client, then an inner proxy.
        let (headers, extensions) = request(
            Some("10.0.0.5:443"),
            &["1.1.1.1, 203.0.113.7", "192.168.1.1"],
        );
        assert_eq!(source.resolve(&headers, &extensions), ip("203.0.113.7"));
        // The same header from an untrusted peer proves nothing.
        let (headers, extensions) = request(Some("198.51.100.2:443"), &["1.1.1.1"]);
        assert_eq!(source.resolve(&headers, &extensions), ip("198.51.100.2"));
        // Garbage in the chain: the peer.
        let (headers, extensions) = request(Some("10.0.0.5:443"), &["1.1.1.1, nonsense"]);
        assert_eq!(source.resolve(&headers, &extensions), ip("10.0.0.5"));
        // Ports and brackets are allowed.
        let (headers, extensions) = request(Some("10.0.0.5:443"), &["[2001:db8::1]:8080"]);
        assert_eq!(source.resolve(&headers, &extensions), ip("2001:db8::1"));
    }

    #[test]
    fn a_single_header_is_believed_from_trusted_peers() {
        let source = ClientAddress::header(
            HeaderName::from_static("x-real-ip"),
            TrustedProxies::new(["127.0.0.1"]).unwrap(),
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-real-ip", HeaderValue::from_static("203.0.113.1"));
        let mut extensions = Extensions::new();
        extensions.insert(PeerAddr("127.0.0.1:1".parse().unwrap()));
        assert_eq!(source.resolve(&headers, &extensions), ip("203.0.113.1"));
        let mut other = Extensions::new();
        other.insert(PeerAddr("127.0.0.2:1".parse().unwrap()));
        assert_eq!(source.resolve(&headers, &other), ip("127.0.0.2"));
        let any = ClientAddress::header(
            HeaderName::from_static("x-real-ip"),
            TrustedProxies::default().from_any_peer(),
        );
        assert_eq!(any.resolve(&headers, &other), ip("203.0.113.1"));
    }

    #[test]
    fn cidr_blocks_match_by_prefix() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "fd00::/8", "0.0.0.0/0"]).unwrap();
        assert!(proxies.contains("10.200.1.1".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        assert!(proxies.contains("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!proxies.contains("2001:db8::1".parse().unwrap()));
        assert!(TrustedProxies::new(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::new(["proxy.internal"]).is_err());
    }
}
