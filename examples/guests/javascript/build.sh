#!/usr/bin/env bash
# Builds the JavaScript run function into out/ackley.wasm: an objective component (ackley.js,
# wasmeval's `objective` world) with the QuickJS engine inside.
# Toolchain: componentize-qjs from npm, pinned in package-lock.json (it works offline).
# No WASI command: no JavaScript-to-core-module compiler (Javy) is on the registries reachable
# here, and the component already runs anywhere wasmeval does.
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_npm
mkdir -p out
if ! up_to_date out/ackley.wasm ackley.js "$WIT_DIR" package-lock.json build.sh; then
  npx componentize-qjs --wit "$WIT_DIR" --js ackley.js -n objective --sync --opt-size \
    --stub-wasi -o out/ackley.wasm >/dev/null
fi
