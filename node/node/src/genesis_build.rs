//! Assembling a genesis across hosts (`stele-node genesis ...`): a draft
//! collects the validators' signed records ([`ValidatorRecord`]) and the
//! initial balances, then [`GenesisDraft::build`] makes the `genesis.json`
//! every validator loads. The records themselves, with the addresses the
//! validators advertise, are kept beside it (`peers.json`), for
//! `stele-node init --peers-from` to write each home's `[[p2p.peers]]`.
//!
//! The draft is a file of its own because a genesis cannot be half made:
//! its validator set is never empty. Validators and accounts are kept in
//! address order whatever order they were added in, so the same records
//! and accounts always build the same genesis (the same hash).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stele_types::{Address, Amount, PublicKey, ValidatorSet, ValidatorSetError};
use thiserror::Error;

use crate::config::PeerEntry;
use crate::genesis::{Allocation, ChainParams, Genesis, GenesisError};
use crate::validator_record::{RecordError, ValidatorRecord};

/// The draft format this node writes and reads.
pub const DRAFT_VERSION: u32 = 1;

/// The usual file name of a draft.
pub const DRAFT_FILE: &str = "genesis-draft.json";

/// The usual file name of the records kept beside a built genesis.
pub const PEERS_FILE: &str = "peers.json";

/// Largest draft read (its allocations may be many).
pub const DRAFT_BYTES_MAX: u64 = 64 << 20;

/// Largest record file read (a record is about 500 bytes).
pub const RECORD_BYTES_MAX: u64 = 16 << 10;

/// Largest `peers.json` read: a full validator set of records.
pub const PEERS_BYTES_MAX: u64 = 4 << 20;

/// Why a draft, a record file or the peers of a home could not be made.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path} is over {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path} is not a valid {what}: {reason}")]
    Json {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error(
        "{path} is a finished genesis, not a draft (start a draft with `stele-node genesis new`)"
    )]
    NotADraft { path: PathBuf },
    #[error("{path} is a draft of version {got}; this node reads version {DRAFT_VERSION}")]
    DraftVersion { path: PathBuf, got: u32 },
    #[error("{path}: {source}")]
    Record { path: PathBuf, source: RecordError },
    #[error("validator {address}: {source}")]
    Invalid {
        address: Address,
        source: RecordError,
    },
    #[error("validator {0} is already in the draft")]
    DuplicateValidator(Address),
    #[error("public key {key} is already in the draft (validator {address})")]
    DuplicateKey { key: PublicKey, address: Address },
    #[error("validator {address} advertises {advertise}, as validator {other} already does")]
    DuplicateAdvertise {
        address: Address,
        advertise: String,
        other: Address,
    },
    #[error("account {0} is already allocated in the draft")]
    DuplicateAccount(Address),
    #[error("a genesis holds at most {max} validators")]
    TooManyValidators { max: usize },
    #[error("the total supply would overflow u128")]
    SupplyOverflow,
    #[error(
        "the draft has no validator yet (add records with `genesis add-validator` or `genesis collect`)"
    )]
    NoValidators,
    #[error("no *.json record in {0}")]
    NoRecords(PathBuf),
    #[error("{count} record files in {dir}, over the {max} a genesis may hold")]
    TooManyRecords {
        dir: PathBuf,
        count: usize,
        max: usize,
    },
    #[error("the validators do not make a valid set: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
    #[error("the draft does not make a valid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("{0} has a record but is not a validator of this genesis")]
    NotInGenesis(Address),
    #[error("the record of {address} does not match the genesis: its {field} differs")]
    RecordMismatch {
        address: Address,
        field: &'static str,
    },
    #[error("two records of {0}")]
    DuplicateRecord(Address),
}

/// A genesis being assembled (`genesis-draft.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDraft {
    /// [`DRAFT_VERSION`]; also what tells a draft from a genesis.
    pub draft_version: u32,
    pub chain_id: u64,
    /// Milliseconds since the Unix epoch, as in the genesis.
    pub genesis_time_ms: u64,
    pub params: ChainParams,
    /// In address order.
    pub allocations: Vec<Allocation>,
    /// Verified records, in address order.
    pub validators: Vec<ValidatorRecord>,
}

impl GenesisDraft {
    /// An empty draft with the default chain parameters.
    pub fn new(chain_id: u64, genesis_time_ms: u64) -> GenesisDraft {
        GenesisDraft {
            draft_version: DRAFT_VERSION,
            chain_id,
            genesis_time_ms,
            params: ChainParams::default(),
            allocations: Vec::new(),
            validators: Vec::new(),
        }
    }

    /// Reads a draft and checks it as if every validator and account were
    /// added to it again (a hand-edited draft gets no less checking).
    pub fn load(path: &Path) -> Result<GenesisDraft, BuildError> {
        let text = read_capped(path, DRAFT_BYTES_MAX)?;
        let read: GenesisDraft = match serde_json::from_str(&text) {
            Ok(draft) => draft,
            Err(e) => {
                if serde_json::from_str::<Genesis>(&text).is_ok() {
                    return Err(BuildError::NotADraft {
                        path: path.to_owned(),
                    });
                }
                return Err(json_error(path, "genesis draft", e));
            }
        };
        if read.draft_version != DRAFT_VERSION {
            return Err(BuildError::DraftVersion {
                path: path.to_owned(),
                got: read.draft_version,
            });
        }
        let mut draft = GenesisDraft {
            params: read.params,
            ..GenesisDraft::new(read.chain_id, read.genesis_time_ms)
        };
        for record in read.validators {
            draft.add_validator(record)?;
        }
        for a in read.allocations {
            draft.add_account(a.address, a.balance)?;
        }
        Ok(draft)
    }

    /// Writes the draft to `path`, replacing it whole (a crash leaves the
    /// old draft or the new one, never a mix).
    pub fn save(&self, path: &Path) -> Result<(), BuildError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| BuildError::Write {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        replace_file(path, &text)
    }

    /// Adds a validator after checking its record (for this chain, signed
    /// by its key); refuses a validator, key or advertised address already
    /// in the draft.
    pub fn add_validator(&mut self, record: ValidatorRecord) -> Result<(), BuildError> {
        record
            .verify_for(self.chain_id)
            .map_err(|source| BuildError::Invalid {
                address: record.address,
                source,
            })?;
        for v in &self.validators {
            if v.address == record.address {
                return Err(BuildError::DuplicateValidator(record.address));
            }
            if v.public_key == record.public_key {
                return Err(BuildError::DuplicateKey {
                    key: record.public_key,
                    address: v.address,
                });
            }
            if v.advertise == record.advertise {
                return Err(BuildError::DuplicateAdvertise {
                    address: record.address,
                    advertise: record.advertise.to_string(),
                    other: v.address,
                });
            }
        }
        if self.validators.len() >= ValidatorSet::VALIDATORS_MAX {
            return Err(BuildError::TooManyValidators {
                max: ValidatorSet::VALIDATORS_MAX,
            });
        }
        let at = self
            .validators
            .partition_point(|v| v.address < record.address);
        self.validators.insert(at, record);
        Ok(())
    }

    /// Gives `address` an initial balance; refuses an account already
    /// allocated, and a total supply over `u128`.
    pub fn add_account(&mut self, address: Address, balance: Amount) -> Result<(), BuildError> {
        let at = self.allocations.partition_point(|a| a.address < address);
        if self
            .allocations
            .get(at)
            .is_some_and(|a| a.address == address)
        {
            return Err(BuildError::DuplicateAccount(address));
        }
        self.allocations
            .iter()
            .try_fold(balance, |sum, a| sum.checked_add(a.balance))
            .ok_or(BuildError::SupplyOverflow)?;
        self.allocations.insert(at, Allocation { address, balance });
        Ok(())
    }

    /// Adds the record in every `*.json` file of `dir`, all or none: on
    /// any error the draft is as it was. Returns how many were added.
    pub fn collect(&mut self, dir: &Path) -> Result<usize, BuildError> {
        let records = read_record_dir(dir)?;
        let mut next = self.clone();
        for (path, record) in records {
            next.add_validator(record).map_err(|e| match e {
                BuildError::Invalid { source, .. } => BuildError::Record { path, source },
                other => other,
            })?;
        }
        let added = next.validators.len() - self.validators.len();
        *self = next;
        Ok(added)
    }

    /// The genesis this draft makes, checked as `genesis.json` is at start.
    pub fn build(&self) -> Result<Genesis, BuildError> {
        if self.validators.is_empty() {
            return Err(BuildError::NoValidators);
        }
        let genesis = Genesis {
            chain_id: self.chain_id,
            genesis_time_ms: self.genesis_time_ms,
            validators: ValidatorSet::new(
                self.validators
                    .iter()
                    .map(ValidatorRecord::validator)
                    .collect(),
            )?,
            allocations: self.allocations.clone(),
            params: self.params.clone(),
        };
        genesis.validate()?;
        Ok(genesis)
    }
}

/// Reads a file of at most `max` bytes.
fn read_capped(path: &Path, max: u64) -> Result<String, BuildError> {
    let read_error = |e: std::io::Error| BuildError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > max {
        return Err(BuildError::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(text)
}

fn json_error(path: &Path, what: &'static str, e: serde_json::Error) -> BuildError {
    BuildError::Json {
        path: path.to_owned(),
        what,
        reason: e.to_string(),
    }
}

/// Writes `text` to a temporary file beside `path`, syncs it and renames
/// it over `path`.
fn replace_file(path: &Path, text: &str) -> Result<(), BuildError> {
    let write_error = |e: std::io::Error| BuildError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(write_error)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    std::fs::rename(&tmp, path).map_err(write_error)
}

/// Reads one record file (`validator.json`), unchecked.
pub fn read_record(path: &Path) -> Result<ValidatorRecord, BuildError> {
    let text = read_capped(path, RECORD_BYTES_MAX)?;
    serde_json::from_str(&text).map_err(|e| json_error(path, "validator record", e))
}

/// The records of every `*.json` file in `dir`, in file-name order,
/// unchecked.
pub fn read_record_dir(dir: &Path) -> Result<Vec<(PathBuf, ValidatorRecord)>, BuildError> {
    let read_error = |e: std::io::Error| BuildError::Read {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            paths.push(path);
        }
        if paths.len() > ValidatorSet::VALIDATORS_MAX {
            return Err(BuildError::TooManyRecords {
                dir: dir.to_owned(),
                count: paths.len(),
                max: ValidatorSet::VALIDATORS_MAX,
            });
        }
    }
    if paths.is_empty() {
        return Err(BuildError::NoRecords(dir.to_owned()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| read_record(&path).map(|r| (path, r)))
        .collect()
}

/// Writes the records of a built draft to `path` (`peers.json`) as a JSON
/// array; refuses to overwrite a file.
pub fn write_peers_file(path: &Path, records: &[ValidatorRecord]) -> Result<(), BuildError> {
    let write_error = |reason: String| BuildError::Write {
        path: path.to_owned(),
        reason,
    };
    let text = serde_json::to_string_pretty(records).map_err(|e| write_error(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| write_error(e.to_string()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| write_error(e.to_string()))
}

/// The records at `path`: a `peers.json` (an array of records), one
/// record file, or a directory of record files; unchecked.
pub fn read_records(path: &Path) -> Result<Vec<(PathBuf, ValidatorRecord)>, BuildError> {
    if path.is_dir() {
        return read_record_dir(path);
    }
    let text = read_capped(path, PEERS_BYTES_MAX)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| json_error(path, "peers file", e))?;
    let records = if value.is_array() {
        serde_json::from_value::<Vec<ValidatorRecord>>(value)
            .map_err(|e| json_error(path, "peers file (an array of validator records)", e))?
    } else {
        vec![
            serde_json::from_value::<ValidatorRecord>(value)
                .map_err(|e| json_error(path, "validator record", e))?,
        ]
    };
    Ok(records.into_iter().map(|r| (path.to_owned(), r)).collect())
}

/// The `[[p2p.peers]]` of node `me` from the records of `genesis`'s
/// validators: every validator but `me`, at its advertised address, in
/// address order. Each record must verify for the genesis's chain and
/// match its validator (key and power); a record of a key outside the
/// set, or two of one validator, is an error. Validators without a record
/// are left out (list them with `--peer`).
pub fn peers_from_records(
    genesis: &Genesis,
    records: Vec<(PathBuf, ValidatorRecord)>,
    me: &Address,
) -> Result<Vec<PeerEntry>, BuildError> {
    let mut peers = BTreeMap::new();
    for (path, record) in records {
        record
            .verify_for(genesis.chain_id)
            .map_err(|source| BuildError::Record {
                path: path.clone(),
                source,
            })?;
        let address = record.address;
        let index = genesis
            .validators
            .index_of(&address)
            .ok_or(BuildError::NotInGenesis(address))?;
        let validator = genesis
            .validators
            .get(index)
            .ok_or(BuildError::NotInGenesis(address))?;
        if validator.public_key != record.public_key {
            return Err(BuildError::RecordMismatch {
                address,
                field: "public key",
            });
        }
        if validator.power != record.power {
            return Err(BuildError::RecordMismatch {
                address,
                field: "power",
            });
        }
        if peers.insert(address, record.advertise).is_some() {
            return Err(BuildError::DuplicateRecord(address));
        }
    }
    Ok(peers
        .into_iter()
        .filter(|(address, _)| address != me)
        .map(|(address, endpoint)| PeerEntry { address, endpoint })
        .collect())
}

#[cfg(test)]
mod tests;
