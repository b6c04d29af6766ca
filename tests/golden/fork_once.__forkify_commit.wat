;; the runtime's commit: header write, cursor, and the abort check (ABI §6)
;; (fixture fork_once.wat, function $__forkify_commit)
  (func $__forkify_commit (;10;) (type 6) (param i32 i32 i32) (result i32)
    global.get 1
    i32.load
    local.get 2
    i32.store
    global.get 1
    i32.load
    local.get 0
    i32.store offset=4
    global.get 1
    i32.load
    i32.const 0
    i32.store offset=8
    global.get 1
    i32.load
    i32.const 0
    i32.store offset=12
    global.get 1
    global.get 1
    i32.load
    local.get 1
    i32.add
    i32.store
    global.get 1
    i32.load
    i32.const 16
    i32.add
    global.get 1
    i32.load offset=4
    i32.le_u
    if ;; label = @1
      i32.const 1
      return
    end
    i32.const 3
    global.set 0
    i32.const 0
  )
