//! The kernel a host runs processes against, as a trait: it numbers
//! processes, decides whether a fork may happen, learns how each process
//! ended, and provides the imports the module needs besides its fork
//! imports (those come from the `forkify.abi` section and are the host's).
//! [`crate::ReferenceKernel`] is the implementation of ABI §9.

use wasmtime::Linker;

use crate::process::{Pid, Process};

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// It exited with this status ([`ProcessExit`]), or 0 when its entry
    /// export returned.
    Exited(i32),
    /// It trapped (or a host function it called failed), with the message.
    Trapped(String),
}

impl ExitStatus {
    /// True for `Exited(0)`.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }

    /// How a process ended, from the error its entry export (or a control
    /// export) returned.
    pub fn from_error(e: &wasmtime::Error) -> ExitStatus {
        if let Some(ProcessExit(code)) = e.downcast_ref::<ProcessExit>() {
            ExitStatus::Exited(*code)
        } else if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            ExitStatus::Trapped(trap.to_string())
        } else {
            ExitStatus::Trapped(e.root_cause().to_string())
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with status {code}"),
            ExitStatus::Trapped(msg) => write!(f, "trapped: {msg}"),
        }
    }
}

/// The error an `exit` import returns to end its process: it unwinds the
/// process's wasm frames, and the host records [`ExitStatus::Exited`].
///
/// ```
/// # use forkify_host::ProcessExit;
/// let exit = |status: i32| -> wasmtime::Result<()> { Err(wasmtime::Error::new(ProcessExit(status))) };
/// assert!(exit(3).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit(pub i32);

impl std::fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process exited with status {}", self.0)
    }
}

impl std::error::Error for ProcessExit {}

/// Negative errno values a fork import returns (ABI §9).
pub mod errno {
    /// Not a child of the caller, or already waited for.
    pub const ECHILD: i32 = -10;
    /// No more processes may be created.
    pub const EAGAIN: i32 = -11;
    /// No buffer, or the unwind did not fit (ABI §6).
    pub const ENOMEM: i32 = forkify_abi::ABORT_ERRNO;
}

/// What a host runs processes against. One value serves a whole run (the
/// first process and everything it forks); the host shares it between
/// processes and never holds it locked across a call into wasm.
pub trait Kernel: Send + Sized + 'static {
    /// Adds the kernel's imports to `linker` for modules of this pointer
    /// width (4 or 8). The fork imports are not the kernel's: the host
    /// defines every import the module's `forkify.abi` section names.
    /// Imports reach the kernel with [`Process::kernel`].
    fn add_imports(linker: &mut Linker<Process<Self>>, pointer_width: u8) -> wasmtime::Result<()>;

    /// Registers a new process and returns its pid; `parent` is `None` for
    /// the first process of a run.
    fn spawn(&mut self, parent: Option<Pid>) -> Pid;

    /// Whether `parent` may fork now; when it may not, its fork import
    /// returns [`errno::EAGAIN`] without unwinding.
    fn can_fork(&self, parent: Pid) -> bool {
        let _ = parent;
        true
    }

    /// Process `pid` ended (its children have ended before it, ABI §9).
    fn exited(&mut self, pid: Pid, status: &ExitStatus);
}
