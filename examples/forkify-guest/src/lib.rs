//! Bindings to the cargo-forkify reference kernel (ABI.md §9) for the example
//! programs.
//!
//! On wasm targets every function here is a thin wrapper around one import
//! from the module `kernel`:
//!
//! | import | wasm type |
//! |---|---|
//! | `kernel_fork` | `() -> i32` (the fork import) |
//! | `kernel_exit` | `(i32) -> ()`, does not return |
//! | `kernel_waitpid` | `(i32) -> i32` |
//! | `kernel_write` | `(ptr, ptr) -> ()` (`i32` on wasm32, `i64` on wasm64) |
//! | `kernel_getpid` | `() -> i32` |
//!
//! A program is a `#![no_main]` binary whose entry point is the exported
//! function `_start: () -> ()`; [`entry!`] generates it:
//!
//! ```ignore
//! #![cfg_attr(target_family = "wasm", no_main)]
//! use forkify_guest::{fork, println, ForkResult};
//! forkify_guest::entry!(run);
//! fn run() {
//!     match fork() {
//!         Ok(ForkResult::Child) => println!("child"),
//!         Ok(ForkResult::Parent(pid)) => println!("parent of {pid}"),
//!         Err(e) => println!("fork failed: {e}"),
//!     }
//! }
//! ```
//!
//! On native Linux the same API is backed by a small simulation that uses
//! the real `fork(2)` and follows the reference kernel's schedule (the child
//! runs to completion before the parent resumes, pids count from 1). It
//! exists so the expected outputs in `expected.json` can be checked without
//! a wasm host; see the README.

#![deny(missing_docs)]

use std::fmt;

/// A process id as the reference kernel numbers them (the first process is 1).
pub type Pid = i32;

/// The outcome of a successful [`fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkResult {
    /// In the parent, with the pid of the new child.
    Parent(Pid),
    /// In the child.
    Child,
}

/// A positive error number returned by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// Not a child of the caller (returned negated by `kernel_waitpid`).
    pub const ECHILD: Errno = Errno(10);
    /// Out of memory: what `fork` reports when the save buffer is too small.
    pub const ENOMEM: Errno = Errno(12);
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Errno::ECHILD => write!(f, "ECHILD (errno 10)"),
            Errno::ENOMEM => write!(f, "ENOMEM (errno 12)"),
            Errno(n) => write!(f, "errno {n}"),
        }
    }
}

#[cfg(target_family = "wasm")]
mod sys {
    #[link(wasm_import_module = "kernel")]
    extern "C" {
        pub fn kernel_fork() -> i32;
        pub fn kernel_exit(status: i32) -> !;
        pub fn kernel_waitpid(pid: i32) -> i32;
        pub fn kernel_write(ptr: *const u8, len: usize);
        pub fn kernel_getpid() -> i32;
    }
}

#[cfg(not(target_family = "wasm"))]
mod sim;
#[cfg(not(target_family = "wasm"))]
use sim as sys;

/// Forks the calling process.
///
/// This is the only function that calls the fork import; it is never inlined,
/// so every fork in the examples goes through this one call site.
#[inline(never)]
pub fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: the import takes no arguments; the kernel (and the code the
    // instrumenter adds around this call) does the rest.
    let r = unsafe { sys::kernel_fork() };
    if r > 0 {
        Ok(ForkResult::Parent(r))
    } else if r == 0 {
        Ok(ForkResult::Child)
    } else {
        Err(Errno(r.wrapping_neg()))
    }
}

/// Ends this process with `status`.
pub fn exit(status: i32) -> ! {
    // SAFETY: no memory is passed.
    unsafe { sys::kernel_exit(status) }
}

/// Waits for the child `pid` and returns its exit status, or `-10` (ECHILD)
/// if `pid` is not a child of this process.
pub fn waitpid(pid: Pid) -> i32 {
    // SAFETY: no memory is passed.
    unsafe { sys::kernel_waitpid(pid) }
}

/// This process's pid.
pub fn getpid() -> Pid {
    // SAFETY: no memory is passed.
    unsafe { sys::kernel_getpid() }
}

/// Writes `bytes` to this process's standard output.
pub fn write(bytes: &[u8]) {
    // SAFETY: the kernel reads `len` bytes at `ptr`, which `bytes` covers.
    unsafe { sys::kernel_write(bytes.as_ptr(), bytes.len()) }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => write(s.as_bytes()),
        None => write(fmt::format(args).as_bytes()),
    }
}

/// Like `std::print!`, but writes to the kernel: exactly one `kernel_write`
/// per call.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::_print(::core::format_args!($($arg)*))
    };
}

/// Like `std::println!`, but writes to the kernel: exactly one
/// `kernel_write` per call (newline included).
#[macro_export]
macro_rules! println {
    () => {
        $crate::write(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}

/// Defines the program's entry point: on wasm the export `_start: () -> ()`
/// that calls `$main`; natively a `main` that runs `$main` under the
/// simulation. Returning from `$main` ends the process with status 0.
///
/// The program must also say `#![cfg_attr(target_family = "wasm", no_main)]`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[cfg(target_family = "wasm")]
        #[no_mangle]
        pub extern "C" fn _start() {
            $main()
        }

        #[cfg(not(target_family = "wasm"))]
        fn main() {
            $main();
            $crate::exit(0)
        }
    };
}
