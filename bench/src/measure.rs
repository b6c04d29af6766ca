//! Runs one child process and measures it: wall time, CPU time and peak
//! resident set size.
//!
//! The child runs under GNU `/usr/bin/time`, which forks it and reports
//! its rusage. Reading the rusage of our own direct child would be wrong
//! for RSS: Linux carries the parent's peak RSS into a child across
//! fork/vfork + exec, so every tool would inherit the harness's own peak.
//! `time` is small, so what it passes on is a few MiB.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What one run of a child process cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Wall-clock seconds from spawn to exit (ours, microsecond resolution).
    pub wall: f64,
    /// User + system CPU seconds of the child (from `time`, 10 ms resolution).
    pub cpu: f64,
    /// Peak resident set size in KiB (from `time`).
    pub max_rss_kib: u64,
}

/// The outcome of a measured run.
pub struct Outcome {
    pub cost: Cost,
    pub success: bool,
    /// The exit code (`time` passes the tool's on), None when killed.
    pub code: Option<i32>,
    /// The last lines of standard error (for refusal reasons).
    pub stderr_tail: String,
}

/// Runs `cmd` (program and arguments only) under `/usr/bin/time`, stdout
/// discarded, stderr captured into `stderr_path`; kills it after `timeout`
/// seconds.
pub fn run(cmd: &Command, stderr_path: &Path, timeout: f64) -> Result<Outcome> {
    let err = File::create(stderr_path)
        .with_context(|| format!("cannot create {}", stderr_path.display()))?;
    let usage_path = stderr_path.with_extension("time");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%U %S %M", "-o"])
        .arg(&usage_path)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        // Its own process group, so a timeout kills `time` and the tool.
        .process_group(0);
    let start = Instant::now();
    let mut child = timed
        .spawn()
        .with_context(|| format!("cannot start /usr/bin/time {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    // The watchdog checks `done` under the lock before killing, and `done`
    // is set before the child is reaped, so it never signals a reused pid.
    let done = Arc::new(Mutex::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs_f64(timeout)).is_err() {
                let done = done.lock().unwrap_or_else(|p| p.into_inner());
                if !*done {
                    killed.store(true, Ordering::SeqCst);
                    // SAFETY: signalling the process group of our own child.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
            }
        })
    };
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child without reaping it.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("waitid failed for {cmd:?}: {e}");
        }
    }
    let wall = start.elapsed().as_secs_f64();
    *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
    let _ = tx.send(());
    let _ = watchdog.join();
    let timed_out = killed.load(Ordering::SeqCst);
    let status = child.wait()?;
    // The last line of `time`'s report: "USER SYS MAXRSS_KIB".
    let usage = std::fs::read_to_string(&usage_path).unwrap_or_default();
    let fields: Vec<f64> = usage
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let cost = Cost {
        wall,
        cpu: fields.first().copied().unwrap_or(f64::NAN)
            + fields.get(1).copied().unwrap_or(f64::NAN),
        max_rss_kib: fields.get(2).copied().unwrap_or(0.0) as u64,
    };
    let success = !timed_out && status.success();
    let text = std::fs::read_to_string(stderr_path).unwrap_or_default();
    let mut tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if tail.len() > 4 {
        tail.drain(..tail.len() - 4);
    }
    let mut stderr_tail = tail.join(" / ");
    if timed_out {
        stderr_tail = format!("stopped after {timeout:.0} s (the harness's time limit per run)");
    } else if !success && stderr_tail.is_empty() {
        stderr_tail = format!("{status}");
    }
    clip(&mut stderr_tail, 400);
    Ok(Outcome {
        cost,
        success,
        code: if timed_out { None } else { status.code() },
        stderr_tail,
    })
}

/// The median of `xs` (mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of integer samples.
pub fn median_u64(xs: &[u64]) -> u64 {
    median(&xs.iter().map(|&x| x as f64).collect::<Vec<_>>()).round() as u64
}

/// Cuts `text` to at most `max` bytes (at a character boundary) and marks
/// the cut with an ellipsis.
pub fn clip(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
}
