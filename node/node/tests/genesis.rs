//! A genesis assembled across hosts, as `docs/operators.md` ("Starting a
//! network across hosts") tells operators to: `stele-node init
//! --advertise` on each host, `genesis new` / `collect` / `add-account` /
//! `build` by whoever assembles it, `init --genesis --peers-from` on each
//! home, then start. The four homes here share one machine (one validator
//! advertises `localhost`, a DNS name); the validators then run in this
//! process and commit blocks together.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use stele_client::Client;
use stele_client::api::BlockId;
use stele_cluster::cluster::free_port;
use stele_node::config::NodeConfig;
use stele_node::genesis::Genesis;
use stele_node::home;
use stele_types::SecretKey;

const BIN: &str = env!("CARGO_BIN_EXE_stele-node");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "stele-node {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "stele-node {}: {err}",
        args.join(" ")
    );
    err
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The `genesis hash:` line of `genesis show`.
fn shown_hash(genesis: &Path) -> String {
    let shown = ok(&["genesis", "show", "--genesis", s(genesis)]);
    shown
        .lines()
        .find(|l| l.starts_with("genesis hash:"))
        .unwrap_or_else(|| panic!("no hash in {shown}"))
        .to_owned()
}

#[test]
fn validators_prepared_on_their_hosts_run_the_genesis_built_from_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let records = d.join("records");
    std::fs::create_dir_all(&records).unwrap();
    let mut homes: Vec<PathBuf> = Vec::new();
    for i in 0..4 {
        let home = d.join(format!("host{i}"));
        let port = free_port().unwrap();
        let host = if i == 3 { "localhost" } else { "127.0.0.1" };
        ok(&[
            "init",
            "--home",
            s(&home),
            "--chain-id",
            "77",
            "--advertise",
            &format!("{host}:{port}"),
            "--p2p",
            &format!("127.0.0.1:{port}"),
            "--rpc",
            &format!("127.0.0.1:{}", free_port().unwrap()),
        ]);
        assert!(!home.join("genesis.json").exists() && !home.join("data").exists());
        std::fs::copy(
            home.join("validator.json"),
            records.join(format!("v{i}.json")),
        )
        .unwrap();
        homes.push(home);
    }
    // A prepared home is not prepared twice.
    let err = fails(&["init", "--home", s(&homes[0]), "--advertise", "10.0.0.1:1"]);
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&[
        "init",
        "--home",
        s(&d.join("x")),
        "--advertise",
        "bad_host:1",
    ]);
    assert!(err.contains("bad_host"), "{err}");

    // One draft collects the folder; another adds the records one by one,
    // in the opposite order.
    let collected = d.join("collected.json");
    let by_hand = d.join("by-hand.json");
    for draft in [&collected, &by_hand] {
        ok(&[
            "genesis",
            "new",
            "--chain-id",
            "77",
            "--genesis-time-ms",
            "1700000000000",
            "--output",
            s(draft),
        ]);
    }
    ok(&[
        "genesis",
        "collect",
        "--genesis",
        s(&collected),
        "--records",
        s(&records),
    ]);
    for i in (0..4).rev() {
        let record = records.join(format!("v{i}.json"));
        ok(&[
            "genesis",
            "add-validator",
            "--genesis",
            s(&by_hand),
            "--record",
            s(&record),
        ]);
    }
    let record = records.join("v0.json");
    let err = fails(&[
        "genesis",
        "add-validator",
        "--genesis",
        s(&by_hand),
        "--record",
        s(&record),
    ]);
    assert!(err.contains("already in the draft"), "{err}");
    // A record changed after signing (more power) is refused.
    let tampered = d.join("tampered.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    json["power"] = 10.into();
    std::fs::write(&tampered, json.to_string()).unwrap();
    let fresh = d.join("fresh.json");
    ok(&["genesis", "new", "--chain-id", "77", "--output", s(&fresh)]);
    let err = fails(&[
        "genesis",
        "add-validator",
        "--genesis",
        s(&fresh),
        "--record",
        s(&tampered),
    ]);
    assert!(err.contains("signature"), "{err}");
    // So is a record for another chain.
    let other = d.join("other.json");
    ok(&["genesis", "new", "--chain-id", "78", "--output", s(&other)]);
    let err = fails(&[
        "genesis",
        "collect",
        "--genesis",
        s(&other),
        "--records",
        s(&records),
    ]);
    assert!(err.contains("chain 77"), "{err}");

    let funded = SecretKey::generate().address().to_string();
    for draft in [&collected, &by_hand] {
        ok(&[
            "genesis",
            "add-account",
            "--genesis",
            s(draft),
            "--address",
            &funded,
            "--balance",
            "1000000000000000000000",
        ]);
    }
    assert_eq!(shown_hash(&collected), shown_hash(&by_hand));

    let genesis = d.join("genesis.json");
    let peers = d.join("peers.json");
    ok(&[
        "genesis",
        "build",
        "--genesis",
        s(&collected),
        "--output",
        s(&genesis),
        "--peers",
        s(&peers),
    ]);
    assert_eq!(shown_hash(&genesis), shown_hash(&collected));
    let built = Genesis::load(&genesis).unwrap();
    assert_eq!(built.validators.len(), 4);
    assert_eq!(built.allocations.len(), 1);

    for home in &homes {
        let done = ok(&[
            "init",
            "--home",
            s(home),
            "--genesis",
            s(&genesis),
            "--peers-from",
            s(&peers),
        ]);
        assert!(
            done.contains(&format!("genesis hash: {}", built.hash())),
            "{done}"
        );
        let config = NodeConfig::load(&home.join("config.toml")).unwrap();
        assert_eq!(config.p2p.peers.len(), 3);
    }
    // Finished once: a second time finds a genesis there.
    let err = fails(&["init", "--home", s(&homes[0]), "--genesis", s(&genesis)]);
    assert!(err.contains("already exists"), "{err}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut nodes = Vec::new();
        for home in &homes {
            nodes.push(home::start_home(home, false).await.unwrap());
        }
        let mut clients = Vec::new();
        for n in &nodes {
            let addr = n.rpc.as_ref().unwrap().local_addr();
            clients.push(Client::connect(&format!("http://{addr}")).await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut ready = true;
            for c in &clients {
                let status = c.get_status().await.unwrap();
                ready &= status.height >= 2 && status.peers_connected == 3;
            }
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "no common progress in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut hashes = Vec::new();
        for c in &clients {
            hashes.push(c.get_block(BlockId::Height(1)).await.unwrap().hash);
        }
        assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
        for n in nodes {
            n.shutdown().await.unwrap();
        }
    });
}
