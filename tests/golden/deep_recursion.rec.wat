;; a recursive function: two fork-path calls, the frame's live locals, no local added
;; (fixture deep_recursion.wat, function $rec)
  (func $rec (;9;) (type 6) (param i32) (result i64)
    (local i32 i64 i64 f32 f64)
    block (result i32) ;; label = @1
      block (result i64) ;; label = @2
        block ;; label = @3
          block ;; label = @4
            block ;; label = @5
              block ;; label = @6
                global.get 1
                if ;; label = @7
                  i32.const 56
                  i32.const 0
                  call $__forkify_pop
                  global.get 2
                  i32.load
                  i32.load offset=16
                  local.set 1
                  global.get 2
                  i32.load
                  i64.load offset=24
                  local.set 2
                  global.get 2
                  i32.load
                  f32.load offset=32
                  local.set 4
                  global.get 2
                  i32.load
                  f64.load offset=40
                  local.set 5
                  global.get 2
                  i32.load
                  i64.load offset=48
                  local.set 3
                  block ;; label = @8
                    call $__forkify_idx
                    br_table 2 (;@6;) 4 (;@4;) 0 (;@8;)
                  end
                  unreachable
                end
                local.get 0
                i32.const -1640531535
                i32.mul
                i32.const 1540483477
                i32.xor
                local.set 1
                local.get 0
                i64.extend_i32_u
                i64.const 1099511628211
                i64.mul
                local.set 2
                local.get 0
                f32.convert_i32_u
                f32.const 0x1.8p-2 (;=0.375;)
                f32.add
                local.set 4
                local.get 0
                f64.convert_i32_u
                f64.const 0x1.8p+1 (;=3;)
                f64.div
                local.set 5
                local.get 0
                br_if 1 (;@5;)
              end
              call $fork
              global.get 1
              if (type 2) (param i32) (result i32) ;; label = @6
                drop
                global.get 2
                i32.load
                local.get 1
                i32.store offset=16
                global.get 2
                i32.load
                local.get 2
                i64.store offset=24
                global.get 2
                i32.load
                local.get 4
                f32.store offset=32
                global.get 2
                i32.load
                local.get 5
                f64.store offset=40
                global.get 2
                i32.load
                local.get 3
                i64.store offset=48
                i32.const 0
                br 5 (;@1;)
              end
              global.set $forked
              br 2 (;@3;)
            end
          end
          local.get 0
          i32.const 1
          i32.sub
          call $rec
          local.set 3
          global.get 1
          if ;; label = @4
            global.get 2
            i32.load
            local.get 1
            i32.store offset=16
            global.get 2
            i32.load
            local.get 2
            i64.store offset=24
            global.get 2
            i32.load
            local.get 4
            f32.store offset=32
            global.get 2
            i32.load
            local.get 5
            f64.store offset=40
            i32.const 1
            br 3 (;@1;)
          end
        end
        local.get 3
        i64.const 31
        i64.mul
        local.get 1
        i64.extend_i32_u
        i64.add
        local.get 2
        local.get 4
        i32.reinterpret_f32
        i64.extend_i32_u
        i64.xor
        local.get 5
        i64.reinterpret_f64
        i64.add
        i64.add
      end
      return
    end
    i32.const 56
    i32.const 0
    call $__forkify_commit
    if (result i64) ;; label = @1
      i64.const 0
    else
      i32.const 0
      call $rec
    end
  )
