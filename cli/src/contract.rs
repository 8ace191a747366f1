//! Contract commands: build, deploy, call, view, abi, events, proof. Calls
//! are ABI-aware: the ABI comes from the chain (or the module being
//! deployed), arguments are checked against it before anything is signed,
//! and results, reverts and events are decoded by it.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};
use stele_abi::{Abi, MethodKind, TypeRef};
use stele_client::api::{EventFilter, EventLog};
use stele_client::verify_storage_proof;
use stele_types::{Address, Amount, ExecStatus};

use crate::Res;
use crate::chain::{
    DecodeWith, EventDecoder, TxOpts, decode_events, decoded_json, decoded_text, event_text,
    failure_error, logs_text, outcome, parse_amount, send, trace_text,
};
use crate::ctx::{CliError, Ctx, fail, say};
use crate::keystore::{Keystore, resolve_address};

/// Largest module file read for a deploy (the chain's own cap is lower and
/// reported by the node).
const WASM_FILE_BYTES_MAX: u64 = 8 << 20;
/// Blocks `stele events` scans back by default.
const EVENTS_BLOCKS_DEFAULT: u64 = 10_000;
/// Events asked for per `get_events` call.
const EVENTS_PAGE: u32 = 500;

fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

fn build_options() -> stele_build::BuildOptions {
    stele_build::BuildOptions {
        target_dir: None,
        locked: false,
        verbose: false,
    }
}

async fn build_crate(ctx: &Ctx, dir: &Path) -> Result<stele_build::BuildOutput, CliError> {
    let _spin = ctx.spinner(format!("building {}", dir.display()));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || stele_build::build(&dir, &build_options()))
        .await
        .map_err(|e| CliError::new(format!("the build task failed: {e}")))?
        .map_err(|e| CliError::new(format!("build failed: {e}")))
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The deployed contract's address.
    pub contract: Address,
    /// The contract crate's folder, rebuilt as `stele build` builds it.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
}

/// `stele verify`: the deployed code is what the source builds. The build
/// is reproducible (the same source, SDK and Rust toolchain give the same
/// bytes wherever they are built), so equal code hashes mean this source
/// is what runs.
pub async fn verify(ctx: &Ctx, a: VerifyArgs) -> Res {
    let client = ctx.client().await?;
    let deployed = client.get_contract(a.contract).await?;
    let built = build_crate(ctx, &a.source).await?;
    let data = json!({
        "contract": a.contract,
        "deployed_code_hash": deployed.code_hash,
        "built_code_hash": built.code_hash,
        "built_size": built.size,
        "source": a.source,
    });
    if built.code_hash != deployed.code_hash {
        return Err(CliError::new(format!(
            "{} does NOT run the code {} builds: deployed code hash {} ({} bytes), built {} ({} bytes)",
            a.contract,
            a.source.display(),
            deployed.code_hash,
            deployed.code_bytes,
            built.code_hash,
            built.size
        ))
        .hint("the same source, stele SDK version and Rust toolchain build the same bytes: check out the commit that was deployed and use its rust-toolchain.toml")
        .data(data));
    }
    ctx.out(
        || {
            format!(
                "verified: {} runs the code {} builds ({} v{})
code hash: {}
size:      {} bytes",
                a.contract,
                a.source.display(),
                built.abi.name,
                built.abi.version,
                built.code_hash,
                built.size
            )
        },
        json!({"verified": true, "contract": a.contract, "code_hash": built.code_hash, "size": built.size, "name": built.abi.name, "version": built.abi.version}),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The contract crate's folder.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

pub async fn build(ctx: &Ctx, a: BuildArgs) -> Res {
    let out = build_crate(ctx, &a.path).await?;
    ctx.out(
        || {
            format!(
                "built {} ({} v{})\nwasm:      {}\nsize:      {} bytes\ncode hash: {}",
                a.path.display(),
                out.abi.name,
                out.abi.version,
                out.path.display(),
                out.size,
                out.code_hash
            )
        },
        json!({
            "name": out.abi.name,
            "version": out.abi.version,
            "wasm": out.path,
            "size": out.size,
            "code_hash": out.code_hash,
        }),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// A .wasm module, or a contract crate's folder (built first).
    pub path: PathBuf,
    /// Constructor arguments as JSON: an object by name or an array in
    /// order, as the ABI's `init` method lists them.
    #[arg(long, value_parser = parse_json)]
    pub init_args: Option<Value>,
    /// Native value sent to a payable constructor, in base units.
    #[arg(long, value_parser = parse_amount, default_value = "0")]
    pub value: Amount,
    #[command(flatten)]
    pub tx: TxOpts,
}

fn read_wasm(path: &Path) -> Result<Vec<u8>, CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::new(format!("cannot open {}: {e}", path.display())))?;
    let mut code = Vec::new();
    file.take(WASM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut code)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    if code.len() as u64 > WASM_FILE_BYTES_MAX {
        return fail(format!(
            "{} is over {WASM_FILE_BYTES_MAX} bytes",
            path.display()
        ));
    }
    if !code.starts_with(b"\0asm") {
        return fail(format!("{} is not a Wasm module", path.display()))
            .map_err(|e| e.hint("pass a .wasm file or a contract crate's folder"));
    }
    Ok(code)
}

/// Checks a call against the ABI and encodes its arguments: the method
/// exists, value only goes to payable methods, the arguments fit.
fn encode_call(
    ks: &Keystore,
    abi: &Abi,
    method: &str,
    args: &Value,
    value: Amount,
) -> Result<Vec<u8>, CliError> {
    let m = abi.method(method).map_err(|_| {
        let names: Vec<&str> = abi
            .methods
            .iter()
            .filter(|m| m.kind != MethodKind::Init)
            .map(|m| m.name.as_str())
            .collect();
        CliError::new(format!("{} has no method {method:?}", abi.name))
            .hint(format!("its methods: {}", names.join(", ")))
    })?;
    if value > 0 && !m.payable {
        return fail(format!(
            "{method} is not payable; it would revert with --value {value}"
        ));
    }
    let mut args = args.clone();
    key_names_to_addresses(ks, m, &mut args)?;
    abi.encode_args(method, &args).map_err(|e| {
        CliError::new(format!("arguments do not match {}.{method}: {e}", abi.name))
            .hint(format!("it takes {}", signature(m)))
    })
}

/// Replaces key names given for `m`'s address arguments (also inside an
/// `Option` or `Vec`) with their addresses, so `"dev1"` works where an
/// address is expected, as it does for `--from` and `stele transfer`.
fn key_names_to_addresses(
    ks: &Keystore,
    m: &stele_abi::Method,
    args: &mut Value,
) -> Result<(), CliError> {
    fn fix(ks: &Keystore, ty: &TypeRef, v: &mut Value) -> Result<(), CliError> {
        match (ty, v) {
            (TypeRef::Address, Value::String(s))
                if !s.starts_with("0x") && !s.starts_with("0X") =>
            {
                *s = resolve_address(ks, s)?.to_string();
            }
            (TypeRef::Option(t), v) if !v.is_null() => fix(ks, t, v)?,
            (TypeRef::Vec(t) | TypeRef::Array(t, _), Value::Array(items)) => {
                for item in items {
                    fix(ks, t, item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    match args {
        Value::Array(items) => {
            for (field, item) in m.args.iter().zip(items.iter_mut()) {
                fix(ks, &field.ty, item)?;
            }
        }
        Value::Object(map) => {
            for field in &m.args {
                if let Some(item) = map.get_mut(&field.name) {
                    fix(ks, &field.ty, item)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn type_text(t: &TypeRef) -> String {
    t.to_string()
}

fn signature(m: &stele_abi::Method) -> String {
    let args: Vec<String> = m
        .args
        .iter()
        .map(|f| format!("{}: {}", f.name, type_text(&f.ty)))
        .collect();
    let mut s = format!("({})", args.join(", "));
    if m.returns != TypeRef::Unit {
        s.push_str(&format!(" -> {}", type_text(&m.returns)));
    }
    if let Some(e) = &m.error {
        s.push_str(&format!(" ! {}", type_text(e)));
    }
    s
}

pub async fn deploy(ctx: &Ctx, a: DeployArgs) -> Res {
    let code = if a.path.is_dir() {
        build_crate(ctx, &a.path).await?.wasm
    } else {
        read_wasm(&a.path)?
    };
    let abi = Abi::from_wasm(&code).ok();
    let args = a.init_args.clone().unwrap_or(Value::Null);
    let init_args = match &abi {
        Some(abi) if abi.methods.iter().any(|m| m.kind == MethodKind::Init) => {
            encode_call(&ctx.keystore(), abi, "init", &args, a.value)?
        }
        _ if args.is_null() => Vec::new(),
        Some(_) => {
            return fail("this contract has no constructor, so it takes no --init-args");
        }
        None => {
            return fail("this module has no embedded ABI to encode --init-args with")
                .map_err(|e| e.hint("build it with `stele build`"));
        }
    };
    let signer = ctx.signer()?;
    let client = ctx.client().await?;
    let decode = abi.as_ref().map(|abi| DecodeWith {
        abi,
        method: "init",
    });
    let sent = send(ctx, &client, &signer, &a.tx, decode, |b| {
        b.deploy(code.clone(), init_args.clone(), a.value)
    })
    .await?;
    let r = &sent.receipt.receipt;
    if r.status != ExecStatus::Success {
        let decoded = abi.as_ref().map(|abi| {
            outcome(
                &DecodeWith {
                    abi,
                    method: "init",
                },
                r.status,
                &r.output,
            )
        });
        return Err(failure_error(
            &format!("the deploy failed in block {}", sent.receipt.block_height),
            r.status,
            decoded.as_ref(),
            Some(&stele_abi::output_text(&r.output)),
        )
        .data(json!({"hash": sent.hash, "status": r.status, "gas_used": r.gas_used})));
    }
    let Some(address) = r.contract_address else {
        return fail("the receipt of a successful deploy has no contract address");
    };
    let mut decoder = match &abi {
        Some(abi) => EventDecoder::with(&client, address, abi.clone()),
        None => EventDecoder::new(&client),
    };
    let events = decode_events(&mut decoder, &r.events).await;
    ctx.out(
        || {
            let mut s = format!(
                "deployed {}\ncontract: {address}\ntx:       {}\nblock:    {}\ngas used: {}",
                abi.as_ref().map_or("contract", |a| a.name.as_str()),
                sent.hash,
                sent.receipt.block_height,
                r.gas_used
            );
            for e in &events {
                s.push_str(&format!("\nevent:    {}", event_text(e)));
            }
            s
        },
        json!({
            "contract": address,
            "hash": sent.hash,
            "block_height": sent.receipt.block_height,
            "gas_used": r.gas_used,
            "code_hash": stele_types::keccak256(&code),
            "events": events,
        }),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct CallArgs {
    /// The contract's address.
    pub contract: Address,
    pub method: String,
    /// Arguments as JSON: an object by name or an array in order.
    #[arg(long, value_parser = parse_json)]
    pub args: Option<Value>,
    /// Native value sent with the call (payable methods), in base units.
    #[arg(long, value_parser = parse_amount, default_value = "0")]
    pub value: Amount,
    #[command(flatten)]
    pub tx: TxOpts,
}

pub async fn call(ctx: &Ctx, a: CallArgs) -> Res {
    let client = ctx.client().await?;
    let abi = client.get_abi(a.contract).await?;
    let args = a.args.clone().unwrap_or(Value::Null);
    let encoded = encode_call(&ctx.keystore(), &abi, &a.method, &args, a.value)?;
    if abi
        .method(&a.method)
        .is_ok_and(|m| m.kind == MethodKind::View)
    {
        return Err(CliError::new(format!(
            "{} is a view: as a transaction it would pay gas and change nothing",
            a.method
        ))
        .hint(format!(
            "read it with `stele view {} {}` (free, no transaction)",
            a.contract, a.method
        )));
    }
    let signer = ctx.signer()?;
    let decode = DecodeWith {
        abi: &abi,
        method: &a.method,
    };
    let sent = send(ctx, &client, &signer, &a.tx, Some(decode), |b| {
        b.call(a.contract, a.method.clone(), encoded.clone(), a.value)
    })
    .await?;
    if let Some(t) = sent.simulation.as_ref().and_then(|s| s.trace.as_ref())
        && !ctx.json()
    {
        if a.tx.trace {
            eprintln!("trace (simulated):\n{}", trace_text(t, 1));
        } else if let Some(logs) = logs_text(t) {
            eprintln!("debug logs (simulated):\n{logs}");
        }
    }
    let r = &sent.receipt.receipt;
    let decoded = outcome(
        &DecodeWith {
            abi: &abi,
            method: &a.method,
        },
        r.status,
        &r.output,
    );
    if r.status != ExecStatus::Success {
        return Err(failure_error(
            &format!(
                "{}.{} failed in block {} (tx {})",
                abi.name, a.method, sent.receipt.block_height, sent.hash
            ),
            r.status,
            Some(&decoded),
            None,
        )
        .data(json!({
            "hash": sent.hash,
            "status": r.status,
            "gas_used": r.gas_used,
            "decoded": decoded_json(&decoded),
        })));
    }
    let mut decoder = EventDecoder::with(&client, a.contract, abi.clone());
    let events = decode_events(&mut decoder, &r.events).await;
    ctx.out(
        || {
            let mut s = format!(
                "tx:       {}\nblock:    {}\ngas used: {}\nreturned: {}",
                sent.hash,
                sent.receipt.block_height,
                r.gas_used,
                decoded_text(&decoded)
            );
            for e in &events {
                s.push_str(&format!("\nevent:    {}", event_text(e)));
            }
            s
        },
        json!({
            "hash": sent.hash,
            "block_height": sent.receipt.block_height,
            "gas_used": r.gas_used,
            "returned": match &decoded {
                stele_client::abi::Decoded::Returned(v) => v.clone(),
                _ => Value::Null,
            },
            "events": events,
            "trace": if a.tx.trace { sent.simulation.and_then(|s| s.trace).map(|t| serde_json::to_value(t).unwrap_or(Value::Null)) } else { None },
        }),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The contract's address.
    pub contract: Address,
    pub method: String,
    /// Arguments as JSON: an object by name or an array in order.
    #[arg(long, value_parser = parse_json)]
    pub args: Option<Value>,
    /// Read at this committed height instead of the latest.
    #[arg(long)]
    pub height: Option<u64>,
}

pub async fn view(ctx: &Ctx, a: ViewArgs) -> Res {
    let client = ctx.client().await?;
    let abi = client.get_abi(a.contract).await?;
    let args = a.args.clone().unwrap_or(Value::Null);
    let encoded = encode_call(&ctx.keystore(), &abi, &a.method, &args, 0)?;
    let r = client
        .call_view(a.contract, &a.method, &encoded, a.height)
        .await?;
    let decoded = outcome(
        &DecodeWith {
            abi: &abi,
            method: &a.method,
        },
        r.status,
        &r.output.0,
    );
    if r.status != ExecStatus::Success {
        return Err(failure_error(
            &format!("{}.{} failed", abi.name, a.method),
            r.status,
            Some(&decoded),
            r.error.as_deref(),
        )
        .data(
            json!({"status": r.status, "gas_used": r.gas_used, "decoded": decoded_json(&decoded)}),
        ));
    }
    let returned = match &decoded {
        stele_client::abi::Decoded::Returned(v) => v.clone(),
        _ => Value::Null,
    };
    ctx.out(
        || decoded_text(&decoded),
        json!({"returned": returned, "height": r.height, "gas_used": r.gas_used}),
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct AbiArgs {
    /// The contract's address.
    pub contract: Address,
}

pub async fn abi(ctx: &Ctx, a: AbiArgs) -> Res {
    let client = ctx.client().await?;
    let abi = client.get_abi(a.contract).await?;
    let doc: Value = serde_json::from_str(&abi.to_json()).unwrap_or(Value::Null);
    ctx.out(
        || {
            let mut s = format!("{} v{}", abi.name, abi.version);
            for m in &abi.methods {
                let kind = match m.kind {
                    MethodKind::Init => "init",
                    MethodKind::Call => "call",
                    MethodKind::View => "view",
                };
                let pay = if m.payable { " payable" } else { "" };
                s.push_str(&format!("\n  {kind:<4} {}{}{pay}", m.name, signature(m)));
            }
            for e in &abi.events {
                let fields: Vec<String> = e
                    .topics
                    .iter()
                    .map(|f| format!("#{}: {}", f.name, type_text(&f.ty)))
                    .chain(
                        e.data
                            .iter()
                            .map(|f| format!("{}: {}", f.name, type_text(&f.ty))),
                    )
                    .collect();
                s.push_str(&format!("\n  event {}({})", e.name, fields.join(", ")));
            }
            s
        },
        doc,
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The contract's address.
    pub contract: Address,
    /// First height to scan; default the last 10 000 blocks.
    #[arg(long)]
    pub from_height: Option<u64>,
    /// Keep printing new events as blocks commit (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
}

pub async fn events(ctx: &Ctx, a: EventsArgs) -> Res {
    let client = ctx.client().await?;
    let abi = client.get_abi(a.contract).await.ok();
    let mut decoder = match abi {
        Some(abi) => EventDecoder::with(&client, a.contract, abi),
        None => EventDecoder::new(&client),
    };
    // Subscribe first so nothing falls between the scan and the stream.
    let ws = if a.follow {
        Some(ctx.ws_client().await?)
    } else {
        None
    };
    let mut sub = match &ws {
        Some(ws) => Some(
            ws.subscribe_events(EventFilter {
                contract: Some(a.contract),
                topics: Vec::new(),
            })
            .await?,
        ),
        None => None,
    };
    let latest = client.get_latest_block().await?.block.header.height;
    let filter = EventFilter {
        contract: Some(a.contract),
        topics: Vec::new(),
    };
    let mut next = Some(
        a.from_height
            .unwrap_or_else(|| latest.saturating_sub(EVENTS_BLOCKS_DEFAULT - 1))
            .max(1),
    );
    let mut found = Vec::new();
    while let Some(from) = next.filter(|h| *h <= latest) {
        let page = client
            .get_events(filter.clone(), from, Some(latest), EVENTS_PAGE)
            .await?;
        for log in &page.events {
            found.push(event_json(&mut decoder, log).await);
        }
        next = page.next_height;
    }
    if ctx.json() && !a.follow {
        say(format!("{:#}", Value::Array(found)));
        return Ok(());
    }
    for v in &found {
        print_event(ctx, v);
    }
    if let Some(sub) = sub.as_mut() {
        while let Some(item) = sub.next().await {
            let log = item.map_err(|e| CliError::new(format!("event stream: {e}")))?;
            if log.block_height <= latest {
                continue;
            }
            let v = event_json(&mut decoder, &log).await;
            print_event(ctx, &v);
        }
        return fail("the node closed the event stream");
    }
    Ok(())
}

async fn event_json(decoder: &mut EventDecoder<'_>, log: &EventLog) -> Value {
    let mut v = decoder.decode(&log.event).await;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("block_height".into(), json!(log.block_height));
        obj.insert("tx_hash".into(), json!(log.tx_hash));
        obj.insert("tx_index".into(), json!(log.tx_index));
        obj.insert("event_index".into(), json!(log.event_index));
    }
    v
}

fn print_event(ctx: &Ctx, v: &Value) {
    if ctx.json() {
        say(v);
    } else {
        say(format!(
            "block {} tx {}: {}",
            v.get("block_height").unwrap_or(&Value::Null),
            v.get("tx_hash").and_then(Value::as_str).unwrap_or("?"),
            event_text(v)
        ));
    }
}

#[derive(Args, Debug)]
pub struct ProofArgs {
    /// The contract's address.
    pub contract: Address,
    /// The storage field's name (as declared in the contract struct), or
    /// with --raw the whole key in 0x hex.
    pub key: String,
    /// For a map field: the entry's key, as 0x hex of its storage encoding
    /// (an address is its 20 bytes; integers are big-endian).
    #[arg(long)]
    pub map_key: Option<String>,
    /// Treat KEY as the raw storage key in 0x hex.
    #[arg(long)]
    pub raw: bool,
    /// Decode the value as this ABI type (e.g. u128, string, address).
    #[arg(long)]
    pub decode: Option<String>,
    /// Read at this committed height instead of the latest.
    #[arg(long)]
    pub height: Option<u64>,
    /// The genesis file whose validator set certifies the header; default
    /// the devnet's.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, CliError> {
    hex::decode(s.trim_start_matches("0x"))
        .map_err(|_| CliError::new(format!("{what} must be 0x hex, got {s:?}")))
}

/// The genesis whose validator set a proof is checked against: `path`,
/// default the devnet's.
pub fn trusted_genesis(
    ctx: &Ctx,
    path: Option<&Path>,
) -> Result<stele_node::genesis::Genesis, CliError> {
    let path = path.map(Path::to_path_buf).unwrap_or_else(|| {
        crate::devnet::default_dir(ctx)
            .join("node0")
            .join("genesis.json")
    });
    stele_node::genesis::Genesis::load(&path).map_err(|e| {
        CliError::new(format!(
            "cannot load the validator set from {}: {e}",
            path.display()
        ))
        .hint("pass --genesis with the network's genesis.json: the proof is only as good as the validator set you trust")
    })
}

/// A proof or its certificate did not hold.
pub fn not_verified(e: impl std::fmt::Display) -> CliError {
    CliError::new(format!("the proof does NOT verify: {e}"))
        .hint("this node's answer cannot be trusted")
}

pub async fn proof(ctx: &Ctx, a: ProofArgs) -> Res {
    let key = if a.raw {
        unhex("the raw key", &a.key)?
    } else {
        if a.key.is_empty() || a.key.len() > usize::from(u8::MAX) {
            return fail("a field name is 1-255 bytes");
        }
        let mut k = vec![a.key.len() as u8];
        k.extend_from_slice(a.key.as_bytes());
        if let Some(m) = &a.map_key {
            k.extend_from_slice(&unhex("--map-key", m)?);
        }
        k
    };
    let genesis = trusted_genesis(ctx, a.genesis.as_deref())?;
    let client = ctx.client().await?;
    let p = client.get_storage_proof(a.contract, &key, a.height).await?;
    if let Err(e) = stele_client::check_storage_answer(&p, &a.contract, &key, a.height) {
        return fail(format!("the proof does NOT answer the question: {e}"));
    }
    // The set of the proof's epoch, followed from the genesis set through
    // the epochs' certified last blocks (ADR 0010).
    let set = client
        .validators_for_block(p.header.height, genesis.chain_id, &genesis.validators)
        .await
        .map_err(not_verified)?;
    verify_storage_proof(&p, genesis.chain_id, &set).map_err(not_verified)?;
    let decoded =
        match (&a.decode, &p.value) {
            (Some(ty), Some(v)) => {
                let ty: TypeRef = serde_json::from_value(Value::String(ty.clone()))
                    .or_else(|_| serde_json::from_str(ty))
                    .map_err(|_| CliError::new(format!("unknown ABI type {ty:?}")))?;
                let abi = Abi {
                    abi_version: stele_abi::ABI_VERSION,
                    name: String::new(),
                    version: String::new(),
                    methods: Vec::new(),
                    events: Vec::new(),
                    types: Vec::new(),
                };
                Some(abi.decode_value(&ty, &v.0).map_err(|e| {
                    CliError::new(format!("the value does not decode as {ty:?}: {e}"))
                })?)
            }
            _ => None,
        };
    let value_hex = p.value.as_ref().map(|v| format!("0x{}", hex::encode(&v.0)));
    ctx.out(
        || {
            let mut s = format!(
                "verified against the {} validators of epoch {} at height {} (state root {})\nkey:   0x{}\nvalue: {}",
                set.len(),
                p.header.epoch,
                p.header.height,
                p.header.state_root,
                hex::encode(&key),
                value_hex.as_deref().unwrap_or("(absent, proven)")
            );
            if let Some(d) = &decoded {
                s.push_str(&format!("\n       = {d}"));
            }
            if p.value.is_none() && !a.raw {
                // The ABI does not list storage fields, so a misspelt
                // name is proven absent like an unset one.
                s.push_str(&format!(
                    "\nnote:  nothing is stored under field `{}`{}: it is unset, or the contract has no such field (names are its #[contract] struct's fields, as written)",
                    a.key,
                    if a.map_key.is_some() { " at that map key" } else { "" }
                ));
            }
            s
        },
        json!({
            "verified": true,
            "height": p.header.height,
            "state_root": p.header.state_root,
            "key": format!("0x{}", hex::encode(&key)),
            "value": value_hex,
            "decoded": decoded,
        }),
    );
    Ok(())
}
