//! `stele devnet add-validator` and `stele devnet remove-validator`: the
//! validator set of a running devnet changes the way a network's does, by
//! a vote of the current validators (ADR 0010), which this command casts
//! itself since the devnet folder holds every validator's key. A new
//! validator's node is written into the folder and listed in
//! `devnet.json`; the running devnet starts it, and it follows the chain
//! until the change makes it a validator at the next epoch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use stele_client::api::ValidatorsInfo;
use stele_client::{Client, Signer, TxBuilder};
use stele_node::home;
use stele_types::{
    Address, Amount, ExecStatus, SecretKey, Validator, ValidatorSet, validator_change_hash,
};

use super::{Added, Spec, load_spec, save_spec};
use crate::Res;
use crate::ctx::{CliError, Ctx, fail};

#[derive(Args, Debug)]
pub struct AddValidatorArgs {
    /// The devnet's folder; default <home>/devnet.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RemoveValidatorArgs {
    /// The validator to remove: its address, or its node's name in the
    /// devnet folder (`node2`).
    pub validator: String,
    /// The devnet's folder; default <home>/devnet.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// How long a new validator's node may take to answer and catch up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a decided change may take to start its epoch (it ends at the
/// next multiple of the checkpoint interval, 16 blocks by default).
const EPOCH_TIMEOUT: Duration = Duration::from_secs(120);
/// What a new validator's key gets from validator 0's account to pay its
/// votes with.
const JOINER_FUNDS: Amount = 1_000_000_000_000_000_000_000;
/// Gas of one vote (100,000 plus 5,000 per validator and 50,000 per new
/// key at most; the rest is refunded).
const VOTE_GAS: u64 = 2_000_000;

/// A running devnet, as its folder describes it.
struct Devnet {
    dir: PathBuf,
    spec: Spec,
    client: Client,
    chain_id: u64,
}

impl Devnet {
    async fn open(ctx: &Ctx, dir: Option<PathBuf>) -> Result<Devnet, CliError> {
        let dir = dir.unwrap_or_else(|| super::default_dir(ctx));
        let spec = load_spec(&dir)?.ok_or_else(|| {
            CliError::new(format!("no devnet in {}", dir.display()))
                .hint("start one with `stele devnet` (and pass the same --dir here)")
        })?;
        let rpc = spec
            .rpc
            .first()
            .ok_or_else(|| CliError::new("the devnet has no validator"))?;
        let client = Client::connect(&format!("http://{rpc}")).await?;
        let status = client.get_status().await.map_err(|e| {
            CliError::new(format!(
                "the devnet in {} does not answer: {e}",
                dir.display()
            ))
            .hint("start it with `stele devnet` and leave it running")
        })?;
        Ok(Devnet {
            dir,
            chain_id: status.chain_id,
            spec,
            client,
        })
    }

    /// Every validator node's home in the folder: the genesis validators'
    /// and those added since.
    fn validator_homes(&self) -> Vec<PathBuf> {
        (0..self.spec.validators)
            .map(|i| self.dir.join(format!("node{i}")))
            .chain(self.spec.added.iter().map(|a| self.dir.join(&a.name)))
            .collect()
    }

    /// The key of the validator node holding `address`, with its name.
    fn key_of(&self, address: &Address) -> Result<Option<(String, SecretKey)>, CliError> {
        for home in self.validator_homes() {
            let key = stele_node::keys::load(&home.join("node_key.json"))
                .map_err(|e| CliError::new(format!("{}: {e}", home.display())))?;
            if key.public_key().address() == *address {
                let name = home
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Ok(Some((name, key)));
            }
        }
        Ok(None)
    }

    /// The ports after every node the folder has: validators, full nodes,
    /// added validators (each node takes two).
    fn next_ports(&self) -> Result<(SocketAddr, SocketAddr), CliError> {
        let index = self.spec.validators + self.spec.full_nodes + self.spec.added.len();
        let port = u16::try_from(2 * index)
            .ok()
            .and_then(|o| self.spec.base_port.checked_add(o))
            .filter(|p| *p < u16::MAX)
            .ok_or_else(|| CliError::new("the devnet's base port is too high for another node"))?;
        Ok((
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port + 1)),
        ))
    }

    /// Signs and sends `tx` from `key`, waits for its receipt; fails unless
    /// it succeeded.
    async fn send(
        &self,
        ctx: &Ctx,
        key: &SecretKey,
        what: &str,
        tx: impl FnOnce(TxBuilder) -> stele_types::Transaction,
    ) -> Res {
        let signer = Signer::new(key.clone());
        let nonce = self
            .client
            .get_account(signer.address())
            .await?
            .pending_nonce;
        let builder = TxBuilder::new(self.chain_id)
            .nonce(nonce)
            .gas_limit(VOTE_GAS);
        let (_, raw, _) = signer.sign(tx(builder));
        let r = crate::chain::send_and_wait(ctx, &self.client, &raw, None, 60).await?;
        if r.receipt.status != ExecStatus::Success {
            return fail(format!(
                "{what} failed: {}",
                stele_abi::output_text(&r.receipt.output)
            ));
        }
        Ok(())
    }

    /// Every validator of the current epoch votes for `next`; `newcomers`
    /// prove they hold their keys. Returns the epoch `next` validates,
    /// once the devnet is in it.
    async fn change(
        &self,
        ctx: &Ctx,
        info: &ValidatorsInfo,
        next: &ValidatorSet,
        newcomers: &[&SecretKey],
    ) -> Result<ValidatorsInfo, CliError> {
        let change = validator_change_hash(self.chain_id, info.epoch, next);
        let mut proofs: Vec<_> = newcomers
            .iter()
            .map(|k| (k.public_key().address(), k.sign_digest(&change)))
            .collect();
        proofs.sort_by_key(|(a, _)| *a);
        let possession: Vec<_> = proofs.into_iter().map(|(_, s)| s).collect();
        let mut voted = 0;
        for v in info.validators.validators() {
            let Some((name, key)) = self.key_of(&v.address)? else {
                continue;
            };
            self.send(ctx, &key, &format!("{name}'s vote"), |b| {
                b.vote_validators(info.epoch, next.clone(), possession.clone())
            })
            .await?;
            voted += v.power;
            if voted >= info.validators.quorum_power() {
                break;
            }
        }
        if voted < info.validators.quorum_power() {
            return fail(format!(
                "the devnet holds the keys of validators with {voted} of the {} power a change needs",
                info.validators.quorum_power()
            ));
        }
        let _spin = ctx.spinner(format!("waiting for epoch {}", info.epoch + 1));
        let deadline = Instant::now() + EPOCH_TIMEOUT;
        loop {
            let now = self.client.get_validators(None).await?;
            if now.epoch > info.epoch {
                return Ok(now);
            }
            if Instant::now() > deadline {
                return fail(format!(
                    "the change was decided but epoch {} did not start within {} s; see the devnet log",
                    info.epoch + 1,
                    EPOCH_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The current epoch, refusing to start a change while one is decided
    /// and not yet in force.
    async fn settled_epoch(&self) -> Result<ValidatorsInfo, CliError> {
        let info = self.client.get_validators(None).await?;
        if let Some(p) = &info.pending {
            return Err(CliError::new(format!(
                "a change is already decided in epoch {}; it takes effect at height {}",
                info.epoch,
                p.last_height + 1
            ))
            .hint("run this again once it has (`stele validators` shows it)"));
        }
        Ok(info)
    }
}

/// Waits until the node at `rpc` answers and has reached `height`.
async fn until_synced(ctx: &Ctx, rpc: SocketAddr, height: u64) -> Result<u64, CliError> {
    let _spin = ctx.spinner(format!("the new node syncs to height {height}"));
    let client = Client::connect(&format!("http://{rpc}")).await?;
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        if let Ok(s) = client.get_status().await
            && s.height >= height
        {
            return Ok(s.height);
        }
        if Instant::now() > deadline {
            return Err(CliError::new(format!(
                "the new node at {rpc} did not reach height {height} within {} s",
                SYNC_TIMEOUT.as_secs()
            ))
            .hint("is the devnet running? Its log says what the node did"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn set_lines(set: &ValidatorSet) -> String {
    set.validators()
        .iter()
        .map(|v| format!("\n  {} power {}", v.address, v.power))
        .collect()
}

/// `stele devnet add-validator`.
pub async fn add(ctx: &Ctx, a: AddValidatorArgs) -> Res {
    let mut d = Devnet::open(ctx, a.dir).await?;
    let info = d.settled_epoch().await?;
    let name = format!("node{}", d.spec.validators + d.spec.added.len());
    let home_dir = d.dir.join(&name);
    let (p2p, rpc) = d.next_ports()?;
    let peers = d
        .validator_homes()
        .iter()
        .map(|h| home::peer_entry(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::new(e.to_string()))?;
    let key = home::write_testnet_joiner(&home_dir, &d.dir.join("node0"), p2p, rpc, peers)
        .map_err(|e| CliError::new(e.to_string()))?;
    let address = key.public_key().address();
    // The running devnet starts the nodes `devnet.json` lists.
    d.spec.added.push(Added {
        name: name.clone(),
        rpc,
    });
    save_spec(&d.dir, &d.spec)?;
    let tip = d.client.get_status().await?.height;
    until_synced(ctx, rpc, tip).await?;
    let funder = d
        .key_of(&info.validators.validators()[0].address)?
        .map(|(_, k)| k)
        .ok_or_else(|| CliError::new("the devnet holds no validator key"))?;
    d.send(ctx, &funder, "funding the new validator", |b| {
        b.gas_limit(100_000).transfer(address, JOINER_FUNDS)
    })
    .await?;
    let mut members = info.validators.validators().to_vec();
    members.push(Validator {
        address,
        public_key: key.public_key(),
        power: 1,
    });
    members.sort_by_key(|v| v.address);
    let next = ValidatorSet::new(members).map_err(|e| CliError::new(e.to_string()))?;
    let now = d.change(ctx, &info, &next, &[&key]).await?;
    ctx.out(
        || {
            format!(
                "{name} ({address}) validates from epoch {} (height {}); its RPC: http://{rpc}\nvalidators:{}",
                now.epoch,
                now.epoch_start_height,
                set_lines(&now.validators)
            )
        },
        json!({
            "name": name,
            "address": address,
            "rpc": format!("http://{rpc}"),
            "epoch": now.epoch,
            "epoch_start_height": now.epoch_start_height,
            "validators": now.validators,
        }),
    );
    Ok(())
}

/// `stele devnet remove-validator`.
pub async fn remove(ctx: &Ctx, a: RemoveValidatorArgs) -> Res {
    let d = Devnet::open(ctx, a.dir).await?;
    let info = d.settled_epoch().await?;
    let address = match a.validator.parse::<Address>() {
        Ok(address) => address,
        Err(_) => named_address(&d, &a.validator)?,
    };
    if info.validators.index_of(&address).is_none() {
        return fail(format!(
            "{} is not a validator of epoch {}",
            a.validator, info.epoch
        ));
    }
    let rest: Vec<Validator> = info
        .validators
        .validators()
        .iter()
        .filter(|v| v.address != address)
        .cloned()
        .collect();
    if rest.is_empty() {
        return fail("the devnet's last validator cannot leave");
    }
    let next = ValidatorSet::new(rest).map_err(|e| CliError::new(e.to_string()))?;
    let now = d.change(ctx, &info, &next, &[]).await?;
    ctx.out(
        || {
            format!(
                "{address} left the validators in epoch {} (height {}); its node keeps running, following the chain\nvalidators:{}",
                now.epoch,
                now.epoch_start_height,
                set_lines(&now.validators)
            )
        },
        json!({
            "address": address,
            "epoch": now.epoch,
            "epoch_start_height": now.epoch_start_height,
            "validators": now.validators,
        }),
    );
    Ok(())
}

/// The address of the validator node `name` (`node2`) in the folder.
fn named_address(d: &Devnet, name: &str) -> Result<Address, CliError> {
    let home = d
        .validator_homes()
        .into_iter()
        .find(|h| h.file_name().is_some_and(|n| n == name))
        .ok_or_else(|| {
            CliError::new(format!(
                "{name} is neither an address nor a validator node of {}",
                d.dir.display()
            ))
        })?;
    let key = stele_node::keys::load(&home.join("node_key.json"))
        .map_err(|e| CliError::new(format!("{}: {e}", home.display())))?;
    Ok(key.public_key().address())
}
