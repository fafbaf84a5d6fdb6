#!/usr/bin/env bash
# Builds the C run function two ways, into out/:
#   ackley.wasm          objective run function (wasmeval.h; componentized by wasmeval at load)
#   ackley-command.wasm  WASI preview1 command (configuration on stdin, objective on stdout)
# Toolchain: Debian's clang 14, lld and wasi-libc (installed when missing).
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_apt clang lld wasi-libc libclang-rt-14-dev-wasm32
mkdir -p out
if ! up_to_date out/ackley.wasm ackley.c build.sh "$SDK_INCLUDE"; then
  clang --target=wasm32-wasi --sysroot=/usr -O2 -s -mexec-model=reactor -I"$SDK_INCLUDE" \
    -o out/ackley.wasm ackley.c -lm
fi
if ! up_to_date out/ackley-command.wasm ackley.c build.sh; then
  clang --target=wasm32-wasi --sysroot=/usr -O2 -s -DWASMEVAL_COMMAND \
    -o out/ackley-command.wasm ackley.c -lm
fi
