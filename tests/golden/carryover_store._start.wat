;; an operand below the call (a carryover): the landing block's result, stored through a scratch global on unwind
;; (fixture carryover_store.wat, function $_start)
  (func $_start (;9;) (type 5)
    (local i32)
    global.get 0
    i32.const 2
    i32.ge_u
    if ;; label = @1
      i32.const 24
      i32.const 0
      call $__forkify_pop
      global.get 1
      i32.load
      i32.load offset=20
      local.set 0
    else
    end
    loop ;; label = @1
      block ;; label = @2
        block ;; label = @3
          block (result i32) ;; label = @4
            global.get 0
            i32.const 2
            i32.ge_u
            if ;; label = @5
              call $__forkify_idx
              i32.const 1
              i32.lt_u
              if ;; label = @6
                global.get 1
                i32.load
                i32.load offset=16
                br 2 (;@4;)
              else
              end
              unreachable
            else
            end
            i32.const 4096
            local.set 0
            local.get 0
          end
          call $fork
          global.get 0
          if (type 6) (param i32 i32) (result i32 i32) ;; label = @4
            drop
            i32.const 0
            i32.const 24
            i32.const 0
            call $__forkify_frame
            if ;; label = @5
              global.get 1
              i32.load
              local.get 0
              i32.store offset=20
            else
            end
            global.set 2
            global.get 1
            i32.load
            global.get 2
            i32.store offset=16
            br 2 (;@2;)
          else
          end
          i32.store
          i32.const 4096
          i32.load
          if ;; label = @4
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
      i32.const 24
      i32.add
      i32.store
    end
  )
