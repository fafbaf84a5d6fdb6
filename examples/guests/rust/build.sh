#!/usr/bin/env bash
# Builds the Rust run functions (the whole workspace) and copies the Ackley ones into out/:
#   ackley.wasm          objective component (ackley/, wasm32-wasip2, the wasmeval-guest SDK)
#   ackley-wasip1.wasm   the same source for wasm32-wasip1: a core module carrying component type
#                        information (wit-bindgen's), componentized by wasmeval at load
#   ackley-command.wasm  WASI preview1 command (ackley-command/, stdin to stdout)
# Toolchain: rustup's wasm32-wasip1 and wasm32-wasip2 targets; crates from crates.io.
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1
cargo build --quiet --release --target wasm32-wasip2
cargo build --quiet --release --target wasm32-wasip1 -p ackley -p ackley-command -p command
mkdir -p out
cp target/wasm32-wasip2/release/ackley.wasm out/ackley.wasm
cp target/wasm32-wasip1/release/ackley.wasm out/ackley-wasip1.wasm
cp target/wasm32-wasip1/release/ackley-command.wasm out/ackley-command.wasm
