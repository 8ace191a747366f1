//! The invariants checked after every scenario, over RPC only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Serialize;
use stele_client::Client;
use stele_client::api::{BlockId, BlockInfo, codes};
use stele_types::{Address, Amount, Hash};

use crate::cluster::Cluster;
use crate::load::TxRecord;

/// What the checks saw.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The height every checked node had reached, compared block by block.
    pub height: u64,
    pub nodes: Vec<usize>,
    pub committed_txs: usize,
    /// Load transactions accepted by a node, all committed exactly once.
    pub accepted_committed: usize,
    /// Load transactions only ever rejected that still committed (a send
    /// that failed in transport after the node took it).
    pub rejected_but_committed: usize,
    pub accounts_summed: usize,
}

async fn call<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, stele_client::ClientError>>,
) -> Result<T> {
    match tokio::time::timeout(Duration::from_secs(10), f).await {
        Ok(r) => r.map_err(|e| anyhow!("{what}: {e}")),
        Err(_) => bail!("{what}: timed out"),
    }
}

async fn blocks_of(client: Arc<Client>, node: usize, top: u64) -> Result<Vec<BlockInfo>> {
    let mut out = Vec::with_capacity(top as usize);
    for h in 1..=top {
        let info = call(
            &format!("node {node} get_block {h}"),
            client.get_block(BlockId::Height(h)),
        )
        .await?;
        out.push(info);
    }
    Ok(out)
}

/// `at` as milliseconds since the Unix epoch (to find it in the node logs).
fn unix_ms(at: std::time::Instant) -> u128 {
    let now = std::time::SystemTime::now();
    let then = now.checked_sub(at.elapsed()).unwrap_or(now);
    then.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Every block of `nodes` up to the height they all reached: identical
/// hashes and state roots at every height, each block linked to its parent
/// and numbered right. Returns node `nodes[0]`'s blocks.
pub async fn same_chain(cluster: &Cluster, nodes: &[usize]) -> Result<(u64, Vec<BlockInfo>)> {
    ensure!(!nodes.is_empty(), "no node to check");
    let top = cluster
        .wait_converged(nodes, Duration::from_secs(90))
        .await
        .context("nodes did not converge")?;
    let mut tasks = Vec::new();
    for &i in nodes {
        let client = cluster.client(i);
        tasks.push((i, tokio::spawn(blocks_of(client, i, top))));
    }
    let mut chains = Vec::new();
    for (i, t) in tasks {
        chains.push((i, t.await??));
    }
    let (first, reference) = &chains[0];
    for (i, chain) in &chains {
        let mut parent: Option<Hash> = None;
        for (k, info) in chain.iter().enumerate() {
            let h = k as u64 + 1;
            let header = &info.block.header;
            ensure!(
                header.height == h,
                "node {i}: block {h} says height {}",
                header.height
            );
            ensure!(
                info.hash == info.block.hash(),
                "node {i}: block {h} hash does not match its header"
            );
            if let Some(p) = parent {
                ensure!(
                    header.parent_hash == p,
                    "node {i}: block {h} not linked to {}",
                    h - 1
                );
            }
            parent = Some(info.hash);
            let r = &reference[k];
            ensure!(
                info.hash == r.hash && header.state_root == r.block.header.state_root,
                "nodes {first} and {i} disagree at height {h}: block {} root {} vs block {} root {}",
                r.hash,
                r.block.header.state_root,
                info.hash,
                header.state_root
            );
        }
    }
    let blocks = chains.swap_remove(0).1;
    Ok((top, blocks))
}

/// Every transaction accepted by a node is in exactly one block, with a
/// receipt at that height on every node; no transaction is in two blocks;
/// the load's only-rejected transactions are committed at most once.
pub async fn exactly_once(
    cluster: &Cluster,
    nodes: &[usize],
    blocks: &[BlockInfo],
    txs: &HashMap<Hash, TxRecord>,
) -> Result<(usize, usize, usize)> {
    let mut at: HashMap<Hash, Vec<u64>> = HashMap::new();
    for info in blocks {
        for tx in &info.block.txs {
            at.entry(tx.hash())
                .or_default()
                .push(info.block.header.height);
        }
    }
    let twice: Vec<_> = at.iter().filter(|(_, hs)| hs.len() > 1).take(5).collect();
    ensure!(
        twice.is_empty(),
        "transactions committed more than once: {twice:?}"
    );
    let mut missing = Vec::new();
    let mut accepted = Vec::new();
    let mut rejected_but_committed = 0;
    for (hash, r) in txs {
        let committed = at.get(hash).map(|hs| hs[0]);
        match (r.accepted_at.is_some(), committed) {
            (true, Some(h)) => accepted.push((*hash, h)),
            (true, None) => missing.push((
                *hash,
                r.sender,
                r.nonce,
                r.accepted_by.clone(),
                r.accepted_at.map(unix_ms),
            )),
            (false, Some(_)) => rejected_but_committed += 1,
            (false, None) => {}
        }
    }
    missing.sort_by_key(|m| (m.1, m.2));
    ensure!(
        missing.is_empty(),
        "{} accepted transactions never committed, e.g. (hash, sender, nonce, accepted by, \
         when the send began in Unix ms): {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let accepted = Arc::new(accepted);
    let mut tasks = Vec::new();
    // A few requests in flight per node.
    const LANES: usize = 4;
    for &i in nodes {
        for lane in 0..LANES {
            let client = cluster.client(i);
            let accepted = accepted.clone();
            tasks.push(tokio::spawn(async move {
                for (hash, h) in accepted.iter().skip(lane).step_by(LANES) {
                    let r = call(
                        &format!("node {i} get_receipt {hash}"),
                        client.get_receipt(*hash),
                    )
                    .await?;
                    ensure!(
                        r.block_height == *h && r.receipt.tx_hash == *hash,
                        "node {i}: receipt of {hash} at height {}, the block is at {h}",
                        r.block_height
                    );
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok((at.len(), accepted.len(), rejected_but_committed))
}

/// The native balances of `addresses` sum to `supply` on every node. Fees
/// go to the block proposer, a validator, so with every validator, genesis
/// allocation and account the load touched in `addresses` nothing is
/// unaccounted for.
pub async fn supply_conserved(
    cluster: &Cluster,
    nodes: &[usize],
    addresses: &[Address],
    supply: Amount,
) -> Result<()> {
    for &i in nodes {
        let client = cluster.client(i);
        let mut sum: Amount = 0;
        let mut heights = BTreeMap::new();
        for a in addresses {
            match client.get_account(*a).await {
                Ok(info) => {
                    sum = sum
                        .checked_add(info.balance)
                        .context("balance sum overflows")?;
                    *heights.entry(info.height).or_insert(0) += 1;
                }
                Err(e) if e.code() == Some(codes::NOT_FOUND) => {}
                Err(e) => bail!("node {i} get_account {a}: {e}"),
            }
        }
        ensure!(
            sum == supply,
            "node {i}: balances sum to {sum}, genesis supply is {supply} (read at heights {heights:?})"
        );
    }
    Ok(())
}
