#!/usr/bin/env node
// cli.mjs: run a fork-instrumented module under Node, like `cargo forkify run`.
//
//   node cli.mjs app.forked.wasm                  # prints "[pid] line" for every output line
//   node cli.mjs app.forked.wasm --json           # {"processes": [{parent, pid, status, stdout}]}
//   node cli.mjs app.forked.wasm --report         # the whole RunReport, with the write log
//   node cli.mjs app.forked.wasm --buffer-size 4096 --max-processes 16
//
// Exit status: 0 when process 1 exits with 0, 5 when it does not, 4 when the
// module is refused (no or bad `forkify.abi` section, missing exports or
// imports), 2 for a usage error, 1 when the file cannot be read. A memory64
// module on a Node without memory64 by default is re-run with
// --experimental-wasm-memory64.

import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { run, renderReport, reportSummary, describeStatus, inspectModule, ForkifyError } from "./forkify-host.mjs";

const USAGE = `usage: node cli.mjs FILE.wasm [--json | --report] [--buffer-size N] [--max-processes N]

Runs a module instrumented by cargo-forkify (fork ABI 1) and every process it
forks, with the reference kernel (kernel.kernel_fork, kernel_exit,
kernel_waitpid, kernel_write, kernel_getpid). At a fork the child runs to
completion first, then the parent resumes.

  --json             print a JSON summary (pid, parent, status, stdout of every process)
  --report           print the whole report as JSON, with the chronological write log
  --buffer-size N    size in bytes of the save buffer each process gets (default 1048576)
  --max-processes N  the most processes the run may create (default 1024)
`;

/** @param {string} msg @param {number} code @returns {never} */
function fail(msg, code) {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(code);
}

/** @param {string[]} argv */
function parseArgs(argv) {
  const opts = { file: "", json: false, report: false, bufferSize: 1 << 20, maxProcesses: 1024 };
  const number = (/** @type {string} */ flag, /** @type {string|undefined} */ v) => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) > 0xffffffff) {
      fail(`${flag} needs a whole number of at most 4294967295, got ${v === undefined ? "nothing" : `\`${v}\``}\n\n${USAGE}`, 2);
    }
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    if (flag === "-h" || flag === "--help") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (flag === "--json") opts.json = true;
    else if (flag === "--report") opts.report = true;
    else if (flag === "--buffer-size") opts.bufferSize = number(flag, inline ?? argv[++i]);
    else if (flag === "--max-processes") opts.maxProcesses = number(flag, inline ?? argv[++i]);
    else if (a.startsWith("-") && a !== "-") fail(`unknown option \`${a}\`\n\n${USAGE}`, 2);
    else if (opts.file) fail(`more than one file given (\`${opts.file}\`, \`${a}\`)\n\n${USAGE}`, 2);
    else opts.file = a;
  }
  if (!opts.file) fail(`no module given\n\n${USAGE}`, 2);
  return opts;
}

/** Whether this engine compiles a memory64 module as it is. */
function hasMemory64() {
  // (module (memory i64 0))
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 4, 0]);
  return WebAssembly.validate(probe);
}

/** Whether the module's memory 0 is 64-bit. @param {Uint8Array} bytes */
function isMemory64(bytes) {
  try {
    return inspectModule(bytes).memories[0] === true;
  } catch {
    return false;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let bytes;
  try {
    bytes = new Uint8Array(readFileSync(opts.file));
  } catch (e) {
    fail(`cannot read \`${opts.file}\`: ${e instanceof Error ? e.message : e}`, 1);
  }
  if (!hasMemory64() && !process.execArgv.includes("--experimental-wasm-memory64") && isMemory64(bytes)) {
    const again = spawnSync(
      process.execPath,
      [...process.execArgv, "--experimental-wasm-memory64", fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      { stdio: "inherit" },
    );
    process.exit(again.status ?? 1);
  }
  let report;
  try {
    report = await run(bytes, { bufferSize: opts.bufferSize, maxProcesses: opts.maxProcesses });
  } catch (e) {
    if (e instanceof ForkifyError) fail(`cannot run \`${opts.file}\`: ${e.message}`, 4);
    throw e;
  }
  if (opts.report) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (opts.json) process.stdout.write(`${JSON.stringify(reportSummary(report), null, 2)}\n`);
  else process.stdout.write(renderReport(report));
  const root = report.processes.find((p) => p.pid === 1);
  if (!root) fail(`\`${opts.file}\`: process 1 never ran`, 5);
  if (!("exited" in root.status && root.status.exited === 0)) {
    fail(`\`${opts.file}\`: process 1 ${describeStatus(root.status)}`, 5);
  }
}

process.stdout.on("error", (e) => {
  if (/** @type {NodeJS.ErrnoException} */ (e).code === "EPIPE") process.exit(0);
  throw e;
});

main().catch((e) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e), 1));
