# Shared set-up for the scripts in this folder; source it, don't run it.

# A target dir outside the clone, so later runs reuse the build; one per
# checkout path. Cargo reuses a crate built from the same sources in another
# directory, yet `env!("CARGO_MANIFEST_DIR")` stays baked in, so a test built
# in one checkout would read (or miss) another checkout's files.
stele_checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
stele_key="$(printf '%s' "$stele_checkout" | sha256sum | cut -c1-12)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stele-targets/$stele_key}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

# Free KiB on the filesystem holding $1.
stele_free_kib() { df -Pk "$1" | awk 'NR == 2 { print $4 }'; }

# Make room before a build. A full disk does not fail cleanly: the linker
# writes its output through a memory map and dies of SIGBUS. When less than
# STELE_MIN_FREE_GIB (default 12) is free, this removes, oldest first, the
# target dirs of other checkouts under ~/.cache/stele-targets, then this
# target dir's incremental caches; it never touches anything else.
stele_ensure_disk() {
  local need_kib=$(( ${STELE_MIN_FREE_GIB:-12} * 1024 * 1024 ))
  local root="$HOME/.cache/stele-targets" dir
  mkdir -p "$CARGO_TARGET_DIR"
  [ "$(stele_free_kib "$CARGO_TARGET_DIR")" -ge "$need_kib" ] && return 0
  step "low disk: $(( $(stele_free_kib "$CARGO_TARGET_DIR") / 1024 )) MiB free, making room"
  if [ -d "$root" ]; then
    # Oldest first; names are hex digests, so word splitting is safe.
    for dir in $(ls -1dtr "$root"/*/ 2>/dev/null); do
      [ "${dir%/}" -ef "$CARGO_TARGET_DIR" ] && continue
      echo "removing $dir"
      rm -rf "$dir"
      [ "$(stele_free_kib "$CARGO_TARGET_DIR")" -ge "$need_kib" ] && return 0
    done
  fi
  for dir in "$CARGO_TARGET_DIR"/*/incremental; do
    [ -d "$dir" ] && echo "removing $dir" && rm -rf "$dir"
  done
  local left=$(( $(stele_free_kib "$CARGO_TARGET_DIR") / 1024 ))
  [ "$left" -ge $(( need_kib / 1024 )) ] ||
    echo "warning: only $left MiB free on $CARGO_TARGET_DIR; the build may fail" >&2
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# libclang for RocksDB's bindgen step, HAProxy for the load-balancer tests,
# Node.js and Chromium for the TypeScript client and the explorer, and the
# toolchain named by rust-toolchain.toml with its wasm32 target.
# Safe to run again.
stele_install_deps() {
  # libclang itself, not libclang-cpp (which some images ship alone and
  # bindgen cannot use).
  if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 &&
     ! ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so'; then
    step "installing clang and libclang (apt-get)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq clang libclang-dev >/dev/null
  fi
  # HAProxy for the load-balancer tests (docs/haproxy.cfg). Debian puts it
  # in /usr/sbin, which a non-root PATH may lack.
  if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    step "installing haproxy (apt-get)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq haproxy >/dev/null
  fi
  # Node.js and npm for the TypeScript client (sdk/ts); its packages come
  # from the npm registry (`npm ci`, pinned by package-lock.json).
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "installing nodejs and npm (apt-get)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  # Debian's Chromium for the block explorer's browser test
  # (sdk/ts/explorer/test/browser.mjs drives it; nothing downloads a
  # browser of its own).
  if [ ! -x /usr/bin/chromium ]; then
    step "installing chromium (apt-get)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! rustup component list --installed | grep -q '^clippy'; then
    rustup component add clippy rustfmt
  fi
}
