//! The fork imports: what a guest's call to one does in each state of
//! ABI §6. In NORMAL it gets the buffer, writes `end` and starts the
//! unwind; reached again while REWINDING it returns the fork result (the
//! child's pid in the parent, 0 in the child); in ABORTING it ends the
//! replay and fails with ENOMEM. One definition serves every fork import
//! the section names, whatever its numeric signature.

use forkify_abi::State;
use wasmtime::{Caller, Engine, FuncType, Linker, Val, ValType};

use crate::controls::{write_end, Controls};
use crate::kernel::{errno, Kernel};
use crate::plan::ForkImport;
use crate::process::Pid;
use crate::Process;

/// Defines every fork import of the plan in `linker`.
pub(crate) fn define<K: Kernel>(
    linker: &mut Linker<Process<K>>,
    engine: &Engine,
    imports: &[ForkImport],
) -> Result<(), String> {
    for imp in imports {
        let convert = |v: &[wasmparser::ValType]| -> Result<Vec<ValType>, String> {
            v.iter()
                .map(|t| match t {
                    wasmparser::ValType::I32 => Ok(ValType::I32),
                    wasmparser::ValType::I64 => Ok(ValType::I64),
                    wasmparser::ValType::F32 => Ok(ValType::F32),
                    wasmparser::ValType::F64 => Ok(ValType::F64),
                    wasmparser::ValType::V128 => Ok(ValType::V128),
                    other => Err(format!(
                        "fork import `{}.{}` has a {other} parameter or result; fork imports are numeric (ABI §1)",
                        imp.module, imp.name
                    )),
                })
                .collect()
        };
        let ty = FuncType::new(engine, convert(&imp.params)?, convert(&imp.results)?);
        let result_types = convert(&imp.results)?;
        linker
            .func_new(
                &imp.module,
                &imp.name,
                ty,
                move |mut caller, _params, results| {
                    let r = fork_import(&mut caller)?;
                    for (i, (slot, t)) in results.iter_mut().zip(&result_types).enumerate() {
                        let v = if i == 0 { i64::from(r) } else { 0 };
                        *slot = match t {
                            ValType::I64 => Val::I64(v),
                            ValType::F32 => Val::F32((v as f32).to_bits()),
                            ValType::F64 => Val::F64((v as f64).to_bits()),
                            ValType::V128 => Val::V128((v as u128).into()),
                            _ => Val::I32(v as i32),
                        };
                    }
                    Ok(())
                },
            )
            .map_err(|e| crate::error::chain(&e))?;
    }
    Ok(())
}

/// One call of a fork import.
fn fork_import<K: Kernel>(caller: &mut Caller<'_, Process<K>>) -> wasmtime::Result<Pid> {
    let controls = caller.data().fork.controls.ok_or_else(|| {
        wasmtime::Error::msg("fork import: the module is not instrumented (no control exports)")
    })?;
    match controls.state(&mut *caller)? {
        State::Normal => begin_fork(caller, &controls),
        State::Rewinding => {
            controls.rewind_end(&mut *caller)?;
            caller.data_mut().fork.fork_result.take().ok_or_else(|| {
                wasmtime::Error::msg("fork import reached while rewinding, but no fork is pending")
            })
        }
        State::Aborting => {
            controls.rewind_end(&mut *caller)?;
            Ok(errno::ENOMEM)
        }
        State::Unwinding => Err(wasmtime::Error::msg(
            "fork import called while unwinding (expected NORMAL, REWINDING or ABORTING)",
        )),
    }
}

/// The NORMAL case: get the buffer, write `end`, start the unwind. What the
/// guest should see as an errno returns without unwinding.
fn begin_fork<K: Kernel>(
    caller: &mut Caller<'_, Process<K>>,
    controls: &Controls,
) -> wasmtime::Result<Pid> {
    let fork = &caller.data().fork;
    let width = fork.pointer_width;
    let size = fork.buffer_size;
    let layout = fork.layout.ok_or_else(|| {
        wasmtime::Error::msg("fork import: the module has no `forkify.abi` section")
    })?;
    let pid = caller.data().pid();
    if !caller.data().kernel().can_fork(pid) {
        return Ok(errno::EAGAIN);
    }
    if size < layout.min_buffer.max(2 * u64::from(width)) {
        return Ok(errno::ENOMEM);
    }
    let buf = match caller.data().fork.buf {
        Some(buf) => buf,
        None => match grow_buffer(caller, size)? {
            Some(buf) => {
                caller.data_mut().fork.buf = Some(buf);
                buf
            }
            None => return Ok(errno::ENOMEM),
        },
    };
    let memory = caller
        .data()
        .memory()
        .ok_or_else(|| wasmtime::Error::msg("fork import: the module exports no `memory`"))?;
    write_end(memory.data_mut(&mut *caller), buf, buf + size, width)
        .map_err(wasmtime::Error::msg)?;
    controls.unwind_begin(&mut *caller, buf)?;
    Ok(0)
}

/// Grows memory by enough pages for a `size`-byte buffer; `None` when the
/// memory cannot grow (the guest sees ENOMEM). The buffer is page aligned,
/// hence 16-aligned, and never at address 0.
fn grow_buffer<K>(caller: &mut Caller<'_, Process<K>>, size: u64) -> wasmtime::Result<Option<u64>> {
    let memory = caller
        .data()
        .memory()
        .ok_or_else(|| wasmtime::Error::msg("fork import: the module exports no `memory`"))?;
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
    let limit = if caller.data().pointer_width() == 8 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    // `end` must be representable as a pointer.
    Ok((buf.checked_add(size).is_some_and(|end| end <= limit)).then_some(buf))
}
