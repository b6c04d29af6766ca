//! Where the per-function stages run in parallel: on the rayon pool the
//! caller installed (`cargo forkify build` installs one of `-j` threads,
//! built with [`WORKER_STACK`]), else on a pool of as many threads as
//! rayon's global one, the calling thread among them, the others with that
//! stack.
//!
//! The planner recurses once per nesting level of a function's blocks, so
//! its threads need the stack a main thread has, not rayon's 2 MiB
//! default: a Go program's function (esbuild) overflows that.

/// Stack size of the threads that plan functions (address space; only
/// what the recursion touches becomes memory).
pub const WORKER_STACK: usize = 64 << 20;

/// Runs `f` where its parallel iterators get threads with
/// [`WORKER_STACK`] (see the module docs).
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    // The calling thread is one of the pool's: with one thread nothing
    // moves to another, and what the stages allocate stays in this
    // thread's malloc arena (work on a second thread costs about a tenth
    // more peak memory, measured on swc and ffmpeg).
    match rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .use_current_thread()
        .stack_size(WORKER_STACK)
        .thread_name(|i| format!("forkify-plan-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No threads to be had: the global pool's.
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    /// Many fork-path functions, each with a spilled table index (a call's
    /// result) and
    /// a multi-value block around a fork-path call: what the planners and
    /// rewrites declare provisionally.
    fn module() -> Vec<u8> {
        let mut wat = String::from(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (memory 1)
                 (func $h (param i32) (result i32) (i32.add (local.get 0) (call $fork)))
                 (func $id (param i32) (result i32) (local.get 0))
                 (type $t (func (param i32) (result i32)))
                 (table 1 funcref)
                 (elem (i32.const 0) $h)"#,
        );
        for k in 0..64 {
            wat.push_str(&format!(
                r#"(func $f{k} (param i32 i64) (result i32)
                     (local f64)
                     (i32.add
                       (i32.load (local.get 0))
                       (call_indirect (type $t)
                         (i32.load offset={k} (local.get 0))
                         (call $id (i32.const 0))))
                     (block (param i32) (result i32 i64)
                       (drop (call $h (i32.add (local.get 0) (i32.const {k}))))
                       (local.get 1))
                     (drop))"#
            ));
        }
        wat.push(')');
        wat::parse_str(&wat).expect("wat")
    }

    #[test]
    fn output_is_the_same_at_any_thread_count() {
        let wasm = module();
        let config = crate::Config::default();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| crate::instrument(&wasm, &config))
                .expect("instrumented")
        };
        let one = on(1);
        assert_eq!(one.report.functions.len(), 65);
        let spilled = one.report.functions.iter().filter(|f| f.locals_added > 0);
        assert!(spilled.count() >= 64);
        for threads in [2, 3, 8] {
            assert!(on(threads).bytes == one.bytes, "{threads} threads");
        }
        let here = crate::instrument(&wasm, &config).expect("instrumented");
        assert!(here.bytes == one.bytes, "outside a pool");
    }
}
