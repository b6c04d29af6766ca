//! The mode B harness checked against a module instrumented by hand, so
//! that a harness that cannot see a broken replay fails.

use super::*;

/// A module and a hand-instrumented version of it (following ABI §2–§7):
/// checks mode B's host protocol before (and independently of) the real
/// instrumenter. With `broken`, replay re-runs the code before the call
/// site, which the ABI forbids: the harness must notice.
pub fn hand_instrumented(broken: bool) -> (Vec<u8>, Vec<u8>) {
    let body = r#"
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (local.get $x)))"#;
    let original = format!(
        r#"(module
          (import "env" "fork" (func $fork (param i32) (result i32)))
          (memory (export "{MEMORY_EXPORT}") 1)
          (global $g (export "g") (mut i32) (i32.const 0))
          (func (export "run") (param $x i32) (result i32)
            {body}
            (i32.add (call $fork (local.get $x)) (global.get $g))))"#
    );
    // frames_offset = align8(2P + 4 bytes of $g) = 16; one frame of 16
    // bytes (header only: no carryovers, no live locals); abort_reserve 16.
    let replay_skip = if broken { "" } else { "(br $resume)" };
    let instrumented = format!(
        r#"(module
          (import "env" "fork" (func $fork (param i32) (result i32)))
          (memory (export "{MEMORY_EXPORT}") 1)
          (global $g (export "g") (mut i32) (i32.const 0))
          (global $state (mut i32) (i32.const 0))
          (global $buf (mut i32) (i32.const 0))
          (func (export "run") (param $x i32) (result i32) (local $r i32) (local $c i32)
            (block $resume
              (if (i32.ge_s (global.get $state) (i32.const 2)) (then
                (local.set $c (i32.sub (i32.load (global.get $buf)) (i32.const 16)))
                (i32.store (global.get $buf) (local.get $c))
                (if (i32.load (local.get $c)) (then unreachable))
                {replay_skip}))
              {body})
            (loop $again
              (local.set $r (call $fork (local.get $x)))
              (if (i32.eq (global.get $state) (i32.const 1)) (then
                (local.set $c (i32.load (global.get $buf)))
                (i32.store (local.get $c) (i32.const 0))
                (i32.store offset=4 (local.get $c) (i32.const 0))
                (i32.store offset=8 (local.get $c) (i32.const 0))
                (i32.store offset=12 (local.get $c) (i32.const 0))
                (if (i32.gt_u (i32.add (local.get $c) (i32.const 32)) (i32.load offset=4 (global.get $buf)))
                  (then (global.set $state (i32.const 3)) (br $again)))
                (i32.store (global.get $buf) (i32.add (local.get $c) (i32.const 16)))
                (return (i32.const 0)))))
            (i32.add (local.get $r) (global.get $g)))
          (func (export "wpk_fork_unwind_begin") (param $p i32)
            (if (global.get $state) (then unreachable))
            (global.set $state (i32.const 1))
            (global.set $buf (local.get $p))
            (i32.store (local.get $p) (i32.add (local.get $p) (i32.const 16)))
            (i32.store offset=8 (local.get $p) (global.get $g)))
          (func (export "wpk_fork_unwind_end")
            (if (i32.ne (global.get $state) (i32.const 1)) (then unreachable))
            (global.set $state (i32.const 0))
            (global.set $buf (i32.const 0)))
          (func (export "wpk_fork_rewind_begin") (param $p i32)
            (if (global.get $state) (then unreachable))
            (global.set $state (i32.const 2))
            (global.set $buf (local.get $p))
            (global.set $g (i32.load offset=8 (local.get $p))))
          (func (export "wpk_fork_rewind_end")
            (if (i32.lt_s (global.get $state) (i32.const 2)) (then unreachable))
            (global.set $state (i32.const 0))
            (global.set $buf (i32.const 0)))
          (func (export "wpk_fork_state") (result i32) (global.get $state)))"#
    );
    let mut inst = wat::parse_str(&instrumented).expect("hand-instrumented wat");
    let section = abi::AbiSection {
        version: abi::ABI_VERSION,
        pointer_width: 4,
        flags: abi::FLAG_ABORT_ON_OVERFLOW,
        frame_header_size: abi::FRAME_HEADER_SIZE as u16,
        frames_offset: 16,
        instrumented_functions: 1,
        max_frame_size: 16,
        abort_reserve: 16,
        info: abi::SectionInfo {
            tool: "hand".into(),
            fork_imports: vec!["env.fork".into()],
        },
    };
    let mut payload = vec![abi::SECTION_NAME.len() as u8];
    payload.extend_from_slice(abi::SECTION_NAME.as_bytes());
    payload.extend(section.encode());
    inst.push(0);
    let mut n = payload.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        inst.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    inst.extend(payload);
    (wat::parse_str(&original).expect("original wat"), inst)
}

/// Runs original and hand-instrumented module in mode B with `seeds`
/// buffer-placement seeds; the first difference, and the fork statistics.
pub fn hand_mode_b(broken: bool, seeds: u64) -> (Option<String>, ForkStats) {
    let engine = engine();
    let (orig, inst) = hand_instrumented(broken);
    let section = abi::AbiSection::find(&inst)
        .expect("section")
        .expect("present");
    let orig = Module::new(&engine, &orig).expect("original compiles");
    let inst = Module::new(&engine, &inst).expect("instrumented compiles");
    let names = vec!["run".to_string()];
    let reference = run(&engine, &orig, 0, &names, 0, FUEL_ORIGINAL, None);
    let mut stats = ForkStats::default();
    for seed in 0..seeds {
        let params = ForkParams {
            pointer_width: section.pointer_width,
            min_buffer: u64::from(section.frames_offset + section.abort_reserve),
            seed,
            corrupt_from: None,
        };
        let b = run(
            &engine,
            &inst,
            0,
            &names,
            0,
            FUEL_INSTRUMENTED,
            Some(params),
        );
        stats += b.stats;
        if let Some(d) = compare(&reference, &b) {
            return (Some(d), stats);
        }
    }
    (None, stats)
}
