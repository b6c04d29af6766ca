//! A native stand-in for the reference kernel (ABI.md §9), Linux only.
//!
//! It uses the real `fork(2)` and follows the kernel's schedule: the parent
//! waits for the child to finish before `fork` returns to it, pids count from
//! 1 and grow by one per fork, and `waitpid` returns the status the child
//! passed to `exit` (all 32 bits, kept in a shared mapping), or 134 for a
//! child that died without calling it (a trap on wasm). Output goes to
//! the real standard output, each line prefixed with `[pid] `; with
//! `FORKIFY_SIM_TRACE=1` it is instead a JSON-lines trace of every fork,
//! write, exit and trap, which `expected.json` is generated from.
//!
//! This is a development aid only: the instrumented wasm modules never use it.

#![allow(clippy::missing_safety_doc)]

use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

#[cfg(not(target_os = "linux"))]
compile_error!("forkify-guest: the native simulation supports Linux only; build for a wasm target");

mod libc {
    use std::ffi::c_void;
    pub const PROT_READ: i32 = 1;
    pub const PROT_WRITE: i32 = 2;
    pub const MAP_SHARED: i32 = 1;
    pub const MAP_ANONYMOUS: i32 = 0x20;
    extern "C" {
        pub fn fork() -> i32;
        pub fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        pub fn _exit(status: i32) -> !;
        pub fn write(fd: i32, buf: *const c_void, len: usize) -> isize;
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: i32,
            flags: i32,
            fd: i32,
            off: i64,
        ) -> *mut c_void;
    }
}

/// The reference host's default `max_processes`: a fork beyond it fails
/// with EAGAIN.
const MAX_PROCESSES: i32 = 1024;
const MAX: usize = MAX_PROCESSES as usize + 1;
/// What `waitpid` reports for a child that trapped, as the reference host does.
const TRAPPED_WAIT_STATUS: i32 = 134;
const RUNNING: u8 = 1;
const EXITED: u8 = 2;
const REAPED: u8 = 3;

/// Kernel state shared by all processes of one run.
#[repr(C)]
struct Shared {
    next_pid: i32,
    parent: [i32; MAX],
    status: [i32; MAX],
    state: [u8; MAX],
}

static SHARED: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
static MY_PID: AtomicI32 = AtomicI32::new(1);

fn shared() -> &'static mut Shared {
    let mut p = SHARED.load(Ordering::Relaxed);
    if p.is_null() {
        // First call, necessarily in pid 1 before any fork.
        // SAFETY: an anonymous shared mapping, zero-filled.
        let m = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Shared>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(m as isize != -1, "forkify-guest sim: mmap failed");
        p = m.cast();
        // SAFETY: freshly mapped and large enough.
        unsafe {
            (*p).next_pid = 2;
            (*p).state[1] = RUNNING;
        }
        SHARED.store(p, Ordering::Relaxed);
    }
    // SAFETY: processes run one at a time (a parent is blocked in waitpid
    // while its child runs), so there is never concurrent access.
    unsafe { &mut *p }
}

fn raw_write(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid slice.
        let n = unsafe { libc::write(1, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

fn tracing() -> bool {
    std::env::var_os("FORKIFY_SIM_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

fn json_string(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn event(line: String) {
    if tracing() {
        raw_write(format!("{line}\n").as_bytes());
    }
}

pub unsafe fn kernel_fork() -> i32 {
    let sh = shared();
    let me = MY_PID.load(Ordering::Relaxed);
    let child = sh.next_pid;
    if child > MAX_PROCESSES {
        return -11; // EAGAIN
    }
    sh.next_pid += 1;
    sh.parent[child as usize] = me;
    sh.state[child as usize] = RUNNING;
    event(format!(r#"{{"event":"fork","pid":{me},"child":{child}}}"#));
    let r = libc::fork();
    if r < 0 {
        sh.next_pid -= 1;
        sh.state[child as usize] = 0;
        return -12;
    }
    if r == 0 {
        MY_PID.store(child, Ordering::Relaxed);
        return 0;
    }
    let mut raw = 0;
    libc::waitpid(r, &mut raw, 0);
    let sh = shared();
    if sh.state[child as usize] == RUNNING {
        // Died without calling exit (a panic aborts: that is a trap on wasm).
        sh.state[child as usize] = EXITED;
        sh.status[child as usize] = TRAPPED_WAIT_STATUS;
        let reason = if raw & 0x7f != 0 {
            format!("killed by signal {}", raw & 0x7f)
        } else {
            format!("exited with raw status {}", (raw >> 8) & 0xff)
        };
        event(format!(
            r#"{{"event":"trap","pid":{child},"reason":{}}}"#,
            json_string(reason.as_bytes())
        ));
        if !tracing() {
            raw_write(format!("[{child}] <trapped: {reason}>\n").as_bytes());
        }
    }
    child
}

pub unsafe fn kernel_exit(status: i32) -> ! {
    let sh = shared();
    let me = MY_PID.load(Ordering::Relaxed);
    sh.state[me as usize] = EXITED;
    sh.status[me as usize] = status;
    event(format!(
        r#"{{"event":"exit","pid":{me},"status":{status}}}"#
    ));
    libc::_exit(status & 0xff)
}

pub unsafe fn kernel_waitpid(pid: i32) -> i32 {
    let sh = shared();
    let me = MY_PID.load(Ordering::Relaxed);
    if pid <= 0 || pid as usize >= MAX || sh.parent[pid as usize] != me {
        return -10;
    }
    if sh.state[pid as usize] != EXITED {
        return -10;
    }
    sh.state[pid as usize] = REAPED;
    sh.status[pid as usize]
}

pub unsafe fn kernel_write(ptr: *const u8, len: usize) {
    let bytes = std::slice::from_raw_parts(ptr, len);
    let me = MY_PID.load(Ordering::Relaxed);
    if tracing() {
        event(format!(
            r#"{{"event":"write","pid":{me},"data":{}}}"#,
            json_string(bytes)
        ));
    } else {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            out.push_str(&format!("[{me}] {line}"));
        }
        raw_write(out.as_bytes());
    }
}

pub unsafe fn kernel_getpid() -> i32 {
    MY_PID.load(Ordering::Relaxed)
}
