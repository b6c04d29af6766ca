// The recursion-depth search in a Chromium page. bench/src/depth.rs inlines
// this script after `const PROBES = [{id, warm, wasm: base64}, ...]`,
// `const FRESH = true|false` and depth-search.js (the search itself), and loads the page with `chromium --headless
// --dump-dom`. Runs synchronously before the load event, then writes JSON
// into <pre id="out">.
//
// Under the default flags (FRESH = true) every attempt compiles a new
// module: the wire bytes get a custom section holding a counter, so V8
// cannot reuse code (or a tier-up) from an earlier attempt, and each deep
// call starts in Liftoff, as a page's first call would. Under a forced tier
// the code cannot change, so one module per variant serves every attempt.
// Each attempt: a new instance, walk(min(warm, depth)), then walk(depth).
'use strict';
(function () {
  const imports = { kernel: { kernel_fork: () => 0 } };
  let nonce = 0;

  function compile(bytes) {
    const n = nonce++;
    // custom section id 0, size 6, name "n" (length 1), 4 counter bytes
    const extra = [0, 6, 1, 0x6e, n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
    const b = new Uint8Array(bytes.length + extra.length);
    b.set(bytes);
    b.set(extra, bytes.length);
    return new WebAssembly.Module(b);
  }

  function attempt(bytes, depth, warm) {
    const module = FRESH ? compile(bytes) : (bytes.module ||= new WebAssembly.Module(bytes));
    const walk = new WebAssembly.Instance(module, imports).exports.walk;
    try {
      const w = Math.min(warm, depth);
      const r = String(walk(w));
      walk(depth);
      return { ok: true, warm: w === warm ? r : undefined };
    } catch (e) {
      if (e instanceof RangeError) return { ok: false };
      throw e;
    }
  }

  function search(bytes, warm) {
    return searchDepth((depth) => attempt(bytes, depth, warm), warm);
  }

  const results = PROBES.map((p) => {
    const bytes = Uint8Array.from(atob(p.wasm), (c) => c.charCodeAt(0));
    try {
      return Object.assign({ id: p.id }, search(bytes, p.warm));
    } catch (e) {
      return { id: p.id, error: String(e) };
    }
  });
  // the harness undoes the DOM serialiser's &amp; &lt; &gt; escapes
  document.getElementById('out').textContent = JSON.stringify(results);
})();
