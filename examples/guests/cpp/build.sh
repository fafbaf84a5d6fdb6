#!/usr/bin/env bash
# Builds the C++ run function two ways, into out/:
#   ackley.wasm          objective run function (wasmeval.h; componentized by wasmeval at load)
#   ackley-command.wasm  WASI preview1 command (configuration on stdin, objective on stdout)
# Toolchain: Debian's clang++ 14, lld, wasi-libc and libc++ for wasm32 (installed when missing).
# -fno-exceptions: clang 14's wasm32-wasi target has no exception handling.
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_apt clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
mkdir -p out
flags=(--target=wasm32-wasi --sysroot=/usr -O2 -s -fno-exceptions -std=c++17)
if ! up_to_date out/ackley.wasm ackley.cpp build.sh "$SDK_INCLUDE"; then
  clang++ "${flags[@]}" -mexec-model=reactor -I"$SDK_INCLUDE" -o out/ackley.wasm ackley.cpp
fi
if ! up_to_date out/ackley-command.wasm ackley.cpp build.sh; then
  clang++ "${flags[@]}" -DWASMEVAL_COMMAND -o out/ackley-command.wasm ackley.cpp
fi
