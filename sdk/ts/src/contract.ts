/**
 * Contracts by their on-chain ABI: a {@link Contract} reads the ABI the
 * node serves for an address (`get_contract`, or the code's `stele_abi`
 * section through `get_code`), and turns method calls with JSON arguments
 * into read-only calls (`call_view`) and signed `Call` transactions, whose
 * return values, reverts and events it decodes (`abi.ts`). It follows the
 * Rust client and CLI (`sdk/client/src/abi.rs`, `cli/src/chain.rs`): the
 * gas limit comes from `estimate_gas` unless given, and a call whose dry
 * run fails is not sent.
 *
 * ```ts
 * const counter = await Contract.at(rpc, address, { signer: key });
 * await counter.view['get']!();                  // "8"
 * const { returned, events } = await counter.call['increment']!(3);
 * ```
 *
 * With the declarations `stele-abigen` writes for the contract, the
 * methods are typed: `Contract.at<CounterContract>(rpc, address)`.
 *
 * @module
 */

import {
  Abi,
  AbiError,
  type AbiInput,
  type DecodedEvent,
  type Revert,
  revertToJson,
} from './abi.js';
import { Address } from './address.js';
import type { Hash } from './hash.js';
import { toHex } from './hex.js';
import {
  JsonError,
  type JsonObject,
  type JsonValue,
  asBool,
  asBytes,
  asHash,
  asObject,
  asOptional,
  asU64,
  execStatusFromJson,
  stringifyJson,
  transactionToJson,
} from './json.js';
import type { SecretKey } from './keys.js';
import type { Event, ExecStatus } from './receipt.js';
import {
  type EventCursor,
  type ReceiptInfo,
  type RpcClient,
  RpcCodes,
  RpcError,
  RpcTransportError,
} from './rpc.js';
import { type SignedTransaction, type Transaction, signTransaction, txHash } from './tx.js';

/** What a {@link Contract} needs of a client: {@link RpcClient}, or any with these methods. */
export type ContractClient = Pick<
  RpcClient,
  'call' | 'getStatus' | 'getAccount' | 'sendTransaction' | 'waitForReceipt' | 'callView' | 'getEvents'
>;

/** Options of a read-only call. */
export interface ViewOptions {
  /** The height to run at (the latest by default). */
  readonly height?: bigint | number;
}

/** Options of a transaction. */
export interface CallOptions {
  /** The sender's key (the contract's default signer when absent). */
  readonly signer?: SecretKey;
  /** The gas limit; when absent, `estimate_gas`'s answer, after a dry run that must succeed. */
  readonly gas?: bigint | number;
  /** Native tokens paid per unit of gas (the contract's default, else 1). */
  readonly gasPrice?: bigint | number;
  /** Native tokens sent along (payable methods only). */
  readonly value?: bigint | number;
  /** The sender's nonce (its pending nonce by default). */
  readonly nonce?: bigint | number;
  /** How long to wait for the transaction to commit (the contract's default, else 60 s). */
  readonly timeoutMs?: number;
}

/** Defaults of a {@link Contract}'s transactions. */
export interface ContractOptions {
  readonly signer?: SecretKey;
  readonly gasPrice?: bigint | number;
  readonly timeoutMs?: number;
}

/** Options of {@link Contract.deploy}. */
export interface DeployOptions {
  /** Who deploys (and the new contract's default signer). */
  readonly signer: SecretKey;
  /** The gas limit; when absent, `estimate_gas`'s answer, after a dry run that must succeed. */
  readonly gas?: bigint | number;
  readonly gasPrice?: bigint | number;
  /** Native tokens sent to the new contract (a payable constructor only). */
  readonly value?: bigint | number;
  readonly nonce?: bigint | number;
  readonly timeoutMs?: number;
}

/** A committed deploy (see {@link Contract.deploy}). */
export interface DeployResult<T extends ContractTypes = UntypedContract> {
  readonly contract: Contract<T>;
  readonly hash: Hash;
  readonly sender: Address;
  readonly transaction: SignedTransaction;
  readonly receipt: ReceiptInfo;
  /** The events the new contract's constructor emitted. */
  readonly events: readonly ContractEvent[];
  readonly gasUsed: bigint;
}

/** An event of the contract, decoded by its ABI when it can be. */
export interface ContractEvent {
  /** The event as the chain has it. */
  readonly event: Event;
  /** The event's name, or `null` when it does not decode by the ABI. */
  readonly name: string | null;
  /** Its fields by name (see {@link DecodedEvent}), or `null`. */
  readonly fields: JsonObject | null;
  /** Why it does not decode, or `null`. */
  readonly error: AbiError | null;
}

/** A contract event with its place in the chain ({@link Contract.events}). */
export interface ContractEventLog extends ContractEvent {
  readonly blockHeight: bigint;
  readonly blockHash: Hash;
  readonly txHash: Hash;
  readonly txIndex: number;
  /** Position of the event in its transaction. */
  readonly eventIndex: number;
}

/** A committed, successful call. */
export interface CallResult<R = JsonValue> {
  readonly hash: Hash;
  readonly sender: Address;
  readonly transaction: SignedTransaction;
  /** The whole receipt (events the node left out of its answer read back). */
  readonly receipt: ReceiptInfo;
  /** The return value, decoded. */
  readonly returned: R;
  /** The events this contract emitted (nested calls' events of other contracts are in `receipt`). */
  readonly events: readonly ContractEvent[];
  readonly gasUsed: bigint;
}

/** What `estimate_gas` answers. */
export interface GasEstimate {
  /** The smallest gas limit with the outcome of a run with all the gas the sender can buy. */
  readonly gas: bigint;
  /** That run's status. */
  readonly status: ExecStatus;
  /** False when the node's search was cut short (`gas` suffices, a smaller limit might). */
  readonly exact: boolean;
}

/** Which events {@link Contract.events} reads. */
export interface EventQuery {
  /** Only the event of this name. */
  readonly event?: string;
  /**
   * Values of the event's topic fields in order (`null` for any), turned
   * into topics (needs `event`).
   */
  readonly topics?: readonly (AbiInput | null)[];
  /** The first height (default 1). */
  readonly fromHeight?: bigint | number;
  /** The last height (default the latest). */
  readonly toHeight?: bigint | number;
  /** Events per `get_events` call (default 500; the node's maximum is usually 1000). */
  readonly pageSize?: number;
  /** Stop after this many events. */
  readonly max?: number;
}

/**
 * A view or call that did not succeed: the contract reverted (`status`
 * `reverted`, with the decoded `revert`), or ran out of gas, trapped or
 * failed (`revert` is `null` and `output` holds the VM's message).
 */
export class ContractRevert extends Error {
  override readonly name = 'ContractRevert';
  readonly contract: Address;
  readonly method: string;
  readonly status: ExecStatus;
  /** The revert decoded by the ABI (a typed error, a message, or the raw payload). */
  readonly revert: Revert | null;
  /** When the payload claimed the method's error type but did not decode. */
  readonly decodeError: AbiError | null;
  readonly output: Uint8Array;
  readonly gasUsed: bigint;
  /**
   * Where: a read-only call, the dry run before a transaction (nothing was
   * sent), or a committed transaction (see `receipt`).
   */
  readonly stage: 'view' | 'simulation' | 'transaction';
  /** The committed transaction's hash and receipt (stage `transaction`). */
  readonly hash: Hash | null;
  readonly receipt: ReceiptInfo | null;

  constructor(
    abi: Abi,
    contract: Address,
    method: string,
    at: {
      status: ExecStatus;
      output: Uint8Array;
      gasUsed: bigint;
      stage: ContractRevert['stage'];
      hash?: Hash;
      receipt?: ReceiptInfo;
    },
  ) {
    let revert: Revert | null = null;
    let decodeError: AbiError | null = null;
    let detail: string;
    const text = (): string => new TextDecoder().decode(at.output);
    if (at.status === 'reverted') {
      try {
        revert = abi.decodeRevert(method, at.output);
      } catch (e) {
        if (!(e instanceof AbiError)) throw e;
        decodeError = e;
        revert = { kind: 'raw', raw: Uint8Array.from(at.output) };
      }
      const json = revertToJson(revert);
      detail =
        revert.kind === 'message'
          ? `reverted: ${revert.message}`
          : revert.kind === 'error'
            ? `reverted with error ${stringifyJson(json['error'] ?? null)}`
            : `reverted with payload ${toHex(revert.raw)}${decodeError === null ? '' : ` (${decodeError.message})`}`;
    } else {
      const what = at.status === 'out_of_gas' ? 'out of gas' : at.status;
      detail = at.output.length === 0 ? what : `${what}: ${text()}`;
    }
    const where = at.stage === 'simulation' ? ' in the dry run; nothing was sent' : '';
    super(`${method}: ${detail}${where}`);
    this.contract = contract;
    this.method = method;
    this.status = at.status;
    this.revert = revert;
    this.decodeError = decodeError;
    this.output = at.output;
    this.gasUsed = at.gasUsed;
    this.stage = at.stage;
    this.hash = at.hash ?? null;
    this.receipt = at.receipt ?? null;
  }
}

/** A read-only call of one method: its arguments in order, then options if any. */
export type ViewFunction = (...args: AbiInput[] | [...AbiInput[], ViewOptions]) => Promise<JsonValue>;
/** A transaction calling one method: its arguments in order, then options if any. */
export type CallFunction = (...args: AbiInput[] | [...AbiInput[], CallOptions]) => Promise<CallResult>;

/** The methods of a contract, as {@link Contract} exposes them. */
export interface ContractTypes {
  readonly view: object;
  readonly call: object;
}

/** Methods known only at run time: looked up by name. */
export interface UntypedContract {
  readonly view: Readonly<Record<string, ViewFunction>>;
  readonly call: Readonly<Record<string, CallFunction>>;
}

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
/** The node caps each `wait_for_receipt`; this asks again until the deadline. */
const WAIT_SLICE_MS = 10_000;
const TIMEOUT_MS_DEFAULT = 60_000;
/** Events per page read to complete a receipt, as the Rust client. */
const RECEIPT_EVENTS_PAGE = 500;
const EVENTS_PAGE_DEFAULT = 500;
const PAGES_MAX = 100_000;

function uint(v: bigint | number, max: bigint, what: string): bigint {
  const n = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof n !== 'bigint' || n < 0n || n > max) throw new RangeError(`${what} must be an integer from 0 to ${max}, got ${String(v)}`);
  return n;
}

/** Calls `method` and reads its result; a malformed answer is a transport error. */
async function typed<T>(
  client: ContractClient,
  method: string,
  params: readonly JsonValue[],
  read: (v: JsonValue) => T,
): Promise<T> {
  const result = await client.call(method, params);
  try {
    return read(result);
  } catch (e) {
    if (e instanceof JsonError) throw new RpcTransportError(method, `unexpected answer: ${e.message}`, 200, e);
    throw e;
  }
}

function estimateFromJson(v: JsonValue): GasEstimate {
  const o = asObject(v, 'result');
  return {
    gas: asU64(o['gas'], 'result.gas'),
    status: execStatusFromJson(o['status'], 'result.status'),
    exact: o['exact'] === undefined ? true : asBool(o['exact'], 'result.exact'),
  };
}

interface Simulation {
  readonly status: ExecStatus;
  readonly gasUsed: bigint;
  readonly output: Uint8Array;
}

function simulationFromJson(v: JsonValue): Simulation {
  const o = asObject(v, 'result');
  return {
    status: execStatusFromJson(o['status'], 'result.status'),
    gasUsed: asU64(o['gas_used'], 'result.gas_used'),
    output: asBytes(o['output'], 'result.output'),
  };
}

const OPTION_KEYS: Readonly<Record<'view' | 'call', readonly string[]>> = {
  view: ['height'],
  call: ['signer', 'gas', 'gasPrice', 'value', 'nonce', 'timeoutMs'],
};

function isOptions(v: unknown, kind: 'view' | 'call'): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array || v instanceof Address) return false;
  return Object.keys(v).every((k) => OPTION_KEYS[kind].includes(k));
}

/** A deployed contract and its ABI, bound to a client. */
export class Contract<T extends ContractTypes = UntypedContract> {
  readonly client: ContractClient;
  readonly address: Address;
  readonly abi: Abi;
  /** Read-only calls of the methods of kind `view`, by name. */
  readonly view: T['view'];
  /** Transactions calling the methods of kind `call`, by name. */
  readonly call: T['call'];
  readonly #options: ContractOptions;
  #chainId: Promise<bigint> | null = null;

  constructor(client: ContractClient, address: Address, abi: Abi, options: ContractOptions = {}) {
    this.client = client;
    this.address = address;
    this.abi = abi;
    this.#options = options;
    const view: Record<string, ViewFunction> = Object.create(null) as Record<string, ViewFunction>;
    const call: Record<string, CallFunction> = Object.create(null) as Record<string, CallFunction>;
    for (const m of abi.methods) {
      const n = m.args.length;
      if (m.kind === 'view') {
        view[m.name] = (...args) => {
          const [values, opts] = split(args, n, 'view');
          return this.viewMethod(m.name, values, opts as ViewOptions);
        };
      } else if (m.kind === 'call') {
        call[m.name] = (...args) => {
          const [values, opts] = split(args, n, 'call');
          return this.callMethod(m.name, values, opts as CallOptions);
        };
      }
    }
    this.view = Object.freeze(view) as T['view'];
    this.call = Object.freeze(call) as T['call'];
  }

  /**
   * The contract at `address`, with the ABI the node serves for it: the
   * `stele_abi` section `get_contract` returns, or, when it returns none,
   * the code's (`get_code`), which says why there is none.
   *
   * @throws {AbiError} when the contract has no valid ABI.
   * @throws {RpcError} `NOT_FOUND` when there is no contract there.
   */
  static async at<T extends ContractTypes = UntypedContract>(
    client: ContractClient,
    address: Address | string,
    options: ContractOptions = {},
  ): Promise<Contract<T>> {
    const at = typeof address === 'string' ? Address.parse(address) : address;
    const info = await typed(client, 'get_contract', [at.toChecksum()], (v) => {
      const o = asObject(v, 'result');
      return {
        codeHash: asHash(o['code_hash'], 'result.code_hash'),
        abiRaw: asOptional(o['abi_raw'], 'result.abi_raw', asBytes),
      };
    });
    let abi: Abi;
    if (info.abiRaw !== null) {
      abi = Abi.parse(info.abiRaw);
    } else {
      const code = await typed(client, 'get_code', [info.codeHash.toString()], (v) => asBytes(v, 'result'));
      abi = Abi.fromWasm(code);
    }
    return new Contract<T>(client, at, abi, options);
  }

  /**
   * Deploys `code` (a Wasm module with its `stele_abi` section, as `stele
   * build` writes it) from `options.signer`, running its constructor with
   * `args` (an array in order or an object by name; none when the
   * contract has no constructor), and returns the new contract, bound to
   * the same signer and defaults. As {@link callMethod}: the gas limit is
   * `estimate_gas`'s unless given, and a deploy whose dry run fails is not
   * sent.
   *
   * @throws {AbiError} when the module has no valid ABI, or the arguments do not fit the constructor.
   * @throws {ContractRevert} when the dry run or the deploy does not succeed (method `init`).
   * @throws {RpcError} when the node refuses the transaction, or `TIMEOUT`.
   */
  static async deploy<T extends ContractTypes = UntypedContract>(
    client: ContractClient,
    code: Uint8Array,
    args: AbiInput = [],
    options: DeployOptions,
  ): Promise<DeployResult<T>> {
    const abi = Abi.fromWasm(code);
    const noArgs = Array.isArray(args) && args.length === 0;
    let initArgs: Uint8Array;
    if (abi.methods.some((m) => m.kind === 'init')) {
      initArgs = abi.encodeArgs('init', args);
    } else if (noArgs) {
      initArgs = new Uint8Array(0);
    } else {
      throw new TypeError(`${abi.name} has no constructor, so it takes no arguments`);
    }
    const { signer } = options;
    const sender = signer.address();
    const [{ chainId }, nonce] = await Promise.all([
      client.getStatus(),
      options.nonce === undefined
        ? client.getAccount(sender).then((a) => a.pendingNonce)
        : Promise.resolve(uint(options.nonce, U64_MAX, 'nonce')),
    ]);
    const unsigned: Transaction = {
      chainId,
      nonce,
      gasLimit: 0n,
      gasPrice: uint(options.gasPrice ?? 1n, U64_MAX, 'gasPrice'),
      payload: { kind: 'deploy', code, initArgs, value: uint(options.value ?? 0n, U128_MAX, 'value') },
    };
    // The address the deploy creates, for a revert's report.
    const address = Address.contract(sender, nonce);
    const { hash, transaction, receipt } = await sendChecked(
      client,
      unsigned,
      signer,
      options.gas,
      options.timeoutMs,
      (at) => new ContractRevert(abi, address, 'init', at),
    );
    const r = receipt.receipt;
    if (r.contractAddress === null) {
      throw new RpcTransportError('wait_for_receipt', `the receipt of the deploy ${hash.toString()} names no contract`);
    }
    const contract = new Contract<T>(client, r.contractAddress, abi, {
      signer,
      ...(options.gasPrice === undefined ? {} : { gasPrice: options.gasPrice }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    return { contract, hash, sender, transaction, receipt, events: contract.decodeEvents(r.events), gasUsed: r.gasUsed };
  }

  /** The same contract with `signer` as the default sender. */
  withSigner(signer: SecretKey): Contract<T> {
    return new Contract<T>(this.client, this.address, this.abi, { ...this.#options, signer });
  }

  /**
   * Runs `method` read-only (`call_view`) with `args` (an array in order
   * or an object by name) and returns its decoded return value.
   *
   * @throws {AbiError} when the arguments do not fit the ABI.
   * @throws {ContractRevert} when the call does not succeed.
   */
  async viewMethod(method: string, args: AbiInput = [], options: ViewOptions = {}): Promise<JsonValue> {
    const input = this.abi.encodeArgs(method, args);
    const r = await this.client.callView(this.address, method, input, options.height);
    if (r.status !== 'success') {
      throw new ContractRevert(this.abi, this.address, method, {
        status: r.status,
        output: r.output,
        gasUsed: r.gasUsed,
        stage: 'view',
      });
    }
    return this.abi.decodeReturn(method, r.output);
  }

  /**
   * Sends a transaction calling `method` with `args` (an array in order or
   * an object by name), waits for it to commit, and returns its decoded
   * outcome. Without `gas`, the limit is `estimate_gas`'s, and a call
   * whose dry run does not succeed throws before anything is signed.
   *
   * @throws {AbiError} when the arguments do not fit the ABI.
   * @throws {ContractRevert} when the dry run or the transaction does not succeed.
   * @throws {RpcError} when the node refuses the transaction, or `TIMEOUT`
   *   when it did not commit in time.
   */
  async callMethod(method: string, args: AbiInput = [], options: CallOptions = {}): Promise<CallResult> {
    const input = this.abi.encodeArgs(method, args);
    const signer = options.signer ?? this.#options.signer;
    if (signer === undefined) throw new TypeError(`${method}: no signer (pass one in the call's options or to the Contract)`);
    const sender = signer.address();
    const unsigned = await this.#transaction(method, input, sender, options);
    const { hash, transaction, receipt } = await sendChecked(
      this.client,
      unsigned,
      signer,
      options.gas,
      options.timeoutMs ?? this.#options.timeoutMs,
      (at) => new ContractRevert(this.abi, this.address, method, at),
    );
    const r = receipt.receipt;
    return {
      hash,
      sender,
      transaction,
      receipt,
      returned: this.abi.decodeReturn(method, r.output),
      events: this.decodeEvents(r.events),
      gasUsed: r.gasUsed,
    };
  }

  /**
   * The gas a call needs (`estimate_gas`), without sending it.
   *
   * @throws {AbiError} when the arguments do not fit the ABI.
   */
  async estimateGas(method: string, args: AbiInput = [], options: CallOptions & { readonly from?: Address } = {}): Promise<GasEstimate> {
    const input = this.abi.encodeArgs(method, args);
    const sender = options.from ?? options.signer?.address() ?? this.#options.signer?.address();
    if (sender === undefined) throw new TypeError(`${method}: no sender (pass \`from\` or a signer)`);
    return estimate(this.client, await this.#transaction(method, input, sender, options), sender);
  }

  /** The events of this contract among `events`, decoded (others are left out). */
  decodeEvents(events: readonly Event[]): ContractEvent[] {
    return events.filter((e) => e.contract.equals(this.address)).map((e) => this.#decode(e));
  }

  /**
   * Past events of this contract (`get_events`, every page), decoded;
   * with `event`, only that event, and with `topics`, only those whose
   * topic fields have these values.
   *
   * @throws {AbiError} for an unknown event or topic values that do not fit it.
   */
  async events(query: EventQuery = {}): Promise<ContractEventLog[]> {
    if (query.topics !== undefined && query.event === undefined) throw new TypeError('topic values need the event name');
    const topics = query.event === undefined ? [] : this.abi.eventFilterTopics(query.event, query.topics ?? []);
    const filter = { contract: this.address, topics };
    const from = uint(query.fromHeight ?? 1, U64_MAX, 'fromHeight');
    const to = query.toHeight === undefined ? null : uint(query.toHeight, U64_MAX, 'toHeight');
    const limit = query.pageSize ?? EVENTS_PAGE_DEFAULT;
    const max = query.max ?? Number.POSITIVE_INFINITY;
    const out: ContractEventLog[] = [];
    let cursor: EventCursor | null = { height: from > 0n ? from : 1n, txIndex: 0, eventIndex: 0 };
    for (let pages = 0; cursor !== null && out.length < max; pages++) {
      if (pages >= PAGES_MAX) throw new RpcTransportError('get_events', `more than ${PAGES_MAX} pages`);
      const page = await this.client.getEvents(filter, from, to, Math.min(limit, max - out.length), cursor);
      for (const log of page.events) {
        if (out.length >= max) break;
        const { event, ...position } = log;
        out.push({ ...position, ...this.#decode(event) });
      }
      cursor = page.next;
    }
    return out;
  }

  #decode(event: Event): ContractEvent {
    try {
      const d: DecodedEvent = this.abi.decodeEvent(event.topics, event.data);
      return { event, name: d.name, fields: d.fields, error: null };
    } catch (e) {
      if (e instanceof AbiError) return { event, name: null, fields: null, error: e };
      throw e;
    }
  }

  async #transaction(method: string, input: Uint8Array, sender: Address, options: CallOptions): Promise<Transaction> {
    this.#chainId ??= this.client.getStatus().then(
      (s) => s.chainId,
      (e: unknown) => {
        this.#chainId = null;
        throw e;
      },
    );
    const chainId = await this.#chainId;
    const nonce =
      options.nonce === undefined ? (await this.client.getAccount(sender)).pendingNonce : uint(options.nonce, U64_MAX, 'nonce');
    return {
      chainId,
      nonce,
      // estimate_gas runs with all the gas the sender can buy, whatever this says.
      gasLimit: 0n,
      gasPrice: uint(options.gasPrice ?? this.#options.gasPrice ?? 1n, U64_MAX, 'gasPrice'),
      payload: {
        kind: 'call',
        contract: this.address,
        method,
        args: input,
        value: uint(options.value ?? 0n, U128_MAX, 'value'),
      },
    };
  }
}

/** `estimate_gas` for `tx` sent by `sender`. */
function estimate(client: ContractClient, tx: Transaction, sender: Address): Promise<GasEstimate> {
  return typed(client, 'estimate_gas', [{ transaction: transactionToJson(tx), sender: sender.toChecksum() }], estimateFromJson);
}

/** What a failed dry run or transaction is reported as ({@link ContractRevert}'s details). */
type RevertAt = ConstructorParameters<typeof ContractRevert>[3];

/**
 * Signs `unsigned` with `signer` and sends it, with `gas` as its limit or,
 * without, `estimate_gas`'s answer after a dry run that must succeed
 * (else `revert` of the simulation is thrown and nothing is sent); waits
 * until it commits and throws `revert` of the receipt unless it
 * succeeded.
 */
async function sendChecked(
  client: ContractClient,
  unsigned: Transaction,
  signer: SecretKey,
  gas: bigint | number | undefined,
  timeoutMs: number | undefined,
  revert: (at: RevertAt) => Error,
): Promise<{ hash: Hash; transaction: SignedTransaction; receipt: ReceiptInfo }> {
  const sender = signer.address();
  let gasLimit: bigint;
  if (gas === undefined) {
    const estimated = await estimate(client, unsigned, sender);
    if (estimated.status !== 'success') {
      const sim = await typed(
        client,
        'simulate_transaction',
        [{ transaction: transactionToJson({ ...unsigned, gasLimit: estimated.gas }), sender: sender.toChecksum() }],
        simulationFromJson,
      );
      throw revert({ status: sim.status, output: sim.output, gasUsed: sim.gasUsed, stage: 'simulation' });
    }
    gasLimit = estimated.gas;
  } else {
    gasLimit = uint(gas, U64_MAX, 'gas');
  }
  const transaction = signTransaction({ ...unsigned, gasLimit }, signer);
  const hash = txHash(transaction);
  const answered = await client.sendTransaction(transaction, sender);
  if (!answered.equals(hash)) {
    throw new RpcTransportError('send_transaction', `the node answered ${answered.toString()} for the transaction ${hash.toString()}`);
  }
  const receipt = await waitForCommit(client, hash, timeoutMs ?? TIMEOUT_MS_DEFAULT);
  const r = receipt.receipt;
  if (r.status !== 'success') {
    throw revert({ status: r.status, output: r.output, gasUsed: r.gasUsed, stage: 'transaction', hash, receipt });
  }
  return { hash, transaction, receipt };
}

/** Waits until `hash` commits, asking again while the node's wait times out, then completes the receipt. */
async function waitForCommit(client: ContractClient, hash: Hash, timeoutMs: number): Promise<ReceiptInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    try {
      const info = await client.waitForReceipt(hash, Math.max(1, Math.min(left, WAIT_SLICE_MS)));
      return await completeReceipt(client, info);
    } catch (e) {
      if (!(e instanceof RpcError && e.code === RpcCodes.TIMEOUT) || Date.now() >= deadline) throw e;
    }
  }
}

/** Reads the events a node left out of a receipt and appends them, as the Rust client. */
async function completeReceipt(client: ContractClient, info: ReceiptInfo): Promise<ReceiptInfo> {
  if (info.eventsOmitted === 0) return info;
  const events = [...info.receipt.events];
  let omitted = info.eventsOmitted;
  let cursor: EventCursor | null = { height: info.blockHeight, txIndex: info.index, eventIndex: events.length };
  for (let pages = 0; omitted > 0 && cursor !== null && pages < PAGES_MAX; pages++) {
    if (cursor.height !== info.blockHeight || cursor.txIndex !== info.index) break;
    const page = await client.getEvents(
      {},
      info.blockHeight,
      info.blockHeight,
      Math.min(omitted, RECEIPT_EVENTS_PAGE),
      cursor,
    );
    for (const log of page.events) {
      if (log.txIndex !== info.index || omitted === 0) break;
      events.push(log.event);
      omitted--;
    }
    cursor = page.next;
  }
  if (omitted > 0) {
    throw new RpcTransportError(
      'get_events',
      `receipt of ${info.receipt.txHash.toString()}: the node returned ${events.length} events and ${omitted} more could not be read`,
    );
  }
  return { ...info, receipt: { ...info.receipt, events }, eventsOmitted: 0 };
}

/** Splits a method's arguments from its trailing options. */
function split(args: readonly unknown[], n: number, kind: 'view' | 'call'): [AbiInput[], object] {
  if (args.length === n + 1 && isOptions(args[n], kind)) return [args.slice(0, n) as AbiInput[], args[n] as object];
  return [args as AbiInput[], {}];
}
