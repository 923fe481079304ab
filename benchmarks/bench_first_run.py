"""The whole `tfflows fit` a new user runs first (no arguments: the default model on the
embedded two moons), timed as a process from start to exit, before and after a change.

Each run starts `python -m tfflows.cli fit --out <a fresh folder>` with the source tree
first on PYTHONPATH (a `git archive` of the "before" commit, or this checkout), alternating
which tree runs first round by round; the wall time includes interpreter start,
TensorFlow's import and the exit. The phases come from the run's metrics JSON (fit, save
and export, pictures) and the validation NLL from its output.

usage: python benchmarks/bench_first_run.py --before 2b88969 --rounds 3
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import source_trees

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHASES = ("fit_seconds", "save_export_seconds", "pictures_seconds")


def run_once(tree):
    """One `tfflows fit` from `tree`: (wall seconds, the metrics JSON)."""
    out = tempfile.mkdtemp(prefix="tfflows-first-run-")
    env = {**os.environ, "PYTHONPATH": tree}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tfflows.cli", "fit", "--out", out], env=env,
                          capture_output=True, text=True, cwd=out)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"`tfflows fit` from {tree} failed:\n{done.stderr[-2000:]}")
    with open(glob.glob(os.path.join(out, "*_metrics.json"))[0]) as handle:
        return wall, json.load(handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="2b88969", help="commit of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": source_trees.before_tree(args.before), "after": ROOT}
    runs = source_trees.alternate(trees, args.rounds, lambda name, tree: run_once(tree))
    print(f"Command: `python benchmarks/bench_first_run.py --before {args.before} --rounds "
          f"{args.rounds}`; load average at the end {os.getloadavg()[0]:.2f}\n")
    print(f"| `tfflows fit`, medians of {args.rounds} | before ({args.before}) | after |")
    print("|---|---:|---:|")
    print("| wall seconds, process start to exit | "
          + " | ".join(f"{statistics.median(w for w, _ in runs[n]):.1f}" for n in trees) + " |")
    for phase in PHASES:
        print(f"| {phase} | " + " | ".join(
            f"{statistics.median(m[phase] for _, m in runs[n]):.1f}" for n in trees) + " |")
    print("| validation NLL (nats) | " + " | ".join(
        f"{statistics.median(m['val_nll'] for _, m in runs[n]):.3f}" for n in trees) + " |")
    print("| epochs | " + " | ".join(str(runs[n][0][1]["epochs"]) for n in trees) + " |")
    print("\nEvery run (wall s): " + "; ".join(
        f"{n} " + ", ".join(f"{w:.1f}" for w, _ in runs[n]) for n in trees))


if __name__ == "__main__":
    main()
