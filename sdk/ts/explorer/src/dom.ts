/**
 * A few DOM helpers: elements built in code (no HTML strings, so nothing a
 * node answers is ever parsed as markup), and the badges and messages every
 * view uses.
 *
 * @module
 */

export type Child = Node | string | null | undefined | false | readonly Child[];

type Handler = (event: Event) => void;

/** Attributes set with `setAttribute`; `on*` keys take event handlers. */
export type Attrs = Readonly<Record<string, string | number | boolean | Handler | null | undefined>>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child as readonly Child[]) append(parent, c);
  } else if (typeof child === 'string') {
    parent.appendChild(document.createTextNode(child));
  } else {
    parent.appendChild(child as Node);
  }
}

/** `<tag attrs>children</tag>`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs !== null) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A message of what went wrong, in red. */
export function errorBox(message: string): HTMLElement {
  return h('div', { class: 'error', role: 'alert' }, message);
}

/** The message of anything thrown. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** A status badge: `ok` green, `bad` red, `wait` grey. */
export function badge(kind: 'ok' | 'bad' | 'wait' | 'warn', text: string): HTMLElement {
  return h('span', { class: `badge badge-${kind}`, 'data-badge': kind }, text);
}

/** A two-column table of label and value rows (rows whose value is `null` are left out). */
export function fields(rows: readonly (readonly [string, Child] | null)[]): HTMLElement {
  return h(
    'table',
    { class: 'fields' },
    h(
      'tbody',
      null,
      rows.map((r) => (r === null ? null : h('tr', null, h('th', { scope: 'row' }, r[0]), h('td', null, r[1])))),
    ),
  );
}

/** A card with a title. */
export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}
