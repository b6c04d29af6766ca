// Run-time overhead on V8: calls spin(N, SENTINEL) of every FILE, one
// warm-up call each, then ROUNDS rounds that time each file once in turn
// (side by side, so background load hits all alike). Prints JSON:
// {"times_ms": [[file0 round0, ...], ...], "results": [...]}.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [n, sentinel, rounds, ...files] = process.argv.slice(2);
const spins = files.map((f) => {
  const module = new WebAssembly.Module(readFileSync(f));
  const instance = new WebAssembly.Instance(module, { kernel: { kernel_fork: () => 0 } });
  return instance.exports.spin;
});
const results = spins.map((spin) => spin(Number(n), Number(sentinel)) >>> 0);
const times = files.map(() => []);
for (let r = 0; r < Number(rounds); r++) {
  spins.forEach((spin, i) => {
    const t0 = performance.now();
    const h = spin(Number(n), Number(sentinel)) >>> 0;
    times[i].push(performance.now() - t0);
    if (h !== results[i]) throw new Error(`${files[i]}: result changed`);
  });
}
process.stdout.write(JSON.stringify({ times_ms: times, results }) + '\n');
