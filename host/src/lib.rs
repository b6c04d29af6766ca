//! `forkify-host`: runs WebAssembly modules instrumented by `cargo forkify`
//! on wasmtime and really forks them (fork ABI 1; the normative text is
//! `ABI.md` of the `forkify-abi` crate).
//!
//! A [`Host`] checks a module against the ABI before anything is
//! instantiated, compiles it once and links three kinds of imports: the
//! kernel's (a [`Kernel`]: the [`ReferenceKernel`] of ABI §9, or your own),
//! the fork imports the module's `forkify.abi` section names (the host's:
//! ABI §6), and any you add to its [`Host::linker`]. At a fork the child (a
//! fresh instance with a copy of the parent's memory) runs to completion
//! first, then the parent resumes; pids start at 1.
//!
//! # Embedding
//!
//! ```
//! use forkify_host::{Host, Process, ReferenceKernel};
//! use wasmtime::Caller;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A program that forks, writes from both processes, and asks the
//! // embedder for a number through an import of its own.
//! let program = wat::parse_str(r#"(module
//!   (import "kernel" "kernel_fork" (func $fork (result i32)))
//!   (import "kernel" "kernel_write" (func $write (param i32 i32)))
//!   (import "kernel" "kernel_exit" (func $exit (param i32)))
//!   (import "env" "lucky" (func $lucky (result i32)))
//!   (memory (export "memory") 1)
//!   (data (i32.const 0) "parent\nchild\n")
//!   (func (export "_start")
//!     (if (i32.eqz (call $fork))
//!       (then (call $write (i32.const 7) (i32.const 6)))
//!       (else (call $write (i32.const 0) (i32.const 7))))
//!     (call $exit (call $lucky))))"#)?;
//! // Instrument it (what `cargo forkify build` does to your artifacts).
//! let wasm = forkify_instrument::instrument(&program, &Default::default())?.bytes;
//!
//! let mut host = Host::<ReferenceKernel>::new(&wasm)?.buffer_size(64 << 10);
//! // An import the kernel does not provide: each process exits with 40 + its pid.
//! host.linker().func_wrap("env", "lucky", |caller: Caller<'_, Process<ReferenceKernel>>| {
//!     40 + caller.data().pid()
//! })?;
//! // Stream the output as it is written.
//! let (tx, rx) = std::sync::mpsc::channel();
//! let kernel = ReferenceKernel::default().with_output(move |pid, bytes| {
//!     let _ = tx.send(format!("[{pid}] {}", String::from_utf8_lossy(bytes)));
//! });
//!
//! let report = host.run(kernel)?.report();
//! assert_eq!(rx.try_iter().collect::<String>(), "[2] child\n[1] parent\n");
//! assert_eq!(report.render(), "[2] child\n[1] parent\n");
//! assert_eq!(report.process(1).unwrap().status, forkify_host::ExitStatus::Exited(41));
//! assert_eq!(report.process(2).unwrap().status, forkify_host::ExitStatus::Exited(42));
//! # Ok(())
//! # }
//! ```
//!
//! A kernel of your own implements [`Kernel`]: it numbers processes, may
//! refuse a fork, learns how each process ended and adds its imports; an
//! `exit` import ends its process by returning [`ProcessExit`]. To drive
//! the fork protocol yourself on any wasmtime store, use [`Controls`].

#![deny(missing_docs)]

mod controls;
mod error;
mod fork;
mod kernel;
mod plan;
mod process;
mod reference;
mod runner;

pub use controls::{write_end, Controls};
pub use error::Error;
pub use kernel::{errno, ExitStatus, Kernel, ProcessExit};
pub use process::{guest_bytes, Pid, Process};
pub use reference::{
    OutputSink, ProcessReport, ReferenceKernel, RunReport, DEFAULT_MAX_PROCESSES,
    TRAPPED_WAIT_STATUS,
};
pub use runner::{Host, DEFAULT_BUFFER_SIZE};

/// How [`run`] runs a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Size in bytes of the save buffer each process grows once (default
    /// 1 MiB); see [`Host::buffer_size`].
    pub buffer_size: u32,
    /// The most processes one run may create, the first included (default
    /// 1024). A fork beyond it fails with EAGAIN.
    pub max_processes: u32,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            buffer_size: DEFAULT_BUFFER_SIZE as u32,
            max_processes: DEFAULT_MAX_PROCESSES,
        }
    }
}

/// Runs `wasm` (an instrumented module, or one with no fork import) on the
/// reference kernel as process 1 and every process it forks, to completion:
/// what `cargo forkify run` does.
///
/// `Err` only for modules the host refuses (ABI, exports, imports) and host
/// failures; what the guest does (exit codes, traps) is in the report.
pub fn run(wasm: &[u8], opts: &RunOptions) -> Result<RunReport, Error> {
    let host = Host::<ReferenceKernel>::new(wasm)?.buffer_size(u64::from(opts.buffer_size));
    Ok(host.run(ReferenceKernel::new(opts.max_processes))?.report())
}
