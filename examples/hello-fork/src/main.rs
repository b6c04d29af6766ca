//! The smallest fork: one child, which exits with 7; the parent waits for it.

#![cfg_attr(target_family = "wasm", no_main)]

use forkify_guest::{exit, fork, getpid, println, waitpid, ForkResult};

forkify_guest::entry!(run);

fn run() {
    match fork() {
        Ok(ForkResult::Child) => {
            println!("hello from child (pid {})", getpid());
            exit(7);
        }
        Ok(ForkResult::Parent(child)) => {
            let status = waitpid(child);
            println!(
                "hello from parent (pid {}), child {child} exited with {status}",
                getpid()
            );
        }
        Err(e) => {
            println!("fork failed: {e}");
            exit(1);
        }
    }
}
