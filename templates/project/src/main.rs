//! {{name}}: a WebAssembly program that calls `fork()`.
//!
//! It imports the reference kernel of the fork ABI (module `kernel`:
//! `kernel_fork`, `kernel_exit`, `kernel_waitpid`, `kernel_write`,
//! `kernel_getpid`) and exports `_start` and `memory`. `cargo forkify build`
//! instruments it so that `kernel_fork` really forks: the child gets a copy
//! of memory, and both continue from the call with different results.

#![cfg_attr(target_family = "wasm", no_main)]

#[cfg(target_family = "wasm")]
mod kernel {
    /// Provided by the host (`cargo forkify run`, or forkify-host.mjs in
    /// Node and browsers).
    #[link(wasm_import_module = "kernel")]
    extern "C" {
        /// The child's pid in the parent, 0 in the child, -errno on failure.
        pub fn kernel_fork() -> i32;
        /// Ends this process with `status`.
        pub fn kernel_exit(status: i32) -> !;
        /// The exit status of a child, or -10 (ECHILD).
        pub fn kernel_waitpid(pid: i32) -> i32;
        /// Writes `len` bytes at `ptr` to this process's output.
        pub fn kernel_write(ptr: *const u8, len: usize);
        /// This process's pid (the first process is 1).
        pub fn kernel_getpid() -> i32;
    }
}

#[cfg(target_family = "wasm")]
mod sys {
    use super::kernel;

    /// Forks: `Ok(0)` in the child, `Ok(child_pid)` in the parent, or
    /// `Err(errno)` (12, ENOMEM, when the host's save buffer is too small).
    /// Never inlined, so the program has one fork call site.
    #[inline(never)]
    pub fn fork() -> Result<i32, i32> {
        // SAFETY: no arguments; the host and the instrumentation do the rest.
        let r = unsafe { kernel::kernel_fork() };
        if r < 0 {
            Err(-r)
        } else {
            Ok(r)
        }
    }

    pub fn exit(status: i32) -> ! {
        // SAFETY: no memory is passed.
        unsafe { kernel::kernel_exit(status) }
    }

    pub fn waitpid(pid: i32) -> i32 {
        // SAFETY: no memory is passed.
        unsafe { kernel::kernel_waitpid(pid) }
    }

    pub fn getpid() -> i32 {
        // SAFETY: no memory is passed.
        unsafe { kernel::kernel_getpid() }
    }

    /// Writes `text` with one `kernel_write`.
    pub fn print(text: &str) {
        // SAFETY: the kernel reads `len` bytes at `ptr`, which `text` covers.
        unsafe { kernel::kernel_write(text.as_ptr(), text.len()) }
    }
}

/// The program: one fork; the child changes its copy of a heap string and
/// exits with 3, the parent waits for it and still has the original.
#[cfg(target_family = "wasm")]
#[no_mangle]
pub extern "C" fn _start() {
    use sys::{exit, fork, getpid, print, waitpid};

    let mut greeting = String::from("hello");
    match fork() {
        Ok(0) => {
            greeting.push_str(" from the child");
            print(&format!("child: pid {}, greeting {greeting:?}\n", getpid()));
            exit(3);
        }
        Ok(child) => {
            let status = waitpid(child);
            print(&format!(
                "parent: pid {}, child {child} exited with {status}, greeting {greeting:?}\n",
                getpid()
            ));
        }
        Err(errno) => {
            print(&format!("fork failed: errno {errno}\n"));
            exit(1);
        }
    }
}

#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!(
        "this is a WebAssembly program: build it with `cargo forkify build` \
         and run it with `cargo forkify run` (see README.md)"
    );
    std::process::exit(2);
}
