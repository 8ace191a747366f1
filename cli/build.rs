//! Embeds the sources of the crates a contract project needs (the SDK, the
//! testkit and the workspace crates they depend on) for `stele new`, which
//! unpacks them under `<stele home>/sdk/<version>/`.
//!
//! Writes `$OUT_DIR/sdk_files.rs`: `SDK_FILES`, a list of
//! `(path in the unpacked SDK, bytes)` in path order, and
//! `CARGO_LOCK` / `RUST_TOOLCHAIN`, the repository's files. The crates keep
//! their folders relative to the repository root (`sdk/testkit`,
//! `node/vm`), so the `path = "..."` entries of the root
//! `[workspace.dependencies]` stay valid in the generated workspace.
//!
//! Only what building a crate as a dependency reads is shipped:
//! `Cargo.toml` (without dev-dependencies and bench, test and example
//! targets, whose files stay behind), `src/**`, a `build.rs`, and files the
//! sources `include_str!`/`include_bytes!`/`include!` by a literal path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crates a contract project uses directly; their workspace
/// dependencies are added by following `[dependencies]`.
const ROOTS: &[&str] = &["stele-sdk", "stele-testkit"];

/// Sections of a crate manifest that only the crate's own tests, benchmarks
/// and examples need.
fn is_dropped_section(header: &str) -> bool {
    matches!(
        header,
        "[dev-dependencies]" | "[[bench]]" | "[[test]]" | "[[example]]"
    ) || (header.starts_with("[target.") && header.ends_with(".dev-dependencies]"))
}

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", manifest_dir.display()))
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    let root_manifest = root.join("Cargo.toml");
    let root_text = read_text(&root_manifest);
    let root_sections = sections(&root_text);
    let ws_deps = workspace_dependencies(&root_sections);

    // The closure of ROOTS over normal and build dependencies on workspace
    // crates (by name -> folder relative to the root).
    let mut crates: BTreeMap<String, String> = BTreeMap::new();
    let mut todo: Vec<String> = ROOTS.iter().map(|s| s.to_string()).collect();
    let mut used_ws_deps: BTreeSet<String> = BTreeSet::new();
    let mut manifests: BTreeMap<String, String> = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if crates.contains_key(&name) {
            continue;
        }
        let Some(dir) = ws_deps.get(&name).and_then(|d| d.path.clone()) else {
            panic!("{name} is not a path entry of the root [workspace.dependencies]");
        };
        let text = read_text(&root.join(&dir).join("Cargo.toml"));
        let secs = sections(&text);
        let mut kept = String::from(
            "# Shipped by the stele CLI for contract projects: the sections for\n\
             # this crate's own tests, benchmarks and examples are left out.\n",
        );
        for s in &secs {
            if is_dropped_section(&s.header) {
                continue;
            }
            if is_dependency_section(&s.header) {
                for (key, inherited) in dependency_keys(s) {
                    if let Some(dep) = ws_deps.get(&key) {
                        if inherited {
                            used_ws_deps.insert(key.clone());
                        }
                        if dep.path.is_some() {
                            todo.push(key);
                        }
                    }
                }
            }
            push_section(&mut kept, s);
        }
        kept.truncate(kept.trim_end().len());
        kept.push('\n');
        manifests.insert(dir.clone(), kept);
        crates.insert(name, dir);
    }

    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let generated = out_dir.join("sdk");
    for (dir, manifest) in &manifests {
        let rel = format!("{dir}/Cargo.toml");
        files.insert(rel.clone(), write_generated(&generated, &rel, manifest));
        println!(
            "cargo:rerun-if-changed={}",
            root.join(dir).join("Cargo.toml").display()
        );
        let crate_dir = root.join(dir);
        // (None of these crates has a build script today; watching a path
        // that does not exist would rerun this script on every build.)
        let build_rs = crate_dir.join("build.rs");
        if build_rs.is_file() {
            add_source(&root, &build_rs, &mut files);
        }
        walk(&root, &crate_dir.join("src"), &mut files);
    }

    // The workspace the crates inherit from.
    let mut ws = String::from(
        "# The Stele SDK for contract projects, unpacked by `stele new`; contract\n\
         # crates depend on these crates by path. Do not edit: `stele new`\n\
         # checks the files and puts them back when they differ.\n\
         [workspace]\nresolver = \"3\"\nmembers = [\n",
    );
    for dir in manifests.keys() {
        let _ = writeln!(ws, "    {dir:?},");
    }
    ws.push_str("]\n\n");
    for s in &root_sections {
        if s.header == "[workspace.package]" || s.header.starts_with("[workspace.lints") {
            push_section(&mut ws, s);
        }
    }
    ws.push_str("[workspace.dependencies]\n");
    for key in &used_ws_deps {
        ws.push_str(&ws_deps[key].line);
        ws.push('\n');
    }
    files.insert(
        "Cargo.toml".into(),
        write_generated(&generated, "Cargo.toml", &ws),
    );
    println!("cargo:rerun-if-changed={}", root_manifest.display());

    let lock = root.join("Cargo.lock");
    let toolchain = root.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed={}", toolchain.display());

    let mut rs = String::from("// Generated by cli/build.rs.\n\n");
    rs.push_str("/// The SDK's files: (path in the unpacked SDK, bytes), in path order.\n");
    rs.push_str("pub const SDK_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let _ = writeln!(
            rs,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    rs.push_str("];\n\n");
    let _ = writeln!(
        rs,
        "/// The repository's Cargo.lock: the versions the SDK is built and tested with.\n\
         pub const CARGO_LOCK: &str = include_str!({:?});\n",
        lock.display().to_string()
    );
    let _ = writeln!(
        rs,
        "/// The repository's rust-toolchain.toml.\n\
         pub const RUST_TOOLCHAIN: &str = include_str!({:?});",
        toolchain.display().to_string()
    );
    write(&out_dir.join("sdk_files.rs"), &rs);
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo sets {key} for build scripts"))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    // Unchanged content keeps its mtime, so the CLI is not rebuilt for nothing.
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn write_generated(base: &Path, rel: &str, text: &str) -> PathBuf {
    let path = base.join(rel);
    write(&path, text);
    path
}

/// Adds every file under `dir` (recursively) and what the Rust sources
/// among them include.
fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            add_source(root, &path, files);
        }
    }
}

fn add_source(root: &Path, path: &Path, files: &mut BTreeMap<String, PathBuf>) {
    println!("cargo:rerun-if-changed={}", path.display());
    let rel = relative(root, path);
    if files.insert(rel, path.to_path_buf()).is_some() {
        return;
    }
    if path.extension().is_some_and(|e| e == "rs") {
        let text = read_text(path);
        for included in includes(&text) {
            let dir = path.parent().unwrap_or(root);
            let target = dir.join(&included);
            let target = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{} includes {included}: {e}", path.display()));
            add_source(root, &target, files);
        }
    }
}

/// `path` relative to the repository root, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let rel = path.strip_prefix(&root).unwrap_or_else(|_| {
        panic!(
            "{} is outside the repository {}",
            path.display(),
            root.display()
        )
    });
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The literal paths of `include_str!`, `include_bytes!` and `include!` in
/// Rust source text.
fn includes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for mac in ["include_str!(", "include_bytes!(", "include!("] {
        let mut rest = text;
        while let Some(at) = rest.find(mac) {
            rest = &rest[at + mac.len()..];
            let arg = rest.trim_start();
            if let Some(lit) = arg.strip_prefix('"')
                && let Some(end) = lit.find('"')
            {
                out.push(lit[..end].to_string());
            } else {
                // concat!(env!("OUT_DIR"), ...) and the like.
                panic!(
                    "an {mac}..) without a literal path in the shipped sources: \
                     teach cli/build.rs to ship its file"
                );
            }
        }
    }
    out
}

/// A TOML section: its header line (`""` for the lines before the first)
/// and its lines.
struct Section {
    header: String,
    lines: Vec<String>,
}

/// Splits a manifest at its header lines (a `[` in the first column; the
/// items of multi-line arrays are indented).
fn sections(text: &str) -> Vec<Section> {
    let mut out = vec![Section {
        header: String::new(),
        lines: Vec::new(),
    }];
    for line in text.lines() {
        if line.starts_with('[') {
            out.push(Section {
                header: line.trim().to_string(),
                lines: Vec::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.lines.push(line.to_string());
        }
    }
    out
}

/// Appends the section without its trailing blank and comment lines (those
/// introduce the next section, which may be left out).
fn push_section(out: &mut String, s: &Section) {
    if !s.header.is_empty() {
        out.push_str(&s.header);
        out.push('\n');
    }
    let end = s
        .lines
        .iter()
        .rposition(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map_or(0, |i| i + 1);
    for line in &s.lines[..end] {
        out.push_str(line);
        out.push('\n');
    }
    if !s.header.is_empty() {
        out.push('\n');
    }
}

fn is_dependency_section(header: &str) -> bool {
    matches!(header, "[dependencies]" | "[build-dependencies]")
        || (header.starts_with("[target.")
            && (header.ends_with(".dependencies]") || header.ends_with(".build-dependencies]")))
}

/// The dependencies of a `[dependencies]`-like section (`name = ...` or
/// `name.workspace = true`): each name and whether it is inherited from the
/// workspace.
fn dependency_keys(s: &Section) -> Vec<(String, bool)> {
    s.lines
        .iter()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let end = line.find(['=', '.'])?;
            let key = line[..end].trim().trim_matches('"').to_string();
            Some((key, line.contains("workspace")))
        })
        .collect()
}

/// An entry of the root `[workspace.dependencies]`: its line as written and,
/// for a workspace crate, its folder.
struct WsDep {
    line: String,
    path: Option<String>,
}

/// The root's `[workspace.dependencies]`, one entry a line (this script
/// refuses anything else rather than mangle it).
fn workspace_dependencies(secs: &[Section]) -> BTreeMap<String, WsDep> {
    let mut out = BTreeMap::new();
    let Some(s) = secs.iter().find(|s| s.header == "[workspace.dependencies]") else {
        panic!("the root Cargo.toml has no [workspace.dependencies]");
    };
    for line in &s.lines {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((key, value)) = t.split_once('=') else {
            panic!("[workspace.dependencies]: cannot read `{t}`");
        };
        let balanced = value.matches('{').count() == value.matches('}').count()
            && value.matches('[').count() == value.matches(']').count();
        if !balanced {
            panic!("[workspace.dependencies]: `{t}` spans lines; cli/build.rs reads one a line");
        }
        let path = value
            .split_once("path = \"")
            .and_then(|(_, rest)| rest.split_once('"').map(|(p, _)| p.to_string()));
        out.insert(
            key.trim().to_string(),
            WsDep {
                line: t.to_string(),
                path,
            },
        );
    }
    out
}
