# Shared by the guests' build.sh scripts (sourced, not run): install pinned toolchains from the
# registries (Debian, PyPI, npm, crates.io, rustup) and skip builds that are up to date.
#
# Python tools go into one virtual environment, $WASMEVAL_TOOLCHAINS/venv (default
# examples/guests/.toolchains/venv); npm tools into each guest's own node_modules.
set -euo pipefail

GUESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SDK_INCLUDE="$GUESTS/../../guest-sdk/include"
WIT_DIR="$GUESTS/../../wit"
TOOLCHAINS="${WASMEVAL_TOOLCHAINS:-$GUESTS/.toolchains}"
VENV="$TOOLCHAINS/venv"

# Installs Debian packages that are missing (with sudo when not root).
need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Installs pinned PyPI packages (name==version) into the shared virtual environment.
need_pip() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local missing=()
  for spec in "$@"; do
    "$VENV/bin/pip" show "${spec%%==*}" 2>/dev/null | grep -x "Version: ${spec##*==}" >/dev/null \
      || missing+=("$spec")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing from PyPI: ${missing[*]}" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
}

# Installs the npm packages pinned in this guest's package-lock.json.
need_npm() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "installing npm packages of $(basename "$PWD")" >&2
    npm ci --silent --no-audit --no-fund
    touch node_modules
  fi
}

# True when the file $1 exists and is newer than every other argument (files or folders).
up_to_date() {
  local out="$1"
  shift
  [ -f "$out" ] || return 1
  [ -z "$(find "$@" -newer "$out" -type f -print -quit 2>/dev/null)" ]
}

# The WASI 0.2 WIT files of the wasmtime-wasi crate wasmeval builds with (from crates.io).
wasmtime_wasi_wit() {
  cargo metadata --format-version 1 --manifest-path "$GUESTS/../../Cargo.toml" \
    | python3 -c 'import json, os, sys
pkg = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "wasmtime-wasi")
print(os.path.join(os.path.dirname(pkg["manifest_path"]), "src", "p2", "wit"))'
}
