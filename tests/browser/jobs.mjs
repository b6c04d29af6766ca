// jobs.mjs: runs a list of modules through the JavaScript host template and
// collects one result per module. Shared by node-run.mjs (Node) and
// engines.html (Chromium), so both engines are driven the same way.
//
// A job is {name, wasm, options}: `wasm` is a path (Node) or a URL (page),
// `options` the host's RunOptions. A result is {name} plus one of
//   report:      the RunReport of the run
//   refused:     the host's refusal (a ForkifyError other than "compile")
//   unsupported: the engine could not compile the module (a proposal it lacks)
//   error:       anything else (a bug in the host)

/**
 * @param {typeof import("../../templates/host/forkify-host.mjs")} host
 * @param {Array<{name: string, wasm: string, options?: object}>} jobs
 * @param {(wasm: string) => Promise<Uint8Array>} load
 */
export async function runJobs(host, jobs, load) {
  const results = [];
  for (const job of jobs) {
    try {
      const bytes = await load(job.wasm);
      const report = await host.run(bytes, job.options ?? {});
      results.push({ name: job.name, report });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (e instanceof host.ForkifyError) {
        results.push({ name: job.name, [e.kind === "compile" ? "unsupported" : "refused"]: message });
      } else {
        results.push({ name: job.name, error: e instanceof Error && e.stack ? e.stack : message });
      }
    }
  }
  return results;
}
