// Real-program workload: QuickJS (npm @jitl/quickjs-wasmfile-release-sync,
// an Emscripten build) running bench/js/workload-quickjs-guest.js.
//
//   node [V8 flags] workload-quickjs.mjs PKG_DIR WASM [ROUNDS]
//
// PKG_DIR is the unpacked npm package (its dist/emscripten-module.mjs and
// dist/ffi.mjs are the package's own glue); WASM replaces its
// emscripten-module.wasm (the original or an instrumented copy). The
// driver talks to QuickJS through the package's C API (QTS_*), defines
// a global host(x) whose calls go through the host-call import `a.s` (the
// import the instrumenters were told forks; here it just returns), evaluates
// the guest program, runs run(1) as a warm-up and then run(ROUNDS) timed.
// Prints one JSON line:
//   {"workload":"quickjs","ms":T,"cpu_ms":C,"warmup_ms":W,"checksum":"...",...}
// where ms (wall) and cpu_ms (main-thread CPU, see workload-clock.mjs)
// cover run(ROUNDS) only (no compilation, instantiation or warm-up) and
// checksum is the guest's result plus the host-call count.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cpuClock, cpuMs, wallMs } from './workload-clock.mjs';

const [pkg, wasmFile, roundsArg = '30'] = process.argv.slice(2);
if (!pkg || !wasmFile) {
  throw new Error('usage: workload-quickjs.mjs PKG_DIR WASM [ROUNDS]');
}
const rounds = Number(roundsArg);
const dist = path.join(pkg, 'dist');
const { default: QuickJSRaw } = await import(pathToFileURL(path.join(dist, 'emscripten-module.mjs')).href);
const { QuickJSFFI } = await import(pathToFileURL(path.join(dist, 'ffi.mjs')).href);
const guest = readFileSync(
  path.join(path.dirname(fileURLToPath(import.meta.url)), 'workload-quickjs-guest.js'),
  'utf8',
);
const bytes = readFileSync(wasmFile);

let ffi = null;
let hostCalls = 0;
const module = await QuickJSRaw({
  // The glue would fetch emscripten-module.wasm next to itself; hand it
  // the bytes of WASM instead.
  instantiateWasm(imports, onSuccess) {
    WebAssembly.instantiate(bytes, imports).then(({ instance, module }) => onSuccess(instance, module));
    return {};
  },
  // Module.callbacks is what the glue's imports call (a.s = callFunction,
  // a.i = shouldInterrupt, a.h/a.g = module loading, a.t = freeHostRef).
  callbacks: {
    callFunction(_asyncify, ctx, _thisPtr, argc, argv, _hostRefId) {
      hostCalls++;
      const x = argc > 0 ? ffi.QTS_GetFloat64(ctx, ffi.QTS_ArgvGetJSValueConstPointer(argv, 0)) : 0;
      // A heap JSValue*; QuickJS's side copies and frees it.
      return ffi.QTS_NewFloat64(ctx, (Math.imul(x | 0, 31) + 7) | 0);
    },
    shouldInterrupt: () => 0,
    loadModuleSource: () => 0,
    normalizeModule: () => 0,
    freeHostRef: () => {},
  },
});
ffi = new QuickJSFFI(module);

function heapString(s) {
  const n = module.lengthBytesUTF8(s) + 1;
  const p = module._malloc(n);
  module.stringToUTF8(s, p, n);
  return [p, n - 1];
}

const rt = ffi.QTS_NewRuntime();
const ctx = ffi.QTS_NewContext(rt, 0);

// globalThis.host = <host function 1>
{
  const global = ffi.QTS_GetGlobalObject(ctx);
  const [name] = heapString('host');
  const key = ffi.QTS_NewString(ctx, name);
  const fn = ffi.QTS_NewFunction(ctx, 'host', 1, false, 1);
  ffi.QTS_SetProp(ctx, global, key, fn);
  for (const v of [fn, key, global]) ffi.QTS_FreeValuePointer(ctx, v);
  module._free(name);
}

// Evaluates code as a global script; returns the result as a number.
function evalNumber(code, filename) {
  const [p, n] = heapString(code);
  const result = ffi.QTS_Eval(ctx, p, n, filename, 0, 0);
  module._free(p);
  const error = ffi.QTS_ResolveException(ctx, result);
  if (error !== 0) {
    const text = module.UTF8ToString(ffi.QTS_Dump(ctx, error));
    throw new Error(`QuickJS: ${filename}: ${text}`);
  }
  const x = ffi.QTS_GetFloat64(ctx, result);
  ffi.QTS_FreeValuePointer(ctx, result);
  return x;
}

evalNumber(guest + '\n0', 'workload-quickjs-guest.js');
const w0 = wallMs();
const warm = evalNumber('run(1)', 'warmup');
const warmupMs = wallMs() - w0;
hostCalls = 0;
const t0 = wallMs();
const c0 = cpuMs();
const result = evalNumber(`run(${rounds})`, 'timed');
const cpu = cpuMs() - c0;
const ms = wallMs() - t0;
const calls = hostCalls;
if (!Number.isFinite(warm) || !Number.isFinite(result)) {
  throw new Error(`QuickJS returned ${warm} / ${result}`);
}
process.stdout.write(
  JSON.stringify({
    workload: 'quickjs',
    ms,
    cpu_ms: cpu,
    cpu_clock: cpuClock(),
    warmup_ms: warmupMs,
    checksum: `${result >>> 0}/${calls}`,
    host_calls: calls,
  }) + '\n',
);
