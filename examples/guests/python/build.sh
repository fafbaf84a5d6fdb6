#!/usr/bin/env bash
# Builds the Python run function two ways, into out/:
#   ackley.wasm          objective component (app.py, wasmeval's `objective` world)
#   ackley-command.wasm  WASI command component (command.py, the `wasi:cli/command` world)
# Toolchain: componentize-py from PyPI (pinned; it bundles CPython built for WebAssembly).
# The WASI WIT files come from the wasmtime-wasi crate wasmeval builds with (crates.io).
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_pip componentize-py==0.25.1
mkdir -p out
if ! up_to_date out/ackley.wasm app.py objective.py "$WIT_DIR" build.sh; then
  "$VENV/bin/componentize-py" -q -d "$WIT_DIR" -w objective componentize app -o out/ackley.wasm
fi
if ! up_to_date out/ackley-command.wasm command.py objective.py build.sh; then
  wasi_wit="$(wasmtime_wasi_wit)"
  "$VENV/bin/componentize-py" -q -d "$wasi_wit" -w wasi:cli/command@0.2.12 \
    componentize command -o out/ackley-command.wasm
fi
