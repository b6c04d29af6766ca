//! A child gets a copy of its parent's memory: the child changes its copy of
//! a BTreeMap, a String, a Vec and a 200 kB buffer, and the parent's stay as
//! they were.

#![cfg_attr(target_family = "wasm", no_main)]

use std::collections::BTreeMap;

use forkify_guest::{exit, fork, getpid, println, waitpid, ForkResult};

forkify_guest::entry!(run);

struct Data {
    fruit: BTreeMap<String, Vec<i32>>,
    log: String,
    numbers: Vec<u64>,
    big: Vec<u8>,
}

impl Data {
    fn new() -> Data {
        let mut fruit = BTreeMap::new();
        fruit.insert("apples".to_string(), vec![1, 2, 3]);
        fruit.insert("pears".to_string(), vec![10, 20]);
        Data {
            fruit,
            log: String::from("created"),
            numbers: (1..=10).collect(),
            // 200,000 bytes: spans several 64 KiB wasm pages.
            big: (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        }
    }

    fn change(&mut self) {
        self.fruit.get_mut("apples").unwrap().push(4);
        self.fruit.remove("pears");
        self.fruit.insert("plums".to_string(), vec![7, 8, 9]);
        self.log.push_str(", changed by the child");
        for n in &mut self.numbers {
            *n *= 100;
        }
        self.big.iter_mut().for_each(|b| *b = 0xff);
    }

    fn describe(&self) -> String {
        let big_sum: u64 = self.big.iter().map(|&b| u64::from(b)).sum();
        format!(
            "fruit={:?} log={:?} numbers={:?} big: {} bytes summing to {big_sum}",
            self.fruit,
            self.log,
            self.numbers,
            self.big.len()
        )
    }
}

fn run() {
    let mut data = Data::new();
    println!("parent (pid {}) before fork: {}", getpid(), data.describe());
    match fork() {
        Ok(ForkResult::Child) => {
            data.change();
            println!(
                "child (pid {}) after changing: {}",
                getpid(),
                data.describe()
            );
            exit(3);
        }
        Ok(ForkResult::Parent(child)) => {
            let status = waitpid(child);
            println!(
                "parent (pid {}) after child {child} exited with {status}: {}",
                getpid(),
                data.describe()
            );
        }
        Err(e) => {
            println!("fork failed: {e}");
            exit(1);
        }
    }
}
