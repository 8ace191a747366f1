//! What every command shares: the global options, output in human or JSON
//! form, errors that say what to do next, the spinner, the RPC connection
//! and the signing key.

use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use stele_client::api::codes;
use stele_client::{Client, ClientError, Signer};

use crate::Global;
use crate::keystore::Keystore;

/// A command's failure: what went wrong and, when we know, what to do.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    /// The node's JSON-RPC error code, when the node refused.
    pub code: Option<i32>,
    /// Extra machine-readable detail for `--json` (e.g. a decoded revert).
    pub data: Option<Value>,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            hint: None,
            code: None,
            data: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    pub fn data(mut self, data: Value) -> CliError {
        self.data = Some(data);
        self
    }

    /// Prints the error on stderr, or as `{"error": ...}` on stdout for
    /// `--json`.
    pub fn report(&self, json: bool) {
        if json {
            let doc = json!({ "error": {
                "message": self.message,
                "hint": self.hint,
                "code": self.code,
                "data": self.data,
            }});
            say(format!("{doc:#}"));
        } else {
            eprintln!("error: {}", self.message);
            if let Some(h) = &self.hint {
                eprintln!("hint: {h}");
            }
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        match e {
            ClientError::Rpc { code, message } => {
                let hint = match code {
                    codes::TX_NONCE_TOO_LOW | codes::TX_NONCE_TOO_HIGH => {
                        Some("another transaction from this key was sent meanwhile; run the command again")
                    }
                    codes::TX_INSUFFICIENT_FUNDS => Some(
                        "fund the account (`stele transfer --from dev0 <ADDRESS> <AMOUNT>` on a devnet) or lower --gas",
                    ),
                    codes::TX_GAS_LIMIT_OVER_BLOCK => Some("lower --gas, or use --gas auto"),
                    codes::TX_GAS_PRICE_TOO_LOW => Some("raise --gas-price"),
                    codes::TX_WRONG_CHAIN => Some("check --rpc: it points at another chain"),
                    codes::HEIGHT_UNAVAILABLE => {
                        Some("the height is not committed yet or was pruned; omit --height for the latest")
                    }
                    codes::BUSY => Some("the node is busy; retry in a moment"),
                    _ => None,
                };
                CliError {
                    message,
                    hint: hint.map(str::to_string),
                    code: Some(code),
                    data: None,
                }
            }
            ClientError::Transport(t) => CliError::new(format!("cannot reach the node: {t}"))
                .hint("is a node running at --rpc? Start one with `stele devnet`, or pass --rpc URL"),
            ClientError::NoAbi(addr) => {
                CliError::new(format!("contract {addr} has no embedded ABI"))
                    .hint("build it with `stele build` (the SDK embeds the ABI), or call it with raw arguments")
            }
            ClientError::NotCommitted { hash, timeout } => CliError::new(format!(
                "transaction {hash} did not commit within {} s",
                timeout.as_secs()
            ))
            .hint(format!("it may still commit: check with `stele tx {hash}`")),
            other => CliError::new(other.to_string()),
        }
    }
}

/// Writes a line to stdout. When the reader has gone away (`stele ... |
/// head`), there is nobody left to tell anything: exit quietly instead of
/// panicking on the broken pipe.
pub fn say(text: impl Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// An error with a plain message.
pub fn fail<T>(message: impl Display) -> Result<T, CliError> {
    Err(CliError::new(message.to_string()))
}

/// Shared state of one CLI invocation.
#[derive(Debug)]
pub struct Ctx {
    pub global: Global,
    pub home: PathBuf,
}

impl Ctx {
    pub fn new(global: Global) -> Result<Ctx, CliError> {
        let home = match &global.home {
            Some(h) => h.clone(),
            None => match std::env::home_dir() {
                Some(h) => h.join(".stele"),
                None => {
                    return fail("cannot find your home folder").map_err(|e| {
                        e.hint("set STELE_HOME (or --home) to a folder for the keystore and devnet")
                    });
                }
            },
        };
        Ok(Ctx { global, home })
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    pub fn keystore(&self) -> Keystore {
        Keystore::new(self.home.join("keys"))
    }

    /// Connects to `--rpc`.
    pub async fn client(&self) -> Result<Client, CliError> {
        Client::connect(&self.global.rpc).await.map_err(|e| {
            CliError::new(format!("cannot connect to {}: {e}", self.global.rpc))
                .hint("is a node running there? Start one with `stele devnet`, or pass --rpc URL")
        })
    }

    /// A WebSocket connection to `--rpc` (for subscriptions).
    pub async fn ws_client(&self) -> Result<Client, CliError> {
        let url = &self.global.rpc;
        let ws = if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            url.clone()
        };
        Client::connect(&ws).await.map_err(|e| {
            CliError::new(format!("cannot connect to {ws}: {e}"))
                .hint("is a node running there? Start one with `stele devnet`, or pass --rpc URL")
        })
    }

    /// The key named by `--from`, decrypted.
    pub fn signer(&self) -> Result<Signer, CliError> {
        let key = self.keystore().load_secret(&self.global.from)?;
        Ok(Signer::new(key))
    }

    /// Prints `human` for people, or `doc` for `--json`.
    pub fn out(&self, human: impl FnOnce() -> String, doc: Value) {
        if self.json() {
            say(format!("{doc:#}"));
        } else {
            say(human());
        }
    }

    /// A spinner on stderr while waiting (hidden with `--json` or when
    /// stderr is not a terminal).
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        let bar = if self.json() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        };
        bar.set_message(message.into());
        Spinner(bar)
    }
}

/// Clears itself when dropped.
#[derive(Debug)]
pub struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
