//! Contract code to deploy: built from a crate (cached per process) or
//! loaded from a `.wasm` file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use stele_abi::Abi;
use stele_build::{BuildError, BuildOptions};
use stele_types::Hash;

/// Deployable code and its ABI.
#[derive(Debug, Clone)]
pub struct Contract {
    pub wasm: Arc<Vec<u8>>,
    pub abi: Arc<Abi>,
    pub code_hash: Hash,
}

static BUILT: Mutex<BTreeMap<PathBuf, Contract>> = Mutex::new(BTreeMap::new());

impl Contract {
    /// Builds the contract crate at `crate_dir` with `stele-build` (once per
    /// process; cargo's own cache makes later processes quick).
    pub fn build(crate_dir: impl AsRef<Path>) -> Result<Contract, BuildError> {
        let dir = crate_dir.as_ref();
        let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        // A poisoned cache only means another test panicked mid-build.
        let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = built.get(&key) {
            return Ok(c.clone());
        }
        let out = stele_build::build(&key, &BuildOptions::default())?;
        let c = Contract {
            wasm: Arc::new(out.wasm),
            abi: Arc::new(out.abi),
            code_hash: out.code_hash,
        };
        built.insert(key, c.clone());
        Ok(c)
    }

    /// Code from a built module (its `stele_abi` section gives the ABI).
    pub fn from_wasm(wasm: Vec<u8>) -> Result<Contract, stele_abi::AbiError> {
        let abi = Abi::from_wasm(&wasm)?;
        Ok(Contract {
            code_hash: stele_types::keccak256(&wasm),
            wasm: Arc::new(wasm),
            abi: Arc::new(abi),
        })
    }
}
