#!/usr/bin/env bash
# Builds the example run functions of the given languages (default: all eight), each through
# its own build.sh, which installs its pinned toolchain when missing. Artifacts: <language>/out/.
#   examples/guests/build.sh                 # all eight
#   examples/guests/build.sh rust c python   # some
set -euo pipefail
cd "$(dirname "$0")"
languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(rust c cpp zig go assemblyscript javascript python)
for language in "${languages[@]}"; do
  if [ ! -f "$language/build.sh" ]; then
    echo "error: no guest for the language '$language' (examples/guests/$language/build.sh)" >&2
    exit 2
  fi
  start=$(date +%s%N)
  bash "$language/build.sh"
  ms=$((($(date +%s%N) - start) / 1000000))
  printf '%-15s built in %6d ms: %s\n' "$language" "$ms" \
    "$(cd "$language/out" && ls -- *.wasm | tr '\n' ' ')" >&2
done
