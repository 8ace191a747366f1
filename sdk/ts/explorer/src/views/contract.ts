/**
 * A contract: its ABI, a form for each view method (run with `call_view`
 * through `Contract`), and a storage read with its proof checked here
 * (`verifiedStorage`), with a helper that forms the keys of the Rust SDK's
 * `Item` and `Map` fields.
 *
 * @module
 */

import { badge, errorBox, errorText, fill, h, section } from '../dom.js';
import { mono, prettyJson } from '../format.js';
import {
  type Abi,
  type Address,
  Contract,
  type JsonValue,
  LightClientError,
  type Method,
  type TypeRef,
  parseJson,
  parseTypeRef,
  toHex,
  fromHex,
  verifiedStorage,
} from '../sdk.js';
import { KEY_TYPES, type KeyType, fieldPrefix, mapKey } from '../storage-key.js';
import { verifiedText } from '../verify.js';
import type { Scope } from '../view.js';

/** Types a storage value can be decoded as. */
const VALUE_TYPES = ['raw', 'u128', 'u64', 'u32', 'u8', 'i64', 'bool', 'string', 'address', 'bytes'] as const;

export async function contractSections(scope: Scope, box: HTMLElement, address: Address): Promise<void> {
  let contract: Contract | null = null;
  let abiError: string | null = null;
  try {
    contract = await Contract.at(scope.ctx.rpc, address);
  } catch (e) {
    abiError = errorText(e);
  }
  if (!scope.alive()) return;
  fill(
    box,
    contract === null
      ? section('ABI', errorBox(`No ABI: ${abiError ?? 'unknown'}`))
      : [abiSection(contract.abi), viewsSection(contract)],
    storageSection(scope, address, contract?.abi ?? null),
  );
}

// ---------------------------------------------------------------------------
// The ABI

function typeName(t: TypeRef): string {
  switch (t.kind) {
    case 'vec':
      return `vec<${typeName(t.of)}>`;
    case 'option':
      return `option<${typeName(t.of)}>`;
    case 'array':
      return `[${typeName(t.of)}; ${t.length}]`;
    case 'tuple':
      return `(${t.items.map(typeName).join(', ')})`;
    case 'defined':
      return t.name;
    default:
      return t.kind;
  }
}

function signature(m: Method): HTMLElement {
  return h(
    'code',
    { class: 'sig' },
    h('strong', null, m.name),
    `(${m.args.map((a) => `${a.name}: ${typeName(a.type)}`).join(', ')})`,
    m.returns.kind === 'unit' ? '' : ` → ${typeName(m.returns)}`,
    m.error === null ? '' : ` ! ${typeName(m.error)}`,
  );
}

function abiSection(abi: Abi): HTMLElement {
  return section(
    'ABI',
    h('p', { class: 'section-note' }, h('strong', null, abi.name), ` version ${abi.version}, ABI format ${abi.abiVersion}`),
    h(
      'table',
      { class: 'list', id: 'abi-methods' },
      h('thead', null, h('tr', null, h('th', null, 'kind'), h('th', null, 'method'), h('th', null, ''))),
      h(
        'tbody',
        null,
        abi.methods.map((m) => h('tr', null, h('td', null, m.kind), h('td', null, signature(m)), h('td', null, m.payable ? badge('warn', 'payable') : ''))),
      ),
    ),
    abi.events.length === 0
      ? null
      : [
          h('h3', null, 'Events'),
          h(
            'ul',
            { class: 'plain', id: 'abi-events' },
            abi.events.map((e) =>
              h(
                'li',
                null,
                h(
                  'code',
                  { class: 'sig' },
                  h('strong', null, e.name),
                  `(${[...e.topics.map((f) => `#[topic] ${f.name}: ${typeName(f.type)}`), ...e.data.map((f) => `${f.name}: ${typeName(f.type)}`)].join(', ')})`,
                ),
              ),
            ),
          ),
        ],
  );
}

// ---------------------------------------------------------------------------
// View methods

/** A form field's text as the ABI encoder takes it for `type`. */
function argValue(type: TypeRef, text: string): JsonValue {
  switch (type.kind) {
    case 'string':
      return text;
    case 'bool': {
      const t = text.trim();
      if (t === 'true' || t === 'false') return t === 'true';
      throw new Error(`expected true or false, got ${JSON.stringify(text)}`);
    }
    case 'unit':
      return null;
    case 'address':
    case 'bytes':
    case 'u8':
    case 'u16':
    case 'u32':
    case 'u64':
    case 'u128':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'i64':
    case 'i128':
      return text.trim();
    default: {
      // Vectors, options, tuples, arrays and user types: JSON text.
      const t = text.trim();
      if (t === '' && type.kind === 'option') return null;
      return parseJson(t);
    }
  }
}

function placeholder(type: TypeRef): string {
  switch (type.kind) {
    case 'address':
      return '0x… (40 hex digits)';
    case 'bytes':
      return '0x… hex';
    case 'string':
      return 'text';
    case 'bool':
      return 'true or false';
    case 'unit':
      return '';
    default:
      return type.kind.startsWith('u') || type.kind.startsWith('i') ? type.kind : `JSON (${typeName(type)})`;
  }
}

function viewsSection(contract: Contract): HTMLElement {
  const views = contract.abi.methods.filter((m) => m.kind === 'view');
  return section(
    'Read (view methods)',
    views.length === 0 ? h('p', { class: 'muted' }, 'This contract has no view methods.') : views.map((m) => viewForm(contract, m)),
  );
}

function viewForm(contract: Contract, m: Method): HTMLElement {
  const inputs = m.args.map((a) =>
    h('input', { type: 'text', name: a.name, placeholder: placeholder(a.type), spellcheck: 'false', autocomplete: 'off' }),
  );
  const result = h('div', { class: 'result' });
  const button = h('button', { type: 'submit' }, 'Call');
  const form = h(
    'form',
    {
      class: 'view-form',
      'data-method': m.name,
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void run();
      },
    },
    h('div', { class: 'form-title' }, signature(m)),
    m.args.map((a, i) => h('label', null, h('span', { class: 'label-text' }, `${a.name}: ${typeName(a.type)}`), inputs[i])),
    h('div', { class: 'form-actions' }, button),
    result,
  );
  const run = async (): Promise<void> => {
    result.dataset['state'] = 'loading';
    fill(result, h('span', { class: 'muted' }, 'calling…'));
    button.disabled = true;
    try {
      const args = m.args.map((a, i) => {
        try {
          return argValue(a.type, inputs[i]!.value);
        } catch (e) {
          throw new Error(`${a.name}: ${errorText(e)}`);
        }
      });
      const value = await contract.viewMethod(m.name, args);
      fill(result, h('pre', { class: 'json', 'data-result': '' }, prettyJson(value)));
      result.dataset['state'] = 'ready';
    } catch (e) {
      fill(result, errorBox(errorText(e)));
      result.dataset['state'] = 'error';
    } finally {
      button.disabled = false;
    }
  };
  return form;
}

// ---------------------------------------------------------------------------
// Verified storage reads

function select(name: string, options: readonly string[], selected: string): HTMLSelectElement {
  return h('select', { name }, options.map((o) => h('option', { value: o, selected: o === selected }, o)));
}

function storageSection(scope: Scope, address: Address, abi: Abi | null): HTMLElement {
  // A token (a `balance_of(address) -> u128` view) keeps balances in a map
  // field `balances`: offer that entry by default.
  const tokenLike = abi?.methods.some((m) => m.name === 'balance_of' && m.kind === 'view') ?? false;
  const mode = select('mode', ['map entry', 'item', 'raw key'], tokenLike ? 'map entry' : 'raw key');
  const field = h('input', { type: 'text', name: 'field', value: tokenLike ? 'balances' : '', placeholder: 'field name, e.g. balances', spellcheck: 'false' });
  const keyType1 = select('keytype', [...KEY_TYPES], 'address');
  const key1 = h('input', { type: 'text', name: 'key', placeholder: 'key, e.g. 0x… address', spellcheck: 'false', autocomplete: 'off' });
  const keyType2 = select('keytype2', ['—', ...KEY_TYPES], '—');
  const key2 = h('input', { type: 'text', name: 'key2', placeholder: 'second part of a tuple key', spellcheck: 'false', autocomplete: 'off' });
  const raw = h('input', { type: 'text', name: 'raw', placeholder: '0x… storage key (1 to 256 bytes)', spellcheck: 'false', autocomplete: 'off' });
  const valueType = select('valuetype', [...VALUE_TYPES], tokenLike ? 'u128' : 'raw');
  const height = h('input', { type: 'text', name: 'height', placeholder: 'latest', class: 'short', spellcheck: 'false' });
  const result = h('div', { class: 'result', id: 'storage-result' });
  const button = h('button', { type: 'submit' }, 'Read verified');

  const mapRows = [
    h('label', null, h('span', { class: 'label-text' }, 'key type'), keyType1),
    h('label', null, h('span', { class: 'label-text' }, 'key'), key1),
    h('label', null, h('span', { class: 'label-text' }, 'tuple key, 2nd part'), h('div', { class: 'pair' }, keyType2, key2)),
  ];
  const fieldRow = h('label', null, h('span', { class: 'label-text' }, 'field'), field);
  const rawRow = h('label', null, h('span', { class: 'label-text' }, 'key (hex)'), raw);
  const layout = (): void => {
    const m = mode.value;
    fieldRow.hidden = m === 'raw key';
    for (const r of mapRows) r.hidden = m !== 'map entry';
    rawRow.hidden = m !== 'raw key';
  };
  mode.addEventListener('change', layout);
  layout();

  const keyBytes = (): Uint8Array => {
    switch (mode.value) {
      case 'raw key':
        return fromHex(raw.value.trim());
      case 'item':
        return fieldPrefix(field.value.trim());
      default: {
        const types: KeyType[] = [keyType1.value as KeyType];
        const values = [key1.value];
        if (keyType2.value !== '—') {
          types.push(keyType2.value as KeyType);
          values.push(key2.value);
        }
        return mapKey(field.value.trim(), types, values);
      }
    }
  };

  const run = async (): Promise<void> => {
    result.dataset['state'] = 'loading';
    result.dataset['verify'] = 'pending';
    fill(result, badge('wait', 'reading and verifying…'));
    button.disabled = true;
    let key: Uint8Array;
    let at: bigint | undefined;
    try {
      key = keyBytes();
      const ht = height.value.trim();
      if (ht !== '') {
        if (!/^[0-9]{1,19}$/.test(ht)) throw new Error(`height: not a number: ${ht}`);
        at = BigInt(ht);
      }
    } catch (e) {
      fill(result, errorBox(`Bad key: ${errorText(e)}`));
      result.dataset['state'] = 'error';
      result.dataset['verify'] = 'bad';
      button.disabled = false;
      return;
    }
    try {
      const genesis = await scope.ctx.genesis();
      const v = await verifiedStorage(scope.ctx.rpc, genesis, address, key, at === undefined ? {} : { height: at });
      if (!scope.alive()) return;
      let shown: HTMLElement;
      if (v.value === null) {
        shown = h('span', { class: 'muted' }, 'absent (proven not set)');
      } else if (valueType.value === 'raw' || abi === null) {
        shown = mono(toHex(v.value));
      } else {
        try {
          const decoded = abi.decodeValue(parseTypeRef(JSON.stringify(valueType.value)), v.value);
          shown = h('span', null, h('span', { class: 'mono', 'data-value': '' }, typeof decoded === 'string' ? decoded : prettyJson(decoded)), h('span', { class: 'muted' }, ` (${toHex(v.value)})`));
        } catch (e) {
          shown = h('span', null, mono(toHex(v.value)), h('span', { class: 'muted' }, ` (not a ${valueType.value}: ${errorText(e)})`));
        }
      }
      fill(
        result,
        h('p', null, badge('ok', verifiedText(v))),
        h('table', { class: 'fields' }, h('tbody', null, h('tr', null, h('th', null, 'key'), h('td', null, mono(toHex(key)))), h('tr', null, h('th', null, 'value'), h('td', null, shown)))),
      );
      result.dataset['verify'] = 'ok';
      result.dataset['state'] = 'ready';
    } catch (e) {
      if (!scope.alive()) return;
      const why = e instanceof LightClientError ? `refused: ${e.message}` : `could not read: ${errorText(e)}`;
      fill(result, h('p', null, badge('bad', `✗ ${why}`)), h('p', { class: 'muted' }, 'key ', mono(toHex(key))));
      result.dataset['verify'] = 'bad';
      result.dataset['state'] = 'error';
    } finally {
      button.disabled = false;
    }
  };

  return section(
    'Storage (verified)',
    h(
      'p',
      { class: 'section-note muted' },
      'Reads one storage key with its Merkle proof and checks it against the certified state root. Keys of the Rust SDK’s fields: an Item at [len(name)] ++ name, a Map entry at that prefix ++ the key’s order-preserving encoding.',
    ),
    h(
      'form',
      {
        class: 'storage-form',
        id: 'storage-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void run();
        },
      },
      h('label', null, h('span', { class: 'label-text' }, 'mode'), mode),
      fieldRow,
      mapRows,
      rawRow,
      h('label', null, h('span', { class: 'label-text' }, 'decode as'), valueType),
      h('label', null, h('span', { class: 'label-text' }, 'height'), height),
      h('div', { class: 'form-actions' }, button),
      result,
    ),
  );
}
