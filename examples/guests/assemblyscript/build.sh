#!/usr/bin/env bash
# Builds the AssemblyScript run function two ways, into out/:
#   ackley.wasm          objective run function (assembly/ackley.ts: the canonical-ABI `run` by
#                        hand, stub runtime, no WASI; componentized by wasmeval at load)
#   ackley-command.wasm  WASI preview1 command (assembly/command.ts, @assemblyscript/wasi-shim)
# Toolchain: assemblyscript and @assemblyscript/wasi-shim from npm, pinned in package-lock.json.
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_npm
mkdir -p out
if ! up_to_date out/ackley.wasm assembly package-lock.json build.sh; then
  npx asc assembly/ackley.ts -O3 --runtime stub --use abort= --noAssert -o out/ackley.wasm
fi
if ! up_to_date out/ackley-command.wasm assembly package-lock.json build.sh; then
  npx asc assembly/command.ts -O3 \
    --config node_modules/@assemblyscript/wasi-shim/asconfig.json -o out/ackley-command.wasm
fi
