//! An independent oracle for the fixtures' expectations: it runs the
//! *uninstrumented* module on wasmtime with the reference kernel of ABI §9
//! and gets real fork semantics by re-execution instead of stack copying.
//!
//! A process is identified by the values its kernel calls returned so far.
//! A child is simulated by running `_start` again in a fresh instance and
//! replaying its parent's kernel-call results up to the fork, then returning
//! 0 from that fork. The program is deterministic, so the replayed prefix
//! rebuilds exactly the memory, globals and stack the parent had at the
//! fork; writes made during the prefix are dropped (they belong to the
//! ancestors). Scheduling follows §9: the child runs to completion inside
//! the parent's fork call, then the parent gets the child's pid.
//!
//! This is slow (quadratic in the fork count) and knows nothing about
//! frames, so it checks the WAT programs and their directives, not forkify.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use forkify_host::{ExitStatus, ProcessReport, RunReport};
use wasmtime::{Caller, Engine, Extern, ExternType, Instance, Linker, Module, Store, Val};

/// Pids beyond this make the oracle stop (a runaway fixture).
const MAX_PROCESSES: usize = 256;

/// Ok when this build's wasmtime accepts `probe` (WAT using `feature`) with
/// its default configuration. Exceptions need wasmtime's `gc` cargo feature.
pub fn engine_supports(feature: &str, probe: &str) -> Result<(), String> {
    let probe = wat::parse_str(probe).map_err(|e| e.to_string())?;
    Module::validate(&Engine::default(), &probe).map_err(|e| {
        format!("this build's wasmtime does not run the {feature} proposal by default: {e}")
    })
}

/// `kernel_exit` unwinds the guest with this error.
#[derive(Debug)]
struct Exit(i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit({})", self.0)
    }
}

impl std::error::Error for Exit {}

struct World {
    engine: Engine,
    module: Module,
    linker: Linker<Proc>,
    processes: Vec<ProcessReport>,
    log: Vec<(i32, String)>,
    reaped: BTreeSet<i32>,
    fail_forks: u32,
}

struct Proc {
    world: Rc<RefCell<World>>,
    pid: i32,
    /// Results of the kernel calls to replay before this process is live.
    script: Vec<i32>,
    /// Results of every kernel call so far (replayed or live).
    history: Vec<i32>,
    stdout: Vec<u8>,
}

impl Proc {
    fn replaying(&self) -> bool {
        self.history.len() < self.script.len()
    }

    /// During the replay, the recorded result of this call.
    fn replay(&mut self) -> Option<i32> {
        let v = *self.script.get(self.history.len())?;
        self.history.push(v);
        Some(v)
    }
}

/// Runs an uninstrumented module with real fork semantics. `fail_forks`:
/// the first that many forks of the run return -12 without a child.
pub fn run(wasm: &[u8], fail_forks: u32) -> Result<RunReport, String> {
    let wasm = wasm.to_vec();
    // Parent and child instances nest on the native stack; give them room.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || run_here(&wasm, fail_forks))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the oracle panicked".to_string())?
}

fn run_here(wasm: &[u8], fail_forks: u32) -> Result<RunReport, String> {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).map_err(|e| format!("{e:?}"))?;
    let mut linker = Linker::new(&engine);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!("unexpected non-function import {}", import.name()));
        };
        if import.module() != "kernel" {
            return Err(format!(
                "import {}.{} is not the kernel's",
                import.module(),
                import.name()
            ));
        }
        let name = import.name().to_string();
        let kind = name.clone();
        linker
            .func_new("kernel", &name, ty, move |caller, params, results| {
                kernel_call(&kind, caller, params, results)
            })
            .map_err(|e| e.to_string())?;
    }
    let world = Rc::new(RefCell::new(World {
        engine,
        module,
        linker,
        processes: Vec::new(),
        log: Vec::new(),
        reaped: BTreeSet::new(),
        fail_forks,
    }));
    world.borrow_mut().processes.push(ProcessReport {
        pid: 1,
        parent: None,
        stdout: String::new(),
        status: ExitStatus::Exited(0),
    });
    run_process(&world, 1, Vec::new())?;
    let w = world.borrow();
    Ok(RunReport {
        processes: w.processes.clone(),
        log: w.log.clone(),
    })
}

/// Runs process `pid` (already registered) to its end and records how it
/// ended.
fn run_process(world: &Rc<RefCell<World>>, pid: i32, script: Vec<i32>) -> Result<(), String> {
    let (engine, module, linker) = {
        let w = world.borrow();
        (w.engine.clone(), w.module.clone(), w.linker.clone())
    };
    let proc = Proc {
        world: world.clone(),
        pid,
        script,
        history: Vec::new(),
        stdout: Vec::new(),
    };
    let mut store = Store::new(&engine, proc);
    let instance: Instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| format!("instantiate: {e:?}"))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| format!("_start: {e:?}"))?;
    let status = match start.call(&mut store, ()) {
        Ok(()) => ExitStatus::Exited(0),
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitStatus::Exited(*code),
            None => ExitStatus::Trapped(format!("{e:?}")),
        },
    };
    let proc = store.into_data();
    if proc.replaying() {
        return Err(format!(
            "pid {pid} ended during its replay: the program is not deterministic"
        ));
    }
    let mut w = world.borrow_mut();
    let p = &mut w.processes[(pid - 1) as usize];
    p.stdout = String::from_utf8_lossy(&proc.stdout).into_owned();
    p.status = status;
    Ok(())
}

fn kernel_call(
    name: &str,
    mut caller: Caller<'_, Proc>,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let int = |v: &Val| -> u64 {
        match v {
            Val::I32(x) => *x as u32 as u64,
            Val::I64(x) => *x as u64,
            _ => 0,
        }
    };
    match name {
        "kernel_write" => {
            if caller.data().replaying() {
                return Ok(());
            }
            let (ptr, len) = (int(&params[0]) as usize, int(&params[1]) as usize);
            let memory = match caller.get_export("memory") {
                Some(Extern::Memory(m)) => m,
                _ => wasmtime::bail!("no exported memory"),
            };
            let Some(bytes) = memory.data(&caller).get(ptr..ptr + len).map(<[u8]>::to_vec) else {
                wasmtime::bail!("kernel_write out of bounds");
            };
            let p = caller.data_mut();
            p.stdout.extend_from_slice(&bytes);
            let chunk = String::from_utf8_lossy(&bytes).into_owned();
            p.world.borrow_mut().log.push((p.pid, chunk));
            Ok(())
        }
        "kernel_exit" => {
            if caller.data().replaying() {
                wasmtime::bail!("kernel_exit during a replay");
            }
            Err(wasmtime::Error::new(Exit(int(&params[0]) as i32)))
        }
        "kernel_getpid" => {
            let p = caller.data_mut();
            let v = p.replay().unwrap_or_else(|| {
                p.history.push(p.pid);
                p.pid
            });
            results[0] = Val::I32(v);
            Ok(())
        }
        "kernel_waitpid" => {
            let p = caller.data_mut();
            if let Some(v) = p.replay() {
                results[0] = Val::I32(v);
                return Ok(());
            }
            let target = int(&params[0]) as i32;
            let mut w = p.world.borrow_mut();
            let child = w
                .processes
                .iter()
                .find(|c| c.pid == target && c.parent == Some(p.pid))
                .map(|c| c.status.clone());
            let v = match child {
                Some(_) if w.reaped.contains(&target) => -10,
                Some(ExitStatus::Exited(code)) => {
                    w.reaped.insert(target);
                    code
                }
                Some(ExitStatus::Trapped(_)) => {
                    wasmtime::bail!(
                        "waitpid on a trapped child: ABI §9 does not say what it returns"
                    )
                }
                None => -10,
            };
            drop(w);
            p.history.push(v);
            results[0] = Val::I32(v);
            Ok(())
        }
        "kernel_fork" => {
            let p = caller.data_mut();
            if let Some(v) = p.replay() {
                results[0] = Val::I32(v);
                return Ok(());
            }
            let world = p.world.clone();
            let child = {
                let mut w = world.borrow_mut();
                if w.fail_forks > 0 {
                    w.fail_forks -= 1;
                    None
                } else if w.processes.len() >= MAX_PROCESSES {
                    wasmtime::bail!("more than {MAX_PROCESSES} processes");
                } else {
                    let pid = w.processes.len() as i32 + 1;
                    w.processes.push(ProcessReport {
                        pid,
                        parent: Some(p.pid),
                        stdout: String::new(),
                        status: ExitStatus::Exited(0),
                    });
                    Some(pid)
                }
            };
            let v = match child {
                None => -12,
                Some(child) => {
                    let mut script = p.history.clone();
                    script.push(0);
                    run_process(&world, child, script).map_err(wasmtime::Error::msg)?;
                    child
                }
            };
            p.history.push(v);
            results[0] = Val::I32(v);
            Ok(())
        }
        other => wasmtime::bail!("unknown kernel import {other}"),
    }
}
