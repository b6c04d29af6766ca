//! The `cargo-forkify` binary: run as `cargo forkify …` (cargo passes
//! `forkify` as the first argument) or as `cargo-forkify forkify …`. All the
//! work is in the library; this only turns its result into an exit code.

fn main() {
    std::process::exit(cargo_forkify::main_impl());
}
