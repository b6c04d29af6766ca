// The V8 recursion-depth probes on Node (bench/src/depth.rs). FILE exports
// walk(depth); its fork import never forks (returns 0).
//
//   node [V8 flags] depth.mjs FILE DEPTH [WARM]
//       One probe: walk(WARM) first when given (so every function and case
//       the deep call reaches is compiled at the top of the stack), then
//       walk(DEPTH). Prints "ok" or "overflow", then "warm RESULT" when
//       WARM was given. The harness starts a fresh Node process per probe.
//   node [V8 flags] depth.mjs --search FILE WARM
//       The whole search in this process, a fresh instance per attempt:
//       prints {"max_depth":N,"probes":P,"warm":"RESULT"} ("warm" absent
//       when walk(WARM) overflows). Agrees with the fresh-process search to
//       a frame or two; bench/depth-quick.sh uses it.
// A probe shallower than WARM warms up with walk(DEPTH) instead.
import { readFileSync } from 'node:fs';
import './depth-search.js'; // globalThis.searchDepth

const imports = { kernel: { kernel_fork: () => 0 } };

// walk(min(WARM, DEPTH)), then walk(DEPTH); the warm-up result only when
// the whole warm-up ran.
function attempt(module, depth, warm) {
  const walk = new WebAssembly.Instance(module, imports).exports.walk;
  try {
    const w = warm === undefined ? undefined : Math.min(warm, depth);
    const r = w === undefined ? undefined : String(walk(w));
    walk(depth);
    return { ok: true, warm: w === warm ? r : undefined };
  } catch (e) {
    if (e instanceof RangeError) return { ok: false };
    throw e;
  }
}

const args = process.argv.slice(2);
if (args[0] === '--search') {
  const module = new WebAssembly.Module(readFileSync(args[1]));
  const warm = Number(args[2]);
  const found = searchDepth((depth) => attempt(module, depth, warm), warm);
  process.stdout.write(JSON.stringify(found) + '\n');
} else {
  const [file, depth, warm] = args;
  const module = new WebAssembly.Module(readFileSync(file));
  const r = attempt(module, Number(depth), warm === undefined ? undefined : Number(warm));
  process.stdout.write(r.ok ? 'ok\n' : 'overflow\n');
  if (r.warm !== undefined) process.stdout.write(`warm ${r.warm}\n`);
}
