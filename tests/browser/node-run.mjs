// node-run.mjs: `node node-run.mjs JOBS.json` runs every job of the file
// (see jobs.mjs) under Node with the JavaScript host template and prints the
// results as one JSON array on stdout. Used by tests/tests/engines.rs.

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as host from "../../templates/host/forkify-host.mjs";
import { runJobs } from "./jobs.mjs";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node node-run.mjs JOBS.json\n");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(file, "utf8"));
const results = await runJobs(host, jobs, async (path) => new Uint8Array(await readFile(path)));
process.stdout.write(JSON.stringify(results));
