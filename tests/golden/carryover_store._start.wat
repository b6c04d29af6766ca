;; an operand below the call (a carryover): the landing block's result, stored on unwind by a helper that pops it
;; (fixture carryover_store.wat, function $_start)
  (func $_start (;9;) (type 5)
    (local i32)
    block (result i32) ;; label = @1
      block (result i32) ;; label = @2
        global.get 0
        if ;; label = @3
          i32.const 24
          i32.const 0
          call $__forkify_pop
          global.get 1
          i32.load
          i32.load offset=20
          local.set 0
          block ;; label = @4
            br 0 (;@4;)
          end
          global.get 1
          i32.load
          i32.load offset=16
          br 1 (;@2;)
        end
        i32.const 4096
        local.set 0
        local.get 0
      end
      call $fork
      global.get 0
      if (type 6) (param i32 i32) (result i32 i32) ;; label = @2
        drop
        call $__forkify_save_16_i
        global.get 1
        i32.load
        local.get 0
        i32.store offset=20
        i32.const 0
        br 1 (;@1;)
      end
      i32.store
      i32.const 4096
      i32.load
      if ;; label = @2
        i32.const 160
        call $puts
      else
        i32.const 128
        call $puts
      end
      i32.const 192
      call $puts
      i32.const 4096
      i32.load
      call $put_num
      i32.const 224
      call $puts
      local.get 0
      call $put_num
      call $nl
      return
    end
    i32.const 24
    i32.const 0
    call $__forkify_commit
    if ;; label = @1
    else
      call $_start
    end
  )
