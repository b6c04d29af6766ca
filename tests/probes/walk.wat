;; `walk`: four declared locals (i64, f32, f64, i32) live across the
;; recursive call, the fork result carried below it. Shared by the shape test
;; (tests/tests/shape.rs, walk_keeps_its_declared_locals) and the benchmark's
;; depth probe `walk-wat` (bench/src/depth_probes.rs).
(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (memory (export "memory") 1)
  (func $walk (export "walk") (param $d i32) (result i32) (local i64 f32 f64 i32)
    (local.set 1 (i64.extend_i32_s (local.get $d)))
    (local.set 2 (f32.convert_i32_s (local.get $d)))
    (local.set 3 (f64.convert_i32_s (local.get $d)))
    (local.set 4 (i32.mul (local.get $d) (i32.const 3)))
    (if (result i32) (i32.eqz (local.get $d))
      (then (call $fork))
      (else
        (i32.add
          (i32.add (call $fork) (call $walk (i32.sub (local.get $d) (i32.const 1))))
          (i32.add
            (i32.add (i32.wrap_i64 (local.get 1)) (i32.trunc_f32_s (local.get 2)))
            (i32.add (i32.trunc_f64_s (local.get 3)) (local.get 4)))))))
  (func (export "_start") (drop (call $walk (i32.const 3)))))
