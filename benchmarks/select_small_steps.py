"""The greedy fits' step size, chosen on VALIDATION NLL across the suite (issue 26, part 4):
one shrinkage for every block (the old default 0.4, or small steps 0.8 / 0.9) against a
first block at 0.4 followed by small steps, and against the default, which chooses the
first block between 0.4 and 0.8 by the NLL after 10 blocks ("auto").

    python benchmarks/select_small_steps.py [--sets small] [--seed 0]
        [--candidates old,u08,u09,first04_08,first04_09,auto]
        [--out benchmarks/results/select_small_steps_<date>.md]

Every candidate is one `tff.RBIG(d, shrinkage=..., first_shrinkage=...)` greedy fit per set
(seed-0 split of suite_data.py) with the validation rows, run long (patience 25, the
training-gain rule off, at most 1,000 blocks); the stopping rules "patience 5" (the old
default) and "patience 10" (the new one) are replayed on its per-block validation record,
and the best validation NLL within each is reported, with the blocks and seconds it took.
The choice reads the validation NLL only; the test NLL at the kept depth of the long run is
printed afterwards.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import report  # noqa: E402
import suite_data  # noqa: E402

CANDIDATES = {
    "old": dict(shrinkage=0.4, first_shrinkage=0.4),
    "u08": dict(shrinkage=0.8, first_shrinkage=0.8),
    "u09": dict(shrinkage=0.9, first_shrinkage=0.9),
    "first04_08": dict(shrinkage=0.8, first_shrinkage=0.4),
    "first04_09": dict(shrinkage=0.9, first_shrinkage=0.4),
    # the default: the first block chosen between 0.4 and 0.8 by the NLL after 10 blocks
    "auto": dict(shrinkage=0.8, first_shrinkage=None),
}
LONG = dict(max_blocks=1000, patience=25, tol=-1e9)


def replay(val_nll, seconds, patience):
    """(best validation NLL, its depth, seconds at the stop) under a patience rule."""
    best, depth, wait = math.inf, 0, 0
    for i, value in enumerate(val_nll):
        if value < best:
            best, depth, wait = value, i + 1, 0
        else:
            wait += 1
            if wait >= patience:
                break
    return best, depth, seconds[i]


def run(split, options):
    import tfflows as tff

    start = time.perf_counter()
    model = tff.RBIG(split.features, **options).fit_greedy(
        split.train, validation_data=split.val, verbose=0, **LONG)
    history = model.greedy_history
    return dict(val=history["val_nll"], seconds=history["seconds"], wall=time.perf_counter() - start,
                test=-float(np.mean(model.log_prob(split.test))))


def page(records, names):
    lines = [f"## Greedy step size on validation NLL ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Command: `{report.command_line('select_small_steps.py')}`", "", *report.machine_header(), "",
             "Validation NLL (nats) within each stopping rule (p5: patience 5, p10: patience 10), "
             "its blocks and seconds; regret = candidate - best candidate of the row (p10).", "",
             "| set | n | d | " + " | ".join(f"{c} p5 | {c} p10 | {c} blocks | {c} s" for c in names) + " |",
             "|---|---:|---:|" + "---:|" * (4 * len(names))]
    regrets = {c: [] for c in names}
    for r in records:
        best = min(r[c]["p10"][0] for c in names)
        cells = []
        for c in names:
            p5, p10 = r[c]["p5"], r[c]["p10"]
            regrets[c].append(p10[0] - best)
            cells += [f"{p5[0]:.3f}", f"{p10[0]:.3f}", str(p10[1]), f"{p10[2]:.1f}"]
        lines.append(f"| {r['set']} | {r['n']} | {r['d']} | " + " | ".join(cells) + " |")
    lines += ["", "| candidate | options | mean regret (p10) | worst regret | sets best |", "|---|---|---:|---:|---:|"]
    for c in names:
        wins = sum(1 for g in regrets[c] if g == 0)
        lines.append(f"| {c} | `{json.dumps(CANDIDATES[c])}` | {np.mean(regrets[c]):.3f} | {max(regrets[c]):.3f} | {wins} |")
    lines += ["", "Test NLL at the kept depth of the long run (read after the choice):", "",
              "| set | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for r in records:
        lines.append(f"| {r['set']} | " + " | ".join(f"{r[c]['test']:.3f}" for c in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    names = args.candidates.split(",")
    records = []
    for name in suite_data.parse_sets(args.sets):
        split = suite_data.load(name, args.seed)
        record = dict(set=name, n=len(split.train), d=split.features)
        for c in names:
            result = run(split, CANDIDATES[c])
            result["p5"] = replay(result["val"], result["seconds"], 5)
            result["p10"] = replay(result["val"], result["seconds"], 10)
            record[c] = result
            print(name, c, f"p10 {result['p10'][0]:.3f} blocks {result['p10'][1]}", flush=True)
        records.append(record)
    out = args.out or report.default_out("select_small_steps")
    report.write_with_records(out, page(records, names), records)


if __name__ == "__main__":
    main()
