//! The `wasmeval` command; see `wasmeval --help`. It is also the worker binary.

fn main() {
    wasmeval::worker::init();
    std::process::exit(wasmeval::cli::main());
}
