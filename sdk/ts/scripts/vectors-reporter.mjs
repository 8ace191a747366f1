// A node:test reporter that prints, once the run ends, how many of the
// vectors Rust wrote to fixtures/ each test file matched: the counts the
// conformance tests report with `t.diagnostic` (the dot reporter, which
// `npm test` also runs, hides them). One line per file; nothing else.

import { basename } from 'node:path';

/** @param {AsyncIterable<{ type: string, data: { file?: string, message?: string } }>} source */
export default async function* vectorsReporter(source) {
  /** @type {Map<string, string[]>} */
  const byFile = new Map();
  for await (const event of source) {
    if (event.type !== 'test:diagnostic' || event.data.file === undefined) continue;
    const message = event.data.message ?? '';
    // The runner's own totals (tests 12, pass 12, ...) have no file; the
    // devnet test's diagnostics are not about vectors.
    if (!/\b(matched|refused|decrypted|wrote|verified|found|ABIs|modules read)\b/.test(message)) continue;
    const file = basename(event.data.file).replace(/\.test\.js$/, '');
    if (file === 'devnet') continue;
    const list = byFile.get(file) ?? [];
    list.push(message);
    byFile.set(file, list);
  }
  if (byFile.size === 0) return;
  yield 'Rust vectors (fixtures/*.json) checked:\n';
  for (const [file, messages] of [...byFile].sort(([a], [b]) => a.localeCompare(b))) {
    yield `  ${file}: ${messages.join('; ')}\n`;
  }
}
