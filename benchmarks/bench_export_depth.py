"""Seconds of `flow.export(path)` (a SavedModel for TF Serving) before and after a change,
for flows whose graph is deep: RBIG at a fixed depth (every block traced in each
direction) on breast_cancer (455 x 30) and on the 2-D moons, the CLI's default NSF
(4 coupling layers, (64, 64), 16 bins) on moons, and MAF 5 x (128, 128) on digits (64).

Each source tree runs in its own process (a `git archive` of the "before" commit and this
checkout), alternating which runs first round by round; fitting is not timed.

usage: python benchmarks/bench_export_depth.py --before 26fc9e6 --rounds 2 [--blocks 50]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _models(tff, protocol, blocks):
    """(name, fitted flow) pairs; the fits are seeded, so both trees export the same."""
    import keras

    from tfflows.data.datasets import toy_2d

    keras.utils.set_random_seed(0)
    cancer = protocol.load("breast_cancer", 0)[0]
    moons = toy_2d("moons", n=2000, seed=0)
    fixed = dict(max_blocks=blocks, tol=-1.0, patience=blocks, verbose=0)
    yield f"RBIG {blocks} blocks, breast_cancer 455 x 30", tff.RBIG(30).fit_greedy(cancer, **fixed)
    yield f"RBIG {blocks} blocks, moons 2,000 x 2", tff.RBIG(2).fit_greedy(moons, **fixed)
    nsf = tff.NSF(2, num_layers=4, hidden_units=(64, 64), bins=16, kind="coupling")
    nsf.fit(moons, epochs=1, verbose=0)
    yield "NSF (the CLI default), moons 2-D", nsf
    digits = protocol.load("digits", 0)[0]
    maf = tff.MAF(64, num_layers=5, hidden_units=(128, 128))
    maf.fit(digits, epochs=1, verbose=0)
    yield "MAF 5 x (128, 128), digits 1,078 x 64", maf


def worker(tree, blocks):
    sys.path[:0] = [tree, HERE]
    import protocol

    import tfflows as tff

    assert tff.__file__.startswith(tree), tff.__file__
    out = {}
    for name, flow in _models(tff, protocol, blocks):
        path = os.path.join(tempfile.mkdtemp(prefix="tfflows-export-"), "1")
        start = time.perf_counter()
        flow.export(path)
        out[name] = time.perf_counter() - start
    print("RESULT " + json.dumps(out), flush=True)


def drive(before, rounds, blocks):
    folder = tempfile.mkdtemp(prefix="tfflows-before-")
    archive = subprocess.run(["git", "-C", ROOT, "archive", before, "tfflows"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    trees = {"before": folder, "after": ROOT}
    results = {name: [] for name in trees}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for round_ in range(rounds):
        order = list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]
        for name, tree in order:
            run = subprocess.run([sys.executable, __file__, "--worker", tree,
                                  "--blocks", str(blocks)], env=env, capture_output=True, text=True)
            lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
            if not lines:
                sys.exit(f"the {name} worker failed:\n{run.stderr[-3000:]}")
            results[name].append(json.loads(lines[0][len("RESULT "):]))
    print(f"Command: `python benchmarks/bench_export_depth.py --before {before} --rounds {rounds} "
          f"--blocks {blocks}`; load average at the end {os.getloadavg()[0]:.2f}\n")
    print(f"| flow | export s, before ({before}) | after | after/before (medians) |")
    print("|---|---:|---:|---:|")
    for key in results["before"][0]:
        b = statistics.median(r[key] for r in results["before"])
        a = statistics.median(r[key] for r in results["after"])
        print(f"| {key} | {b:.1f} | {a:.1f} | {a / b:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="26fc9e6", help="commit of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=50)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.blocks)
    else:
        drive(args.before, args.rounds, args.blocks)
