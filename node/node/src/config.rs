//! `config.toml`: what an operator sets. Unknown keys and bad values are
//! rejected with the line and the field named (the `toml` crate's errors
//! carry both), and relations between values are checked by
//! [`NodeConfig::validate`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stele_types::Address;
use thiserror::Error;

use crate::host::HostPort;
use crate::index::IndexConfig;
use crate::mempool::MempoolConfig;
use crate::node::{ConsensusOptions, PIPELINE_BLOCKS_MAX, Role};
use crate::rpc::RpcConfig;

/// Why a configuration file is not usable.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{field}` {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub p2p: P2pSection,
    /// The JSON-RPC server; absent means disabled.
    #[serde(default)]
    pub rpc: Option<RpcConfig>,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub mempool: MempoolSection,
    #[serde(default)]
    pub consensus: ConsensusSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// `[index]`: the optional event and storage-history indexes.
    #[serde(default)]
    pub index: IndexConfig,
}

/// State retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Most recent state versions (heights) kept readable for proofs and
    /// views at past heights; older ones are pruned.
    pub versions_kept: u64,
    /// Prune every this many blocks; 0 never prunes.
    pub prune_interval_blocks: u64,
    /// Keep the last this many blocks (and every epoch's last), with their
    /// receipts and index rows; 0 keeps every block.
    pub keep_blocks: u64,
    /// Make a state snapshot for peers every this many heights (ADR 0012);
    /// 0 makes none.
    pub snapshot_interval_blocks: u64,
    /// The newest snapshots kept.
    pub snapshots_kept: usize,
    /// Entries a snapshot chunk holds at most (1 to 4,096).
    pub snapshot_chunk_entries: usize,
    /// A new or wiped node joins by the newest snapshot its peers keep,
    /// rather than replaying every block since the genesis.
    pub snapshot_sync: bool,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            versions_kept: 10_000,
            prune_interval_blocks: 100,
            keep_blocks: 0,
            snapshot_interval_blocks: 10_000,
            snapshots_kept: 2,
            snapshot_chunk_entries: crate::snapshot::format::CHUNK_ENTRIES_TARGET,
            snapshot_sync: true,
        }
    }
}

/// Files of the node; relative paths are relative to the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// `"validator"` (the default) or `"full"` (ADR 0009).
    #[serde(default)]
    pub role: Role,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub genesis_file: PathBuf,
}

/// The peer transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    pub listen: SocketAddr,
    /// Validators (and, for a full node, other full nodes) to reach. A
    /// validator dials the validators here with a higher address than its
    /// own; a full node dials every validator here, and the full nodes
    /// with a higher address (list each other).
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// Full nodes this node takes as followers at once (see
    /// `NetConfig::followers_max`); 0 takes none.
    #[serde(default = "default_followers_max")]
    pub followers_max: usize,
    /// If not empty, the only full nodes' keys taken as followers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followers_allowed: Vec<Address>,
}

fn default_followers_max() -> usize {
    crate::net::NetConfig::default().followers_max
}

impl P2pSection {
    /// The transport's settings: the defaults, with the followers taken
    /// as this section says.
    pub fn net_config(&self) -> crate::net::NetConfig {
        crate::net::NetConfig {
            followers_max: self.followers_max,
            followers_allowed: self.followers_allowed.clone(),
            ..Default::default()
        }
    }
}

/// Another node: the address of its key and where to reach it, as
/// `HOST:PORT` with HOST an IP address or a DNS name (resolved when the
/// node starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub address: Address,
    pub endpoint: HostPort,
}

/// The Prometheus endpoint (disabled when `listen` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub listen: Option<SocketAddr>,
}

/// Most sender keys `mempool.sender_keys_max` may keep (~3 GB).
const SENDER_KEYS_MAX: usize = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    /// Most transactions held.
    pub txs_max: usize,
    /// Most encoded bytes held.
    pub bytes_max: usize,
    /// Most encoded bytes of one sender's transactions waiting behind a
    /// missing nonce (which no block can include until it arrives); more
    /// are refused with RPC error 1016. At least one largest transaction
    /// (1 MiB + 4 KiB), so any transaction may arrive out of order.
    pub sender_gapped_bytes_max: usize,
    /// A transaction still behind a missing nonce this many blocks after
    /// its admission is dropped (about 5 minutes at one block per 500 ms
    /// on an idle chain, less under load).
    pub gapped_ttl_blocks: u64,
    /// Busy senders whose prepared keys (~45 KB each) are kept, so their
    /// transactions gossiped by other validators, or submitted naming the
    /// sender, are checked in about half the time of a recovery; 0 keeps
    /// none.
    pub sender_keys_max: usize,
}

impl Default for MempoolSection {
    fn default() -> Self {
        // The chain id does not matter for these defaults.
        let d = MempoolConfig::new(0);
        MempoolSection {
            txs_max: 100_000,
            bytes_max: 256 << 20,
            sender_gapped_bytes_max: d.sender_gapped_bytes_max,
            gapped_ttl_blocks: d.gapped_ttl_blocks,
            sender_keys_max: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    /// Unset, the chain's (its protocol parameters); set, this node's own.
    pub view_timeout_ms: Option<u64>,
    pub view_timeout_max_ms: Option<u64>,
    pub block_interval_ms: u64,
    pub empty_block_interval_ms: u64,
    /// Most blocks proposed and not yet committed (1 to 4).
    pub pipeline_blocks: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        let d = ConsensusOptions::default();
        ConsensusSection {
            view_timeout_ms: d.view_timeout_ms,
            view_timeout_max_ms: d.view_timeout_max_ms,
            block_interval_ms: d.block_interval_ms,
            empty_block_interval_ms: d.empty_block_interval_ms,
            pipeline_blocks: d.pipeline_blocks,
        }
    }
}

impl ConsensusSection {
    pub fn options(&self) -> ConsensusOptions {
        ConsensusOptions {
            view_timeout_ms: self.view_timeout_ms,
            view_timeout_max_ms: self.view_timeout_max_ms,
            block_interval_ms: self.block_interval_ms,
            empty_block_interval_ms: self.empty_block_interval_ms,
            pipeline_blocks: self.pipeline_blocks,
        }
    }
}

/// Most worker threads either runtime may have.
pub const RUNTIME_THREADS_MAX: usize = 256;

/// The node's two tokio runtimes (docs/architecture.md, "Runtimes"):
/// consensus, the peer network and block commits on one; the JSON-RPC and
/// metrics servers, their connections and calls on the other, so no
/// amount of client work delays a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// Worker threads of the consensus runtime (driver, QUIC, precheck,
    /// gossip intake); blocks execute and commit on them.
    pub consensus_threads: usize,
    /// Worker threads of the RPC runtime (connections, calls, metrics);
    /// views, simulations and block reads have their own `[rpc]` pools.
    pub rpc_threads: usize,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            consensus_threads: 2,
            rpc_threads: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A `tracing` filter: `info`, `stele_node=debug,info`, ... When a
    /// config file is loaded, `soketto=error` is added to it unless it names
    /// `soketto` ([`LogSection::quiet_client_triggered`]).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

/// Log targets of dependencies that write a WARN line for each event a
/// client triggers at will: `soketto` (the WebSocket codec) warns of every
/// WebSocket message over `rpc.body_bytes_max`, which would let one client
/// write the log as fast as it sends. The RPC reports refused requests
/// itself, rate-limited.
const CLIENT_TRIGGERED_LOG_TARGETS: [&str; 1] = ["soketto"];

impl LogSection {
    /// `level` with `<target>=error` added for each dependency in
    /// [`CLIENT_TRIGGERED_LOG_TARGETS`] it does not name (an operator who
    /// names one keeps what they asked for).
    pub fn quiet_client_triggered(&self) -> String {
        let mut filter = self.level.trim().to_string();
        for target in CLIENT_TRIGGERED_LOG_TARGETS {
            if filter.contains(target) {
                continue;
            }
            if !filter.is_empty() {
                filter.push(',');
            }
            filter.push_str(target);
            filter.push_str("=error");
        }
        filter
    }
}

impl NodeConfig {
    /// Reads, parses and validates `path`; relative paths inside become
    /// relative to the file's directory, and the log filter quiets the
    /// dependencies clients can make warn at will
    /// ([`LogSection::quiet_client_triggered`]).
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = NodeConfig::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.node.data_dir,
            &mut config.node.key_file,
            &mut config.node.genesis_file,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.log.level = config.log.quiet_client_triggered();
        Ok(config)
    }

    /// Parses and validates config text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the relations the types cannot.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, problem: &str| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            problem: problem.to_owned(),
        };
        let c = &self.consensus;
        if c.view_timeout_ms == Some(0) {
            return Err(invalid("consensus.view_timeout_ms", "must be positive"));
        }
        if let (Some(max), Some(base)) = (c.view_timeout_max_ms, c.view_timeout_ms)
            && max < base
        {
            return Err(invalid(
                "consensus.view_timeout_max_ms",
                "must be at least consensus.view_timeout_ms",
            ));
        }
        if c.view_timeout_ms
            .is_some_and(|t| c.empty_block_interval_ms >= t)
        {
            return Err(invalid(
                "consensus.empty_block_interval_ms",
                "must be below consensus.view_timeout_ms, or idle views would time out",
            ));
        }
        if c.block_interval_ms > c.empty_block_interval_ms {
            return Err(invalid(
                "consensus.block_interval_ms",
                "must not exceed consensus.empty_block_interval_ms",
            ));
        }
        if !(1..=PIPELINE_BLOCKS_MAX).contains(&c.pipeline_blocks) {
            return Err(invalid("consensus.pipeline_blocks", "must be in 1..=4"));
        }
        if self.storage.versions_kept == 0 {
            return Err(invalid("storage.versions_kept", "must be positive"));
        }
        if self.mempool.txs_max == 0 {
            return Err(invalid("mempool.txs_max", "must be positive"));
        }
        if self.mempool.bytes_max < (1 << 20) {
            return Err(invalid("mempool.bytes_max", "must be at least 1 MiB"));
        }
        let tx_bytes_max = MempoolConfig::new(0).tx_bytes_max;
        if self.mempool.sender_gapped_bytes_max < tx_bytes_max {
            return Err(invalid(
                "mempool.sender_gapped_bytes_max",
                &format!("must be at least the largest transaction, {tx_bytes_max} bytes"),
            ));
        }
        if self.mempool.gapped_ttl_blocks == 0 {
            return Err(invalid("mempool.gapped_ttl_blocks", "must be positive"));
        }
        if self.mempool.sender_keys_max > SENDER_KEYS_MAX {
            return Err(invalid(
                "mempool.sender_keys_max",
                "must be at most 65536 (each key takes ~45 KB)",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.p2p.peers {
            if !seen.insert(p.address) {
                return Err(invalid(
                    "p2p.peers",
                    &format!("{} is listed twice", p.address),
                ));
            }
        }
        for (field, threads) in [
            ("runtime.consensus_threads", self.runtime.consensus_threads),
            ("runtime.rpc_threads", self.runtime.rpc_threads),
        ] {
            if !(1..=RUNTIME_THREADS_MAX).contains(&threads) {
                return Err(invalid(field, "must be in 1..=256"));
            }
        }
        if let Some(rpc) = &self.rpc {
            rpc.validate().map_err(|e| invalid("rpc", &e.to_string()))?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", &format!("is not a valid filter: {e}")))?;
        Ok(())
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        // Every field serialises; a failure would be a bug in this module.
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
data_dir = "data"
key_file = "node_key.json"
genesis_file = "genesis.json"

[p2p]
listen = "127.0.0.1:26656"
peers = [{ address = "0x1111111111111111111111111111111111111111", endpoint = "127.0.0.1:26657" }]

[consensus]
view_timeout_ms = 1000
"#;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn a_good_file_parses_and_round_trips() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.consensus.view_timeout_ms, Some(1000));
        assert_eq!(c.mempool, MempoolSection::default());
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn peers_may_be_named_by_dns_name_or_ip_and_bad_ones_name_the_line() {
        let text = GOOD.replace("127.0.0.1:26657", "validator-1.example.net:26657");
        let c = parse(&text).unwrap();
        assert_eq!(
            c.p2p.peers[0].endpoint.to_string(),
            "validator-1.example.net:26657"
        );
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        let text = GOOD.replace("127.0.0.1:26657", "[::1]:26657");
        assert_eq!(
            parse(&text).unwrap().p2p.peers[0].endpoint.socket_addr(),
            Some("[::1]:26657".parse().unwrap())
        );
        for bad in ["bad_name.example:1", "10.0.0.1:0", "validator-1"] {
            let text = GOOD.replace("127.0.0.1:26657", bad);
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("line 9"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_name() {
        let text = GOOD.replace(
            "view_timeout_ms = 1000",
            "view_timeout_ms = 1000\nspeed = 3",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("unknown field `speed`"), "{e}");
        assert!(e.contains("line 13"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let text = GOOD.replace("127.0.0.1:26656", "nowhere");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("line 8"), "{e}");
        let text = GOOD.replace("view_timeout_ms = 1000", "view_timeout_ms = 0");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("consensus.view_timeout_ms"), "{e}");
        let text = GOOD.replace("view_timeout_ms = 1000", "view_timeout_ms = 100");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("empty_block_interval_ms"), "{e}");
        let text = GOOD.replace(
            "[consensus]",
            "[mempool]\nsender_gapped_bytes_max = 1000\n[consensus]",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("mempool.sender_gapped_bytes_max"), "{e}");
        let text = GOOD.replace(
            "[consensus]",
            "[mempool]\ngapped_ttl_blocks = 0\n[consensus]",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("mempool.gapped_ttl_blocks"), "{e}");
        let text = GOOD.replace("[consensus]", "[log]\nlevel = \"[[[\"\n[consensus]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("log.level"), "{e}");
        let text = GOOD.replace("[consensus]", "[runtime]\nrpc_threads = 0\n[consensus]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("runtime.rpc_threads"), "{e}");
    }

    #[test]
    fn a_loaded_log_filter_quiets_the_websocket_codec_unless_it_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for (level, loaded) in [
            ("info", "info,soketto=error"),
            (
                "stele_node=debug,info",
                "stele_node=debug,info,soketto=error",
            ),
            ("soketto=warn,info", "soketto=warn,info"),
        ] {
            let text = format!("{GOOD}\n[log]\nlevel = \"{level}\"\n");
            std::fs::write(&path, &text).unwrap();
            let config = NodeConfig::load(&path).unwrap();
            assert_eq!(config.log.level, loaded);
            tracing_subscriber::EnvFilter::try_new(&config.log.level).unwrap();
            // Loading what was loaded changes nothing more.
            std::fs::write(&path, config.to_toml()).unwrap();
            assert_eq!(NodeConfig::load(&path).unwrap().log.level, loaded);
        }
    }

    #[test]
    fn indexes_are_off_by_default_and_each_can_be_turned_on() {
        assert_eq!(parse(GOOD).unwrap().index, IndexConfig::default());
        assert!(!IndexConfig::default().any());
        let text = GOOD.replace("[consensus]", "[index]\nevents = true\n[consensus]");
        let c = parse(&text).unwrap();
        assert!(c.index.events && !c.index.storage_history);
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        let text = GOOD.replace("[consensus]", "[index]\nlogs = true\n[consensus]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("unknown field `logs`"), "{e}");
    }

    #[test]
    fn runtime_threads_default_to_two_each_and_can_be_set() {
        assert_eq!(parse(GOOD).unwrap().runtime, RuntimeSection::default());
        assert_eq!(RuntimeSection::default().consensus_threads, 2);
        let text = GOOD.replace(
            "[consensus]",
            "[runtime]\nconsensus_threads = 3\nrpc_threads = 4\n[consensus]",
        );
        let c = parse(&text).unwrap();
        assert_eq!((c.runtime.consensus_threads, c.runtime.rpc_threads), (3, 4));
    }
}
