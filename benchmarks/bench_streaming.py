"""Streamed greedy Gaussianization at growing sizes: fit time and peak resident memory of
`RBIG.fit_greedy` on rows generated on the fly (never held in memory), d = 64.

    python benchmarks/bench_streaming.py [--rows 1e5 1e6 1e7] [--blocks 4] [--out ...]
    python benchmarks/bench_streaming.py --quick          # 2e4 and 1e5 rows, d = 16

Each size runs in its own process (peak RSS from `resource.getrusage`). The data: a
Gaussian copula with skewed marginals (exp, cube, tanh of correlated normals), drawn
again, identically, at every pass from a seeded generator in batches of 65,536 rows. A
fixed number of blocks (no early stopping) makes the sizes comparable; PCA rotations.
Targets of the issue: peak memory within 1.5x from 1e6 to 1e7 rows, time linear in rows.
An in-memory fit at the smallest size is the reference for the log-density.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import report  # noqa: E402


def batches(rows, d, batch=65536, sample=1):
    """A function returning a fresh iterator over the same rows (re-iterable source);
    every `sample` draws other rows of the same distribution (one mixing matrix)."""
    mixing = np.random.default_rng(0).normal(size=(d, d)) / np.sqrt(d)

    def iterate():
        rng = np.random.default_rng(sample)
        left = rows
        while left > 0:
            z = rng.normal(size=(min(batch, left), d)) @ mixing
            x = np.concatenate([np.exp(0.5 * z[:, 0::3]), z[:, 1::3] ** 3, np.tanh(z[:, 2::3])], axis=1)
            left -= len(z)
            yield x.astype("float32")

    return iterate


def worker(rows, d, blocks):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tfflows as tff

    source = batches(rows, d)
    start = time.perf_counter()
    flow = tff.RBIG(d).fit_greedy(source, max_blocks=blocks, patience=blocks, tol=-1.0, verbose=0)
    seconds = time.perf_counter() - start
    test = next(batches(4096, d, sample=7)())  # held-out rows of the same distribution
    result = {"rows": rows, "d": d, "blocks": flow.num_blocks, "seconds": seconds,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
              "test_nll": float(-np.mean(np.asarray(flow.log_prob(test))))}
    if rows <= 200_000:  # the in-memory fit of the same rows, for the log-density
        memory = tff.RBIG(d).fit_greedy(np.concatenate(list(source())), max_blocks=blocks, patience=blocks,
                                        tol=-1.0, verbose=0)
        result["in_memory_test_nll"] = float(-np.mean(np.asarray(memory.log_prob(test))))
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(int(args.worker[0]), int(args.worker[1]), int(args.worker[2]))
    if args.quick:
        args.rows, args.features = [2e4, 1e5], 16
    results = []
    for rows in args.rows:
        command = [sys.executable, __file__, "--worker", str(int(rows)), str(args.features), str(args.blocks)]
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=dict(os.environ))
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    lines = ["| rows | d | blocks | fit s | s per 1e6 rows | peak RSS MB | test NLL | in-memory test NLL |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['rows']:.0e} | {r['d']} | {r['blocks']} | {r['seconds']:.1f} | "
                     f"{1e6 * r['seconds'] / r['rows']:.1f} | {r['peak_rss_mb']:.0f} | {r['test_nll']:.3f} | "
                     f"{r.get('in_memory_test_nll', float('nan')):.3f} |")
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        lines.append("")
        lines.append(f"Largest two sizes: rows x{b['rows'] / a['rows']:.0f}, time x{b['seconds'] / a['seconds']:.2f}, "
                     f"peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}.")
    text = "\n".join(["# Streamed greedy Gaussianization", "", f"Command: `{report.command_line('bench_streaming.py')}`",
                      "", *report.machine_header(), "", *lines])
    report.write(args.out or report.default_out("streaming", quick=args.quick, dated=False), text)
    print(text)


if __name__ == "__main__":
    main()
