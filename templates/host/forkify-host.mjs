// forkify-host.mjs: a JavaScript host for WebAssembly modules instrumented by
// cargo-forkify (fork ABI version 1), for Node and browsers. No dependencies:
// copy this file next to your page or script, or import it from where it is.
//
//   import { run, renderReport } from "./forkify-host.mjs";
//   const report = await run(bytes);          // bytes: the instrumented .wasm
//   console.log(renderReport(report));         // "[pid] line" per output line
//
// What it owns: reading and checking the `forkify.abi` section before anything
// is instantiated (ABI §7), the fork protocol (§6: unwind, copy the instance,
// rewind parent and child), and the reference kernel of §9 as a default that
// you can replace (`options.kernel`) or extend (`options.imports`).
//
// It behaves like the Rust reference host (`cargo forkify run`): at a fork the
// child runs to completion first (forking further itself), then the parent
// resumes; pids start at 1; the save buffer is grown once per instance with
// `memory.grow` and reused; a fork fails with -11 (EAGAIN) past
// `maxProcesses`, with -12 (ENOMEM) when the buffer is too small or the guest
// aborts the unwind; `kernel_waitpid` reports 134 for a child that trapped and
// -10 (ECHILD) for a pid that is not an unwaited child. The report has the same
// JSON shape as the Rust host's `RunReport`.
//
// The fork imports are the ones the section names (by default
// `kernel.kernel_fork`); each returns the child's pid in the parent, 0 in the
// child, or -errno, as its first result (a BigInt for i64; further results
// are zero). JavaScript cannot pass v128 values, so a fork import with a v128
// result fails to link here (the wasmtime host supports it).
//
// Limits of a JavaScript host: `kernel_exit` ends a process by throwing through
// its wasm frames, so a wasm `catch_all` handler could catch it; trap messages
// are the engine's own. memory64 modules need an engine with memory64 (Node 20:
// `node --experimental-wasm-memory64`); their pointers are BigInts.

/** The fork ABI version this host implements. */
export const ABI_VERSION = 1;
/** The custom section every instrumented module carries. */
export const SECTION_NAME = "forkify.abi";
/** Size of the section's fixed header, before its JSON. */
const SECTION_HEADER_SIZE = 28;
/** Offsets of the section header's fields (ABI §7), named as in abi/snapshot.json. */
const SECTION_FIELDS = Object.freeze({
  magic: 0,
  abi_version: 4,
  pointer_width: 8,
  flags: 9,
  frame_header_size: 10,
  frames_offset: 12,
  instrumented_functions: 16,
  max_frame_size: 20,
  abort_reserve: 24,
  json: 28,
});
/** The fork import of the reference kernel. */
export const DEFAULT_FORK_IMPORT = "kernel.kernel_fork";
/** Prefix of the control exports (ABI §3). */
const EXPORT_PREFIX = "wpk_fork_";

/** The values of the instrumented module's state global (ABI §2). */
export const State = Object.freeze({ NORMAL: 0, UNWINDING: 1, REWINDING: 2, ABORTING: 3 });

/** The errno values the fork import returns, negated (ABI §9). */
export const Errno = Object.freeze({ ECHILD: 10, EAGAIN: 11, ENOMEM: 12 });

/** The status `kernel_waitpid` reports for a child that trapped (128 + SIGABRT). */
export const TRAPPED_WAIT_STATUS = 134;

/**
 * The five control exports with their types; `ptr` is i32 or i64 (ABI §3).
 * @type {Array<[string, string[], string[]]>}
 */
const CONTROL_EXPORTS = [
  ["wpk_fork_unwind_begin", ["ptr"], []],
  ["wpk_fork_unwind_end", [], []],
  ["wpk_fork_rewind_begin", ["ptr"], []],
  ["wpk_fork_rewind_end", [], []],
  ["wpk_fork_state", [], ["i32"]],
];

const WASM_PAGE = 65536;

/**
 * @typedef {{ exited: number } | { trapped: string }} ExitStatus
 *   How a process ended: `kernel_exit(status)` (0 when `_start` returned), or
 *   a trap with the engine's message.
 *
 * @typedef {Object} ProcessReport
 * @property {number} pid        Its pid (the first process is 1).
 * @property {number|null} parent The pid that forked it; null for the first.
 * @property {string} stdout     Everything it wrote (UTF-8, lossy).
 * @property {ExitStatus} status How it ended.
 *
 * @typedef {Object} RunReport
 * @property {ProcessReport[]} processes Every process, sorted by pid.
 * @property {Array<[number, string]>} log Every write, in order, as [pid, chunk].
 *
 * @typedef {Object} AbiSection The decoded `forkify.abi` section (ABI §7).
 * @property {number} version
 * @property {number} pointerWidth 4 or 8.
 * @property {number} flags
 * @property {number} frameHeaderSize
 * @property {number} framesOffset
 * @property {number} instrumentedFunctions
 * @property {number} maxFrameSize
 * @property {number} abortReserve
 * @property {{ tool: string, fork_imports: string[] }} info
 *
 * @typedef {Object} Plan What the host knows about a module it accepted.
 * @property {number} pointerWidth 4, or 8 for memory64 (4 without memory).
 * @property {AbiSection|null} section Null for a module that was never
 *   instrumented (it imports no fork, so it cannot fork).
 * @property {string[]} forkImports The fork imports, as "module.name".
 * @property {Map<string, string[]>} importResults "module.name" of each function
 *   import to its result types ("i32", "i64", ...).
 *
 * @typedef {Object} Controls The control exports of one instance.
 * @property {(buf: number|bigint) => void} unwindBegin
 * @property {() => void} unwindEnd
 * @property {(buf: number|bigint) => void} rewindBegin
 * @property {() => void} rewindEnd
 * @property {() => number} state
 *
 * @typedef {Object} Proc One process: one instance of the module.
 * @property {number} pid
 * @property {number|null} parent
 * @property {WebAssembly.Instance|null} instance
 * @property {WebAssembly.Memory|null} memory Its exported `memory`.
 * @property {Controls|null} controls Null for an uninstrumented module.
 * @property {number|null} buf The save buffer once grown (inherited by children).
 * @property {number|null} forkResult What the fork import returns when rewound.
 * @property {number} pointerWidth 4 or 8.
 *
 * @typedef {Record<string, Record<string, Function>>} ImportObject
 *
 * @typedef {Object} Kernel The process table and the non-fork imports. The
 *   default is {@link ReferenceKernel}; supply your own to change what the
 *   guest can call. The fork import itself always belongs to the host.
 * @property {(parent: number|null) => number} spawn Registers a process, returns its pid.
 * @property {() => boolean} canSpawn Whether one more process may be created.
 * @property {(pid: number, status: ExitStatus) => void} finish Records how a process ended.
 * @property {(proc: Proc, host: Runtime) => ImportObject} imports The imports of one process.
 * @property {() => RunReport} report The report of the run.
 *
 * @typedef {Object} RunOptions
 * @property {number} [bufferSize] Save-buffer bytes grown once per instance
 *   (default 1 MiB). Smaller than the module's `frames_offset +
 *   abort_reserve`: every fork fails with -12.
 * @property {number} [maxProcesses] The most processes of a run, the first
 *   included (default 1024); a fork beyond it fails with -11.
 * @property {Kernel} [kernel] Replaces the reference kernel.
 * @property {(proc: Proc, host: Runtime) => ImportObject} [imports] Extra
 *   imports merged over the kernel's (per module name).
 * @property {(pid: number, bytes: Uint8Array) => void} [onWrite] Called on
 *   every `kernel_write` of the reference kernel, e.g. to stream output.
 */

/**
 * A module the host refuses to run, or a host-level failure. `kind` is
 * "compile" when the engine cannot compile the module (invalid, or it uses a
 * proposal this engine lacks), "link" for imports nobody provides, "abi" for
 * everything else (section, exports, memory).
 */
export class ForkifyError extends Error {
  /** @param {string} message @param {"compile"|"link"|"abi"} [kind] */
  constructor(message, kind = "abi") {
    super(message);
    this.name = "ForkifyError";
    this.kind = kind;
  }
}

/** Thrown by `kernel_exit` to end a process through its wasm frames. */
export class ProcessExit extends Error {
  /** @param {number} status */
  constructor(status) {
    super(`process exited with status ${status}`);
    this.name = "ProcessExit";
    this.status = status | 0;
  }
}

// ---------------------------------------------------------------------------
// The forkify.abi section and the module's facts

/**
 * Decodes a `forkify.abi` section payload. The version is returned as found.
 * @param {ArrayBuffer|Uint8Array} payload
 * @returns {AbiSection}
 */
export function parseAbiSection(payload) {
  const data = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  if (data.length < SECTION_HEADER_SIZE) {
    throw new ForkifyError(
      `bad \`${SECTION_NAME}\` section: section is ${data.length} bytes, shorter than its ${SECTION_HEADER_SIZE}-byte header`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const m = SECTION_FIELDS.magic;
  const magic = String.fromCharCode(data[m], data[m + 1], data[m + 2], data[m + 3]);
  if (magic !== "FKAB") {
    const hex = Array.from(data.subarray(m, m + 4), (b) => b.toString(16).padStart(2, "0"));
    throw new ForkifyError(`bad \`${SECTION_NAME}\` section: bad magic [${hex.join(", ")}], expected "FKAB"`);
  }
  const pointerWidth = data[SECTION_FIELDS.pointer_width];
  if (pointerWidth !== 4 && pointerWidth !== 8) {
    throw new ForkifyError(`bad \`${SECTION_NAME}\` section: pointer width ${pointerWidth} is neither 4 nor 8`);
  }
  let info;
  try {
    info = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(SECTION_FIELDS.json)));
  } catch (e) {
    throw new ForkifyError(`bad \`${SECTION_NAME}\` section: section JSON is invalid: ${messageOf(e)}`);
  }
  if (
    info === null ||
    typeof info !== "object" ||
    typeof info.tool !== "string" ||
    !Array.isArray(info.fork_imports) ||
    !info.fork_imports.every((/** @type {unknown} */ s) => typeof s === "string")
  ) {
    throw new ForkifyError(
      `bad \`${SECTION_NAME}\` section: section JSON is invalid: expected {"tool": string, "fork_imports": [string]}`,
    );
  }
  return {
    version: view.getUint32(SECTION_FIELDS.abi_version, true),
    pointerWidth,
    flags: data[SECTION_FIELDS.flags],
    frameHeaderSize: view.getUint16(SECTION_FIELDS.frame_header_size, true),
    framesOffset: view.getUint32(SECTION_FIELDS.frames_offset, true),
    instrumentedFunctions: view.getUint32(SECTION_FIELDS.instrumented_functions, true),
    maxFrameSize: view.getUint32(SECTION_FIELDS.max_frame_size, true),
    abortReserve: view.getUint32(SECTION_FIELDS.abort_reserve, true),
    info,
  };
}

/**
 * The `forkify.abi` section of a compiled module; null when absent.
 * @param {WebAssembly.Module} module
 * @returns {AbiSection|null}
 */
export function readAbiSection(module) {
  const sections = WebAssembly.Module.customSections(module, SECTION_NAME);
  if (sections.length > 1) throw new ForkifyError(`more than one \`${SECTION_NAME}\` section`);
  return sections.length === 1 ? parseAbiSection(sections[0]) : null;
}

/**
 * @typedef {Object} FuncType
 * @property {string[]} params
 * @property {string[]} results
 *
 * @typedef {Object} ModuleFacts What the host reads from the binary itself,
 *   because JavaScript reflection does not say it (memory64, function types).
 * @property {Array<FuncType|null>|null} types Null when the type section uses
 *   an encoding this reader does not know (then signatures are not checked).
 * @property {Array<{module: string, name: string, kind: number, type: number}>} imports
 * @property {number[]} funcTypes Type index of every function, imports first.
 * @property {boolean[]} memories memory64 flag of every memory, imports first.
 * @property {Map<string, {kind: number, index: number}>} exports
 */

/** A cursor over a binary with LEB128 readers. */
class Reader {
  /** @param {Uint8Array} bytes @param {number} pos @param {number} end */
  constructor(bytes, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }
  byte() {
    if (this.pos >= this.end) throw new Error("unexpected end of section");
    return this.bytes[this.pos++];
  }
  /** An unsigned LEB128 (exact up to 2^53, which is all that is used). */
  u32() {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return result;
    }
  }
  /** A signed LEB128 (a heap type). */
  s33() {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return b & 0x40 ? result - scale : result;
    }
  }
  name() {
    const len = this.u32();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error("name runs past its section");
    return new TextDecoder().decode(this.bytes.subarray(start, this.pos));
  }
  /** A value or storage type, as "i32", "i64", "f32", "f64", "v128" or "ref". */
  valType() {
    const b = this.byte();
    switch (b) {
      case 0x7f: return "i32";
      case 0x7e: return "i64";
      case 0x7d: return "f32";
      case 0x7c: return "f64";
      case 0x7b: return "v128";
      case 0x78: return "i8";
      case 0x77: return "i16";
      case 0x63:
      case 0x64:
        this.s33();
        return "ref";
      default:
        if (b >= 0x69 && b <= 0x74) return "ref"; // abstract reference shorthands
        throw new Error(`unknown value type 0x${b.toString(16)}`);
    }
  }
  /** Limits; returns whether the memory64 flag is set. */
  limits() {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
    if (flags & 8) this.u32(); // custom page size
    return (flags & 4) !== 0;
  }
}

/**
 * Reads what JavaScript reflection cannot tell: memory 0's index type and the
 * function types of imports and exports. The bytes must already have compiled.
 * @param {Uint8Array} bytes
 * @returns {ModuleFacts}
 */
export function inspectModule(bytes) {
  /** @type {ModuleFacts} */
  const facts = { types: [], imports: [], funcTypes: [], memories: [], exports: new Map() };
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const body = new Reader(bytes, r.pos, r.pos + size);
    r.pos += size;
    switch (id) {
      case 1:
        try {
          facts.types = readTypes(body);
        } catch {
          facts.types = null;
        }
        break;
      case 2:
        for (let n = body.u32(); n > 0; n--) {
          const module = body.name();
          const name = body.name();
          const kind = body.byte();
          let type = -1;
          if (kind === 0x00) {
            type = body.u32();
            facts.funcTypes.push(type);
          } else if (kind === 0x01) {
            body.valType();
            body.limits();
          } else if (kind === 0x02) {
            facts.memories.push(body.limits());
          } else if (kind === 0x03) {
            body.valType();
            body.byte();
          } else if (kind === 0x04) {
            body.byte();
            body.u32();
          } else {
            throw new ForkifyError(`cannot read import \`${module}.${name}\`: unknown import kind 0x${kind.toString(16)}`);
          }
          facts.imports.push({ module, name, kind, type });
        }
        break;
      case 3:
        for (let n = body.u32(); n > 0; n--) facts.funcTypes.push(body.u32());
        break;
      case 5:
        for (let n = body.u32(); n > 0; n--) facts.memories.push(body.limits());
        break;
      case 7:
        for (let n = body.u32(); n > 0; n--) {
          const name = body.name();
          const kind = body.byte();
          facts.exports.set(name, { kind, index: body.u32() });
        }
        break;
      default:
        break;
    }
  }
  return facts;
}

/** @param {Reader} r @returns {Array<FuncType|null>} */
function readTypes(r) {
  /** @type {Array<FuncType|null>} */
  const types = [];
  const compositeType = () => {
    let form = r.byte();
    if (form === 0x50 || form === 0x4f) {
      for (let n = r.u32(); n > 0; n--) r.u32();
      form = r.byte();
    }
    if (form === 0x60) {
      const params = [];
      for (let n = r.u32(); n > 0; n--) params.push(r.valType());
      const results = [];
      for (let n = r.u32(); n > 0; n--) results.push(r.valType());
      types.push({ params, results });
    } else if (form === 0x5f) {
      for (let n = r.u32(); n > 0; n--) {
        r.valType();
        r.byte();
      }
      types.push(null);
    } else if (form === 0x5e) {
      r.valType();
      r.byte();
      types.push(null);
    } else {
      throw new Error(`unknown type form 0x${form.toString(16)}`);
    }
  };
  for (let n = r.u32(); n > 0; n--) {
    if (r.bytes[r.pos] === 0x4e) {
      r.pos++;
      for (let m = r.u32(); m > 0; m--) compositeType();
    } else {
      compositeType();
    }
  }
  return types;
}

/** @param {FuncType} t */
function signature(t) {
  return `(${t.params.join(", ")}) -> (${t.results.join(", ")})`;
}

/**
 * Checks that `name` is an exported function of type `params -> results`.
 * @param {ModuleFacts} facts @param {string} name @param {string[]} params @param {string[]} results
 */
function expectFunc(facts, name, params, results) {
  const exp = facts.exports.get(name);
  if (!exp || exp.kind !== 0x00) throw new ForkifyError(`missing function export \`${name}\``);
  if (facts.types === null) return;
  const found = facts.types[facts.funcTypes[exp.index]];
  if (!found) throw new ForkifyError(`missing function export \`${name}\``);
  const want = { params, results };
  if (signature(found) !== signature(want)) {
    throw new ForkifyError(`export \`${name}\` has type ${signature(found)}, expected ${signature(want)}`);
  }
}

/**
 * Decides, before anything is instantiated, whether the host may run a module
 * and how: the `forkify.abi` section (version, pointer width against memory
 * 0), the control exports, the `memory` export and `_start`. Throws a
 * {@link ForkifyError} saying why not.
 * @param {WebAssembly.Module} module The compiled module.
 * @param {Uint8Array} bytes Its bytes.
 * @returns {Plan}
 */
export function planModule(module, bytes) {
  const facts = inspectModule(bytes);
  const section = readAbiSection(module);
  const memory0 = facts.memories.length > 0 ? (facts.memories[0] ? 8 : 4) : null;
  /** @type {string[]} */
  let forkImports = [];
  if (section) {
    if (section.version !== ABI_VERSION) {
      throw new ForkifyError(
        `ABI version ${section.version}, expected ${ABI_VERSION} (re-instrument with a matching cargo-forkify, or use a host for that version)`,
      );
    }
    if (memory0 === null) {
      throw new ForkifyError("the module has no memory, so there is nowhere to put the save buffer");
    }
    if (memory0 !== section.pointerWidth) {
      throw new ForkifyError(
        `the section says pointer width ${section.pointerWidth} but memory 0 has ${memory0}-byte addresses (${memory0 === 8 ? "memory64" : "memory32"})`,
      );
    }
    const ptr = memory0 === 8 ? "i64" : "i32";
    for (const [name, params, results] of CONTROL_EXPORTS) {
      const map = (/** @type {string[]} */ v) => v.map((t) => (t === "ptr" ? ptr : t));
      expectFunc(facts, name, map(params), map(results));
    }
    const mem = facts.exports.get("memory");
    if (!mem || mem.kind !== 0x02) throw new ForkifyError("missing memory export `memory`");
    if (mem.index !== 0) {
      throw new ForkifyError(`export \`memory\` is memory ${mem.index}; the save buffer lives in memory 0`);
    }
    forkImports = section.info.fork_imports.length > 0 ? section.info.fork_imports : [DEFAULT_FORK_IMPORT];
  } else {
    if (facts.imports.some((i) => i.kind === 0x00 && `${i.module}.${i.name}` === DEFAULT_FORK_IMPORT)) {
      throw new ForkifyError(
        `not instrumented: it imports \`${DEFAULT_FORK_IMPORT}\` but has no \`${SECTION_NAME}\` section; run \`cargo forkify instrument\` first`,
      );
    }
    const control = [...facts.exports.keys()].sort().find((e) => e.startsWith(EXPORT_PREFIX));
    if (control !== undefined) {
      throw new ForkifyError(
        `it exports \`${control}\` but has no \`${SECTION_NAME}\` section: a damaged or foreign artifact`,
      );
    }
  }
  expectFunc(facts, "_start", [], []);
  /** @type {Map<string, string[]>} */
  const importResults = new Map();
  for (const i of facts.imports) {
    if (i.kind !== 0x00) continue;
    const t = facts.types?.[i.type];
    importResults.set(`${i.module}.${i.name}`, t?.results ?? []);
  }
  return { pointerWidth: memory0 ?? 4, section, forkImports, importResults };
}

/**
 * Compiles and checks a module (see {@link planModule}).
 * @param {BufferSource} bytes
 * @returns {Promise<{ module: WebAssembly.Module, plan: Plan }>}
 */
export async function prepare(bytes) {
  const view = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  let module;
  try {
    module = await WebAssembly.compile(view);
  } catch (e) {
    throw new ForkifyError(
      `not a valid WebAssembly module for this engine: ${messageOf(e)} (it may use a proposal this engine lacks: memory64 and 64-bit tables, exception handling, typed function references; Node 20 has memory64 only with --experimental-wasm-memory64)`,
      "compile",
    );
  }
  return { module, plan: planModule(module, view) };
}

// ---------------------------------------------------------------------------
// The reference kernel (ABI §9)

/**
 * The reference kernel of ABI §9: the process table of one run and the
 * imports `kernel.kernel_exit`, `kernel_waitpid`, `kernel_write` and
 * `kernel_getpid`. Subclass it, or pass any object of the {@link Kernel}
 * shape as `options.kernel`.
 * @implements {Kernel}
 */
export class ReferenceKernel {
  /**
   * @param {{ maxProcesses?: number, onWrite?: (pid: number, bytes: Uint8Array) => void }} [options]
   */
  constructor(options = {}) {
    this.maxProcesses = options.maxProcesses ?? 1024;
    this.onWrite = options.onWrite;
    /** @type {Array<{pid: number, parent: number|null, stdout: Uint8Array[], status: ExitStatus|null, waited: boolean}>} */
    this.procs = [];
    /** @type {Array<[number, Uint8Array]>} */
    this.log = [];
  }

  canSpawn() {
    return this.procs.length < this.maxProcesses;
  }

  /** @param {number|null} parent */
  spawn(parent) {
    const pid = this.procs.length + 1;
    this.procs.push({ pid, parent, stdout: [], status: null, waited: false });
    return pid;
  }

  /** @param {number} pid @param {ExitStatus} status */
  finish(pid, status) {
    const p = this.procs.find((q) => q.pid === pid);
    if (p) p.status = status;
  }

  /** @param {number} pid @param {Uint8Array} bytes */
  write(pid, bytes) {
    const p = this.procs.find((q) => q.pid === pid);
    if (p) p.stdout.push(bytes);
    this.log.push([pid, bytes]);
    if (this.onWrite) this.onWrite(pid, bytes);
  }

  /** `kernel_waitpid(pid)` called by `caller`. @param {number} caller @param {number} pid */
  waitpid(caller, pid) {
    const p = this.procs.find((q) => q.pid === pid);
    // Children run to completion before their parent resumes, so a child
    // without a status is not waitable.
    if (!p || p.parent !== caller || p.waited || p.status === null) return -Errno.ECHILD;
    p.waited = true;
    return "exited" in p.status ? p.status.exited : TRAPPED_WAIT_STATUS;
  }

  /**
   * The `kernel.*` imports of one process (all but the fork import).
   * @param {Proc} proc
   * @returns {ImportObject}
   */
  imports(proc) {
    return {
      kernel: {
        kernel_exit: (/** @type {number} */ status) => {
          throw new ProcessExit(status);
        },
        kernel_waitpid: (/** @type {number} */ pid) => this.waitpid(proc.pid, pid),
        kernel_getpid: () => proc.pid,
        kernel_write: (/** @type {number|bigint} */ ptr, /** @type {number|bigint} */ len) => {
          const p = unsignedPtr(ptr, proc.pointerWidth);
          const n = unsignedPtr(len, proc.pointerWidth);
          if (!proc.memory) throw new Error("kernel_write: the module exports no `memory`");
          const size = proc.memory.buffer.byteLength;
          if (p + n > size) {
            throw new Error(`kernel_write: bytes [${p}, ${p}+${n}) lie outside memory (${size} bytes)`);
          }
          this.write(proc.pid, new Uint8Array(proc.memory.buffer, p, n).slice());
        },
      },
    };
  }

  /** @returns {RunReport} */
  report() {
    const decode = (/** @type {Uint8Array[]} */ chunks) => new TextDecoder().decode(concat(chunks));
    const processes = this.procs
      .map((p) => ({
        pid: p.pid,
        parent: p.parent,
        stdout: decode(p.stdout),
        status: p.status ?? { trapped: "did not finish" },
      }))
      .sort((a, b) => a.pid - b.pid);
    /** @type {Array<[number, string]>} */
    const log = this.log.map(([pid, bytes]) => [pid, decode([bytes])]);
    return { processes, log };
  }
}

// ---------------------------------------------------------------------------
// The fork protocol (ABI §6)

/**
 * One run of a module: process 1 and everything it forks. Lower level than
 * {@link run}: build it from a prepared module, then `await runtime.run()`.
 */
export class Runtime {
  /**
   * @param {WebAssembly.Module} module
   * @param {Plan} plan
   * @param {RunOptions} [options]
   */
  constructor(module, plan, options = {}) {
    this.module = module;
    this.plan = plan;
    this.bufferSize = options.bufferSize ?? 1 << 20;
    /** @type {Kernel} */
    this.kernel =
      options.kernel ?? new ReferenceKernel({ maxProcesses: options.maxProcesses, onWrite: options.onWrite });
    this.extraImports = options.imports;
    this.checkImports();
  }

  /** Refuses a module that imports something neither the kernel nor the host provides. */
  checkImports() {
    const probe = this.importObject(newProc(0, null, this.plan));
    for (const i of WebAssembly.Module.imports(this.module)) {
      const value = probe[i.module]?.[i.name];
      const ok = i.kind === "function" ? typeof value === "function" : value !== undefined;
      if (!ok) {
        throw new ForkifyError(
          `cannot link the module against the kernel: it imports ${i.kind} \`${i.module}.${i.name}\`, which the kernel does not provide`,
          "link",
        );
      }
    }
  }

  /**
   * The imports of one process: the kernel's, the extra ones, and the fork imports.
   * @param {Proc} proc
   * @returns {ImportObject}
   */
  importObject(proc) {
    /** @type {ImportObject} */
    const imports = {};
    const merge = (/** @type {ImportObject} */ more) => {
      for (const [mod, fields] of Object.entries(more ?? {})) imports[mod] = { ...imports[mod], ...fields };
    };
    merge(this.kernel.imports(proc, this));
    if (this.extraImports) merge(this.extraImports(proc, this));
    for (const full of this.plan.forkImports) {
      const dot = full.indexOf(".");
      const [mod, name] = [full.slice(0, dot), full.slice(dot + 1)];
      // The fork result as the first result (a BigInt for i64), zero for
      // any further ones (ABI §6, "Results").
      const results = this.plan.importResults.get(full) ?? [];
      const value = (/** @type {string} */ t, /** @type {number} */ v) => (t === "i64" ? BigInt(v) : v);
      const fork = () => {
        const r = this.forkImport(proc);
        if (results.length <= 1) return results.length === 0 ? undefined : value(results[0], r);
        return results.map((t, k) => value(t, k === 0 ? r : 0));
      };
      merge({ [mod]: { [name]: fork } });
    }
    return imports;
  }

  /**
   * Runs the module as process 1 and everything it forks, to completion.
   * @returns {Promise<RunReport>}
   */
  async run() {
    const pid = this.kernel.spawn(null);
    const proc = newProc(pid, null, this.plan);
    let started = false;
    try {
      await this.instantiate(proc);
      started = true;
    } catch (e) {
      if (e instanceof ForkifyError) throw e;
      this.kernel.finish(pid, statusOf(e));
    }
    if (started) await this.runProcess(proc, null);
    return this.kernel.report();
  }

  /** Instantiates the module for `proc`. @param {Proc} proc */
  async instantiate(proc) {
    let instance;
    try {
      instance = await WebAssembly.instantiate(this.module, this.importObject(proc));
    } catch (e) {
      if (e instanceof WebAssembly.LinkError) {
        throw new ForkifyError(`cannot link the module against the kernel: ${messageOf(e)}`, "link");
      }
      throw e;
    }
    const ex = /** @type {Record<string, any>} */ (instance.exports);
    proc.instance = instance;
    proc.memory = ex.memory instanceof WebAssembly.Memory ? ex.memory : null;
    if (this.plan.section) {
      proc.controls = {
        unwindBegin: ex.wpk_fork_unwind_begin,
        unwindEnd: ex.wpk_fork_unwind_end,
        rewindBegin: ex.wpk_fork_rewind_begin,
        rewindEnd: ex.wpk_fork_rewind_end,
        state: ex.wpk_fork_state,
      };
    }
  }

  /**
   * Runs one process to its end (its children included) and records its status.
   * @param {Proc} proc @param {number|null} resume The buffer to rewind from, for a child.
   */
  async runProcess(proc, resume) {
    const status = await this.drive(proc, resume);
    this.kernel.finish(proc.pid, status);
  }

  /**
   * Calls `_start` until the process ends, forking at every completed unwind.
   * @param {Proc} proc @param {number|null} resume
   * @returns {Promise<ExitStatus>}
   */
  async drive(proc, resume) {
    const ex = /** @type {Record<string, any>} */ (proc.instance?.exports);
    const start = ex._start;
    for (;;) {
      try {
        if (resume !== null) proc.controls?.rewindBegin(ptrValue(resume, proc.pointerWidth));
        resume = null;
        start();
      } catch (e) {
        return statusOf(e);
      }
      if (!proc.controls) return { exited: 0 };
      let state;
      try {
        state = proc.controls.state();
      } catch (e) {
        return statusOf(e);
      }
      if (state === State.NORMAL) return { exited: 0 };
      if (state !== State.UNWINDING) {
        return { trapped: `\`_start\` returned in state ${state} instead of resuming at its fork call (ABI §6)` };
      }
      try {
        proc.controls.unwindEnd();
      } catch (e) {
        return statusOf(e);
      }
      if (proc.buf === null) return { trapped: "the module unwound without a fork" };
      const child = this.kernel.spawn(proc.pid);
      await this.forkChild(proc, child, proc.buf);
      proc.forkResult = child;
      resume = proc.buf;
    }
  }

  /**
   * Creates process `child` as a copy of the unwound `parent` (a fresh
   * instance of the same module, memory grown to the parent's size and
   * overwritten with the parent's bytes) and runs it to completion.
   * @param {Proc} parent @param {number} child @param {number} buf
   */
  async forkChild(parent, child, buf) {
    const proc = newProc(child, parent.pid, this.plan);
    proc.buf = buf;
    try {
      await this.instantiate(proc);
    } catch (e) {
      this.kernel.finish(child, statusOf(e));
      return;
    }
    copyMemory(parent, proc);
    proc.forkResult = 0;
    await this.runProcess(proc, buf);
  }

  /**
   * The fork import: starts an unwind in NORMAL, returns the fork result when
   * reached again while rewinding, fails with -12 in ABORTING (ABI §6, §9).
   * @param {Proc} proc
   * @returns {number}
   */
  forkImport(proc) {
    const c = proc.controls;
    if (!c) throw new Error("kernel_fork: the module is not instrumented (no control exports)");
    const state = c.state();
    switch (state) {
      case State.NORMAL:
        return this.beginFork(proc, c);
      case State.REWINDING: {
        c.rewindEnd();
        const result = proc.forkResult;
        proc.forkResult = null;
        if (result === null) throw new Error("kernel_fork reached while rewinding, but no fork is pending");
        return result;
      }
      case State.ABORTING:
        c.rewindEnd();
        return -Errno.ENOMEM;
      default:
        throw new Error(`kernel_fork called in state ${state} (expected NORMAL, REWINDING or ABORTING)`);
    }
  }

  /**
   * The NORMAL case of the fork import: get the buffer, write `end`, start
   * the unwind. Failures the guest should see as errno return without unwinding.
   * @param {Proc} proc @param {Controls} c
   * @returns {number}
   */
  beginFork(proc, c) {
    const section = this.plan.section;
    if (!section) throw new Error("kernel_fork: the module has no `forkify.abi` section");
    const width = proc.pointerWidth;
    const size = this.bufferSize;
    if (!this.kernel.canSpawn()) return -Errno.EAGAIN;
    if (size < Math.max(section.framesOffset + section.abortReserve, 2 * width)) return -Errno.ENOMEM;
    if (proc.buf === null) {
      const buf = growBuffer(proc, size);
      if (buf === null) return -Errno.ENOMEM;
      proc.buf = buf;
    }
    const memory = proc.memory;
    if (!memory) throw new Error("kernel_fork: the module exports no `memory`");
    const end = proc.buf + size;
    const view = new DataView(memory.buffer);
    // `end` is the buffer's second pointer-sized field, at buf + P (ABI §4).
    if (width === 8) view.setBigUint64(proc.buf + width, BigInt(end), true);
    else view.setUint32(proc.buf + width, end, true);
    c.unwindBegin(ptrValue(proc.buf, width));
    return 0;
  }
}

/**
 * Runs an instrumented module (or one with no fork import) as process 1 and
 * every process it forks, to completion. Rejects with a {@link ForkifyError}
 * for a module the host refuses; what the guest does (exit codes, traps) is
 * in the report.
 * @param {BufferSource} bytes
 * @param {RunOptions} [options]
 * @returns {Promise<RunReport>}
 */
export async function run(bytes, options = {}) {
  const { module, plan } = await prepare(bytes);
  return new Runtime(module, plan, options).run();
}

// ---------------------------------------------------------------------------
// Reports

/**
 * The output of all processes, each line prefixed with `[pid] `, in the order
 * the lines were completed; a process's unfinished last line is flushed at
 * the end, in the order it was started (as `cargo forkify run` prints it).
 * @param {RunReport} report
 * @returns {string}
 */
export function renderReport(report) {
  let out = "";
  /** @type {Array<{pid: number, start: number, text: string}>} */
  const pending = [];
  report.log.forEach(([pid, chunk], pos) => {
    let slot = pending.find((p) => p.pid === pid);
    if (!slot) {
      slot = { pid, start: pos, text: "" };
      pending.push(slot);
    }
    if (slot.text === "") slot.start = pos;
    slot.text += chunk;
    for (let nl = slot.text.indexOf("\n"); nl >= 0; nl = slot.text.indexOf("\n")) {
      out += `[${pid}] ${slot.text.slice(0, nl + 1)}`;
      slot.text = slot.text.slice(nl + 1);
    }
  });
  pending.sort((a, b) => a.start - b.start);
  for (const p of pending) if (p.text !== "") out += `[${p.pid}] ${p.text}\n`;
  return out;
}

/**
 * The summary `cargo forkify run --json` prints: every process's pid,
 * parent, status and stdout.
 * @param {RunReport} report
 */
export function reportSummary(report) {
  return {
    processes: report.processes.map((p) => ({ parent: p.parent, pid: p.pid, status: p.status, stdout: p.stdout })),
  };
}

/** How a status reads, as in `process 1 exited with status 3`. @param {ExitStatus} s */
export function describeStatus(s) {
  return "exited" in s ? `exited with status ${s.exited}` : `trapped: ${s.trapped}`;
}

// ---------------------------------------------------------------------------
// Helpers

/** @param {number} pid @param {number|null} parent @param {Plan} plan @returns {Proc} */
function newProc(pid, parent, plan) {
  return {
    pid,
    parent,
    instance: null,
    memory: null,
    controls: null,
    buf: null,
    forkResult: null,
    pointerWidth: plan.pointerWidth,
  };
}

/** How a process ended, from what its `_start` (or a control export) threw. @param {unknown} e @returns {ExitStatus} */
function statusOf(e) {
  if (e instanceof ProcessExit) return { exited: e.status };
  return { trapped: messageOf(e) };
}

/** @param {unknown} e */
function messageOf(e) {
  return e instanceof Error ? e.message : String(e);
}

/** A pointer-sized argument for a control export. @param {number} v @param {number} width */
function ptrValue(v, width) {
  return width === 8 ? BigInt(v) : v | 0;
}

/** A pointer or length from the guest as an unsigned number. @param {number|bigint} v @param {number} width */
function unsignedPtr(v, width) {
  if (typeof v === "bigint") return Number(BigInt.asUintN(64, v));
  return width === 8 ? v : v >>> 0;
}

/**
 * `memory.grow(pages)`, for memory32 and memory64 (engines differ on whether
 * a memory64 delta is a Number or a BigInt). Returns the old size in pages.
 * @param {WebAssembly.Memory} memory @param {number} pages
 * @returns {number}
 */
function growMemory(memory, pages) {
  /** @type {any} */
  const m = memory;
  try {
    return Number(m.grow(pages));
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return Number(m.grow(BigInt(pages)));
  }
}

/**
 * Grows memory by enough pages for a `size`-byte buffer; null when it cannot
 * grow. The buffer is page aligned (so 16-aligned) and never at address 0.
 * @param {Proc} proc @param {number} size
 * @returns {number|null}
 */
function growBuffer(proc, size) {
  const memory = proc.memory;
  if (!memory) throw new Error("kernel_fork: the module exports no `memory`");
  let pages = Math.ceil(size / WASM_PAGE);
  const empty = memory.buffer.byteLength === 0;
  if (empty) pages += 1;
  let old;
  try {
    old = growMemory(memory, pages);
  } catch {
    return null;
  }
  const buf = (old + (empty ? 1 : 0)) * WASM_PAGE;
  const limit = proc.pointerWidth === 8 ? Number.MAX_SAFE_INTEGER : 0xffffffff;
  return buf + size <= limit ? buf : null;
}

/** Makes the child's memory a byte-for-byte copy of the parent's. @param {Proc} parent @param {Proc} child */
function copyMemory(parent, child) {
  if (!parent.memory || !child.memory) throw new ForkifyError("the module exports no `memory` to copy");
  const want = parent.memory.buffer.byteLength;
  const have = child.memory.buffer.byteLength;
  if (want > have) {
    try {
      growMemory(child.memory, Math.ceil((want - have) / WASM_PAGE));
    } catch (e) {
      throw new ForkifyError(`the child's memory cannot grow to the parent's size: ${messageOf(e)}`);
    }
  }
  new Uint8Array(child.memory.buffer).set(new Uint8Array(parent.memory.buffer));
}

/** @param {Uint8Array[]} chunks */
function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
