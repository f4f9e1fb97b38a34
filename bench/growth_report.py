#!/usr/bin/env python3
"""Compares the runs of bench/growth-experiment: for each way to the big model
(from scratch, or small model grown at step S with noise n), the model FLOPs and
the wall time it needed to reach the same validation loss, as a markdown table
(stdout), JSON, and a plot of validation loss against FLOPs drawn by gnuplot.

  python3 bench/growth_report.py DIR [--png OUT.png] [--json OUT.json]

DIR holds <run>.metrics.jsonl (scratch, small, grown-s<S>-n<noise>) and
<run>.eval.json (baton eval of the grown checkpoint before training on)."""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile


def load(path):
    train, val = [], []
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            if "loss" in j:
                train.append(j)
            elif "val_loss" in j:
                val.append(j)
    return train, val


def history(train, val, start_flops=0.0, start_seconds=0.0, after=-1):
    """[(step, cumulative flops, cumulative seconds, val_loss)] at the validation steps after `after`."""
    flops, seconds, by_step = start_flops, start_seconds, {}
    for j in train:
        flops += j["flops"]
        seconds += j["ms"] / 1e3
        by_step[j["step"]] = (flops, seconds)
    out = []
    for v in val:
        if v["step"] <= after:
            continue
        f, s = by_step.get(v["step"], (start_flops, start_seconds))
        out.append((v["step"], f, s, v["val_loss"]))
    return out


def first_reaching(points, target):
    for step, f, s, loss in points:
        if loss <= target:
            return step, f, s
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--png", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="regular expression: only the runs whose name matches are drawn")
    a = p.parse_args()

    scratch_t, scratch_v = load(os.path.join(a.dir, "scratch.metrics.jsonl"))
    small_t, small_v = load(os.path.join(a.dir, "small.metrics.jsonl"))
    runs = {"big from scratch": (history(scratch_t, scratch_v), None, None)}
    runs["small alone"] = (history(small_t, small_v), None, None)
    for path in sorted(glob.glob(os.path.join(a.dir, "grown-*.metrics.jsonl"))):
        name = os.path.basename(path)[: -len(".metrics.jsonl")]
        m = re.match(r"grown-s(\d+)-n([0-9.]+)(?:-lr([0-9.]+))?", name)
        s, noise, lr = int(m.group(1)), float(m.group(2)), m.group(3)
        before = [(st, f, sec, l) for st, f, sec, l in history(small_t, small_v) if st <= s]
        f0, s0 = (before[-1][1], before[-1][2]) if before else (0.0, 0.0)
        t, v = load(path)
        grown = history(t, v, f0, s0, after=s)
        ev = os.path.join(a.dir, name + ".eval.json")
        at_growth = json.load(open(ev))["val_loss"] if os.path.exists(ev) else None
        label = f"noise {noise:g}" + (f", lr {lr}" if lr else "")
        runs[f"small to step {s}, grown x2 ({label})"] = (before + grown, s, at_growth)

    scratch = runs["big from scratch"][0]
    best = scratch[-1][3]
    half = scratch[len(scratch) // 2][3]
    targets = [("scratch's final", best), ("scratch's at half its steps", half)]
    rows, summary = [], {"targets": dict((n, t) for n, t in targets), "runs": {}}
    for name, (points, s, at_growth) in runs.items():
        entry = {"final_val_loss": points[-1][3], "total_flops": points[-1][1], "total_seconds": points[-1][2],
                 "grown_at": s, "val_loss_after_growth": at_growth}
        small_at = next((l for st, _, _, l in runs["small alone"][0] if st == s), None) if s else None
        entry["small_val_loss_at_growth"] = small_at
        for tname, target in targets:
            r = first_reaching(points, target)
            entry[tname] = None if r is None else {"step": r[0], "flops": r[1], "seconds": r[2]}
        summary["runs"][name] = entry
        rows.append((name, entry))

    def cell(entry, tname):
        r = entry[tname]
        base = summary["runs"]["big from scratch"][tname]
        if r is None:
            return "not reached"
        rel = f" ({100 * (1 - r['flops'] / base['flops']):+.0f}% saved)" if base and base["flops"] else ""
        return f"{r['flops'] / 1e15:.2f} PFLOP, {r['seconds']:.0f} s, step {r['step']}{rel}"

    print(f"| way to the big model | to val {best:.3f} ({targets[0][0]}) | to val {half:.3f} ({targets[1][0]}) | "
          "final val loss | val loss of the small model at growth / of the grown model |")
    print("|---|---|---|---|---|")
    for name, e in rows:
        growth = ""
        if e["grown_at"]:
            growth = f"{e['small_val_loss_at_growth']:.4f} / {e['val_loss_after_growth']:.4f}" \
                if e["val_loss_after_growth"] is not None else ""
        print(f"| {name} | {cell(e, targets[0][0])} | {cell(e, targets[1][0])} | {e['final_val_loss']:.4f} | {growth} |")
    if a.json:
        json.dump(summary, open(a.json, "w"), indent=1)

    if a.png:
        with tempfile.TemporaryDirectory() as tmp:
            plots = []
            for i, (name, (points, _, _)) in enumerate(runs.items()):
                if a.plot and not re.search(a.plot, name):
                    continue
                data = os.path.join(tmp, f"{i}.dat")
                with open(data, "w") as f:
                    for _, fl, _, loss in points:
                        f.write(f"{fl / 1e15} {loss}\n")
                plots.append(f"'{data}' using 1:2 with linespoints title '{name}'")
            script = "\n".join([
                "set terminal pngcairo size 900,560" if "pngcairo" in gnuplot_terminals() else "set terminal png size 900,560",
                f"set output '{os.path.abspath(a.png)}'",
                "set title 'GPT on the Brown corpus: growing x2 in width vs training the big model from scratch'",
                "set xlabel 'model FLOPs (PFLOP, small phase included)'", "set ylabel 'validation loss (nats)'",
                "set key top right", "set grid",
                f"set yrange [{best - 0.2}:{best + 1.2}]",
                "plot " + ", ".join(plots)])
            subprocess.run(["gnuplot"], input=script, text=True, check=True)


def gnuplot_terminals():
    try:
        return subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
    except OSError:
        sys.exit("gnuplot is needed for --png (apt-get install gnuplot-nox)")


if __name__ == "__main__":
    main()
