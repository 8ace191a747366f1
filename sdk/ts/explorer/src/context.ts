/**
 * What every view shares: the node's URL and clients, the trust anchor (the
 * genesis validator set), and caches of what does not change (validator
 * sets by epoch, contract ABIs).
 *
 * Trust: the explorer has no genesis file, so it takes the genesis set
 * from the node it first talks to (`get_validators(0)`) and shows that
 * set's hash in the footer. Everything "verified" is verified against that
 * anchor: a node that lied about its genesis could fool the explorer, one
 * that lies about anything later cannot.
 *
 * @module
 */

import {
  Abi,
  AbiError,
  type Address,
  RpcClient,
  RpcCodes,
  RpcError,
  type TrustedGenesis,
  type ValidatorSet,
  WsClient,
  type ConnectionEvent,
  asBytes,
  asObject,
  asOptional,
  validatorsForBlock,
} from './sdk.js';

/** Most contract ABIs kept. */
const ABIS_MAX = 64;
/** Most validator sets (epochs) kept. */
const SETS_MAX = 64;
/** Calls over HTTP give up after this long. */
const RPC_TIMEOUT_MS = 20_000;

/** The URL a `?rpc=` parameter names, or the origin that served the page. */
export function rpcUrlFromLocation(): { url: string; error: string | null } {
  const param = new URLSearchParams(location.search).get('rpc');
  if (param === null || param === '') return { url: location.origin, error: null };
  const error = checkRpcUrl(param);
  return error === null ? { url: param.replace(/\/+$/, ''), error: null } : { url: location.origin, error };
}

/** Why `url` is not a node's RPC URL, or `null`. */
export function checkRpcUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `not a URL: ${url}`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `the RPC URL must be http:// or https://, got ${url}`;
  return null;
}

export class Context {
  readonly url: string;
  readonly rpc: RpcClient;
  #ws: WsClient | null = null;
  #genesis: Promise<TrustedGenesis> | null = null;
  readonly #sets = new Map<bigint, Promise<ValidatorSet>>();
  readonly #abis = new Map<string, Promise<Abi | null>>();
  readonly #onConnection: (e: ConnectionEvent) => void;

  constructor(url: string, onConnection: (e: ConnectionEvent) => void) {
    this.url = url;
    this.rpc = new RpcClient(url, { timeoutMs: RPC_TIMEOUT_MS });
    this.#onConnection = onConnection;
  }

  /** The WebSocket client (connected on first use; it reconnects by itself). */
  ws(): WsClient {
    this.#ws ??= new WsClient(this.url, { onConnection: this.#onConnection, timeoutMs: RPC_TIMEOUT_MS });
    return this.#ws;
  }

  /** The trust anchor: the node's chain id and genesis validator set. */
  genesis(): Promise<TrustedGenesis> {
    this.#genesis ??= (async () => {
      const [status, info] = await Promise.all([this.rpc.getStatus(), this.rpc.getValidators(0)]);
      if (info.epoch !== 0n) throw new Error(`the node's set after height 0 is of epoch ${info.epoch}, not the genesis`);
      return { chainId: status.chainId, validators: info.validators };
    })();
    this.#genesis.catch(() => {
      this.#genesis = null; // try again on the next view
    });
    return this.#genesis;
  }

  /**
   * The validator set that certifies the block at `height` of `epoch`,
   * followed from the genesis set (see light.ts); cached by epoch, as an
   * epoch has one set.
   */
  validatorsFor(height: bigint, epoch: bigint): Promise<ValidatorSet> {
    let p = this.#sets.get(epoch);
    if (p === undefined) {
      p = this.genesis().then((g) => validatorsForBlock(this.rpc, g, height));
      if (this.#sets.size >= SETS_MAX) this.#sets.clear();
      this.#sets.set(epoch, p);
      p.catch(() => this.#sets.delete(epoch));
    }
    return p;
  }

  /**
   * The ABI of the contract at `address`, or `null` when there is no
   * contract there or it has no valid ABI (then `reason` says why).
   */
  abi(address: Address): Promise<Abi | null> {
    const key = address.toChecksum();
    let p = this.#abis.get(key);
    if (p === undefined) {
      p = this.#readAbi(address);
      if (this.#abis.size >= ABIS_MAX) this.#abis.clear();
      this.#abis.set(key, p);
      p.catch(() => this.#abis.delete(key));
    }
    return p;
  }

  async #readAbi(address: Address): Promise<Abi | null> {
    let raw: Uint8Array | null;
    try {
      const info = asObject(await this.rpc.call('get_contract', [address.toChecksum()]), 'get_contract');
      raw = asOptional(info['abi_raw'], 'get_contract.abi_raw', asBytes);
    } catch (e) {
      if (e instanceof RpcError && e.code === RpcCodes.NOT_FOUND) return null;
      throw e;
    }
    if (raw === null) return null;
    try {
      return Abi.parse(raw);
    } catch (e) {
      if (e instanceof AbiError) return null;
      throw e;
    }
  }

  close(): void {
    this.#ws?.close();
    this.#ws = null;
  }
}
