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
    pub fn trust_any_peer(mut self) -> Self {
        self.any_peer = true;
        self
    }

    /// Renamed [`trust_any_peer`](Self::trust_any_peer): a `from_` constructor takes no
    /// `self`.
    #[deprecated(note = "renamed `trust_any_peer`")]
    #[must_use]
    pub fn from_any_peer(self) -> Self {
        self.trust_any_peer()
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
            // No peer to check: only a deployment that said any peer is a proxy believes the
            // header (otherwise any client could pick its own bucket).
            None => self.any_peer,
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
/// comes from: the choice every deployment makes when it builds the layer.
///
/// - [`peer`](Self::peer) (the default): the connection's peer, from axum's
///   `ConnectInfo<SocketAddr>` (feature `axum`) or a [`PeerAddr`] another stack inserts;
/// - [`x_forwarded_for`](Self::x_forwarded_for), [`forwarded`](Self::forwarded) or a
///   single [`header`](Self::header) written by a proxy, believed *only* from a trusted
///   peer (unless [`TrustedProxies::trust_any_peer`]): anything else can write them;
/// - [`custom`](Self::custom): a function of the request's headers and extensions.
///
/// While the failed-authentication budget is on, a request whose address the source cannot
/// tell is refused (500, audit reason `client_address_unknown`), never waved past the budget.
#[derive(Clone, Default)]
pub struct ClientAddress {
    source: Source,
}

/// A custom source: the client address of a request, if known.
type CustomSource = std::sync::Arc<dyn Fn(&HeaderMap, &Extensions) -> Option<IpAddr> + Send + Sync>;

#[derive(Clone, Default)]
enum Source {
    #[default]
    Peer,
    ForwardedFor(TrustedProxies),
    Forwarded(TrustedProxies),
    Header(HeaderName, TrustedProxies),
    Custom(CustomSource),
}

impl fmt::Debug for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Peer => f.write_str("ClientAddress::peer()"),
            Source::ForwardedFor(proxies) => f
                .debug_tuple("ClientAddress::x_forwarded_for")
                .field(proxies)
                .finish(),
            Source::Forwarded(proxies) => f
                .debug_tuple("ClientAddress::forwarded")
                .field(proxies)
                .finish(),
            Source::Header(name, proxies) => f
                .debug_tuple("ClientAddress::header")
                .field(name)
                .field(proxies)
                .finish(),
            Source::Custom(_) => f.write_str("ClientAddress::custom(..)"),
        }
    }
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

    /// `Forwarded` (RFC 7239), its `for=` parameters read from the right like
    /// [`x_forwarded_for`](Self::x_forwarded_for): the first that is not a trusted proxy is
    /// the client. Believed only when the peer is a trusted proxy; an obfuscated or `unknown`
    /// node, or an unparsable header, falls back to the peer.
    pub fn forwarded(proxies: TrustedProxies) -> Self {
        Self {
            source: Source::Forwarded(proxies),
        }
    }

    /// A function of the request's headers and extensions, for stacks that know the
    /// client's address another way. `None` means unknown (refused while the
    /// failed-authentication budget is on).
    pub fn custom(
        source: impl Fn(&HeaderMap, &Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        Self {
            source: Source::Custom(std::sync::Arc::new(source)),
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
        let (proxies, hop) = match &self.source {
            Source::Peer => return peer,
            Source::Custom(source) => {
                return source(headers, extensions).map(|ip| ip.to_canonical());
            }
            Source::ForwardedFor(proxies) => (proxies, forwarded_for as fn(&_, &_) -> Hop),
            Source::Forwarded(proxies) => (proxies, forwarded as fn(&_, &_) -> Hop),
            Source::Header(name, proxies) => {
                if !proxies.trusts_peer(peer) {
                    return peer;
                }
                return single_header(headers, name).client(peer);
            }
        };
        if !proxies.trusts_peer(peer) {
            return peer;
        }
        hop(headers, proxies).client(peer)
    }
}

/// What a forwarding header says about the client.
enum Hop {
    Found(IpAddr),
    Absent,
    Unreadable,
}

impl Hop {
    /// The client address, the header read from a trusted `peer`.
    fn client(self, peer: Option<IpAddr>) -> Option<IpAddr> {
        match self {
            Hop::Found(ip) => Some(ip),
            // No header: the trusted peer itself is the client.
            Hop::Absent => peer,
            // The hop that decides cannot be read: unknown (refused while the budget is on),
            // never the proxy's own address, which every client behind it shares.
            Hop::Unreadable => None,
        }
    }
}

/// A single header set by the proxy; present twice (the client's copy kept) is unreadable.
fn single_header(headers: &HeaderMap, name: &HeaderName) -> Hop {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Hop::Absent,
        (Some(value), None) => match value.to_str().ok().and_then(parse_entry) {
            Some(ip) => Hop::Found(ip),
            None => Hop::Unreadable,
        },
        (Some(_), Some(_)) => Hop::Unreadable,
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

fn forwarded_for(headers: &HeaderMap, proxies: &TrustedProxies) -> Hop {
    // Right to left, lazily: entries left of the client's were written by the client and are
    // never parsed (junk there must not change whose bucket this is).
    let values: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    rightmost_untrusted(
        values
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(|b| *b == b','))
            .map(|entry| std::str::from_utf8(entry).ok().and_then(parse_entry)),
        proxies,
    )
}

/// The `for=` node of one `Forwarded` hop (RFC 7239 §4); `None` when it has none, two, or
/// an obfuscated or `unknown` one.
fn forwarded_node(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?;
    let mut node = None;
    for pair in hop.split(';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("for") {
            if node.is_some() {
                return None;
            }
            node = Some(value.trim().trim_matches('"'));
        }
    }
    parse_entry(node?)
}

fn forwarded(headers: &HeaderMap, proxies: &TrustedProxies) -> Hop {
    let values: Vec<&[u8]> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    rightmost_untrusted(
        values
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(|b| *b == b','))
            .map(forwarded_node),
        proxies,
    )
}

/// The rightmost entry that is not a trusted proxy (entries left of it were written by the
/// client and prove nothing; they are not read); every hop trusted: the leftmost. An entry
/// that does not parse where the scan reaches it makes the header unreadable.
fn rightmost_untrusted(
    entries: impl Iterator<Item = Option<IpAddr>>,
    proxies: &TrustedProxies,
) -> Hop {
    let mut leftmost = None;
    for entry in entries {
        let Some(ip) = entry else {
            return Hop::Unreadable;
        };
        if !proxies.contains(ip) {
            return Hop::Found(ip);
        }
        leftmost = Some(ip);
    }
    // Every hop is a trusted proxy: the first one is as far as the chain goes.
    leftmost.map_or(Hop::Absent, Hop::Found)
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
        // Garbage where the scan stops: unknown, never the proxy's shared address.
        let (headers, extensions) = request(Some("10.0.0.5:443"), &["1.1.1.1, nonsense"]);
        assert_eq!(source.resolve(&headers, &extensions), None);
        // Junk the client wrote left of its own address is never read.
        let (headers, extensions) = request(Some("10.0.0.5:443"), &["nonsense, 203.0.113.7"]);
        assert_eq!(source.resolve(&headers, &extensions), ip("203.0.113.7"));
        let mut junk = HeaderMap::new();
        junk.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.8").unwrap(),
        );
        assert_eq!(source.resolve(&junk, &extensions), ip("203.0.113.8"));
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
            TrustedProxies::default().trust_any_peer(),
        );
        assert_eq!(any.resolve(&headers, &other), ip("203.0.113.1"));
    }

    #[test]
    fn forwarded_is_read_rightmost_untrusted_from_a_trusted_peer_only() {
        let source = ClientAddress::forwarded(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::FORWARDED,
            HeaderValue::from_static(r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#),
        );
        headers.append(
            http::header::FORWARDED,
            HeaderValue::from_static("for=10.0.0.9;by=10.0.0.1"),
        );
        let mut trusted = Extensions::new();
        trusted.insert(PeerAddr("10.0.0.5:443".parse().unwrap()));
        assert_eq!(source.resolve(&headers, &trusted), ip("2001:db8::7"));
        let mut untrusted = Extensions::new();
        untrusted.insert(PeerAddr("198.51.100.2:443".parse().unwrap()));
        assert_eq!(source.resolve(&headers, &untrusted), ip("198.51.100.2"));
        // An obfuscated node where the scan stops: unknown, never the proxy's address.
        let mut obfuscated = HeaderMap::new();
        obfuscated.insert(
            http::header::FORWARDED,
            HeaderValue::from_static("for=_hidden"),
        );
        assert_eq!(source.resolve(&obfuscated, &trusted), None);
        // A client-written hop without `for` left of the real one is never read.
        let mut client_junk = HeaderMap::new();
        client_junk.insert(
            http::header::FORWARDED,
            HeaderValue::from_static("by=x, for=203.0.113.9"),
        );
        assert_eq!(source.resolve(&client_junk, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn without_a_peer_a_forwarding_header_is_believed_only_when_any_peer_is_trusted() {
        let (headers, _) = request(None, &["203.0.113.7"]);
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let source = ClientAddress::x_forwarded_for(proxies.clone());
        assert_eq!(source.resolve(&headers, &Extensions::new()), None);
        let any = ClientAddress::x_forwarded_for(proxies.trust_any_peer());
        assert_eq!(any.resolve(&headers, &Extensions::new()), ip("203.0.113.7"));
    }

    #[test]
    fn a_custom_source_decides_alone() {
        let source = ClientAddress::custom(|headers, _| {
            headers
                .get("x-test-client")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        let mut headers = HeaderMap::new();
        assert_eq!(source.resolve(&headers, &Extensions::new()), None);
        headers.insert(
            "x-test-client",
            HeaderValue::from_static("::ffff:192.0.2.1"),
        );
        assert_eq!(
            source.resolve(&headers, &Extensions::new()),
            ip("192.0.2.1")
        );
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
