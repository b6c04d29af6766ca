//! The host: compiles a module once, links the kernel's imports, the fork
//! imports and any the caller adds, then runs process 1 and, at every
//! completed unwind, a child (a fresh instance of the same compiled module
//! with a copy of the parent's memory) to completion before it rewinds the
//! parent (ABI §6, §9).

use std::sync::{Arc, Mutex};

use forkify_abi::State;
use wasmtime::{Config, Engine, Func, InstancePre, Linker, Module, Store};

use crate::controls::Controls;
use crate::error::chain;
use crate::kernel::{ExitStatus, Kernel};
use crate::plan::{self, ModulePlan};
use crate::process::{ForkState, Pid, Process};
use crate::Error;

/// Native stack of the host thread: `MAX_WASM_STACK` plus room for the host
/// frames of nested forks (one level per generation of processes).
const NATIVE_STACK: usize = 256 << 20;
/// How much native stack wasm may use: deep recursion (1,000+ frames of
/// instrumented code) must fit.
const MAX_WASM_STACK: usize = 64 << 20;
/// The default size of the save buffer: 1 MiB.
pub const DEFAULT_BUFFER_SIZE: u64 = 1 << 20;

/// A compiled, linked module ready to run against a kernel `K`.
pub struct Host<K: Kernel> {
    engine: Engine,
    module: Module,
    plan: ModulePlan,
    linker: Linker<Process<K>>,
    buffer_size: u64,
}

impl<K: Kernel> std::fmt::Debug for Host<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("pointer_width", &self.plan.pointer_width)
            .field("buffer_size", &self.buffer_size)
            .finish_non_exhaustive()
    }
}

impl<K: Kernel> Host<K> {
    /// Checks `wasm` against the ABI (ABI §7: before anything is
    /// instantiated), compiles it and links the kernel's imports and the
    /// fork imports its `forkify.abi` section names.
    pub fn new(wasm: &[u8]) -> Result<Host<K>, Error> {
        let plan = plan::prepare(wasm)?;
        let mut config = Config::new();
        // `async_stack_size` bounds `max_wasm_stack` even for sync calls when
        // another crate turns on wasmtime's `async` feature.
        config
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(MAX_WASM_STACK + (2 << 20));
        config
            .wasm_memory64(true)
            .wasm_multi_memory(true)
            .wasm_tail_call(true);
        let engine = Engine::new(&config).map_err(|e| Error::Host(chain(&e)))?;
        // Compiled once; every child is a new instance of the same module.
        let module = Module::new(&engine, wasm).map_err(|e| Error::Compile(chain(&e)))?;
        let mut linker = Linker::new(&engine);
        linker.allow_shadowing(true);
        K::add_imports(&mut linker, plan.pointer_width).map_err(|e| Error::Link(chain(&e)))?;
        crate::fork::define(&mut linker, &engine, &plan.fork_imports).map_err(Error::Link)?;
        Ok(Host {
            engine,
            module,
            plan,
            linker,
            buffer_size: DEFAULT_BUFFER_SIZE,
        })
    }

    /// The size of the save buffer each process grows once (default 1 MiB).
    /// A fork fails with ENOMEM in the guest, without unwinding, when it is
    /// smaller than the module's `frames_offset + abort_reserve`; a buffer
    /// too small for the stack makes the guest abort the unwind (ABI §6) and
    /// also see ENOMEM.
    pub fn buffer_size(mut self, bytes: u64) -> Host<K> {
        self.buffer_size = bytes;
        self
    }

    /// The linker, to add imports the kernel does not provide (or replace
    /// its ones; shadowing is allowed). Imports receive the calling
    /// [`Process`].
    pub fn linker(&mut self) -> &mut Linker<Process<K>> {
        &mut self.linker
    }

    /// 4 for wasm32, 8 for memory64.
    pub fn pointer_width(&self) -> u8 {
        self.plan.pointer_width
    }

    /// Runs the module as process 1 and every process it forks, to
    /// completion, and gives the kernel back. Wasm runs on a thread of its
    /// own with a native stack big enough for deep recursion and nested
    /// forks.
    ///
    /// `Err` only for what keeps the host from running the module (an
    /// import nothing provides, a host failure); what the guest does (exit
    /// codes, traps) is what the kernel recorded.
    pub fn run(self, kernel: K) -> Result<K, Error> {
        let handle = std::thread::Builder::new()
            .name("forkify-host".into())
            .stack_size(NATIVE_STACK)
            .spawn(move || self.run_here(kernel))
            .map_err(|e| Error::Host(format!("cannot start the host thread: {e}")))?;
        handle
            .join()
            .map_err(|_| Error::Host("the host thread panicked (a bug in forkify-host)".into()))?
    }

    fn run_here(self, kernel: K) -> Result<K, Error> {
        let pre = self
            .linker
            .instantiate_pre(&self.module)
            .map_err(|e| Error::Link(chain(&e)))?;
        let run = Run {
            host: &self,
            pre,
            kernel: Arc::new(Mutex::new(kernel)),
        };
        let pid = run.lock().spawn(None);
        let mut store = run.store(pid, None);
        match run.instantiate(&mut store) {
            Ok(start) => run.run_process(store, start, None)?,
            Err(e) => run.lock().exited(pid, &ExitStatus::from_error(&e)),
        }
        let Run { kernel, .. } = run;
        let kernel =
            Arc::try_unwrap(kernel).map_err(|_| Error::Host("a store outlived the run".into()))?;
        Ok(kernel.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One run: the linked module and the shared kernel.
struct Run<'a, K: Kernel> {
    host: &'a Host<K>,
    pre: InstancePre<Process<K>>,
    kernel: Arc<Mutex<K>>,
}

impl<K: Kernel> Run<'_, K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, K> {
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A store for process `pid`, not yet instantiated.
    fn store(&self, pid: Pid, buf: Option<u64>) -> Store<Process<K>> {
        let fork = ForkState {
            pointer_width: self.host.plan.pointer_width,
            layout: self.host.plan.layout,
            buffer_size: self.host.buffer_size,
            buf,
            fork_result: None,
            controls: None,
            memory: None,
        };
        Store::new(
            &self.host.engine,
            Process::new(pid, self.kernel.clone(), fork),
        )
    }

    /// Instantiates the module in `store` and returns its `_start`.
    fn instantiate(&self, store: &mut Store<Process<K>>) -> wasmtime::Result<Func> {
        let instance = self.pre.instantiate(&mut *store)?;
        let start = instance
            .get_func(&mut *store, "_start")
            .ok_or_else(|| wasmtime::Error::msg("missing function export `_start`"))?;
        if self.host.plan.layout.is_some() {
            let controls = Controls::of(&instance, &mut *store, self.host.plan.pointer_width)
                .ok_or_else(|| wasmtime::Error::msg("missing control exports"))?;
            store.data_mut().fork.controls = Some(controls);
        }
        let memory = instance.get_memory(&mut *store, "memory");
        store.data_mut().fork.memory = memory;
        Ok(start)
    }

    /// Runs one process to its end (its children included) and records its
    /// status. `resume` is the buffer to rewind from, for a child.
    fn run_process(
        &self,
        mut store: Store<Process<K>>,
        start: Func,
        resume: Option<u64>,
    ) -> Result<(), Error> {
        let pid = store.data().pid();
        let status = self.drive(&mut store, start, resume)?;
        self.lock().exited(pid, &status);
        Ok(())
    }

    /// Calls `_start` until the process ends, forking at every completed
    /// unwind. `Err` only for host failures.
    fn drive(
        &self,
        store: &mut Store<Process<K>>,
        start: Func,
        mut resume: Option<u64>,
    ) -> Result<ExitStatus, Error> {
        let pid = store.data().pid();
        loop {
            let controls = store.data().fork.controls;
            if let (Some(buf), Some(c)) = (resume.take(), controls) {
                if let Err(e) = c.rewind_begin(&mut *store, buf) {
                    return Ok(ExitStatus::from_error(&e));
                }
            }
            if let Err(e) = start.call(&mut *store, &[], &mut []) {
                return Ok(ExitStatus::from_error(&e));
            }
            let Some(c) = controls else {
                return Ok(ExitStatus::Exited(0));
            };
            match c.state(&mut *store) {
                Ok(State::Normal) => return Ok(ExitStatus::Exited(0)),
                Ok(State::Unwinding) => {}
                Ok(state) => {
                    return Ok(ExitStatus::Trapped(format!(
                    "`_start` returned in state {} instead of resuming at its fork call (ABI §6)",
                    state as i32
                )))
                }
                Err(e) => return Ok(ExitStatus::from_error(&e)),
            }
            if let Err(e) = c.unwind_end(&mut *store) {
                return Ok(ExitStatus::from_error(&e));
            }
            let Some(buf) = store.data().fork.buf else {
                return Ok(ExitStatus::Trapped(
                    "the module unwound without a fork".into(),
                ));
            };
            let child = self.lock().spawn(Some(pid));
            self.fork_child(store, child, buf)?;
            store.data_mut().fork.fork_result = Some(child);
            resume = Some(buf);
        }
    }

    /// Creates process `child` as a copy of the unwound `parent` and runs it
    /// to completion.
    fn fork_child(
        &self,
        parent: &mut Store<Process<K>>,
        child: Pid,
        buf: u64,
    ) -> Result<(), Error> {
        let mut store = self.store(child, Some(buf));
        let start = match self.instantiate(&mut store) {
            Ok(start) => start,
            Err(e) => {
                self.lock().exited(child, &ExitStatus::from_error(&e));
                return Ok(());
            }
        };
        copy_memory(parent, &mut store).map_err(|e| Error::Host(chain(&e)))?;
        store.data_mut().fork.fork_result = Some(0);
        self.run_process(store, start, Some(buf))
    }
}

/// Makes the child's memory a byte-for-byte copy of the parent's.
fn copy_memory<K>(
    parent: &Store<Process<K>>,
    child: &mut Store<Process<K>>,
) -> wasmtime::Result<()> {
    let (Some(from), Some(to)) = (parent.data().memory(), child.data().memory()) else {
        return Err(wasmtime::Error::msg(
            "the module exports no `memory` to copy",
        ));
    };
    let want = from.data_size(parent);
    let have = to.data_size(&*child);
    let page = to.page_size(&*child);
    if want > have {
        to.grow(&mut *child, ((want - have) as u64).div_ceil(page))?;
    }
    let src = from.data(parent);
    let dst = to
        .data_mut(&mut *child)
        .get_mut(..src.len())
        .ok_or_else(|| {
            wasmtime::Error::msg("the child's memory cannot grow to the parent's size")
        })?;
    dst.copy_from_slice(src);
    Ok(())
}
