"""Draws bench/results.png from results.json: per input, code-section growth
and instrumentation wall time (median) for each tool. Called by bench/run.sh."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

results = json.load(open(sys.argv[1]))
inputs = results["inputs"]
names = [i["input"]["name"] for i in inputs]
tools = [
    ("walrus", "walrus round trip (floor)", "#bbbbbb"),
    ("forkify", "forkify", "#1f77b4"),
    ("asyncify", "Asyncify", "#ff7f0e"),
    ("asyncify-O", "Asyncify -O", "#d62728"),
]


def tool(i, tid):
    for t in i["tools"]:
        if t["tool"] == tid and t["ok"]:
            return t
    return None


fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 9))
width = 0.27
xs = range(len(names))
for k, (tid, label, color) in enumerate(tools[1:]):
    ys = []
    for i in inputs:
        t = tool(i, tid)
        ys.append((t["code_size"] / i["code_size"] - 1) * 100 if t and i["code_size"] else float("nan"))
    ax1.bar([x + (k - 1) * width for x in xs], ys, width, label=label, color=color)
ax1.set_ylabel("code-section growth (%)")
ax1.set_title("Code-section size growth per input (no bar: refused or stopped at the time limit)")
ax1.set_xticks(list(xs))
ax1.set_xticklabels(names, rotation=30, ha="right")
ax1.axhline(0, color="black", linewidth=0.5)
ax1.legend()
ax1.grid(axis="y", alpha=0.3)

def stopped(i, tid):
    for t in i["tools"]:
        if t["tool"] == tid and (t.get("error") or "").startswith("stopped"):
            return True
    return False


width = 0.2
limit = results["timeout_s"]
for k, (tid, label, color) in enumerate(tools):
    ys, hatched = [], []
    for i in inputs:
        t = tool(i, tid)
        ys.append(t["wall_median_s"] if t else float("nan"))
        hatched.append(limit if stopped(i, tid) else float("nan"))
    pos = [x + (k - 1.5) * width for x in xs]
    ax2.bar(pos, ys, width, label=label, color=color)
    ax2.bar(pos, hatched, width, color="white", edgecolor=color, hatch="//")
ax2.bar([0], [float("nan")], color="white", edgecolor="black", hatch="//", label=f"stopped at the {limit:.0f} s limit")
ax2.set_yscale("log")
ax2.set_ylabel("wall time, median (s, log scale)")
ax2.set_title(f"Instrumentation time per input (median of {results['runs']} runs; process start included)")
ax2.set_xticks(list(xs))
ax2.set_xticklabels(names, rotation=30, ha="right")
ax2.legend()
ax2.grid(axis="y", alpha=0.3, which="both")

fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100, metadata={"Software": None})
