// chromium.mjs: `node chromium.mjs URL [--screenshot FILE.png] [--timeout MS]`
// opens URL in headless Chromium (Debian's /usr/bin/chromium, or
// $FORKIFY_CHROMIUM) through playwright-core, waits until the page sets
// <body data-state> to "done" or "error", and prints one JSON object:
//   {state, output: #output's text, status: #status's text,
//    result: window.forkifyResult ?? window.forkifyReport, console: [...]}
// With --screenshot it saves a full-page PNG. A fresh profile directory is
// created and removed; the browser is closed on every path, and the whole
// run is bounded by --timeout (default 60 s).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
let url = "";
let screenshot = "";
let timeout = 60_000;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--screenshot") screenshot = args[++i];
  else if (args[i] === "--timeout") timeout = Number(args[++i]);
  else url = args[i];
}
if (!url) {
  process.stderr.write("usage: node chromium.mjs URL [--screenshot FILE.png] [--timeout MS]\n");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  process.stderr.write(`chromium.mjs: gave up after ${timeout} ms\n`);
  process.exit(3);
}, timeout + 15_000);

const profile = mkdtempSync(join(tmpdir(), "forkify-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.FORKIFY_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout,
    viewport: { width: 1000, height: 700 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const console_ = [];
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout });
  await page.waitForSelector('body:not([data-state="running"])', { timeout });
  const found = await page.evaluate(() => ({
    state: document.body.dataset.state,
    output: document.getElementById("output")?.textContent ?? "",
    status: document.getElementById("status")?.textContent ?? "",
    result: window.forkifyResult ?? window.forkifyReport ?? null,
  }));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(JSON.stringify({ ...found, console: console_ }));
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
