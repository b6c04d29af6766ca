;; one fork in the entry: preamble, one landing, one unwind check
;; (fixture fork_once.wat, function $_start)
  (func $_start (;9;) (type 5)
    (local i32)
    block (result i32) ;; label = @1
      block ;; label = @2
        global.get 0
        if ;; label = @3
          i32.const 16
          i32.const 0
          call $__forkify_pop
          br 1 (;@2;)
        end
        i32.const 128
        call $puts
      end
      call $fork
      local.set 0
      global.get 0
      if ;; label = @2
        i32.const 0
        br 1 (;@1;)
      end
      local.get 0
      i32.eqz
      if ;; label = @2
        i32.const 160
        call $puts
        i32.const 7
        call $exit
        unreachable
      end
      i32.const 192
      call $puts
      local.get 0
      call $put_num
      i32.const 224
      call $puts
      local.get 0
      call $waitpid
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
