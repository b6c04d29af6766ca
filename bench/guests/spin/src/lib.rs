//! `spin(n, sentinel)`: a CPU-bound loop whose body is on a fork path.
//! `step` calls `maybe_fork`, which calls the fork import only when the
//! running hash equals `sentinel`; the harness passes a sentinel and a host
//! fork import that never fork, so this measures what instrumentation costs
//! a program that never forks: state checks after every fork-path call, and
//! whatever the rewrite does to register allocation.
#![no_std]

#[link(wasm_import_module = "kernel")]
extern "C" {
    fn kernel_fork() -> i32;
}

const SLOTS: usize = 4096;
static mut TABLE: [u32; SLOTS] = [0; SLOTS];

#[inline(never)]
fn maybe_fork(h: u32, sentinel: u32) -> u32 {
    if h == sentinel {
        // SAFETY: the host's fork import takes no arguments.
        unsafe { kernel_fork() as u32 }
    } else {
        h.rotate_left(5) ^ 0x5bd1_e995
    }
}

#[inline(never)]
fn step(h: u32, i: u32, sentinel: u32) -> u32 {
    // SAFETY: single-threaded guest; no other reference to TABLE exists.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(TABLE) };
    let idx = (h as usize ^ (h as usize >> 13)) & (SLOTS - 1);
    let v = table[idx].wrapping_add(i).wrapping_mul(0x9E37_79B1);
    table[idx] = v;
    let h2 = h ^ v ^ (v >> 15);
    if i & 3 == 0 {
        maybe_fork(h2, sentinel) ^ i
    } else {
        h2.wrapping_mul(0x85eb_ca6b).rotate_left(13)
    }
}

/// Runs `n` steps from a zeroed table and returns the final hash (the
/// same for every call with the same arguments).
#[no_mangle]
pub extern "C" fn spin(n: u32, sentinel: u32) -> u32 {
    // SAFETY: single-threaded guest; no other reference to TABLE exists.
    unsafe { (*core::ptr::addr_of_mut!(TABLE)).fill(0) };
    let mut h = 0x811c_9dc5u32;
    let mut i = 0;
    while i < n {
        h = step(h, i, sentinel);
        i += 1;
    }
    h
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
