//! The documented exit codes of `cargo forkify`. Every expected failure maps
//! to exactly one of these in `errors.rs`; anything unexpected exits with
//! [`UNEXPECTED`].

/// Success.
pub const OK: i32 = 0;
/// An unexpected failure: I/O errors, bugs.
pub const UNEXPECTED: i32 = 1;
/// The command line could not be parsed (clap's own code).
pub const USAGE: i32 = 2;
/// A module could not be instrumented or inspected.
pub const INSTRUMENT_FAILED: i32 = 3;
/// An artifact does not match the fork ABI (`check`, or `run` refusing it).
pub const ABI_MISMATCH: i32 = 4;
/// `run`: the guest's first process did not exit with status 0.
pub const GUEST_FAILED: i32 = 5;

/// The "Exit status" paragraph of the help texts.
pub const HELP: &str = "\
Exit status:
  0  success
  1  unexpected failure (I/O error, bug)
  2  usage error
  3  instrumentation failed
  4  ABI mismatch or check failure
  5  the guest program failed (run)";
