// Clocks for the workload drivers (bench/js/workload-*.mjs).
//
// wallMs: performance.now(). cpuMs: CPU time of the main thread, which
// runs the wasm code, from Linux's /proc/self/task/PID/schedstat
// (nanoseconds on CPU; the main thread's id is the process id). Time spent
// waiting for a core while other processes run is not in it, so on a
// loaded machine it is steadier than wall time. Where schedstat is
// missing, process.cpuUsage() (all threads, microseconds) stands in.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const schedstat = `/proc/self/task/${process.pid}/schedstat`;

export function wallMs() {
  return performance.now();
}

export function cpuMs() {
  try {
    return Number(readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e3;
  }
}

// The clock source cpuMs reads, for the result line.
export function cpuClock() {
  try {
    readFileSync(schedstat, 'utf8');
    return 'schedstat main thread';
  } catch {
    return 'process.cpuUsage';
  }
}
