#!/usr/bin/env bash
# Builds the Zig run function two ways, into out/:
#   ackley.wasm          objective run function (guest-sdk/zig/wasmeval.zig; wasm32-freestanding,
#                        no WASI at all; componentized by wasmeval at load)
#   ackley-command.wasm  WASI preview1 command (configuration on stdin, objective on stdout)
# Toolchain: Zig from PyPI (ziglang==0.17.1, pinned: Zig's std API changes every release).
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_pip ziglang==0.17.1
zig() { "$VENV/bin/python" -m ziglang "$@"; }
mkdir -p out
if ! up_to_date out/ackley.wasm ackley.zig objective.zig build.sh "$SDK_INCLUDE/../zig"; then
  zig build-exe -target wasm32-freestanding -O ReleaseSmall -fno-entry -rdynamic \
    --dep wasmeval -Mroot=ackley.zig -Mwasmeval="$SDK_INCLUDE/../zig/wasmeval.zig" \
    -femit-bin=out/ackley.wasm
fi
if ! up_to_date out/ackley-command.wasm command.zig objective.zig build.sh; then
  zig build-exe -target wasm32-wasi -O ReleaseSmall command.zig -femit-bin=out/ackley-command.wasm
fi
rm -f out/*.o
