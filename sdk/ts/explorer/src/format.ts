/**
 * How values are shown: hashes shortened, amounts grouped, times in UTC,
 * JSON values (with `bigint`s) pretty-printed.
 *
 * @module
 */

import { h } from './dom.js';
import type { Address, Hash, JsonValue } from './sdk.js';

/** `0x1234ab…cdef`. */
export function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

/** A monospace span with the whole value in its title. */
export function mono(text: string, shorten = false): HTMLElement {
  return h('span', { class: 'mono', title: shorten ? text : null }, shorten ? short(text) : text);
}

/** A link to a block. */
export function blockLink(id: bigint | Hash, shorten = true): HTMLElement {
  const text = typeof id === 'bigint' ? id.toString() : id.toString();
  return h(
    'a',
    { href: `#/block/${text}`, class: typeof id === 'bigint' ? null : 'mono', title: typeof id === 'bigint' ? null : text },
    typeof id === 'bigint' || !shorten ? text : short(text),
  );
}

/** A link to a transaction. */
export function txLink(hash: Hash, shorten = true): HTMLElement {
  const text = hash.toString();
  return h('a', { href: `#/tx/${text}`, class: 'mono', title: text }, shorten ? short(text) : text);
}

/** A link to an account, by its EIP-55 form. */
export function accountLink(address: Address, shorten = true): HTMLElement {
  const text = address.toChecksum();
  return h('a', { href: `#/account/${text}`, class: 'mono', title: text }, shorten ? short(text) : text);
}

/** An integer with thousands separators. */
export function amount(v: bigint): string {
  const s = v.toString();
  const neg = s.startsWith('-');
  const digits = neg ? s.slice(1) : s;
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return (neg ? '-' : '') + groups.join(',');
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `2026-12-07 07:05:10 UTC` from milliseconds since 1970. */
export function utcTime(ms: bigint): string {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return `${ms} ms`;
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`
  );
}

/** JSON text of `v` indented by two spaces, `bigint`s as plain integers. */
export function prettyJson(v: JsonValue, indent = ''): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'string':
      return JSON.stringify(v);
  }
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${prettyJson(x, inner)}`).join(',\n')}\n${indent}}`;
}

/** A JSON value for a table cell: plain for a string or number, else compact JSON. */
export function jsonCell(v: JsonValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return prettyJson(v);
}
