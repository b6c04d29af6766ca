// One probe of the V8 recursion-depth benchmark: instantiate FILE with a
// fork import that never forks, call walk(DEPTH), print "ok" or "overflow".
// The harness starts a fresh Node process per probe.
import { readFileSync } from 'node:fs';

const [file, depth] = process.argv.slice(2);
const module = new WebAssembly.Module(readFileSync(file));
const instance = new WebAssembly.Instance(module, { kernel: { kernel_fork: () => 0 } });
try {
  instance.exports.walk(Number(depth));
  process.stdout.write('ok\n');
} catch (e) {
  if (e instanceof RangeError) {
    process.stdout.write('overflow\n');
  } else {
    throw e;
  }
}
