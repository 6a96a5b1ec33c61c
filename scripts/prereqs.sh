#!/usr/bin/env bash
# Checks (and on Debian as root, installs) what building Warren needs beyond the Rust
# toolchain: clang and libclang for RocksDB's bindings (bindgen). Sourced by scripts/run
# and scripts/test.
set -euo pipefail

warren_have_libclang() {
  command -v clang >/dev/null 2>&1 || return 1
  ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

warren_prereqs() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "warren: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
  fi
  if warren_have_libclang; then
    return 0
  fi
  local pkgs="clang libclang-dev"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "warren: installing $pkgs (needed to build RocksDB's bindings)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >&2
  else
    echo "warren: building RocksDB's bindings needs clang and libclang; install them with:" >&2
    echo "    sudo apt-get install -y $pkgs" >&2
    exit 1
  fi
}

# Keep the target directory outside the clone, so that a warm machine does not rebuild
# RocksDB (about 11 minutes on 2 cores) for every fresh checkout.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warren-target}"
