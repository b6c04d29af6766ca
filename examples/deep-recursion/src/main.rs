//! Forks 1,000 calls deep. Every level of a non-inlined recursive function
//! keeps i32, i64, f32 and f64 state and a heap Vec live across its recursive
//! call; the bottom level forks. Parent and child both return through all
//! 1,000 levels and fold that state into a checksum, which must equal the
//! checksum of the same recursion without a fork.

#![cfg_attr(target_family = "wasm", no_main)]

use std::hint::black_box;
use std::sync::atomic::{AtomicI32, Ordering};

use forkify_guest::{exit, fork, getpid, println, waitpid, ForkResult};

const DEPTH: u32 = 1000;

/// What `fork` returned at the bottom: the child's pid, 0 in the child, or
/// -errno. `i32::MIN` until the bottom is reached with `fork_here`.
static FORK_RESULT: AtomicI32 = AtomicI32::new(i32::MIN);

forkify_guest::entry!(run);

fn run() {
    let pid = getpid();
    let reference = descend(1, 1, 1, 1.0, 1.0, false);
    println!("pid {pid}: checksum of {DEPTH} levels without fork: {reference:#018x}");
    let checksum = descend(1, 1, 1, 1.0, 1.0, true);
    let me = getpid();
    let ok = checksum == reference;
    let verdict = if ok { "matches" } else { "DIFFERS" };
    match FORK_RESULT.load(Ordering::Relaxed) {
        0 => {
            println!("child (pid {me}): checksum after fork at depth {DEPTH}: {checksum:#018x} {verdict}");
            exit(if ok { 42 } else { 1 });
        }
        child if child > 0 => {
            let status = waitpid(child);
            println!(
                "parent (pid {me}): checksum after fork at depth {DEPTH}: {checksum:#018x} {verdict}; child {child} exited with {status}"
            );
            if !ok {
                exit(1);
            }
        }
        err => {
            println!(
                "pid {me}: fork at depth {DEPTH} failed with errno {}; checksum {checksum:#018x} {verdict}",
                err.wrapping_neg()
            );
            exit(2);
        }
    }
}

#[inline(always)]
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x0000_0100_0000_01b3)
}

/// One level of the recursion; `a`..`d` and `heap` stay live across the call.
#[inline(never)]
fn descend(level: u32, a: i32, b: i64, c: f32, d: f64, fork_here: bool) -> u64 {
    let heap: Vec<u32> = (0..=level % 5)
        .map(|k| level.wrapping_mul(2_654_435_761).wrapping_add(k))
        .collect();
    let heap = black_box(heap);
    let inner = if level == DEPTH {
        bottom(fork_here)
    } else {
        descend(
            level + 1,
            a.wrapping_mul(31).wrapping_add(level as i32),
            b.wrapping_mul(-7)
                .wrapping_add(i64::from(level) * 1_000_003),
            c * 0.999 + 1.0,
            d * 1.0001 + f64::from(level),
            fork_here,
        )
    };
    let mut h = mix(inner, u64::from(level));
    h = mix(h, a as u32 as u64);
    h = mix(h, b as u64);
    h = mix(h, u64::from(c.to_bits()));
    h = mix(h, d.to_bits());
    for &x in &heap {
        h = mix(h, u64::from(x));
    }
    h
}

#[inline(never)]
fn bottom(fork_here: bool) -> u64 {
    if fork_here {
        let r = match fork() {
            Ok(ForkResult::Parent(child)) => child,
            Ok(ForkResult::Child) => 0,
            Err(e) => -e.0,
        };
        FORK_RESULT.store(r, Ordering::Relaxed);
    }
    0xcbf2_9ce4_8422_2325
}
