//! A process tree three levels deep: every process above the leaves forks two
//! children, waits for both and exits with `10 + depth`.

#![cfg_attr(target_family = "wasm", no_main)]

use forkify_guest::{exit, fork, getpid, println, waitpid, ForkResult};

const MAX_DEPTH: i32 = 2;
const FANOUT: i32 = 2;

forkify_guest::entry!(run);

fn run() {
    node(0)
}

/// Runs one process of the tree; the children recurse into `node` themselves.
#[inline(never)]
fn node(depth: i32) -> ! {
    let pid = getpid();
    println!("pid {pid} at depth {depth}: started");
    let mut children = Vec::new();
    if depth < MAX_DEPTH {
        for i in 0..FANOUT {
            match fork() {
                Ok(ForkResult::Child) => node(depth + 1),
                Ok(ForkResult::Parent(child)) => {
                    println!("pid {pid} at depth {depth}: forked child #{i}, pid {child}");
                    children.push(child);
                }
                Err(e) => println!("pid {pid} at depth {depth}: fork #{i} failed: {e}"),
            }
        }
    }
    for child in children {
        let status = waitpid(child);
        println!("pid {pid} at depth {depth}: child {child} exited with {status}");
    }
    let status = 10 + depth;
    println!("pid {pid} at depth {depth}: exiting with {status}");
    exit(status)
}
