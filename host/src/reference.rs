//! The reference kernel of ABI §9 (`kernel.kernel_exit`, `kernel_waitpid`,
//! `kernel_write`, `kernel_getpid`; the fork import is the host's): a
//! process table, everything each process wrote, and the [`RunReport`] of
//! a run. Output can also be streamed as it is written.

use serde::{Deserialize, Serialize};
use wasmtime::{Caller, Linker};

use crate::kernel::{errno, ExitStatus, Kernel, ProcessExit};
use crate::process::{guest_bytes, Pid, Process};

/// The status `kernel_waitpid` reports for a child that trapped, as a
/// POSIX shell reports a process killed by SIGABRT (128 + 6).
pub const TRAPPED_WAIT_STATUS: i32 = 134;

/// The default limit on processes per run, the first included.
pub const DEFAULT_MAX_PROCESSES: u32 = 1024;

/// A function that receives each `kernel_write` as it happens.
pub type OutputSink = Box<dyn FnMut(Pid, &[u8]) + Send>;

/// One entry of the process table.
#[derive(Debug)]
struct ProcRecord {
    pid: Pid,
    parent: Option<Pid>,
    stdout: Vec<u8>,
    status: Option<ExitStatus>,
    waited: bool,
}

/// The reference kernel: see the module documentation and ABI §9.
pub struct ReferenceKernel {
    procs: Vec<ProcRecord>,
    log: Vec<(Pid, Vec<u8>)>,
    max_processes: u32,
    sink: Option<OutputSink>,
}

impl std::fmt::Debug for ReferenceKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceKernel")
            .field("procs", &self.procs)
            .field("max_processes", &self.max_processes)
            .finish_non_exhaustive()
    }
}

impl Default for ReferenceKernel {
    fn default() -> ReferenceKernel {
        ReferenceKernel::new(DEFAULT_MAX_PROCESSES)
    }
}

impl ReferenceKernel {
    /// An empty process table that allows `max_processes` processes per
    /// run (the first included); a fork beyond it fails with EAGAIN.
    pub fn new(max_processes: u32) -> ReferenceKernel {
        ReferenceKernel {
            procs: Vec::new(),
            log: Vec::new(),
            max_processes,
            sink: None,
        }
    }

    /// Also hands every write to `sink` as it happens (the report keeps it
    /// too).
    pub fn with_output(mut self, sink: impl FnMut(Pid, &[u8]) + Send + 'static) -> ReferenceKernel {
        self.sink = Some(Box::new(sink));
        self
    }

    fn record(&mut self, pid: Pid) -> Option<&mut ProcRecord> {
        self.procs.iter_mut().find(|p| p.pid == pid)
    }

    /// Appends to a process's output and to the log.
    pub fn write(&mut self, pid: Pid, bytes: &[u8]) {
        if let Some(p) = self.record(pid) {
            p.stdout.extend_from_slice(bytes);
        }
        self.log.push((pid, bytes.to_vec()));
        if let Some(sink) = &mut self.sink {
            sink(pid, bytes);
        }
    }

    /// `kernel_waitpid(pid)` called by `caller`: the child's status once,
    /// then ECHILD (ABI §9).
    pub fn waitpid(&mut self, caller: Pid, pid: Pid) -> i32 {
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
                None => errno::ECHILD,
            },
            _ => errno::ECHILD,
        }
    }

    /// The report of the run so far.
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

impl Kernel for ReferenceKernel {
    fn add_imports(linker: &mut Linker<Process<Self>>, pointer_width: u8) -> wasmtime::Result<()> {
        linker.func_wrap(
            "kernel",
            "kernel_exit",
            |_: Caller<'_, Process<Self>>, status: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::new(ProcessExit(status)))
            },
        )?;
        linker.func_wrap(
            "kernel",
            "kernel_waitpid",
            |caller: Caller<'_, Process<Self>>, pid: i32| -> i32 {
                let me = caller.data().pid();
                caller.data().kernel().waitpid(me, pid)
            },
        )?;
        linker.func_wrap(
            "kernel",
            "kernel_getpid",
            |caller: Caller<'_, Process<Self>>| -> i32 { caller.data().pid() },
        )?;
        if pointer_width == 8 {
            linker.func_wrap(
                "kernel",
                "kernel_write",
                |caller: Caller<'_, Process<Self>>, ptr: i64, len: i64| {
                    write(caller, ptr as u64, len as u64)
                },
            )?;
        } else {
            linker.func_wrap(
                "kernel",
                "kernel_write",
                |caller: Caller<'_, Process<Self>>, ptr: i32, len: i32| {
                    write(caller, u64::from(ptr as u32), u64::from(len as u32))
                },
            )?;
        }
        Ok(())
    }

    fn spawn(&mut self, parent: Option<Pid>) -> Pid {
        let pid = Pid::try_from(self.procs.len() + 1).unwrap_or(Pid::MAX);
        self.procs.push(ProcRecord {
            pid,
            parent,
            stdout: Vec::new(),
            status: None,
            waited: false,
        });
        pid
    }

    fn can_fork(&self, _parent: Pid) -> bool {
        u32::try_from(self.procs.len()).is_ok_and(|n| n < self.max_processes)
    }

    fn exited(&mut self, pid: Pid, status: &ExitStatus) {
        if let Some(p) = self.record(pid) {
            p.status = Some(status.clone());
        }
    }
}

/// `kernel_write(ptr, len)`.
fn write(caller: Caller<'_, Process<ReferenceKernel>>, ptr: u64, len: u64) -> wasmtime::Result<()> {
    let bytes = guest_bytes(&caller, ptr, len)
        .map_err(|e| wasmtime::Error::msg(format!("kernel_write: {e}")))?;
    let pid = caller.data().pid();
    caller.data().kernel().write(pid, &bytes);
    Ok(())
}

/// The outcome of one run: every process and everything they wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunReport {
    /// Every process of the run, sorted by pid.
    pub processes: Vec<ProcessReport>,
    /// Every `kernel_write`, in the order it happened, as (pid, chunk).
    pub log: Vec<(Pid, String)>,
}

/// One process of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessReport {
    /// Its pid (the first process is 1).
    pub pid: Pid,
    /// The pid of the process that forked it; `None` for the first.
    pub parent: Option<Pid>,
    /// Everything it wrote, decoded as lossy UTF-8.
    pub stdout: String,
    /// How it ended.
    pub status: ExitStatus,
}

impl RunReport {
    /// The output of all processes, each line prefixed with `[pid] `, in
    /// the order the lines were completed. A process's unfinished last line
    /// is flushed at the end, in the order it was started.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // pid -> (log position of the first pending chunk, pending text)
        let mut pending: Vec<(Pid, usize, String)> = Vec::new();
        for (pos, (pid, chunk)) in self.log.iter().enumerate() {
            let slot = match pending.iter().position(|(p, _, _)| p == pid) {
                Some(i) => i,
                None => {
                    pending.push((*pid, pos, String::new()));
                    pending.len() - 1
                }
            };
            let (_, start, text) = &mut pending[slot];
            if text.is_empty() {
                *start = pos;
            }
            text.push_str(chunk);
            while let Some(nl) = text.find('\n') {
                out.push_str(&format!("[{pid}] "));
                out.extend(text.drain(..=nl));
            }
        }
        pending.sort_by_key(|(_, pos, _)| *pos);
        for (pid, _, text) in pending {
            if !text.is_empty() {
                out.push_str(&format!("[{pid}] {text}\n"));
            }
        }
        out
    }

    /// `{"processes":[{"pid","parent","status":{"exited":N}|{"trapped":"msg"},"stdout"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let processes: Vec<serde_json::Value> = self
            .processes
            .iter()
            .map(|p| {
                let status = match &p.status {
                    ExitStatus::Exited(code) => serde_json::json!({ "exited": code }),
                    ExitStatus::Trapped(msg) => serde_json::json!({ "trapped": msg }),
                };
                serde_json::json!({ "pid": p.pid, "parent": p.parent, "status": status, "stdout": p.stdout })
            })
            .collect();
        serde_json::json!({ "processes": processes })
    }

    /// The process with this pid.
    pub fn process(&self, pid: Pid) -> Option<&ProcessReport> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The status of process 1, the one the run started.
    pub fn root_status(&self) -> Option<&ExitStatus> {
        self.process(1).map(|p| &p.status)
    }
}
