//! `stele new`: a contract project that builds, tests and deploys outside
//! this repository and offline. It depends on the SDK this binary carries
//! (unpacked under the stele home, see [`sdk`]) at the binary's version,
//! and starts from the repository's `Cargo.lock`, so cargo picks the
//! versions the SDK was tested with from its registry cache.

mod sdk;

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::Res;
use crate::ctx::{CliError, Ctx, fail};

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The project's folder, made by this command (or empty); its last
    /// part names the crate unless --name is given.
    pub path: PathBuf,
    /// The crate's name: lowercase letters, digits, `-` and `_`, starting
    /// with a letter.
    #[arg(long)]
    pub name: Option<String>,
}

/// Longest crate name we accept (cargo has no limit; file systems and
/// people do).
const NAME_BYTES_MAX: usize = 64;

const CARGO_TOML: &str = include_str!("../template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../template/lib.rs.in");
const TEST_RS: &str = include_str!("../template/test.rs.in");
const README_MD: &str = include_str!("../template/README.md.in");
const GITIGNORE: &str = include_str!("../template/gitignore.in");

pub fn run(ctx: &Ctx, a: NewArgs) -> Res {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => match a.path.file_name().and_then(|n| n.to_str()) {
            Some(n) => n.to_string(),
            None => {
                return fail(format!(
                    "{} does not end in a folder name",
                    a.path.display()
                ))
                .map_err(|e| e.hint("pass a folder, e.g. `stele new my-contract`"));
            }
        },
    };
    check_name(&name).map_err(|why| {
        CliError::new(format!("`{name}` cannot name a contract crate: {why}"))
            .hint("use lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `my-token`), or pass --name")
    })?;
    check_target(&a.path)?;

    let (sdk_dir, unpacked) = sdk::unpack(&ctx.home)?;
    let sdk_dir = std::path::absolute(&sdk_dir).unwrap_or(sdk_dir);
    let files = render(&name, &sdk_dir);
    write_project(&a.path, &files)?;

    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    ctx.out(
        || {
            let cd = a.path.display();
            format!(
                "created {cd} (contract crate `{name}`)\n\
                 sdk:   stele-sdk {ver} in {sdk} ({how})\n\
                 files: {files}\n\n\
                 next:\n  cd {cd}\n  \
                 cargo test      # unit tests, then the contract built for wasm32 on the real VM\n  \
                 stele build .   # the module to deploy; README.md shows a devnet deploy",
                ver = sdk::VERSION,
                sdk = sdk_dir.display(),
                how = unpacked.as_str(),
                files = paths.join("  "),
            )
        },
        json!({
            "path": a.path,
            "name": name,
            "files": paths,
            "sdk": {
                "version": sdk::VERSION,
                "path": sdk_dir,
                "hash": sdk::content_hash(),
                "unpacked": unpacked.as_str(),
            },
        }),
    );
    Ok(())
}

/// Why `name` cannot name the project's crate, if it cannot.
fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".into());
    };
    if name.len() > NAME_BYTES_MAX {
        return Err(format!("it is longer than {NAME_BYTES_MAX} bytes"));
    }
    if !first.is_ascii_lowercase() {
        return Err("it must start with a lowercase letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!("it holds {c:?}"));
    }
    let ident = name.replace('-', "_");
    // Strict and reserved keywords of the 2024 edition: the crate's name is
    // an identifier in its tests (`use NAME::...`).
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&ident.as_str()) {
        return Err("it is a Rust keyword".into());
    }
    // Crates every Rust program or this project's tests already name.
    const TAKEN: &[&str] = &[
        "alloc",
        "core",
        "std",
        "test",
        "proc_macro",
        "stele_sdk",
        "stele_testkit",
        "serde_json",
    ];
    if TAKEN.contains(&ident.as_str()) {
        return Err("the project already uses a crate of that name".into());
    }
    // Device names Windows reserves (cargo refuses them too).
    let device = matches!(ident.as_str(), "con" | "prn" | "aux" | "nul")
        || ((ident.starts_with("com") || ident.starts_with("lpt"))
            && ident.len() == 4
            && ident.ends_with(|c: char| ('1'..='9').contains(&c)));
    if device {
        return Err("it is a device name on Windows".into());
    }
    Ok(())
}

/// Refuses a path that is a file or a folder with anything in it.
fn check_target(path: &Path) -> Res {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.is_dir() {
        return fail(format!("{} exists and is not a folder", path.display()))
            .map_err(|e| e.hint("choose another name"));
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    if entries.next().is_some() {
        return fail(format!(
            "{} already exists and is not empty; stele new writes only into a new or empty folder",
            path.display()
        ))
        .map_err(|e| e.hint("choose another name, or move the folder away"));
    }
    Ok(())
}

/// The project's files: (path in the project, content).
fn render(name: &str, sdk_dir: &Path) -> Vec<(String, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{version}}", sdk::VERSION)
            .replace(
                "{{sdk_path}}",
                &toml_string(&sdk_dir.join(sdk::SDK_CRATE).to_string_lossy()),
            )
            .replace(
                "{{testkit_path}}",
                &toml_string(&sdk_dir.join(sdk::TESTKIT_CRATE).to_string_lossy()),
            )
            .replace("{{sdk_display}}", &sdk_dir.display().to_string())
    };
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("Cargo.lock".into(), sdk::CARGO_LOCK.to_string()),
        (
            "rust-toolchain.toml".into(),
            sdk::RUST_TOOLCHAIN.to_string(),
        ),
        (".gitignore".into(), fill(GITIGNORE)),
        ("README.md".into(), fill(README_MD)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        (format!("tests/{name}.rs"), fill(TEST_RS)),
    ]
}

/// `s` as a TOML basic string, quotes included.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the files into a hidden folder beside `path`, then renames it
/// into place: a failure leaves no half-made project.
fn write_project(path: &Path, files: &[(String, String)]) -> Res {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| write_error(&parent, e))?;
    let leaf = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{leaf}.stele-new-{}", std::process::id()));
    let written = write_and_rename(&tmp, path, files);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

fn write_and_rename(tmp: &Path, path: &Path, files: &[(String, String)]) -> Res {
    for (rel, text) in files {
        let file = tmp.join(rel);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
        }
        std::fs::write(&file, text).map_err(|e| write_error(&file, e))?;
    }
    // An empty folder given as the target makes way for the new one.
    if path.is_dir() {
        std::fs::remove_dir(path).map_err(|e| write_error(path, e))?;
    }
    std::fs::rename(tmp, path).map_err(|e| write_error(path, e))
}

fn write_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::new(format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_cargo_and_stay_identifiers() {
        for ok in ["demo", "my-token", "a_b-c9", "x"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "9lives",
            "-x",
            "_x",
            "My",
            "a b",
            "a.b",
            "a/b",
            "é",
            "fn",
            "self",
            "gen",
            "std",
            "test",
            "stele-sdk",
            "serde-json",
            "con",
            "lpt1",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_name(&"a".repeat(NAME_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn templates_are_filled_in_completely() {
        let files = render("my-token", Path::new("/home/x \"y\"/sdk/0.1.0"));
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path} keeps a placeholder");
        }
        let toml = &files[0].1;
        assert!(toml.contains("name = \"my-token\""), "{toml}");
        assert!(
            toml.contains(r#"path = "/home/x \"y\"/sdk/0.1.0/sdk" }"#),
            "{toml}"
        );
        assert!(
            files
                .iter()
                .any(|(p, t)| p == "tests/my-token.rs" && t.contains("use my_token::"))
        );
    }
}
