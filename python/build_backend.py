"""The package's PEP 517 backend: maturin's, after it builds the `wasmeval` worker binary
that the package ships (inside Python the current executable is `python`, so the library's
worker processes need this binary). Both builds share the repository's `target/` directory,
so the dependencies are compiled once for the command, the tests and the package."""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import maturin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BINARY = HERE / "wasmeval" / "bin" / "wasmeval"


def _check_platform():
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(
            f"wasmeval's Python package is built for Linux x86_64 only, not {sys.platform} "
            f"{platform.machine()}"
        )


def _build_worker():
    _check_platform()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    os.environ["CARGO_TARGET_DIR"] = str(target)
    cargo = os.environ.get("CARGO", "cargo")
    command = [cargo, "build", "--release", "--locked", "--bin", "wasmeval",
               "--manifest-path", str(ROOT / "Cargo.toml")]
    try:
        subprocess.run(command, check=True)
    except FileNotFoundError:
        raise RuntimeError("building wasmeval needs cargo (https://rustup.rs) on the PATH") from None
    BINARY.parent.mkdir(exist_ok=True)
    shutil.copy2(target / "release" / "wasmeval", BINARY)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_worker()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_worker()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    raise RuntimeError(
        "wasmeval's Python package is built from a clone of the repository (pip install "
        "./python): its worker binary is built from the crate beside it"
    )


get_requires_for_build_wheel = maturin.get_requires_for_build_wheel
get_requires_for_build_editable = maturin.get_requires_for_build_editable
prepare_metadata_for_build_wheel = maturin.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = maturin.prepare_metadata_for_build_editable
