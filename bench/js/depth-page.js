// The recursion-depth search in a Chromium page. bench/src/depth.rs inlines
// this script after `const PROBES = [{id, warm, wasm: base64}, ...]` and
// `const FRESH = true|false`, and loads the page with `chromium --headless
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
    // walk(warm) first; when even that overflows, search below it.
    const first = attempt(bytes, warm, warm);
    let probes = 1;
    let ok = first.ok ? warm : 0;
    let bad = first.ok ? Math.max(1024, 2 * warm) : warm;
    while (first.ok) {
      probes++;
      if (!attempt(bytes, bad, warm).ok) break;
      ok = bad;
      bad *= 2;
      if (bad > 2 ** 26) throw new Error('never overflows');
    }
    while (bad - ok > 1) {
      const mid = ok + Math.floor((bad - ok) / 2);
      probes++;
      if (attempt(bytes, mid, warm).ok) ok = mid;
      else bad = mid;
    }
    return { max_depth: ok, probes, warm: first.warm };
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
