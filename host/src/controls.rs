//! The five control exports of ABI §3 of one instance, typed, for the fork
//! protocol of ABI §6. The host's own loop uses them; so can a caller that
//! drives the protocol itself on any wasmtime store (a test harness that
//! unwinds and rewinds one instance in place, a host with another
//! scheduling).

use forkify_abi::{State, EXPORTS};
use wasmtime::{AsContextMut, Caller, Extern, Func, Instance, Val};

/// The control exports of one instance.
#[derive(Debug, Clone, Copy)]
pub struct Controls {
    unwind_begin: Func,
    unwind_end: Func,
    rewind_begin: Func,
    rewind_end: Func,
    state: Func,
    pointer_width: u8,
}

impl Controls {
    /// The exports of `instance`, whose memory 0 has this pointer width;
    /// `None` when any is missing.
    pub fn of(
        instance: &Instance,
        mut store: impl AsContextMut,
        pointer_width: u8,
    ) -> Option<Controls> {
        let mut get = |i: usize| instance.get_func(&mut store, EXPORTS[i].0);
        Some(Controls {
            unwind_begin: get(0)?,
            unwind_end: get(1)?,
            rewind_begin: get(2)?,
            rewind_end: get(3)?,
            state: get(4)?,
            pointer_width,
        })
    }

    /// The exports of the instance calling a host function; `None` when any
    /// is missing.
    pub fn of_caller<T>(caller: &mut Caller<'_, T>, pointer_width: u8) -> Option<Controls> {
        let mut get = |i: usize| caller.get_export(EXPORTS[i].0).and_then(Extern::into_func);
        Some(Controls {
            unwind_begin: get(0)?,
            unwind_end: get(1)?,
            rewind_begin: get(2)?,
            rewind_end: get(3)?,
            state: get(4)?,
            pointer_width,
        })
    }

    fn ptr(&self, v: u64) -> Val {
        if self.pointer_width == 8 {
            Val::I64(v as i64)
        } else {
            Val::I32(v as u32 as i32)
        }
    }

    /// `wpk_fork_state()`, as a [`State`] (`Err` for a value that is none).
    pub fn state(&self, mut store: impl AsContextMut) -> wasmtime::Result<State> {
        let mut out = [Val::I32(0)];
        self.state.call(&mut store, &[], &mut out)?;
        let raw = out[0].i32().unwrap_or(-1);
        State::from_i32(raw).ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "`wpk_fork_state` returned {raw}, which is no state (ABI §2)"
            ))
        })
    }

    /// `wpk_fork_unwind_begin(buf)`: NORMAL -> UNWINDING. The host must have
    /// written `end` at `buf + P` ([`write_end`]).
    pub fn unwind_begin(&self, mut store: impl AsContextMut, buf: u64) -> wasmtime::Result<()> {
        self.unwind_begin
            .call(&mut store, &[self.ptr(buf)], &mut [])
    }

    /// `wpk_fork_unwind_end()`: UNWINDING -> NORMAL.
    pub fn unwind_end(&self, mut store: impl AsContextMut) -> wasmtime::Result<()> {
        self.unwind_end.call(&mut store, &[], &mut [])
    }

    /// `wpk_fork_rewind_begin(buf)`: NORMAL -> REWINDING.
    pub fn rewind_begin(&self, mut store: impl AsContextMut, buf: u64) -> wasmtime::Result<()> {
        self.rewind_begin
            .call(&mut store, &[self.ptr(buf)], &mut [])
    }

    /// `wpk_fork_rewind_end()`: REWINDING or ABORTING -> NORMAL.
    pub fn rewind_end(&self, mut store: impl AsContextMut) -> wasmtime::Result<()> {
        self.rewind_end.call(&mut store, &[], &mut [])
    }
}

/// Writes `end` into the buffer at `buf` (ABI §4: the second pointer-sized
/// field) in `memory`, for pointer width `p`.
pub fn write_end(memory: &mut [u8], buf: u64, end: u64, p: u8) -> Result<(), String> {
    let at = usize::try_from(buf + u64::from(forkify_abi::buffer::end(u32::from(p))))
        .map_err(|e| e.to_string())?;
    let bytes = end.to_le_bytes();
    let width = usize::from(p);
    memory
        .get_mut(at..at + width)
        .ok_or_else(|| format!("the buffer at {buf:#x} lies outside memory"))?
        .copy_from_slice(&bytes[..width]);
    Ok(())
}
