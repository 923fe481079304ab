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
import sys
import tempfile
import time

import source_trees

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
    trees = {"before": source_trees.before_tree(before), "after": ROOT}
    results = source_trees.alternate(trees, rounds, lambda name, tree: source_trees.worker_result(
        __file__, name, tree, "--blocks", str(blocks)))
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
