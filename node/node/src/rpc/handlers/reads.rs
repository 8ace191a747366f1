//! Reads of committed data: blocks, accounts, contracts and code, storage
//! (pages and proofs) and the node's status.

use jsonrpsee::core::RpcResult;
use stele_client::api::*;
use stele_state::StateRead;
use stele_types::proof::{Namespace, SparseMerkleProof, StateKey};
use stele_types::{Address, BlockHeader, CommitCertificate, Hash};

use super::Handler;
use crate::rpc::errors::{err, internal, invalid, not_found, too_large};
use crate::rpc::size::{self, json_len};
use crate::store::{BlockReader, CommittedBlock};
use stele_exec::{StateWorld, code_key};

/// Storage keys are 1..=256 bytes (docs/vm.md).
const STORAGE_KEY_BYTES_MAX: usize = 256;
/// Bytes a `list_storage` page adds around its entries, with room for the
/// largest cursor.
const STORAGE_PAGE_OVERHEAD: usize = 1024;

impl Handler {
    /// `get_block`: a committed block by height or hash, a page of its transactions.
    pub(super) async fn block(&self, id: BlockId, txs_from: Option<u32>) -> RpcResult<BlockInfo> {
        if let BlockId::Height(h) = id {
            self.reach(Some(h)).await?;
        }
        let budget = self.budget();
        self.read(move |reader| {
            let height = match id {
                BlockId::Height(h) => h,
                BlockId::Hash(hash) => reader
                    .height_of(&hash)
                    .map_err(internal)?
                    .ok_or_else(|| not_found(format_args!("block {hash}")))?,
            };
            let Some(b) = reader.committed(height).map_err(internal)? else {
                let from = reader.blocks_from().map_err(internal)?;
                // Height 0 is the genesis state, which has no block.
                if height > 0 && height < from {
                    return Err(err(
                        codes::HEIGHT_UNAVAILABLE,
                        format!(
                            "block {height} was pruned: this node keeps blocks from {from} (and every epoch's last block)"
                        ),
                    ));
                }
                return Err(not_found(format_args!("block at height {height}")));
            };
            block_page(b, txs_from.unwrap_or(0), budget)
        })
        .await
    }

    /// `get_latest_block`: the highest committed block.
    pub(super) async fn latest_block(&self) -> RpcResult<BlockInfo> {
        let budget = self.budget();
        self.read(move |reader| {
            let height = reader.committed_height().unwrap_or(0);
            let b = reader
                .committed(height)
                .map_err(internal)?
                .ok_or_else(|| not_found("a committed block (only the genesis state exists)"))?;
            block_page(b, 0, budget)
        })
        .await
    }

    /// `get_account`: an account at the latest committed height.
    pub(super) async fn account(&self, address: Address) -> RpcResult<AccountInfo> {
        (|| {
            let (height, base) = self.latest_base()?;
            let account = StateWorld::new(base).account(&address).map_err(internal)?;
            let pending = self.ctx.submitter.pending_nonce(&address);
            Ok(AccountInfo {
                address,
                height,
                balance: account.balance,
                nonce: account.nonce,
                pending_nonce: pending.max(account.nonce),
                code_hash: account.code_hash,
            })
        })()
    }

    /// `get_contract`: a contract's code hash, size and ABI.
    pub(super) async fn contract(&self, address: Address) -> RpcResult<ContractInfo> {
        (|| {
            let (height, base) = self.latest_base()?;
            let account = StateWorld::new(base.clone())
                .account(&address)
                .map_err(internal)?;
            let code_hash = account
                .code_hash
                .ok_or_else(|| not_found(format_args!("contract at {address}")))?;
            // Through the same view: no lock, the same version.
            let code = base
                .read(&code_key(&code_hash))
                .map_err(internal)?
                .ok_or_else(|| internal(format!("code {code_hash} of {address} is missing")))?;
            // The section as `Abi::from_wasm` finds it: a module with two,
            // or one over the size limit, shows no ABI.
            let abi_raw = stele_abi::abi_section(&code).ok().flatten();
            let info = ContractInfo {
                address,
                height,
                code_hash,
                code_bytes: code.len() as u64,
                abi: abi_raw.and_then(|raw| serde_json::from_slice(raw).ok()),
                abi_raw: abi_raw.map(Bytes::from),
            };
            self.whole(info, || format!("the contract at {address}"))
        })()
    }

    /// `get_code`: contract code by its hash.
    pub(super) async fn code(&self, code_hash: Hash) -> RpcResult<Bytes> {
        (|| {
            let view = self.view()?;
            view.get(&code_key(&code_hash))
                .map_err(internal)?
                .map(Bytes)
                .ok_or_else(|| not_found(format_args!("code {code_hash}")))
                .and_then(|code| self.whole(code, || format!("code {code_hash}")))
        })()
    }

    /// `get_storage_proof`: a storage value with its Merkle proof and certified header.
    pub(super) async fn storage_proof(
        &self,
        contract: Address,
        key: Bytes,
        height: Option<u64>,
    ) -> RpcResult<StorageProof> {
        if key.0.is_empty() || key.0.len() > STORAGE_KEY_BYTES_MAX {
            return Err(invalid(format!(
                "storage keys are 1 to {STORAGE_KEY_BYTES_MAX} bytes, got {}",
                key.0.len()
            )));
        }
        let state_key = StateKey::storage(&contract, key.0.clone());
        let (value, proof, header, certificate) = self.certified(state_key, height).await?;
        let proof = StorageProof {
            contract,
            key,
            value: value.map(Bytes),
            proof,
            header,
            certificate,
        };
        self.whole(proof, || "the storage proof".into())
    }

    /// `get_account_proof`: an account record with its Merkle proof and
    /// certified header.
    pub(super) async fn account_proof(
        &self,
        address: Address,
        height: Option<u64>,
    ) -> RpcResult<AccountProof> {
        let (value, proof, header, certificate) =
            self.certified(StateKey::account(&address), height).await?;
        let proof = AccountProof {
            address,
            value: value.map(Bytes),
            proof,
            header,
            certificate,
        };
        self.whole(proof, || "the account proof".into())
    }

    /// The value of `key` at `height` (default the latest) with its Merkle
    /// proof, the block header there and its commit certificate.
    async fn certified(
        &self,
        key: StateKey,
        height: Option<u64>,
    ) -> RpcResult<(
        Option<Vec<u8>>,
        SparseMerkleProof,
        BlockHeader,
        CommitCertificate,
    )> {
        self.reach(height).await?;
        let height = self.height(height)?;
        if height == 0 {
            return Err(err(
                codes::HEIGHT_UNAVAILABLE,
                "the genesis state (height 0) has no certified header; ask for height 1 or later",
            ));
        }
        // The proof walks the tree at `height` under the state lock (one
        // bounded path); the block is read through a view.
        let (value, proof) = self.state()?.prove(&key, height).map_err(internal)?;
        let (header, certificate) = self
            .read(move |reader| {
                let missing = || not_found(format_args!("block at height {height}"));
                let header = reader
                    .block(height)
                    .map_err(internal)?
                    .ok_or_else(missing)?;
                let certificate = reader
                    .certificate(height)
                    .map_err(internal)?
                    .ok_or_else(missing)?;
                Ok((header.header, certificate))
            })
            .await?;
        Ok((value, proof, header, certificate))
    }

    /// `list_storage`: a page of a contract's storage under a prefix.
    pub(super) async fn storage_page(
        &self,
        contract: Address,
        prefix: Bytes,
        cursor: Option<Bytes>,
        limit: u32,
    ) -> RpcResult<StoragePage> {
        (|| {
            let max = self.config.list_storage_limit_max;
            if limit == 0 || limit > max {
                return Err(invalid(format!("limit must be 1 to {max}, got {limit}")));
            }
            if prefix.0.len() > STORAGE_KEY_BYTES_MAX
                || cursor
                    .as_ref()
                    .is_some_and(|c| c.0.len() > STORAGE_KEY_BYTES_MAX)
            {
                return Err(invalid(format!(
                    "prefix and cursor are at most {STORAGE_KEY_BYTES_MAX} bytes"
                )));
            }
            // A view of the latest version: the listing holds no lock a
            // commit needs.
            let (height, base) = self.latest_base()?;
            let view = base
                .view
                .ok_or_else(|| internal("no view of the latest version"))?;
            let limit = (limit as usize).min(view.iter_limit_max());
            let page = view
                .iter_prefix(
                    &Namespace::Storage(contract),
                    &prefix.0,
                    cursor.as_ref().map(|c| c.0.as_slice()),
                    limit,
                )
                .map_err(internal)?;
            // Cut at the response budget: the cursor of a cut page is the
            // last key it holds (the next page starts strictly after it).
            let room = self.budget().saturating_sub(STORAGE_PAGE_OVERHEAD);
            let mut entries = Vec::with_capacity(page.entries.len());
            let mut bytes = 0usize;
            let total = page.entries.len();
            for (key, value) in page.entries {
                let entry = StorageEntry {
                    key: Bytes(key),
                    value: Bytes(value),
                };
                bytes = bytes.saturating_add(json_len(&entry) + 1);
                if bytes > room {
                    break;
                }
                entries.push(entry);
            }
            let next_cursor = if entries.len() < total {
                // At the minimum response limit a 64 KiB value fits many
                // times over, so a page holds at least one entry.
                match entries.last() {
                    Some(last) => Some(last.key.clone()),
                    None => {
                        return Err(err(
                            codes::RESPONSE_TOO_LARGE,
                            "a single storage entry exceeds this node's response budget",
                        ));
                    }
                }
            } else {
                page.next.map(Bytes)
            };
            Ok(StoragePage {
                height,
                entries,
                next_cursor,
            })
        })()
    }

    /// `get_validators`: the epoch, its set and the decided change after
    /// `height`, from the state there, or from the epoch history where the
    /// state of that height was pruned.
    pub(super) async fn validators_at(&self, height: Option<u64>) -> RpcResult<ValidatorsInfo> {
        if let Some(h) = height
            && self
                .state()?
                .oldest_version()
                .is_some_and(|oldest| h < oldest)
        {
            return self.validators_from_history(h);
        }
        let (height, base) = self.base_at(height)?;
        let (info, validators, pending) =
            stele_exec::governance::epoch_on(&base).map_err(internal)?;
        Ok(ValidatorsInfo {
            height,
            epoch: info.epoch,
            epoch_start_height: info.start_height,
            validators_hash: validators.hash(),
            validators,
            pending: pending.map(|p| PendingValidators {
                validators_hash: p.validators.hash(),
                validators: p.validators,
                decided_at: p.decided_at,
                last_height: p.last_height,
            }),
        })
    }

    /// [`Self::validators_at`] from the epoch records the block store keeps
    /// for good.
    fn validators_from_history(&self, height: u64) -> RpcResult<ValidatorsInfo> {
        let view = self.view()?;
        let reader = BlockReader::from_view(&view);
        let epoch = reader
            .epoch_containing(height + 1)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("no epoch record covers height {}", height + 1)))?;
        let pending = reader
            .epoch_after(&epoch)
            .map_err(internal)?
            .filter(|next| next.decided_at <= height)
            .map(|next| PendingValidators {
                validators_hash: next.validators.hash(),
                decided_at: next.decided_at,
                last_height: next.start_height - 1,
                validators: next.validators,
            });
        Ok(ValidatorsInfo {
            height,
            epoch: epoch.epoch,
            epoch_start_height: epoch.start_height,
            validators_hash: epoch.validators.hash(),
            validators: epoch.validators,
            pending,
        })
    }

    /// `get_protocol`: the protocol after `height` and the upgrade
    /// scheduled, from the state there, with whether this node runs it.
    pub(super) async fn protocol_at(&self, height: Option<u64>) -> RpcResult<ProtocolInfo> {
        let (height, base) = self.base_at(height)?;
        let executor = &self.ctx.executor;
        let world = stele_exec::StateWorld::new(base);
        let active =
            stele_exec::upgrade::active(&world, &executor.config().protocol).map_err(internal)?;
        let scheduled = stele_exec::upgrade::scheduled(&world).map_err(internal)?;
        Ok(ProtocolInfo {
            height,
            active,
            scheduled: scheduled.map(|s| ScheduledProtocol {
                unsupported: executor.supports(&s.params).err().map(|e| e.to_string()),
                params: s.params,
                activation_height: s.activation_height,
                decided_at: s.decided_at,
                epoch: s.epoch,
            }),
        })
    }

    /// `get_status`: the node's live status.
    pub(super) async fn node_status(&self) -> RpcResult<StatusInfo> {
        let mut status = self.ctx.status.status();
        status.chain_id = self.ctx.chain_id;
        let view = self.view()?;
        status.blocks_from = BlockReader::from_view(&view)
            .blocks_from()
            .map_err(internal)?;
        Ok(status)
    }
}

/// A committed block with its transactions from `txs_from`, as many as fit
/// in `budget` bytes.
fn block_page(b: CommittedBlock, txs_from: u32, budget: usize) -> RpcResult<BlockInfo> {
    let count = b.block.txs.len();
    let info = BlockInfo {
        hash: b.block.hash(),
        block: b.block,
        certificate: b.certificate,
        txs_from: 0,
        txs_next: None,
    };
    match size::fit_block(info, txs_from, budget) {
        Some(page) => page.map_err(|e| too_large(&e, "")),
        None => Err(invalid(format!(
            "txs_from {txs_from} is past the block's {count} transactions"
        ))),
    }
}
