/**
 * TypeScript declarations from a contract's ABI, for a typed
 * {@link Contract}: `abiToTypeScript(abi, 'Counter')` writes the types of
 * the contract's structs and enums (as decoded, and as accepted on input),
 * an interface of its view methods and one of its call methods, an
 * interface of its events' fields, and one of its methods' error types,
 * all gathered in `CounterContract`:
 *
 * ```ts
 * const counter = await Contract.at<CounterContract>(rpc, address, { signer });
 * const n: string = await counter.view.get();
 * ```
 *
 * The `stele-abigen` script (`bin/stele-abigen.js`) prints them for an ABI
 * JSON file or a contract's Wasm.
 *
 * @module
 */

import type { Abi, Field, Fields, Method, TypeDef, TypeRef } from './abi.js';

/** Options of {@link abiToTypeScript}. */
export interface AbigenOptions {
  /** Where the declarations import the client's types from (default `@stele/client`). */
  readonly importFrom?: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for ' +
    'function if import in instanceof new null return super switch this throw true try typeof var void while with ' +
    'yield let static implements interface package private protected public await arguments eval undefined'
  ).split(' '),
);

/** Names the declarations use, which a contract's type may not take. */
const TAKEN = new Set([
  'Address',
  'CallOptions',
  'CallResult',
  'ViewOptions',
  'Promise',
  'Uint8Array',
  'Readonly',
  'Record',
  'Array',
  'ReadonlyArray',
  'Object',
  'String',
  'Number',
  'Boolean',
  'BigInt',
  'Symbol',
  'Error',
]);

/** A property name: bare when it is an identifier, else quoted. */
const key = (name: string): string => (IDENTIFIER.test(name) ? name : JSON.stringify(name));

/** An array's element type, in parentheses when it is a union. */
const element = (t: string): string => (t.includes(' | ') || t.startsWith('readonly ') ? `(${t})` : t);

const doc = (text: string, indent = ''): string => `${indent}/** ${text.replace(/\*\//g, '*\\/')} */\n`;

/**
 * Declarations of the contract `abi` for a typed {@link Contract}, with
 * `name` (an identifier, e.g. `Counter`) as the prefix of the interfaces:
 * `${name}View`, `${name}Call`, `${name}Events`, `${name}Errors` and
 * `${name}Contract`. Each struct or enum `T` of the ABI gives `T` (the
 * decoded form) and `TInput` (what the encoder accepts).
 *
 * Decoded forms: `u64`, `u128`, `i64` and `i128` are strings, smaller
 * integers numbers, `bytes`, `[u8; N]` and addresses `0x` strings, options
 * `T | null`, enums `"Variant"` or `{ Variant: fields }`. Inputs also take
 * numbers and bigints for integers, `Uint8Array`s for bytes and
 * `Address`es for addresses.
 *
 * @throws {TypeError} when `name` is not an identifier.
 */
export function abiToTypeScript(abi: Abi, name: string, options: AbigenOptions = {}): string {
  if (!IDENTIFIER.test(name) || RESERVED.has(name)) throw new TypeError(`${JSON.stringify(name)} is not a TypeScript identifier`);
  const from = options.importFrom ?? '@stele/client';
  const ours = new Set([`${name}View`, `${name}Call`, `${name}Events`, `${name}Errors`, `${name}Contract`]);

  // The TypeScript names of the contract's types, clear of ours and of globals.
  const used = new Set<string>([...TAKEN, ...ours]);
  const typeNames = new Map<string, { out: string; input: string }>();
  const fresh = (base: string): string => {
    let n = IDENTIFIER.test(base) && !RESERVED.has(base) ? base : `T_${base.replace(/[^A-Za-z0-9_$]/g, '_')}`;
    while (used.has(n)) n = `${n}_`;
    used.add(n);
    return n;
  };
  for (const t of abi.types) {
    const out = fresh(t.name);
    typeNames.set(t.name, { out, input: fresh(`${out}Input`) });
  }

  const out = (t: TypeRef): string => typeScript(t, false);
  const input = (t: TypeRef): string => typeScript(t, true);
  function typeScript(t: TypeRef, isInput: boolean): string {
    const inner = (x: TypeRef): string => typeScript(x, isInput);
    // Inputs are only read; decoded values are fresh, so plain arrays.
    const ro = isInput ? 'readonly ' : '';
    switch (t.kind) {
      case 'unit':
        return 'null';
      case 'bool':
        return 'boolean';
      case 'u8':
      case 'u16':
      case 'u32':
      case 'i8':
      case 'i16':
      case 'i32':
        return isInput ? 'number | bigint | string' : 'number';
      case 'u64':
      case 'u128':
      case 'i64':
      case 'i128':
        return isInput ? 'string | bigint | number' : 'string';
      case 'string':
        return 'string';
      case 'bytes':
        return isInput ? 'string | Uint8Array' : 'string';
      case 'address':
        return isInput ? 'string | Address' : 'string';
      case 'array':
        if (t.of.kind === 'u8') return isInput ? 'string | Uint8Array' : 'string';
        if (t.length <= 8) return `${ro}[${Array.from({ length: t.length }, () => inner(t.of)).join(', ')}]`;
        return `${ro}${element(inner(t.of))}[]`;
      case 'vec':
        return `${ro}${element(inner(t.of))}[]`;
      case 'option': {
        const of = inner(t.of);
        return of.endsWith(' | null') || of === 'null' ? of : `${of} | null`;
      }
      case 'tuple':
        return `${ro}[${t.items.map(inner).join(', ')}]`;
      case 'defined': {
        const names = typeNames.get(t.name);
        return names === undefined ? 'never' : isInput ? names.input : names.out;
      }
    }
  }

  const object = (fields: readonly Field[], type: (t: TypeRef) => string): string =>
    fields.length === 0 ? 'Record<string, never>' : `{ ${fields.map((f) => `readonly ${key(f.name)}: ${type(f.type)}`).join('; ')} }`;
  const shape = (f: Fields, type: (t: TypeRef) => string): string => {
    switch (f.kind) {
      case 'unit':
        return 'null';
      case 'named':
        return object(f.fields, type);
      case 'unnamed':
        return `${type === input ? 'readonly ' : ''}[${f.types.map(type).join(', ')}]`;
    }
  };
  const definition = (t: TypeDef, isInput: boolean): string => {
    const type = isInput ? input : out;
    if (t.kind === 'struct') return shape(t.fields, type);
    if (t.variants.length === 0) return 'never';
    return t.variants
      .flatMap((v) => {
        if (v.fields.kind === 'unit') {
          return isInput ? [JSON.stringify(v.name), `{ readonly ${key(v.name)}: null }`] : [JSON.stringify(v.name)];
        }
        return [`{ readonly ${key(v.name)}: ${shape(v.fields, type)} }`];
      })
      .join('\n  | ');
  };

  // A method's parameters: valid, distinct names, then the options.
  const params = (m: Method, optionsType: string): string => {
    const taken = new Set<string>(['options']);
    const list = m.args.map((a, i) => {
      let p = IDENTIFIER.test(a.name) && !RESERVED.has(a.name) ? a.name : `arg${i}`;
      while (taken.has(p)) p = `${p}_`;
      taken.add(p);
      return `${p}: ${input(a.type)}`;
    });
    return [...list, `options?: ${optionsType}`].join(', ');
  };
  const methodDoc = (m: Method): string => {
    const bits = [`\`${m.name}\``];
    if (m.payable) bits.push('payable');
    if (m.error !== null) bits.push(`reverts with \`${typeLabel(m.error)}\``);
    return doc(bits.join('; '), '  ');
  };
  const typeLabel = (t: TypeRef): string => out(t);
  const eventField = (f: Field): string => {
    const size = abi.fixedSize(f.type);
    return size !== null && size <= 32 ? out(f.type) : 'string';
  };

  const alias = (n: string, body: string): string =>
    body.includes('\n') ? `export type ${n} =\n  | ${body};\n\n` : `export type ${n} = ${body};\n\n`;

  let s = '';
  for (const t of abi.types) {
    const names = typeNames.get(t.name)!;
    s += doc(`\`${t.name}\` as decoded.`);
    s += alias(names.out, definition(t, false));
    s += doc(`\`${t.name}\` as an argument.`);
    s += alias(names.input, definition(t, true));
  }
  const views = abi.methods.filter((m) => m.kind === 'view');
  const calls = abi.methods.filter((m) => m.kind === 'call');
  s += doc(`Read-only calls of \`${abi.name}\` (\`call_view\`).`);
  s += `export interface ${name}View {\n`;
  for (const m of views) s += `${methodDoc(m)}  ${key(m.name)}(${params(m, 'ViewOptions')}): Promise<${out(m.returns)}>;\n`;
  s += '}\n\n';
  s += doc(`Transactions calling \`${abi.name}\`.`);
  s += `export interface ${name}Call {\n`;
  for (const m of calls) s += `${methodDoc(m)}  ${key(m.name)}(${params(m, 'CallOptions')}): Promise<CallResult<${out(m.returns)}>>;\n`;
  s += '}\n\n';
  s += doc(`The fields of \`${abi.name}\`'s events, by event (topic fields that are hashed are \`0x\` hashes).`);
  s += `export interface ${name}Events {\n`;
  for (const e of abi.events) {
    const fields = [...e.topics, ...e.data.filter((d) => !e.topics.some((t) => t.name === d.name))];
    const type = (f: Field): string => {
      const data = e.data.find((d) => d.name === f.name);
      return data !== undefined ? out(data.type) : eventField(f);
    };
    s += `  ${key(e.name)}: ${fields.length === 0 ? 'Record<string, never>' : `{ ${fields.map((f) => `readonly ${key(f.name)}: ${type(f)}`).join('; ')} }`};\n`;
  }
  s += '}\n\n';
  s += doc(`The error types of \`${abi.name}\`'s methods that declare one (\`ContractRevert.revert.error\`).`);
  s += `export interface ${name}Errors {\n`;
  for (const m of abi.methods) if (m.error !== null) s += `  ${key(m.name)}: ${out(m.error)};\n`;
  s += '}\n\n';
  s += doc(`\`${abi.name}\` for \`Contract<${name}Contract>\`.`);
  s += `export interface ${name}Contract {\n  readonly view: ${name}View;\n  readonly call: ${name}Call;\n}\n`;
  const imports = ['Address', 'CallOptions', 'CallResult', 'ViewOptions'].filter((n) => new RegExp(`\\b${n}\\b`).test(s));
  const head =
    `// Declarations of the contract \`${abi.name}\` ${abi.version}, written by stele-abigen from its ABI.\n` +
    '// Do not edit: generate them again when the ABI changes.\n\n' +
    (imports.length === 0 ? '' : `import type { ${imports.join(', ')} } from ${JSON.stringify(from)};\n\n`);
  return head + s;
}
