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

/// The folder holding the `stele-sdk` crate the contract depends on by
/// path, as `<root>/sdk` (its place in the repository and in the SDK that
/// `stele new` unpacks): the crate's own `[dependencies]` entry, or its
/// workspace's `[workspace.dependencies]` one.
fn sdk_root(crate_dir: &Path, workspace: Option<&Path>) -> Option<PathBuf> {
    let read = |dir: &Path| -> Option<toml::Table> {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .ok()?
            .parse()
            .ok()
    };
    let manifest = read(crate_dir)?;
    let entry = manifest.get("dependencies")?.get("stele-sdk")?;
    let (base, path) = if let Some(p) = entry.get("path").and_then(|p| p.as_str()) {
        (crate_dir.to_path_buf(), p.to_string())
    } else if entry.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
        let ws = workspace?;
        let root = read(ws)?;
        let p = root
            .get("workspace")?
            .get("dependencies")?
            .get("stele-sdk")?
            .get("path")?
            .as_str()?
            .to_string();
        (ws.to_path_buf(), p)
    } else {
        return None;
    };
    let sdk = base.join(path).canonicalize().ok()?;
    if sdk.file_name()? != "sdk" {
        return None;
    }
    sdk.parent().map(Path::to_path_buf)
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
    let ws = workspace_root(crate_dir);
    // The SDK the crate builds with, when it is elsewhere (the one `stele
    // new` unpacks under the stele home): its files get the same names as
    // in the repository, so the module does not depend on where it is.
    if let Some(root) = sdk_root(crate_dir, ws.as_deref()) {
        out.push((root, "/stele"));
    }
    if let Some(ws) = ws {
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
