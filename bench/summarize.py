#!/usr/bin/env python3
"""Prints the summary table of a bench/run-gpu output folder: baton against
its PyTorch peer (same GPU, same call), the 1.5B recompute sweep, and the
multi-GPU pipelines (pp mode) against torch.distributed.pipelining."""
import glob
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


def pipelines(folder):
    """baton-*-pp*.json (baton_bench under mpirun) next to torch-<same>.json."""
    runs = sorted(glob.glob(os.path.join(folder, "baton-*-pp*.json")))
    if not runs:
        return
    print(f"\n{'pipeline run':<32} {'ms/step':>8} {'tokens/s':>9} {'MFU/GPU':>7} {'max mem':>9} "
          f"{'bubble':>7} {'theory':>7} {'exp.comm':>8} {'vs torch':>8}")
    for path in runs:
        name = os.path.basename(path)[len("baton-"):-len(".json")]
        b = load(folder, "baton-" + name)
        t = load(folder, "torch-" + name)
        par = b["parallel"]
        ranks = b.get("per_rank") or []
        p, m = par["stages"], b["batch"]["microbatches"]
        # The forward-backward phase lasts as long as its longest rank; a rank that ends
        # early waits for the others (in "after") as the schedule says, so that is bubble too.
        makespan = max((r["span_ms"] for r in ranks), default=0) or 1
        step = sum(r["step_ms"] for r in ranks) or 1
        bubble = 1 - sum(r["compute_ms"] for r in ranks) / (len(ranks) * makespan) - \
            sum(r["exposed_comm_ms"] for r in ranks) / (len(ranks) * makespan)
        exposed = sum(r["exposed_comm_ms"] for r in ranks) / step
        theory = par["simulated_bubble_fraction"]  # the schedule with F = 1, B = 2: (p-1)/(m+p-1) for 1F1B
        vs = f"{b['tokens_per_s'] / t['tokens_per_s']:.2f}x" if t else ""
        print(f"baton {name:<26} {b['ms_per_step_median']:8.1f} {b['tokens_per_s']:9.0f} {100 * b['mfu']:6.1f}% "
              f"{gib(max(b['peak_bytes_per_rank'])):>9} {100 * bubble:6.1f}% {100 * theory:6.1f}% "
              f"{100 * exposed:7.2f}% {vs:>8}")
        if t:
            print(f"torch {name:<26} {t['ms_per_step']['median']:8.1f} {t['tokens_per_s']:9.0f} "
                  f"{100 * t['mfu']:6.1f}% {gib(max(t['peak_memory_bytes'])):>9}")
    print("bubble: 1 - (compute + exposed comm) / (ranks x longest forward-backward span), stage imbalance included; "
          "theory: the schedule's bubble with equal stages\n(F = 1, B = 2: (p-1)/(m+p-1) for 1F1B);\nexp.comm: waiting beyond the bubble / step, summed over ranks")


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
    folder = sys.argv[1] if len(sys.argv) > 1 else "bench/out"
    main(folder)
    pipelines(folder)
