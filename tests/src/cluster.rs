//! A cluster of real `stele-node` processes started from a folder written by
//! `stele-node testnet`, every validator-to-validator link going through a
//! [`Relay`] the test controls.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use stele_client::Client;
use stele_client::api::StatusInfo;
use stele_node::genesis::Genesis;
use stele_types::{Address, Amount, SecretKey};

use crate::relay::{LinkRule, Relay};

/// How to build and run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `stele-node` binary.
    pub node_bin: PathBuf,
    pub validators: usize,
    /// Funded dev accounts written to `accounts.json`.
    pub accounts: usize,
    pub view_timeout_ms: u64,
    pub view_timeout_max_ms: u64,
    /// `None` leaves the node's default.
    pub block_interval_ms: Option<u64>,
    pub empty_block_interval_ms: u64,
    /// Most blocks proposed and not yet committed.
    pub pipeline_blocks: u64,
    /// The nodes' `tracing` filter.
    pub log_level: String,
    /// RPC requests per second allowed from one IP (every client is on
    /// loopback, so this is the whole test's budget per node).
    pub rpc_rate_per_s: u32,
    /// Keep the folder after the cluster is dropped (for a look by hand).
    pub keep_dir: bool,
    /// Route validator links through relays (needed for link faults; a
    /// benchmark turns them off to spare the CPU).
    pub relays: bool,
    /// Serve each node's Prometheus metrics on a loopback port
    /// ([`Cluster::metrics_addr`]).
    pub metrics: bool,
    /// Every client is on 127.0.0.1, so lift the per-IP connection and
    /// read-byte caps to whole-node sizes. The adversarial suite turns this
    /// off: its clients connect from addresses of their own.
    pub loopback_is_one_client: bool,
    /// `[mempool] bytes_max`; `None` leaves the node's default.
    pub mempool_bytes_max: Option<u64>,
    /// More `[rpc]` keys for every node (e.g. `trusted_proxies`), written
    /// after the harness's own, which they override.
    pub rpc_extra: toml::Table,
    /// More `[storage]` keys for every node (e.g. snapshot settings).
    pub storage_extra: toml::Table,
    /// Full nodes beside the validators: nodes `validators..validators +
    /// full_nodes` ([`Cluster::full_node`]), peers of every validator, on
    /// direct links (no relays).
    pub full_nodes: usize,
    /// CPUs (a `taskset -c` list, e.g. `"0"`) the validators, and the full
    /// nodes, may run on; `None` leaves them to the scheduler. A benchmark
    /// on one machine gives each role its own cores this way, as separate
    /// machines would.
    pub validator_cpus: Option<String>,
    pub full_node_cpus: Option<String>,
    /// Validators on hosts of their own (`stele-node testnet --hosts`)
    /// instead of loopback ports behind relays; `None` keeps loopback.
    pub hosts: Option<HostsConfig>,
    /// A command each node runs under, by node index (e.g. `["ip",
    /// "netns", "exec", "stele-h0"]` to run node 0 in a network
    /// namespace); a missing or empty one runs the node directly. It must
    /// exec the node (as `ip netns exec` and `taskset` do), so that the
    /// child's pid is the node's.
    pub command_prefix: Vec<Vec<String>>,
}

/// A cluster whose validators are on hosts of their own, one per address,
/// as `stele-node testnet --hosts` writes them: no relays (links cannot
/// be faulted), no full nodes, no metrics, the ports fixed.
#[derive(Debug, Clone)]
pub struct HostsConfig {
    /// Validator `i`'s host: its peers reach it at `addrs[i]:base_port`,
    /// and the harness's clients its RPC at `addrs[i]:base_port + 1`.
    pub addrs: Vec<IpAddr>,
    pub base_port: u16,
    /// `--bind-hosts`: each node binds its own address (hosts that are
    /// addresses of this machine). Otherwise `--rpc-public`: each binds
    /// every interface, as on a host (or network namespace) of its own.
    pub bind_hosts: bool,
}

impl ClusterConfig {
    pub fn new(node_bin: impl Into<PathBuf>, validators: usize) -> Self {
        ClusterConfig {
            node_bin: node_bin.into(),
            validators,
            accounts: 8,
            view_timeout_ms: 1_000,
            view_timeout_max_ms: 8_000,
            block_interval_ms: Some(20),
            empty_block_interval_ms: 300,
            pipeline_blocks: 1,
            // `STELE_CLUSTER_LOG` (a `tracing` filter) to look closer.
            log_level: std::env::var("STELE_CLUSTER_LOG").unwrap_or_else(|_| "info".into()),
            rpc_rate_per_s: 100_000,
            keep_dir: false,
            relays: true,
            metrics: false,
            loopback_is_one_client: true,
            mempool_bytes_max: None,
            rpc_extra: toml::Table::new(),
            storage_extra: toml::Table::new(),
            full_nodes: 0,
            validator_cpus: None,
            full_node_cpus: None,
            hosts: None,
            command_prefix: Vec::new(),
        }
    }
}

/// A dev account from `accounts.json`.
#[derive(Debug, Clone)]
pub struct DevAccount {
    pub address: Address,
    pub key: SecretKey,
}

/// The nodes a client may send to now, shared with load generators. A
/// node added to the cluster while the load runs joins them.
#[derive(Debug)]
pub struct Endpoints {
    nodes: RwLock<Vec<Endpoint>>,
}

#[derive(Debug)]
struct Endpoint {
    addr: SocketAddr,
    client: Arc<Client>,
    up: AtomicBool,
}

impl Endpoints {
    /// Nodes at these RPC addresses, all up.
    pub fn new(nodes: Vec<(SocketAddr, Client)>) -> Endpoints {
        Endpoints {
            nodes: RwLock::new(
                nodes
                    .into_iter()
                    .map(|(addr, client)| Endpoint {
                        addr,
                        client: Arc::new(client),
                        up: AtomicBool::new(true),
                    })
                    .collect(),
            ),
        }
    }

    /// Indexes of the nodes taking requests now.
    pub fn up(&self) -> Vec<usize> {
        let nodes = self.read();
        (0..nodes.len())
            .filter(|i| nodes[*i].up.load(Ordering::Relaxed))
            .collect()
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.read()
            .get(i)
            .is_some_and(|e| e.up.load(Ordering::Relaxed))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Endpoint>> {
        self.nodes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Endpoint>> {
        self.nodes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn client(&self, i: usize) -> Option<Arc<Client>> {
        self.read().get(i).map(|e| e.client.clone())
    }

    pub fn rpc_addr(&self, i: usize) -> Option<SocketAddr> {
        self.read().get(i).map(|e| e.addr)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn set_up(&self, i: usize, up: bool) {
        if let Some(e) = self.read().get(i) {
            e.up.store(up, Ordering::Relaxed);
        }
    }

    fn set_client(&self, i: usize, addr: SocketAddr, client: Client) {
        let mut nodes = self.write();
        let up = nodes[i].up.load(Ordering::Relaxed);
        nodes[i] = Endpoint {
            addr,
            client: Arc::new(client),
            up: AtomicBool::new(up),
        };
    }

    /// A node added to the cluster, down until it answers.
    fn push(&self, addr: SocketAddr, client: Client) {
        self.write().push(Endpoint {
            addr,
            client: Arc::new(client),
            up: AtomicBool::new(false),
        });
    }
}

#[derive(Debug)]
struct NodeProc {
    home: PathBuf,
    log: PathBuf,
    p2p: SocketAddr,
    rpc: SocketAddr,
    metrics: SocketAddr,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

impl NodeProc {
    /// A node of `home` not started yet, on fresh loopback ports, logging
    /// to `log`.
    fn new(home: PathBuf, log: PathBuf) -> Result<NodeProc> {
        Ok(NodeProc {
            log,
            home,
            p2p: loopback(free_port()?),
            rpc: loopback(free_port()?),
            metrics: loopback(free_port()?),
            child: None,
            paused: false,
            starts: 0,
        })
    }
}

/// Running validators and their links. Every child process is killed when
/// the cluster is dropped, also when a test panics; the node logs' tails are
/// printed then.
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    nodes: Vec<NodeProc>,
    /// `(i, j)`: the relay node `i` uses to reach node `j`.
    relays: BTreeMap<(usize, usize), Relay>,
    /// The genesis validators' addresses, by node index (the genesis set's
    /// order).
    pub validators: Vec<Address>,
    /// Every node's key address, by node index: the validators', then the
    /// full nodes', then those of nodes added later.
    addresses: Vec<Address>,
    pub accounts: Vec<DevAccount>,
    pub chain_id: u64,
    /// Every genesis allocation.
    pub allocations: Vec<(Address, Amount)>,
    endpoints: Arc<Endpoints>,
}

/// Ports handed out by this process, never handed out twice.
static PORTS_GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port free for both UDP and TCP right now, never returned
/// before by this process. Another process may still take it before the
/// node binds it; [`Cluster`] retries with new ports when a node cannot
/// bind.
pub fn free_port() -> Result<u16> {
    for _ in 0..1000 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = PORTS_GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if given.insert(port) {
            return Ok(port);
        }
    }
    bail!("no free loopback port found")
}

/// A port `p` with `p` and `p + 1` free for UDP and TCP on every address
/// of `ips` right now (for [`HostsConfig::base_port`] on addresses of
/// this machine), never returned before by this process.
pub fn free_port_pair(ips: &[IpAddr]) -> Result<u16> {
    let free_on = |ip: IpAddr, port: u16| {
        TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok()
    };
    for _ in 0..1000 {
        let port = free_port()?;
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if ips
            .iter()
            .all(|ip| free_on(*ip, port) && free_on(*ip, next))
        {
            let mut given = PORTS_GIVEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if given.insert(next) {
                return Ok(port);
            }
        }
    }
    bail!("no free port pair found on {ips:?}")
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn http_client(rpc: SocketAddr) -> Result<Client> {
    Client::connect(&format!("http://{rpc}"))
        .await
        .map_err(|e| anyhow!("client for {rpc}: {e}"))
}

/// The address of the key in `home`'s `node_key.json`.
fn key_address(home: &Path) -> Result<Address> {
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("node_key.json"))?)?;
    Ok(serde_json::from_value(key["address"].clone())?)
}

fn parse_hex_key(s: &str) -> Result<SecretKey> {
    let bytes = stele_types::hex::decode_array::<32>(s).map_err(|e| anyhow!("bad key: {e:?}"))?;
    SecretKey::from_bytes(&bytes).map_err(|e| anyhow!("bad key: {e}"))
}

impl Cluster {
    /// Writes a testnet with `stele-node testnet`, puts a relay on every
    /// link, starts every validator and waits until each serves RPC.
    pub async fn start(config: ClusterConfig) -> Result<Cluster> {
        let n = config.validators;
        ensure!(n >= 1, "a cluster needs a validator");
        let dir = tempfile::Builder::new()
            .prefix("stele-cluster-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let net = root.join("net");
        let mut testnet = Command::new(&config.node_bin);
        testnet
            .arg("testnet")
            .arg("--validators")
            .arg(n.to_string())
            .arg("--output")
            .arg(&net)
            .arg("--accounts")
            .arg(config.accounts.to_string())
            .arg("--full-nodes")
            .arg(config.full_nodes.to_string());
        match &config.hosts {
            Some(hosts) => {
                ensure!(
                    hosts.addrs.len() == n,
                    "{} hosts for {n} validators",
                    hosts.addrs.len()
                );
                ensure!(
                    config.full_nodes == 0 && !config.metrics,
                    "a cluster on hosts has no full nodes and no metrics"
                );
                let list: Vec<String> = hosts.addrs.iter().map(IpAddr::to_string).collect();
                testnet
                    .arg("--base-port")
                    .arg(hosts.base_port.to_string())
                    .arg("--hosts")
                    .arg(list.join(","))
                    .arg(if hosts.bind_hosts {
                        "--bind-hosts"
                    } else {
                        "--rpc-public"
                    });
            }
            None => {
                testnet.arg("--base-port").arg("20000");
            }
        }
        let out = testnet
            .output()
            .with_context(|| format!("cannot run {}", config.node_bin.display()))?;
        ensure!(
            out.status.success(),
            "stele-node testnet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let genesis: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            net.join("node0").join("genesis.json"),
        )?)?;
        let chain_id = genesis["chain_id"]
            .as_u64()
            .context("genesis without chain_id")?;
        let validators: Vec<Address> = genesis["validators"]
            .as_array()
            .context("genesis without validators")?
            .iter()
            .map(|v| serde_json::from_value(v["address"].clone()))
            .collect::<Result<_, _>>()?;
        ensure!(
            validators.len() == n,
            "genesis has {} validators",
            validators.len()
        );
        let allocations: Vec<(Address, Amount)> = genesis["allocations"]
            .as_array()
            .context("genesis without allocations")?
            .iter()
            .map(|a| -> Result<(Address, Amount)> {
                let address = serde_json::from_value(a["address"].clone())?;
                let balance = match &a["balance"] {
                    serde_json::Value::String(s) => s.parse()?,
                    v => v.as_u64().context("bad balance")?.into(),
                };
                Ok((address, balance))
            })
            .collect::<Result<_>>()?;
        let accounts_json: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(net.join("accounts.json"))?)?;
        let accounts = accounts_json
            .iter()
            .map(|a| -> Result<DevAccount> {
                let key = parse_hex_key(a["secret_key"].as_str().context("no secret_key")?)?;
                Ok(DevAccount {
                    address: key.address(),
                    key,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut nodes = Vec::with_capacity(n);
        for (i, validator) in validators.iter().enumerate() {
            let home = net.join(format!("node{i}"));
            // Node i of the folder must hold validator i's key: the relays
            // and the primary computation depend on it.
            let address = key_address(&home)?;
            ensure!(
                address == *validator,
                "node{i} holds {address}, validator {i} is {validator}"
            );
            let mut node = NodeProc::new(home, root.join(format!("node{i}.log")))?;
            if let Some(hosts) = &config.hosts {
                // Where `testnet --hosts` put it; its config stays as written.
                let rpc_port = hosts
                    .base_port
                    .checked_add(1)
                    .context("base port too high")?;
                node.p2p = SocketAddr::new(hosts.addrs[i], hosts.base_port);
                node.rpc = SocketAddr::new(hosts.addrs[i], rpc_port);
            }
            nodes.push(node);
        }
        let mut addresses = validators.clone();
        for j in 0..config.full_nodes {
            let home = net.join(format!("full{j}"));
            addresses.push(key_address(&home)?);
            nodes.push(NodeProc::new(home, root.join(format!("full{j}.log")))?);
        }
        let mut relays = BTreeMap::new();
        for i in 0..n {
            for (j, target) in nodes.iter().enumerate().take(n) {
                if i != j && config.relays && config.hosts.is_none() {
                    let seed = (i * 1000 + j) as u64 + 1;
                    relays.insert((i, j), Relay::start(target.p2p, seed).await?);
                }
            }
        }
        let mut clients = Vec::with_capacity(nodes.len());
        for p in &nodes {
            clients.push((p.rpc, http_client(p.rpc).await?));
        }
        let endpoints = Arc::new(Endpoints::new(clients));
        for i in 0..nodes.len() {
            endpoints.set_up(i, false);
        }
        let mut cluster = Cluster {
            config,
            dir: Some(dir),
            root,
            nodes,
            relays,
            validators,
            addresses,
            accounts,
            chain_id,
            allocations,
            endpoints,
        };
        if cluster.config.keep_dir
            && let Some(d) = cluster.dir.take()
        {
            let _ = d.keep();
        }
        for i in 0..cluster.len() {
            cluster.write_config(i)?;
            cluster.spawn(i)?;
        }
        for i in 0..cluster.len() {
            if let Err(e) = cluster.wait_ready(i).await {
                return Err(e.context(cluster.log_tails(40)));
            }
        }
        Ok(cluster)
    }

    /// Nodes: validators, then full nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The node index of full node `j`.
    pub fn full_node(&self, j: usize) -> usize {
        self.validators.len() + j
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The folder holding the testnet and the node logs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The nodes clients may use now (shared with load generators).
    pub fn endpoints(&self) -> Arc<Endpoints> {
        self.endpoints.clone()
    }

    pub fn rpc_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].rpc
    }

    /// Node `i`'s QUIC address (where its peers dial it, relays aside).
    pub fn p2p_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].p2p
    }

    /// Where node `i` serves its metrics, if the cluster was configured to
    /// ([`ClusterConfig::metrics`]).
    pub fn metrics_addr(&self, i: usize) -> Option<SocketAddr> {
        self.config.metrics.then_some(self.nodes[i].metrics)
    }

    pub fn rpc_url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].rpc)
    }

    pub fn client(&self, i: usize) -> Arc<Client> {
        // Indexes are checked by the caller's loop bounds.
        self.endpoints
            .client(i)
            .unwrap_or_else(|| panic!("no node {i}"))
    }

    /// The genesis supply: the sum of the allocations.
    pub fn genesis_supply(&self) -> Amount {
        self.allocations.iter().map(|(_, b)| *b).sum()
    }

    /// The chain's genesis, as every node holds it.
    pub fn genesis(&self) -> Result<Genesis> {
        let path = self.root.join("net").join("node0").join("genesis.json");
        Genesis::load(&path).with_context(|| path.display().to_string())
    }

    /// Every node's key address, by node index: the genesis validators',
    /// the full nodes', then the nodes added since
    /// ([`Cluster::add_validator_node`]).
    pub fn node_addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// Node `i`'s key, from its home.
    pub fn node_key(&self, i: usize) -> Result<SecretKey> {
        let path = self.nodes[i].home.join("node_key.json");
        let key: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        parse_hex_key(
            key["secret_key"]
                .as_str()
                .with_context(|| format!("{} has no secret_key", path.display()))?,
        )
    }

    /// Starts a node whose home `stele-node init --genesis` writes, as an
    /// operator joining the chain would: a validator by role with a key of
    /// its own that is in no set yet, so it follows the chain until a vote
    /// of the validators makes it one (ADR 0010). It dials every node of
    /// `peers` directly (its links have no relays), serves RPC on a
    /// loopback port, and joins [`Cluster::endpoints`] once it answers.
    /// Returns its index.
    pub async fn add_validator_node(&mut self, peers: &[usize]) -> Result<usize> {
        ensure!(
            self.config.hosts.is_none(),
            "nodes are added only to a loopback cluster"
        );
        let i = self.nodes.len();
        let home = self.root.join("net").join(format!("added{i}"));
        let node = NodeProc::new(home.clone(), self.root.join(format!("added{i}.log")))?;
        let mut init = Command::new(&self.config.node_bin);
        init.arg("init")
            .arg("--home")
            .arg(&home)
            .arg("--genesis")
            .arg(self.root.join("net").join("node0").join("genesis.json"))
            .arg("--p2p")
            .arg(node.p2p.to_string())
            .arg("--rpc")
            .arg(node.rpc.to_string());
        for &j in peers {
            ensure!(j < self.nodes.len(), "no node {j} to peer with");
            init.arg("--peer")
                .arg(format!("{}@{}", self.addresses[j], self.nodes[j].p2p));
        }
        let out = init.output().context("cannot run stele-node init")?;
        ensure!(
            out.status.success(),
            "stele-node init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let address = key_address(&home)?;
        self.endpoints.push(node.rpc, http_client(node.rpc).await?);
        self.nodes.push(node);
        self.addresses.push(address);
        self.write_config(i)?;
        self.spawn(i)?;
        if let Err(e) = self.wait_ready(i).await {
            return Err(e.context(self.log_tail(i, 40)));
        }
        Ok(i)
    }

    /// Whether node `i`'s process runs (paused counts as running).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused
    }

    /// Nodes whose process runs and is not paused.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|i| self.is_running(*i) && !self.is_paused(*i))
            .collect()
    }

    fn write_config(&self, i: usize) -> Result<()> {
        let path = self.nodes[i].home.join("config.toml");
        let text = std::fs::read_to_string(&path)?;
        let mut doc: toml::Table = text.parse().with_context(|| path.display().to_string())?;
        let c = &self.config;
        let p2p = doc
            .get_mut("p2p")
            .and_then(toml::Value::as_table_mut)
            .context("config.toml without [p2p]")?;
        // On hosts, the addresses are the ones `testnet --hosts` wrote.
        let on_hosts = c.hosts.is_some();
        if !on_hosts {
            p2p.insert("listen".into(), self.nodes[i].p2p.to_string().into());
        }
        if let Some(peers) = p2p
            .get_mut("peers")
            .and_then(toml::Value::as_array_mut)
            .filter(|_| !on_hosts)
        {
            for peer in peers {
                let peer = peer.as_table_mut().context("peer entry not a table")?;
                let address: Address = peer
                    .get("address")
                    .and_then(toml::Value::as_str)
                    .context("peer without address")?
                    .parse()
                    .map_err(|e| anyhow!("peer address: {e:?}"))?;
                let j = self
                    .addresses
                    .iter()
                    .position(|v| *v == address)
                    .context("peer is none of the cluster's nodes")?;
                let endpoint = match self.relays.get(&(i, j)) {
                    Some(relay) => relay.front_addr(),
                    None => self.nodes[j].p2p,
                };
                peer.insert("endpoint".into(), endpoint.to_string().into());
            }
        }
        let rpc = doc
            .entry("rpc")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[rpc] not a table")?;
        if !on_hosts {
            rpc.insert("listen".into(), self.nodes[i].rpc.to_string().into());
        }
        rpc.insert(
            "rate_per_ip_per_s".into(),
            i64::from(c.rpc_rate_per_s).into(),
        );
        rpc.insert(
            "rate_burst".into(),
            (2 * i64::from(c.rpc_rate_per_s)).into(),
        );
        if c.loopback_is_one_client {
            rpc.insert("connections_max".into(), 4096.into());
            if rpc.contains_key("connections_per_ip_max") {
                rpc.insert("connections_per_ip_max".into(), 4096.into());
            }
            if rpc.contains_key("read_bytes_per_ip_per_s") {
                rpc.insert("read_bytes_per_ip_per_s".into(), (256i64 << 20).into());
                rpc.insert("read_bytes_burst".into(), (512i64 << 20).into());
            }
        }
        for (k, v) in &c.rpc_extra {
            rpc.insert(k.clone(), v.clone());
        }
        if !c.storage_extra.is_empty() {
            let storage = doc
                .entry("storage")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .context("[storage] not a table")?;
            for (k, v) in &c.storage_extra {
                storage.insert(k.clone(), v.clone());
            }
        }
        if let Some(bytes) = c.mempool_bytes_max {
            let mempool = doc
                .entry("mempool")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .context("[mempool] not a table")?;
            mempool.insert("bytes_max".into(), i64::try_from(bytes)?.into());
        }
        let consensus = doc
            .entry("consensus")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[consensus] not a table")?;
        for (k, v) in [
            ("view_timeout_ms", Some(c.view_timeout_ms)),
            ("view_timeout_max_ms", Some(c.view_timeout_max_ms)),
            ("block_interval_ms", c.block_interval_ms),
            ("empty_block_interval_ms", Some(c.empty_block_interval_ms)),
            ("pipeline_blocks", Some(c.pipeline_blocks)),
        ] {
            if let Some(v) = v {
                consensus.insert(k.into(), i64::try_from(v)?.into());
            }
        }
        if c.metrics {
            let metrics = doc
                .entry("metrics")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .context("[metrics] not a table")?;
            metrics.insert("listen".into(), self.nodes[i].metrics.to_string().into());
        }
        let log = doc
            .entry("log")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .context("[log] not a table")?;
        log.insert("level".into(), c.log_level.clone().into());
        std::fs::write(&path, toml::to_string(&doc)?)?;
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let validators = self.validators.len();
        let node = &mut self.nodes[i];
        ensure!(node.child.is_none(), "node {i} already runs");
        node.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        writeln!(
            log,
            "=== harness: start #{} (p2p {}, rpc {}) ===",
            node.starts, node.p2p, node.rpc
        )?;
        let cpus = if i < validators {
            &self.config.validator_cpus
        } else {
            &self.config.full_node_cpus
        };
        // The prefix and `taskset` exec the node: the child's pid is the
        // node's.
        let mut argv: Vec<std::ffi::OsString> = self
            .config
            .command_prefix
            .get(i)
            .into_iter()
            .flatten()
            .map(Into::into)
            .collect();
        if let Some(cpus) = cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        argv.push(self.config.node_bin.clone().into_os_string());
        let (program, args) = argv.split_first().context("no command to run")?;
        let child = Command::new(program)
            .args(args)
            .arg("start")
            .arg("--home")
            .arg(&node.home)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {argv:?}"))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Waits until node `i` answers RPC. If it exited because a port was
    /// taken meanwhile, picks new ports and starts it again.
    async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rebinds = 0;
        loop {
            if let Some(status) = self.try_wait(i)? {
                let tail = self.log_tail(i, 20);
                let port_taken = tail.contains("cannot bind")
                    || tail.contains("Address already in use")
                    || tail.contains("address in use");
                // On hosts the ports are fixed: a clash is the test's to report.
                if port_taken && rebinds < 5 && self.config.hosts.is_none() {
                    rebinds += 1;
                    self.rebind(i).await?;
                    self.spawn(i)?;
                    continue;
                }
                bail!("node {i} exited at start-up ({status})");
            }
            let client = self.client(i);
            // A node joining by snapshot answers its status alone: it is
            // not started yet.
            if let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(2), client.get_status()).await
                && status.phase != stele_client::api::SyncPhase::Snapshot
            {
                self.endpoints.set_up(i, true);
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("node {i} does not answer RPC at {}", self.nodes[i].rpc);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn rebind(&mut self, i: usize) -> Result<()> {
        self.nodes[i].p2p = loopback(free_port()?);
        self.nodes[i].rpc = loopback(free_port()?);
        self.nodes[i].metrics = loopback(free_port()?);
        for ((_, j), relay) in &self.relays {
            if *j == i {
                relay.set_target(self.nodes[i].p2p);
            }
        }
        let client = http_client(self.nodes[i].rpc).await?;
        self.endpoints.set_client(i, self.nodes[i].rpc, client);
        self.write_config(i)
    }

    fn try_wait(&mut self, i: usize) -> Result<Option<ExitStatus>> {
        let node = &mut self.nodes[i];
        let Some(child) = node.child.as_mut() else {
            bail!("node {i} is not running");
        };
        match child.try_wait()? {
            Some(status) => {
                node.child = None;
                self.endpoints.set_up(i, false);
                Ok(Some(status))
            }
            None => Ok(None),
        }
    }

    /// Node `i`'s process id while it runs.
    pub fn pid(&self, i: usize) -> Result<Pid> {
        let child = self.nodes[i]
            .child
            .as_ref()
            .with_context(|| format!("node {i} is not running"))?;
        Ok(Pid::from_raw(i32::try_from(child.id())?))
    }

    /// SIGKILL: the node dies at once, mid-write if it was writing.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        self.endpoints.set_up(i, false);
        let node = &mut self.nodes[i];
        let mut child = node
            .child
            .take()
            .with_context(|| format!("node {i} is not running"))?;
        child.kill()?;
        child.wait()?;
        node.paused = false;
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub async fn stop(&mut self, i: usize) -> Result<()> {
        self.endpoints.set_up(i, false);
        if self.nodes[i].paused {
            self.resume(i)?;
            self.endpoints.set_up(i, false);
        }
        kill(self.pid(i)?, Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.try_wait(i)? {
                ensure!(status.success(), "node {i} stopped with {status}");
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill(i)?;
                bail!("node {i} did not stop within 30 s of SIGTERM; killed it");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts node `i` again (after kill or stop) from its data dir and
    /// returns at once (its RPC may not answer yet).
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        self.spawn(i)
    }

    /// Starts node `i` again (after kill or stop) from its data dir and
    /// waits until it serves RPC.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// SIGSTOP: the process freezes; its sockets stay open.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.endpoints.set_up(i, false);
        kill(self.pid(i)?, Signal::SIGSTOP)?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self, i: usize) -> Result<()> {
        kill(self.pid(i)?, Signal::SIGCONT)?;
        self.nodes[i].paused = false;
        self.endpoints.set_up(i, true);
        Ok(())
    }

    /// Deletes node `i`'s chain data (it must not be running): it rejoins
    /// by block sync from genesis.
    pub fn wipe(&mut self, i: usize) -> Result<()> {
        ensure!(!self.is_running(i), "wipe node {i} only while it is down");
        let data = self.nodes[i].home.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        Ok(())
    }

    /// The relay node `from` uses to reach node `to`. Panics if the
    /// cluster runs without relays.
    pub fn link(&self, from: usize, to: usize) -> &Relay {
        &self.relays[&(from, to)]
    }

    /// Sets the rule of both relays between `a` and `b`.
    pub fn set_link(&self, a: usize, b: usize, rule: LinkRule) {
        self.link(a, b).set_rule(rule);
        self.link(b, a).set_rule(rule);
    }

    /// Cuts every link between a node of `side` and a node outside it.
    pub fn partition(&self, side: &[usize]) {
        for a in side {
            for b in 0..self.len() {
                if !side.contains(&b) {
                    self.set_link(*a, b, LinkRule::CUT);
                }
            }
        }
    }

    /// Every link passes again.
    pub fn heal(&self) {
        for relay in self.relays.values() {
            relay.set_rule(LinkRule::PASS);
        }
    }

    /// Applies `rule` to every link.
    pub fn set_all_links(&self, rule: LinkRule) {
        for relay in self.relays.values() {
            relay.set_rule(rule);
        }
    }

    /// Node `i`'s status, with a short timeout.
    pub async fn status(&self, i: usize) -> Result<StatusInfo> {
        let client = self.client(i);
        match tokio::time::timeout(Duration::from_secs(5), client.get_status()).await {
            Ok(r) => r.map_err(|e| anyhow!("node {i} status: {e}")),
            Err(_) => bail!("node {i} status timed out"),
        }
    }

    /// The view most running nodes are in (the higher one on a tie). A
    /// node that moved to a higher view alone (its timer fired just as its
    /// peers connected) has no say in who leads.
    pub async fn leading_view(&self) -> Result<u64> {
        let mut views: std::collections::BTreeMap<u64, usize> = Default::default();
        for i in self.running() {
            if let Ok(s) = self.status(i).await {
                *views.entry(s.view).or_default() += 1;
            }
        }
        let (view, _) = views
            .into_iter()
            .max_by_key(|&(view, count)| (count, view))
            .context("no node answers")?;
        Ok(view)
    }

    /// The primary as the running nodes see it: the genesis validator of
    /// the leading view (view `v`'s primary is `v mod n`). Only while the
    /// genesis set validates.
    pub async fn primary(&self) -> Result<usize> {
        let view = self.leading_view().await?;
        Ok((view % self.validators.len() as u64) as usize)
    }

    /// Waits until every node in `nodes` is in a view above `view`.
    pub async fn wait_view_above(
        &self,
        nodes: &[usize],
        view: u64,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut behind = Vec::new();
            for &i in nodes {
                match self.status(i).await {
                    Ok(s) if s.view > view => {}
                    Ok(s) => behind.push(format!("node {i} in view {}", s.view)),
                    Err(e) => behind.push(e.to_string()),
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no view above {view} within {timeout:?}: {}",
                    behind.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node in `nodes` has committed `height`.
    pub async fn wait_height(&self, nodes: &[usize], height: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut behind = Vec::new();
            for &i in nodes {
                match self.status(i).await {
                    Ok(s) if s.height >= height => {}
                    Ok(s) => behind.push(format!("node {i} at {}", s.height)),
                    Err(e) => behind.push(e.to_string()),
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "height {height} not reached within {timeout:?}: {}",
                    behind.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The highest height any of `nodes` reports.
    pub async fn max_height(&self, nodes: &[usize]) -> Result<u64> {
        let mut best = None;
        for &i in nodes {
            if let Ok(s) = self.status(i).await {
                best = best.max(Some(s.height));
            }
        }
        best.context("no node answers")
    }

    /// Waits until every node in `nodes` commits a block above the highest
    /// height any of them has now: the cluster makes progress.
    pub async fn wait_progress(&self, nodes: &[usize], timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let h = self.max_height(nodes).await?;
        self.wait_height(nodes, h + 1, timeout)
            .await
            .context("no progress")?;
        Ok(start.elapsed())
    }

    /// Waits until every node in `nodes` reports the same height (the
    /// cluster may keep committing empty blocks, so this retries).
    pub async fn wait_converged(&self, nodes: &[usize], timeout: Duration) -> Result<u64> {
        let top = self.max_height(nodes).await?;
        self.wait_height(nodes, top, timeout).await?;
        Ok(top)
    }

    /// The last `lines` lines of node `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail_of(&self.nodes[i].log, lines)
    }

    /// The tails of every node's log, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = format!("cluster folder: {}\n", self.root.display());
        for i in 0..self.len() {
            out.push_str(&format!(
                "----- node {i} ({}) log tail -----\n{}\n",
                self.addresses[i],
                self.log_tail(i, lines)
            ));
        }
        out
    }

    /// Keeps the folder (logs, data dirs) after the cluster is dropped.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
        self.root.clone()
    }

    fn kill_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn tail_of(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(256 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::from("(log unreadable)");
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::from("(log unreadable)");
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes first: a panic while printing the logs below (during
        // an unwind, an abort) must not leave nodes running.
        self.kill_all();
        if std::thread::panicking() {
            let path = self.keep();
            eprintln!(
                "{}\n(kept {} for inspection)",
                self.log_tails(40),
                path.display()
            );
        }
    }
}
