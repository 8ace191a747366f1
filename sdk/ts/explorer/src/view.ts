/**
 * What a view is given: a container to render into, the shared context,
 * and whether it is still the page shown (a view's awaits may outlive it).
 *
 * @module
 */

import type { Context } from './context.js';

export interface Scope {
  readonly root: HTMLElement;
  readonly ctx: Context;
  /** False once the user navigated elsewhere: stop rendering. */
  alive(): boolean;
  /** Runs `fn` when the view is left (unsubscribe, stop timers). */
  onLeave(fn: () => void): void;
  /** Renders the view again (e.g. when a pending transaction commits). */
  reload(): void;
}

/**
 * Renders a view into `scope.root`; resolves when it is complete (then the
 * page is marked ready), throws when it cannot be shown (then the error is).
 */
export type View = (scope: Scope, arg: string) => Promise<void>;

/** A failure to show the user as is (no stack, no class name). */
export class ViewError extends Error {
  override readonly name = 'ViewError';
}

/** Runs `fn` over `items`, at most `limit` at a time; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
