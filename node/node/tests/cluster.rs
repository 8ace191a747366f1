//! Validators on loopback: real QUIC sockets, real RocksDB data dirs, the
//! real VM, PBFT driving it all. Four validators commit transactions with
//! identical roots; a stopped validator rejoins by block sync; stopping the
//! primary elects the next one.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stele_exec::{StateBase, StateWorld};
use stele_node::genesis::{Allocation, ChainParams, Genesis};
use stele_node::index::{IndexKind, coverage};
use stele_node::mempool::AdmitError;
use stele_node::net::{Channel, NetConfig, PeerInfo};
use stele_node::node::{
    ConsensusOptions, Node, NodeOptions, Role, SnapshotOptions, kept_heights, snapshots_dir,
};
use stele_node::store::BlockReader;
use stele_types::*;

const CHAIN: u64 = 777;
const WAIT: Duration = Duration::from_secs(60);

fn key(n: u16) -> SecretKey {
    stele_fixtures::key(u64::from(n) + 1)
}

fn validators(n: u16) -> Vec<SecretKey> {
    let mut keys: Vec<SecretKey> = (0..n).map(key).collect();
    keys.sort_by_key(SecretKey::address);
    keys
}

fn account(n: u16) -> SecretKey {
    key(1000 + n)
}

fn genesis(keys: &[SecretKey]) -> Genesis {
    // Clients' accounts, and validators' (those of later epochs too), who
    // pay for their votes.
    let mut allocations: Vec<Allocation> = (0..8)
        .map(account)
        .chain((0..8).map(key))
        .map(|k| Allocation {
            address: k.address(),
            balance: 10u128.pow(24),
        })
        .collect();
    allocations.sort_by_key(|a| a.address);
    Genesis {
        chain_id: CHAIN,
        genesis_time_ms: 1_700_000_000_000,
        validators: ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    address: k.address(),
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .unwrap(),
        allocations,
        params: ChainParams::default(),
    }
}

struct Cluster {
    keys: Vec<SecretKey>,
    genesis: Genesis,
    addrs: Vec<SocketAddr>,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Node>>,
    versions_kept: u64,
    prune_interval_blocks: u64,
    pipeline_blocks: u64,
    empty_block_interval_ms: u64,
    mempool_bytes_max: usize,
    /// `NodeOptions::accept_data_loss` of the next launches.
    accept_data_loss: bool,
    /// `NodeOptions::snapshots` of the next launches.
    snapshots: SnapshotOptions,
    /// `NodeOptions::keep_blocks` of the next launches.
    keep_blocks: u64,
}

impl Cluster {
    async fn start(n: u16) -> Cluster {
        Cluster::start_with(n, 1_000_000, 0).await
    }

    async fn start_with(n: u16, versions_kept: u64, prune_interval_blocks: u64) -> Cluster {
        Cluster::start_config(n, versions_kept, prune_interval_blocks, 1).await
    }

    async fn start_config(
        n: u16,
        versions_kept: u64,
        prune_interval_blocks: u64,
        pipeline_blocks: u64,
    ) -> Cluster {
        Cluster::start_paced(
            n,
            versions_kept,
            prune_interval_blocks,
            pipeline_blocks,
            30,
            64 << 20,
        )
        .await
    }

    async fn start_paced(
        n: u16,
        versions_kept: u64,
        prune_interval_blocks: u64,
        pipeline_blocks: u64,
        empty_block_interval_ms: u64,
        mempool_bytes_max: usize,
    ) -> Cluster {
        Cluster::start_on(
            n,
            ChainParams::default(),
            (versions_kept, prune_interval_blocks, pipeline_blocks),
            empty_block_interval_ms,
            mempool_bytes_max,
        )
        .await
    }

    /// `n` validators on a genesis with `params`.
    async fn start_on(
        n: u16,
        params: ChainParams,
        (versions_kept, prune_interval_blocks, pipeline_blocks): (u64, u64, u64),
        empty_block_interval_ms: u64,
        mempool_bytes_max: usize,
    ) -> Cluster {
        let keys = validators(n);
        let genesis = Genesis {
            params,
            ..genesis(&keys)
        };
        // Reserve ports, then free them for the nodes to bind.
        let socks: Vec<UdpSocket> = (0..n)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
        drop(socks);
        let mut cluster = Cluster {
            keys,
            genesis,
            addrs,
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            versions_kept,
            prune_interval_blocks,
            pipeline_blocks,
            empty_block_interval_ms,
            mempool_bytes_max,
            accept_data_loss: false,
            snapshots: SnapshotOptions::default(),
            keep_blocks: 0,
        };
        for i in 0..n as usize {
            let node = cluster.launch(i).await;
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}"))
    }

    async fn launch(&self, i: usize) -> Node {
        self.try_launch(i).await.unwrap()
    }

    async fn try_launch(&self, i: usize) -> Result<Node, stele_node::node::NodeError> {
        Node::start(self.options(i)).await
    }

    /// A full node's options: its own key, every validator as a peer.
    fn full_options(&self, name: &str, key: &SecretKey) -> NodeOptions {
        let mut opts = self.options(0);
        opts.role = Role::Full;
        opts.key = key.clone();
        opts.data_dir = self.dir.path().join(name);
        opts.listen = "127.0.0.1:0".parse().unwrap();
        opts.peers = self
            .keys
            .iter()
            .zip(&self.addrs)
            .map(|(k, a)| PeerInfo {
                address: k.address(),
                socket: *a,
            })
            .collect();
        opts
    }

    async fn launch_full(&self, name: &str, key: &SecretKey) -> Node {
        Node::start(self.full_options(name, key)).await.unwrap()
    }

    fn options(&self, i: usize) -> NodeOptions {
        let peers = self
            .keys
            .iter()
            .zip(&self.addrs)
            .map(|(k, a)| PeerInfo {
                address: k.address(),
                socket: *a,
            })
            .collect();
        let net = NetConfig {
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(500),
            ..NetConfig::default()
        };
        NodeOptions {
            data_dir: self.data_dir(i),
            role: Role::Validator,
            key: self.keys[i].clone(),
            genesis: self.genesis.clone(),
            listen: self.addrs[i],
            peers,
            net,
            mempool_txs_max: 10_000,
            mempool_bytes_max: self.mempool_bytes_max,
            mempool_sender_gapped_bytes_max: 2 << 20,
            mempool_gapped_ttl_blocks: 600,
            sender_keys_max: 64,
            consensus: ConsensusOptions {
                view_timeout_ms: Some(1_000),
                view_timeout_max_ms: Some(4_000),
                block_interval_ms: 5,
                empty_block_interval_ms: self.empty_block_interval_ms,
                pipeline_blocks: self.pipeline_blocks,
            },
            state: stele_state::StateConfig {
                versions_kept: self.versions_kept,
                ..Default::default()
            },
            prune_interval_blocks: self.prune_interval_blocks,
            snapshots: self.snapshots,
            snapshot_sync: false,
            keep_blocks: self.keep_blocks,
            // Both indexes on: every cluster scenario (sync, restarts,
            // pruning) also commits their rows.
            index: stele_node::index::IndexConfig {
                events: true,
                storage_history: true,
            },
            exec_inline: false,
            accept_data_loss: self.accept_data_loss,
            protocol_support: Default::default(),
        }
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().flatten()
    }

    async fn stop(&mut self, i: usize) {
        let node = self.nodes[i].take().unwrap();
        node.shutdown().await.unwrap();
    }

    async fn restart(&mut self, i: usize) {
        let node = self.launch(i).await;
        self.nodes[i] = Some(node);
    }

    fn height(&self, i: usize) -> u64 {
        self.node(i).progress().height
    }

    /// Waits until every running node has committed `height`.
    async fn until_height(&self, height: u64) {
        let deadline = Instant::now() + WAIT;
        while !self.running().all(|n| n.progress().height >= height) {
            if Instant::now() > deadline {
                let states: Vec<String> = self
                    .running()
                    .map(|n| {
                        let text = n.shared().metrics().render();
                        let drops: Vec<&str> = text
                            .lines()
                            .filter(|l| {
                                l.contains("consensus")
                                    && l.contains("dropped")
                                    && !l.starts_with('#')
                                    && !l.ends_with(" 0")
                            })
                            .collect();
                        format!(
                            "{} {:?} epoch {} peers {:?} {drops:?}",
                            n.shared().net().validator_set_len(),
                            n.progress(),
                            n.shared().epoch().epoch(),
                            n.shared().net().connected()
                        )
                    })
                    .collect();
                panic!("timed out waiting for height {height}: {states:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Block hash and state root at every height all running nodes have,
    /// checked equal across nodes.
    fn assert_same_chain(&self) {
        self.assert_same_chain_from(1);
    }

    /// Every running node holds the same blocks and roots from `from` on.
    fn assert_same_chain_from(&self, from: u64) {
        let top = self.running().map(|n| n.progress().height).min().unwrap();
        for h in from..=top {
            let mut seen: Option<(Hash, Hash)> = None;
            for n in self.running() {
                let state = n.shared().state().read().unwrap();
                let block = BlockReader::new(&state).block(h).unwrap().unwrap();
                let root = state.root(h).unwrap();
                assert_eq!(block.header.state_root, root, "height {h}");
                let got = (block.hash(), root);
                if let Some(s) = seen {
                    assert_eq!(s, got, "nodes disagree at height {h}");
                }
                seen = Some(got);
            }
        }
    }

    fn committed_everywhere(&self, tx: &Hash) -> bool {
        self.running().all(|n| {
            let state = n.shared().state().read().unwrap();
            BlockReader::new(&state).receipt(tx).unwrap().is_some()
        })
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// Issue 24 (b): a transaction behind a nonce gap cannot go in a block, so
/// while it is all that waits the validator makes blocks at the idle pace,
/// not as fast as consensus allows; once the gap is filled it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_gapped_transaction_does_not_speed_up_block_production() {
    const IDLE_MS: u64 = 200;
    let mut cluster = Cluster::start_paced(1, 1_000_000, 0, 1, IDLE_MS, 64 << 20).await;
    cluster.until_height(1).await;
    // Nonces 0 to 4 are missing.
    let parked = cluster.node(0).submit(&transfer(0, 5, 1, 9)).unwrap();
    let from = cluster.height(0);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(10 * IDLE_MS)).await;
    let made = cluster.height(0) - from;
    let idle_pace = started.elapsed().as_millis() as u64 / IDLE_MS + 2;
    assert!(
        made <= idle_pace,
        "{made} blocks in {:?} with only a gapped transaction waiting (idle pace {idle_pace})",
        started.elapsed()
    );
    // An idle chain still makes blocks, so certificates stay fresh.
    assert!(made >= 2, "only {made} blocks in {:?}", started.elapsed());
    assert!(cluster.node(0).shared().pending(&parked).is_some());
    for nonce in 0..5 {
        cluster.node(0).submit(&transfer(0, nonce, 1, 9)).unwrap();
    }
    until("the parked transfer committed", || {
        cluster.committed_everywhere(&parked)
    })
    .await;
    cluster.stop(0).await;
}

/// Issue 24 (a) on a running validator: funded senders park big gapped
/// deploys at a high price until its 8 MiB pool is full; an honest transfer
/// at the minimum price is still admitted and committed, and the parked
/// transactions do not speed up block production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_deploys_filling_the_pool_do_not_lock_out_an_honest_transfer() {
    const IDLE_MS: u64 = 200;
    let mut cluster = Cluster::start_paced(1, 1_000_000, 0, 1, IDLE_MS, 8 << 20).await;
    cluster.until_height(1).await;
    let from = cluster.height(0);
    let started = Instant::now();
    let mut full = false;
    for attacker in 1..8 {
        // Nonce 0 is never sent.
        for nonce in 1..=16 {
            match cluster.node(0).submit(&parked_deploy(attacker, nonce)) {
                Ok(_) => {}
                Err(AdmitError::Full { .. }) => full = true,
                Err(AdmitError::GappedBytesOver { .. }) => break,
                Err(e) => panic!("unexpected rejection: {e}"),
            }
        }
    }
    assert!(full, "the attack fills the pool");
    let honest = cluster.node(0).submit(&transfer(0, 0, 1, 9)).unwrap();
    until("the honest transfer committed", || {
        cluster.committed_everywhere(&honest)
    })
    .await;
    let made = cluster.height(0) - from;
    let idle_pace = started.elapsed().as_millis() as u64 / IDLE_MS + 3;
    assert!(
        made <= idle_pace,
        "{made} blocks in {:?} (idle pace {idle_pace})",
        started.elapsed()
    );
    cluster.stop(0).await;
}

/// A transaction behind a nonce gap is not gossiped when it is admitted
/// (no validator should carry what no block can include); once its gap
/// closes, here by the missing nonce arriving at another validator, the
/// validator that admitted it gossips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gapped_transaction_is_gossiped_only_once_its_gap_closes() {
    use stele_node::net::Channel;
    let cluster = Cluster::start(4).await;
    until("all peers connected", || {
        cluster
            .running()
            .all(|n| n.shared().net().connected().len() == 3)
    })
    .await;
    cluster.until_height(1).await;
    let gossip_out = || {
        cluster
            .node(0)
            .shared()
            .net()
            .metrics()
            .msgs_out(Channel::Gossip)
    };
    let gapped = cluster.node(0).submit(&transfer(1, 1, 2, 5)).unwrap();
    // Submitted after it on the same queues, so once it is everywhere a
    // gossiped `gapped` would be too.
    let marker = cluster.node(0).submit(&transfer(3, 0, 2, 5)).unwrap();
    until("the marker committed", || {
        cluster.committed_everywhere(&marker)
    })
    .await;
    for i in 1..4 {
        assert!(
            cluster.node(i).shared().pending(&gapped).is_none(),
            "validator {i} was sent the gapped transaction"
        );
    }
    assert!(cluster.node(0).shared().pending(&gapped).is_some());
    let sent = gossip_out();

    // The missing nonce reaches validator 1, which gossips it; validator 0
    // then holds a ready `gapped` and must gossip it to all three peers
    // (even if it leads and could include it itself).
    cluster.node(1).submit(&transfer(1, 0, 2, 5)).unwrap();
    until("the now-ready transaction gossiped", || {
        gossip_out() >= sent + 3
    })
    .await;
    until("the once gapped transaction committed", || {
        cluster.committed_everywhere(&gapped)
    })
    .await;
    cluster.assert_same_chain();
}

/// A deploy of 512 KiB of code at a high gas price, with the gas its
/// intrinsic cost asks for under the default chain parameters.
fn parked_deploy(from: u16, nonce: u64) -> Vec<u8> {
    let payload = TxPayload::Deploy {
        code: vec![0; 512 << 10],
        init_args: Vec::new(),
        value: 0,
    };
    let mut tx = Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit: 0,
        gas_price: 1_000,
        payload,
    };
    let bytes = tx.clone().sign(&account(from)).to_bytes().len() as u64;
    tx.gas_limit = 21_000 + 16 * bytes;
    tx.sign(&account(from)).to_bytes()
}

fn transfer(from: u16, nonce: u64, to: u16, amount: Amount) -> Vec<u8> {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit: 100_000,
        gas_price: 1,
        payload: TxPayload::Transfer {
            to: account(to).address(),
            amount,
        },
    }
    .sign(&account(from))
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_validators_commit_transactions_with_identical_roots() {
    let cluster = Cluster::start(4).await;
    cluster.until_height(2).await;
    // Clients send to different validators; gossip brings every
    // transaction to the primary.
    let mut hashes = Vec::new();
    for nonce in 0..5 {
        for from in 0..4u16 {
            let raw = transfer(from, nonce, from + 4, 1_000 + u128::from(nonce));
            let via = (from as usize + nonce as usize) % 4;
            hashes.push(cluster.node(via).submit(&raw).unwrap());
        }
    }
    until("all transfers committed on all nodes", || {
        hashes.iter().all(|h| cluster.committed_everywhere(h))
    })
    .await;
    cluster.assert_same_chain();
    // Every node indexed every block it committed, in the same batch.
    for i in 0..4 {
        let state = cluster.node(i).shared().state().clone();
        let view = state.read().unwrap().view().unwrap();
        for kind in [IndexKind::Events, IndexKind::StorageHistory] {
            let c = coverage(&view, kind).unwrap().unwrap();
            assert_eq!((c.from, c.last), (1, view.version()), "node {i}");
        }
    }
    let supply: Amount = {
        let node = cluster.node(0);
        let base = node.shared().latest_base();
        (0..8)
            .map(|n| {
                let w = stele_exec::StateWorld::new(base.clone());
                w.account(&account(n).address()).unwrap().balance
            })
            .sum::<Amount>()
            + (0..8)
                .map(|n| {
                    // The validators' accounts (those of later epochs too).
                    let w = stele_exec::StateWorld::new(base.clone());
                    w.account(&key(n).address()).unwrap().balance
                })
                .sum::<Amount>()
    };
    assert_eq!(
        supply,
        cluster.genesis.total_supply(),
        "fees go to proposers"
    );
    // Prometheus metrics of a validator.
    until("all peers connected", || {
        cluster.node(1).shared().net().connected().len() == 3
    })
    .await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let addr = stele_node::metrics::serve(
        "127.0.0.1:0".parse().unwrap(),
        cluster.node(1).shared().metrics().clone(),
        stop_rx,
    )
    .await
    .unwrap();
    let text = http_get(addr, "/metrics").await;
    for needle in [
        "stele_height ",
        "stele_txs_committed_total 20",
        "stele_commit_latency_seconds_count",
        "stele_execution_seconds_count",
        "stele_peers_connected 3",
        "stele_messages_in{channel=\"consensus\"}",
        "stele_messages_dropped{reason=\"oversized\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let _ = stop.send(true);
    for i in 0..4 {
        cluster.nodes[i].as_ref().unwrap();
    }
    let mut cluster = cluster;
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// With two blocks in flight, block n+1 executes on n's uncommitted
/// writes: senders' consecutive transactions land in consecutive blocks,
/// and every validator ends with the same chain and state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_proposals_commit_chained_transactions_with_identical_roots() {
    let mut cluster = Cluster::start_config(4, 1_000_000, 0, 2).await;
    cluster.until_height(2).await;
    let mut hashes = Vec::new();
    for nonce in 0..25 {
        for from in 0..4u16 {
            let raw = transfer(from, nonce, from + 4, 1_000);
            hashes.push(cluster.node(from as usize).submit(&raw).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    until("all transfers committed on all nodes", || {
        hashes.iter().all(|h| cluster.committed_everywhere(h))
    })
    .await;
    cluster.assert_same_chain();
    let pipelined: u64 = (0..4)
        .map(|i| cluster.node(i).shared().metrics().pipelined_blocks.get())
        .sum();
    assert!(
        pipelined > 0,
        "no block was executed on an uncommitted parent"
    );
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_validator_rejoins_by_sync_and_the_rest_keep_going() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(3).await;
    // Stop a backup (the primary of view 0 is validator 0).
    cluster.stop(3).await;
    let h = cluster.height(0);
    // Well past two checkpoints (every 16 blocks), so the restarted node
    // must fetch blocks it never saw proposed.
    cluster.until_height(h + 40).await;
    let raw = transfer(0, 0, 1, 5);
    let tx = cluster.node(1).submit(&raw).unwrap();
    until("transfer committed", || cluster.committed_everywhere(&tx)).await;
    cluster.restart(3).await;
    let target = cluster.height(0) + 2;
    cluster.until_height(target).await;
    cluster.assert_same_chain();
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_the_primary_elects_the_next_and_commits_continue() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(3).await;
    // Validators are sorted by address, so view v's primary is node v % 4.
    let view = cluster.node(0).progress().view;
    let primary = (view % 4) as usize;
    cluster.stop(primary).await;
    let others: Vec<usize> = (0..4).filter(|i| *i != primary).collect();
    let h = others.iter().map(|i| cluster.height(*i)).max().unwrap();
    cluster.until_height(h + 5).await;
    for i in &others {
        assert!(
            cluster.node(*i).progress().view > view,
            "node {i} changed view"
        );
    }
    let raw = transfer(2, 0, 3, 7);
    let tx = cluster.node(others[0]).submit(&raw).unwrap();
    until("transfer committed after the view change", || {
        cluster.committed_everywhere(&tx)
    })
    .await;
    cluster.assert_same_chain();
    for i in others {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_submits_and_awaits_a_receipt_through_the_rpc_of_any_validator() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(1).await;
    let config = stele_node::rpc::RpcConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    // A backup's RPC: the transaction reaches the primary by gossip.
    let server = stele_node::rpc::start(config, cluster.node(2).rpc_context())
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr());
    let client = stele_client::Client::connect(&url).await.unwrap();
    until("all peers connected", || {
        cluster.node(2).shared().net().connected().len() == 3
    })
    .await;
    let status = client.get_status().await.unwrap();
    assert_eq!(status.chain_id, CHAIN);
    assert_eq!(status.peers_connected, 3);
    let raw = transfer(5, 0, 6, 42);
    let hash = client.send_transaction(&raw).await.unwrap();
    let info = client.wait_for_receipt(hash, 30_000).await.unwrap();
    assert_eq!(info.receipt.status, ExecStatus::Success);
    let account = client.get_account(account(6).address()).await.unwrap();
    assert_eq!(account.balance, 10u128.pow(24) + 42);
    // The same nonce again is refused with a specific error.
    let again = client.send_transaction(&raw).await.unwrap_err().to_string();
    assert!(
        again.contains("nonce") || again.contains("known"),
        "{again}"
    );
    server.stop();
    server.stopped().await;
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_flood_on_one_validator_is_limited_and_the_chain_goes_on() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(1).await;
    let rpc = |i: usize, rate: u32| {
        let config = stele_node::rpc::RpcConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            rate_per_ip_per_s: rate,
            rate_burst: rate,
            ..Default::default()
        };
        stele_node::rpc::start(config, cluster.node(i).rpc_context())
    };
    let flooded = rpc(2, 20).await.unwrap();
    let other = rpc(1, 200).await.unwrap();
    let flood_url = format!("http://{}", flooded.local_addr());
    let start = cluster.height(0);
    // Eight tasks hammer validator 2's RPC for two seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let url = flood_url.clone();
            tokio::spawn(async move {
                let client = stele_client::Client::connect(&url).await.unwrap();
                let (mut ok, mut limited) = (0u64, 0u64);
                while tokio::time::Instant::now() < deadline {
                    match client.get_status().await {
                        Ok(_) => ok += 1,
                        Err(e) if e.to_string().contains("429") => limited += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    // Meanwhile a client of another validator gets its transfer committed.
    let client = stele_client::Client::connect(&format!("http://{}", other.local_addr()))
        .await
        .unwrap();
    let hash = client
        .send_transaction(&transfer(5, 0, 6, 7))
        .await
        .unwrap();
    let info = client.wait_for_receipt(hash, 30_000).await.unwrap();
    assert_eq!(info.receipt.status, ExecStatus::Success);
    let (mut ok, mut limited) = (0, 0);
    for f in flood {
        let (o, l) = f.await.unwrap();
        ok += o;
        limited += l;
    }
    // About 20/s got through (plus the burst); the rest was refused early.
    assert!(limited > 10 * ok, "ok {ok}, limited {limited}");
    assert!(ok <= 20 * 3 + 20, "ok {ok}");
    assert_eq!(
        flooded
            .metrics()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        limited
    );
    // The flooded validator kept taking part: every node moved on.
    cluster.until_height(start + 3).await;
    cluster.assert_same_chain();
    for s in [flooded, other] {
        s.stop();
        s.stopped().await;
    }
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_validator_runs_the_same_path_and_prunes_old_state() {
    let mut cluster = Cluster::start_with(1, 4, 5).await;
    let raw = transfer(0, 0, 1, 9);
    let tx = cluster.node(0).submit(&raw).unwrap();
    until("transfer committed", || cluster.committed_everywhere(&tx)).await;
    cluster.until_height(21).await;
    {
        let state = cluster.node(0).shared().state().read().unwrap();
        let latest = state.latest_version().unwrap();
        assert!(state.root(latest).is_ok());
        assert!(state.root(1).is_err(), "version 1 was pruned");
        // Blocks stay: pruning drops old state versions only.
        assert!(BlockReader::new(&state).block(1).unwrap().is_some());
    }
    cluster.stop(0).await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Issue 24 (8): a backup whose database was copied back from earlier
/// refuses to start; accepted, it starts as after a host crash, fetches
/// the blocks it lost from the others and agrees with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_backup_refuses_to_start_and_once_accepted_rejoins_the_chain() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(3).await;
    cluster.stop(3).await;
    let db = cluster.data_dir(3).join("db");
    let saved = tempfile::tempdir().unwrap();
    copy_dir(&db, saved.path());
    cluster.restart(3).await;
    let h = cluster.height(0);
    cluster.until_height(h + 20).await;
    cluster.stop(3).await;
    std::fs::remove_dir_all(&db).unwrap();
    copy_dir(saved.path(), &db);
    match cluster.try_launch(3).await {
        Err(stele_node::node::NodeError::DataLoss(_)) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a rolled-back validator started"),
    }
    cluster.accept_data_loss = true;
    cluster.restart(3).await;
    cluster.accept_data_loss = false;
    let target = cluster.height(0) + 2;
    cluster.until_height(target).await;
    cluster.assert_same_chain();
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// Issue 24, Byzantine validator: garbage gossip and malformed block-sync
/// requests cost the sender nothing visible unless they are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gossip_and_malformed_sync_requests_are_counted_by_reason() {
    use stele_node::metrics::PeerGarbage;
    use stele_node::net::{Channel, testing};

    let mut cluster = Cluster::start(2).await;
    // The test speaks for validator 1 with its key.
    cluster.stop(1).await;
    let to = PeerInfo {
        address: cluster.keys[0].address(),
        socket: cluster.addrs[0],
    };
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = testing::dial_as(
        &endpoint,
        &cluster.keys[1],
        CHAIN,
        &cluster.genesis.validators,
        &to,
    )
    .await
    .unwrap();

    let wrong_chain = Transaction {
        chain_id: CHAIN + 1,
        nonce: 0,
        gas_limit: 100_000,
        gas_price: 1,
        payload: TxPayload::Transfer {
            to: account(1).address(),
            amount: 1,
        },
    }
    .sign(&account(0))
    .to_bytes();
    let frames: Vec<Vec<u8>> = vec![
        // An unknown gossip tag.
        vec![9, 1, 2, 3],
        // A transaction that does not decode.
        vec![0, 0xff, 0xff, 0xff],
        // A good transaction for another chain.
        [vec![0], wrong_chain].concat(),
    ];
    let mut gossip = testing::open_channel(&conn, Channel::Gossip).await.unwrap();
    testing::write_frames(&mut gossip, &frames).await.unwrap();
    let answer = testing::sync_request(&conn, b"not a sync request", 1 << 20).await;
    assert!(answer.is_err(), "a malformed request is not answered");

    let metrics = cluster.node(0).shared().metrics().clone();
    until("the garbage counted", || {
        metrics.peer_garbage(PeerGarbage::GossipUndecodable) == 2
            && metrics.peer_garbage(PeerGarbage::GossipWrongChain) == 1
            && metrics.peer_garbage(PeerGarbage::SyncMalformed) == 1
    })
    .await;
    let text = metrics.render();
    for needle in [
        "stele_messages_dropped{reason=\"gossip_undecodable\"} 2",
        "stele_messages_dropped{reason=\"gossip_wrong_chain\"} 1",
        "stele_messages_dropped{reason=\"gossip_bad_signature\"} 0",
        "stele_messages_dropped{reason=\"sync_malformed\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    conn.close(0u32.into(), b"");
    cluster.stop(0).await;
}

/// Waits until `node` has committed `height`.
async fn until_node_height(node: &Node, height: u64) {
    until(&format!("height {height}"), || {
        node.progress().height >= height
    })
    .await;
}

/// The block hash and state root `node` holds at `height`.
fn block_and_root(node: &Node, height: u64) -> (Hash, Hash) {
    let state = node.shared().state().read().unwrap();
    let block = BlockReader::new(&state).block(height).unwrap().unwrap();
    (block.hash(), state.root(height).unwrap())
}

/// ADR 0009: a full node follows the validators' certified blocks, runs
/// admission for the transactions its clients send and forwards them, and
/// never takes part in consensus.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_node_follows_forwards_writes_and_never_votes() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(2).await;
    let full = cluster.launch_full("full0", &key(200)).await;
    assert_eq!(full.shared().role(), Role::Full);
    // Transactions sent to the full node reach the validators.
    let mut hashes = Vec::new();
    for nonce in 0..3 {
        for from in 0..2u16 {
            let raw = transfer(from, nonce, from + 4, 10 + u128::from(nonce));
            hashes.push(full.submit(&raw).unwrap());
        }
    }
    until(
        "forwarded transfers committed on validators and the full node",
        || {
            hashes.iter().all(|h| cluster.committed_everywhere(h))
                && hashes.iter().all(|h| {
                    let state = full.shared().state().read().unwrap();
                    BlockReader::new(&state).receipt(h).unwrap().is_some()
                })
        },
    )
    .await;
    let top = cluster.height(0);
    until_node_height(&full, top).await;
    for h in 1..=top {
        assert_eq!(
            block_and_root(&full, h),
            block_and_root(cluster.node(0), h),
            "height {h}"
        );
    }
    // Its admission is a validator's: a bad transaction is refused there.
    assert!(full.submit(&transfer(0, 0, 1, 1)).is_err(), "a used nonce");
    let net = full.shared().net().metrics();
    assert_eq!(
        net.msgs_out(Channel::Consensus),
        0,
        "a full node never votes"
    );
    assert!(net.msgs_in(Channel::Blocks) > 0, "blocks were pushed to it");
    let v = cluster.node(0).shared().net().metrics();
    assert_eq!(v.followers_connected(), 1);
    assert_eq!(
        v.peers_connected(),
        3,
        "a full node is not a validator peer"
    );
    assert!(full.progress().view == 0 && full.progress().view_changes == 0);
    full.shutdown().await.unwrap();
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// A follower that reaches one backup only, directly or through another
/// full node, still gets its clients' transactions to the primary: a
/// validator gossips on what a follower gave it, and a full node what
/// another full node gave it. (A full node configured before validators
/// joined knows none of them; the real-process set-change scenario found
/// transactions stranded that way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_reaches_the_primary_from_a_follower_that_reaches_one_backup_only() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(2).await;
    let set = cluster.node(0).shared().epoch().validators.clone();
    let view = cluster.node(0).progress().view;
    let primary = set.validators()[(view % 4) as usize].address;
    let backup = (0..4)
        .find(|i| cluster.keys[*i].address() != primary)
        .unwrap();
    // `near` reaches the backup only; `far` reaches `near` only (of two
    // full nodes the lower address dials).
    let (mut near_key, mut far_key) = (key(210), key(211));
    if near_key.address() < far_key.address() {
        std::mem::swap(&mut near_key, &mut far_key);
    }
    let mut opts = cluster.full_options("near", &near_key);
    opts.peers
        .retain(|p| p.address == cluster.keys[backup].address());
    let near = Node::start(opts).await.unwrap();
    let mut opts = cluster.full_options("far", &far_key);
    opts.peers = vec![PeerInfo {
        address: near_key.address(),
        socket: near.shared().net().local_addr().unwrap(),
    }];
    let far = Node::start(opts).await.unwrap();
    until("the far full node connected", || {
        far.shared().net().connected_peers().len() == 1
    })
    .await;
    let sent = [
        near.submit(&transfer(0, 0, 5, 1)).unwrap(),
        far.submit(&transfer(1, 0, 5, 1)).unwrap(),
    ];
    until("both committed", || {
        sent.iter().all(|h| cluster.committed_everywhere(h))
    })
    .await;
    assert_eq!(
        cluster.node(0).progress().view,
        view,
        "no view change helped"
    );
    for n in [far, near] {
        n.shutdown().await.unwrap();
    }
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// ADR 0012: a validator keeps a snapshot every `interval` heights, the
/// newest `kept` of them, each whole: its index ties it to the genesis,
/// its parts make the certified root of its height, and every chunk
/// checks against its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_keeps_its_newest_snapshots_and_each_checks() {
    use stele_node::snapshot::{INDEX_FILE, check_anchor, check_chunk, chunk_file, decode_index};
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(2).await;
    cluster.snapshots = SnapshotOptions {
        interval_blocks: 8,
        kept: 2,
        chunk_entries: 16,
    };
    cluster.stop(0).await;
    cluster.restart(0).await;
    for nonce in 0..20 {
        cluster
            .node(1)
            .submit(&transfer(1, nonce, 5 + (nonce % 3) as u16, 1))
            .unwrap();
    }
    let h = cluster.height(1);
    cluster.until_height(h + 30).await;
    let dir = snapshots_dir(&cluster.data_dir(0));
    until("two whole snapshots, older ones deleted", || {
        let names = std::fs::read_dir(&dir).unwrap().count();
        kept_heights(&dir).len() == 2 && names == 2
    })
    .await;
    let heights = kept_heights(&dir);
    assert!(heights[0] > heights[1] && heights.iter().all(|h| h % 8 == 0));
    for height in heights {
        let at = dir.join(height.to_string());
        let (manifest, anchor) =
            decode_index(&std::fs::read(at.join(INDEX_FILE)).unwrap()).unwrap();
        check_anchor(&cluster.genesis, &manifest, &anchor).unwrap();
        stele_types::snapshot::Cut {
            parts: manifest.parts.iter().map(|p| p.part).collect(),
        }
        .verify(&manifest.state_root)
        .unwrap();
        assert_eq!(
            (anchor.block.hash(), manifest.state_root),
            block_and_root(cluster.node(1), height)
        );
        let limits = stele_node::snapshot::format::chunk_limits();
        for (i, part) in manifest.parts.iter().enumerate() {
            let bytes = std::fs::read(at.join(chunk_file(i))).unwrap();
            check_chunk(part, &bytes, &limits, 2 << 20).unwrap();
        }
    }
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// ADR 0012: a validator that keeps the last blocks deletes older ones with
/// their receipts and transaction locations when it prunes; the others
/// keep theirs, and the chain is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_keeping_the_last_blocks_deletes_older_ones() {
    let mut cluster = Cluster::start_with(4, 1_000_000, 10).await;
    cluster.until_height(2).await;
    cluster.keep_blocks = 20;
    cluster.stop(0).await;
    cluster.restart(0).await;
    let early = cluster.node(1).submit(&transfer(0, 0, 5, 1)).unwrap();
    until("the early transfer", || {
        cluster.committed_everywhere(&early)
    })
    .await;
    let at = {
        let state = cluster.node(1).shared().state().read().unwrap();
        BlockReader::new(&state)
            .tx_location(&early)
            .unwrap()
            .unwrap()
            .height
    };
    cluster.until_height(at + 50).await;
    until("node 0 pruned past the early block", || {
        let state = cluster.node(0).shared().state().read().unwrap();
        BlockReader::new(&state).blocks_from().unwrap() > at
    })
    .await;
    let from = {
        let state = cluster.node(0).shared().state().read().unwrap();
        let reader = BlockReader::new(&state);
        let from = reader.blocks_from().unwrap();
        let tip = reader.committed_height().unwrap();
        assert!(tip + 1 - from >= 20, "kept {} blocks", tip + 1 - from);
        assert!(reader.block(at).unwrap().is_none());
        assert!(reader.receipts(at).unwrap().is_none());
        assert!(reader.certificate(at).unwrap().is_none());
        assert!(reader.tx_location(&early).unwrap().is_none());
        assert!(reader.committed(from).unwrap().is_some());
        from
    };
    {
        let other = cluster.node(1).shared().state().read().unwrap();
        assert!(BlockReader::new(&other).block(at).unwrap().is_some());
    }
    cluster.assert_same_chain_from(from);
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

/// A full node started late, or restarted after the chain moved on,
/// catches up by block sync (checking every certificate) and then follows
/// pushed blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_or_restarted_full_node_catches_up_by_sync() {
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(30).await;
    let full_key = key(201);
    let full = cluster.launch_full("full0", &full_key).await;
    let target = cluster.height(0) + 3;
    until_node_height(&full, target).await;
    full.shutdown().await.unwrap();
    cluster.until_height(target + 20).await;
    let full = cluster.launch_full("full0", &full_key).await;
    let target = cluster.height(0) + 3;
    until_node_height(&full, target).await;
    cluster.until_height(target).await;
    for h in [1, target / 2, target] {
        assert_eq!(block_and_root(&full, h), block_and_root(cluster.node(1), h));
    }
    full.shutdown().await.unwrap();
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_key_cannot_run_a_full_node_nor_a_stranger_a_validator() {
    let cluster = Cluster::start(1).await;
    let validator_key = cluster.keys[0].clone();
    let e = Node::start(cluster.full_options("full0", &validator_key))
        .await
        .unwrap_err();
    assert!(
        matches!(e, stele_node::node::NodeError::ValidatorKeyOnFullNode(_)),
        "{e}"
    );
    // A validator's key outside the set follows the chain, waiting for a
    // change that adds it (ADR 0010); it never votes.
    let mut opts = cluster.full_options("full1", &key(202));
    opts.role = Role::Validator;
    let stranger = Node::start(opts).await.unwrap();
    let target = cluster.height(0) + 3;
    until_node_height(&stranger, target).await;
    assert!(!stranger.shared().epoch().is_member(&key(202).address()));
    stranger.shutdown().await.unwrap();
    let mut cluster = cluster;
    cluster.stop(0).await;
}

/// A peer of a full node that pushes garbage: undecodable frames, a block
/// under another block's certificate, a certificate with a forged
/// signature. Each is refused and counted; none stops the node, and a
/// true block pushed the same way is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_node_refuses_and_counts_blocks_its_certificates_do_not_prove() {
    use stele_node::metrics::PeerGarbage;
    use stele_node::net::testing;
    use stele_node::sync::SyncedBlock;

    let mut cluster = Cluster::start(4).await;
    cluster.until_height(3).await;
    let item = |h: u64, payload_of: u64| {
        let state = cluster.node(0).shared().state().read().unwrap();
        let reader = BlockReader::new(&state);
        let payload = reader.block(payload_of).unwrap().unwrap().to_bytes();
        let cert = reader.certificate(h).unwrap().unwrap();
        (payload, cert)
    };
    let (true_block, true_cert) = item(1, 1);
    let (other_block, _) = item(2, 2);
    let (_, cert3) = item(3, 3);
    for i in 0..4 {
        cluster.stop(i).await;
    }
    // A full node with no peer of its own: only the hostile one reaches it.
    let mut opts = cluster.full_options("full0", &key(203));
    opts.peers.clear();
    let full = Node::start(opts).await.unwrap();
    let to = PeerInfo {
        address: key(203).address(),
        socket: full.p2p_addr().unwrap(),
    };
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let set = cluster.genesis.validators.clone();
    let conn = testing::dial_as(&endpoint, &key(204), CHAIN, &set, &to)
        .await
        .unwrap();
    let mut stream = testing::open_channel(&conn, Channel::Blocks).await.unwrap();
    let mut forged = true_cert.clone();
    forged.signatures[0].signature.0[10] ^= 1;
    let frames = vec![
        b"not a block".to_vec(),
        SyncedBlock::encode_item(&other_block, &true_cert),
        SyncedBlock::encode_item(&true_block, &forged),
    ];
    testing::write_frames(&mut stream, &frames).await.unwrap();
    let metrics = full.shared().metrics().clone();
    until("three refusals", || {
        metrics.peer_garbage(PeerGarbage::BlockUncertified) == 3
    })
    .await;
    assert_eq!(full.progress().height, 0);
    assert!(!full.is_finished());
    // The true block, and a later certificate: the node commits the one
    // and learns from the other how far the chain is.
    testing::write_frames(
        &mut stream,
        &[
            SyncedBlock::encode_item(&true_block, &true_cert),
            SyncedBlock::encode_item(&[], &cert3),
        ],
    )
    .await
    .unwrap();
    until_node_height(&full, 1).await;
    until("the certified height", || {
        stele_node::rpc::NodeStatus::status(full.shared().as_ref()).certified_height == 3
    })
    .await;
    assert_eq!(metrics.peer_garbage(PeerGarbage::BlockUncertified), 3);
    conn.close(0u32.into(), b"done");
    full.shutdown().await.unwrap();
}

// ---- validator set changes (ADR 0010) ---------------------------------

impl Cluster {
    /// Starts a validator whose key is in no set yet: it follows the
    /// chain, and validates once a change adds it. Its address is known to
    /// the nodes started after it only.
    async fn add_validator(&mut self, key: SecretKey) -> usize {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        drop(sock);
        self.keys.push(key);
        self.addrs.push(addr);
        let i = self.keys.len() - 1;
        let node = self.launch(i).await;
        self.nodes.push(Some(node));
        i
    }

    /// The epoch every running node is in, once they agree.
    async fn until_epoch(&self, epoch: u64) {
        let deadline = Instant::now() + WAIT;
        while !self.running().all(|n| n.shared().epoch().epoch() >= epoch) {
            if Instant::now() > deadline {
                let states: Vec<String> = self
                    .running()
                    .map(|n| {
                        let e = n.shared().epoch();
                        format!(
                            "height {} epoch {} pending {:?} view {} validator {} peers {} syncing {}",
                            n.progress().height,
                            e.epoch(),
                            e.last_height(),
                            n.progress().view,
                            n.shared().net().is_validator(),
                            n.shared().net().connected_peers().len(),
                            n.progress().syncing,
                        )
                    })
                    .collect();
                panic!("timed out waiting for epoch {epoch}: {states:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Has validators `voters` vote for `next` in `epoch` through node
    /// `via`; `newcomers` sign it to prove they hold their keys.
    fn vote(
        &self,
        via: usize,
        epoch: u64,
        next: &ValidatorSet,
        voters: &[usize],
        newcomers: &[usize],
    ) {
        let change = validator_change_hash(CHAIN, epoch, next);
        let mut proofs: Vec<(Address, Signature)> = newcomers
            .iter()
            .map(|i| (self.keys[*i].address(), self.keys[*i].sign_digest(&change)))
            .collect();
        proofs.sort_by_key(|(a, _)| *a);
        for v in voters {
            let voter = &self.keys[*v];
            let nonce = StateWorld::new(StateBase::latest(self.node(via).shared().state(), None))
                .account(&voter.address())
                .unwrap()
                .nonce;
            let tx = Transaction {
                chain_id: CHAIN,
                nonce,
                gas_limit: 2_000_000,
                gas_price: 1,
                payload: TxPayload::VoteValidators {
                    epoch,
                    validators: next.validators().to_vec(),
                    possession: proofs.iter().map(|(_, s)| *s).collect(),
                },
            }
            .sign(voter);
            self.node(via).submit(&tx.to_bytes()).unwrap();
        }
    }

    fn set_of(&self, members: &[usize]) -> ValidatorSet {
        let mut v: Vec<Validator> = members
            .iter()
            .map(|i| Validator {
                address: self.keys[*i].address(),
                public_key: self.keys[*i].public_key(),
                power: 1,
            })
            .collect();
        v.sort_by_key(|v| v.address);
        ValidatorSet::new(v).unwrap()
    }
}

/// What a client holding only the genesis can check: walking the chain,
/// every epoch's last block is certified by the set it knows and names the
/// next one, which the state after it holds; the tip's certificate
/// verifies with the set reached that way. Returns the epochs walked.
fn verify_from_genesis(node: &Node, genesis: &Genesis) -> u64 {
    // Each read takes the state lock on its own: holding a read guard
    // across another read deadlocks once a commit waits to write.
    let read = |h: u64| {
        let state = node.shared().state().read().unwrap();
        let reader = BlockReader::new(&state);
        (
            reader.block(h).unwrap().unwrap(),
            reader.certificate(h).unwrap().unwrap(),
        )
    };
    let tip = node
        .shared()
        .state()
        .read()
        .unwrap()
        .latest_version()
        .unwrap();
    let mut set = genesis.validators.clone();
    let mut epoch = 0;
    for h in 1..=tip {
        let (block, cert) = read(h);
        let ends = block.header.next_validators_hash != set.hash();
        if !ends && h != tip {
            continue;
        }
        assert_eq!(cert.epoch, epoch, "certificate of block {h}");
        cert.verify_header(&block.header, &set)
            .unwrap_or_else(|e| panic!("block {h} of epoch {epoch}: {e}"));
        if ends {
            let next: ValidatorSet = {
                let base = StateBase::at(node.shared().state(), Some(h), None);
                stele_exec::governance::validators(&StateWorld::new(base)).unwrap()
            };
            assert_eq!(next.hash(), block.header.next_validators_hash);
            set = next;
            epoch += 1;
        }
    }
    epoch
}

/// The scenario on in-process validators over real QUIC and
/// RocksDB: a fifth validator joins (following the chain first), an
/// original one leaves, and one rotates its key; every transfer sent
/// before, during and after commits once, and the chain of sets verifies
/// from the genesis alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_join_leave_and_rotate_keys_at_epoch_boundaries() {
    if let Ok(filter) = std::env::var("STELE_EPOCH_DEBUG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let mut cluster = Cluster::start(4).await;
    cluster.until_height(2).await;
    let mut sent = Vec::new();
    let mut nonce = 0;
    let mut send = |cluster: &Cluster, via: usize| {
        let raw = transfer(0, nonce, 1, 1);
        nonce += 1;
        sent.push(cluster.node(via).submit(&raw).unwrap());
    };
    send(&cluster, 1);

    // Epoch 1: a fifth validator joins; it follows the chain until then.
    let joiner = cluster.add_validator(key(4)).await;
    let five = cluster.set_of(&[0, 1, 2, 3, joiner]);
    cluster.vote(0, 0, &five, &[0, 1, 2], &[joiner]);
    send(&cluster, 2);
    cluster.until_epoch(1).await;
    assert_eq!(cluster.node(joiner).shared().epoch().validators, five);
    send(&cluster, 3);
    // With node 0 stopped, 4 of the 5 is a quorum only with the joiner.
    cluster.stop(0).await;
    let h = cluster.height(1);
    cluster.until_height(h + 5).await;
    send(&cluster, joiner);

    // Epoch 2: node 0 leaves.
    let four = cluster.set_of(&[1, 2, 3, joiner]);
    cluster.vote(1, 1, &four, &[1, 2, 3, joiner], &[]);
    cluster.until_epoch(2).await;
    send(&cluster, 1);
    // Back, node 0 follows as a node outside the set.
    cluster.restart(0).await;
    let h = cluster.height(1);
    cluster.until_height(h + 3).await;
    assert!(
        !cluster
            .node(0)
            .shared()
            .epoch()
            .is_member(&cluster.keys[0].address())
    );

    // Epoch 3: validator 1 rotates its key: a node with the new key takes
    // its place.
    let rotated = cluster.add_validator(key(5)).await;
    let rotated_set = cluster.set_of(&[rotated, 2, 3, joiner]);
    cluster.vote(2, 2, &rotated_set, &[1, 2, 3], &[rotated]);
    cluster.until_epoch(3).await;
    cluster.stop(1).await;
    // 3 of {rotated, 2, 3, joiner} with node 2 stopped too: the rotated
    // key validates.
    cluster.stop(2).await;
    send(&cluster, 3);
    let h = cluster.height(3);
    cluster.until_height(h + 5).await;
    until("every transfer committed", || {
        sent.iter().all(|tx| cluster.committed_everywhere(tx))
    })
    .await;
    cluster.assert_same_chain();
    assert_eq!(verify_from_genesis(cluster.node(3), &cluster.genesis), 3);
    // The epoch history the block store keeps for good: one record a set.
    {
        let state = cluster.node(3).shared().state().read().unwrap();
        let reader = BlockReader::new(&state);
        let mut record = reader.epoch_containing(1).unwrap().unwrap();
        let mut sets = vec![record.validators.clone()];
        while let Some(next) = reader.epoch_after(&record).unwrap() {
            assert_eq!(next.epoch, record.epoch + 1);
            sets.push(next.validators.clone());
            record = next;
        }
        assert_eq!(
            sets,
            [cluster.genesis.validators.clone(), five, four, rotated_set]
        );
    }
    for i in [0, 3, joiner, rotated] {
        cluster.stop(i).await;
    }
}

// ---- protocol upgrades (ADR 0011) -------------------------------------

/// Account `from`'s call of the counter at `contract`.
fn increment(from: u16, nonce: u64, contract: Address) -> Vec<u8> {
    Transaction {
        chain_id: CHAIN,
        nonce,
        gas_limit: 5_000_000,
        gas_price: 1,
        payload: TxPayload::Call {
            contract,
            method: "increment".into(),
            args: vec![],
            value: 0,
        },
    }
    .sign(&account(from))
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gas_schedule_upgrade_activates_under_load_and_a_node_without_it_stops_before() {
    // Gas schedule V4 at genesis; the validators vote V5 in.
    let params = ChainParams {
        gas_schedule_version: 4,
        ..ChainParams::default()
    };
    let mut cluster = Cluster::start_on(4, params, (1_000_000, 0, 1), 30, 64 << 20).await;
    // A full node built before V5 (standing for one: its versions capped).
    let mut old = cluster.full_options("old", &account(7));
    old.protocol_support = stele_exec::ProtocolSupport {
        gas_schedule_max: 4,
        ..Default::default()
    };
    let old = Node::start(old).await.unwrap();
    let mut commits = cluster.node(0).subscribe();

    let deploy = Transaction {
        chain_id: CHAIN,
        nonce: 0,
        gas_limit: 100_000_000,
        gas_price: 1,
        payload: TxPayload::Deploy {
            code: wat::parse_str(stele_fixtures::COUNTER_WAT).unwrap(),
            init_args: vec![],
            value: 0,
        },
    }
    .sign(&account(0));
    let contract = Address::contract(&account(0).address(), 0);
    let mut sent = vec![cluster.node(0).submit(&deploy.to_bytes()).unwrap()];
    until("the deploy", || cluster.committed_everywhere(&sent[0])).await;

    // Load: calls and transfers through every validator, before, during
    // and after the vote and the activation.
    // Accounts 0-3 call, 4 and 5 pay; a sender whose queue is full (the
    // pool takes 64 a sender) waits its turn.
    let mut nonces = [1u64, 0, 0, 0, 0, 0];
    let mut load = |cluster: &Cluster, sent: &mut Vec<Hash>, round: usize| {
        let via = round % 4;
        let (caller, payer) = (round % 4, 4 + round % 2);
        let call = increment(caller as u16, nonces[caller], contract);
        let pay = transfer(payer as u16, nonces[payer], 6, 1);
        for (who, raw) in [(caller, call), (payer, pay)] {
            match cluster.node(via).submit(&raw) {
                Ok(hash) => {
                    sent.push(hash);
                    nonces[who] += 1;
                }
                // The sender's queue is full (64 a sender), or the node
                // taking it lags the chain so its queue looks full: the
                // sender waits its turn.
                Err(AdmitError::SenderFull { .. } | AdmitError::NonceTooHigh { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    for round in 0..10 {
        load(&cluster, &mut sent, round);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The vote: three of four validators, activation 48 blocks on (K is 16:
    // at least 32 after each vote).
    let next = ProtocolParams {
        gas_schedule_version: 5,
        ..cluster.genesis.params.protocol()
    };
    let activation = cluster.height(0) + 48;
    for v in 0..3 {
        let voter = &cluster.keys[v];
        let tx = Transaction {
            chain_id: CHAIN,
            nonce: 0,
            gas_limit: 1_000_000,
            gas_price: 1,
            payload: TxPayload::VoteUpgrade {
                epoch: 0,
                activation_height: activation,
                params: next.clone(),
            },
        }
        .sign(voter);
        sent.push(cluster.node(v).submit(&tx.to_bytes()).unwrap());
    }
    let mut round = 10;
    while cluster.height(0) < activation + 8 {
        load(&cluster, &mut sent, round);
        round += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until("every transaction committed", || {
        sent.iter().all(|tx| cluster.committed_everywhere(tx))
    })
    .await;
    for n in cluster.running() {
        let p = n.shared().protocol();
        assert_eq!((&p.active, &p.scheduled), (&next, &None));
    }
    cluster.assert_same_chain();

    // The counter's calls cost one price below the activation height and
    // another from it on.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    while let Ok(c) = commits.try_recv() {
        for (tx, r) in c.block.txs.iter().zip(&c.receipts) {
            if let TxPayload::Call { .. } = tx.tx.payload {
                assert!(r.status.is_success(), "{r:?}");
                let side = if c.block.header.height < activation {
                    &mut before
                } else {
                    &mut after
                };
                side.push(r.gas_used);
            }
        }
    }
    assert!(
        !before.is_empty() && !after.is_empty(),
        "calls on both sides"
    );
    // (The first increment creates the counter's slot, the rest update it.)
    let (v4, v5) = (before[before.len() - 1], after[0]);
    assert!(before[1..].iter().all(|g| *g == v4), "{before:?}");
    assert!(after.iter().all(|g| *g == v5), "{after:?}");
    assert!(
        v5 > v4,
        "V5 prices an instance's pages higher: {v4} then {v5}"
    );

    // The old node stopped after the block before the activation, saying
    // why, with everything up to it committed.
    until("the old node stops", || old.is_finished()).await;
    assert_eq!(old.progress().height, activation - 1);
    assert_eq!(
        block_and_root(&old, activation - 1),
        block_and_root(cluster.node(0), activation - 1)
    );
    let e = old.shutdown().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "block {activation} is the first under a protocol upgrade"
        )) && e.contains("no gas schedule version 5"),
        "{e}"
    );
    for i in 0..4 {
        cluster.stop(i).await;
    }
}
