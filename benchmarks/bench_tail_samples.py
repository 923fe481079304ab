"""Tails of the default RBIG: what the cap on the marginal splines' tail slopes
(`max_tail_slope`) does to samples and to held-out NLL (issue 17, the tail-handling default).

    python benchmarks/bench_tail_samples.py [--caps none,0.75,1.0] [--sets moons,wine,...]
        [--out benchmarks/results/tail_samples_<date>.md]

For each set (seed 0 split of benchmarks/suite_data.py, or 2-D moons: 1,500 training,
500 validation, 2,000 test rows) and cap: `tff.RBIG(d, max_tail_slope=cap).fit_greedy`
with validation, then 4,000 samples. Reported: blocks kept, test NLL, the fraction of
samples (and of test rows) with a coordinate more than one training standard deviation
beyond the training range, and the largest |sample| (data standardized). A cap below 1
makes every block's inverse expand its tails by at least 1 / cap, which compounds with
the depth; a cap of 1 never expands beyond the standardization's slope.
"""

import argparse
import datetime
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import protocol  # noqa: E402
import report  # noqa: E402
import suite_data  # noqa: E402


def _moons():
    import tfflows as tff

    x = [tff.datasets.toy_2d("moons", n=n, seed=s) for n, s in ((1500, 0), (500, 1), (2000, 5))]
    mean, std = x[0].mean(0), x[0].std(0)
    return [((a - mean) / std).astype("float32") for a in x]


def beyond_range(rows, train):
    """Fraction of rows with a coordinate more than one training std outside the training range."""
    lo, hi, std = train.min(0), train.max(0), train.std(0)
    return float(np.mean(((rows < lo - std) | (rows > hi + std)).any(axis=1)))


def run(sets, caps, samples=4000):
    import keras

    import tfflows as tff

    rows = []
    for name in sets:
        if name == "moons":
            train, val, test = _moons()
        else:
            split = suite_data.load(name, 0)
            train, val, test = split.train, split.val, split.test
        for cap in caps:
            keras.utils.set_random_seed(0)
            model = tff.RBIG(train.shape[1], seed=0, max_tail_slope=cap)
            model.fit_greedy(train, validation_data=val, verbose=0)
            drawn = np.asarray(model.sample(samples, seed=1), dtype="float64")
            nll = float(-np.mean(np.asarray(model.log_prob(test), dtype="float64")))
            rows.append(dict(set=name, cap=cap, blocks=model.num_blocks, test_nll=nll,
                             samples_beyond=beyond_range(drawn, train), test_beyond=beyond_range(test, train),
                             max_abs=float(np.abs(drawn).max()), data_max_abs=float(np.abs(test).max())))
            print(rows[-1], flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--caps", default="none,0.75,1.0")
    p.add_argument("--sets", default="moons,wine,breast_cancer,digits,star98,gmm16,gmm64,student16,copula16")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: moons and wine, no cap and 1.0 (page: a new *_quick.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.sets, args.caps = "moons,wine", "none,1.0"
    protocol.limit_threads(1)
    caps = [None if c.lower() == "none" else float(c) for c in args.caps.split(",")]
    rows = run(args.sets.split(","), caps)
    command = report.command_line("bench_tail_samples.py", argv)
    lines = [f"# RBIG tails: samples and test NLL by max_tail_slope ({datetime.date.today()})", "",
             *report.machine_header(), "", f"`{command}`", "",
             "Seed 0; 4,000 samples. 'beyond': fraction with a coordinate more than one training std outside the "
             "training range (test rows: the same fraction of the held-out rows).", "",
             "| set | max_tail_slope | blocks | test NLL | samples beyond | test rows beyond | max abs sample "
             "(test rows) |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['cap']} | {r['blocks']} | {r['test_nll']:.3f} | {r['samples_beyond']:.4f} | "
                     f"{r['test_beyond']:.4f} | {r['max_abs']:.3g} ({r['data_max_abs']:.3g}) |")
    print("\n".join(lines[-len(rows) - 2:]))
    report.write(args.out or report.default_out("tail_samples", quick=args.quick), "\n".join(lines))


if __name__ == "__main__":
    main()
