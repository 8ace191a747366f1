//! The `stele` binary end to end: a devnet started by the test (four
//! validators over QUIC on loopback), then build, deploy and call every
//! example contract through the CLI, including its failures (arguments
//! against the ABI, decoded reverts, out of gas), with `--json` output
//! parsed back; and the keystore's life cycle.
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stele");

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// A base port whose 2n ports (UDP for QUIC, TCP for RPC) are all free,
/// never one this process was given before (tests run in parallel, and a
/// range found free stays free until its devnet binds it).
fn free_base(n: u16) -> u16 {
    static TRIED: AtomicU16 = AtomicU16::new(0);
    let seed = std::process::id() as u16;
    for _ in 0..200 {
        let attempt = TRIED.fetch_add(1, Ordering::Relaxed);
        let base = 20_000 + (seed.wrapping_mul(31).wrapping_add(attempt.wrapping_mul(97))) % 30_000;
        let free = (0..2 * n).all(|i| {
            let port = base + i;
            UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

struct Stele {
    home: PathBuf,
    rpc: String,
}

impl Stele {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("STELE_HOME", &self.home)
            .env("STELE_RPC", &self.rpc)
            .env_remove("STELE_FROM")
            .env_remove("STELE_PASSWORD")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs with `--json`, expects success, returns the document.
    fn ok(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "stele {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stele {args:?}: output is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs with `--json`, expects failure, returns the `error` object.
    fn err(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            !out.status.success(),
            "stele {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stele {args:?}: error output is not JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        doc["error"].clone()
    }
}

/// A devnet child process; stopped with SIGTERM (a clean shutdown) or
/// killed on drop.
struct Devnet {
    child: Child,
    info: Value,
}

impl Devnet {
    fn start(home: &Path, base: u16, dir: &Path, extra: &[&str]) -> Devnet {
        let base = base.to_string();
        let mut args = vec![
            "--json",
            "devnet",
            "--validators",
            "4",
            "--base-port",
            &base,
            "--dir",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(BIN)
            .args(&args)
            .env("STELE_HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let info = read_json_doc(stdout);
        Devnet { child, info }
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "devnet exited with {s}");
                return;
            }
            assert!(Instant::now() < deadline, "devnet did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the first (pretty-printed) JSON document from `stdout`.
fn read_json_doc(stdout: ChildStdout) -> Value {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let _ = tx.send(v);
                // Keep draining so the devnet never blocks on a full pipe.
                text.clear();
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the devnet did not report ready")
}

fn addr(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

#[test]
fn contracts_through_the_cli_on_a_devnet() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("devnet");
    let base = free_base(4);
    let devnet = Devnet::start(&home, base, &dir, &["--deploy-examples"]);
    let info = &devnet.info;
    assert_eq!(info["validators"], 4);
    assert_eq!(info["resumed"], false);
    let cli = Stele {
        home: home.clone(),
        rpc: addr(&info["rpc"]),
    };
    let dev0 = addr(&info["accounts"][0]["address"]);
    let dev1 = addr(&info["accounts"][1]["address"]);

    // The examples the devnet deployed: dev0 holds the token's supply.
    assert_eq!(info["examples"][0]["name"], "token");
    let example_token = addr(&info["examples"][0]["address"]);
    let held = cli.ok(&[
        "view",
        &example_token,
        "balance_of",
        "--args",
        &json!([dev0]).to_string(),
    ]);
    assert_eq!(held["returned"], "1000000000000000000000000");
    let example_counter = addr(&info["examples"][1]["address"]);
    assert_eq!(cli.ok(&["view", &example_counter, "get"])["returned"], "0");

    // Keys the devnet wrote, usable without a passphrase.
    let keys = cli.ok(&["keys", "list"]);
    assert_eq!(keys[0]["name"], "dev0");
    assert_eq!(keys[0]["address"], dev0.as_str());
    let acct = cli.ok(&["account", "dev1"]);
    assert_eq!(acct["address"], dev1.as_str());
    assert_eq!(acct["nonce"], 0);

    // Native transfer, then the account and the transaction by hash.
    let t = cli.ok(&["transfer", "dev1", "1000"]);
    let tx = cli.ok(&["tx", t["hash"].as_str().unwrap()]);
    assert_eq!(tx["receipt"]["receipt"]["status"], "success");
    let block = cli.ok(&["block", &t["block_height"].to_string()]);
    assert_eq!(block["block"]["header"]["height"], t["block_height"]);

    // The validator set (ADR 0010): one epoch of four validators, nothing
    // decided. A vote from a key outside the set is refused on chain, its
    // reason in the error.
    let set = cli.ok(&["validators"]);
    assert_eq!(set["epoch"], 0);
    assert!(set["pending"].is_null(), "{set}");
    let members = set["validators"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let smaller = cli.home.join("three.json");
    std::fs::write(&smaller, serde_json::to_string(&members[..3]).unwrap()).unwrap();
    let e = cli.err(&["validators", "vote", "--set", smaller.to_str().unwrap()]);
    assert!(
        e.to_string().contains("is not a validator of epoch 0"),
        "{e}"
    );

    // The protocol (ADR 0011): the genesis's, nothing scheduled. A vote for
    // a gas schedule no build has is stopped by the CLI; one from a key
    // outside the set is refused on chain.
    let protocol = cli.ok(&["protocol"]);
    assert!(protocol["scheduled"].is_null(), "{protocol}");
    let gas = protocol["active"]["gas_schedule_version"].as_u64().unwrap();
    assert!(gas >= 5, "{protocol}");
    let e = cli.err(&["protocol", "vote", "--at", "1000", "--gas-schedule", "99"]);
    assert!(e.to_string().contains("would stop every node"), "{e}");
    let e = cli.err(&["protocol", "vote", "--at", "1000", "--tx-gas-base", "30000"]);
    assert!(
        e.to_string().contains("is not a validator of epoch 0"),
        "{e}"
    );

    // Build prints size and code hash; deploy by crate folder.
    let token_dir = contracts().join("token");
    let built = cli.ok(&["build", token_dir.to_str().unwrap()]);
    assert!(built["size"].as_u64().unwrap() > 1000);
    let token = cli.ok(&[
        "deploy",
        built["wasm"].as_str().unwrap(),
        "--init-args",
        r#"{"name": "Gold", "symbol": "GLD", "decimals": 18, "initial_supply": "1000000"}"#,
    ]);
    assert_eq!(token["code_hash"], built["code_hash"]);
    assert_eq!(token["events"][0]["name"], "Transfer");
    let token = addr(&token["contract"]);
    let abi = cli.ok(&["abi", &token]);
    assert_eq!(abi["name"], "token");

    // The walkthrough: transfer, then view the balance.
    let sent = cli.ok(&[
        "call",
        &token,
        "transfer",
        "--args",
        &json!([dev1, "250"]).to_string(),
    ]);
    assert_eq!(sent["events"][0]["fields"]["amount"], "250");
    assert!(sent["gas_used"].as_u64().unwrap() > 21_000);
    let bal = cli.ok(&[
        "view",
        &token,
        "balance_of",
        "--args",
        &json!({ "who": dev1 }).to_string(),
    ]);
    assert_eq!(bal["returned"], "250");

    // Arguments are checked against the ABI before anything is signed.
    let e = cli.err(&[
        "call",
        &token,
        "transfer",
        "--args",
        &json!([dev1]).to_string(),
    ]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("expected 2 arguments"),
        "{e}"
    );
    let e = cli.err(&["call", &token, "transfer", "--args", r#"["nope", "1"]"#]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("neither an address (0x...) nor a key name"),
        "{e}"
    );
    let e = cli.err(&["call", &token, "transfer", "--args", r#"[true, "1"]"#]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("arguments do not match"),
        "{e}"
    );
    // A key name stands for its address in an address argument.
    assert_eq!(
        cli.ok(&["view", &token, "balance_of", "--args", r#"["dev1"]"#])["returned"],
        cli.ok(&[
            "view",
            &token,
            "balance_of",
            "--args",
            &json!([dev1]).to_string()
        ])["returned"]
    );
    // A view is read, not sent.
    let e = cli.err(&["call", &token, "balance_of", "--args", r#"["dev1"]"#]);
    assert!(e["message"].as_str().unwrap().contains("is a view"), "{e}");
    assert!(e["hint"].as_str().unwrap().contains("stele view"), "{e}");
    // More value than the balance is said as such.
    let e = cli.err(&["transfer", "dev1", "1000000000000000000000000000000"]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{e}"
    );
    let e = cli.err(&["call", &token, "burn"]);
    assert!(e["hint"].as_str().unwrap().contains("transfer"), "{e}");
    let e = cli.err(&[
        "call",
        &token,
        "transfer",
        "--value",
        "5",
        "--args",
        &json!([dev1, "1"]).to_string(),
    ]);
    assert!(
        e["message"].as_str().unwrap().contains("not payable"),
        "{e}"
    );
    let nonce = cli.ok(&["account", "dev0"])["nonce"].clone();

    // A failing simulation sends nothing and decodes the typed error...
    let e = cli.err(&[
        "call",
        &token,
        "transfer",
        "--args",
        &json!([dev1, "5000000"]).to_string(),
    ]);
    assert_eq!(
        e["data"]["decoded"]["reverted"]["error"]["InsufficientBalance"]["need"], "5000000",
        "{e}"
    );
    assert_eq!(cli.ok(&["account", "dev0"])["nonce"], nonce);
    // ...and with a fixed gas limit it is sent, reverts on chain, and the
    // receipt's error is decoded the same way.
    let e = cli.err(&[
        "call",
        &token,
        "mint",
        "--from",
        "dev1",
        "--gas",
        "200000",
        "--args",
        &json!([dev1, "1"]).to_string(),
    ]);
    assert_eq!(e["data"]["status"], "reverted", "{e}");
    assert_eq!(e["data"]["decoded"]["reverted"]["error"], "NotOwner", "{e}");
    // Out of gas: a limit above the intrinsic gas but below the call's needs.
    let e = cli.err(&[
        "call",
        &token,
        "transfer",
        "--gas",
        "30000",
        "--args",
        &json!([dev1, "1"]).to_string(),
    ]);
    assert_eq!(e["data"]["status"], "out_of_gas", "{e}");
    assert!(e["hint"].as_str().unwrap().contains("--gas"), "{e}");
    // Below the intrinsic gas: refused by the node with its reason.
    let e = cli.err(&["transfer", "dev1", "1", "--gas", "1000"]);
    assert!(
        e["message"].as_str().unwrap().contains("intrinsic gas"),
        "{e}"
    );

    // Events: history, then new ones as they commit (--follow, one JSON
    // document per line).
    let mut follow = cli
        .cmd(&["--json", "events", &token, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    cli.ok(&[
        "call",
        &token,
        "transfer",
        "--args",
        &json!([dev0, "1"]).to_string(),
    ]);
    let followed: Vec<Value> = lines
        .take(3)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(followed[2]["fields"]["amount"], "1", "{followed:?}");
    assert_eq!(followed[2]["fields"]["to"], dev0.as_str());
    let events = cli.ok(&["events", &token]);
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Transfer", "Transfer", "Transfer"], "{events}");
    let genesis = dir.join("node0/genesis.json");
    let proof = cli.ok(&[
        "proof",
        &token,
        "balances",
        "--map-key",
        &dev1,
        "--decode",
        "u128",
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(
        (&proof["verified"], &proof["decoded"]),
        (&json!(true), &json!("250"))
    );
    // The token's own account record, proven: a contract, no balance.
    let record = cli.ok(&[
        "account",
        &token,
        "--verified",
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert_eq!(
        (&record["verified"], &record["exists"], &record["balance"]),
        (&json!(true), &json!(true), &json!("0")),
        "{record}"
    );
    assert!(record["code_hash"].is_string(), "{record}");

    // Counter: typed return values and a typed error at its cap.
    let counter = cli.ok(&[
        "deploy",
        contracts().join("counter").to_str().unwrap(),
        "--init-args",
        "[0, 10]",
    ]);
    let counter = addr(&counter["contract"]);
    // The deployed code is what the source builds, and not another's.
    let source = contracts().join("counter");
    let v = cli.ok(&["verify", &counter, "--source", source.to_str().unwrap()]);
    assert_eq!(v["verified"], true, "{v}");
    let e = cli.err(&["verify", &token, "--source", source.to_str().unwrap()]);
    assert!(
        e["message"].as_str().unwrap().contains("does NOT run"),
        "{e}"
    );
    assert!(e["data"]["deployed_code_hash"].is_string(), "{e}");
    let r = cli.ok(&[
        "call",
        &counter,
        "increment",
        "--args",
        r#"{"by": 7}"#,
        "--trace",
    ]);
    assert_eq!(r["returned"], "7");
    assert_eq!(r["trace"]["method"], "increment");
    assert_eq!(cli.ok(&["view", &counter, "get"])["returned"], "7");
    let e = cli.err(&["call", &counter, "increment", "--args", "[5]"]);
    assert_eq!(
        e["data"]["decoded"]["reverted"]["error"]["AtMax"]["max"], "10",
        "{e}"
    );
    // A failure committed anyway (an explicit --gas skips the dry run),
    // explained by its replay down to the frame and the decoded revert; a
    // success's replay matches its receipt.
    let committed = cli.err(&[
        "call",
        &counter,
        "increment",
        "--args",
        "[5]",
        "--gas",
        "2000000",
    ]);
    let hash = committed["data"]["hash"].as_str().unwrap().to_string();
    let traced = cli.ok(&["tx", &hash, "--trace"]);
    assert_eq!(traced["trace"]["matches_receipt"], true, "{traced}");
    let top = traced["trace"]["frames_decoded"][0].as_str().unwrap();
    assert!(
        top.contains("increment") && top.contains("reverted") && top.contains("AtMax"),
        "{traced}"
    );
    assert_eq!(traced["trace"]["storage_writes"], json!([]), "{traced}");
    let ok = cli.ok(&["tx", r["hash"].as_str().unwrap(), "--trace"]);
    assert_eq!(ok["trace"]["frames"]["status"], "success", "{ok}");
    assert_eq!(
        ok["trace"]["storage_writes"].as_array().map(Vec::len),
        Some(1),
        "{ok}"
    );
    let tip = cli.ok(&["call", &counter, "tip", "--value", "99"]);
    assert_eq!(tip["returned"], "99");

    // NFT: mint, then an error for a taken id, then a view with an option.
    let nft = cli.ok(&["deploy", contracts().join("nft").to_str().unwrap()]);
    let nft = addr(&nft["contract"]);
    cli.ok(&[
        "call",
        &nft,
        "mint",
        "--args",
        &json!([dev1, 1]).to_string(),
    ]);
    let e = cli.err(&[
        "call",
        &nft,
        "mint",
        "--args",
        &json!([dev1, 1]).to_string(),
    ]);
    assert!(
        e["data"]["decoded"]["reverted"].get("error").is_some(),
        "{e}"
    );
    assert_eq!(
        cli.ok(&["view", &nft, "owner_of", "--args", "[1]"])["returned"],
        dev1.as_str()
    );

    // Escrow: a payable constructor holding value, released by its arbiter.
    let escrow = cli.ok(&[
        "deploy",
        contracts().join("escrow").to_str().unwrap(),
        "--value",
        "5000",
        "--init-args",
        &json!([dev1, dev0, 1_000_000]).to_string(),
    ]);
    let escrow = addr(&escrow["contract"]);
    assert_eq!(cli.ok(&["account", &escrow])["balance"], "5000");
    let e = cli.err(&["call", &escrow, "refund"]);
    assert!(
        e["data"]["decoded"]["reverted"]["error"]
            .get("TooEarly")
            .is_some(),
        "{e}"
    );
    cli.ok(&["call", &escrow, "release"]);
    assert_eq!(cli.ok(&["account", &escrow])["balance"], "0");

    // Multisig: a one-of-one wallet proposes and executes a counter call.
    let multisig = cli.ok(&[
        "deploy",
        contracts().join("multisig").to_str().unwrap(),
        "--init-args",
        &json!([[dev0], 1]).to_string(),
    ]);
    let multisig = addr(&multisig["contract"]);
    assert_eq!(cli.ok(&["view", &multisig, "threshold"])["returned"], 1);
    // Borsh of `by: u64 = 1`, as the proposal's raw argument bytes.
    let id = cli.ok(&[
        "call",
        &multisig,
        "propose",
        "--args",
        &json!([counter, "increment", "0x0100000000000000", "0"]).to_string(),
    ]);
    assert_eq!(id["returned"], 0);
    cli.ok(&["call", &multisig, "execute", "--args", "[0]"]);
    assert_eq!(cli.ok(&["view", &counter, "get"])["returned"], "8");

    // AMM between two tokens: add liquidity, swap, with nested calls.
    let token_b = cli.ok(&[
        "deploy",
        contracts().join("token").to_str().unwrap(),
        "--init-args",
        r#"["Silver", "SLV", 18, "1000000"]"#,
    ]);
    let token_b = addr(&token_b["contract"]);
    let amm = cli.ok(&[
        "deploy",
        contracts().join("amm").to_str().unwrap(),
        "--init-args",
        &json!([token, token_b]).to_string(),
    ]);
    let amm = addr(&amm["contract"]);
    for t in [&token, &token_b] {
        cli.ok(&[
            "call",
            t,
            "approve",
            "--args",
            &json!([amm, "500000"]).to_string(),
        ]);
    }
    cli.ok(&[
        "call",
        &amm,
        "add_liquidity",
        "--args",
        r#"["100000", "200000"]"#,
    ]);
    let swap = cli.ok(&[
        "call",
        &amm,
        "swap",
        "--args",
        &json!([token, "1000", "1"]).to_string(),
        "--trace",
    ]);
    assert!(swap["returned"].as_str().unwrap().parse::<u128>().unwrap() > 1000);
    assert_eq!(
        swap["trace"]["calls"].as_array().unwrap().len(),
        2,
        "{swap}"
    );

    // Ctrl-C-style stop, then the same command resumes the same chain.
    let height = cli.ok(&["block"])["block"]["header"]["height"]
        .as_u64()
        .unwrap();
    devnet.stop();
    let devnet = Devnet::start(&home, base, &dir, &[]);
    assert_eq!(devnet.info["resumed"], true);
    assert!(devnet.info["height"].as_u64().unwrap() >= height);
    let bal = cli.ok(&[
        "view",
        &token,
        "balance_of",
        "--args",
        &json!([dev1]).to_string(),
    ]);
    assert_eq!(bal["returned"], "250");
    // A different size needs --reset.
    let out = Command::new(BIN)
        .args([
            "devnet",
            "--validators",
            "2",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .env("STELE_HOME", &home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reset"));
    devnet.stop();
}

#[test]
fn keys_are_encrypted_and_secrets_shown_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Stele {
        home: tmp.path().to_path_buf(),
        rpc: "http://127.0.0.1:1".into(),
    };
    let with_password = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = cli
            .cmd(&all)
            .env("STELE_PASSWORD", "correct horse")
            .env("STELE_SCRYPT_LOG_N", "10")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    // Without a passphrase source there is no silent default.
    let e = cli.err(&["keys", "new", "alice"]);
    assert!(
        e["hint"].as_str().unwrap().contains("STELE_PASSWORD"),
        "{e}"
    );

    let alice = with_password(&["keys", "new", "alice"]);
    let address = addr(&alice["address"]);
    let file = std::fs::read_to_string(tmp.path().join("keys/alice.json")).unwrap();
    let doc: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["version"], 3);
    assert_eq!(doc["crypto"]["kdf"], "scrypt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("keys/alice.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // show and plain export never reveal the secret.
    let shown = cli.ok(&["keys", "show", "alice"]);
    assert_eq!(shown["address"], address.as_str());
    assert!(shown.get("secret_key").is_none());
    let exported = cli.ok(&["keys", "export", "alice"]);
    assert_eq!(exported["crypto"], doc["crypto"]);
    // --private does, after the passphrase.
    let secret = with_password(&["keys", "export", "alice", "--private"]);
    let secret = addr(&secret["secret_key"]);
    let wrong = cli
        .cmd(&["--json", "keys", "export", "alice", "--private"])
        .env("STELE_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("wrong password"));

    // Import the same secret from stdin under another name.
    let mut child = cli
        .cmd(&["--json", "keys", "import", "bob", "--secret-file", "-"])
        .env("STELE_PASSWORD", "another one")
        .env("STELE_SCRYPT_LOG_N", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bob: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bob["address"], address.as_str());
    // Names are unique; bad names are refused.
    let e = cli.err(&["keys", "import", "bob", "--secret-file", "-"]);
    assert!(
        e["message"].as_str().unwrap().contains("already exists"),
        "{e}"
    );
    let e = cli.err(&["keys", "show", "../etc"]);
    assert!(
        e["message"].as_str().unwrap().contains("invalid key name"),
        "{e}"
    );

    let list = cli.ok(&["keys", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Deleting needs --yes without a terminal.
    let e = cli.err(&["keys", "delete", "bob"]);
    assert!(e["hint"].as_str().unwrap().contains("--yes"), "{e}");
    cli.ok(&["keys", "delete", "bob", "--yes"]);
    assert_eq!(cli.ok(&["keys", "list"]).as_array().unwrap().len(), 1);

    // Talking to no node says so and what to do.
    let e = cli.err(&["account", "alice"]);
    assert!(e["hint"].as_str().unwrap().contains("stele devnet"), "{e}");
}

/// The validator set of a running devnet changes (ADR 0010): a fifth
/// validator joins, then validator 0 leaves; a transfer sent through
/// validator 0's RPC (a follower's by then) still commits, and the devnet
/// started again runs the added validator too.
#[test]
fn a_running_devnet_adds_a_fifth_validator_and_removes_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("devnet");
    let d = dir.to_str().unwrap();
    let base = free_base(5);
    let devnet = Devnet::start(&home, base, &dir, &[]);
    let cli = Stele {
        home: home.clone(),
        rpc: addr(&devnet.info["rpc"]),
    };
    let added = cli.ok(&["devnet", "add-validator", "--dir", d]);
    assert_eq!(added["name"], "node4");
    assert_eq!(added["epoch"], 1, "{added}");
    let five = cli.ok(&["validators"]);
    assert_eq!(five["epoch"], 1);
    let members = five["validators"].as_array().unwrap();
    assert_eq!(members.len(), 5);
    assert!(members.iter().any(|v| v["address"] == added["address"]));
    cli.ok(&["transfer", "dev1", "7"]);

    // A second change waits for none: validator 0 leaves.
    let e = cli.err(&["devnet", "remove-validator", "node9", "--dir", d]);
    assert!(e["message"].as_str().unwrap().contains("node9"), "{e}");
    let removed = cli.ok(&["devnet", "remove-validator", "node0", "--dir", d]);
    assert_eq!(removed["epoch"], 2, "{removed}");
    let four = cli.ok(&["validators"]);
    let members = four["validators"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    assert!(members.iter().all(|v| v["address"] != removed["address"]));
    // The default RPC is validator 0's, a follower now.
    let t = cli.ok(&["transfer", "dev1", "8"]);
    let tx = cli.ok(&["tx", t["hash"].as_str().unwrap()]);
    assert_eq!(tx["receipt"]["receipt"]["status"], "success");

    // Started again, the devnet runs all five nodes and the chain goes on
    // under the four.
    devnet.stop();
    let devnet = Devnet::start(&home, base, &dir, &[]);
    assert_eq!(devnet.info["resumed"], true);
    assert_eq!(
        devnet.info["added_validator_rpcs"],
        json!([addr(&added["rpc"])])
    );
    cli.ok(&["transfer", "dev1", "9"]);
    assert_eq!(cli.ok(&["validators"])["epoch"], 2);
    devnet.stop();
}
