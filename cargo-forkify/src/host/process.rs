//! The fork protocol of ABI §6 on wasmtime: the fork import, and the loop
//! that runs a process, turns a completed unwind into a child (a fresh
//! instance of the same compiled module with a copy of the parent's memory),
//! runs the child to completion and then rewinds the parent.

use wasmtime::{Caller, Config, Engine, Error, Func, InstancePre, Module, Store, Val};

use super::kernel::{self, Controls, Kernel, Proc, Shared, EAGAIN, ENOMEM};
use super::section::Plan;
use super::{ExitStatus, RunOptions, RunReport};
use forkify_instrument::abi::{self, State};

/// Native stack of the host thread: `MAX_WASM_STACK` plus room for the host
/// frames of nested forks (one level per generation of processes).
pub(super) const NATIVE_STACK: usize = 256 << 20;
/// How much native stack wasm may use: deep recursion (1,000+ frames of
/// instrumented code) must fit.
const MAX_WASM_STACK: usize = 64 << 20;

/// Everything shared by the processes of one run.
struct Runtime<'a> {
    engine: Engine,
    pre: InstancePre<Proc>,
    plan: &'a Plan,
    opts: &'a RunOptions,
    kernel: Shared,
}

/// Converts a wasmtime error at the API boundary, keeping its chain.
fn host_error(e: Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into_boxed_dyn_error())
}

/// Runs the module as process 1 and everything it forks.
pub(super) fn run_all(wasm: &[u8], plan: &Plan, opts: &RunOptions) -> anyhow::Result<RunReport> {
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
    let engine = Engine::new(&config).map_err(host_error)?;
    // Compiled once; every child is a new instance of the same module.
    let module = Module::new(&engine, wasm)
        .map_err(|e| host_error(e).context("cannot compile the module"))?;
    let linker = kernel::linker(&engine, plan.pointer_width).map_err(host_error)?;
    let pre = linker.instantiate_pre(&module).map_err(|e| {
        host_error(e).context("cannot link the module against the reference kernel")
    })?;
    let rt = Runtime {
        engine,
        pre,
        plan,
        opts,
        kernel: Kernel::shared(opts.max_processes),
    };
    let pid = rt.lock().spawn(None);
    let mut store = rt.store(pid, None);
    match rt.instantiate(&mut store) {
        Ok(start) => rt.run_process(store, start, None)?,
        Err(e) => rt.lock().finish(pid, kernel::status_of(&e)),
    }
    let report = rt.lock().report();
    Ok(report)
}

impl Runtime<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kernel> {
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A store for process `pid`, not yet instantiated.
    fn store(&self, pid: i32, buf: Option<u64>) -> Store<Proc> {
        Store::new(
            &self.engine,
            Proc {
                pid,
                kernel: self.kernel.clone(),
                pointer_width: self.plan.pointer_width,
                layout: self.plan.layout,
                buffer_size: self.opts.buffer_size,
                buf,
                fork_result: None,
                controls: None,
                memory: None,
            },
        )
    }

    /// Instantiates the module in `store` and returns its `_start`.
    fn instantiate(&self, store: &mut Store<Proc>) -> wasmtime::Result<Func> {
        let instance = self.pre.instantiate(&mut *store)?;
        let func = |store: &mut Store<Proc>, name: &str| {
            instance
                .get_func(&mut *store, name)
                .ok_or_else(|| Error::msg(format!("missing function export `{name}`")))
        };
        let start = func(store, "_start")?;
        if self.plan.layout.is_some() {
            let controls = Controls {
                unwind_begin: func(store, abi::EXPORT_UNWIND_BEGIN)?,
                unwind_end: func(store, abi::EXPORT_UNWIND_END)?,
                rewind_begin: func(store, abi::EXPORT_REWIND_BEGIN)?,
                rewind_end: func(store, abi::EXPORT_REWIND_END)?,
                state: func(store, abi::EXPORT_STATE)?,
            };
            store.data_mut().controls = Some(controls);
        }
        let memory = instance.get_memory(&mut *store, "memory");
        store.data_mut().memory = memory;
        Ok(start)
    }

    /// Runs one process to its end (its children included) and records its
    /// status. `resume` is the buffer to rewind from, for a child.
    fn run_process(
        &self,
        mut store: Store<Proc>,
        start: Func,
        resume: Option<u64>,
    ) -> anyhow::Result<()> {
        let pid = store.data().pid;
        let status = self.drive(&mut store, start, resume)?;
        self.lock().finish(pid, status);
        Ok(())
    }

    /// Calls `_start` until the process ends, forking at every completed
    /// unwind. `Err` only for host failures.
    fn drive(
        &self,
        store: &mut Store<Proc>,
        start: Func,
        mut resume: Option<u64>,
    ) -> anyhow::Result<ExitStatus> {
        let pid = store.data().pid;
        loop {
            if let Some(buf) = resume.take() {
                if let Err(e) = call_ptr(store, |c| c.rewind_begin, buf) {
                    return Ok(kernel::status_of(&e));
                }
            }
            if let Err(e) = start.call(&mut *store, &[], &mut []) {
                return Ok(kernel::status_of(&e));
            }
            let state = match store.data().controls {
                None => return Ok(ExitStatus::Exited(0)),
                Some(_) => match state(store) {
                    Ok(s) => s,
                    Err(e) => return Ok(kernel::status_of(&e)),
                },
            };
            match State::from_i32(state) {
                Some(State::Normal) => return Ok(ExitStatus::Exited(0)),
                Some(State::Unwinding) => {}
                _ => {
                    return Ok(ExitStatus::Trapped(format!(
                        "`_start` returned in state {state} instead of resuming at its fork call (ABI §6)"
                    )))
                }
            }
            if let Err(e) = call0(store, |c| c.unwind_end) {
                return Ok(kernel::status_of(&e));
            }
            let Some(buf) = store.data().buf else {
                return Ok(ExitStatus::Trapped(
                    "the module unwound without a fork".into(),
                ));
            };
            let child = self.lock().spawn(Some(pid));
            self.fork_child(store, child, buf)?;
            store.data_mut().fork_result = Some(child);
            resume = Some(buf);
        }
    }

    /// Creates process `child` as a copy of the unwound `parent` and runs it
    /// to completion.
    fn fork_child(&self, parent: &mut Store<Proc>, child: i32, buf: u64) -> anyhow::Result<()> {
        let mut store = self.store(child, Some(buf));
        let start = match self.instantiate(&mut store) {
            Ok(start) => start,
            Err(e) => {
                self.lock().finish(child, kernel::status_of(&e));
                return Ok(());
            }
        };
        copy_memory(parent, &mut store).map_err(host_error)?;
        store.data_mut().fork_result = Some(0);
        self.run_process(store, start, Some(buf))
    }
}

/// Makes the child's memory a byte-for-byte copy of the parent's.
fn copy_memory(parent: &Store<Proc>, child: &mut Store<Proc>) -> wasmtime::Result<()> {
    let (Some(from), Some(to)) = (parent.data().memory, child.data().memory) else {
        return Err(Error::msg("the module exports no `memory` to copy"));
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
        .ok_or_else(|| Error::msg("the child's memory cannot grow to the parent's size"))?;
    dst.copy_from_slice(src);
    Ok(())
}

/// Calls a `() -> ()` control export.
fn call0(store: &mut Store<Proc>, pick: impl Fn(&Controls) -> Func) -> wasmtime::Result<()> {
    let controls = store
        .data()
        .controls
        .ok_or_else(|| Error::msg("the module has no control exports"))?;
    pick(&controls).call(&mut *store, &[], &mut [])
}

/// Calls a `(ptr) -> ()` control export.
fn call_ptr(
    store: &mut Store<Proc>,
    pick: impl Fn(&Controls) -> Func,
    buf: u64,
) -> wasmtime::Result<()> {
    let controls = store
        .data()
        .controls
        .ok_or_else(|| Error::msg("the module has no control exports"))?;
    let arg = kernel::ptr_val(store.data().pointer_width, buf);
    pick(&controls).call(&mut *store, &[arg], &mut [])
}

/// `wpk_fork_state()`.
fn state(store: &mut Store<Proc>) -> wasmtime::Result<i32> {
    let controls = store
        .data()
        .controls
        .ok_or_else(|| Error::msg("the module has no control exports"))?;
    let mut out = [Val::I32(0)];
    controls.state.call(&mut *store, &[], &mut out)?;
    out[0]
        .i32()
        .ok_or_else(|| Error::msg("`wpk_fork_state` did not return an i32"))
}

/// `kernel.kernel_fork`: starts an unwind in NORMAL, returns the fork result
/// when reached again while rewinding, fails in ABORTING (ABI §6, §9).
pub(super) fn fork_import(mut caller: Caller<'_, Proc>) -> wasmtime::Result<i32> {
    let controls = caller.data().controls.ok_or_else(|| {
        Error::msg("kernel_fork: the module is not instrumented (no control exports)")
    })?;
    let mut out = [Val::I32(0)];
    controls.state.call(&mut caller, &[], &mut out)?;
    let state = out[0].i32().unwrap_or(-1);
    match State::from_i32(state) {
        Some(State::Normal) => begin_fork(&mut caller, &controls),
        Some(State::Rewinding) => {
            controls.rewind_end.call(&mut caller, &[], &mut [])?;
            caller.data_mut().fork_result.take().ok_or_else(|| {
                Error::msg("kernel_fork reached while rewinding, but no fork is pending")
            })
        }
        Some(State::Aborting) => {
            controls.rewind_end.call(&mut caller, &[], &mut [])?;
            Ok(ENOMEM)
        }
        _ => Err(Error::msg(format!(
            "kernel_fork called in state {state} (expected NORMAL, REWINDING or ABORTING)"
        ))),
    }
}

/// The NORMAL case of the fork import: get the buffer, write `end`, start
/// the unwind. Failures that the guest should see as errno return without
/// unwinding.
fn begin_fork(caller: &mut Caller<'_, Proc>, controls: &Controls) -> wasmtime::Result<i32> {
    let data = caller.data();
    let width = data.pointer_width;
    let size = u64::from(data.buffer_size);
    let layout = data
        .layout
        .ok_or_else(|| Error::msg("kernel_fork: the module has no `forkify.abi` section"))?;
    if !data.kernel().can_spawn() {
        return Ok(EAGAIN);
    }
    if size < layout.min_buffer().max(2 * u64::from(width)) {
        return Ok(ENOMEM);
    }
    let buf = match caller.data().buf {
        Some(buf) => buf,
        None => match grow_buffer(caller, size)? {
            Some(buf) => {
                caller.data_mut().buf = Some(buf);
                buf
            }
            None => return Ok(ENOMEM),
        },
    };
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| Error::msg("kernel_fork: the module exports no `memory`"))?;
    let end = buf + size;
    let end_bytes = end.to_le_bytes();
    let offset = usize::try_from(buf + u64::from(width)).map_err(Error::msg)?;
    memory.write(&mut *caller, offset, &end_bytes[..usize::from(width)])?;
    controls
        .unwind_begin
        .call(&mut *caller, &[kernel::ptr_val(width, buf)], &mut [])?;
    Ok(0)
}

/// Grows memory by enough pages for a `size`-byte buffer; `None` when the
/// memory cannot grow (the guest sees ENOMEM). The buffer is page aligned,
/// hence 16-aligned, and never at address 0.
fn grow_buffer(caller: &mut Caller<'_, Proc>, size: u64) -> wasmtime::Result<Option<u64>> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| Error::msg("kernel_fork: the module exports no `memory`"))?;
    let page = memory.page_size(&*caller);
    let mut pages = size.div_ceil(page);
    let empty = memory.size(&*caller) == 0;
    if empty {
        pages += 1;
    }
    let Ok(old) = memory.grow(&mut *caller, pages) else {
        return Ok(None);
    };
    let buf = (old + u64::from(empty)) * page;
    let limit = if caller.data().pointer_width == 8 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    // `end` must be representable as a pointer.
    Ok((buf.checked_add(size).is_some_and(|end| end <= limit)).then_some(buf))
}
