//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 2
//! and 1) that a load balancer in TCP mode (`send-proxy-v2`) writes at the
//! start of each connection to name the client it carries. Read only on
//! connections from a trusted proxy, and only when `rpc.proxy_protocol` is
//! on; from anyone else the same bytes are not a header but a malformed
//! HTTP request.
//!
//! The read is bounded: at most [`V2_HEADER_BYTES_MAX`] (or
//! [`V1_HEADER_BYTES_MAX`]) bytes, nothing allocated, never a byte past the
//! header (what follows is the client's HTTP), and within the connection's
//! header timeout (the caller reads through the watched socket). Parsing
//! the framed bytes is the `ppp` crate's.

use std::net::SocketAddr;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature, the first 12 bytes of every v2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version and command, family
/// and protocol, length of what follows.
const V2_FIXED_BYTES: usize = 16;
/// Longest v2 header read: the fixed part and 216 bytes of addresses and
/// TLVs (two UNIX paths, the largest address block; an IPv6 pair takes 36
/// and leaves 180 for TLVs, more than HAProxy sends).
pub(crate) const V2_HEADER_BYTES_MAX: usize = V2_FIXED_BYTES + 216;
/// The v1 text header's start.
const V1_PREFIX: &[u8] = b"PROXY ";
/// Longest v1 header, its CRLF included (the specification's bound).
pub(crate) const V1_HEADER_BYTES_MAX: usize = 107;
/// Bytes read before the version is known: fewer than the shortest header
/// of either version (v1's `PROXY UNKNOWN\r\n` is 15), so nothing past a
/// header is ever read.
const SNIFF_BYTES: usize = V2_SIGNATURE.len();

/// What a well-formed header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyHeader {
    /// The proxy carries the client at this address (command PROXY over
    /// TCP/IPv4 or IPv6; v1 `TCP4`, `TCP6`).
    Client(SocketAddr),
    /// The connection is the proxy's own (command LOCAL, used by health
    /// checks) or names no IP client (an unspecified or UNIX family, v1
    /// `UNKNOWN`): it counts as the proxy's, as the specification says.
    Proxy,
}

/// Why a connection's header was refused; the connection is closed.
#[derive(Debug, Error)]
pub(crate) enum ProxyHeaderError {
    #[error("the connection did not start with a PROXY protocol header")]
    NoSignature,
    #[error("PROXY v2 header of {len} bytes, over the {max} accepted")]
    TooLong { len: usize, max: usize },
    #[error("PROXY v1 header without its CRLF within {max} bytes")]
    V1Unterminated { max: usize },
    #[error("malformed PROXY v2 header: {0}")]
    V2(ppp::v2::ParseError),
    #[error("malformed PROXY v1 header: {0}")]
    V1(ppp::v1::ParseError),
    #[error("PROXY v1 header that is not ASCII text")]
    V1NotText,
    #[error("the connection ended within the PROXY header: {0}")]
    Incomplete(std::io::Error),
}

impl ProxyHeaderError {
    /// The `reason` label of `rpc_proxy_headers_refused_total`: the bytes
    /// were wrong, or they stopped coming (closed, or the header timeout).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            ProxyHeaderError::Incomplete(_) => "incomplete",
            _ => "malformed",
        }
    }
}

/// Reads and parses the header at the start of `socket`, leaving the
/// socket at the first byte after it.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    socket: &mut S,
) -> Result<ProxyHeader, ProxyHeaderError> {
    let mut buf = [0u8; V2_HEADER_BYTES_MAX];
    socket
        .read_exact(&mut buf[..SNIFF_BYTES])
        .await
        .map_err(ProxyHeaderError::Incomplete)?;
    if buf[..SNIFF_BYTES] == V2_SIGNATURE {
        socket
            .read_exact(&mut buf[SNIFF_BYTES..V2_FIXED_BYTES])
            .await
            .map_err(ProxyHeaderError::Incomplete)?;
        // The length is checked before a byte of what it announces is read.
        let len = V2_FIXED_BYTES + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > V2_HEADER_BYTES_MAX {
            return Err(ProxyHeaderError::TooLong {
                len,
                max: V2_HEADER_BYTES_MAX,
            });
        }
        socket
            .read_exact(&mut buf[V2_FIXED_BYTES..len])
            .await
            .map_err(ProxyHeaderError::Incomplete)?;
        return parse_v2(&buf[..len]);
    }
    if buf.starts_with(V1_PREFIX) {
        // Byte by byte up to the CRLF: a read of more could take the
        // client's first bytes. At most ~100 reads, once per connection.
        let mut len = SNIFF_BYTES;
        while !buf[..len].ends_with(b"\r\n") {
            if len == V1_HEADER_BYTES_MAX {
                return Err(ProxyHeaderError::V1Unterminated {
                    max: V1_HEADER_BYTES_MAX,
                });
            }
            socket
                .read_exact(&mut buf[len..len + 1])
                .await
                .map_err(ProxyHeaderError::Incomplete)?;
            len += 1;
        }
        return parse_v1(&buf[..len]);
    }
    Err(ProxyHeaderError::NoSignature)
}

/// A whole v2 header (its length already checked).
fn parse_v2(bytes: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let header = Header::try_from(bytes).map_err(ProxyHeaderError::V2)?;
    if header.command == Command::Local {
        return Ok(ProxyHeader::Proxy);
    }
    Ok(match header.addresses {
        Addresses::IPv4(a) => ProxyHeader::Client((a.source_address, a.source_port).into()),
        Addresses::IPv6(a) => ProxyHeader::Client((a.source_address, a.source_port).into()),
        Addresses::Unspecified | Addresses::Unix(_) => ProxyHeader::Proxy,
    })
}

/// A whole v1 header, up to and including its first CRLF.
fn parse_v1(bytes: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    use ppp::v1::{Addresses, Header, ParseError};
    let text = std::str::from_utf8(bytes).map_err(|_| ProxyHeaderError::V1NotText)?;
    let header = Header::try_from(text).map_err(ProxyHeaderError::V1)?;
    // The parser stops at the first CR; a header is one line.
    if header.header.len() != bytes.len() {
        return Err(ProxyHeaderError::V1(ParseError::InvalidSuffix));
    }
    Ok(match header.addresses {
        Addresses::Tcp4(a) => ProxyHeader::Client((a.source_address, a.source_port).into()),
        Addresses::Tcp6(a) => ProxyHeader::Client((a.source_address, a.source_port).into()),
        Addresses::Unknown => ProxyHeader::Proxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, IPv4, IPv6, Protocol, Type, Version};
    use proptest::prelude::*;

    /// Reads a header from `input`; the result and the bytes left unread.
    fn read(input: &[u8]) -> (Result<ProxyHeader, ProxyHeaderError>, Vec<u8>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut rest = input;
        let result = runtime.block_on(read_header(&mut rest));
        (result, rest.to_vec())
    }

    fn v2(command: Command, addresses: impl Into<ppp::v2::Addresses>) -> Vec<u8> {
        Builder::with_addresses(Version::Two | command, Protocol::Stream, addresses)
            .build()
            .unwrap()
    }

    const HTTP: &[u8] = b"GET /health HTTP/1.1\r\n\r\n";

    fn with_http(header: &[u8]) -> Vec<u8> {
        [header, HTTP].concat()
    }

    #[test]
    fn a_v2_proxy_header_names_the_client_and_leaves_the_request_unread() {
        let ipv4 = v2(
            Command::Proxy,
            IPv4::new([203, 0, 113, 7], [10, 0, 0, 2], 4711, 8545),
        );
        let (got, rest) = read(&with_http(&ipv4));
        assert_eq!(
            got.unwrap(),
            ProxyHeader::Client("203.0.113.7:4711".parse().unwrap())
        );
        assert_eq!(rest, HTTP);
        let ipv6 = v2(
            Command::Proxy,
            IPv6::new(
                "2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap(),
                "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap(),
                4711,
                8545,
            ),
        );
        let (got, rest) = read(&with_http(&ipv6));
        assert_eq!(
            got.unwrap(),
            ProxyHeader::Client("[2001:db8::7]:4711".parse().unwrap())
        );
        assert_eq!(rest, HTTP);
    }

    #[test]
    fn tlvs_within_the_bound_are_skipped() {
        let header = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            IPv4::new([203, 0, 113, 7], [10, 0, 0, 2], 4711, 8545),
        )
        .write_tlv(Type::UniqueId, &[7u8; 64])
        .unwrap()
        .write_tlv(Type::NoOp, &[0u8; 5])
        .unwrap()
        .build()
        .unwrap();
        let (got, rest) = read(&with_http(&header));
        assert_eq!(
            got.unwrap(),
            ProxyHeader::Client("203.0.113.7:4711".parse().unwrap())
        );
        assert_eq!(rest, HTTP);
    }

    #[test]
    fn local_and_addressless_headers_count_as_the_proxy() {
        let local = v2(
            Command::Local,
            IPv4::new([203, 0, 113, 7], [10, 0, 0, 2], 4711, 8545),
        );
        assert_eq!(read(&with_http(&local)).0.unwrap(), ProxyHeader::Proxy);
        let unspecified = v2(Command::Proxy, ppp::v2::Addresses::Unspecified);
        assert_eq!(
            read(&with_http(&unspecified)).0.unwrap(),
            ProxyHeader::Proxy
        );
        let (got, rest) = read(&with_http(b"PROXY UNKNOWN\r\n"));
        assert_eq!(got.unwrap(), ProxyHeader::Proxy);
        assert_eq!(rest, HTTP);
    }

    #[test]
    fn a_v1_header_names_the_client() {
        let (got, rest) = read(&with_http(b"PROXY TCP4 203.0.113.7 10.0.0.2 4711 8545\r\n"));
        assert_eq!(
            got.unwrap(),
            ProxyHeader::Client("203.0.113.7:4711".parse().unwrap())
        );
        assert_eq!(rest, HTTP);
        let (got, _) = read(&with_http(
            b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 8545\r\n",
        ));
        assert_eq!(
            got.unwrap(),
            ProxyHeader::Client("[2001:db8::7]:4711".parse().unwrap())
        );
    }

    #[test]
    fn malformed_headers_are_refused_by_name() {
        // A plain request: no header at all.
        assert!(matches!(read(HTTP).0, Err(ProxyHeaderError::NoSignature)));
        // A v2 length past the bound is refused before it is read.
        let mut long = V2_SIGNATURE.to_vec();
        long.extend([0x21, 0x11, 0xff, 0xff]);
        let (got, rest) = read(&with_http(&long));
        assert!(
            matches!(got, Err(ProxyHeaderError::TooLong { len: 65_551, .. })),
            "{got:?}"
        );
        assert_eq!(rest, HTTP);
        // One byte over the bound, and exactly at it (then the addresses
        // decide).
        let mut over = V2_SIGNATURE.to_vec();
        over.extend([0x21, 0x11, 0, 217]);
        assert!(matches!(
            read(&over).0,
            Err(ProxyHeaderError::TooLong { len: 233, .. })
        ));
        let mut at = V2_SIGNATURE.to_vec();
        at.extend([0x21, 0x11, 0, 216]);
        at.extend([1u8; 216]);
        assert!(matches!(read(&at).0, Ok(ProxyHeader::Client(_))));
        // Version 1 in the binary form, and an unknown command.
        let mut version = v2(Command::Proxy, IPv4::new([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        version[12] = 0x11;
        assert!(matches!(read(&version).0, Err(ProxyHeaderError::V2(_))));
        version[12] = 0x2f;
        assert!(matches!(read(&version).0, Err(ProxyHeaderError::V2(_))));
        // An IPv4 family with a block too short for its addresses.
        let mut short = V2_SIGNATURE.to_vec();
        short.extend([0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(read(&short).0, Err(ProxyHeaderError::V2(_))));
        // Cut short.
        let whole = v2(Command::Proxy, IPv4::new([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        for cut in [0, 5, 12, 15, whole.len() - 1] {
            assert!(
                matches!(read(&whole[..cut]).0, Err(ProxyHeaderError::Incomplete(_))),
                "cut at {cut}"
            );
        }
        // v1: bad address, missing CRLF within the bound, two lines.
        for bad in [
            &b"PROXY TCP4 203.0.113.999 10.0.0.2 4711 8545\r\n"[..],
            b"PROXY TCP4 203.0.113.7 10.0.0.2 4711\r\n",
            b"PROXY TCP5 203.0.113.7 10.0.0.2 4711 8545\r\n",
            b"PROXY TCP4 203.0.113.7\r10.0.0.2 4711 8545\r\n",
        ] {
            assert!(
                matches!(read(bad).0, Err(ProxyHeaderError::V1(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        let (got, rest) = read(&endless);
        assert!(matches!(got, Err(ProxyHeaderError::V1Unterminated { .. })));
        assert_eq!(rest.len(), endless.len() - V1_HEADER_BYTES_MAX);
    }

    proptest! {
        /// Any bytes: an answer or a named refusal, never a panic, and never
        /// more read than the bound.
        #[test]
        fn random_bytes_are_refused_or_read_within_the_bound(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            start in 0..3u8,
        ) {
            // Also past either version's start, where the interesting
            // branches are.
            let prefix: &[u8] = match start {
                0 => b"",
                1 => &V2_SIGNATURE,
                _ => V1_PREFIX,
            };
            let input = [prefix, &bytes].concat();
            let (_, rest) = read(&input);
            prop_assert!(input.len() - rest.len() <= V2_HEADER_BYTES_MAX);
            prop_assert_eq!(&input[input.len() - rest.len()..], rest.as_slice());
        }

        /// Any well-formed v2 header with TLVs that fit names its client and
        /// leaves what follows it unread.
        #[test]
        fn well_formed_v2_headers_are_read_exactly(
            ip in any::<[u8; 4]>(),
            port in any::<u16>(),
            tlv in proptest::collection::vec(any::<u8>(), 0..150),
            after in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let header = Builder::with_addresses(
                Version::Two | Command::Proxy,
                Protocol::Stream,
                IPv4::new(ip, [10, 0, 0, 2], port, 8545),
            )
            .write_tlv(Type::NoOp, &tlv)
            .unwrap()
            .build()
            .unwrap();
            let (got, rest) = read(&[header.as_slice(), &after].concat());
            prop_assert_eq!(got.unwrap(), ProxyHeader::Client((ip, port).into()));
            prop_assert_eq!(rest, after);
        }
    }
}
