//! Twenty forks in a loop. Child `i` sums its own slice of a heap vector and
//! exits with that sum modulo 251; the parent then waits for every child.

#![cfg_attr(target_family = "wasm", no_main)]

use forkify_guest::{exit, fork, getpid, println, waitpid, ForkResult, Pid};

const CHILDREN: usize = 20;
const CHUNK: usize = 10;

forkify_guest::entry!(run);

fn run() {
    // The squares 1, 4, 9, ..., 200^2.
    let data: Vec<u64> = (1..=(CHILDREN * CHUNK) as u64).map(|x| x * x).collect();
    let mut children: Vec<(usize, Pid)> = Vec::new();
    for i in 0..CHILDREN {
        match fork() {
            Ok(ForkResult::Child) => child(i, &data),
            Ok(ForkResult::Parent(pid)) => children.push((i, pid)),
            Err(e) => println!("fork #{i} failed: {e}"),
        }
    }
    let mut total: i64 = 0;
    for (i, pid) in children {
        let status = waitpid(pid);
        total += i64::from(status);
        println!("child {i} (pid {pid}) exited with {status}");
    }
    println!("parent (pid {}): total of exit statuses {total}", getpid());
}

#[inline(never)]
fn child(i: usize, data: &[u64]) -> ! {
    let range = i * CHUNK..(i + 1) * CHUNK;
    let sum: u64 = data[range.clone()].iter().sum();
    let status = (sum % 251) as i32;
    println!(
        "child {i} (pid {}): sum of squares {}..={} is {sum}, exiting with {status}",
        getpid(),
        range.start + 1,
        range.end
    );
    exit(status)
}
