//! `walk(depth)`: recurses `depth` times and calls the fork import at the
//! bottom, so every frame of the recursion is on a fork path. The harness
//! finds the deepest `depth` that completes before the engine's stack
//! overflows. The host's fork import returns without forking.
//!
//! Each frame keeps an i64, an f64 and an i32 live across the recursive
//! call, as real recursive code does, so the locals an instrumenter adds
//! show up in the frame size.
#![no_std]

#[link(wasm_import_module = "kernel")]
extern "C" {
    fn kernel_fork() -> i32;
}

#[inline(never)]
fn walk_rec(depth: u32, acc: u64, scale: f64) -> u64 {
    if depth == 0 {
        // SAFETY: the host's fork import takes no arguments.
        let r = unsafe { kernel_fork() };
        return acc ^ r as u64;
    }
    let x = acc
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(depth as u64);
    let y = scale * 1.000_001 + depth as f64;
    let below = walk_rec(depth - 1, x, y);
    below.rotate_left(depth & 63) ^ x ^ (y as u64)
}

/// Recurses `depth` frames deep through a fork-path call.
#[no_mangle]
pub extern "C" fn walk(depth: u32) -> u64 {
    walk_rec(depth, core::hint::black_box(1), 0.5)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
