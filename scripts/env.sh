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

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# libclang for RocksDB's bindgen step, and the toolchain named by
# rust-toolchain.toml with its wasm32 target. Safe to run again.
stele_install_deps() {
  # libclang itself, not libclang-cpp (which some images ship alone and
  # bindgen cannot use).
  if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 &&
     ! ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so'; then
    step "installing clang and libclang (apt-get)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq clang libclang-dev >/dev/null
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! rustup component list --installed | grep -q '^clippy'; then
    rustup component add clippy rustfmt
  fi
}
