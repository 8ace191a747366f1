#!/usr/bin/env node
// stele-abigen: prints TypeScript declarations for a Stele contract, from
// its ABI JSON or its Wasm (the `stele_abi` section), for a typed Contract.
//
//   stele-abigen <abi.json | contract.wasm> [Name] [--import <module>]
//
// Name prefixes the interfaces (NameView, NameCall, NameEvents,
// NameErrors, NameContract); by default it is the contract's name in
// PascalCase. --import names the module the declarations import the
// client's types from (default @stele/client). Needs the built package
// (npm run build).

import { readFileSync } from 'node:fs';

import { Abi, AbiError } from '../dist/abi.js';
import { abiToTypeScript } from '../dist/abigen.js';

const usage = 'usage: stele-abigen <abi.json | contract.wasm> [Name] [--import <module>]';

function fail(message, code) {
  process.stderr.write(`stele-abigen: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
let importFrom;
const positional = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--import') {
    importFrom = args[++i];
    if (importFrom === undefined) fail(usage, 2);
  } else if (a === '-h' || a === '--help') {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  } else if (a.startsWith('-')) {
    fail(`unknown option ${a}\n${usage}`, 2);
  } else {
    positional.push(a);
  }
}
if (positional.length < 1 || positional.length > 2) fail(usage, 2);
const [file, givenName] = positional;

let bytes;
try {
  bytes = readFileSync(file);
} catch (e) {
  fail(`cannot read ${file}: ${e.message}`, 1);
}

let abi;
try {
  const isWasm = bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  abi = isWasm ? Abi.fromWasm(new Uint8Array(bytes)) : Abi.parse(new Uint8Array(bytes));
} catch (e) {
  if (e instanceof AbiError) fail(`${file}: ${e.message}`, 1);
  throw e;
}

const pascal = abi.name
  .split(/[^A-Za-z0-9]+/)
  .filter((w) => w.length > 0)
  .map((w) => w[0].toUpperCase() + w.slice(1))
  .join('');
const name = givenName ?? (/^[A-Za-z]/.test(pascal) ? pascal : `Contract${pascal}`);

try {
  process.stdout.write(abiToTypeScript(abi, name, importFrom === undefined ? {} : { importFrom }));
} catch (e) {
  if (e instanceof TypeError) fail(e.message, 2);
  throw e;
}
