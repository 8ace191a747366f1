//! Reproducible builds of Stele contract crates for wasm32.
//!
//! [`build`] compiles a contract crate twice with cargo for
//! `wasm32-unknown-unknown` in release mode with the VM's feature flags
//! (`docs/vm.md`) and path remapping: once with the SDK feature `__abi`, whose
//! `__stele_abi` export is run in wasmtime to get the ABI JSON, then normally.
//! The second module keeps only its code sections, the `stele_reentrant`
//! marker if present, and a fresh `stele_abi` section with the ABI.
//! Building the same source in two directories gives the same bytes.

mod cargo;
mod strip;

use std::path::{Path, PathBuf};

pub use cargo::default_target_dir;
pub use stele_abi::Abi;
use stele_types::Hash;
use thiserror::Error;

/// Flags every contract build passes to rustc (docs/vm.md: the VM accepts
/// the lime1 feature set only, and a frame's memory is at most 1 MiB, so
/// the stack gets 256 KiB instead of the linker's default 1 MiB).
pub const WASM_RUSTFLAGS: &[&str] = &[
    "-C",
    "target-cpu=mvp",
    "-C",
    "target-feature=+bulk-memory,+multivalue,+sign-ext,+nontrapping-fptoint",
    "-C",
    "link-arg=-zstack-size=262144",
];

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo target directory; default [`default_target_dir`].
    pub target_dir: Option<PathBuf>,
    /// Pass `--locked` to cargo.
    pub locked: bool,
    /// Let cargo print its progress to stderr (quiet by default).
    pub verbose: bool,
}

/// A built contract.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The deployable module, ABI section included.
    pub wasm: Vec<u8>,
    /// Where it was written (`<target>/stele/<crate>.wasm`).
    pub path: PathBuf,
    /// `wasm.len()`.
    pub size: usize,
    /// Keccak-256 of `wasm`, as the chain computes it at deploy.
    pub code_hash: Hash,
    pub abi: Abi,
}

/// Why a build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a contract crate: {1}")]
    Manifest(PathBuf, String),
    #[error("cargo failed ({status}):\n{stderr}")]
    Cargo { status: String, stderr: String },
    #[error("ABI pass: {0}")]
    AbiPass(String),
    #[error("ABI: {0}")]
    Abi(#[from] stele_abi::AbiError),
    #[error("built module: {0}")]
    Module(String),
}

/// Builds the contract crate at `crate_dir`.
pub fn build(crate_dir: &Path, options: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let crate_dir = crate_dir.canonicalize().map_err(|source| BuildError::Io {
        path: crate_dir.to_path_buf(),
        source,
    })?;
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(default_target_dir);
    let lib = cargo::lib_name(&crate_dir)?;
    let _lock = cargo::lock(&target_dir)?;

    let abi_wasm = cargo::build(&crate_dir, &target_dir, &lib, true, options)?;
    let abi_json = run_abi_export(&abi_wasm)?;
    let abi = Abi::from_json(&abi_json)?;

    let code = cargo::build(&crate_dir, &target_dir, &lib, false, options)?;
    let wasm = strip::finalize(&code, &abi_json)?;
    let out_dir = target_dir.join("stele");
    std::fs::create_dir_all(&out_dir).map_err(|source| BuildError::Io {
        path: out_dir.clone(),
        source,
    })?;
    let path = out_dir.join(format!("{lib}.wasm"));
    std::fs::write(&path, &wasm).map_err(|source| BuildError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(BuildOutput {
        size: wasm.len(),
        code_hash: stele_types::keccak256(&wasm),
        wasm,
        path,
        abi,
    })
}

/// Largest ABI the export may return.
const ABI_BYTES_MAX: usize = stele_abi::ABI_SECTION_BYTES_MAX;

/// Runs `__stele_abi` of the ABI-pass module (imports trap if called) and
/// returns the JSON it points at.
fn run_abi_export(wasm: &[u8]) -> Result<Vec<u8>, BuildError> {
    use wasmtime::{Config, Engine, Linker, Module, Store};
    let err = |e: wasmtime::Error| BuildError::AbiPass(format!("{e:#}"));
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).map_err(err)?;
    let module = Module::new(&engine, wasm).map_err(err)?;
    let mut linker = Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&module)
        .map_err(err)?;
    let mut store = Store::new(&engine, ());
    // Building a JSON string is cheap; this only stops a runaway export.
    store.set_fuel(1_000_000_000).map_err(err)?;
    let instance = linker.instantiate(&mut store, &module).map_err(err)?;
    let export = instance
        .get_typed_func::<(), i64>(&mut store, "__stele_abi")
        .map_err(|e| {
            BuildError::AbiPass(format!(
                "no `__stele_abi() -> i64` export (is there a #[contract] impl?): {e}"
            ))
        })?;
    let packed = export.call(&mut store, ()).map_err(err)? as u64;
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    if len > ABI_BYTES_MAX {
        return Err(BuildError::AbiPass(format!(
            "ABI is {len} bytes, over {ABI_BYTES_MAX}"
        )));
    }
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| BuildError::AbiPass("no exported memory".into()))?;
    let data = memory.data(&store);
    data.get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| BuildError::AbiPass("ABI pointer out of memory".into()))
}
