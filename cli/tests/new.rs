//! `stele new` end to end: the project it writes passes `cargo test
//! --offline` outside this repository (unit tests on the host, then the
//! contract built for wasm32 and run on the real VM); it refuses a folder
//! that is not empty and names that are not crate names; a second project
//! reuses the unpacked SDK, and edited SDK files are put back.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_stele");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn stele(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("STELE_HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `stele --json new ...`, expects success, returns the document.
fn new_ok(home: &Path, cwd: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json", "new"];
    all.extend_from_slice(args);
    let out = stele(home, cwd, &all);
    assert!(
        out.status.success(),
        "stele {all:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `stele new ...`, expects a refusal, returns stderr.
fn new_refused(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    let out = stele(home, cwd, &all);
    assert!(!out.status.success(), "stele {all:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn refuses_a_folder_in_use_and_names_that_are_not_crate_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path());
    new_ok(&home, cwd, &["demo"]);
    let lib = std::fs::read(cwd.join("demo/src/lib.rs")).unwrap();

    let err = new_refused(&home, cwd, &["demo"]);
    assert!(
        err.contains("demo already exists and is not empty"),
        "{err}"
    );
    assert_eq!(std::fs::read(cwd.join("demo/src/lib.rs")).unwrap(), lib);

    std::fs::write(cwd.join("file"), "x").unwrap();
    let err = new_refused(&home, cwd, &["file"]);
    assert!(err.contains("exists and is not a folder"), "{err}");

    for bad in ["Demo", "9lives", "my.token", "fn", "std", "stele-sdk"] {
        let err = new_refused(&home, cwd, &[bad]);
        assert!(err.contains("cannot name a contract crate"), "{bad}: {err}");
        assert!(!cwd.join(bad).exists(), "{bad} was created");
    }
    // --name gives a folder that is no crate name a good crate name.
    let doc = new_ok(&home, cwd, &["My.Contract", "--name", "mine"]);
    assert_eq!(doc["name"], "mine");
    assert!(cwd.join("My.Contract/tests/mine.rs").is_file());

    // An empty folder is fine, and so is a path.
    std::fs::create_dir_all(cwd.join("deep/empty")).unwrap();
    new_ok(&home, cwd, &["deep/empty"]);
    assert!(cwd.join("deep/empty/tests/empty.rs").is_file());
    new_ok(&home, cwd, &["deeper/still/there"]);
    assert!(cwd.join("deeper/still/there/Cargo.toml").is_file());
    // Nothing half-written stays behind.
    for dir in [cwd, &cwd.join("deep"), &home.join("sdk")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{name} left in {}", dir.display());
        }
    }
}

#[test]
fn a_second_project_reuses_the_sdk_and_edits_are_put_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path());
    let first = new_ok(&home, cwd, &["one"]);
    assert_eq!(first["sdk"]["unpacked"], "unpacked");
    let sdk = PathBuf::from(first["sdk"]["path"].as_str().unwrap());
    assert_eq!(sdk, home.join("sdk").join(VERSION));
    let lib = sdk.join("sdk/src/lib.rs");
    let before = std::fs::metadata(&lib).unwrap().modified().unwrap();

    let second = new_ok(&home, cwd, &["two"]);
    assert_eq!(second["sdk"]["unpacked"], "reused");
    assert_eq!(second["sdk"]["hash"], first["sdk"]["hash"]);
    // Reused as it is: cargo sees the same files and rebuilds nothing.
    assert_eq!(std::fs::metadata(&lib).unwrap().modified().unwrap(), before);

    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, "// edited\n").unwrap();
    let third = new_ok(&home, cwd, &["three"]);
    assert_eq!(third["sdk"]["unpacked"], "replaced");
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), text);
    let entries: Vec<String> = std::fs::read_dir(home.join("sdk"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [VERSION]);
}

#[test]
fn the_project_is_rustfmt_clean_whatever_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, cwd) = (tmp.path().join("home"), tmp.path());
    let long = format!("a{}", "-b".repeat(31));
    for name in ["z", long.as_str()] {
        new_ok(&home, cwd, &[name]);
        let out = Command::new("cargo")
            .args(["fmt", "--check"])
            .current_dir(cwd.join(name))
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: cargo fmt --check:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The folder for the offline build: beside this test's own target dir
/// (`<target>/debug/stele` -> `<target>/stele-new`). The registry crates
/// (wasmtime, RocksDB) compile there once; the SDK is unpacked at the same
/// place every run, so later runs rebuild only the new project.
fn work_dir() -> PathBuf {
    let bin = Path::new(BIN);
    let target = bin
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    target.join("stele-new")
}

#[test]
fn a_new_project_passes_cargo_test_offline() {
    let work = work_dir();
    std::fs::create_dir_all(&work).unwrap();
    // One run at a time: the project folder is the same for every run.
    let lock = File::create(work.join("lock")).unwrap();
    lock.lock().unwrap();
    let (home, parent) = (work.join("home"), work.join("project"));
    let project = parent.join("demo");
    if parent.exists() {
        std::fs::remove_dir_all(&parent).unwrap();
    }
    std::fs::create_dir_all(&parent).unwrap();

    let doc = new_ok(&home, &parent, &["demo"]);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        ".gitignore",
        "README.md",
        "src/lib.rs",
        "tests/demo.rs",
    ] {
        assert!(project.join(file).is_file(), "{file} is missing");
    }
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let sdk = doc["sdk"]["path"].as_str().unwrap();
    assert!(
        manifest.contains(&format!(
            "stele-sdk = {{ version = \"={VERSION}\", path = \"{sdk}/sdk\" }}"
        )),
        "{manifest}"
    );
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");

    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--offline"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("STELE_CONTRACTS_TARGET_DIR", work.join("contracts"))
        // The contract builds inside the tests run cargo too: offline as well.
        .env("CARGO_NET_OFFLINE", "true")
        // Nothing of this test's own build may leak in.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTDOCFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo test in the new project failed:\n{stdout}\n{stderr}"
    );
    // Two unit tests on the host, three on the VM.
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
    assert!(stdout.contains("test result: ok. 3 passed"), "{stdout}");
    eprintln!(
        "cargo test in the new project: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // `stele build` makes the very module the tests ran, and where the SDK
    // was unpacked leaves no trace in it.
    let out = Command::new(BIN)
        .args(["--json", "build", "."])
        .current_dir(&project)
        .env("STELE_HOME", &home)
        .env("STELE_CONTRACTS_TARGET_DIR", work.join("cli-contracts"))
        .env("CARGO_NET_OFFLINE", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stele build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wasm = std::fs::read(built["wasm"].as_str().unwrap()).unwrap();
    let tested = std::fs::read(work.join("contracts/stele/demo.wasm")).unwrap();
    assert!(
        wasm == tested,
        "stele build and the testkit built different modules"
    );
    let home = home.to_string_lossy();
    assert!(
        !wasm.windows(home.len()).any(|w| w == home.as_bytes()),
        "the module holds the path {home}"
    );
}
