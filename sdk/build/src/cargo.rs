//! Running cargo for wasm32 with reproducible flags.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, BuildOptions, WASM_RUSTFLAGS};

/// `$STELE_CONTRACTS_TARGET_DIR`, else `~/.cache/stele-contracts-target`
/// (apart from the node's target dir so contract builds never wait on its
/// lock), else `./target/stele-contracts`.
pub fn default_target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STELE_CONTRACTS_TARGET_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home)
            .join(".cache")
            .join("stele-contracts-target"),
        None => PathBuf::from("target").join("stele-contracts"),
    }
}

/// The crate's library name (what cargo names `<lib>.wasm`).
pub fn lib_name(crate_dir: &Path) -> Result<String, BuildError> {
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|source| BuildError::Io {
        path: manifest.clone(),
        source,
    })?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| BuildError::Manifest(manifest.clone(), format!("{e}")))?;
    let lib = doc
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str());
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    match lib.or(package) {
        Some(n) => Ok(n.replace('-', "_")),
        None => Err(BuildError::Manifest(manifest, "no [package] name".into())),
    }
}

/// An exclusive lock on the target dir for the whole two-pass build, so a
/// concurrent build of the same crate cannot swap the ABI-pass output in.
pub fn lock(target_dir: &Path) -> Result<File, BuildError> {
    std::fs::create_dir_all(target_dir).map_err(|source| BuildError::Io {
        path: target_dir.to_path_buf(),
        source,
    })?;
    let path = target_dir.join("stele-build.lock");
    let file = File::create(&path).map_err(|source| BuildError::Io {
        path: path.clone(),
        source,
    })?;
    file.lock()
        .map_err(|source| BuildError::Io { path, source })?;
    Ok(file)
}

fn workspace_root(crate_dir: &Path) -> Option<PathBuf> {
    let out = Command::new(cargo_bin())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(crate_dir)
        .output()
        .ok()?;
    let manifest = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    manifest.parent().map(Path::to_path_buf)
}

fn cargo_bin() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Paths rewritten in the output: most specific last (rustc applies the
/// last matching prefix).
fn remaps(crate_dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        out.push((home, "/cargo"));
    }
    // The Stele repository holding the SDK this tool was built with.
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    if let Ok(sdk) = sdk.canonicalize() {
        out.push((sdk, "/stele"));
    }
    if let Some(ws) = workspace_root(crate_dir) {
        out.push((ws, "/contract-workspace"));
    }
    out.push((crate_dir.to_path_buf(), "/contract"));
    out
}

/// Builds the crate's cdylib; returns the raw module.
pub fn build(
    crate_dir: &Path,
    target_dir: &Path,
    lib: &str,
    abi_pass: bool,
    options: &BuildOptions,
) -> Result<Vec<u8>, BuildError> {
    let mut flags: Vec<String> = WASM_RUSTFLAGS.iter().map(|s| s.to_string()).collect();
    for (from, to) in remaps(crate_dir) {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    let mut cmd = Command::new(cargo_bin());
    cmd.arg("build")
        .args(["--release", "--lib", "--target", "wasm32-unknown-unknown"])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(crate_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        // Whatever the caller (e.g. a test under cargo) set must not leak in.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS_HOST");
    if abi_pass {
        cmd.args(["--features", "stele-sdk/__abi"]);
    }
    if options.locked {
        cmd.arg("--locked");
    }
    if !options.verbose {
        cmd.arg("--quiet");
    }
    let out = cmd.output().map_err(|source| BuildError::Io {
        path: cargo_bin(),
        source,
    })?;
    if !out.status.success() {
        return Err(BuildError::Cargo {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let path = target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join(format!("{lib}.wasm"));
    std::fs::read(&path).map_err(|source| BuildError::Io { path, source })
}
