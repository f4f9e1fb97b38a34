#!/usr/bin/env python3
"""Prints the summary table of a bench/run-gpu output folder: baton against
its PyTorch peer (same GPU, same call), and the 1.5B recompute sweep."""
import json
import os
import sys


def load(folder, name):
    path = os.path.join(folder, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def gib(b):
    return f"{b / 2**30:.1f} GiB"


def main(folder):
    rows = []
    baton, torch = load(folder, "baton-124m"), load(folder, "torch-124m")
    print()
    print(f"{'run':<36} {'ms/step':>9} {'tokens/s':>10} {'MFU':>6} {'peak mem':>10} {'vs torch':>9}")
    if baton:
        rows.append(("baton GPT-2 124M 32x1024", baton["ms_per_step_median"], baton["tokens_per_s"], baton["mfu"],
                     baton["peak_bytes"], baton["tokens_per_s"] / torch["tokens_per_s"] if torch else None))
    if torch:
        rows.append(("torch+compile GPT-2 124M 32x1024", torch["ms_per_step"]["median"], torch["tokens_per_s"],
                     torch["mfu"], torch["peak_memory_bytes"], 1.0))
    none = load(folder, "baton-1.5b-NONE")
    for r in ("NONE", "SELECTIVE", "FULL"):
        j = load(folder, "baton-1.5b-" + r)
        if j:
            ratio = j["ms_per_step_median"] / none["ms_per_step_median"] if none else None
            rows.append((f"baton GPT-2 1.5B recompute {r.lower()}", j["ms_per_step_median"], j["tokens_per_s"], j["mfu"],
                         j["peak_bytes"], None, ratio))
    for row in rows:
        name, ms, tps, mfu, peak, vs = row[:6]
        extra = f"  step time {row[6]:.2f}x of none" if len(row) > 6 and row[6] else ""
        print(f"{name:<36} {ms:9.1f} {tps:10.0f} {100 * mfu:5.1f}% {gib(peak):>10} "
              f"{(f'{vs:.2f}x' if vs else ''):>9}{extra}")
    sweep = os.path.join(folder, "microbatch-sweep.txt")
    if os.path.exists(sweep):
        print("\nGPT-2 1.5B, one GPU:")
        print(open(sweep).read().rstrip())
    if baton and baton.get("ops"):
        print("\nbaton GPT-2 124M, one profiled step:")
        total = sum(p["ms"] for p in baton["phases"]) or 1
        for p in baton["phases"] + baton["ops"]:
            print(f"  {p['name']:<38} {p['calls']:6d} {p['ms']:9.2f} ms {100 * p['ms'] / total:5.1f}%")
    if baton:
        print("\nbaton 124M memory peaks by category:",
              ", ".join(f"{k} {gib(v)}" for k, v in baton["peak_bytes_by_category"].items() if v))
        print("cudaMalloc calls during timed steps:", baton["device_allocations_in_timed_steps"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/out")
