//! The keystore: one Ethereum v3 JSON file (scrypt + AES-128-CTR, the
//! format of `stele-client`) per named key under `<home>/keys`. Passphrases
//! come from `STELE_PASSWORD` or a prompt; secrets are printed only by
//! `export --private`. Devnet keys carry `"stele_devnet": true` and an empty
//! passphrase, so a devnet needs no typing.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};
use stele_client::{decrypt_keystore, encrypt_keystore};
use stele_types::{Address, SecretKey};

use crate::Res;
use crate::ctx::{CliError, Ctx, fail};

/// The usual scrypt cost (2^18) for keys people create.
const SCRYPT_LOG_N: u8 = 18;
/// Devnet keys protect nothing of value: cheap to open.
const DEVNET_SCRYPT_LOG_N: u8 = 10;
/// Largest keystore file read.
const FILE_BYTES_MAX: u64 = 64 * 1024;
const NAME_BYTES_MAX: usize = 64;
const PASSWORD_ENV: &str = "STELE_PASSWORD";

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new random key, encrypted with a passphrase (prompted, or
    /// from STELE_PASSWORD).
    New {
        name: String,
        /// scrypt cost as log2(N).
        #[arg(long, default_value_t = SCRYPT_LOG_N, hide = true, env = "STELE_SCRYPT_LOG_N")]
        scrypt_log_n: u8,
    },
    /// List the keys and their addresses.
    List,
    /// Show a key's address (never the secret).
    Show { name: String },
    /// Import a key: a raw hex secret read from a file or stdin (never from
    /// the command line, which shell history keeps), or a v3 keystore file.
    Import {
        name: String,
        /// File holding the hex secret key; `-` reads stdin.
        #[arg(long, conflicts_with = "keystore")]
        secret_file: Option<PathBuf>,
        /// A v3 keystore JSON file (e.g. from another wallet); its
        /// passphrase is asked for to check it.
        #[arg(long)]
        keystore: Option<PathBuf>,
        #[arg(long, default_value_t = SCRYPT_LOG_N, hide = true, env = "STELE_SCRYPT_LOG_N")]
        scrypt_log_n: u8,
    },
    /// Print a key's encrypted keystore JSON, or with --private its secret.
    Export {
        name: String,
        /// Print the raw secret key in hex. Anyone who sees it owns the
        /// account.
        #[arg(long)]
        private: bool,
    },
    /// Delete a key file.
    Delete {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// The keystore folder.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

/// A key file's public facts.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub name: String,
    pub address: Address,
    pub devnet: bool,
}

fn check_name(name: &str) -> Res {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        fail(format!(
            "invalid key name {name:?}: use 1-{NAME_BYTES_MAX} letters, digits, '-', '_' or '.'"
        ))
    }
}

fn read_bounded(path: &Path) -> Result<String, CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > FILE_BYTES_MAX {
        return fail(format!(
            "{} is over {FILE_BYTES_MAX} bytes: not a key file",
            path.display()
        ));
    }
    Ok(text)
}

impl Keystore {
    pub fn new(dir: PathBuf) -> Keystore {
        Keystore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, CliError> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    fn read(&self, name: &str) -> Result<(PathBuf, String, Value), CliError> {
        let path = self.path(name)?;
        if !path.exists() {
            return Err(CliError::new(format!(
                "no key named {name:?} in {}",
                self.dir.display()
            ))
            .hint("see `stele keys list`; create one with `stele keys new NAME`, or start `stele devnet` for funded dev keys"));
        }
        let text = read_bounded(&path)?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            CliError::new(format!("{} is not a keystore file: {e}", path.display()))
        })?;
        Ok((path, text, doc))
    }

    /// The public facts of `name` (no passphrase needed).
    pub fn entry(&self, name: &str) -> Result<KeyEntry, CliError> {
        let (path, _, doc) = self.read(name)?;
        let address = doc
            .get("address")
            .and_then(Value::as_str)
            .and_then(|a| {
                let a = a.trim_start_matches("0x");
                format!("0x{a}").parse::<Address>().ok()
            })
            .ok_or_else(|| {
                CliError::new(format!("{} has no valid address field", path.display()))
            })?;
        Ok(KeyEntry {
            name: name.to_string(),
            address,
            devnet: doc.get("stele_devnet") == Some(&Value::Bool(true)),
        })
    }

    /// Every key in the folder, by name.
    pub fn list(&self) -> Result<Vec<KeyEntry>, CliError> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return fail(format!("cannot read {}: {e}", self.dir.display())),
        };
        let mut names: Vec<String> = read
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        names.iter().map(|n| self.entry(n)).collect()
    }

    /// Decrypts `name` (devnet keys without a passphrase).
    pub fn load_secret(&self, name: &str) -> Result<SecretKey, CliError> {
        let (path, text, doc) = self.read(name)?;
        let password = if doc.get("stele_devnet") == Some(&Value::Bool(true)) {
            String::new()
        } else {
            passphrase(&format!("Passphrase for key {name:?}: "), false)?
        };
        decrypt_keystore(&text, &password)
            .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))
    }

    /// Writes `key` as `name`; refuses to replace a different key.
    pub fn save(
        &self,
        name: &str,
        key: &SecretKey,
        password: &str,
        log_n: u8,
        devnet: bool,
    ) -> Res {
        let path = self.path(name)?;
        if path.exists() {
            let existing = self.entry(name)?;
            if devnet && existing.devnet && existing.address == key.public_key().address() {
                return Ok(());
            }
            return fail(format!("a key named {name:?} already exists"))
                .map_err(|e| e.hint("pick another name, or `stele keys delete` it first"));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| CliError::new(format!("cannot create {}: {e}", self.dir.display())))?;
        let text = encrypt_keystore(key, password, log_n)
            .map_err(|e| CliError::new(format!("cannot encrypt the key: {e}")))?;
        let mut doc: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::new(format!("keystore encoding: {e}")))?;
        if devnet && let Some(obj) = doc.as_object_mut() {
            obj.insert("stele_devnet".into(), Value::Bool(true));
        }
        let text = format!("{doc:#}\n");
        write_private(&path, &text)
    }

    /// Fails when `name` is taken, before any passphrase is asked for.
    fn ensure_free(&self, name: &str) -> Res {
        if self.path(name)?.exists() {
            return fail(format!("a key named {name:?} already exists"))
                .map_err(|e| e.hint("pick another name, or `stele keys delete` it first"));
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Res {
        let (path, _, _) = self.read(name)?;
        std::fs::remove_file(&path)
            .map_err(|e| CliError::new(format!("cannot delete {}: {e}", path.display())))
    }
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Res {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))
}

/// The passphrase from `STELE_PASSWORD`, or asked on the terminal (twice
/// when `confirm`).
pub fn passphrase(prompt: &str, confirm: bool) -> Result<String, CliError> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return fail("a passphrase is needed and there is no terminal to ask on")
            .map_err(|e| e.hint(format!("set {PASSWORD_ENV}")));
    }
    let p = rpassword::prompt_password(prompt)
        .map_err(|e| CliError::new(format!("cannot read the passphrase: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| CliError::new(format!("cannot read the passphrase: {e}")))?;
        if again != p {
            return fail("the passphrases differ; nothing was written");
        }
    }
    Ok(p)
}

fn new_passphrase() -> Result<String, CliError> {
    let p = passphrase("New passphrase: ", true)?;
    if p.is_empty() {
        return fail("an empty passphrase protects nothing; choose one");
    }
    Ok(p)
}

fn parse_secret(text: &str) -> Result<SecretKey, CliError> {
    let hex_text = text.trim().trim_start_matches("0x");
    let bytes = hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| CliError::new("the secret key must be 32 bytes of hex"))?;
    SecretKey::from_bytes(&bytes)
        .map_err(|e| CliError::new(format!("not a valid secp256k1 secret key: {e}")))
}

pub fn run(ctx: &Ctx, command: KeysCommand) -> Res {
    let ks = ctx.keystore();
    match command {
        KeysCommand::New { name, scrypt_log_n } => {
            ks.ensure_free(&name)?;
            let key = SecretKey::generate();
            let password = new_passphrase()?;
            ks.save(&name, &key, &password, scrypt_log_n, false)?;
            let address = key.public_key().address();
            ctx.out(
                || format!("created key {name:?}\naddress: {address}"),
                json!({ "name": name, "address": address }),
            );
        }
        KeysCommand::List => {
            let keys = ks.list()?;
            ctx.out(
                || {
                    if keys.is_empty() {
                        return format!(
                            "no keys in {} (create one with `stele keys new NAME`)",
                            ks.dir().display()
                        );
                    }
                    keys.iter()
                        .map(|k| {
                            let tag = if k.devnet { "  (devnet)" } else { "" };
                            format!("{:<16} {}{tag}", k.name, k.address)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                Value::Array(
                    keys.iter()
                        .map(|k| json!({"name": k.name, "address": k.address, "devnet": k.devnet}))
                        .collect(),
                ),
            );
        }
        KeysCommand::Show { name } => {
            let k = ks.entry(&name)?;
            ctx.out(
                || format!("name:    {}\naddress: {}", k.name, k.address),
                json!({"name": k.name, "address": k.address, "devnet": k.devnet}),
            );
        }
        KeysCommand::Import {
            name,
            secret_file,
            keystore,
            scrypt_log_n,
        } => {
            ks.ensure_free(&name)?;
            let key = match (secret_file, keystore) {
                (_, Some(path)) => {
                    let text = read_bounded(&path)?;
                    let password =
                        passphrase(&format!("Passphrase of {}: ", path.display()), false)?;
                    let key = decrypt_keystore(&text, &password).map_err(|e| {
                        CliError::new(format!("cannot open {}: {e}", path.display()))
                    })?;
                    // Re-encrypted below under the new passphrase.
                    key
                }
                (Some(path), None) => {
                    let text = if path.as_os_str() == "-" {
                        let mut s = String::new();
                        std::io::stdin()
                            .take(1024)
                            .read_to_string(&mut s)
                            .map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
                        s
                    } else {
                        read_bounded(&path)?
                    };
                    parse_secret(&text)?
                }
                (None, None) => {
                    return fail(
                        "say where the key comes from: --secret-file PATH (or - for stdin) or --keystore FILE",
                    );
                }
            };
            let password = new_passphrase()?;
            ks.save(&name, &key, &password, scrypt_log_n, false)?;
            let address = key.public_key().address();
            ctx.out(
                || format!("imported key {name:?}\naddress: {address}"),
                json!({ "name": name, "address": address }),
            );
        }
        KeysCommand::Export { name, private } => {
            if private {
                let key = ks.load_secret(&name)?;
                let secret = format!("0x{}", hex::encode(key.to_bytes()));
                ctx.out(
                    || secret.clone(),
                    json!({"name": name, "address": key.public_key().address(), "secret_key": secret}),
                );
            } else {
                let (_, text, doc) = ks.read(&name)?;
                ctx.out(|| text.trim_end().to_string(), doc);
            }
        }
        KeysCommand::Delete { name, yes } => {
            let entry = ks.entry(&name)?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return fail("deleting a key needs confirmation")
                        .map_err(|e| e.hint("pass --yes"));
                }
                eprintln!(
                    "Delete key {name:?} ({})? Without a backup its funds are lost. Type `yes`:",
                    entry.address
                );
                let mut answer = String::new();
                std::io::stdin()
                    .read_line(&mut answer)
                    .map_err(|e| CliError::new(format!("cannot read the answer: {e}")))?;
                if answer.trim() != "yes" {
                    return fail("not confirmed; nothing deleted");
                }
            }
            ks.delete(&name)?;
            ctx.out(
                || format!("deleted key {name:?}"),
                json!({"deleted": name, "address": entry.address}),
            );
        }
    }
    Ok(())
}

/// Saves a devnet key (empty passphrase, cheap scrypt, marked).
pub fn save_devnet_key(ks: &Keystore, name: &str, key: &SecretKey) -> Res {
    ks.save(name, key, "", DEVNET_SCRYPT_LOG_N, true)
}

/// Resolves an address argument: `0x...` hex, or the name of a key in the
/// keystore.
pub fn resolve_address(ks: &Keystore, text: &str) -> Result<Address, CliError> {
    if text.starts_with("0x") || text.starts_with("0X") {
        return text.parse::<Address>().map_err(|e| {
            CliError::new(format!("invalid address {text}: {e}")).hint(
                "an address is 0x and 40 hex digits (mixed case must match the EIP-55 checksum)",
            )
        });
    }
    ks.entry(text).map(|e| e.address).map_err(|e| {
        CliError::new(format!(
            "{text:?} is neither an address (0x...) nor a key name: {}",
            e.message
        ))
    })
}
