//! A kernel that is not the reference one, a fork import that is not
//! `kernel.kernel_fork` (named by the section, with its own signature), and
//! imports added by the embedder: the host takes all three from outside.

use forkify_host::{ExitStatus, Host, Kernel, Pid, Process, ProcessExit};
use forkify_instrument::{Config, ImportName};
use wasmtime::{Caller, Linker};

/// Records who spawned whom and how each ended; `sys.done(code)` exits.
#[derive(Debug, Default)]
struct Tiny {
    next: Pid,
    parents: Vec<(Pid, Option<Pid>)>,
    ended: Vec<(Pid, ExitStatus)>,
    allow_forks: bool,
}

impl Kernel for Tiny {
    fn add_imports(linker: &mut Linker<Process<Self>>, _width: u8) -> wasmtime::Result<()> {
        linker.func_wrap(
            "sys",
            "done",
            |_: Caller<'_, Process<Self>>, code: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::new(ProcessExit(code)))
            },
        )?;
        Ok(())
    }

    fn spawn(&mut self, parent: Option<Pid>) -> Pid {
        self.next += 1;
        self.parents.push((self.next, parent));
        self.next
    }

    fn can_fork(&self, _parent: Pid) -> bool {
        self.allow_forks
    }

    fn exited(&mut self, pid: Pid, status: &ExitStatus) {
        self.ended.push((pid, status.clone()));
    }
}

const PROGRAM: &str = r#"(module
  (import "sys" "spawn" (func $spawn (param i32) (result i64)))
  (import "sys" "done" (func $done (param i32)))
  (import "env" "base" (func $base (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $r i64)
    (local.set $r (call $spawn (i32.const 7)))
    ;; child: 0; parent: the child's pid; refused: -11
    (call $done (i32.add (call $base) (i32.wrap_i64 (local.get $r))))))"#;

fn instrumented() -> Vec<u8> {
    let wasm = wat::parse_str(PROGRAM).expect("wat");
    let config = Config::with_fork_imports(vec![ImportName::new("sys", "spawn")]);
    forkify_instrument::instrument(&wasm, &config)
        .expect("instruments")
        .bytes
}

fn run(allow_forks: bool) -> Tiny {
    let mut host = Host::<Tiny>::new(&instrumented()).expect("accepted");
    host.linker()
        .func_wrap("env", "base", |_: Caller<'_, Process<Tiny>>| 100)
        .expect("link env.base");
    host.run(Tiny {
        allow_forks,
        ..Tiny::default()
    })
    .expect("runs")
}

#[test]
fn a_custom_kernel_and_fork_import_fork() {
    let k = run(true);
    assert_eq!(k.parents, vec![(1, None), (2, Some(1))]);
    // The child ends first (exit 100 + 0), then the parent (100 + pid 2).
    assert_eq!(
        k.ended,
        vec![(2, ExitStatus::Exited(100)), (1, ExitStatus::Exited(102))]
    );
}

#[test]
fn a_kernel_that_refuses_forks_makes_fork_return_eagain() {
    let k = run(false);
    assert_eq!(k.parents, vec![(1, None)]);
    assert_eq!(k.ended, vec![(1, ExitStatus::Exited(100 - 11))]);
}

#[test]
fn an_import_nobody_provides_is_a_link_error() {
    let host = Host::<Tiny>::new(&instrumented()).expect("accepted");
    let err = host.run(Tiny::default()).expect_err("env.base is missing");
    assert!(
        matches!(err, forkify_host::Error::Link(_)) && err.to_string().contains("base"),
        "{err}"
    );
}
