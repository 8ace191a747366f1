#!/usr/bin/env bash
# Runs the TypeScript client's tests against a real devnet: builds the
# `stele` CLI of this repository (debug), starts `stele devnet` (four
# validators, with the example token and counter deployed) on free loopback
# ports with a throwaway home and chain folder, exports STELE_DEVNET_RPC
# (validator 0's http URL), STELE_DEVNET_KEY (the secret key of dev0, a
# funded dev account holding the token's supply, read back with `stele keys
# export dev0 --private`), STELE_DEVNET_TOKEN (the token's address),
# STELE_DEVNET_GENESIS (the genesis file) and STELE_DEVNET_COUNTER_WASM (the
# example counter as the devnet built it, for the test to deploy), then
# runs, and stops the devnet:
#
# 1. `node --test dist/test/devnet.test.js`;
# 2. the dApp of docs/typescript.md ("A dApp in 30 lines", extracted from
#    the doc) in a fresh project that installs the package from its
#    `npm pack` tarball: it must print a verified balance, the committed
#    transfer and its event;
# 3. the block explorer the devnet serves at /explorer/, driven in Debian's
#    Chromium (sdk/ts/explorer/test/browser.mjs), which writes screenshots
#    to STELE_SCREENSHOTS_DIR (default: a folder in the devnet's state
#    folder; docs/explorer/ holds the committed ones).
#
# The test also stops and restarts the devnet once (same ports, same chain)
# through STELE_DEVNET_RESTART, which calls this script as
# `devnet-test.sh restart <state folder>`, to follow a subscription across it.
#
# Environment:
#   STELE_BIN           a `stele` binary to use instead of building one
#   STELE_VALIDATORS    validators to run (default 4)
#   STELE_KEEP          1: keep the devnet's folder (logs) after the run
#   STELE_NO_RESTART    1: skip the restart part of the test
#   STELE_NO_BROWSER    1: skip the explorer's browser test
#   STELE_SCREENSHOTS_DIR  where the browser test writes its screenshots
#
# Usage: sdk/ts/scripts/devnet-test.sh

set -euo pipefail

ts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
repo="$(cd "$ts_dir/../.." && pwd -P)"
self="$ts_dir/scripts/$(basename "${BASH_SOURCE[0]}")"

# How long the devnet may take to report that it is ready.
READY_TIMEOUT_S=120

say() { printf '== %s\n' "$*" >&2; }

# A base port whose 2n ports are free for both UDP (QUIC) and TCP (RPC).
free_base() {
  local n="$1"
  node -e '
    const dgram = require("node:dgram"), net = require("node:net");
    const n = Number(process.argv[1]);
    const tcp = (p) => new Promise((ok) => { const s = net.createServer(); s.once("error", () => ok(false)); s.listen(p, "127.0.0.1", () => s.close(() => ok(true))); });
    const udp = (p) => new Promise((ok) => { const s = dgram.createSocket("udp4"); s.once("error", () => ok(false)); s.bind(p, "127.0.0.1", () => s.close(() => ok(true))); });
    (async () => {
      for (let i = 0; i < 200; i++) {
        const base = 20000 + Math.floor(Math.random() * 30000);
        let free = true;
        for (let p = base; p < base + 2 * n && free; p++) free = (await tcp(p)) && (await udp(p));
        if (free) { console.log(base); return; }
      }
      process.exit(1);
    })();
  ' "$n"
}

# Starts the devnet described by the state folder $1 (in the background,
# its pid in $1/pid) and waits until it reports ready in $1/ready.json.
start_devnet() {
  local state="$1"
  local bin base validators
  bin="$(cat "$state/bin")"
  base="$(cat "$state/base")"
  validators="$(cat "$state/validators")"
  : >"$state/ready.json"
  local extra=()
  # The examples are deployed once, at the first start.
  [ -f "$state/deployed" ] || extra=(--deploy-examples)
  STELE_HOME="$state/home" "$bin" --json devnet --validators "$validators" --base-port "$base" \
    --dir "$state/net" "${extra[@]}" >"$state/ready.json" 2>>"$state/devnet.err" </dev/null &
  echo $! >"$state/pid"
  local waited=0
  until node -e 'JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"))' "$state/ready.json" 2>/dev/null; do
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      say "the devnet exited before it was ready; its log:"
      tail -n 40 "$state/devnet.err" "$state/net/devnet.log" 2>/dev/null >&2 || true
      return 1
    fi
    if [ "$waited" -ge $((READY_TIMEOUT_S * 10)) ]; then
      say "the devnet was not ready within ${READY_TIMEOUT_S}s"
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  : >"$state/deployed"
}

# Stops the devnet of the state folder $1 with SIGTERM (a clean shutdown),
# then SIGKILL after 30 s.
stop_devnet() {
  local state="$1" pid i
  [ -f "$state/pid" ] || return 0
  pid="$(cat "$state/pid")"
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "the devnet did not stop on SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# `devnet-test.sh restart <state>`: what STELE_DEVNET_RESTART runs.
if [ "${1:-}" = restart ]; then
  state="$2"
  stop_devnet "$state"
  start_devnet "$state"
  exit 0
fi

# The CLI.
if [ -n "${STELE_BIN:-}" ]; then
  bin="$STELE_BIN"
else
  # shellcheck source=../../../scripts/env.sh
  source "$repo/scripts/env.sh"
  say "building the stele CLI (debug)"
  (cd "$repo" && cargo build -p stele-cli)
  bin="$CARGO_TARGET_DIR/debug/stele"
fi
[ -x "$bin" ] || { say "no stele binary at $bin"; exit 1; }

state="$(mktemp -d "${TMPDIR:-/tmp}/stele-ts-devnet.XXXXXX")"
cleanup() {
  local rc=$?
  stop_devnet "$state"
  if [ "${STELE_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    say "devnet folder kept: $state"
  else
    rm -rf "$state"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

validators="${STELE_VALIDATORS:-4}"
echo "$bin" >"$state/bin"
echo "$validators" >"$state/validators"
free_base "$validators" >"$state/base"
say "starting a devnet of $validators validators on ports $(cat "$state/base") and up ($state)"
start_devnet "$state"

ready="$state/ready.json"
rpc="$(node -e 'console.log(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).rpc)' "$ready")"
key="$(STELE_HOME="$state/home" "$bin" --json keys export dev0 --private </dev/null |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).secret_key))')"
say "devnet ready: $rpc, height $(node -e 'console.log(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).height)' "$ready")"

# Build the TypeScript (without cleaning dist/, which other runs may be reading).
cd "$ts_dir"
[ -d node_modules ] || npm ci
npx tsc -p tsconfig.json
npx tsc -p test/tsconfig.json

token="$(node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(r.examples.find((e) => e.name === "token").address);
' "$ready")"

export STELE_DEVNET_RPC="$rpc"
export STELE_DEVNET_KEY="$key"
export STELE_DEVNET_TOKEN="$token"
export STELE_DEVNET_GENESIS="$state/net/node0/genesis.json"
# The counter the devnet built for its examples, for the test to deploy.
export STELE_DEVNET_COUNTER_WASM="${STELE_CONTRACTS_TARGET_DIR:-$HOME/.cache/stele-contracts-target}/stele/counter.wasm"
if [ "${STELE_NO_RESTART:-0}" != 1 ]; then
  export STELE_DEVNET_RESTART="'$self' restart '$state'"
fi
say "node --test dist/test/devnet.test.js"
node --test --test-reporter=spec dist/test/devnet.test.js

say "the dApp of docs/typescript.md, from the package's npm pack tarball"
"$ts_dir/scripts/doc-dapp-test.sh" "$state/dapp"

if [ "${STELE_NO_BROWSER:-0}" != 1 ]; then
  say "the explorer at $rpc/explorer/ in Chromium"
  STELE_SCREENSHOTS_DIR="${STELE_SCREENSHOTS_DIR:-$state/screenshots}" node explorer/test/browser.mjs
fi
