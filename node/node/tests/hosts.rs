//! Nothing in a Stele network assumes one host: four validators from
//! `stele-node testnet --hosts`, each on an address of its own, connect to
//! each other, commit a transfer submitted to one of them, and all four
//! hold the same block at its height.
//!
//! Which mode runs is decided at run time:
//!
//! - **Network namespaces**, when `ip` exists and `ip netns add` works (as
//!   root): four namespaces `stele-h0`..`stele-h3`, each with one veth
//!   into a bridge in a fifth, `stele-hbr`, at 10.77.0.1-4/24 (loopback
//!   up). Each node runs in its namespace (`ip netns exec`, through the
//!   cluster harness's command prefix) and listens on 0.0.0.0 there, as on
//!   a host of its own, with its RPC public; one more veth gives the root
//!   namespace 10.77.0.254 on the bridge, from where the test's client
//!   reaches each node's RPC. A guard deletes the namespaces (and with
//!   them every veth and the bridge) when dropped, also on a panic, and
//!   any left by a run that was killed before it could.
//! - **Loopback aliases** otherwise, or when `STELE_HOSTS_LOOPBACK` is
//!   set: the hosts are 127.0.0.11-14 (Linux routes all of 127/8 to
//!   `lo`), written with `--bind-hosts`, so each node binds its own
//!   address and dials the others' addresses.
//!
//! Either mode prints nothing when it passes and takes about 5 s; the
//! cluster kills its nodes when dropped.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use stele_client::api::BlockId;
use stele_client::{Signer, TxBuilder};
use stele_cluster::cluster::{Cluster, ClusterConfig, HostsConfig, free_port_pair};
use stele_types::SecretKey;

const VALIDATORS: usize = 4;

/// The validators' namespaces, then the bridge's.
const NAMESPACES: [&str; VALIDATORS + 1] =
    ["stele-h0", "stele-h1", "stele-h2", "stele-h3", "stele-hbr"];

/// The root namespace's end of its veth to the bridge.
const ROOT_VETH: &str = "stele-hr0";

/// Runs `ip args..` quietly; whether it succeeded (false if `ip` is
/// missing).
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ip args..`, which must succeed.
fn ip_must(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and links of the namespace mode; deleted when dropped.
struct Namespaces;

impl Namespaces {
    /// Sets the namespaces up, or `None` if `ip netns add` does not work
    /// here (no `ip`, not root, no namespace support): the loopback mode
    /// runs then. A later step that fails is a test failure.
    fn set_up() -> Option<Namespaces> {
        // Left by a run killed before its guard could clean up (this
        // test's lock is held, so no other run owns them).
        Namespaces::remove();
        if !ip(&["netns", "add", NAMESPACES[0]]) {
            return None;
        }
        let guard = Namespaces;
        let bridge = NAMESPACES[VALIDATORS];
        ip_must(&["netns", "add", bridge]);
        ip_must(&["-n", bridge, "link", "set", "lo", "up"]);
        ip_must(&["-n", bridge, "link", "add", "br0", "type", "bridge"]);
        ip_must(&["-n", bridge, "link", "set", "br0", "up"]);
        for (i, ns) in NAMESPACES[..VALIDATORS].iter().enumerate() {
            if i > 0 {
                ip_must(&["netns", "add", ns]);
            }
            let port = format!("h{i}");
            let addr = format!("10.77.0.{}/24", i + 1);
            ip_must(&["-n", ns, "link", "set", "lo", "up"]);
            ip_must(&[
                "-n", bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ]);
            ip_must(&["-n", bridge, "link", "set", &port, "master", "br0", "up"]);
            ip_must(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]);
            ip_must(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        ip_must(&[
            "link", "add", ROOT_VETH, "type", "veth", "peer", "name", "root", "netns", bridge,
        ]);
        ip_must(&["-n", bridge, "link", "set", "root", "master", "br0", "up"]);
        ip_must(&["addr", "add", "10.77.0.254/24", "dev", ROOT_VETH]);
        ip_must(&["link", "set", ROOT_VETH, "up"]);
        Some(guard)
    }

    /// Deletes every namespace (their veths and the bridge go with them)
    /// and the root namespace's veth, whichever exist.
    fn remove() {
        for ns in NAMESPACES {
            ip(&["netns", "del", ns]);
        }
        // Gone with its peer in `stele-hbr`, unless that never existed.
        ip(&["link", "del", ROOT_VETH]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        Namespaces::remove();
    }
}

/// One run of this test at a time on the machine: the namespace names are
/// fixed. Held until dropped.
fn machine_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("stele-hosts-test.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    file
}

#[test]
fn four_validators_on_four_addresses_commit_the_same_transfer() {
    let _lock = machine_lock();
    // Dropped after the cluster (declared first): the nodes die before
    // their namespaces go.
    let namespaces = match std::env::var_os("STELE_HOSTS_LOOPBACK") {
        Some(_) => None,
        None => Namespaces::set_up(),
    };
    let mut config = ClusterConfig::new(env!("CARGO_BIN_EXE_stele-node"), VALIDATORS);
    config.accounts = 1;
    let hosts = match &namespaces {
        Some(_) => {
            config.command_prefix = NAMESPACES[..VALIDATORS]
                .iter()
                .map(|ns| vec!["ip".into(), "netns".into(), "exec".into(), ns.to_string()])
                .collect();
            let addrs: Vec<IpAddr> = (1..=4).map(|i| IpAddr::from([10, 77, 0, i])).collect();
            HostsConfig {
                addrs,
                // Each namespace has its own ports.
                base_port: 26656,
                bind_hosts: false,
            }
        }
        None => {
            let addrs: Vec<IpAddr> = (11..=14).map(|i| IpAddr::from([127, 0, 0, i])).collect();
            HostsConfig {
                base_port: free_port_pair(&addrs).unwrap(),
                addrs,
                bind_hosts: true,
            }
        }
    };
    config.hosts = Some(hosts);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cluster = Cluster::start(config).await.unwrap();
        let all: Vec<usize> = (0..VALIDATORS).collect();
        cluster
            .wait_height(&all, 1, Duration::from_secs(30))
            .await
            .unwrap();
        // Each reaches the other three at their own addresses.
        for i in all.iter().copied() {
            let mut connected = 0;
            for _ in 0..100 {
                connected = cluster.status(i).await.unwrap().peers_connected;
                if connected == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(connected, 3, "node {i}'s peers");
        }

        let from = &cluster.accounts[0];
        let to = SecretKey::generate().address();
        let tx = TxBuilder::new(cluster.chain_id)
            .nonce(0)
            .gas_limit(100_000)
            .transfer(to, 7);
        let (_, raw, hash) = Signer::new(from.key.clone()).sign(tx);
        let receipt = cluster
            .client(0)
            .send_and_wait(&raw, Some(from.address), Duration::from_secs(20))
            .await
            .unwrap();
        for i in all {
            let client = cluster.client(i);
            let seen = client
                .wait_for_commit(hash, Duration::from_secs(20))
                .await
                .unwrap();
            assert_eq!(
                (seen.block_height, seen.block_hash),
                (receipt.block_height, receipt.block_hash),
                "node {i}"
            );
            let block = client
                .get_block(BlockId::Height(receipt.block_height))
                .await
                .unwrap();
            assert_eq!(block.hash, receipt.block_hash, "node {i}");
            assert_eq!(client.get_account(to).await.unwrap().balance, 7, "node {i}");
        }
        drop(cluster);
    });
    drop(namespaces);
}
