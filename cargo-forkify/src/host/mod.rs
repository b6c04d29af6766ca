//! The reference host: runs a module instrumented for fork ABI 1 on
//! wasmtime and really forks it, with the tiny process kernel of ABI §9
//! (`kernel.kernel_fork`, `kernel_exit`, `kernel_waitpid`, `kernel_write`,
//! `kernel_getpid`).
//!
//! This module owns the public API and the report; [`section`] decides
//! whether a module may run, [`kernel`] defines the imports and the
//! per-process state, [`process`] drives the fork/run loop. Nothing here
//! prints: output is collected into a [`RunReport`].
//!
//! Scheduling is deterministic: at a fork the child runs to completion first
//! (forking further itself), then the parent resumes. Pids start at 1 and
//! grow by one per successful fork.

mod kernel;
mod process;
mod section;

use serde::Serialize;

/// How to run a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Size in bytes of the save buffer the host grows once per instance
    /// (default 1 MiB). A fork fails with -12 (ENOMEM) in the guest, without
    /// unwinding, when this is smaller than the module's
    /// `frames_offset + abort_reserve`; a buffer too small for the stack
    /// makes the guest abort the unwind and also see -12.
    pub buffer_size: u32,
    /// The most processes one run may create, the first included
    /// (default 1024). A fork beyond it fails with -11 (EAGAIN).
    pub max_processes: u32,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            buffer_size: 1 << 20,
            max_processes: 1024,
        }
    }
}

/// The outcome of one run: every process and everything they wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunReport {
    /// Every process of the run, sorted by pid.
    pub processes: Vec<ProcessReport>,
    /// Every `kernel_write`, in the order it happened, as (pid, chunk).
    pub log: Vec<(i32, String)>,
}

/// One process of a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessReport {
    /// Its pid (the first process is 1).
    pub pid: i32,
    /// The pid of the process that forked it; `None` for the first.
    pub parent: Option<i32>,
    /// Everything it wrote, decoded as lossy UTF-8.
    pub stdout: String,
    /// How it ended.
    pub status: ExitStatus,
}

/// How a process ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// `kernel_exit(status)`, or 0 when `_start` returned.
    Exited(i32),
    /// A trap (or a kernel call the host refused), with its message.
    Trapped(String),
}

impl ExitStatus {
    /// True for `Exited(0)`.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
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

/// The status `kernel_waitpid` reports for a child that trapped, as a
/// POSIX shell reports a process killed by SIGABRT (128 + 6).
pub const TRAPPED_WAIT_STATUS: i32 = 134;

/// Runs `wasm` (an instrumented module, or one with no fork import) as
/// process 1 and every process it forks, to completion.
///
/// `Err` only for host-level failures: an invalid module, a missing or
/// unsupported `forkify.abi` section, missing exports, imports the kernel
/// does not provide. What the guest does (exit codes, traps) is in the
/// report.
pub fn run(wasm: &[u8], opts: &RunOptions) -> anyhow::Result<RunReport> {
    let plan = section::prepare(wasm)?;
    let wasm = wasm.to_vec();
    let opts = opts.clone();
    // Wasm runs on the native stack of the calling thread: give it one big
    // enough for `max_wasm_stack` plus the host frames of nested forks.
    let handle = std::thread::Builder::new()
        .name("forkify-host".into())
        .stack_size(process::NATIVE_STACK)
        .spawn(move || process::run_all(&wasm, &plan, &opts))
        .map_err(|e| anyhow::anyhow!("cannot start the host thread: {e}"))?;
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the host thread panicked (a bug in cargo-forkify)"))?
}

impl RunReport {
    /// The output of all processes, each line prefixed with `[pid] `, in
    /// the order the lines were completed. A process's unfinished last line
    /// is flushed at the end, in the order it was started.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // pid -> (log position of the first pending chunk, pending text)
        let mut pending: Vec<(i32, usize, String)> = Vec::new();
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
    pub fn process(&self, pid: i32) -> Option<&ProcessReport> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The status of process 1, the one the run started.
    pub fn root_status(&self) -> Option<&ExitStatus> {
        self.process(1).map(|p| &p.status)
    }
}

#[cfg(test)]
mod tests;
