//! The `wasmeval` command; see `wasmeval --help`.

fn main() {
    std::process::exit(wasmeval::cli::main());
}
