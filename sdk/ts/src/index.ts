/**
 * `@stele/client`: the Stele ledger's wire formats in TypeScript, byte for
 * byte as the Rust node's.
 *
 * - {@link Writer}, {@link Reader}, {@link decode}: the canonical codec,
 *   bounded by {@link DEFAULT_LIMITS}.
 * - {@link Hash}, {@link keccak256}, {@link listRoot}; {@link Address} with
 *   EIP-55 checksums.
 * - {@link SecretKey}, {@link PublicKey}, {@link Signature}: secp256k1 keys
 *   and 65-byte `r || s || v` signatures (deterministic, low-S).
 * - {@link Transaction} and its payloads, {@link signTransaction},
 *   {@link encodeSignedTransaction}, {@link txHash}, {@link recoverSender}.
 * - {@link BlockHeader}, {@link Block}, {@link ValidatorSet},
 *   {@link CommitCertificate} and {@link verifyCertificate}; {@link Receipt}
 *   and {@link Event}.
 * - {@link RpcClient}: a typed JSON-RPC client over HTTP; {@link parseJson}
 *   and the `...FromJson` / `...ToJson` functions for the node's JSON forms.
 *
 * Numbers: `u64` and `u128` values are `bigint`; `u8`, `u16` and `u32` are
 * `number`. Hashes, addresses, keys and signatures are immutable classes.
 * Every decoder refuses non-canonical input with a {@link DecodeError}
 * whose message is the one the node gives for the same bytes.
 *
 * @packageDocumentation
 */

export {
  DEFAULT_LIMITS,
  DecodeError,
  EncodeError,
  Reader,
  Writer,
  decode,
  encode,
  u64Bytes,
  type DecodeErrorDetail,
  type Limits,
} from './codec.js';
export { HexError, bytesEqual, compareBytes, concatBytes, fromHex, toHex } from './hex.js';
export { DOMAIN, Hash, keccak256, keccak256Parts, listRoot } from './hash.js';
export { Address, AddressError } from './address.js';
export { CryptoError, PublicKey, SecretKey, Signature, type CryptoErrorKind } from './keys.js';
export {
  PROTOCOL_PARAMS_BYTES,
  decodeProtocolParams,
  encodeProtocolParams,
  protocolParamsHash,
  readProtocolParams,
  writeProtocolParams,
  type ProtocolParams,
} from './protocol.js';
export {
  VALIDATOR_BYTES,
  ValidatorSet,
  ValidatorSetError,
  decodeValidatorSet,
  encodeValidatorSet,
  readValidator,
  readValidatorSet,
  writeValidator,
  writeValidatorSet,
  type Validator,
  type ValidatorSetErrorDetail,
} from './validators.js';
export {
  TxError,
  decodeSignedTransaction,
  decodeTransaction,
  encodeSignedTransaction,
  encodeTransaction,
  maxCost,
  methodNameError,
  readSignedTransaction,
  readTransaction,
  readTxPayload,
  recoverSender,
  signTransaction,
  signingDigest,
  txHash,
  txValue,
  validatorChangeHash,
  writeSignedTransaction,
  writeTransaction,
  writeTxPayload,
  type CallPayload,
  type DeployPayload,
  type SignedTransaction,
  type Transaction,
  type TransferPayload,
  type TxPayload,
  type VoteUpgradePayload,
  type VoteValidatorsPayload,
} from './tx.js';
export {
  CertificateError,
  ConsensusKind,
  blockHeaderHash,
  certificateDigest,
  computeTxRoot,
  consensusDigest,
  decodeBlock,
  decodeBlockHeader,
  decodeCommitCertificate,
  encodeBlock,
  encodeBlockHeader,
  encodeCommitCertificate,
  readBlock,
  readBlockHeader,
  readCommitCertificate,
  verifyCertificate,
  verifyCertificateSignatures,
  writeBlock,
  writeBlockHeader,
  writeCommitCertificate,
  type Block,
  type BlockHeader,
  type CertificateErrorDetail,
  type CommitCertificate,
  type CommitSignature,
} from './block.js';
export {
  EXEC_STATUS_CODES,
  decodeEvent,
  decodeReceipt,
  encodeEvent,
  encodeReceipt,
  readEvent,
  readReceipt,
  receiptHash,
  writeEvent,
  writeReceipt,
  type Event,
  type ExecStatus,
  type Receipt,
} from './receipt.js';
export {
  JsonError,
  asAddress,
  asArray,
  asBool,
  asBytes,
  asHash,
  asObject,
  asOptional,
  asPublicKey,
  asSignature,
  asString,
  asU128,
  asU32,
  asU64,
  blockFromJson,
  blockHeaderFromJson,
  blockHeaderToJson,
  blockToJson,
  commitCertificateFromJson,
  commitCertificateToJson,
  eventFromJson,
  eventToJson,
  execStatusFromJson,
  parseJson,
  protocolParamsFromJson,
  protocolParamsToJson,
  receiptFromJson,
  receiptToJson,
  signedTransactionFromJson,
  signedTransactionToJson,
  stringifyJson,
  transactionFromJson,
  transactionToJson,
  validatorFromJson,
  validatorSetFromJson,
  validatorSetToJson,
  validatorToJson,
  type JsonObject,
  type JsonValue,
} from './json.js';
export {
  RpcClient,
  RpcCodes,
  RpcError,
  RpcTransportError,
  type AccountInfo,
  type BlockInfo,
  type FetchLike,
  type PendingValidators,
  type ProtocolInfo,
  type ReceiptInfo,
  type RpcClientOptions,
  type ScheduledProtocol,
  type SnapshotSyncInfo,
  type StatusInfo,
  type TransactionInfo,
  type ValidatorsInfo,
  type ViewResult,
} from './rpc.js';
