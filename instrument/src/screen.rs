//! The refusal screen: finds every function ABI 1 §8 refuses before the
//! expensive stages run, in about the time and memory of preflight's one
//! validation.
//!
//! Preflight marks the fork-path functions that have anything §8 is about
//! ([`crate::analysis::reach::BodyFacts::may_refuse`]: a reference-typed
//! parameter, local, result or block type, a reference on the operand stack
//! at a call, a call in a legacy handler). Most modules have none, and the
//! screen costs nothing. Otherwise walrus is given only those bodies (the
//! others stubbed, `walrus_gaps::slim`), the call graph counts the stubbed
//! fork-path functions as reaching, and the planner itself, which decides
//! every refusal, plans each marked function; the plans are thrown away.
//! So the screen refuses exactly what planning would, all of it in one
//! error, and the pipeline proper runs only on modules it accepts.

use walrus::{FunctionId, FunctionKind};

use crate::analysis::callgraph::CallGraph;
use crate::analysis::index::{self, FunctionIndex};
use crate::preflight::Preflight;
use crate::{pipeline, walrus_gaps, Config, Result};

/// `Err` with every refusal when a marked function is refused.
pub fn screen(wasm: &[u8], config: &Config, pre: &Preflight) -> Result<()> {
    if !pre.may_refuse.iter().any(|r| *r) {
        return Ok(());
    }
    // An input the slim module cannot be built for is screened by the
    // pipeline's own planning instead.
    let Some(slim) = walrus_gaps::slim::build(wasm, &pre.bodies, &pre.may_refuse) else {
        return Ok(());
    };
    let mut module = walrus_gaps::parse_slim(slim)?;
    let index = FunctionIndex::build(&module);
    let forks = index::fork_imports(&module, config)?;
    let code = pipeline::code_effects(&module, &index, pre, &pre.may_refuse);
    let graph = CallGraph::build(&module, forks, &code);
    let mut targets: Vec<FunctionId> = graph.on_path.keys().copied().collect();
    targets.sort_by_key(|f| index.of(*f));
    for f in &targets {
        if let FunctionKind::Local(lf) = &mut module.funcs.get_mut(*f).kind {
            walrus_gaps::dead_code::truncate(lf);
        }
    }
    pipeline::plan_all(&mut module, &graph, &pre.facts, &index, &targets).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{preflight, Error};

    fn screened(wat: &str) -> Result<()> {
        let wasm = wat::parse_str(wat).expect("wat");
        let config = Config::default();
        let pre = preflight::check(&wasm, &config, true).expect("preflight");
        screen(&wasm, &config, &pre)
    }

    #[test]
    fn every_refusal_is_found_before_parsing_the_module() {
        let got = screened(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (tag $e)
                 (memory 1)
                 (func $plain (result i32) (call $fork))
                 (func $in_handler
                   try
                     call $plain
                     drop
                   catch_all
                     call $plain
                     drop
                   end)
                 (func $holds_ref (param $r externref) (result externref)
                   (drop (call $plain))
                   (local.get $r))
                 (func $ref_dead_before (param $r externref)
                   (drop (local.get $r))
                   (drop (call $plain))))"#,
        );
        match got {
            Err(Error::Unsupported {
                function,
                reason,
                others,
            }) => {
                assert_eq!(function, "in_handler");
                assert!(reason.contains("legacy"), "{reason}");
                assert_eq!(others.len(), 1, "{others:?}");
                assert_eq!(others[0].0, "holds_ref");
                assert!(others[0].1.contains("externref"), "{}", others[0].1);
            }
            other => panic!("not refused as expected: {other:?}"),
        }
    }

    #[test]
    fn functions_off_the_fork_path_are_not_screened() {
        // $off holds an externref across a call, but its callee never forks.
        screened(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (memory 1)
                 (func $f (result i32) (call $fork))
                 (func $g)
                 (func $off (param $r externref) (result externref)
                   (call $g)
                   (local.get $r)))"#,
        )
        .expect("accepted");
    }
}

/// The fork path from the bytes must skip code walrus drops (after an
/// unconditional branch, to the end of its block): the pipeline's check
/// that both agree would fail otherwise.
#[cfg(test)]
mod dead_code {
    /// The names of the functions `wat` gets instrumented.
    fn instrumented(wat: &str) -> Vec<String> {
        let wasm = wat::parse_str(wat).expect("wat");
        let done = crate::instrument(&wasm, &crate::Config::default()).expect("instrumented");
        done.report.functions.into_iter().map(|f| f.name).collect()
    }

    #[test]
    fn calls_in_unreachable_code_do_not_reach() {
        let got = instrumented(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (memory 1)
                 (func $a unreachable (drop (call $fork)))
                 (func $b (call $a))
                 (func $c (br 0) (block (call $b)))
                 (func $d (drop (call $fork))))"#,
        );
        assert_eq!(got, ["d"]);
    }

    /// walrus keeps what follows a `return_call` (the validator calls it
    /// unreachable), so a call there is on the fork path.
    #[test]
    fn calls_after_a_return_call_reach() {
        let got = instrumented(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (memory 1)
                 (func $g)
                 (func $e (return_call $g) (block (drop (call $fork))))
                 (func $f (return_call $g) (br 0) (block (drop (call $fork)))))"#,
        );
        assert_eq!(got, ["e"]);
    }
}
