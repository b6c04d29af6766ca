//! The recursion-depth probes of issue 9, as WAT. Each exports
//! `walk(depth: i32)`, which recurses `depth` frames through fork-path
//! calls (the fork import is `kernel.kernel_fork`) and returns a value that
//! depends on every frame, so no engine or optimiser can drop the work.
//! Deterministic; too deep a `walk` traps with a stack overflow (a
//! `RangeError` in V8). The Rust guest `bench/guests/walk` is the fourth
//! probe (built by bench/run.sh, added in depth.rs).

use std::fmt::Write as _;

/// One generated probe.
pub struct Probe {
    pub name: &'static str,
    pub about: String,
    pub wasm: Vec<u8>,
    /// Depth of the warm-up call made before each measured call: compiles
    /// every function and case the deep call reaches, at the top of the
    /// stack rather than deep inside it (`walk(64)` visits every case of
    /// sites-1k's switch).
    pub warm: u32,
    /// The ratio to un-instrumented depth the requirement asks for.
    pub target: f64,
    /// Also bisect `node --stack-size` for it.
    pub stack: bool,
}

/// The shape test's `walk` (tests/probes/walk.wat, also read by
/// `walk_keeps_its_declared_locals` in tests/tests/shape.rs): four declared
/// locals live across the recursive call, the fork result carried below it.
pub const WALK_WAT: &str = include_str!("../../tests/probes/walk.wat");

/// `walk` with a v128, an f64 and an i32 (the fork result) on the operand
/// stack below the recursive call, and an f64 and a v128 local live across
/// it. Values stay small, so the `trunc`s never trap.
pub const WALK_F64_V128_WAT: &str = r#"
(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (memory (export "memory") 1)
  (func $walk (export "walk") (param $d i32) (result i32) (local $x f64) (local $v v128)
    (local.set $x (f64.mul (f64.convert_i32_s (local.get $d)) (f64.const 0.25)))
    (local.set $v (i32x4.splat (i32.mul (local.get $d) (i32.const 5))))
    (if (result i32) (i32.eqz (local.get $d))
      (then (call $fork))
      (else
        (i32.add
          ;; operand stack at the recursive call: v128, f64, i32
          (i32x4.extract_lane 1
            (i32x4.add
              (i32x4.splat (i32.add (local.get $d) (i32.const 3)))
              (i32x4.splat
                (i32.trunc_f64_s
                  (f64.add
                    (f64.convert_i32_s (local.get $d))
                    (f64.convert_i32_s
                      (i32.add
                        (call $fork)
                        (i32.and
                          (call $walk (i32.sub (local.get $d) (i32.const 1)))
                          (i32.const 0xffff)))))))))
          (i32.add
            (i32.trunc_f64_s (local.get $x))
            (i32x4.extract_lane 2 (local.get $v)))))))
  (func (export "_start") (drop (call $walk (i32.const 3)))))
"#;

/// Cases of the generated function's `br_table` switch.
const CASES: u32 = 64;
/// Statements per case (the recursive call comes on top).
const STATEMENTS: u32 = 16;

/// Fixed-seed LCG (Knuth's MMIX constants): the same module every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as u32
    }
}

/// A function with 1,000+ fork-path call sites in one body, shaped like a
/// big compiled C++ function: seven locals of four types, a prologue, a
/// counted loop with a call and an `if`, then a 64-way `br_table` switch on
/// `depth & 63` whose cases hold straight-line calls (the fork import
/// directly and three fork-path helpers, with i32/f64 values carried below
/// some of them), `if`/`else`s with a call in each arm, blocks left by
/// `br_if`, memory stores of call results, and plain calls to a helper
/// off the fork path. Every case recurses once, at a different position,
/// so the frames of one walk resume at 64 different sites. Each frame runs
/// one case (about 20 calls). Returns the WAT and the number of fork-path
/// call sites in `$walk` (calls of the import, the helpers and itself).
pub fn sites_wat() -> (String, usize) {
    let mut w = String::new();
    let mut sites = 0usize;
    let mut rng = Lcg(0x5EED_F0E4);
    w.push_str(
        r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (memory (export "memory") 1)
  (func $leaf_i (param i32) (result i32)
    (i32.add (local.get 0) (call $fork)))
  (func $leaf_f (param f64) (result f64)
    (f64.add (local.get 0) (f64.convert_i32_s (call $fork))))
  (func $leaf_l (param i64 i32) (result i64)
    (i64.add
      (i64.rotl (local.get 0) (i64.const 7))
      (i64.extend_i32_u (i32.add (local.get 1) (call $fork)))))
  (func $mix (param i32 i32) (result i32)
    (i32.xor
      (i32.rotl (local.get 0) (i32.const 5))
      (i32.mul (local.get 1) (i32.const 0x9e3779b1))))
  (func $walk (export "walk") (param $d i32) (result i32)
    (local $acc i32) (local $t i32) (local $i i32) (local $l i64)
    (local $x f64) (local $y f64) (local $f f32)
    (if (i32.eqz (local.get $d)) (then (return (call $fork))))
    (local.set $acc (i32.mul (local.get $d) (i32.const 3)))
    (local.set $t (i32.xor (local.get $d) (i32.const 0x55)))
    (local.set $l (i64.extend_i32_u (local.get $d)))
    (local.set $x (f64.convert_i32_u (local.get $d)))
    (local.set $y (f64.mul (local.get $x) (f64.const 0.5)))
    (local.set $f (f32.convert_i32_u (local.get $d)))
    (local.set $i (i32.const 0))
    (loop $lp
      (local.set $acc (i32.add (local.get $acc) (call $leaf_i (local.get $i))))
      (if (i32.and (local.get $acc) (i32.const 1))
        (then (local.set $x (f64.add (local.get $x) (call $leaf_f (local.get $y))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $lp (i32.lt_u (local.get $i) (i32.const 3))))
    (block $sw
"#,
    );
    sites += 1 + 2; // the base case, the loop
    for c in (0..CASES).rev() {
        let _ = writeln!(w, "    (block $c{c}");
    }
    w.push_str("      (br_table");
    for c in 0..CASES {
        let _ = write!(w, " $c{c}");
    }
    let _ = writeln!(
        w,
        " $c0 (i32.and (local.get $d) (i32.const {})))",
        CASES - 1
    );
    for c in 0..CASES {
        let _ = writeln!(w, "      ) ;; case {c}");
        let recurse_at = (c * 5) % (STATEMENTS + 1);
        for s in 0..=STATEMENTS {
            if s == recurse_at {
                w.push_str(
                    "      (local.set $t (i32.add (local.get $t) (call $walk (i32.sub (local.get $d) (i32.const 1)))))\n",
                );
                sites += 1;
            }
            if s == STATEMENTS {
                break;
            }
            let k = rng.next(8) + 1;
            let (stmt, n) = match rng.next(8) {
                0 => (
                    "(local.set $acc (i32.add (local.get $acc) (call $fork)))".to_string(),
                    1,
                ),
                1 => (
                    format!("(local.set $acc (call $leaf_i (i32.xor (local.get $acc) (i32.const {k}))))"),
                    1,
                ),
                2 => (
                    format!("(local.set $x (f64.add (local.get $x) (call $leaf_f (f64.mul (local.get $y) (f64.const {})))))", k % 4 + 1),
                    1,
                ),
                3 => (
                    "(local.set $l (call $leaf_l (local.get $l) (local.get $acc)))".to_string(),
                    1,
                ),
                4 => (
                    format!(
                        "(if (i32.and (local.get $acc) (i32.const {})) \
                         (then (local.set $t (call $leaf_i (i32.add (local.get $t) (i32.const {k}))))) \
                         (else (local.set $f (f32.add (local.get $f) (f32.demote_f64 (call $leaf_f \
                         (f64.convert_i32_u (i32.and (local.get $acc) (i32.const 255)))))))))",
                        1 << (k % 4)
                    ),
                    2,
                ),
                5 => (
                    "(block $b (br_if $b (i32.eqz (i32.and (local.get $t) (i32.const 3)))) \
                     (local.set $acc (i32.add (local.get $acc) (call $leaf_i (local.get $t)))))"
                        .to_string(),
                    1,
                ),
                6 => (
                    format!(
                        "(i32.store offset={} (i32.and (local.get $acc) (i32.const 0x7ffc)) \
                         (call $leaf_i (local.get $t)))",
                        k * 4
                    ),
                    1,
                ),
                _ => (
                    "(local.set $t (call $mix (local.get $t) (local.get $acc)))".to_string(),
                    0,
                ),
            };
            let _ = writeln!(w, "      {stmt}");
            sites += n;
        }
        if c + 1 < CASES {
            w.push_str("      (br $sw)\n");
        }
    }
    w.push_str(
        r#"    )
    (i32.add
      (i32.add (local.get $acc) (local.get $t))
      (i32.add
        (i32.wrap_i64 (local.get $l))
        (i32.add (i32.trunc_f64_s (local.get $x)) (i32.trunc_f32_s (local.get $f))))))
  (func (export "_start") (drop (call $walk (i32.const 3)))))
"#,
    );
    (w, sites)
}

/// The generated probes, in table order.
pub fn generated() -> anyhow::Result<Vec<Probe>> {
    let (sites, n) = sites_wat();
    anyhow::ensure!(
        n >= 1000,
        "the generated probe has only {n} fork-path sites"
    );
    Ok(vec![
        Probe {
            name: "walk-wat",
            about: "the shape test's `walk` (WAT): i64/f32/f64/i32 locals live across the recursive call, the fork result carried below it".into(),
            wasm: wat::parse_str(WALK_WAT)?,
            warm: 64,
            target: 0.99,
            stack: false,
        },
        Probe {
            name: "walk-f64-v128",
            about: "`walk` (WAT) with a v128, an f64 and an i32 on the operand stack below the recursive call, f64 and v128 locals live across it".into(),
            wasm: wat::parse_str(WALK_F64_V128_WAT)?,
            warm: 64,
            target: 0.99,
            stack: false,
        },
        Probe {
            name: "sites-1k",
            about: "generated (bench/src/depth_probes.rs), shaped like a big compiled C++ function: the fork-path call sites in a 64-way `br_table` switch, straight-line calls, ifs, blocks, a loop, i32/i64/f32/f64 locals; each frame runs one case".into(),
            wasm: wat::parse_str(&sites)?,
            warm: CASES,
            target: 0.9,
            stack: true,
        },
    ])
}
