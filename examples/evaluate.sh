#!/usr/bin/env bash
# The main job on the bundled example: build the Ackley run function (Rust, a wasm32-wasip2
# component) and the wasmeval command (release), then evaluate the run function over
# examples/configs/ackley.jsonl, writing results.csv.
# Extra arguments go to `wasmeval run` (for example --workers 1 or --output results.jsonl).
# The command it builds stays in target/release/wasmeval; `cargo install --path . --locked`
# then copies this same build to ~/.cargo/bin without compiling it again.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
echo "building the Ackley guest, then the wasmeval command (release): the first build takes" \
  "several minutes (cargo shows its progress); later ones take seconds" >&2
(cd examples/guests/rust && cargo build --release --target wasm32-wasip2 -p ackley)
cargo build --release --locked --bin wasmeval
target/release/wasmeval run \
  examples/guests/rust/target/wasm32-wasip2/release/ackley.wasm \
  --input examples/configs/ackley.jsonl \
  --output results.csv \
  --timeout 10s --memory 64MiB "$@"
echo "results written to results.csv"
