//! The `[rpc]` table of the node's config.toml.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::size::RESPONSE_BYTES_MIN;

/// Limits and settings of the RPC server. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Address of the HTTP and WebSocket listener.
    pub listen: SocketAddr,
    /// Largest request body (HTTP body or WebSocket message).
    pub body_bytes_max: u32,
    /// Largest response (at least 4 MiB). Answers that grow with chain data
    /// are paged or cut to fit it (docs/rpc.md, "Answer sizes").
    pub response_bytes_max: u32,
    /// Most calls in one batch; 0 disables batches.
    pub batch_max: u32,
    /// Most open connections. When all are open, a new connection takes
    /// the slot of the least useful open one (docs/rpc.md, "Connection
    /// eviction"); it gets HTTP 503 only when every one is busy.
    pub connections_max: u32,
    /// Most open connections from one IP address, checked before a slot of
    /// `connections_max` is taken; beyond, a new connection gets HTTP 429
    /// and is closed.
    pub connections_per_ip_max: u32,
    /// Time a new connection has to deliver its first complete request
    /// head; then it is closed.
    pub request_header_timeout_ms: u64,
    /// An HTTP connection with no request in flight and nothing written
    /// for this long is closed; so is a WebSocket connection from which
    /// nothing (not even a pong) was read for this long.
    pub idle_timeout_ms: u64,
    /// Interval of the server's WebSocket pings (below `idle_timeout_ms`,
    /// so a live client's pongs keep its connection).
    pub ws_ping_interval_ms: u64,
    /// Most subscriptions on one WebSocket connection.
    pub subscriptions_per_connection_max: u32,
    /// Messages (answers and notifications) queued for one WebSocket
    /// connection; beyond, its subscriptions wait (and fall behind).
    pub ws_buffer_messages_max: u32,
    /// The kernel send buffer of each connection (`SO_SNDBUF`; Linux
    /// doubles it), which bounds what a client that stops reading pins in
    /// kernel memory and how soon its subscriptions fall behind (and its
    /// connection becomes the first to close for a newcomer when every
    /// slot is taken); 0 keeps the OS default (autotuned, up to 4 MiB on
    /// Linux: 2 GiB of kernel memory over 512 connections, and a
    /// subscriber that never reads looks like a reader for minutes).
    /// 256 KiB by default: a 16 MiB answer still streams at several MB/s
    /// over a 100 ms round trip.
    pub send_buffer_bytes: usize,
    /// Stored bytes of missed blocks a lagging subscription reads ahead
    /// from the store at a time (at least one block is read).
    pub subscription_backlog_bytes_max: usize,
    /// Blocks a subscriber may fall behind the newest; beyond, the
    /// subscription ends with an error notification.
    pub subscription_lag_blocks_max: u64,
    /// Sustained requests per second from one IP address.
    pub rate_per_ip_per_s: u32,
    /// Requests an idle IP address may send at once.
    pub rate_burst: u32,
    /// IP addresses the rate limiter tracks at once; beyond, new addresses
    /// are refused until idle ones are forgotten.
    pub rate_ips_max: usize,
    /// Bytes per second one IP address may send, over all its connections:
    /// reads beyond wait at the socket, before any frame is parsed (this is
    /// what bounds a WebSocket client's stream of calls before parsing).
    pub read_bytes_per_ip_per_s: u32,
    /// Bytes an idle address may send at once (at least `body_bytes_max`,
    /// so one largest request always passes unthrottled).
    pub read_bytes_burst: u32,
    /// `/health` answers 503 while the node's committed height is more
    /// than this many blocks below the highest height it has learnt of
    /// from its peers.
    pub health_lag_blocks_max: u64,
    /// On a full node, `/health` answers 503 once this many milliseconds
    /// passed without news of a certified block from its peers (a node
    /// that was paused, or cut off, does not know how far behind it is).
    /// Validators propose an empty block every `empty_block_interval_ms`
    /// (500 by default), so a healthy chain is never this quiet. 0 turns
    /// the check off.
    pub health_silence_ms_max: u64,
    /// Origins allowed by CORS (`"*"` for any); empty disables CORS.
    pub cors_origins: Vec<String>,
    /// Serve the block explorer (`sdk/ts/explorer`) at `GET /explorer/`:
    /// static files built into the binary, a client of this port like any
    /// other. Off by default; `stele devnet` turns it on.
    pub explorer: bool,
    /// Addresses of reverse proxies or load balancers in front of this
    /// node. Only for connections from these is a request's client read
    /// from `X-Forwarded-For` (the right-most entry that is not one of
    /// them), so rate limits count the real clients; their connections
    /// are exempt from `connections_per_ip_max` and the per-address read
    /// budget (docs/rpc.md, "Behind a proxy"). Empty by default: nobody's
    /// header is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Every connection from a `trusted_proxies` address starts with a
    /// PROXY protocol header (v2, or v1 text) naming the client, as a load
    /// balancer in TCP mode writes it (HAProxy's `send-proxy-v2`); the
    /// client's address then counts for the per-address connection cap,
    /// read budget and rate limits. A connection from such an address
    /// without a well-formed header is closed. Off by default
    /// (docs/rpc.md, "Behind a proxy").
    pub proxy_protocol: bool,
    /// Gas cap of `call_view`, `simulate_transaction` and `estimate_gas`
    /// (about a second of work; a contract deploy alone costs ~100 M).
    pub view_gas_max: u64,
    /// Wall-clock backstop of `call_view`, `simulate_transaction` and
    /// `estimate_gas`.
    pub exec_timeout_ms: u64,
    /// Threads running views and simulations.
    pub exec_threads: usize,
    /// Views and simulations waiting for a thread; beyond, calls fail with
    /// `BUSY`.
    pub exec_queue_max: usize,
    /// Threads reading the block store for `get_events` scans, blocks,
    /// transactions, receipts and subscription backlogs.
    pub read_threads: usize,
    /// Block-store reads waiting for a thread; beyond, calls fail with
    /// `BUSY`.
    pub read_queue_max: usize,
    /// Threads checking submitted transactions (decoding, the signature,
    /// the mempool's admission), so a flood of them takes at most these
    /// cores.
    pub admit_threads: usize,
    /// Submitted transactions waiting for an admission thread; beyond,
    /// `send_transaction` fails with `BUSY`.
    pub admit_queue_max: usize,
    /// Longest `wait_for_receipt`.
    pub wait_for_receipt_timeout_ms_max: u64,
    /// Largest `list_storage` page.
    pub list_storage_limit_max: u32,
    /// Most blocks one `get_events` call scans.
    pub events_blocks_max: u64,
    /// Most events one `get_events` call returns.
    pub events_limit_max: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8545)),
            body_bytes_max: 2 << 20,
            response_bytes_max: 16 << 20,
            batch_max: 32,
            connections_max: 512,
            connections_per_ip_max: 32,
            request_header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            ws_ping_interval_ms: 20_000,
            subscriptions_per_connection_max: 64,
            ws_buffer_messages_max: 256,
            send_buffer_bytes: 256 << 10,
            subscription_backlog_bytes_max: 4 << 20,
            subscription_lag_blocks_max: 1_024,
            rate_per_ip_per_s: 200,
            rate_burst: 400,
            rate_ips_max: 10_000,
            read_bytes_per_ip_per_s: 4 << 20,
            read_bytes_burst: 8 << 20,
            health_lag_blocks_max: 16,
            health_silence_ms_max: 10_000,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            cors_origins: Vec::new(),
            explorer: false,
            view_gas_max: 1_000_000_000,
            exec_timeout_ms: 2_000,
            exec_threads: 2,
            exec_queue_max: 64,
            read_threads: 2,
            read_queue_max: 64,
            admit_threads: 2,
            admit_queue_max: 1_024,
            wait_for_receipt_timeout_ms_max: 60_000,
            list_storage_limit_max: 256,
            events_blocks_max: 10_000,
            events_limit_max: 1_000,
        }
    }
}

/// Why an `[rpc]` table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RpcConfigError {
    #[error("rpc.{field} must be positive")]
    NotPositive { field: &'static str },
    #[error(
        "rpc.rate_burst ({burst}) must be at least 1 and not below rpc.rate_per_ip_per_s ({rate})"
    )]
    Burst { burst: u32, rate: u32 },
    #[error(
        "rpc.read_bytes_burst ({burst}) must be at least rpc.body_bytes_max ({body}), or the largest request could never be read"
    )]
    ReadBurst { burst: u32, body: u32 },
    #[error(
        "rpc.response_bytes_max ({got}) must be at least {min}, so that one transaction, receipt or event always fits in an answer"
    )]
    ResponseTooSmall { got: u32, min: u32 },
    #[error(
        "rpc.ws_ping_interval_ms ({ping}) must be below rpc.idle_timeout_ms ({idle}), or live WebSocket clients would be closed as idle"
    )]
    PingInterval { ping: u64, idle: u64 },
    #[error("rpc.cors_origins entry {0:?} is not \"*\" or an http(s) origin")]
    CorsOrigin(String),
    #[error(
        "rpc.proxy_protocol is on but rpc.trusted_proxies is empty: list the load balancers whose PROXY headers to read"
    )]
    ProxyProtocolWithoutProxies,
}

impl RpcConfig {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), RpcConfigError> {
        let positive = [
            ("body_bytes_max", u64::from(self.body_bytes_max)),
            ("response_bytes_max", u64::from(self.response_bytes_max)),
            ("connections_max", u64::from(self.connections_max)),
            (
                "connections_per_ip_max",
                u64::from(self.connections_per_ip_max),
            ),
            ("request_header_timeout_ms", self.request_header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("ws_ping_interval_ms", self.ws_ping_interval_ms),
            (
                "subscriptions_per_connection_max",
                u64::from(self.subscriptions_per_connection_max),
            ),
            ("rate_per_ip_per_s", u64::from(self.rate_per_ip_per_s)),
            ("rate_ips_max", self.rate_ips_max as u64),
            ("view_gas_max", self.view_gas_max),
            ("exec_timeout_ms", self.exec_timeout_ms),
            ("exec_threads", self.exec_threads as u64),
            ("exec_queue_max", self.exec_queue_max as u64),
            ("read_threads", self.read_threads as u64),
            ("admit_threads", self.admit_threads as u64),
            ("read_queue_max", self.read_queue_max as u64),
            (
                "ws_buffer_messages_max",
                u64::from(self.ws_buffer_messages_max),
            ),
            (
                "subscription_backlog_bytes_max",
                self.subscription_backlog_bytes_max as u64,
            ),
            (
                "subscription_lag_blocks_max",
                self.subscription_lag_blocks_max,
            ),
            (
                "wait_for_receipt_timeout_ms_max",
                self.wait_for_receipt_timeout_ms_max,
            ),
            (
                "list_storage_limit_max",
                u64::from(self.list_storage_limit_max),
            ),
            ("events_blocks_max", self.events_blocks_max),
            ("events_limit_max", u64::from(self.events_limit_max)),
            (
                "read_bytes_per_ip_per_s",
                u64::from(self.read_bytes_per_ip_per_s),
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(RpcConfigError::NotPositive { field });
            }
        }
        if self.rate_burst < self.rate_per_ip_per_s {
            return Err(RpcConfigError::Burst {
                burst: self.rate_burst,
                rate: self.rate_per_ip_per_s,
            });
        }
        if self.response_bytes_max < RESPONSE_BYTES_MIN {
            return Err(RpcConfigError::ResponseTooSmall {
                got: self.response_bytes_max,
                min: RESPONSE_BYTES_MIN,
            });
        }
        if self.read_bytes_burst < self.body_bytes_max {
            return Err(RpcConfigError::ReadBurst {
                burst: self.read_bytes_burst,
                body: self.body_bytes_max,
            });
        }
        if self.ws_ping_interval_ms >= self.idle_timeout_ms {
            return Err(RpcConfigError::PingInterval {
                ping: self.ws_ping_interval_ms,
                idle: self.idle_timeout_ms,
            });
        }
        if self.proxy_protocol && self.trusted_proxies.is_empty() {
            return Err(RpcConfigError::ProxyProtocolWithoutProxies);
        }
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/'));
            if !ok {
                return Err(RpcConfigError::CorsOrigin(origin.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_partial_tables_fill_in() {
        RpcConfig::default()
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        let c: RpcConfig = toml::from_str("listen = \"0.0.0.0:9000\"\nbatch_max = 0")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.batch_max, 0);
        assert_eq!(c.rate_burst, RpcConfig::default().rate_burst);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(toml::from_str::<RpcConfig>("listen_addr = \"0.0.0.0:1\"").is_err());
        let c = RpcConfig {
            exec_threads: 0,
            ..RpcConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(RpcConfigError::NotPositive {
                field: "exec_threads"
            })
        );
        let c = RpcConfig {
            response_bytes_max: 1 << 20,
            ..RpcConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(RpcConfigError::ResponseTooSmall { .. })
        ));
        let c = RpcConfig {
            cors_origins: vec!["example.com".into()],
            ..RpcConfig::default()
        };
        assert!(matches!(c.validate(), Err(RpcConfigError::CorsOrigin(_))));
        let c = RpcConfig {
            proxy_protocol: true,
            ..RpcConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(RpcConfigError::ProxyProtocolWithoutProxies)
        );
        let c: RpcConfig =
            toml::from_str("trusted_proxies = [\"10.0.0.5\"]\nproxy_protocol = true")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.validate(), Ok(()));
    }
}
