//! Clients behind a reverse proxy or load balancer. A connection from a
//! proxy carries many clients, so the proxy's own address would put all of
//! them in one rate-limit bucket. For connections from a configured trusted
//! proxy (`rpc.trusted_proxies`), and only for those, a request's client is
//! read from `X-Forwarded-For`: the right-most address that is not itself a
//! trusted proxy. A client can write anything into the header, but every
//! proxy appends the address it saw, so the entries right of the first
//! untrusted one are facts and the ones left of it are claims; the
//! right-most untrusted entry is the last fact.
//!
//! A trusted proxy's connections are also exempt from the per-address
//! connection cap and the per-address read budget, which count the proxy
//! and not its clients; the proxy is expected to bound its clients, and
//! `connections_max` still bounds it. With `rpc.proxy_protocol`, a
//! balancer in TCP mode names each connection's one client in a PROXY
//! header instead (`proxy_protocol`), and that client is counted as if it
//! had connected itself.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// `X-Forwarded-For` entries looked at, from the right: a chain of proxies
/// is short, and a client cannot make the server walk a long header.
const HOPS_MAX: usize = 16;

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(BTreeSet<IpAddr>);

impl TrustedProxies {
    pub(crate) fn new(addrs: &[IpAddr]) -> Self {
        TrustedProxies(addrs.iter().map(|ip| ip.to_canonical()).collect())
    }

    /// Whether connections from `ip` come from a trusted proxy.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        !self.0.is_empty() && self.0.contains(&ip.to_canonical())
    }

    /// The client of a request that came over a connection from `peer`:
    /// `peer` itself unless `peer` is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not a trusted proxy, or `peer` when
    /// there is none (a request of the proxy's own, such as a health
    /// check) or it does not parse.
    pub(crate) fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            hops.extend(text.split(','));
        }
        for hop in hops.iter().rev().take(HOPS_MAX) {
            match parse_hop(hop) {
                Some(ip) if self.contains(ip) => continue,
                Some(ip) => return ip,
                None => return peer,
            }
        }
        peer
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let proxies = TrustedProxies::new(&[ip("10.0.0.1")]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &h), ip("203.0.113.7"));
        // Anyone else's header is a claim.
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // With no proxy configured, nobody is believed.
        let none = TrustedProxies::default();
        assert_eq!(none.client_of(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let proxies = TrustedProxies::new(&[ip("10.0.0.1"), ip("10.0.0.2")]);
        // The client claimed 1.1.1.1; the outer proxy 10.0.0.2 saw
        // 198.51.100.9 and the inner one saw 10.0.0.2.
        let h = headers(&["1.1.1.1, 198.51.100.9", "10.0.0.2"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        // Ports and IPv6 forms, and IPv4-mapped addresses.
        let h = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&["203.0.113.7:4711"]);
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &h),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn without_a_usable_entry_the_proxy_itself_is_the_client() {
        let proxies = TrustedProxies::new(&[ip("10.0.0.1")]);
        let proxy = ip("10.0.0.1");
        assert_eq!(proxies.client_of(proxy, &HeaderMap::new()), proxy);
        assert_eq!(proxies.client_of(proxy, &headers(&["10.0.0.1"])), proxy);
        assert_eq!(
            proxies.client_of(proxy, &headers(&["not an address"])),
            proxy
        );
        // A long header is walked only so far from the right.
        let long = vec!["10.0.0.1"; HOPS_MAX + 1].join(",");
        let h = headers(&[&format!("203.0.113.7,{long}")]);
        assert_eq!(proxies.client_of(proxy, &h), proxy);
    }
}
