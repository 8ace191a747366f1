//! A fork of a live chain (feature `fork`): a [`TestChain`] whose state
//! starts as a node's at one height. Nothing is copied up front: the first
//! read of an account, a contract's code or a storage key fetches it over
//! the node's JSON-RPC with its Merkle proof, checked against the state
//! root of a header certified by the validator set of its epoch, which is
//! found from the genesis set the caller trusts. The node is trusted for
//! nothing but answering. Writes stay local.
//!
//! Limits, all refused with a clear error rather than answered wrongly:
//! iterating the storage of a contract that came from the chain (the
//! remote's keys cannot be listed with proofs), and chain records the
//! node does not prove (the validator set, scheduled upgrades: the fork
//! runs the protocol the node reports for its height, with no upgrades).
//! The fork's state roots are those of what it holds, not the chain's.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stele_client::{
    Client, check_account_answer, check_storage_answer, verify_account_proof, verify_storage_proof,
};
use stele_state::{RemoteReads, State, StateConfig};
use stele_types::proof::{Namespace, StateKey};
use stele_types::{Address, Hash, ValidatorSet, keccak256};

use crate::TestChain;
use crate::chain::Origin;

/// How long one request to the node may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The chain to fork and what to trust about it.
#[derive(Debug, Clone)]
pub struct Fork {
    /// The node's JSON-RPC address (`http://…` or `ws://…`).
    pub url: String,
    /// The chain's id, as its genesis names it.
    pub chain_id: u64,
    /// The chain's genesis validator set: the trust root every value read
    /// is checked against.
    pub genesis: ValidatorSet,
    /// The height whose state to fork; `None`: the node's latest block.
    pub height: Option<u64>,
}

/// Why a fork could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkError(pub String);

impl std::fmt::Display for ForkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot fork the chain: {}", self.0)
    }
}

impl std::error::Error for ForkError {}

impl TestChain {
    /// A chain whose state is `fork`'s chain at its height, read lazily
    /// and checked against the certified state root (see the module
    /// docs). The next block is one after that height, one second later;
    /// the chain id and the protocol (gas schedule and VM limits) are the
    /// chain's. Any account can send transactions, without its key, as on
    /// every [`TestChain`].
    ///
    /// Must not be called on a thread that runs an async runtime's tasks
    /// (the node could not answer while it waits): in an async test, call
    /// it and the chain's methods inside `spawn_blocking`.
    pub fn fork(fork: Fork) -> Result<TestChain, ForkError> {
        let remote = Remote::connect(&fork)?;
        let height = remote.height;
        let time = remote.timestamp_ms;
        let protocol = remote.protocol.clone();
        let gas =
            stele_vm::GasSchedule::by_version(protocol.gas_schedule_version).ok_or_else(|| {
                ForkError(format!(
                    "this testkit has no gas schedule {}",
                    protocol.gas_schedule_version
                ))
            })?;
        let limits =
            stele_vm::VmLimits::by_version(protocol.vm_limits_version).ok_or_else(|| {
                ForkError(format!(
                    "this testkit has no VM limits {}",
                    protocol.vm_limits_version
                ))
            })?;
        let mut state = State::in_memory_over(StateConfig::default(), Arc::new(remote));
        // The fork's own first version is the forked height, empty: reads
        // of it go to the chain.
        state
            .commit(height, &BTreeMap::new())
            .map_err(|e| ForkError(e.to_string()))?;
        Ok(TestChain::on(
            state,
            Origin {
                chain_id: fork.chain_id,
                last_block: (height, time),
                gas,
                limits,
            },
        ))
    }
}

/// A job for the thread that talks to the node.
type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

/// The node, read through a thread of its own that owns an async runtime,
/// so the chain's synchronous reads can wait for it from any thread.
struct Remote {
    jobs: Mutex<mpsc::Sender<Job>>,
    client: Arc<Client>,
    chain_id: u64,
    /// The set that certified `height`.
    validators: ValidatorSet,
    height: u64,
    timestamp_ms: u64,
    protocol: stele_types::ProtocolParams,
    /// Every value read, by key (`None`: proven absent).
    read: Mutex<BTreeMap<StateKey, Option<Vec<u8>>>>,
    /// Contracts whose account came from the chain with code.
    contracts: Mutex<BTreeSet<Address>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("chain_id", &self.chain_id)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn worker() -> Result<mpsc::Sender<Job>, ForkError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ForkError(format!("no async runtime: {e}")))?;
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("testkit-fork".into())
        .spawn(move || {
            // Ends when the fork (the last sender) is dropped.
            while let Ok(job) = queue.recv() {
                job(&runtime);
            }
        })
        .map_err(|e| ForkError(format!("no thread for the node's client: {e}")))?;
    Ok(jobs)
}

/// Runs `fut` on the worker and waits for it, within [`REQUEST_TIMEOUT`].
fn run<T: Send + 'static>(
    jobs: &Mutex<mpsc::Sender<Job>>,
    fut: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (reply, answer) = mpsc::channel();
    let job: Job = Box::new(move |runtime| {
        let out = runtime.block_on(async move {
            tokio::time::timeout(REQUEST_TIMEOUT, fut)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
        });
        let _ = reply.send(out);
    });
    jobs.lock()
        .map_err(|_| "the node's client panicked".to_owned())?
        .send(job)
        .map_err(|_| "the node's client stopped".to_owned())?;
    answer
        .recv()
        .map_err(|_| "the node's client stopped".to_owned())?
}

impl Remote {
    fn connect(fork: &Fork) -> Result<Remote, ForkError> {
        let jobs = Mutex::new(worker()?);
        let url = fork.url.clone();
        let client = run(&jobs, async move {
            Client::connect(&url).await.map_err(|e| e.to_string())
        })
        .map_err(|e| ForkError(format!("{}: {e}", fork.url)))?;
        let client = Arc::new(client);
        let (c, chain_id, genesis, asked) = (
            Arc::clone(&client),
            fork.chain_id,
            fork.genesis.clone(),
            fork.height,
        );
        // A certified header at the height: the account proof of the zero
        // address carries one, checked with the set of its epoch.
        let (validators, header, protocol) = run(&jobs, async move {
            let height = match asked {
                Some(h) => h,
                None => {
                    c.get_latest_block()
                        .await
                        .map_err(|e| e.to_string())?
                        .block
                        .header
                        .height
                }
            };
            let proof = c
                .get_account_proof(Address([0; 20]), Some(height))
                .await
                .map_err(|e| e.to_string())?;
            check_account_answer(&proof, &Address([0; 20]), Some(height))
                .map_err(|e| e.to_string())?;
            let set = c
                .validators_for_block(height, chain_id, &genesis)
                .await
                .map_err(|e| e.to_string())?;
            verify_account_proof(&proof, chain_id, &set).map_err(|e| e.to_string())?;
            let protocol = c
                .get_protocol(Some(height))
                .await
                .map_err(|e| e.to_string())?
                .active;
            Ok((set, proof.header, protocol))
        })
        .map_err(ForkError)?;
        Ok(Remote {
            jobs,
            client,
            chain_id,
            validators,
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            protocol,
            read: Mutex::new(BTreeMap::new()),
            contracts: Mutex::new(BTreeSet::new()),
        })
    }

    /// Fetches `key` and checks it (see [`RemoteReads::get`]).
    fn fetch(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        let (client, chain_id, set, height) = (
            Arc::clone(&self.client),
            self.chain_id,
            self.validators.clone(),
            self.height,
        );
        match key.namespace {
            Namespace::Account => {
                let address = address_of(&key.key)?;
                let value = run(&self.jobs, async move {
                    let proof = client
                        .get_account_proof(address, Some(height))
                        .await
                        .map_err(|e| e.to_string())?;
                    check_account_answer(&proof, &address, Some(height))
                        .map_err(|e| e.to_string())?;
                    let account =
                        verify_account_proof(&proof, chain_id, &set).map_err(|e| e.to_string())?;
                    Ok((account, proof.value.map(|v| v.0)))
                })?;
                if let (Some(account), _) = &value
                    && account.code_hash.is_some()
                {
                    self.contracts
                        .lock()
                        .map_err(|_| "poisoned".to_owned())?
                        .insert(address);
                }
                Ok(value.1)
            }
            Namespace::Code => {
                let hash = Hash(
                    key.key
                        .as_slice()
                        .try_into()
                        .map_err(|_| "a code key is not 32 bytes".to_owned())?,
                );
                let code = run(&self.jobs, async move {
                    client.get_code(hash).await.map_err(|e| e.to_string())
                });
                match code {
                    Ok(code) if keccak256(&code) == hash => Ok(Some(code)),
                    Ok(_) => Err(format!("the node sent code that does not hash to {hash}")),
                    Err(e) => Err(e),
                }
            }
            Namespace::Storage(contract) => {
                let raw = key.key.clone();
                run(&self.jobs, async move {
                    let proof = client
                        .get_storage_proof(contract, &raw, Some(height))
                        .await
                        .map_err(|e| e.to_string())?;
                    check_storage_answer(&proof, &contract, &raw, Some(height))
                        .map_err(|e| e.to_string())?;
                    verify_storage_proof(&proof, chain_id, &set).map_err(|e| e.to_string())?;
                    Ok(proof.value.map(|v| v.0))
                })
            }
            // Chain records are not proven by the node's RPC; the fork runs
            // without them (its protocol is the one read at the start).
            Namespace::System => Ok(None),
        }
    }
}

fn address_of(raw: &[u8]) -> Result<Address, String> {
    raw.try_into()
        .map(Address)
        .map_err(|_| "an account key is not 20 bytes".to_owned())
}

impl RemoteReads for Remote {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        if let Some(value) = self
            .read
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .get(key)
        {
            return Ok(value.clone());
        }
        let value = self
            .fetch(key)
            .map_err(|e| format!("reading {:?} at height {}: {e}", key.namespace, self.height))?;
        self.read
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .insert(key.clone(), value.clone());
        Ok(value)
    }

    fn iterate(&self, namespace: &Namespace) -> Result<(), String> {
        let Namespace::Storage(contract) = namespace else {
            return Ok(());
        };
        let forked = self
            .contracts
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .contains(contract);
        match forked {
            false => Ok(()),
            true => Err(format!(
                "contract {contract} comes from the forked chain, and its storage cannot be \
                 listed with proofs: a fork cannot iterate it"
            )),
        }
    }
}
