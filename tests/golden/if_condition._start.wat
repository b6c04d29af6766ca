;; a fork inside an `if`: the `if` lowered to blocks (reshape), so the replay entry branches straight to the call and never evaluates the condition
;; (fixture if_condition.wat, function $_start)
  (func $_start (;9;) (type 5)
    (local i32 i32)
    block (result i32) ;; label = @1
      block (result i32) ;; label = @2
        block ;; label = @3
          block ;; label = @4
            global.get 0
            if ;; label = @5
              i32.const 16
              i32.const 0
              call $__forkify_pop
              br 1 (;@4;)
            end
            i32.const 4096
            i32.load
            br_if 1 (;@3;)
            i32.const 4096
            i32.const 1
            i32.store
          end
          call $fork
          local.set 0
          global.get 0
          if ;; label = @4
            i32.const 0
            br 3 (;@1;)
          end
          i32.const 128
          call $puts
          i32.const 100
          local.get 0
          i32.add
          br 1 (;@2;)
        end
        i32.const 160
        call $puts
        i32.const -1
      end
      local.set 1
      i32.const 192
      call $puts
      local.get 1
      call $put_num
      call $nl
      return
    end
    i32.const 16
    i32.const 0
    call $__forkify_commit
    if ;; label = @1
    else
      call $_start
    end
  )
