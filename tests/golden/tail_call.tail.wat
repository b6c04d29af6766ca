;; a tail call on a fork path: a call followed by `return`
;; (fixture tail_call.wat, function $tail)
  (func $tail (;10;) (type 2) (param i32) (result i32)
    global.get 0
    i32.const 2
    i32.ge_u
    if ;; label = @1
      i32.const 16
      i32.const 1
      call $__forkify_pop
    else
    end
    loop (result i32) ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          block (result i32) ;; label = @4
            global.get 0
            i32.const 2
            i32.ge_u
            if ;; label = @5
              call $__forkify_idx
              i32.const 1
              i32.lt_u
              if ;; label = @6
                i32.const 0
                br 2 (;@4;)
              else
              end
              unreachable
            else
            end
            local.get 0
            i32.const 10
            i32.mul
          end
          call $forker
          global.get 0
          if (type 2) (param i32) (result i32) ;; label = @4
            drop
            i32.const 0
            i32.const 16
            i32.const 1
            call $__forkify_frame
            drop
            br 2 (;@2;)
          else
          end
          return
        end
        return
      end
      global.get 0
      i32.const 3
      i32.eq
      br_if 0 (;@1;)
      global.get 1
      global.get 1
      i32.load
      i32.const 16
      i32.add
      i32.store
      i32.const 0
    end
  )
