/**
 * The parts of `@stele/client` the explorer uses, imported from the
 * package's sources so that esbuild bundles only what is reachable.
 *
 * @module
 */

export { Abi, AbiError, parseTypeRef, revertToJson, type EventDef, type Method, type TypeRef } from '../../src/abi.js';
export { Address, AddressError } from '../../src/address.js';
export { CertificateError, blockHeaderHash, verifyCertificate, type BlockHeader, type CommitCertificate } from '../../src/block.js';
export { Contract, ContractRevert } from '../../src/contract.js';
export { Hash } from '../../src/hash.js';
export { HexError, concatBytes, fromHex, toHex } from '../../src/hex.js';
export {
  JsonError,
  asArray,
  asBytes,
  asObject,
  asOptional,
  asString,
  asU64,
  parseJson,
  stringifyJson,
  type JsonObject,
  type JsonValue,
} from '../../src/json.js';
export {
  LightClientError,
  validatorsForBlock,
  verifiedAccount,
  verifiedStorage,
  type TrustedGenesis,
  type VerifiedAccount,
  type VerifiedStorage,
  type Verification,
} from '../../src/light.js';
export type { Account } from '../../src/proof.js';
export type { Event, ExecStatus, Receipt } from '../../src/receipt.js';
export {
  RpcClient,
  RpcCodes,
  RpcError,
  RpcTransportError,
  type BlockInfo,
  type ReceiptInfo,
  type StatusInfo,
  type TraceFrame,
  traceSteps,
  type TransactionInfo,
  type TransactionTrace,
} from '../../src/rpc.js';
export { recoverSender, txHash, type SignedTransaction, type Transaction, type TxPayload } from '../../src/tx.js';
export type { ValidatorSet } from '../../src/validators.js';
export { WsClient, type ConnectionEvent, type NewBlock, type Subscription } from '../../src/ws.js';
