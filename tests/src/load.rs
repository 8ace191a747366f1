//! Steady load from many accounts: token transfers and AMM swaps, sent to
//! random live nodes, every hash and every rejection recorded.
//!
//! Each sender signs exactly one transaction per nonce and never another:
//! a retry resends the same bytes. So a nonce can only ever commit the one
//! transaction recorded for it, and "committed exactly once" is checkable.
//! Up to `window` transactions per sender are in flight; when a sender's
//! committed nonce stalls (its transactions went to a node that died or was
//! cut off before gossiping them), it resends the stalled ones to another
//! node, as a wallet would.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use stele_client::api::{BlockId, codes};
use stele_client::{Client, ClientError, Signer, TxBuilder};
use stele_types::{Address, Hash, Transaction};
use tokio::task::JoinHandle;

use crate::cluster::Endpoints;
use crate::contracts::Amm;

/// Shape of the load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub chain_id: u64,
    /// Transactions a sender may have in flight (at most the mempool's
    /// per-sender limit, 64).
    pub window: u64,
    /// Offered rate over all senders, transactions per second; `None` sends
    /// as fast as the window allows.
    pub rate_per_s: Option<f64>,
    /// Share of transactions that are AMM swaps (for senders that trade).
    pub swap_share: f64,
    /// Share of the rest that are token-contract transfers (for senders
    /// that trade); the others are native transfers.
    pub token_share: f64,
    /// Resend a sender's in-flight transactions when its committed nonce
    /// has not moved for this long.
    pub stall: Duration,
    /// Timeout of one RPC call.
    pub call_timeout: Duration,
    /// Each sender sends to one node (sender `i` to node `i mod n`) while
    /// it is up, as a wallet would; otherwise every send goes to a random
    /// live node.
    pub sticky: bool,
    /// Sign this many transactions per sender before the load starts and
    /// stop after sending them (a benchmark); `None` signs as it goes and
    /// runs until [`Load::finish`].
    pub presign: Option<u64>,
}

impl LoadConfig {
    pub fn new(chain_id: u64) -> Self {
        LoadConfig {
            chain_id,
            window: 8,
            rate_per_s: Some(100.0),
            swap_share: 0.3,
            token_share: 0.3,
            stall: Duration::from_secs(3),
            call_timeout: Duration::from_secs(5),
            presign: None,
            sticky: false,
        }
    }
}

/// One signed transaction of the load.
#[derive(Debug, Clone)]
pub struct TxRecord {
    pub sender: usize,
    pub nonce: u64,
    pub raw: Arc<[u8]>,
    /// When the send that first got it accepted began.
    pub accepted_at: Option<Instant>,
    /// Nodes that returned its hash from `send_transaction`.
    pub accepted_by: Vec<usize>,
    /// Sends after the first.
    pub resends: u32,
    /// When the block follower saw it committed, and at which height.
    pub committed: Option<(Instant, u64)>,
}

/// A `send_transaction` that failed.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub hash: Hash,
    pub node: usize,
    pub code: Option<i32>,
    pub error: String,
}

#[derive(Debug, Default)]
struct LedgerInner {
    txs: HashMap<Hash, TxRecord>,
    rejections: Vec<Rejection>,
    /// Per sender: the next nonce after every committed one seen.
    committed_nonce: Vec<u64>,
    /// Per sender: when `committed_nonce` last moved.
    progress_at: Vec<Instant>,
    /// Committed transactions that are not the load's.
    foreign_commits: u64,
}

/// Everything the load sent and learned, shared by its tasks.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<LedgerInner>,
}

/// What a finished load reports.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub signed: usize,
    pub accepted: usize,
    pub committed_seen: usize,
    pub rejections: usize,
    pub rejections_by_code: BTreeMap<String, usize>,
    pub resends: u64,
    /// Accepted transactions the follower did not see committed by the end
    /// of the drain.
    pub uncommitted: usize,
    pub elapsed_s: f64,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, LedgerInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add_senders(&self, n: usize) {
        let mut l = self.lock();
        l.committed_nonce.resize(n, 0);
        l.progress_at.resize(n, Instant::now());
    }

    fn record_signed(&self, hash: Hash, sender: usize, nonce: u64, raw: Arc<[u8]>) {
        self.lock().txs.entry(hash).or_insert(TxRecord {
            sender,
            nonce,
            raw,
            accepted_at: None,
            accepted_by: Vec::new(),
            resends: 0,
            committed: None,
        });
    }

    fn record_sent(
        &self,
        hash: &Hash,
        node: usize,
        sent_at: Instant,
        result: &Result<Hash, SendError>,
    ) {
        let mut l = self.lock();
        match result {
            Ok(_) => {
                if let Some(r) = l.txs.get_mut(hash) {
                    r.accepted_at.get_or_insert(sent_at);
                    r.accepted_by.push(node);
                }
            }
            Err(e) => l.rejections.push(Rejection {
                hash: *hash,
                node,
                code: e.code(),
                error: e.to_string(),
            }),
        }
    }

    fn record_resend(&self, hash: &Hash) {
        if let Some(r) = self.lock().txs.get_mut(hash) {
            r.resends += 1;
        }
    }

    /// The follower saw `hash` committed at `height`.
    fn record_commit(&self, hash: &Hash, height: u64, at: Instant) {
        let mut l = self.lock();
        let Some(r) = l.txs.get_mut(hash) else {
            l.foreign_commits += 1;
            return;
        };
        r.committed.get_or_insert((at, height));
        let (sender, nonce) = (r.sender, r.nonce);
        if l.committed_nonce[sender] < nonce + 1 {
            l.committed_nonce[sender] = nonce + 1;
            l.progress_at[sender] = at;
        }
    }

    /// A node reported `sender`'s committed nonce (the follower may lag).
    fn observe_nonce(&self, sender: usize, nonce: u64) {
        let mut l = self.lock();
        if l.committed_nonce[sender] < nonce {
            l.committed_nonce[sender] = nonce;
            l.progress_at[sender] = Instant::now();
        }
    }

    fn committed_nonce(&self, sender: usize) -> (u64, Instant) {
        let l = self.lock();
        (l.committed_nonce[sender], l.progress_at[sender])
    }

    /// A copy of every transaction record.
    pub fn txs(&self) -> HashMap<Hash, TxRecord> {
        self.lock().txs.clone()
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.lock().rejections.clone()
    }

    /// Submission-to-commit latencies of the transactions seen committed.
    pub fn latencies(&self) -> Vec<Duration> {
        self.lock()
            .txs
            .values()
            .filter_map(|r| match (r.accepted_at, r.committed) {
                (Some(a), Some((c, _))) => Some(c.saturating_duration_since(a)),
                _ => None,
            })
            .collect()
    }

    fn report(&self, elapsed: Duration) -> LoadReport {
        let l = self.lock();
        let mut by_code = BTreeMap::new();
        for r in &l.rejections {
            let key = match r.code {
                Some(c) => c.to_string(),
                None => "transport".to_string(),
            };
            *by_code.entry(key).or_insert(0) += 1;
        }
        LoadReport {
            signed: l.txs.len(),
            accepted: l.txs.values().filter(|r| r.accepted_at.is_some()).count(),
            committed_seen: l.txs.values().filter(|r| r.committed.is_some()).count(),
            rejections: l.rejections.len(),
            rejections_by_code: by_code,
            resends: l.txs.values().map(|r| u64::from(r.resends)).sum(),
            uncommitted: l
                .txs
                .values()
                .filter(|r| r.accepted_at.is_some() && r.committed.is_none())
                .count(),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no node is up")]
    NoNode,
    #[error("timed out")]
    Timeout,
}

impl SendError {
    pub fn code(&self) -> Option<i32> {
        match self {
            SendError::Client(e) => e.code(),
            _ => None,
        }
    }
}

/// A small deterministic random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Sends `raw` to node `node` with a timeout, naming its signer when
/// `sender` is given (as a wallet would).
pub async fn send_to(
    endpoints: &Endpoints,
    node: usize,
    raw: &[u8],
    sender: Option<Address>,
    timeout: Duration,
) -> Result<Hash, SendError> {
    let client = endpoints.client(node).ok_or(SendError::NoNode)?;
    let send = async {
        match sender {
            Some(sender) => client.send_transaction_from(raw, sender).await,
            None => client.send_transaction(raw).await,
        }
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SendError::Timeout),
    }
}

/// A random node that is up, other than `avoid` when possible.
pub fn pick_node(endpoints: &Endpoints, rng: &mut Rng, avoid: Option<usize>) -> Option<usize> {
    let up = endpoints.up();
    let choices: Vec<usize> = up.iter().copied().filter(|i| Some(*i) != avoid).collect();
    let from = if choices.is_empty() { up } else { choices };
    if from.is_empty() {
        return None;
    }
    Some(from[rng.below(from.len() as u64) as usize])
}

/// Spaces sends to a fixed offered rate over all senders.
#[derive(Debug)]
struct Pacer {
    period: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if *next < now {
                // Do not burst to catch up after a stall.
                *next = now;
            }
            let at = *next;
            *next += self.period;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// What a sender sends.
#[derive(Debug, Clone)]
pub struct SenderSpec {
    pub signer: Arc<Signer>,
    /// The account's next nonce when the load starts.
    pub first_nonce: u64,
    /// Whether it holds tokens and approved the pool (may swap).
    pub trades: bool,
}

/// A running load.
#[derive(Debug)]
pub struct Load {
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    drain_until: Arc<AtomicU64>,
    workers: Vec<JoinHandle<()>>,
    follower: Option<JoinHandle<()>>,
    follower_stop: Arc<AtomicBool>,
    started: Instant,
}

impl Load {
    /// Starts one task per sender and the block follower.
    pub fn start(
        config: LoadConfig,
        endpoints: Arc<Endpoints>,
        senders: Vec<SenderSpec>,
        amm: Option<Arc<Amm>>,
        seed: u64,
    ) -> Load {
        let ledger = Arc::new(Ledger::default());
        ledger.add_senders(senders.len());
        {
            let mut l = ledger.lock();
            for (i, s) in senders.iter().enumerate() {
                l.committed_nonce[i] = s.first_nonce;
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let drain_until = Arc::new(AtomicU64::new(0));
        let pacer = config.rate_per_s.map(|r| {
            Arc::new(Pacer {
                period: Duration::from_secs_f64(1.0 / r.max(0.001)),
                next: Mutex::new(Instant::now()),
            })
        });
        // Senders wait for the follower's subscription, so no commit is
        // first seen by a catch-up fetch (which would date it late).
        let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
        let recipients: Arc<Vec<Address>> =
            Arc::new(senders.iter().map(|s| s.signer.address()).collect());
        // With pre-signing, the clock starts after the signing below; the
        // workers wait for it.
        let started = Instant::now();
        let mut workers = Vec::new();
        for (index, spec) in senders.into_iter().enumerate() {
            let mut w = Worker {
                index,
                spec,
                config: config.clone(),
                endpoints: endpoints.clone(),
                ledger: ledger.clone(),
                stop: stop.clone(),
                drain_until: drain_until.clone(),
                pacer: pacer.clone(),
                recipients: recipients.clone(),
                amm: amm.clone(),
                rng: Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(index as u64)),
                started,
                signed: BTreeMap::new(),
                last_nonce: None,
                ready: ready_rx.clone(),
            };
            if let Some(count) = w.config.presign {
                for nonce in w.spec.first_nonce..w.spec.first_nonce + count {
                    w.sign(nonce);
                }
                w.last_nonce = Some(w.spec.first_nonce + count);
            }
            workers.push(tokio::spawn(w.run()));
        }
        let follower_stop = Arc::new(AtomicBool::new(false));
        let follower = tokio::spawn(follow(
            endpoints,
            ledger.clone(),
            follower_stop.clone(),
            seed,
            ready_tx,
        ));
        Load {
            ledger,
            stop,
            drain_until,
            workers,
            follower: Some(follower),
            follower_stop,
            started,
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Waits, at most `timeout`, until every sender sent all its
    /// pre-signed transactions and saw them committed.
    pub async fn join(mut self, timeout: Duration) -> Result<LoadReport> {
        self.wait_done(false, timeout).await
    }

    /// Stops new transactions and waits, at most `drain`, until every
    /// sender's transactions are seen committed (resending stalled ones).
    pub async fn finish(mut self, drain: Duration) -> Result<LoadReport> {
        self.wait_done(true, drain).await
    }

    async fn wait_done(&mut self, stop: bool, timeout: Duration) -> Result<LoadReport> {
        let deadline = self.started.elapsed() + timeout;
        self.drain_until
            .store(deadline.as_millis() as u64, Ordering::Relaxed);
        self.stop.store(stop, Ordering::Relaxed);
        for w in std::mem::take(&mut self.workers) {
            if let Err(e) = w.await {
                bail!("a load worker failed: {e}");
            }
        }
        self.follower_stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.follower.take() {
            let _ = f.await;
        }
        Ok(self.ledger.report(self.started.elapsed()))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

struct Worker {
    index: usize,
    spec: SenderSpec,
    config: LoadConfig,
    endpoints: Arc<Endpoints>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    drain_until: Arc<AtomicU64>,
    pacer: Option<Arc<Pacer>>,
    recipients: Arc<Vec<Address>>,
    amm: Option<Arc<Amm>>,
    rng: Rng,
    started: Instant,
    signed: BTreeMap<u64, (Arc<[u8]>, Hash)>,
    /// With pre-signing: the nonce after the last transaction to send.
    last_nonce: Option<u64>,
    /// Becomes true once the follower is subscribed to new blocks.
    ready: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    fn sign(&mut self, nonce: u64) -> (Arc<[u8]>, Hash) {
        if let Some(s) = self.signed.get(&nonce) {
            return s.clone();
        }
        let tx = self.make_tx(nonce);
        let (_, raw, hash) = self.spec.signer.sign(tx);
        let raw: Arc<[u8]> = Arc::from(raw);
        self.ledger
            .record_signed(hash, self.index, nonce, raw.clone());
        self.signed.insert(nonce, (raw.clone(), hash));
        (raw, hash)
    }

    fn make_tx(&mut self, nonce: u64) -> Transaction {
        let builder = TxBuilder::new(self.config.chain_id).nonce(nonce);
        if self.spec.trades
            && let Some(amm) = &self.amm
            && self.rng.chance(self.config.swap_share)
        {
            let a_in = self.rng.chance(0.5);
            let amount = 1 + self.rng.below(100);
            if let Ok(tx) = amm.swap_tx(&builder, a_in, u128::from(amount)) {
                return tx;
            }
        }
        let me = self.spec.signer.address();
        let mut to = self.recipients[self.rng.below(self.recipients.len() as u64) as usize];
        if to == me {
            to = self.recipients[(self.index + 1) % self.recipients.len()];
        }
        if self.spec.trades
            && let Some(amm) = &self.amm
            && self.rng.chance(self.config.token_share)
        {
            let amount = 1 + self.rng.below(1_000);
            if let Ok(tx) = amm.token_transfer_tx(&builder, to, u128::from(amount)) {
                return tx;
            }
        }
        builder
            .gas_limit(100_000)
            .transfer(to, u128::from(1 + self.rng.below(1_000)))
    }

    async fn run(mut self) {
        // A follower that cannot subscribe (every node down) must not hold
        // the load back for ever; its commits are then dated late.
        let _ = tokio::time::timeout(FOLLOWER_READY_WAIT, self.ready.wait_for(|r| *r)).await;
        let mut next = self.spec.first_nonce;
        let mut last_resend = Instant::now();
        loop {
            let stopping = self.stop.load(Ordering::Relaxed)
                || self.last_nonce.is_some_and(|last| next >= last);
            let (committed, progress_at) = self.ledger.committed_nonce(self.index);
            self.signed.retain(|n, _| *n >= committed);
            // A send that failed in transport may still have committed:
            // never sign a second transaction for a used nonce.
            next = next.max(committed);
            if stopping {
                let until = Duration::from_millis(self.drain_until.load(Ordering::Relaxed));
                if committed >= next || self.started.elapsed() > until {
                    return;
                }
            }
            let in_flight = next.saturating_sub(committed);
            let stalled = in_flight > 0
                && progress_at.elapsed() > self.config.stall
                && last_resend.elapsed() > self.config.stall;
            if stalled {
                last_resend = Instant::now();
                // The follower may only be lagging (its node went away):
                // ask a node before resending.
                if self.refresh_nonce(committed).await {
                    continue;
                }
                self.resend(committed).await;
                continue;
            }
            if stopping || in_flight >= self.config.window {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            if let Some(p) = &self.pacer {
                p.wait().await;
                if self.stop.load(Ordering::Relaxed) {
                    continue;
                }
            }
            let (raw, hash) = self.sign(next);
            let home = self.index % self.endpoints.len().max(1);
            let node = if self.config.sticky && self.endpoints.is_up(home) {
                Some(home)
            } else {
                pick_node(&self.endpoints, &mut self.rng, None)
            };
            let Some(node) = node else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let sent_at = Instant::now();
            let sender = Some(self.spec.signer.address());
            let result = send_to(
                &self.endpoints,
                node,
                &raw,
                sender,
                self.config.call_timeout,
            )
            .await;
            self.ledger.record_sent(&hash, node, sent_at, &result);
            match result {
                Ok(_) => next += 1,
                Err(e) => match e.code() {
                    // Already pending there, or already committed: this
                    // nonce's only transaction is on its way.
                    Some(codes::TX_ALREADY_KNOWN | codes::TX_NONCE_TOO_LOW) => next += 1,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    }

    /// Whether a live node has the account past `committed` (then the
    /// ledger learns it).
    async fn refresh_nonce(&mut self, committed: u64) -> bool {
        let Some(node) = pick_node(&self.endpoints, &mut self.rng, None) else {
            return false;
        };
        let Some(client) = self.endpoints.client(node) else {
            return false;
        };
        let address = self.spec.signer.address();
        match tokio::time::timeout(self.config.call_timeout, client.get_account(address)).await {
            Ok(Ok(a)) if a.nonce > committed => {
                self.ledger.observe_nonce(self.index, a.nonce);
                true
            }
            _ => false,
        }
    }

    /// Resends every in-flight transaction, in nonce order, to one node.
    async fn resend(&mut self, committed: u64) {
        let Some(node) = pick_node(&self.endpoints, &mut self.rng, None) else {
            return;
        };
        let stalled: Vec<(Arc<[u8]>, Hash)> = self
            .signed
            .range(committed..)
            .map(|(_, s)| s.clone())
            .collect();
        let sender = Some(self.spec.signer.address());
        for (raw, hash) in &stalled {
            self.ledger.record_resend(hash);
            let sent_at = Instant::now();
            let result =
                send_to(&self.endpoints, node, raw, sender, self.config.call_timeout).await;
            self.ledger.record_sent(hash, node, sent_at, &result);
            if let Err(e) = &result
                && e.code().is_none()
            {
                return;
            }
        }
    }
}

/// Follows committed blocks through a WebSocket subscription on one live
/// node (switching when it goes away) and records when each transaction
/// was seen committed.
/// Longest the senders wait for the follower's first subscription.
const FOLLOWER_READY_WAIT: Duration = Duration::from_secs(10);

async fn follow(
    endpoints: Arc<Endpoints>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    seed: u64,
    ready: tokio::sync::watch::Sender<bool>,
) {
    let mut rng = Rng::new(seed ^ 0xF011);
    let mut next_height = 1u64;
    let mut current: Option<usize> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(node) = pick_node(&endpoints, &mut rng, current) else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        current = Some(node);
        // The RPC port serves WebSocket too.
        let Some(url) = endpoints.rpc_addr(node).map(|a| format!("ws://{a}")) else {
            continue;
        };
        let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(3), Client::connect(&url)).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(mut sub) = ws.subscribe_new_blocks().await else {
            continue;
        };
        // Notifications are timestamped by a task of their own as they
        // arrive, so fetching one block's transactions never delays the
        // time recorded for the next block.
        let (seen_tx, mut seen) = tokio::sync::mpsc::channel::<(u64, Instant)>(NOTIFICATIONS_MAX);
        let reader = tokio::spawn(async move {
            while let Some(Ok(block)) = sub.next().await {
                if seen_tx
                    .send((block.header.height, Instant::now()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        // Catch up on what was committed before the subscription.
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(3), ws.get_status()).await
            && fetch_blocks(&ws, &ledger, &mut next_height, s.height, Instant::now())
                .await
                .is_err()
        {
            continue;
        }
        ready.send_replace(true);
        loop {
            if stop.load(Ordering::Relaxed) || !endpoints.is_up(node) {
                break;
            }
            let item = tokio::time::timeout(Duration::from_millis(500), seen.recv()).await;
            match item {
                Ok(Some((height, at))) => {
                    if fetch_blocks(&ws, &ledger, &mut next_height, height, at)
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(None) => break,
                // No block for a while (a stalled cluster); keep waiting
                // unless the node went away.
                Err(_) => {}
            }
        }
        reader.abort();
    }
}

/// Block notifications waiting for their transactions to be fetched.
const NOTIFICATIONS_MAX: usize = 4_096;

async fn fetch_blocks(
    client: &Client,
    ledger: &Ledger,
    next_height: &mut u64,
    to: u64,
    at: Instant,
) -> Result<()> {
    while *next_height <= to {
        let info = match tokio::time::timeout(
            Duration::from_secs(5),
            client.get_block(BlockId::Height(*next_height)),
        )
        .await
        {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => bail!("get_block {}: {e}", *next_height),
            Err(_) => bail!("get_block {} timed out", *next_height),
        };
        for tx in &info.block.txs {
            ledger.record_commit(&tx.hash(), *next_height, at);
        }
        *next_height += 1;
    }
    Ok(())
}
