//! What each wasmtime store carries: one process. Its pid and the run's
//! kernel are public to the kernel's imports; the fork state (the save
//! buffer, the pending fork result, the control exports) belongs to the
//! host.

use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{Caller, Memory};

use crate::controls::Controls;
use crate::plan::Layout;

/// A process id: 1 for the first process, then one more per fork.
pub type Pid = i32;

/// The store data of one process: `Linker<Process<K>>` is what extra
/// imports are added to, and `Caller<'_, Process<K>>` what they receive.
pub struct Process<K> {
    pid: Pid,
    kernel: Arc<Mutex<K>>,
    pub(crate) fork: ForkState,
}

impl<K> std::fmt::Debug for Process<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// The host's part of a process.
#[derive(Debug)]
pub(crate) struct ForkState {
    /// 4 or 8.
    pub pointer_width: u8,
    /// Buffer layout; `None` for a module that cannot fork.
    pub layout: Option<Layout>,
    /// Save-buffer size to grow.
    pub buffer_size: u64,
    /// The save buffer, once grown; inherited by children (same address in
    /// the copied memory).
    pub buf: Option<u64>,
    /// What the fork import returns when it is reached while rewinding.
    pub fork_result: Option<Pid>,
    /// Set after instantiation.
    pub controls: Option<Controls>,
    /// The exported `memory`, set after instantiation.
    pub memory: Option<Memory>,
}

impl<K> Process<K> {
    pub(crate) fn new(pid: Pid, kernel: Arc<Mutex<K>>, fork: ForkState) -> Process<K> {
        Process { pid, kernel, fork }
    }

    /// This process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The run's kernel, locked. Never hold it across a call into wasm.
    pub fn kernel(&self) -> MutexGuard<'_, K> {
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The module's exported `memory` (memory 0).
    pub fn memory(&self) -> Option<Memory> {
        self.fork.memory
    }

    /// 4 for wasm32, 8 for memory64.
    pub fn pointer_width(&self) -> u8 {
        self.fork.pointer_width
    }
}

/// Copies `[ptr, ptr + len)` out of the calling process's memory: what an
/// import that takes a guest buffer (`kernel_write`) reads. Errors name the
/// range and the memory's size.
pub fn guest_bytes<K>(
    caller: &Caller<'_, Process<K>>,
    ptr: u64,
    len: u64,
) -> wasmtime::Result<Vec<u8>> {
    let memory = caller
        .data()
        .memory()
        .ok_or_else(|| wasmtime::Error::msg("the module exports no `memory`"))?;
    let data = memory.data(caller);
    usize::try_from(ptr)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(p, l)| data.get(p..p.checked_add(l)?))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "bytes [{ptr}, {ptr}+{len}) lie outside memory ({} bytes)",
                data.len()
            ))
        })
}
