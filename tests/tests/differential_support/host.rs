//! The host of one run: deterministic import stubs that record every call,
//! and in mode B the fork import that unwinds and rewinds the same instance
//! in place (ABI §6).

use super::*;

/// What the fork import does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Return the value (original module, and mode A).
    Plain,
    /// Perform the unwind/rewind dance (mode B).
    Fork,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ForkStats {
    pub forks: u64,
    pub aborts: u64,
    pub no_room: u64,
    pub capped: u64,
}

impl std::ops::AddAssign for ForkStats {
    fn add_assign(&mut self, o: ForkStats) {
        self.forks += o.forks;
        self.aborts += o.aborts;
        self.no_room += o.no_room;
        self.capped += o.capped;
    }
}

/// A fork in progress: the value to return on rewind and the bytes the
/// buffer covered.
pub struct Pending {
    pub buf: u64,
    pub saved: Vec<u8>,
    pub results: Vec<Val>,
}

pub struct ForkHost {
    pub pointer_width: u8,
    /// `frames_offset + abort_reserve`: the smallest buffer allowed.
    pub min_buffer: u64,
    pub rng: Rng,
    pub pending: Option<Pending>,
    pub stats: ForkStats,
    pub corrupt_from: Option<u64>,
}

pub struct Host {
    pub limits: StoreLimits,
    pub counter: u64,
    pub trace: Vec<(usize, Vec<Cv>)>,
    pub in_export: bool,
    /// Per import: calls made by wasm code during export calls (a host
    /// function called directly from the host cannot fork).
    pub wasm_calls: Vec<u64>,
    pub fork: Option<ForkHost>,
    pub failure: Option<String>,
}

impl Host {
    pub fn fail(&mut self, msg: String) -> wasmtime::Error {
        if self.failure.is_none() {
            self.failure = Some(msg.clone());
        }
        wasmtime::Error::msg(msg)
    }
}

/// The results an import returns for this call, and the trace entry. Both
/// runs see the same sequence of calls, hence the same values.
pub fn plain_call(
    host: &mut Host,
    idx: usize,
    params: &[Val],
    result_tys: &[ValType],
    results: &mut [Val],
) {
    let args: Vec<Cv> = params.iter().map(cv).collect();
    let mut h = mix64(host.counter ^ ((idx as u64) << 40));
    for a in &args {
        h = mix64(h ^ cv_hash(a));
    }
    host.counter += 1;
    host.trace.push((idx, args));
    for (i, (ty, r)) in result_tys.iter().zip(results.iter_mut()).enumerate() {
        *r = make_val(ty, mix64(h.wrapping_add(i as u64)));
    }
}

/// The fork import in mode B.
pub fn fork_call(
    caller: &mut Caller<'_, Host>,
    idx: usize,
    params: &[Val],
    result_tys: &[ValType],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let width = caller.data().fork.as_ref().map_or(4, |f| f.pointer_width);
    let Some(controls) = forkify_host::Controls::of_caller(caller, width) else {
        // Not instrumented (the original module): a plain call.
        plain_call(caller.data_mut(), idx, params, result_tys, results);
        return Ok(());
    };
    let state = match controls.state(&mut *caller) {
        Ok(s) => s,
        Err(e) => return Err(caller.data_mut().fail(format!("{e:#}"))),
    };
    match state {
        abi::State::Normal => {
            plain_call(caller.data_mut(), idx, params, result_tys, results);
            if !caller.data().in_export {
                return Ok(());
            }
            let Some(Extern::Memory(mem)) = caller.get_export(MEMORY_EXPORT) else {
                return Ok(());
            };
            let size = mem.data_size(&*caller) as u64;
            let host = caller.data_mut();
            let fh = host.fork.as_mut().expect("fork mode");
            if fh.stats.forks >= u64::from(MAX_FORKS) {
                fh.stats.capped += 1;
                return Ok(());
            }
            let min = fh.min_buffer.max(16);
            if size < min + 32 {
                fh.stats.no_room += 1;
                return Ok(());
            }
            let room = size - 16;
            let len = if fh.rng.chance(1, 4) {
                // Tight: frames will often overflow and abort.
                (min + 8 * fh.rng.below(24)).min(room)
            } else {
                room.min(32 * 1024).max(min)
            };
            let slots = (size - len - 16) / 16;
            let buf = 16 + 16 * fh.rng.below(slots + 1);
            let range = buf as usize..(buf + len) as usize;
            let saved = mem.data(&*caller)[range].to_vec();
            if let Err(e) =
                forkify_host::write_end(mem.data_mut(&mut *caller), buf, buf + len, width)
            {
                return Err(caller.data_mut().fail(e));
            }
            let fh = caller.data_mut().fork.as_mut().expect("fork mode");
            fh.pending = Some(Pending {
                buf,
                saved,
                results: results.to_vec(),
            });
            fh.stats.forks += 1;
            // The value returned while unwinding must be ignored.
            for (i, (ty, r)) in result_tys.iter().zip(results.iter_mut()).enumerate() {
                *r = make_val(ty, 0xdead_beef ^ i as u64);
            }
            if let Err(e) = controls.unwind_begin(&mut *caller, buf) {
                return Err(caller
                    .data_mut()
                    .fail(format!("`wpk_fork_unwind_begin` failed: {e:#}")));
            }
            Ok(())
        }
        abi::State::Rewinding | abi::State::Aborting => {
            if let Err(e) = controls.rewind_end(&mut *caller) {
                return Err(caller
                    .data_mut()
                    .fail(format!("`wpk_fork_rewind_end` failed: {e:#}")));
            }
            let Some(p) = caller
                .data_mut()
                .fork
                .as_mut()
                .and_then(|f| f.pending.take())
            else {
                return Err(caller.data_mut().fail(format!(
                    "fork import called in state {state:?} with no fork pending"
                )));
            };
            if state == abi::State::Aborting {
                caller
                    .data_mut()
                    .fork
                    .as_mut()
                    .expect("fork mode")
                    .stats
                    .aborts += 1;
            }
            let Some(Extern::Memory(mem)) = caller.get_export(MEMORY_EXPORT) else {
                return Err(caller.data_mut().fail("memory export vanished".into()));
            };
            mem.data_mut(&mut *caller)[p.buf as usize..p.buf as usize + p.saved.len()]
                .copy_from_slice(&p.saved);
            results.copy_from_slice(&p.results);
            Ok(())
        }
        abi::State::Unwinding => Err(caller
            .data_mut()
            .fail("fork import called while unwinding".into())),
    }
}
