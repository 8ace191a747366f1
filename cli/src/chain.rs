//! Sending transactions (nonce, exact gas by simulation, signing, waiting
//! for the receipt) and the chain-inspection commands: transfer, account,
//! tx, block.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use stele_abi::Abi;
use stele_client::abi::{Decoded, decode_outcome};
use stele_client::api::{
    BlockId, ReceiptInfo, SimulateRequest, SimulationResult, TraceFrame, TraceStep, TxState, codes,
};
use stele_client::{Client, Signer, TxBuilder};
use stele_types::{Address, Amount, Event, ExecStatus, Hash, Transaction, TxPayload};

use crate::Res;
use crate::ctx::{CliError, Ctx};
use crate::keystore::resolve_address;

/// `--gas auto` or a fixed limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gas {
    Auto,
    Limit(u64),
}

fn parse_gas(s: &str) -> Result<Gas, String> {
    if s == "auto" {
        return Ok(Gas::Auto);
    }
    s.replace('_', "")
        .parse::<u64>()
        .map(Gas::Limit)
        .map_err(|_| format!("expected `auto` or a whole number of gas units, got {s:?}"))
}

/// Parses a token amount: a whole number, `_` separators allowed.
pub fn parse_amount(s: &str) -> Result<Amount, String> {
    s.replace('_', "")
        .parse::<Amount>()
        .map_err(|_| format!("expected a whole number of base units, got {s:?}"))
}

/// Options of every command that sends a transaction.
#[derive(Args, Debug, Clone)]
pub struct TxOpts {
    /// Gas limit: `auto` runs the exact simulation first and uses the gas
    /// it used (nothing is sent if the simulation fails), or a number.
    #[arg(long, default_value = "auto", value_parser = parse_gas)]
    pub gas: Gas,
    /// Price per gas unit, in base units.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u64,
    /// Seconds to wait for the transaction to commit.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print the nested-call trace (from the simulation) with gas per frame.
    #[arg(long)]
    pub trace: bool,
}

/// A committed transaction.
#[derive(Debug)]
pub struct Sent {
    pub hash: Hash,
    pub sender: Address,
    pub receipt: ReceiptInfo,
    pub simulation: Option<SimulationResult>,
}

/// How to decode a transaction's outcome: the contract's ABI and method.
pub struct DecodeWith<'a> {
    pub abi: &'a Abi,
    pub method: &'a str,
}

/// Builds, prices, signs and sends a transaction, then waits for its
/// receipt. With `--gas auto` a failing simulation stops it before signing.
pub async fn send(
    ctx: &Ctx,
    client: &Client,
    signer: &Signer,
    opts: &TxOpts,
    decode: Option<DecodeWith<'_>>,
    make: impl Fn(&TxBuilder) -> Transaction,
) -> Result<Sent, CliError> {
    let sender = signer.address();
    let chain_id = client.get_status().await?.chain_id;
    let account = client.get_account(sender).await?;
    let builder = TxBuilder::new(chain_id)
        .nonce(account.pending_nonce)
        .gas_price(opts.gas_price);
    let (gas_limit, simulation) = match opts.gas {
        Gas::Auto => {
            let spin = ctx.spinner("simulating");
            let estimate = client
                .estimate_gas(SimulateRequest {
                    transaction: Some(make(&builder)),
                    sender: Some(sender),
                    ..Default::default()
                })
                .await?;
            let sim = simulate(
                client,
                make(&builder.clone().gas_limit(estimate.gas)),
                sender,
            )
            .await?;
            drop(spin);
            if sim.status != ExecStatus::Success {
                let decoded = decode
                    .as_ref()
                    .map(|d| outcome(d, sim.status, &sim.output.0));
                let mut e = failure_error(
                    "the simulation failed; nothing was sent",
                    sim.status,
                    decoded.as_ref(),
                    sim.error.as_deref(),
                )
                .data(json!({
                    "status": sim.status,
                    "gas_used": sim.gas_used,
                    "decoded": decoded.as_ref().map(decoded_json),
                }));
                if let Some(t) = &sim.trace {
                    if opts.trace {
                        eprintln!("{}", trace_text(t, 0));
                    } else if let Some(logs) = logs_text(t) {
                        eprintln!("debug logs (simulated):\n{logs}");
                    }
                }
                e.hint = e.hint.or(Some(
                    "fix the arguments or state; pass --gas N to send it anyway".into(),
                ));
                return Err(e);
            }
            (estimate.gas, Some(sim))
        }
        Gas::Limit(n) => {
            let sim = if opts.trace {
                Some(simulate(client, make(&builder.clone().gas_limit(n)), sender).await?)
            } else {
                None
            };
            (n, sim)
        }
    };
    let tx = make(&builder.gas_limit(gas_limit));
    let (_, raw, hash) = signer.sign(tx);
    let receipt = send_and_wait(ctx, client, &raw, Some(signer.address()), opts.timeout).await?;
    Ok(Sent {
        hash,
        sender,
        receipt,
        simulation,
    })
}

async fn simulate(
    client: &Client,
    tx: Transaction,
    sender: Address,
) -> Result<SimulationResult, CliError> {
    Ok(client
        .simulate_transaction(SimulateRequest {
            transaction: Some(tx),
            sender: Some(sender),
            ..Default::default()
        })
        .await?)
}

/// Sends the signed transaction `raw` and waits for it to commit, at most
/// `timeout_secs`, with a spinner.
pub async fn send_and_wait(
    ctx: &Ctx,
    client: &Client,
    raw: &[u8],
    sender: Option<Address>,
    timeout_secs: u64,
) -> Result<ReceiptInfo, CliError> {
    let hash = stele_types::keccak256(raw);
    let _spin = ctx.spinner(format!("waiting for {hash} to commit"));
    Ok(client
        .send_and_wait(raw, sender, Duration::from_secs(timeout_secs))
        .await?)
}

/// A receipt's outcome decoded by `d`.
pub fn outcome(d: &DecodeWith<'_>, status: ExecStatus, output: &[u8]) -> Decoded {
    decode_outcome(d.abi, d.method, status, output).unwrap_or_else(|e| Decoded::Failed {
        status,
        message: format!(
            "{} (output 0x{} does not decode by the ABI: {e})",
            status_text(status),
            hex::encode(output)
        ),
    })
}

pub fn status_text(status: ExecStatus) -> &'static str {
    match status {
        ExecStatus::Success => "success",
        ExecStatus::Reverted => "reverted",
        ExecStatus::OutOfGas => "out of gas",
        ExecStatus::Trapped => "trapped",
        _ => "failed",
    }
}

pub fn decoded_json(d: &Decoded) -> Value {
    match d {
        Decoded::Returned(v) => json!({ "returned": v }),
        Decoded::Reverted(r) => json!({ "reverted": r }),
        Decoded::Failed { status, message } => json!({ "status": status, "message": message }),
    }
}

pub fn decoded_text(d: &Decoded) -> String {
    match d {
        Decoded::Returned(v) => v.to_string(),
        Decoded::Reverted(stele_abi::Revert::Message(m)) => format!("reverted: {m}"),
        Decoded::Reverted(stele_abi::Revert::Error(v)) => format!("reverted with error {v}"),
        Decoded::Reverted(stele_abi::Revert::Raw(b)) => {
            format!("reverted with payload 0x{}", hex::encode(b))
        }
        Decoded::Failed { status, message } => {
            if message.is_empty() {
                status_text(*status).to_string()
            } else {
                format!("{}: {message}", status_text(*status))
            }
        }
    }
}

/// The error for a failed run: decoded when possible.
pub fn failure_error(
    what: &str,
    status: ExecStatus,
    decoded: Option<&Decoded>,
    node_text: Option<&str>,
) -> CliError {
    let detail = match (decoded, node_text) {
        (Some(d), _) => decoded_text(d),
        (None, Some(t)) => format!("{}: {t}", status_text(status)),
        (None, None) => status_text(status).to_string(),
    };
    let e = CliError::new(format!("{what}: {detail}"));
    match status {
        ExecStatus::OutOfGas => e.hint("raise --gas, or use --gas auto for the exact amount"),
        _ => e,
    }
}

/// Decodes events with the ABIs of the contracts that emitted them
/// (fetched once per contract).
pub struct EventDecoder<'a> {
    client: &'a Client,
    abis: BTreeMap<Address, Option<Abi>>,
}

impl<'a> EventDecoder<'a> {
    pub fn new(client: &'a Client) -> Self {
        EventDecoder {
            client,
            abis: BTreeMap::new(),
        }
    }

    pub fn with(client: &'a Client, contract: Address, abi: Abi) -> Self {
        let mut d = EventDecoder::new(client);
        d.abis.insert(contract, Some(abi));
        d
    }

    pub async fn decode(&mut self, event: &Event) -> Value {
        if !self.abis.contains_key(&event.contract) {
            let abi = self.client.get_abi(event.contract).await.ok();
            self.abis.insert(event.contract, abi);
        }
        let topics: Vec<[u8; 32]> = event.topics.iter().map(|t| t.0).collect();
        let decoded = self
            .abis
            .get(&event.contract)
            .and_then(Option::as_ref)
            .and_then(|abi| abi.decode_event(&topics, &event.data).ok());
        match decoded {
            Some(d) => json!({ "contract": event.contract, "name": d.name, "fields": d.fields }),
            None => json!({
                "contract": event.contract,
                "topics": event.topics,
                "data": format!("0x{}", hex::encode(&event.data)),
            }),
        }
    }
}

pub fn event_text(e: &Value) -> String {
    match (e.get("name"), e.get("fields")) {
        (Some(name), Some(fields)) => format!(
            "{} {}",
            name.as_str().unwrap_or("?"),
            serde_json::to_string(fields).unwrap_or_default()
        ),
        _ => format!("(undecoded) {e}"),
    }
}

pub fn trace_text(frame: &TraceFrame, depth: usize) -> String {
    let mut s = format!(
        "{:indent$}{} {}.{} gas {}/{} {}",
        "",
        frame.caller,
        frame.contract,
        frame.method,
        frame.gas_used,
        frame.gas_budget,
        status_text(frame.status),
        indent = depth * 2
    );
    for step in frame.steps() {
        s.push('\n');
        match step {
            TraceStep::Log(text) => s.push_str(&log_line(text, depth + 1)),
            TraceStep::Call(c) => s.push_str(&trace_text(c, depth + 1)),
        }
    }
    s
}

/// The debug log lines of a trace and its calls, in the order they were
/// written, each with its contract; `None` when there are none.
pub fn logs_text(frame: &TraceFrame) -> Option<String> {
    fn walk(frame: &TraceFrame, out: &mut Vec<String>) {
        for step in frame.steps() {
            match step {
                TraceStep::Log(text) => {
                    out.push(format!("  {}: {}", frame.contract, text.escape_debug()));
                }
                TraceStep::Call(c) => walk(c, out),
            }
        }
    }
    let mut lines = Vec::new();
    walk(frame, &mut lines);
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// A debug log line of a trace, under its frame.
fn log_line(text: &str, depth: usize) -> String {
    format!(
        "{:indent$}log: {}",
        "",
        text.escape_debug(),
        indent = depth * 2
    )
}

/// Events of a receipt, decoded.
pub async fn decode_events(decoder: &mut EventDecoder<'_>, events: &[Event]) -> Vec<Value> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(decoder.decode(e).await);
    }
    out
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Recipient: an address or a key name.
    pub to: String,
    /// Amount in base units.
    #[arg(value_parser = parse_amount)]
    pub amount: Amount,
    #[command(flatten)]
    pub tx: TxOpts,
}

pub async fn transfer(ctx: &Ctx, a: TransferArgs) -> Res {
    let to = resolve_address(&ctx.keystore(), &a.to)?;
    let signer = ctx.signer()?;
    let client = ctx.client().await?;
    let sent = send(ctx, &client, &signer, &a.tx, None, |b| {
        b.transfer(to, a.amount)
    })
    .await?;
    let r = &sent.receipt.receipt;
    if r.status != ExecStatus::Success {
        return Err(failure_error(
            "the transfer failed",
            r.status,
            None,
            Some(&stele_abi::output_text(&r.output)),
        ));
    }
    ctx.out(
        || {
            format!(
                "sent {} to {to}\ntx:       {}\nblock:    {}\ngas used: {}",
                a.amount, sent.hash, sent.receipt.block_height, r.gas_used
            )
        },
        json!({
            "hash": sent.hash,
            "from": sent.sender,
            "to": to,
            "amount": a.amount.to_string(),
            "block_height": sent.receipt.block_height,
            "gas_used": r.gas_used,
        }),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct AccountArgs {
    /// An address or a key name; default the --from key.
    pub address: Option<String>,
    /// Read the account with a Merkle proof, checked against the
    /// validators followed from the genesis (`--genesis`), at a certified
    /// height, instead of trusting the node.
    #[arg(long)]
    pub verified: bool,
    /// With --verified: read at this committed height instead of the latest.
    #[arg(long, requires = "verified")]
    pub height: Option<u64>,
    /// With --verified: the genesis file whose validator set is trusted;
    /// default the devnet's.
    #[arg(long, requires = "verified")]
    pub genesis: Option<std::path::PathBuf>,
}

pub async fn account(ctx: &Ctx, a: AccountArgs) -> Res {
    let name = a.address.unwrap_or_else(|| ctx.global.from.clone());
    let address = resolve_address(&ctx.keystore(), &name)?;
    if a.verified {
        return account_verified(ctx, address, a.height, a.genesis.as_deref()).await;
    }
    let client = ctx.client().await?;
    let info = client.get_account(address).await?;
    ctx.out(
        || {
            let mut s = format!(
                "address:  {}\nbalance:  {}\nnonce:    {}",
                info.address, info.balance, info.nonce
            );
            if info.pending_nonce != info.nonce {
                s.push_str(&format!(" (next to send: {})", info.pending_nonce));
            }
            if let Some(code) = info.code_hash {
                s.push_str(&format!("\ncode:     {code} (a contract)"));
            }
            s.push_str(&format!("\nheight:   {}", info.height));
            s
        },
        json!({
            "address": info.address,
            "balance": info.balance.to_string(),
            "nonce": info.nonce,
            "pending_nonce": info.pending_nonce,
            "code_hash": info.code_hash,
            "height": info.height,
        }),
    );
    Ok(())
}

/// `stele account --verified`: the record proven under a certified state
/// root.
async fn account_verified(
    ctx: &Ctx,
    address: Address,
    height: Option<u64>,
    genesis: Option<&std::path::Path>,
) -> Res {
    use crate::contract::{not_verified, trusted_genesis};
    let genesis = trusted_genesis(ctx, genesis)?;
    let client = ctx.client().await?;
    let p = client.get_account_proof(address, height).await?;
    if let Err(e) = stele_client::check_account_answer(&p, &address, height) {
        return Err(CliError::new(format!(
            "the proof does NOT answer the question: {e}"
        )));
    }
    let set = client
        .validators_for_block(p.header.height, genesis.chain_id, &genesis.validators)
        .await
        .map_err(not_verified)?;
    let account = stele_client::verify_account_proof(&p, genesis.chain_id, &set)
        .map_err(not_verified)?
        .unwrap_or_default();
    let exists = p.value.is_some();
    ctx.out(
        || {
            let mut s = format!(
                "address:  {address}\nbalance:  {}\nnonce:    {}",
                account.balance, account.nonce
            );
            if let Some(code) = account.code_hash {
                s.push_str(&format!("\ncode:     {code} (a contract)"));
            }
            if !exists {
                s.push_str("\n(no such account: its absence is proven)");
            }
            s.push_str(&format!(
                "\nheight:   {}\nverified against the {} validators of epoch {} (state root {})",
                p.header.height,
                set.len(),
                p.header.epoch,
                p.header.state_root
            ));
            s
        },
        json!({
            "address": address,
            "exists": exists,
            "balance": account.balance.to_string(),
            "nonce": account.nonce,
            "code_hash": account.code_hash,
            "height": p.header.height,
            "state_root": p.header.state_root,
            "verified": true,
        }),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ValidatorsArgs {
    #[command(subcommand)]
    pub action: Option<ValidatorsAction>,
    /// Read the set after this height (default: the latest).
    #[arg(long)]
    pub height: Option<u64>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ValidatorsAction {
    /// Sign a proposed set with the --from key, proving this key is held
    /// (every key new to the set must); prints the signature to pass to
    /// `vote --proof`.
    Prove(SetArgs),
    /// Vote, with the --from key (a validator's of the current epoch), for
    /// the set in --set as the next epoch's; more than two thirds of the
    /// epoch's power for the same set decides it.
    Vote {
        #[command(flatten)]
        set: SetArgs,
        /// The new keys' signatures from `prove`, any order.
        #[arg(long = "proof")]
        proofs: Vec<stele_types::Signature>,
        #[command(flatten)]
        tx: TxOpts,
    },
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// A JSON file: the whole proposed set, a list of
    /// `{"address", "public_key", "power"}`.
    #[arg(long)]
    pub set: std::path::PathBuf,
    /// The epoch the change is for (default: the current one).
    #[arg(long)]
    pub epoch: Option<u64>,
}

impl SetArgs {
    /// The set in the file (any order), and the epoch.
    async fn load(&self, client: &Client) -> Res<(u64, stele_types::ValidatorSet, u64)> {
        let text = std::fs::read_to_string(&self.set)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", self.set.display())))?;
        let mut list: Vec<stele_types::Validator> = serde_json::from_str(&text).map_err(|e| {
            CliError::new(format!(
                "{} is not a validator list: {e}",
                self.set.display()
            ))
        })?;
        list.sort_by_key(|v| v.address);
        let set = stele_types::ValidatorSet::new(list).map_err(|e| {
            CliError::new(format!(
                "{} is not a validator set: {e}",
                self.set.display()
            ))
        })?;
        let chain_id = client.get_status().await?.chain_id;
        let epoch = match self.epoch {
            Some(e) => e,
            None => client.get_validators(None).await?.epoch,
        };
        Ok((chain_id, set, epoch))
    }
}

/// `stele status`: where the node is (a node joining by snapshot answers
/// this alone).
pub async fn status(ctx: &Ctx) -> Res {
    let client = ctx.client().await?;
    let s = client.get_status().await?;
    ctx.out(
        || {
            let phase = match s.phase {
                stele_client::api::SyncPhase::Snapshot => "joining by snapshot",
                stele_client::api::SyncPhase::Blocks => "syncing blocks",
                stele_client::api::SyncPhase::Live => "live",
            };
            let mut text = format!(
                "chain:      {}\nrole:       {}\nphase:      {phase}\nheight:     {} (certified {})\nblocks:     from {}\npeers:      {}\nmempool:    {} transactions, {} bytes",
                s.chain_id,
                if s.full_node { "full node" } else { "validator" },
                s.height,
                s.certified_height,
                s.blocks_from,
                s.peers_connected,
                s.mempool_txs,
                s.mempool_bytes
            );
            if let Some(j) = &s.snapshot {
                text.push_str(&format!(
                    "\nsnapshot:   {} at height {}: {} of {} chunks ({} fetched, {} kept from before, {} refused), {} bytes fetched",
                    j.phase,
                    j.height,
                    j.chunks_fetched + j.chunks_resumed,
                    j.chunks,
                    j.chunks_fetched,
                    j.chunks_resumed,
                    j.chunks_refused,
                    j.bytes_fetched
                ));
            }
            text
        },
        json!(s),
    );
    Ok(())
}

/// `stele validators`: the current epoch, its validators and the change
/// decided in it (ADR 0010); `prove` and `vote` change it.
pub async fn validators(ctx: &Ctx, a: ValidatorsArgs) -> Res {
    match a.action {
        None => {}
        Some(ValidatorsAction::Prove(set)) => return prove_key(ctx, set).await,
        Some(ValidatorsAction::Vote { set, proofs, tx }) => {
            return vote_validators(ctx, set, proofs, tx).await;
        }
    }
    let client = ctx.client().await?;
    let info = client.get_validators(a.height).await?;
    let list = |set: &stele_types::ValidatorSet| -> String {
        set.validators()
            .iter()
            .map(|v| format!("\n  {} power {}", v.address, v.power))
            .collect()
    };
    ctx.out(
        || {
            let mut s = format!(
                "epoch:      {} (from height {})\nheight:     {}\nset:        {} ({} validators, quorum {} of {} power){}",
                info.epoch,
                info.epoch_start_height,
                info.height,
                info.validators_hash,
                info.validators.len(),
                info.validators.quorum_power(),
                info.validators.total_power(),
                list(&info.validators)
            );
            match &info.pending {
                Some(p) => s.push_str(&format!(
                    "\npending:    {} decided at height {}; epoch {} starts at height {}{}",
                    p.validators_hash,
                    p.decided_at,
                    info.epoch + 1,
                    p.last_height + 1,
                    list(&p.validators)
                )),
                None => s.push_str("\npending:    none"),
            }
            s
        },
        json!(info),
    );
    Ok(())
}

async fn prove_key(ctx: &Ctx, a: SetArgs) -> Res {
    let client = ctx.client().await?;
    let (chain_id, set, epoch) = a.load(&client).await?;
    let key = ctx.keystore().load_secret(&ctx.global.from)?;
    let change = stele_types::validator_change_hash(chain_id, epoch, &set);
    let signature = key.sign_digest(&change);
    ctx.out(
        || format!("{signature}"),
        json!({"address": key.address(), "epoch": epoch, "set": set.hash(), "signature": signature}),
    );
    Ok(())
}

async fn vote_validators(
    ctx: &Ctx,
    a: SetArgs,
    proofs: Vec<stele_types::Signature>,
    opts: TxOpts,
) -> Res {
    let client = ctx.client().await?;
    let (chain_id, set, epoch) = a.load(&client).await?;
    let current = client.get_validators(None).await?.validators;
    let change = stele_types::validator_change_hash(chain_id, epoch, &set);
    // The proofs in set order, each matched to its new key.
    let mut possession = Vec::new();
    for v in set.validators() {
        if current.index_of(&v.address).is_some() {
            continue;
        }
        let proof = proofs
            .iter()
            .find(|s| v.public_key.verify(&change, s).is_ok())
            .ok_or_else(|| {
                CliError::new(format!(
                    "no --proof from the new key {}: run `stele validators prove` with it",
                    v.address
                ))
            })?;
        possession.push(*proof);
    }
    let (sent, decided) = send_vote(ctx, &client, &opts, |b| {
        b.vote_validators(epoch, set.clone(), possession.clone())
    })
    .await?;
    ctx.out(
        || {
            format!(
                "voted for {} in epoch {epoch}{}\ntx:       {}\nblock:    {}",
                set.hash(),
                if decided {
                    ": the change is decided"
                } else {
                    ""
                },
                sent.hash,
                sent.receipt.block_height
            )
        },
        json!({"hash": sent.hash, "epoch": epoch, "set": set.hash(), "decided": decided}),
    );
    Ok(())
}

/// Sends a governance vote from the --from key and waits for it; fails
/// with its reason if it was refused. Returns it, and whether it was the
/// vote that decided (its output is 1).
async fn send_vote(
    ctx: &Ctx,
    client: &Client,
    opts: &TxOpts,
    make: impl Fn(&TxBuilder) -> Transaction,
) -> Result<(Sent, bool), CliError> {
    let signer = ctx.signer()?;
    let sent = send(ctx, client, &signer, opts, None, make).await?;
    let r = &sent.receipt.receipt;
    if r.status != ExecStatus::Success {
        return Err(failure_error(
            "the vote was refused",
            r.status,
            None,
            Some(&stele_abi::output_text(&r.output)),
        ));
    }
    let decided = r.output == [1];
    Ok((sent, decided))
}

#[derive(Args, Debug)]
pub struct ProtocolArgs {
    #[command(subcommand)]
    pub action: Option<ProtocolAction>,
    /// Read the parameters after this height (default: the latest).
    #[arg(long)]
    pub height: Option<u64>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ProtocolAction {
    /// Vote, with the --from key (a validator's of the current epoch), for
    /// the parameters in force with the changes given, from height --at
    /// on; more than two thirds of the epoch's power for the same
    /// parameters and height schedules the upgrade. Every node without
    /// the versions named stops before that height: upgrade them first.
    Vote {
        /// The first height under the new parameters (at least two
        /// checkpoint intervals after the vote's block).
        #[arg(long)]
        at: u64,
        #[arg(long)]
        gas_schedule: Option<u32>,
        #[arg(long)]
        vm_limits: Option<u32>,
        #[arg(long)]
        block_gas_max: Option<u64>,
        #[arg(long)]
        block_bytes_max: Option<u64>,
        #[arg(long)]
        block_txs_max: Option<u64>,
        #[arg(long)]
        tx_gas_base: Option<u64>,
        #[arg(long)]
        tx_gas_per_byte: Option<u64>,
        #[arg(long)]
        view_timeout_ms: Option<u64>,
        #[arg(long)]
        view_timeout_max_ms: Option<u64>,
        /// Vote even for versions this CLI does not know.
        #[arg(long)]
        unknown_versions: bool,
        #[command(flatten)]
        tx: TxOpts,
    },
}

fn params_text(p: &stele_types::ProtocolParams) -> String {
    format!(
        "gas schedule {}, VM limits {}
  block: {} gas, {} bytes, {} transactions
  transaction base gas {} + {} per byte
  view timeout {} ms (max {} ms)",
        p.gas_schedule_version,
        p.vm_limits_version,
        p.block_gas_max,
        p.block_bytes_max,
        p.block_txs_max,
        p.tx_gas_base,
        p.tx_gas_per_byte,
        p.view_timeout_ms,
        p.view_timeout_max_ms
    )
}

/// `stele protocol`: the parameters in force and the upgrade scheduled
/// (ADR 0011); `vote` votes one in.
pub async fn protocol(ctx: &Ctx, a: ProtocolArgs) -> Res {
    if let Some(ProtocolAction::Vote {
        at,
        gas_schedule,
        vm_limits,
        block_gas_max,
        block_bytes_max,
        block_txs_max,
        tx_gas_base,
        tx_gas_per_byte,
        view_timeout_ms,
        view_timeout_max_ms,
        unknown_versions,
        tx,
    }) = a.action
    {
        let client = ctx.client().await?;
        let mut p = client.get_protocol(None).await?.active;
        let set = |field: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        if let Some(v) = gas_schedule {
            p.gas_schedule_version = v;
        }
        if let Some(v) = vm_limits {
            p.vm_limits_version = v;
        }
        set(&mut p.block_gas_max, block_gas_max);
        set(&mut p.block_bytes_max, block_bytes_max);
        set(&mut p.block_txs_max, block_txs_max);
        set(&mut p.tx_gas_base, tx_gas_base);
        set(&mut p.tx_gas_per_byte, tx_gas_per_byte);
        set(&mut p.view_timeout_ms, view_timeout_ms);
        set(&mut p.view_timeout_max_ms, view_timeout_max_ms);
        p.check().map_err(CliError::new)?;
        if !unknown_versions {
            let gas: Vec<u32> = stele_vm::GasSchedule::ALL
                .iter()
                .map(|g| g.version)
                .collect();
            let limits: Vec<u32> = stele_vm::VmLimits::ALL.iter().map(|l| l.version).collect();
            if !gas.contains(&p.gas_schedule_version) || !limits.contains(&p.vm_limits_version) {
                return Err(CliError::new(format!(
                    "this CLI knows gas schedules {gas:?} and VM limits {limits:?}: a version no build has would stop every node at height {at}"
                ))
                .hint("pass --unknown-versions if nodes with that version exist"));
            }
        }
        let epoch = client.get_validators(None).await?.epoch;
        let (sent, scheduled) =
            send_vote(ctx, &client, &tx, |b| b.vote_upgrade(epoch, at, p.clone())).await?;
        ctx.out(
            || {
                format!(
                    "voted in epoch {epoch} for, from height {at}:\n  {}{}\ntx:       {}\nblock:    {}",
                    params_text(&p),
                    if scheduled { "\nthe upgrade is scheduled" } else { "" },
                    sent.hash,
                    sent.receipt.block_height
                )
            },
            json!({"hash": sent.hash, "epoch": epoch, "activation_height": at, "params": p, "scheduled": scheduled}),
        );
        return Ok(());
    }
    let client = ctx.client().await?;
    let info = client.get_protocol(a.height).await?;
    ctx.out(
        || {
            let mut s = format!(
                "height:     {}\nactive:     {}",
                info.height,
                params_text(&info.active)
            );
            match &info.scheduled {
                Some(u) => {
                    s.push_str(&format!(
                        "\nscheduled:  from height {} (decided at {} in epoch {}): {}",
                        u.activation_height,
                        u.decided_at,
                        u.epoch,
                        params_text(&u.params)
                    ));
                    if let Some(why) = &u.unsupported {
                        s.push_str(&format!(
                            "\nwarning:    this node cannot run it ({why}) and stops after height {}",
                            u.activation_height.saturating_sub(1)
                        ));
                    }
                }
                None => s.push_str("\nscheduled:  none"),
            }
            s
        },
        json!(info),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct TxArgs {
    /// Transaction hash (0x...).
    pub hash: Hash,
    /// Run the committed transaction again on its block's parent state
    /// (`trace_transaction`, while the node keeps that state) and print its
    /// call tree with gas per frame, failed frames decoded by their
    /// contract's ABI, and the storage keys it wrote. The replay's receipt
    /// is checked to be the stored one.
    #[arg(long)]
    pub trace: bool,
}

pub async fn tx(ctx: &Ctx, a: TxArgs) -> Res {
    let client = ctx.client().await?;
    let info = client.get_transaction(a.hash).await.map_err(|e| {
        let e = CliError::from(e);
        if e.code == Some(codes::NOT_FOUND) {
            e.hint("the node has never seen it: check the hash and --rpc")
        } else {
            e
        }
    })?;
    let receipt = match info.state {
        TxState::Committed => Some(client.get_receipt(a.hash).await?),
        _ => None,
    };
    let mut decoder = EventDecoder::new(&client);
    let events = match &receipt {
        Some(r) => decode_events(&mut decoder, &r.receipt.events).await,
        None => Vec::new(),
    };
    // Decode the outcome by the called contract's ABI when it has one.
    let decoded = match (&info.transaction.tx.payload, &receipt) {
        (
            TxPayload::Call {
                contract, method, ..
            },
            Some(r),
        ) => match client.get_abi(*contract).await {
            Ok(abi) => Some(outcome(
                &DecodeWith { abi: &abi, method },
                r.receipt.status,
                &r.receipt.output,
            )),
            Err(_) => None,
        },
        _ => None,
    };
    let replay = match (&receipt, a.trace) {
        (Some(r), true) => Some(replay(&client, a.hash, &r.receipt).await?),
        (None, true) => {
            return Err(CliError::new(format!(
                "{} is {:?}, not committed: there is nothing to trace yet",
                a.hash, info.state
            ))
            .hint("wait until it commits; `stele call ... --trace` shows a call's simulated trace before it is sent"));
        }
        _ => None,
    };
    let t = &info.transaction.tx;
    let kind = match &t.payload {
        TxPayload::Transfer { to, amount } => format!("transfer {amount} to {to}"),
        TxPayload::Deploy { code, value, .. } => {
            format!("deploy {} bytes of code, value {value}", code.len())
        }
        TxPayload::Call {
            contract,
            method,
            value,
            ..
        } => format!("call {contract}.{method}, value {value}"),
        TxPayload::VoteValidators {
            epoch, validators, ..
        } => match stele_types::ValidatorSet::new(validators.clone()) {
            Ok(set) => format!(
                "vote for {} validators after epoch {epoch} (set {})",
                set.len(),
                set.hash()
            ),
            Err(e) => format!("vote after epoch {epoch} for validators that are no set ({e})"),
        },
        TxPayload::VoteUpgrade {
            epoch,
            activation_height,
            params,
        } => format!(
            "vote in epoch {epoch} for gas schedule {} and VM limits {} from height {activation_height}",
            params.gas_schedule_version, params.vm_limits_version
        ),
    };
    ctx.out(
        || {
            let mut s = format!(
                "hash:      {}\nfrom:      {}\nnonce:     {}\naction:    {kind}\ngas:       limit {} at price {}\nstate:     {:?}",
                info.hash, info.sender, t.nonce, t.gas_limit, t.gas_price, info.state
            );
            if let Some(r) = &receipt {
                s.push_str(&format!(
                    "\nblock:     {} (index {})\nstatus:    {}\ngas used:  {}",
                    r.block_height,
                    r.index,
                    status_text(r.receipt.status),
                    r.receipt.gas_used
                ));
                if let Some(addr) = r.receipt.contract_address {
                    s.push_str(&format!("\ncontract:  {addr}"));
                }
                if let Some(d) = &decoded {
                    s.push_str(&format!("\nresult:    {}", decoded_text(d)));
                }
                for e in &events {
                    s.push_str(&format!("\nevent:     {}", event_text(e)));
                }
            }
            if let Some(r) = &replay {
                s.push_str("\ntrace (replayed; its receipt is the stored one):");
                match &r.trace.trace {
                    Some(_) => {
                        for line in &r.lines {
                            s.push_str(&format!("\n  {line}"));
                        }
                    }
                    None if r.trace.trace_omitted => {
                        s.push_str("\n  (left out: over the node's response limit)")
                    }
                    None => s.push_str("\n  (no contract call)"),
                }
                if r.trace.storage_writes.is_empty() {
                    s.push_str("\nstorage written: none");
                } else {
                    s.push_str("\nstorage written:");
                    for w in &r.trace.storage_writes {
                        s.push_str(&format!(
                            "\n  {} 0x{} {}",
                            w.contract,
                            hex::encode(&w.key.0),
                            w.value_hash
                                .map_or("deleted".to_string(), |h| format!("= value hash {h}"))
                        ));
                    }
                }
            }
            s
        },
        json!({
            "transaction": info,
            "receipt": receipt,
            "decoded": decoded.as_ref().map(decoded_json),
            "events": events,
            "trace": replay.as_ref().map(|r| json!({
                "matches_receipt": true,
                "frames": r.trace.trace,
                "frames_decoded": r.lines,
                "trace_omitted": r.trace.trace_omitted,
                "storage_writes": r.trace.storage_writes,
            })),
        }),
    );
    Ok(())
}

/// A committed transaction's replay, with its frames as text.
struct Replay {
    trace: stele_client::api::TransactionTrace,
    /// One line per frame, indented by depth.
    lines: Vec<String>,
}

/// `trace_transaction` for `hash`, checked against its stored receipt,
/// with each failed frame's output decoded by its contract's ABI.
async fn replay(
    client: &Client,
    hash: Hash,
    stored: &stele_types::Receipt,
) -> Result<Replay, CliError> {
    let trace = client.trace_transaction(hash).await.map_err(|e| {
        let e = CliError::from(e);
        match e.code {
            Some(codes::HEIGHT_UNAVAILABLE) => e.hint(
                "ask a node that keeps more versions ([storage] versions_kept), or trace it sooner",
            ),
            _ => e,
        }
    })?;
    if trace.receipt != *stored {
        return Err(CliError::new(format!(
            "the replay of {hash} gave another receipt than the one stored: the node's execution is not deterministic"
        )));
    }
    // Every contract in the tree, for its ABI.
    let mut contracts = BTreeMap::new();
    let mut stack: Vec<&TraceFrame> = trace.trace.iter().collect();
    while let Some(f) = stack.pop() {
        contracts.entry(f.contract).or_insert(None);
        stack.extend(&f.calls);
    }
    for (address, abi) in contracts.iter_mut() {
        *abi = client.get_abi(*address).await.ok();
    }
    let mut lines = Vec::new();
    if let Some(frame) = &trace.trace {
        frame_lines(frame, 0, &contracts, &mut lines);
    }
    Ok(Replay { trace, lines })
}

fn frame_lines(
    frame: &TraceFrame,
    depth: usize,
    abis: &BTreeMap<Address, Option<Abi>>,
    out: &mut Vec<String>,
) {
    let mut line = format!(
        "{:indent$}{} -> {}.{} value {} gas {}/{} {}",
        "",
        frame.caller,
        frame.contract,
        frame.method,
        frame.value,
        frame.gas_used,
        frame.gas_budget,
        status_text(frame.status),
        indent = depth * 2
    );
    if !frame.status.is_success() {
        let why = match abis.get(&frame.contract).and_then(Option::as_ref) {
            Some(abi) => decoded_text(&outcome(
                &DecodeWith {
                    abi,
                    method: &frame.method,
                },
                frame.status,
                &frame.output.0,
            )),
            None => stele_abi::output_text(&frame.output.0),
        };
        line.push_str(&format!(": {why}"));
    }
    out.push(line);
    for step in frame.steps() {
        match step {
            TraceStep::Log(text) => out.push(log_line(text, depth + 1)),
            TraceStep::Call(c) => frame_lines(c, depth + 1, abis, out),
        }
    }
}

#[derive(Args, Debug)]
pub struct BlockArgs {
    /// Height or 0x hash; default the latest block.
    pub id: Option<String>,
}

pub async fn block(ctx: &Ctx, a: BlockArgs) -> Res {
    let client = ctx.client().await?;
    let info = match a.id {
        None => client.get_latest_block().await?,
        Some(id) => {
            let id = if id.starts_with("0x") {
                BlockId::Hash(
                    id.parse::<Hash>()
                        .map_err(|e| CliError::new(format!("invalid block hash {id}: {e}")))?,
                )
            } else {
                BlockId::Height(id.parse::<u64>().map_err(|_| {
                    CliError::new(format!("{id:?} is neither a height nor a 0x block hash"))
                })?)
            };
            client.get_block(id).await?
        }
    };
    let h = &info.block.header;
    ctx.out(
        || {
            let mut s = format!(
                "height:      {}\nhash:        {}\nparent:      {}\ntime (ms):   {}\nproposer:    {}\nview:        {}\nstate root:  {}\ntxs:         {}\ncommit sigs: {}",
                h.height,
                info.hash,
                h.parent_hash,
                h.timestamp_ms,
                h.proposer,
                h.view,
                h.state_root,
                info.block.txs.len(),
                info.certificate.signatures.len()
            );
            for tx in &info.block.txs {
                s.push_str(&format!("\n  {}", tx.hash()));
            }
            s
        },
        serde_json::to_value(&info).unwrap_or(Value::Null),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use stele_client::api::TraceLog;
    use stele_types::ExecStatus;

    use super::*;

    fn frame(contract: u8, calls: Vec<TraceFrame>, logs: &[(u32, &str)]) -> TraceFrame {
        TraceFrame {
            caller: Address([1; 20]),
            contract: Address([contract; 20]),
            method: "run".into(),
            value: 0,
            gas_budget: 100,
            gas_used: 10,
            status: ExecStatus::Success,
            output: stele_client::api::Bytes(Vec::new()),
            calls,
            logs: logs
                .iter()
                .map(|&(after_calls, text)| TraceLog {
                    after_calls,
                    text: text.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn log_lines_print_under_their_frame_in_order_and_escaped() {
        let t = frame(
            2,
            vec![frame(3, vec![], &[(0, "inner")])],
            &[(0, "before"), (1, "red \u{1b}[31m\nnext")],
        );
        let text = trace_text(&t, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[1], "  log: before");
        assert!(lines[2].starts_with("  ") && lines[2].contains(".run gas 10/100"));
        assert_eq!(lines[3], "    log: inner");
        // A contract's line cannot move the cursor or colour the terminal.
        assert_eq!(lines[4], "  log: red \\u{1b}[31m\\nnext");
        let logs = logs_text(&t).unwrap();
        assert_eq!(logs.lines().count(), 3);
        assert!(logs.lines().nth(1).unwrap().ends_with(": inner"));
        assert_eq!(logs_text(&frame(2, vec![], &[])), None);
    }
}
