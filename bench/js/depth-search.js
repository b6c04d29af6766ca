// The deepest walk(depth) that completes: walk(warm) first, then doubling,
// then bisection. Shared by depth.mjs (Node, which imports this file) and
// depth-page.js (Chromium: bench/src/depth.rs inlines this file before
// it). `attempt(depth)` runs one probe and returns {ok, warm}; the first
// probe is walk(warm) itself, and when even that overflows the search goes
// below it. Returns {max_depth, probes, warm}.
'use strict';
globalThis.searchDepth = function searchDepth(attempt, warm) {
  const first = attempt(warm);
  let probes = 1;
  let ok = first.ok ? warm : 0;
  let bad = first.ok ? Math.max(1024, 2 * warm) : warm;
  while (first.ok) {
    probes++;
    if (!attempt(bad).ok) break;
    ok = bad;
    bad *= 2;
    if (bad > 2 ** 26) throw new Error('never overflows');
  }
  while (bad - ok > 1) {
    const mid = ok + Math.floor((bad - ok) / 2);
    probes++;
    if (attempt(mid).ok) ok = mid;
    else bad = mid;
  }
  return { max_depth: ok, probes, warm: first.warm };
};
