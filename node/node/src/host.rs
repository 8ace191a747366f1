//! Where a peer is reached: `HOST:PORT`, HOST an IP address or a DNS name.
//! A config file and a validator record keep the name as written; the node
//! resolves names once, when it starts ([`HostPort::resolve`]), so the
//! transport only ever sees socket addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stele_types::codec::{Encode, put_bytes};
use thiserror::Error;

/// Longest DNS name accepted (RFC 1035: 253 characters written out).
pub const HOST_NAME_BYTES_MAX: usize = 253;

/// Longest label of a DNS name (RFC 1035).
const LABEL_BYTES_MAX: usize = 63;

/// How long resolving one name may take before the start gives up.
pub const RESOLVE_TIMEOUT_MS: u64 = 5_000;

/// Why a host or `HOST:PORT` was refused, or did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostError {
    #[error("the host is empty")]
    Empty,
    #[error("`{0}` is not HOST:PORT (an IPv6 address goes in brackets: [::1]:26656)")]
    NoPort(String),
    #[error("`{0}` is not a port number (1 to 65535)")]
    BadPort(String),
    #[error("`{host}` is not an IP address or a valid DNS name: {problem}")]
    BadName { host: String, problem: &'static str },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot resolve {host}: no answer within {RESOLVE_TIMEOUT_MS} ms")]
    ResolveTimeout { host: String },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

/// A host: an IP address or a DNS name (letters, digits and hyphens in
/// dot-separated labels, as RFC 1123 allows).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// The IP address, if the host is one (names are resolved at start).
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
}

impl FromStr for Host {
    type Err = HostError;

    /// An IP address (IPv6 with or without brackets), else a DNS name.
    fn from_str(text: &str) -> Result<Host, HostError> {
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        check_name(text).map_err(|problem| HostError::BadName {
            host: text.to_owned(),
            problem,
        })?;
        Ok(Host::Name(text.to_owned()))
    }
}

/// RFC 1123 host name rules, and a last label that is not all digits (so
/// a mistyped IPv4 address such as `10.0.0.256` is not taken for a name).
fn check_name(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("it has no label");
    }
    if name.len() > HOST_NAME_BYTES_MAX {
        return Err("it is longer than 253 characters");
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if label.len() > LABEL_BYTES_MAX {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with a hyphen");
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("its last label is all digits (a mistyped IPv4 address?)");
    }
    Ok(())
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// `HOST:PORT` with a port above 0; written `[IPv6]:PORT` for an IPv6
/// address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
}

impl HostPort {
    /// `host:port`; `None` for port 0.
    pub fn new(host: Host, port: u16) -> Option<HostPort> {
        (port > 0).then_some(HostPort { host, port })
    }

    /// The socket address, if the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// The address to dial from a socket bound to `local`: an IP address
    /// as it is; a name through the system resolver (at most
    /// [`RESOLVE_TIMEOUT_MS`]), taking its first address of `local`'s
    /// family (a QUIC endpoint sends from one family), else its first.
    pub async fn resolve(&self, local: SocketAddr) -> Result<SocketAddr, HostError> {
        let name = match &self.host {
            Host::Ip(ip) => return Ok(SocketAddr::new(*ip, self.port)),
            Host::Name(name) => name,
        };
        let lookup = tokio::net::lookup_host((name.as_str(), self.port));
        let found: Vec<SocketAddr> =
            match tokio::time::timeout(Duration::from_millis(RESOLVE_TIMEOUT_MS), lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => {
                    return Err(HostError::Resolve {
                        host: name.clone(),
                        reason: e.to_string(),
                    });
                }
                Err(_) => return Err(HostError::ResolveTimeout { host: name.clone() }),
            };
        found
            .iter()
            .find(|a| a.is_ipv4() == local.is_ipv4())
            .or_else(|| found.first())
            .copied()
            .ok_or_else(|| HostError::NoAddress { host: name.clone() })
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> HostPort {
        HostPort {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }
}

impl FromStr for HostPort {
    type Err = HostError;

    fn from_str(text: &str) -> Result<HostPort, HostError> {
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        let (host, port) = match text.strip_prefix('[') {
            // `[IPv6]:PORT`: the brackets keep the address's colons apart.
            Some(rest) => {
                let (ip, port) = rest
                    .split_once("]:")
                    .ok_or_else(|| HostError::NoPort(text.to_owned()))?;
                let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| HostError::BadName {
                    host: ip.to_owned(),
                    problem: "not an IPv6 address",
                })?;
                (Host::Ip(IpAddr::V6(ip)), port)
            }
            None => {
                let (host, port) = text
                    .rsplit_once(':')
                    .ok_or_else(|| HostError::NoPort(text.to_owned()))?;
                if host.contains(':') {
                    // An IPv6 address without brackets.
                    return Err(HostError::NoPort(text.to_owned()));
                }
                (host.parse::<Host>()?, port)
            }
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| HostError::BadPort(port.to_owned()))?;
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

/// The host's kind (4, 6, or 0 for a name), then its bytes (a name as
/// length-prefixed UTF-8, as written), then the port: what a validator
/// record signs.
impl Encode for HostPort {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match &self.host {
            Host::Ip(IpAddr::V4(ip)) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            Host::Ip(IpAddr::V6(ip)) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
            Host::Name(name) => {
                out.push(0);
                put_bytes(out, name.as_bytes());
            }
        }
        self.port.encode_to(out);
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HostPort, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostPort, HostError> {
        text.parse()
    }

    #[test]
    fn ip_addresses_and_dns_names_parse_and_print_back() {
        for text in [
            "10.0.0.1:26656",
            "[::1]:26656",
            "[2001:db8::7]:1",
            "node-1.example.com:26656",
            "localhost:65535",
            "validator0:26656",
            "a.b.c.example.:26656",
        ] {
            let hp = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(hp.to_string(), text);
        }
        let hp = parse("10.0.0.1:26656").unwrap();
        assert_eq!(hp.socket_addr(), Some("10.0.0.1:26656".parse().unwrap()));
        assert_eq!(parse("node.example:1").unwrap().socket_addr(), None);
    }

    #[test]
    fn bad_hosts_and_ports_are_refused_with_what_is_wrong() {
        for (text, wanted) in [
            ("", "empty"),
            (":26656", "empty"),
            ("10.0.0.1", "not HOST:PORT"),
            ("10.0.0.1:0", "not a port"),
            ("10.0.0.1:65536", "not a port"),
            ("10.0.0.1:http", "not a port"),
            ("::1:26656", "in brackets"),
            ("[::1:26656", "in brackets"),
            ("[fe80::zz]:1", "not an IPv6 address"),
            ("10.0.0.256:26656", "all digits"),
            ("under_score.example:1", "only letters"),
            ("-lead.example:1", "hyphen"),
            ("trail-.example:1", "hyphen"),
            ("two..dots:1", "empty label"),
            ("sp ace:1", "only letters"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
        let long_label = format!("{}.example:1", "a".repeat(64));
        assert!(parse(&long_label).is_err());
        let long_name = format!("{}example:1", "abcdefghi.".repeat(25));
        assert!(parse(&long_name).is_err());
    }

    #[test]
    fn serde_uses_the_written_form() {
        let hp = parse("node.example:26656").unwrap();
        let json = serde_json::to_string(&hp).unwrap();
        assert_eq!(json, "\"node.example:26656\"");
        assert_eq!(serde_json::from_str::<HostPort>(&json).unwrap(), hp);
        assert!(serde_json::from_str::<HostPort>("\"node.example:0\"").is_err());
    }

    #[tokio::test]
    async fn names_resolve_to_the_local_family_and_ip_addresses_stay_as_they_are() {
        let v4: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let ip = parse("192.0.2.7:9").unwrap();
        assert_eq!(ip.resolve(v4).await.unwrap(), ip.socket_addr().unwrap());
        // `localhost` is in every hosts file; from an IPv4 socket it is
        // 127.0.0.1 even where ::1 comes first.
        let local = parse("localhost:26656").unwrap().resolve(v4).await.unwrap();
        assert!(local.ip().is_loopback() && local.is_ipv4(), "{local}");
        assert_eq!(local.port(), 26656);
        // `.invalid` never resolves (RFC 6761).
        let err = parse("stele-no-such-host.invalid:1")
            .unwrap()
            .resolve(v4)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("stele-no-such-host.invalid"),
            "{err}"
        );
    }
}
