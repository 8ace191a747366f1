//! Contract code (built with `stele-build`, as `stele-testkit` does), the
//! AMM set-up the load trades on, and funding fresh accounts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use stele_abi::Abi;
use stele_build::BuildOptions;
use stele_client::api::{ReceiptInfo, codes};
use stele_client::{Signer, TxBuilder};
use stele_types::{Address, Amount, ExecStatus, Hash, SecretKey, Transaction};

use crate::cluster::Endpoints;
use crate::load::{Rng, pick_node, send_to};

/// Gas limit of a swap (two cross-contract token calls).
pub const SWAP_GAS: u64 = 5_000_000;
/// Gas limit of a deploy.
const DEPLOY_GAS: u64 = 300_000_000;
/// Gas limit of a token call during the set-up.
const CALL_GAS: u64 = 2_000_000;

/// Deployable code and its ABI.
#[derive(Debug, Clone)]
pub struct Code {
    pub wasm: Arc<Vec<u8>>,
    pub abi: Arc<Abi>,
}

static BUILT: Mutex<BTreeMap<String, Code>> = Mutex::new(BTreeMap::new());

/// The example contract `name` (`contracts/<name>`), built once per process
/// with `stele-build`'s default options: the same build, and the same
/// cache, as `stele_testkit::Contract::build`.
pub fn contract_code(name: &str) -> Result<Code> {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = built.get(name) {
        return Ok(c.clone());
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("contracts")
        .join(name);
    let out = stele_build::build(&dir, &BuildOptions::default())
        .with_context(|| format!("building contracts/{name}"))?;
    let code = Code {
        wasm: Arc::new(out.wasm),
        abi: Arc::new(out.abi),
    };
    built.insert(name.to_string(), code.clone());
    Ok(code)
}

/// Two tokens and a pool between them.
#[derive(Debug)]
pub struct Amm {
    pub token_a: Address,
    pub token_b: Address,
    pub pool: Address,
    /// Gas limit of a token transfer: half as much again as `estimate_gas`
    /// gave for one to an account that held none, as a wallet would set it.
    /// (A fixed 2 M would leave room for only 200 transfers in a block of
    /// 400 M gas, which counts limits, not use.)
    pub transfer_gas: u64,
    pool_abi: Arc<Abi>,
    token_abi: Arc<Abi>,
}

impl Amm {
    /// A swap of `amount` of token A (or B) for the other, accepting any
    /// output above zero.
    pub fn swap_tx(&self, builder: &TxBuilder, a_in: bool, amount: u128) -> Result<Transaction> {
        let token = if a_in { self.token_a } else { self.token_b };
        stele_client::abi::call_tx(
            &self.pool_abi,
            &builder.clone().gas_limit(SWAP_GAS),
            self.pool,
            "swap",
            &json!([token, amount.to_string(), "1"]),
            0,
        )
        .map_err(|e| anyhow!("swap args: {e}"))
    }

    /// A transfer of `amount` of token A to `to`.
    pub fn token_transfer_tx(
        &self,
        builder: &TxBuilder,
        to: Address,
        amount: u128,
    ) -> Result<Transaction> {
        stele_client::abi::call_tx(
            &self.token_abi,
            &builder.clone().gas_limit(self.transfer_gas),
            self.token_a,
            "transfer",
            &json!([to, amount.to_string()]),
            0,
        )
        .map_err(|e| anyhow!("transfer args: {e}"))
    }

    /// The arguments of token A's `balance_of(who)` view.
    pub fn balance_of_args(&self, who: Address) -> Result<Vec<u8>> {
        self.token_abi
            .encode_args("balance_of", &json!([who]))
            .map_err(|e| anyhow!("balance_of args: {e}"))
    }

    /// Addresses that may hold native balance because of this set-up.
    pub fn addresses(&self) -> Vec<Address> {
        vec![self.token_a, self.token_b, self.pool]
    }
}

/// Sends signed transactions and waits for their receipts.
#[derive(Debug)]
pub struct Batch<'a> {
    endpoints: &'a Endpoints,
    rng: Rng,
    timeout: Duration,
}

impl<'a> Batch<'a> {
    pub fn new(endpoints: &'a Endpoints, seed: u64) -> Self {
        Batch {
            endpoints,
            rng: Rng::new(seed),
            timeout: Duration::from_secs(60),
        }
    }

    /// The next nonce of `address` as a live node sees it (pending
    /// transactions included).
    pub async fn nonce(&mut self, address: Address) -> Result<u64> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(node) = pick_node(self.endpoints, &mut self.rng, None)
                && let Some(client) = self.endpoints.client(node)
                && let Ok(Ok(a)) =
                    tokio::time::timeout(Duration::from_secs(5), client.get_account(address)).await
            {
                return Ok(a.pending_nonce);
            }
            if Instant::now() > deadline {
                bail!("no node answers get_account");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends every transaction (in order), then waits for all receipts and
    /// for every node up to have committed them (a load sent to a lagging
    /// node right after would find its senders unfunded); fails if one
    /// does not succeed.
    pub async fn run(&mut self, txs: Vec<(Arc<Signer>, Transaction)>) -> Result<Vec<ReceiptInfo>> {
        let mut hashes = Vec::new();
        for (signer, tx) in txs {
            let (_, raw, hash) = signer.sign(tx);
            self.send(&raw, hash).await?;
            hashes.push(hash);
        }
        let mut receipts = Vec::new();
        for hash in hashes {
            let r = self.receipt(hash).await?;
            if r.receipt.status != ExecStatus::Success {
                bail!(
                    "set-up transaction {hash} failed: {:?} {}",
                    r.receipt.status,
                    String::from_utf8_lossy(&r.receipt.output)
                );
            }
            receipts.push(r);
        }
        let height = receipts.iter().map(|r| r.block_height).max().unwrap_or(0);
        self.until_everywhere(height).await?;
        Ok(receipts)
    }

    /// Waits until every node up has committed `height`.
    async fn until_everywhere(&self, height: u64) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        for node in self.endpoints.up() {
            let Some(client) = self.endpoints.client(node) else {
                continue;
            };
            loop {
                match client.get_status().await {
                    Ok(s) if s.height >= height => break,
                    // A node that went down is no one's to wait for.
                    Err(_) if !self.endpoints.is_up(node) => break,
                    _ if Instant::now() > deadline => {
                        bail!(
                            "node {node} did not commit height {height} within {:?}",
                            self.timeout
                        )
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
        Ok(())
    }

    async fn send(&mut self, raw: &[u8], hash: Hash) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(node) = pick_node(self.endpoints, &mut self.rng, None) else {
                bail!("no node is up");
            };
            match send_to(self.endpoints, node, raw, None, Duration::from_secs(5)).await {
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.code(),
                        Some(codes::TX_ALREADY_KNOWN | codes::TX_NONCE_TOO_LOW)
                    ) =>
                {
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    bail!("cannot send set-up transaction {hash}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn receipt(&mut self, hash: Hash) -> Result<ReceiptInfo> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(node) = pick_node(self.endpoints, &mut self.rng, None)
                && let Some(client) = self.endpoints.client(node)
                && let Ok(Ok(r)) = tokio::time::timeout(
                    Duration::from_secs(6),
                    client.wait_for_receipt(hash, 5_000),
                )
                .await
            {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!(
                    "set-up transaction {hash} not committed within {:?}",
                    self.timeout
                );
            }
        }
    }
}

/// Creates `count` fresh accounts, each sent `amount` by the funders (in
/// turn), and waits until every transfer committed.
pub async fn fund_accounts(
    endpoints: &Endpoints,
    chain_id: u64,
    funders: &[Arc<Signer>],
    count: usize,
    amount: Amount,
) -> Result<Vec<Arc<Signer>>> {
    anyhow::ensure!(!funders.is_empty(), "no funder");
    let mut batch = Batch::new(endpoints, 99);
    let fresh: Vec<Arc<Signer>> = (0..count)
        .map(|_| Arc::new(Signer::new(SecretKey::generate())))
        .collect();
    let mut nonces = Vec::new();
    for f in funders {
        nonces.push(batch.nonce(f.address()).await?);
    }
    // At most 48 pending transactions per funder at a time (the mempool
    // holds 64 per sender).
    for chunk in fresh.chunks(48 * funders.len()) {
        let mut txs = Vec::new();
        for (k, account) in chunk.iter().enumerate() {
            let f = k % funders.len();
            let tx = TxBuilder::new(chain_id)
                .nonce(nonces[f])
                .gas_limit(100_000)
                .transfer(account.address(), amount);
            nonces[f] += 1;
            txs.push((funders[f].clone(), tx));
        }
        batch.run(txs).await?;
    }
    Ok(fresh)
}

/// Deploys two tokens and a pool from `owner`, seeds the pool, gives each
/// trader tokens and has it approve the pool.
pub async fn setup_amm(
    endpoints: &Endpoints,
    chain_id: u64,
    owner: Arc<Signer>,
    traders: &[Arc<Signer>],
) -> Result<Amm> {
    let token = contract_code("token")?;
    let amm = contract_code("amm")?;
    let mut batch = Batch::new(endpoints, 7);
    let me = owner.address();
    let mut nonce = batch.nonce(me).await?;
    let b = |n: u64, gas: u64| TxBuilder::new(chain_id).nonce(n).gas_limit(gas);
    let encode = |abi: &Abi, method: &str, args: serde_json::Value| {
        abi.encode_args(method, &args)
            .map_err(|e| anyhow!("{method} args: {e}"))
    };
    let token_a = Address::contract(&me, nonce);
    let token_b = Address::contract(&me, nonce + 1);
    let pool = Address::contract(&me, nonce + 2);
    let deploys = vec![
        (
            owner.clone(),
            b(nonce, DEPLOY_GAS).deploy(
                token.wasm.to_vec(),
                encode(&token.abi, "init", json!(["Token A", "TKA", 0, "0"]))?,
                0,
            ),
        ),
        (
            owner.clone(),
            b(nonce + 1, DEPLOY_GAS).deploy(
                token.wasm.to_vec(),
                encode(&token.abi, "init", json!(["Token B", "TKB", 0, "0"]))?,
                0,
            ),
        ),
        (
            owner.clone(),
            b(nonce + 2, DEPLOY_GAS).deploy(
                amm.wasm.to_vec(),
                encode(&amm.abi, "init", json!([token_a, token_b]))?,
                0,
            ),
        ),
    ];
    nonce += 3;
    let receipts = batch.run(deploys).await?;
    let deployed: Vec<Option<Address>> = receipts
        .iter()
        .map(|r| r.receipt.contract_address)
        .collect();
    anyhow::ensure!(
        deployed == vec![Some(token_a), Some(token_b), Some(pool)],
        "contracts deployed at {deployed:?}"
    );
    let liquidity: u128 = 1_000_000_000_000_000;
    let per_trader: u128 = 1_000_000_000_000;
    let mut owner_txs = Vec::new();
    for t in [token_a, token_b] {
        let mut call = |method: &str, args: serde_json::Value| -> Result<()> {
            owner_txs.push((
                owner.clone(),
                b(nonce, CALL_GAS).call(t, method, encode(&token.abi, method, args)?, 0),
            ));
            nonce += 1;
            Ok(())
        };
        call("mint", json!([me, liquidity.to_string()]))?;
        call("approve", json!([pool, liquidity.to_string()]))?;
        for trader in traders {
            call("mint", json!([trader.address(), per_trader.to_string()]))?;
        }
    }
    owner_txs.push((
        owner.clone(),
        b(nonce, SWAP_GAS).call(
            pool,
            "add_liquidity",
            encode(
                &amm.abi,
                "add_liquidity",
                json!([liquidity.to_string(), liquidity.to_string()]),
            )?,
            0,
        ),
    ));
    for chunk in owner_txs.chunks(48) {
        batch.run(chunk.to_vec()).await?;
    }
    let mut trader_txs = Vec::new();
    for trader in traders {
        let n = batch.nonce(trader.address()).await?;
        for (k, t) in [token_a, token_b].into_iter().enumerate() {
            trader_txs.push((
                trader.clone(),
                b(n + k as u64, CALL_GAS).call(
                    t,
                    "approve",
                    encode(&token.abi, "approve", json!([pool, u128::MAX.to_string()]))?,
                    0,
                ),
            ));
        }
    }
    batch.run(trader_txs).await?;
    let mut amm = Amm {
        token_a,
        token_b,
        pool,
        transfer_gas: CALL_GAS,
        pool_abi: amm.abi,
        token_abi: token.abi,
    };
    let trader = traders.first().context("no traders")?;
    let probe = amm.token_transfer_tx(
        &TxBuilder::new(chain_id).nonce(batch.nonce(trader.address()).await?),
        Address([0xee; 20]),
        1,
    )?;
    let client = endpoints.client(0).context("no node")?;
    let estimate = tokio::time::timeout(
        batch.timeout,
        client.estimate_gas(stele_client::api::SimulateRequest {
            raw: None,
            transaction: Some(probe),
            sender: Some(trader.address()),
        }),
    )
    .await
    .map_err(|_| {
        anyhow!(
            "estimate_gas of a token transfer: no answer in {:?}",
            batch.timeout
        )
    })?
    .map_err(|e| anyhow!("estimate_gas of a token transfer: {e}"))?;
    anyhow::ensure!(
        estimate.status == ExecStatus::Success,
        "a token transfer's dry run: {:?}",
        estimate.status
    );
    amm.transfer_gas = estimate.gas + estimate.gas / 2;
    Ok(amm)
}
