//! The documented exit codes of `cargo forkify`. Every expected failure maps
//! to exactly one of these in `errors.rs`; anything unexpected exits with
//! [`UNEXPECTED`]. When cargo itself fails (`cargo metadata` or `cargo
//! build`), its own exit code is passed through (usually 101).

/// Success.
pub const OK: i32 = 0;
/// An unexpected failure: I/O errors, bugs.
pub const UNEXPECTED: i32 = 1;
/// The command line or the configuration is wrong: bad flags, a wrong type
/// in `[*.metadata.forkify]`, a target that is not WebAssembly, nothing to
/// build.
pub const USAGE: i32 = 2;
/// A module could not be instrumented or inspected.
pub const INSTRUMENT_FAILED: i32 = 3;
/// An ABI mismatch: the project's pinned `abi` differs from the tool's, an
/// artifact fails `check` or the check of a fresh output, `run` refuses it.
pub const ABI_MISMATCH: i32 = 4;
/// `run`: the guest's first process did not exit with status 0.
pub const GUEST_FAILED: i32 = 5;
/// The toolchain cannot build the target: a tier-3 target on a stable
/// toolchain, or a missing target that rustup cannot (or is not there to)
/// install.
pub const TOOLCHAIN: i32 = 6;
/// What cargo exits with when a build fails; passed through as is.
pub const CARGO_BUILD_FAILED: i32 = 101;

/// The "Exit status" paragraph of the help texts.
pub const HELP: &str = "\
Exit status:
  0    success
  1    unexpected failure (I/O error, bug)
  2    usage or configuration error
  3    instrumentation failed
  4    ABI mismatch or check failure
  5    the guest program failed (run)
  6    the toolchain cannot build the target
  101  (or cargo's own code) cargo failed";
