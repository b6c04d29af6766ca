//! The reference kernel of ABI §9: the process table shared by one run, the
//! per-instance state each wasmtime store carries, and the `kernel.*`
//! imports. The fork import itself is [`super::process::fork_import`]; this
//! file only wires it in.

use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{Caller, Engine, Error, Func, Linker, Memory, Val};

use super::section::Layout;
use super::{ExitStatus, ProcessReport, RunReport, TRAPPED_WAIT_STATUS};

/// ECHILD: `kernel_waitpid` of something that is not an unwaited child.
pub(super) const ECHILD: i32 = -10;
/// EAGAIN: a fork beyond `max_processes`.
pub(super) const EAGAIN: i32 = -11;
/// ENOMEM: no buffer, or the unwind did not fit (ABI §6).
pub(super) const ENOMEM: i32 = -12;

/// One entry of the process table.
#[derive(Debug)]
struct ProcRecord {
    pid: i32,
    parent: Option<i32>,
    stdout: Vec<u8>,
    status: Option<ExitStatus>,
    waited: bool,
}

/// The process table and output log of one run.
#[derive(Debug)]
pub(super) struct Kernel {
    procs: Vec<ProcRecord>,
    log: Vec<(i32, Vec<u8>)>,
    max_processes: u32,
}

/// The kernel, shared by every store of a run. Never locked across a call
/// into wasm.
pub(super) type Shared = Arc<Mutex<Kernel>>;

impl Kernel {
    /// An empty table.
    pub fn shared(max_processes: u32) -> Shared {
        Arc::new(Mutex::new(Kernel {
            procs: Vec::new(),
            log: Vec::new(),
            max_processes,
        }))
    }

    /// Whether one more process may be created.
    pub fn can_spawn(&self) -> bool {
        u32::try_from(self.procs.len()).is_ok_and(|n| n < self.max_processes)
    }

    /// Registers a new process and returns its pid (1, 2, ...).
    pub fn spawn(&mut self, parent: Option<i32>) -> i32 {
        let pid = i32::try_from(self.procs.len() + 1).unwrap_or(i32::MAX);
        self.procs.push(ProcRecord {
            pid,
            parent,
            stdout: Vec::new(),
            status: None,
            waited: false,
        });
        pid
    }

    fn record(&mut self, pid: i32) -> Option<&mut ProcRecord> {
        self.procs.iter_mut().find(|p| p.pid == pid)
    }

    /// Appends to a process's output and to the log.
    pub fn write(&mut self, pid: i32, bytes: Vec<u8>) {
        if let Some(p) = self.record(pid) {
            p.stdout.extend_from_slice(&bytes);
        }
        self.log.push((pid, bytes));
    }

    /// Records how a process ended.
    pub fn finish(&mut self, pid: i32, status: ExitStatus) {
        if let Some(p) = self.record(pid) {
            p.status = Some(status);
        }
    }

    /// `kernel_waitpid(pid)` called by `caller`.
    pub fn waitpid(&mut self, caller: i32, pid: i32) -> i32 {
        match self.record(pid) {
            Some(p) if p.parent == Some(caller) && !p.waited => match &p.status {
                Some(status) => {
                    p.waited = true;
                    match status {
                        ExitStatus::Exited(code) => *code,
                        ExitStatus::Trapped(_) => TRAPPED_WAIT_STATUS,
                    }
                }
                // Children run to completion before their parent resumes.
                None => ECHILD,
            },
            _ => ECHILD,
        }
    }

    /// The report of the run.
    pub fn report(&self) -> RunReport {
        let mut processes: Vec<ProcessReport> = self
            .procs
            .iter()
            .map(|p| ProcessReport {
                pid: p.pid,
                parent: p.parent,
                stdout: String::from_utf8_lossy(&p.stdout).into_owned(),
                status: p
                    .status
                    .clone()
                    .unwrap_or_else(|| ExitStatus::Trapped("did not finish".into())),
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        let log = self
            .log
            .iter()
            .map(|(pid, b)| (*pid, String::from_utf8_lossy(b).into_owned()))
            .collect();
        RunReport { processes, log }
    }
}

/// `kernel_exit(status)`: unwinds the wasm stack as an error that
/// [`status_of`] turns back into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process exited with status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// How a process ended, from the error its `_start` (or a control export)
/// returned.
pub(super) fn status_of(e: &Error) -> ExitStatus {
    if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
        ExitStatus::Exited(*code)
    } else if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        ExitStatus::Trapped(trap.to_string())
    } else {
        ExitStatus::Trapped(e.root_cause().to_string())
    }
}

/// The five control exports of one instance (ABI §3).
#[derive(Debug, Clone, Copy)]
pub(super) struct Controls {
    pub unwind_begin: Func,
    pub unwind_end: Func,
    pub rewind_begin: Func,
    pub rewind_end: Func,
    pub state: Func,
}

/// What each store carries: one process.
#[derive(Debug)]
pub(super) struct Proc {
    /// This process's pid.
    pub pid: i32,
    /// The run's process table.
    pub kernel: Shared,
    /// 4 or 8.
    pub pointer_width: u8,
    /// Buffer layout; `None` for a module that cannot fork.
    pub layout: Option<Layout>,
    /// Save-buffer size to grow.
    pub buffer_size: u32,
    /// The save buffer, once grown; inherited by children (same address in
    /// the copied memory).
    pub buf: Option<u64>,
    /// What the fork import returns when it is reached while rewinding.
    pub fork_result: Option<i32>,
    /// Set after instantiation.
    pub controls: Option<Controls>,
    /// The exported `memory`, set after instantiation.
    pub memory: Option<Memory>,
}

impl Proc {
    /// Locks the run's process table.
    pub fn kernel(&self) -> MutexGuard<'_, Kernel> {
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A pointer-sized value for a control export.
pub(super) fn ptr_val(width: u8, v: u64) -> Val {
    if width == 8 {
        Val::I64(v as i64)
    } else {
        Val::I32(v as u32 as i32)
    }
}

/// A linker with the `kernel.*` imports for modules of this pointer width.
pub(super) fn linker(engine: &Engine, pointer_width: u8) -> wasmtime::Result<Linker<Proc>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap("kernel", "kernel_fork", super::process::fork_import)?;
    linker.func_wrap(
        "kernel",
        "kernel_exit",
        |_: Caller<'_, Proc>, status: i32| -> wasmtime::Result<()> {
            Err(Error::new(Exit(status)))
        },
    )?;
    linker.func_wrap(
        "kernel",
        "kernel_waitpid",
        |caller: Caller<'_, Proc>, pid: i32| -> i32 {
            let me = caller.data().pid;
            caller.data().kernel().waitpid(me, pid)
        },
    )?;
    linker.func_wrap(
        "kernel",
        "kernel_getpid",
        |caller: Caller<'_, Proc>| -> i32 { caller.data().pid },
    )?;
    if pointer_width == 8 {
        linker.func_wrap(
            "kernel",
            "kernel_write",
            |caller: Caller<'_, Proc>, ptr: i64, len: i64| write(caller, ptr as u64, len as u64),
        )?;
    } else {
        linker.func_wrap(
            "kernel",
            "kernel_write",
            |caller: Caller<'_, Proc>, ptr: i32, len: i32| {
                write(caller, u64::from(ptr as u32), u64::from(len as u32))
            },
        )?;
    }
    Ok(linker)
}

/// `kernel_write(ptr, len)`.
fn write(caller: Caller<'_, Proc>, ptr: u64, len: u64) -> wasmtime::Result<()> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| Error::msg("kernel_write: the module exports no `memory`"))?;
    let data = memory.data(&caller);
    let bytes = usize::try_from(ptr)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(p, l)| data.get(p..p.checked_add(l)?))
        .ok_or_else(|| {
            Error::msg(format!(
                "kernel_write: bytes [{ptr}, {ptr}+{len}) lie outside memory ({} bytes)",
                data.len()
            ))
        })?
        .to_vec();
    let pid = caller.data().pid;
    caller.data().kernel().write(pid, bytes);
    Ok(())
}
