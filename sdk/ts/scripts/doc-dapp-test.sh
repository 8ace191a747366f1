#!/usr/bin/env bash
# Runs the dApp of docs/typescript.md ("A dApp in 30 lines") the way a
# reader would: the code block is taken from the doc as written, into a
# fresh project (folder $1) that installs the package from the tarball
# `npm pack` makes of sdk/ts, compiled with the package's TypeScript and
# run against the devnet that devnet-test.sh started (STELE_DEVNET_RPC,
# STELE_DEVNET_KEY, STELE_DEVNET_TOKEN, STELE_DEVNET_GENESIS). It must
# print a balance verified by a quorum of validators, the committed
# transfer and the transfer's Transfer event, within two minutes.
#
# Usage: sdk/ts/scripts/doc-dapp-test.sh FOLDER   (sdk/ts's dist/ built)

set -euo pipefail

ts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
repo="$(cd "$ts_dir/../.." && pwd -P)"
work="$1"
: "${STELE_DEVNET_RPC:?} ${STELE_DEVNET_KEY:?} ${STELE_DEVNET_TOKEN:?} ${STELE_DEVNET_GENESIS:?}"

fail() { printf 'doc dApp: %s\n' "$*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
tarball="$(cd "$ts_dir" && npm pack --silent --pack-destination "$work" | tail -n 1)"
[ -f "$work/$tarball" ] || fail "npm pack wrote no tarball ($tarball)"

# The example's code block, and its length without comments and blank lines.
node - "$repo/docs/typescript.md" "$work/app.ts" <<'JS'
const fs = require('node:fs');
const [doc, out] = process.argv.slice(2);
const text = fs.readFileSync(doc, 'utf8');
const section = text.split('\n## A dApp in 30 lines\n')[1];
const block = section && /```ts\n([\s\S]*?)\n```/.exec(section);
if (!block) { console.error('docs/typescript.md has no ts block under "A dApp in 30 lines"'); process.exit(1); }
const lines = block[1].split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('//'));
if (lines.length > 30) { console.error(`the doc's dApp has ${lines.length} lines of code, not 30 or fewer`); process.exit(1); }
fs.writeFileSync(out, block[1] + '\n');
JS

# Versions of the Node.js-only companions, as the package's own lock has them.
version() {
  node -e 'const l = require(process.argv[1]); console.log(l.packages["node_modules/" + process.argv[2]].version)' \
    "$ts_dir/package-lock.json" "$1"
}
cd "$work"
cat >package.json <<'JSON'
{ "name": "stele-doc-dapp", "private": true, "type": "module" }
JSON
cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "es2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "types": ["node"],
    "outDir": "dist"
  },
  "files": ["app.ts"]
}
JSON
npm install --no-audit --no-fund --loglevel=error "./$tarball" \
  "ws@$(version ws)" "@types/ws@$(version @types/ws)" "@types/node@$(version @types/node)" >/dev/null
"$ts_dir/node_modules/.bin/tsc" -p tsconfig.json || fail "the doc's dApp does not compile against the packed package"

STELE_RPC="$STELE_DEVNET_RPC" STELE_SECRET_KEY="$STELE_DEVNET_KEY" STELE_TOKEN="$STELE_DEVNET_TOKEN" \
  STELE_GENESIS="$STELE_DEVNET_GENESIS" timeout 120 node dist/app.js >out.txt 2>&1 ||
  { cat out.txt >&2; fail "the doc's dApp failed or did not finish within 120 s"; }
grep -Eq '^balance [0-9]+: verified by [0-9]+ of [0-9]+ validators at height [0-9]+$' out.txt ||
  { cat out.txt >&2; fail "no verified balance"; }
grep -Eq '^transfer committed in block [0-9]+' out.txt || { cat out.txt >&2; fail "no committed transfer"; }
grep -Eq '^event Transfer ' out.txt || { cat out.txt >&2; fail "no Transfer event"; }
