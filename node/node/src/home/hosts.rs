//! A testnet across hosts (`stele-node testnet --hosts a,b,c,d`): one
//! validator per host, every one on the same ports, each home's peers at
//! the other hosts. The homes are written in one place and copied to their
//! hosts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use super::{
    HomeError, TESTNET_VALIDATORS_MAX, Testnet, TestnetSpec, genesis_json, node_config,
    testnet_genesis, testnet_keys, write_home,
};
use crate::config::PeerEntry;
use crate::host::{Host, HostPort};

/// Where [`write_testnet_on_hosts`] puts each validator and what it binds.
#[derive(Debug, Clone)]
pub struct HostLayout {
    /// One validator per host (an IP address or a DNS name): home `node{i}`
    /// (validator `i` in address order) runs on `hosts[i]`.
    pub hosts: Vec<Host>,
    /// Each node listens for peers and RPC on its own host's address
    /// rather than on every interface: for "hosts" that are addresses of
    /// one machine (e.g. 127.0.0.11, 127.0.0.12, ...). Every host must then
    /// be an IP address.
    pub bind_hosts: bool,
    /// Serve RPC on every interface rather than on 127.0.0.1 only (a
    /// validator's RPC is best kept private: `docs/operators.md`).
    pub rpc_public: bool,
}

/// The wildcard address of `host`'s family (IPv4 for a name).
fn wildcard(host: &Host) -> IpAddr {
    match host {
        Host::Ip(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Writes the homes of one validator per host of `layout` into `out`
/// (`node0`, `node1`, ...), sharing one genesis. Every validator listens
/// for peers on `spec.base_port` (on every interface, or on its host's
/// address with `bind_hosts`) and advertises `HOST:base_port` to the
/// others; RPC is on `base_port + 1`: on 127.0.0.1, on every interface
/// with `rpc_public`, or on the host's address with `bind_hosts`.
/// `spec.validators` must be the number of hosts, and `spec.full_nodes`
/// 0. [`Testnet::rpc`] holds the addresses the RPC servers listen on.
/// Refuses to overwrite an existing home.
pub fn write_testnet_on_hosts(
    out: &Path,
    spec: &TestnetSpec,
    layout: &HostLayout,
) -> Result<Testnet, HomeError> {
    let n = layout.hosts.len();
    if n == 0 || n > TESTNET_VALIDATORS_MAX {
        return Err(HomeError(format!(
            "hosts must number 1 to {TESTNET_VALIDATORS_MAX}, not {n}"
        )));
    }
    if spec.validators != n {
        return Err(HomeError(format!(
            "{} validators asked for on {n} hosts: one validator per host",
            spec.validators
        )));
    }
    if spec.full_nodes > 0 {
        return Err(HomeError(
            "full nodes are not written with --hosts: add them with `stele-node init --full`"
                .into(),
        ));
    }
    if layout.bind_hosts && layout.rpc_public {
        return Err(HomeError(
            "with --bind-hosts RPC listens on each host's address; --rpc-public does not apply"
                .into(),
        ));
    }
    for (i, host) in layout.hosts.iter().enumerate() {
        if layout.hosts[..i].contains(host) {
            return Err(HomeError(format!(
                "host {host} is listed twice: one validator per host"
            )));
        }
        if layout.bind_hosts && host.ip().is_none() {
            return Err(HomeError(format!(
                "--bind-hosts needs IP addresses, and {host} is a name"
            )));
        }
    }
    let p2p_port = spec.base_port;
    let rpc_port = p2p_port
        .checked_add(1)
        .filter(|_| p2p_port > 0)
        .ok_or_else(|| HomeError("the base port must be in 1..=65534".into()))?;
    std::fs::create_dir_all(out).map_err(|e| HomeError::io("create", out, e))?;
    let keys = testnet_keys(n);
    let genesis = testnet_genesis(spec, &keys)?;
    let genesis_text = genesis_json(&genesis)?;
    let peers: Vec<PeerEntry> = keys
        .iter()
        .zip(&layout.hosts)
        .map(|(k, host)| PeerEntry {
            address: k.address(),
            endpoint: HostPort {
                host: host.clone(),
                port: p2p_port,
            },
        })
        .collect();
    let mut homes = Vec::with_capacity(n);
    let mut rpc = Vec::with_capacity(n);
    for (i, (k, host)) in keys.iter().zip(&layout.hosts).enumerate() {
        let (listen_ip, rpc_ip) = match host.ip() {
            Some(ip) if layout.bind_hosts => (ip, ip),
            _ if layout.rpc_public => (wildcard(host), wildcard(host)),
            _ => (wildcard(host), IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let rpc_addr = SocketAddr::new(rpc_ip, rpc_port);
        let others = peers.iter().filter(|p| p.address != k.address());
        let config = node_config(
            SocketAddr::new(listen_ip, p2p_port),
            Some(rpc_addr),
            others.cloned().collect(),
        );
        let home = out.join(format!("node{i}"));
        write_home(&home, k, &genesis_text, &config)?;
        homes.push(home);
        rpc.push(rpc_addr);
    }
    Ok(Testnet {
        genesis,
        homes,
        rpc,
        full_homes: Vec::new(),
        full_rpc: Vec::new(),
    })
}
