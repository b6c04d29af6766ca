;; a fork inside an `if`: replay takes the arm from the call index, not from the condition
;; (fixture if_condition.wat, function $_start)
  (func $_start (;9;) (type 5)
    (local i32 i32)
    global.get 0
    i32.const 2
    i32.ge_u
    if ;; label = @1
      i32.const 16
      i32.const 0
      call $__forkify_pop
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
                i32.const 1
                br 2 (;@4;)
              else
              end
              unreachable
            else
            end
            i32.const 4096
            i32.load
            i32.eqz
          end
          if (result i32) ;; label = @4
            block ;; label = @5
              global.get 0
              i32.const 2
              i32.ge_u
              if ;; label = @6
                call $__forkify_idx
                i32.const 1
                i32.lt_u
                if ;; label = @7
                  br 2 (;@5;)
                else
                end
                unreachable
              else
              end
              i32.const 4096
              i32.const 1
              i32.store
            end
            call $fork
            global.get 0
            if (type 2) (param i32) (result i32) ;; label = @5
              drop
              i32.const 0
              i32.const 16
              i32.const 0
              call $__forkify_frame
              drop
              br 3 (;@2;)
            else
            end
            local.set 0
            i32.const 128
            call $puts
            i32.const 100
            local.get 0
            i32.add
          else
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
    end
  )
