//! A validator home for a network assembled across hosts, in two steps:
//! [`prepare_validator_home`] (`stele-node init --advertise`) writes the
//! key, `config.toml` and the signed record (`validator.json`) whoever
//! builds the genesis collects; once the genesis is built,
//! [`finish_validator_home`] (`stele-node init --genesis G --peers-from
//! P` on the same home) adds the genesis, the other validators as peers,
//! and the initial state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use stele_types::{Address, Hash, SecretKey};

use super::{HomeError, config_path, err, genesis_json, node_config, write_new};
use crate::config::{NodeConfig, PeerEntry};
use crate::genesis::Genesis;
use crate::genesis_build::{peers_from_records, read_record};
use crate::host::{Host, HostPort};
use crate::keys;
use crate::validator_record::{RECORD_FILE, ValidatorRecord};

const KEY_FILE: &str = "node_key.json";
const GENESIS_FILE: &str = "genesis.json";

/// Where a prepared validator listens for peers when not told: every
/// interface (of the advertised address's family), on the advertised port.
pub fn default_listen(advertise: &HostPort) -> SocketAddr {
    let ip = match advertise.host {
        Host::Ip(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, advertise.port)
}

/// Writes a validator home for a network being assembled: a new key,
/// `config.toml` (listening on `p2p`, RPC on `rpc`, no peers yet) and
/// `validator.json`, the record of the key for chain `chain_id` with
/// `power`, advertising `advertise`, signed by the key. No genesis and no
/// data yet. Refuses a folder that already holds any of these files.
pub fn prepare_validator_home(
    home: &Path,
    chain_id: u64,
    power: u64,
    advertise: HostPort,
    p2p: SocketAddr,
    rpc: SocketAddr,
) -> Result<ValidatorRecord, HomeError> {
    for name in [KEY_FILE, RECORD_FILE, "config.toml", GENESIS_FILE] {
        let path = home.join(name);
        if path.exists() {
            return Err(HomeError(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
    }
    let key = SecretKey::generate();
    let record = ValidatorRecord::sign(&key, chain_id, power, advertise).map_err(err)?;
    let record_text = serde_json::to_string_pretty(&record).map_err(err)?;
    std::fs::create_dir_all(home).map_err(|e| HomeError::io("create", home, e))?;
    keys::save(&home.join(KEY_FILE), &key).map_err(err)?;
    write_new(
        &config_path(home),
        &node_config(p2p, Some(rpc), Vec::new()).to_toml(),
    )?;
    write_new(&home.join(RECORD_FILE), &format!("{record_text}\n"))?;
    Ok(record)
}

/// Whether `home` was written by [`prepare_validator_home`] and has no
/// genesis yet.
pub fn is_prepared(home: &Path) -> bool {
    home.join(RECORD_FILE).is_file()
        && home.join(KEY_FILE).is_file()
        && !home.join(GENESIS_FILE).exists()
}

/// What [`finish_validator_home`] did.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The home's validator.
    pub address: Address,
    /// Peers now in `config.toml`.
    pub peers: usize,
    /// The state root of the genesis (version 0).
    pub state_root: Hash,
}

/// Finishes a home [`prepare_validator_home`] wrote with the network's
/// `genesis`: checks the home's key is a validator of it with the power
/// and chain of its record, adds `extra_peers` and, from `records` (the
/// validators' records, e.g. `peers.json`), every other validator at its
/// advertised address to `config.toml`'s peers, writes `genesis.json`
/// and initialises the data folder.
pub fn finish_validator_home(
    home: &Path,
    genesis: &Genesis,
    extra_peers: Vec<PeerEntry>,
    records: Vec<(PathBuf, ValidatorRecord)>,
) -> Result<Finished, HomeError> {
    let key = keys::load(&home.join(KEY_FILE)).map_err(err)?;
    let me = key.address();
    let own = read_record(&home.join(RECORD_FILE)).map_err(err)?;
    if own.address != me {
        return Err(HomeError(format!(
            "{} is the record of {}, but the home's key is {me}",
            home.join(RECORD_FILE).display(),
            own.address
        )));
    }
    if own.chain_id != genesis.chain_id {
        return Err(HomeError(format!(
            "the genesis is for chain {}, this validator's record for chain {}",
            genesis.chain_id, own.chain_id
        )));
    }
    let validator = genesis
        .validators
        .index_of(&me)
        .and_then(|i| genesis.validators.get(i))
        .ok_or_else(|| {
            HomeError(format!(
                "this home's validator {me} is not in the genesis validator set (was its validator.json collected?)"
            ))
        })?;
    if validator.power != own.power {
        return Err(HomeError(format!(
            "the genesis gives {me} power {}, its record asked for {}",
            validator.power, own.power
        )));
    }
    let path = config_path(home);
    let text = std::fs::read_to_string(&path).map_err(|e| HomeError::io("read", &path, e))?;
    let mut config = NodeConfig::parse(&text, &path).map_err(err)?;
    config.p2p.peers.extend(extra_peers);
    config
        .p2p
        .peers
        .extend(peers_from_records(genesis, records, &me).map_err(err)?);
    config.validate(&path).map_err(err)?;
    write_new(&home.join(GENESIS_FILE), &genesis_json(genesis)?)?;
    // The config was ours (prepare_validator_home); replace it whole.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, config.to_toml()).map_err(|e| HomeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| HomeError::io("replace", &path, e))?;
    let state_root = crate::node::init_data_dir(&home.join("data"), genesis).map_err(err)?;
    Ok(Finished {
        address: me,
        peers: config.p2p.peers.len(),
        state_root,
    })
}
