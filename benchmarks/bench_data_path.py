"""Issue 25's guard: the data path's redesign must not slow `fit` or `log_prob`.

Runs the same measurements on two source trees, each in its own process, alternating which
runs first round by round (the machine is shared: compare within a round): a `git archive` of an
earlier commit ("before") and this checkout ("after"). Measured: MAF (5 layers x (128, 128),
the protocol's digits training split, 1078 x 64, batch 64, one thread) train steps per
second, plain and with sample weights + validation data; `log_prob` rows per second on
10,000 x 64 rows as NumPy and as a tensor, and 64-row calls per second.

usage: python benchmarks/bench_data_path.py --before 1e817a1 --rounds 3
"""

import argparse
import json
import os
import statistics
import sys
import time

import source_trees

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _timed(results, name, rows, call):
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    results[name] = rows / (time.perf_counter() - wall)
    results[name.replace("/s", "/CPU s")] = rows / (time.process_time() - cpu)


def worker(tree):
    sys.path[:0] = [tree, HERE]
    import keras
    import numpy as np
    import tensorflow as tf

    import protocol

    protocol.limit_threads(1)
    import tfflows as tff

    assert tff.__file__.startswith(tree), tff.__file__
    train = protocol.load("digits", 0)[0]
    keras.utils.set_random_seed(0)
    flow = tff.MAF(train.shape[1], num_layers=5, hidden_units=(128, 128))
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    w = np.random.default_rng(0).uniform(0.5, 1.5, len(train)).astype("float32")
    fit = dict(epochs=4, batch_size=64, verbose=0)
    flow.fit(train, **{**fit, "epochs": 1})  # tracing
    flow.fit(train, sample_weight=w, validation_data=train[:200], **{**fit, "epochs": 1})
    steps = 4 * int(np.ceil(len(train) / 64))
    out = {}
    _timed(out, "fit steps/s", steps, lambda: flow.fit(train, **fit))
    _timed(out, "fit+weights+validation steps/s", steps,
           lambda: flow.fit(train, sample_weight=w, validation_data=train[:200], **fit))
    big = np.concatenate([train] * 10)[:10000]
    tensor = tf.constant(big)
    flow.log_prob(big[:10]), flow.log_prob(big), flow.log_prob(tensor)
    for name, data in (("log_prob NumPy rows/s", big), ("log_prob tensor rows/s", tensor)):
        _timed(out, name, 5 * len(big), lambda: [flow.log_prob(data) for _ in range(5)])
    small = tensor[:64]
    _timed(out, "log_prob 64-row calls/s", 200, lambda: [flow.log_prob(small) for _ in range(200)])
    print("RESULT " + json.dumps(out), flush=True)


def drive(before, rounds):
    trees = {"before": source_trees.before_tree(before), "after": ROOT}
    results = source_trees.alternate(
        trees, rounds, lambda name, tree: source_trees.worker_result(__file__, name, tree))
    print(f"Command: `python benchmarks/bench_data_path.py --before {before} --rounds {rounds}`"
          f"; load average at the end {os.getloadavg()[0]:.2f}\n")
    print(f"| measure | before ({before}) | after | after/before (medians) | per-round |")
    print("|---|---:|---:|---:|---:|")
    for key in results["before"][0]:
        b = [r[key] for r in results["before"]]
        a = [r[key] for r in results["after"]]
        ratios = sorted(x / y for x, y in zip(a, b))
        print(f"| {key} | {statistics.median(b):.0f} | {statistics.median(a):.0f} | "
              f"{statistics.median(a) / statistics.median(b):.2f} | "
              f"{ratios[0]:.2f}-{ratios[-1]:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="1e817a1", help="commit of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    worker(args.worker) if args.worker else drive(args.before, args.rounds)
