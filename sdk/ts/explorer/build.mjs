// Builds the block explorer's script into explorer/static/explorer.js, one
// minified ES module with the package's code and @noble/* bundled by
// esbuild, beside the page and its style (static/index.html and
// static/explorer.css, written by hand). The node embeds these three
// files, so the build is deterministic: no timestamps, no absolute
// paths, no source map, license comments gathered at the end.
//
//   node explorer/build.mjs            write explorer/static
//   node explorer/build.mjs --out DIR  write DIR instead
//   node explorer/build.mjs --check    build into a temp folder and fail
//                                      if explorer/static differs from it

import { build } from 'esbuild';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const committed = join(here, 'static');
/** What the folder holds: the two written by hand, and the build's. */
const FILES = ['index.html', 'explorer.css', 'explorer.js'];
const BUILT = 'explorer.js';

async function buildInto(out) {
  mkdirSync(out, { recursive: true });
  const result = await build({
    absWorkingDir: pkg,
    entryPoints: ['explorer/src/main.ts'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    charset: 'utf8',
    legalComments: 'eof',
    sourcemap: false,
    treeShaking: true,
    write: false,
    outfile: join(out, 'explorer.js'),
    logLevel: 'warning',
  });
  const [js] = result.outputFiles;
  writeFileSync(join(out, BUILT), js.contents);
  return js.contents.length;
}

const args = process.argv.slice(2);
if (args[0] === '--check') {
  const tmp = mkdtempSync(join(tmpdir(), 'stele-explorer-'));
  try {
    await buildInto(tmp);
    let stale = [];
    try {
      if (!readFileSync(join(committed, BUILT)).equals(readFileSync(join(tmp, BUILT)))) stale = [BUILT];
    } catch {
      stale = [BUILT];
    }
    const missing = FILES.filter((f) => {
      try {
        readFileSync(join(committed, f));
        return false;
      } catch {
        return true;
      }
    });
    let extra = [];
    try {
      extra = readdirSync(committed).filter((f) => !FILES.includes(f));
    } catch {
      // a missing folder is reported through the missing files
    }
    if (stale.length > 0 || missing.length > 0 || extra.length > 0) {
      const what = [
        ...stale.map((f) => `${f} differs from a fresh build`),
        ...missing.map((f) => `${f} is missing`),
        ...extra.map((f) => `${f} should not be there`),
      ];
      console.error(`explorer/static is out of date (${what.join('; ')}): run npm run build:explorer`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  const out = args[0] === '--out' && args[1] !== undefined ? resolve(args[1]) : committed;
  const bytes = await buildInto(out);
  console.log(`explorer: ${out} (explorer.js ${bytes} bytes)`);
}
