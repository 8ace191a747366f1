//! The SDK a contract project builds with, carried in the binary: the
//! sources of `stele-sdk`, `stele-testkit` and the workspace crates they
//! need (cli/build.rs picks them), unpacked under
//! `<stele home>/sdk/<version>/` on first use.
//!
//! Unpacking writes a temporary folder next to the final one and renames
//! it into place, so an interrupted run leaves no half-written SDK. A
//! folder already there is reused when its files hash to the embedded
//! ones, and replaced otherwise (a different build of the same version,
//! or files edited by hand).

use std::path::{Path, PathBuf};

use stele_types::{Hash, keccak256_parts};

use crate::Res;
use crate::ctx::CliError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

pub use embedded::{CARGO_LOCK, RUST_TOOLCHAIN};

/// The SDK's version: the CLI's own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Folders of the crates a project depends on, inside the unpacked SDK.
pub const SDK_CRATE: &str = "sdk";
pub const TESTKIT_CRATE: &str = "sdk/testkit";

/// What [`unpack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpacked {
    /// Wrote the SDK; there was none.
    Fresh,
    /// Found it with the right content.
    Reused,
    /// Found it with other content and put this binary's in its place.
    Replaced,
}

impl Unpacked {
    pub fn as_str(self) -> &'static str {
        match self {
            Unpacked::Fresh => "unpacked",
            Unpacked::Reused => "reused",
            Unpacked::Replaced => "replaced",
        }
    }
}

/// The embedded SDK's content hash: Keccak-256 over each file's path and
/// bytes, each with its length, in path order.
pub fn content_hash() -> Hash {
    hash_files(embedded::SDK_FILES.iter().map(|(p, b)| (*p, *b)))
}

fn hash_files<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Hash {
    let mut lens: Vec<[u8; 16]> = Vec::new();
    let mut bodies: Vec<(&[u8], &[u8])> = Vec::new();
    for (path, bytes) in files {
        let mut len = [0u8; 16];
        len[..8].copy_from_slice(&(path.len() as u64).to_le_bytes());
        len[8..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        lens.push(len);
        bodies.push((path.as_bytes(), bytes));
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(3 * bodies.len());
    for (len, (path, bytes)) in lens.iter().zip(&bodies) {
        parts.push(len);
        parts.push(path);
        parts.push(bytes);
    }
    keccak256_parts(&parts)
}

/// The hash of the embedded SDK's files as found in `dir`, or `None` when
/// one is missing or unreadable. Files cargo or an editor added are not
/// part of it.
fn hash_on_disk(dir: &Path) -> Option<Hash> {
    let mut read = Vec::with_capacity(embedded::SDK_FILES.len());
    for (path, _) in embedded::SDK_FILES {
        read.push((*path, std::fs::read(dir.join(path)).ok()?));
    }
    Some(hash_files(read.iter().map(|(p, b)| (*p, b.as_slice()))))
}

/// `<home>/sdk/<version>`.
pub fn dir(home: &Path) -> PathBuf {
    home.join("sdk").join(VERSION)
}

/// Makes sure `<home>/sdk/<version>` holds this binary's SDK; returns
/// the folder and what was done.
pub fn unpack(home: &Path) -> Res<(PathBuf, Unpacked)> {
    let dir = dir(home);
    let want = content_hash();
    let stale = dir.exists();
    if stale && hash_on_disk(&dir) == Some(want) {
        return Ok((dir, Unpacked::Reused));
    }
    let parent = home.join("sdk");
    let pid = std::process::id();
    let tmp = parent.join(format!(".{VERSION}.partial-{pid}"));
    // A leftover of a crashed run that had our pid.
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
    }
    if let Err(e) = write_files(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{VERSION}.old-{pid}"));
    let moved_old = stale && std::fs::rename(&dir, &old).is_ok();
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        // Another `stele new` may have put the same SDK there meanwhile.
        let _ = std::fs::remove_dir_all(&tmp);
        if hash_on_disk(&dir) != Some(want) {
            if moved_old && !dir.exists() {
                let _ = std::fs::rename(&old, &dir);
            }
            return Err(io_error(&dir, e));
        }
    }
    if moved_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    let done = if stale {
        Unpacked::Replaced
    } else {
        Unpacked::Fresh
    };
    Ok((dir, done))
}

fn write_files(base: &Path) -> Res {
    for (path, bytes) in embedded::SDK_FILES {
        let file = base.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| io_error(&file, e))?;
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::new(format!("cannot unpack the SDK at {}: {e}", path.display()))
        .hint("check that the stele home (STELE_HOME or --home) is writable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_the_sdk_testkit_and_their_workspace() {
        let paths: Vec<&str> = embedded::SDK_FILES.iter().map(|(p, _)| *p).collect();
        for want in [
            "Cargo.toml",
            "sdk/Cargo.toml",
            "sdk/src/lib.rs",
            "sdk/macros/Cargo.toml",
            "sdk/abi/src/lib.rs",
            "sdk/build/src/lib.rs",
            "sdk/testkit/src/lib.rs",
            "node/types/src/lib.rs",
            "node/state/src/lib.rs",
            "node/vm/src/lib.rs",
            "node/exec/src/lib.rs",
        ] {
            assert!(paths.contains(&want), "{want} is not shipped");
        }
        // Nothing for the crates' own tests, benchmarks or fuzzing, and no
        // crate a contract project does not need.
        for p in &paths {
            assert!(
                !p.contains("/tests/") && !p.contains("/benches/") && !p.contains("/fuzz/"),
                "{p} is shipped"
            );
            assert!(
                !p.starts_with("node/node/") && !p.starts_with("cli/"),
                "{p} is shipped"
            );
        }
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted, "the files are in path order");
    }

    #[test]
    fn shipped_manifests_leave_out_dev_dependencies() {
        for (path, bytes) in embedded::SDK_FILES {
            if path.ends_with("Cargo.toml") {
                let text = String::from_utf8_lossy(bytes);
                assert!(!text.contains("[dev-dependencies]"), "{path}");
                assert!(!text.contains("[[bench]]"), "{path}");
            }
        }
        let root = embedded::SDK_FILES
            .iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        assert!(root.contains("[workspace.package]"), "{root}");
        assert!(root.contains("wasmtime ="), "{root}");
        assert!(!root.contains("stele-node"), "{root}");
        assert!(!root.contains("criterion"), "{root}");
    }
}
