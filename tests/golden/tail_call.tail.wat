;; a tail call on a fork path: a call followed by `return`
;; (fixture tail_call.wat, function $tail)
  (func $tail (;10;) (type 2) (param i32) (result i32)
    block (result i32) ;; label = @1
      block (result i32) ;; label = @2
        global.get 0
        if ;; label = @3
          i32.const 16
          i32.const 1
          call $__forkify_pop
        end
        local.get 0
        i32.const 10
        i32.mul
        call $forker
        global.get 0
        if (type 2) (param i32) (result i32) ;; label = @3
          drop
          i32.const 0
          br 2 (;@1;)
        end
        return
      end
      return
    end
    i32.const 16
    i32.const 1
    call $__forkify_commit
    if (result i32) ;; label = @1
      i32.const 0
    else
      i32.const 0
      call $tail
    end
  )
