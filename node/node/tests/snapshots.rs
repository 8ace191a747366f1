//! State snapshots as backups (ADR 0012) on real `stele-node` processes: a
//! stopped validator's home is exported with `stele-node snapshot export`,
//! its data deleted and the file imported with `snapshot import`; the
//! validator starts from the snapshot's height, syncs the rest and votes
//! again. Damaged files and another chain's are refused by the import
//! before anything is written.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use stele_client::Signer;
use stele_client::api::BlockId;
use stele_cluster::cluster::{Cluster, ClusterConfig};
use stele_cluster::contracts::{fund_accounts, setup_amm};

const BIN: &str = env!("CARGO_BIN_EXE_stele-node");

fn snapshot(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("snapshot")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of `home` without its chain data: a new home of the same node.
fn empty_copy(home: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["config.toml", "genesis.json", "node_key.json"] {
        std::fs::copy(home.join(name), to.join(name)).unwrap();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Four validators (and `config`'s full nodes, which `stopped` stops and
/// wipes at once) that committed a block, and 60 accounts funded by the
/// dev accounts.
async fn funded_cluster(config: ClusterConfig, stopped: &[usize]) -> (Cluster, Vec<Arc<Signer>>) {
    let mut cluster = Cluster::start(config).await.unwrap();
    for &i in stopped {
        cluster.stop(i).await.unwrap();
        cluster.wipe(i).unwrap();
    }
    cluster
        .wait_height(&[0, 1, 2, 3], 1, Duration::from_secs(60))
        .await
        .unwrap();
    let dev = dev_signers(&cluster);
    let funded = fund_accounts(
        &cluster.endpoints(),
        cluster.chain_id,
        &dev[1..],
        60,
        10u128.pow(21),
    )
    .await
    .unwrap();
    (cluster, funded)
}

fn dev_signers(cluster: &Cluster) -> Vec<Arc<Signer>> {
    cluster
        .accounts
        .iter()
        .map(|a| Arc::new(Signer::new(a.key.clone())))
        .collect()
}

#[test]
fn a_validator_restored_from_a_snapshot_rejoins_and_damaged_files_are_refused() {
    runtime().block_on(async {
        let mut config = ClusterConfig::new(BIN, 4);
        config.accounts = 4;
        let (mut cluster, traders) = funded_cluster(config, &[]).await;
        // A state worth the name: accounts, two tokens and a pool.
        let dev = dev_signers(&cluster);
        setup_amm(
            &cluster.endpoints(),
            cluster.chain_id,
            dev[0].clone(),
            &traders[..4],
        )
        .await
        .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node3.snapshot");
        let home = cluster.root().join("net").join("node3");
        // A running node's home is locked.
        let out = snapshot(&[
            "export",
            "--home",
            home.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{}", text(&out));
        cluster.stop(3).await.unwrap();
        let out = snapshot(&[
            "export",
            "--home",
            home.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let height = cluster.client(0).get_validators(None).await.unwrap().height;
        let exported_at: u64 = text(&out)
            .split("height ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(exported_at > 1 && exported_at <= height);

        // Refused before anything is written: a flipped byte in a chunk, a
        // cut-off file, another chain's genesis, a home that holds a chain.
        let bytes = std::fs::read(&file).unwrap();
        let spare = dir.path().join("spare");
        empty_copy(&home, &spare);
        let damaged = dir.path().join("damaged");
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 3] ^= 0x40;
        std::fs::write(&damaged, &flipped).unwrap();
        let out = snapshot(&[
            "import",
            "--home",
            spare.to_str().unwrap(),
            damaged.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        assert!(text(&out).contains("chunk"), "{}", text(&out));
        std::fs::write(&damaged, &bytes[..bytes.len() - 100]).unwrap();
        let out = snapshot(&[
            "import",
            "--home",
            spare.to_str().unwrap(),
            damaged.to_str().unwrap(),
        ]);
        assert!(text(&out).contains("truncated"), "{}", text(&out));
        let other = dir.path().join("other");
        let made = Command::new(BIN)
            .args([
                "init",
                "--home",
                other.to_str().unwrap(),
                "--chain-id",
                "99",
            ])
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", text(&made));
        let out = snapshot(&[
            "import",
            "--home",
            other.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(text(&out).contains("chain"), "{}", text(&out));
        let out = snapshot(&[
            "import",
            "--home",
            home.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(
            text(&out).contains("already holds a chain"),
            "{}",
            text(&out)
        );

        // Restored: node 3's data deleted, the snapshot imported.
        cluster.wipe(3).unwrap();
        let out = snapshot(&[
            "import",
            "--home",
            home.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        cluster.restart(3).await.unwrap();
        let top = cluster.max_height(&[0, 1, 2]).await.unwrap();
        cluster
            .wait_height(&[3], top, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails(30)));
        let (restored, reference) = (cluster.client(3), cluster.client(0));
        for h in [exported_at, exported_at + 1, top] {
            let a = restored.get_block(BlockId::Height(h)).await.unwrap();
            let b = reference.get_block(BlockId::Height(h)).await.unwrap();
            assert_eq!(a.block.hash(), b.block.hash(), "block {h}");
        }
        assert!(
            restored
                .get_block(BlockId::Height(exported_at - 1))
                .await
                .is_err(),
            "a restored node has no blocks below its snapshot"
        );
        for t in &traders[..8] {
            assert_eq!(
                restored.get_account(t.address()).await.unwrap().balance,
                reference.get_account(t.address()).await.unwrap().balance
            );
        }
        // It votes: with node 2 down, 3 of 4 is a quorum only with it.
        cluster.stop(2).await.unwrap();
        cluster
            .wait_progress(&[0, 1, 3], Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails(30)));
    });
}

/// Joining by snapshot (ADR 0012): validators keep a snapshot every 16
/// heights in small chunks; a wiped validator and a wiped full node join
/// by the newest one their peers keep, fetching its chunks from several
/// peers, refusing the corrupt chunks one peer sends, and follow the chain
/// from there (no blocks below it).
#[test]
fn a_wiped_validator_and_a_wiped_full_node_join_by_snapshot() {
    runtime().block_on(async {
        let mut config = ClusterConfig::new(BIN, 4);
        config.accounts = 4;
        config.full_nodes = 1;
        config.metrics = true;
        for (k, v) in [
            ("snapshot_interval_blocks", 16),
            ("snapshots_kept", 2),
            ("snapshot_chunk_entries", 16),
        ] {
            config
                .storage_extra
                .insert(k.into(), toml::Value::Integer(v));
        }
        // The full node (index 4) starts over later: it joins then.
        let full = 4;
        let (mut cluster, funded) = funded_cluster(config, &[full]).await;
        let h = cluster.max_height(&[0, 1, 2, 3]).await.unwrap();
        cluster
            .wait_height(&[0, 1, 2, 3], h + 34, Duration::from_secs(60))
            .await
            .unwrap();
        // Every validator keeps the newest snapshot by now.
        let newest = |i: usize| {
            let dir = cluster
                .root()
                .join("net")
                .join(format!("node{i}"))
                .join("data");
            stele_node::node::kept_heights(&stele_node::node::snapshots_dir(&dir))
                .first()
                .copied()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while (0..4).any(|i| newest(i).is_none_or(|s| s < h + 16)) {
            assert!(std::time::Instant::now() < deadline, "no snapshots made");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // No quorum among 0, 1 and 2 (their links cut; each still
        // reaches 3 and the joiners): the chain stands still, so nobody
        // makes a newer snapshot, and what is set up below is what the
        // first joiner finds.
        use stele_cluster::relay::LinkRule;
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            cluster.set_link(a, b, LinkRule::CUT);
        }
        // Validator 0 serves corrupt chunks of every snapshot it keeps.
        let snapshots =
            stele_node::node::snapshots_dir(&cluster.root().join("net").join("node0").join("data"));
        for height in stele_node::node::kept_heights(&snapshots) {
            for entry in std::fs::read_dir(snapshots.join(height.to_string())).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("chunk-")
                {
                    let mut bytes = std::fs::read(&path).unwrap();
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0x01;
                    std::fs::write(&path, bytes).unwrap();
                }
            }
        }

        // Validator 2 names four snapshots newer than any it has: their
        // folders hold the index of a real one, of another height. Each
        // costs a joiner one refused index from it, then it is left out.
        let liar =
            stele_node::node::snapshots_dir(&cluster.root().join("net").join("node2").join("data"));
        let real = stele_node::node::kept_heights(&liar)[0];
        for fake in 1..=4u64 {
            let to = liar.join((real + 1_000_000 * fake).to_string());
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(liar.join(real.to_string())).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }

        // The full node's download was cut short earlier: it holds most of
        // the chunks (one of them damaged), named by their hashes. It
        // resumes from those that check (the parts of a newer snapshot that
        // did not change included).
        let kept =
            stele_node::node::snapshots_dir(&cluster.root().join("net").join("node1").join("data"));
        let newest = stele_node::node::kept_heights(&kept)[0];
        let download = cluster
            .root()
            .join("net")
            .join("full0")
            .join("data")
            .join("snapshot-sync");
        std::fs::create_dir_all(&download).unwrap();
        let mut copied = 0;
        for entry in std::fs::read_dir(kept.join(newest.to_string())).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("chunk-")
            {
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            let name = hex::encode(stele_types::keccak256(&bytes).0);
            if copied == 0 {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x01;
            }
            std::fs::write(download.join(name), bytes).unwrap();
            copied += 1;
        }
        assert!(copied > 2);

        cluster.stop(3).await.unwrap();
        cluster.wipe(3).unwrap();
        for joiner in [3, full] {
            cluster.restart(joiner).await.unwrap();
            // The chain goes on once validator 3 has joined.
            cluster.set_all_links(LinkRule::PASS);
            let top = cluster.max_height(&[0, 1, 2]).await.unwrap();
            cluster
                .wait_height(&[joiner], top, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails(40)));
            let log = cluster.log_tail(joiner, 400);
            assert!(log.contains("joined by snapshot"), "{log}");
            let client = cluster.client(joiner);
            assert!(
                client.get_block(BlockId::Height(1)).await.is_err(),
                "node {joiner} replayed from the genesis"
            );
            let reference = cluster.client(1);
            for t in &funded[..8] {
                assert_eq!(
                    client.get_account(t.address()).await.unwrap().balance,
                    reference.get_account(t.address()).await.unwrap().balance
                );
            }
        }
        let log = cluster.log_tail(3, 400);
        assert!(
            log.contains("a peer sent a bad snapshot chunk"),
            "validator 0's corrupt chunks were taken: {log}"
        );
        assert!(
            log.contains("snapshot index refused"),
            "validator 2's false heights were not asked: {log}"
        );
        let log = cluster.log_tail(full, 400);
        assert!(log.contains("resuming a snapshot download"), "{log}");
        // `/status` says how each joined; the metrics count what came.
        for joiner in [3, full] {
            let status = cluster.client(joiner).get_status().await.unwrap();
            let joined = status.snapshot.expect("the join is in the status");
            assert_eq!(joined.phase, "joined");
            assert!(joined.height > h, "{joined:?}");
            assert_eq!(
                joined.chunks_fetched + joined.chunks_resumed,
                joined.chunks,
                "{joined:?}"
            );
            assert_ne!(status.phase, stele_client::api::SyncPhase::Snapshot);
            if joiner == 3 {
                assert!(joined.chunks_refused > 0, "{joined:?}");
            } else {
                assert!(joined.chunks_resumed > 0, "{joined:?}");
            }
        }
        let addr = cluster.metrics_addr(3).unwrap();
        for (name, at_least) in [
            ("stele_snapshot_sync_chunks_fetched_total", 1.0),
            ("stele_snapshot_sync_chunks_refused_total", 1.0),
            ("stele_snapshot_sync_height", h as f64),
        ] {
            let value = stele_cluster::node_stats::metric(addr, name)
                .await
                .unwrap()
                .unwrap_or(0.0);
            assert!(value >= at_least, "{name} = {value}");
        }
        let mut served = 0.0;
        for i in 0..3 {
            let addr = cluster.metrics_addr(i).unwrap();
            served += stele_cluster::node_stats::metric(addr, "stele_snapshot_chunks_served_total")
                .await
                .unwrap()
                .unwrap_or(0.0);
        }
        assert!(served > 0.0, "no chunk served was counted");
        // A kept snapshot is exported from a running node by its height,
        // and the file imports.
        let home1 = cluster.root().join("net").join("node1");
        let kept =
            stele_node::node::kept_heights(&stele_node::node::snapshots_dir(&home1.join("data")))
                [0];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kept.snapshot");
        let out = snapshot(&[
            "export",
            "--home",
            home1.to_str().unwrap(),
            "--height",
            &kept.to_string(),
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let out = snapshot(&[
            "export",
            "--home",
            home1.to_str().unwrap(),
            "--height",
            "3",
            dir.path().join("none").to_str().unwrap(),
        ]);
        assert!(
            text(&out).contains("keeps no snapshot of height 3"),
            "{}",
            text(&out)
        );
        let spare = dir.path().join("spare");
        empty_copy(&home1, &spare);
        let out = snapshot(&[
            "import",
            "--home",
            spare.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("height {kept} ")),
            "{}",
            text(&out)
        );
        // The restored validator votes: with node 2 down, 3 of 4 is a
        // quorum only with it.
        cluster.stop(2).await.unwrap();
        cluster
            .wait_progress(&[0, 1, 3], Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails(30)));
    });
}

/// Issue 28: a join by snapshot killed halfway (SIGKILL while it fetches,
/// seen through `/status`, which answers during the join) resumes from the
/// chunks it had checked and kept, and fetches only the rest.
#[test]
fn a_join_by_snapshot_killed_halfway_resumes_from_the_chunks_it_kept() {
    runtime().block_on(async {
        let mut config = ClusterConfig::new(BIN, 4);
        config.accounts = 4;
        for (k, v) in [
            ("snapshot_interval_blocks", 16),
            ("snapshots_kept", 2),
            ("snapshot_chunk_entries", 4),
        ] {
            config
                .storage_extra
                .insert(k.into(), toml::Value::Integer(v));
        }
        let (mut cluster, _) = funded_cluster(config, &[]).await;
        let h = cluster.max_height(&[0, 1, 2, 3]).await.unwrap();
        cluster
            .wait_height(&[0, 1, 2, 3], h + 20, Duration::from_secs(60))
            .await
            .unwrap();
        cluster.stop(3).await.unwrap();
        cluster.wipe(3).unwrap();
        // Slow links make the download take seconds.
        let slow = stele_cluster::relay::LinkRule {
            delay: Duration::from_millis(300),
            ..stele_cluster::relay::LinkRule::PASS
        };
        for j in 0..3 {
            cluster.set_link(3, j, slow);
        }
        cluster.start_node(3).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let fetched = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "never seen fetching\n{}",
                cluster.log_tail(3, 60)
            );
            if let Ok(status) = cluster.status(3).await
                && let Some(s) = status.snapshot
                && s.phase == "fetching"
                && s.chunks_fetched >= 2
            {
                assert!(s.chunks_fetched < s.chunks, "{s:?}");
                break s.chunks_fetched;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        cluster.kill(3).unwrap();
        for j in 0..3 {
            cluster.set_link(3, j, stele_cluster::relay::LinkRule::PASS);
        }
        cluster
            .restart(3)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(3, 60)));
        let status = cluster.status(3).await.unwrap();
        let joined = status.snapshot.expect("the join is in the status");
        assert_eq!(joined.phase, "joined", "{joined:?}");
        assert!(
            joined.chunks_resumed >= fetched,
            "kept {fetched} chunks before the kill: {joined:?}"
        );
        assert_eq!(joined.chunks_fetched + joined.chunks_resumed, joined.chunks);
        let top = cluster.max_height(&[0, 1, 2]).await.unwrap();
        cluster
            .wait_height(&[3], top, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(3, 60)));
    });
}
