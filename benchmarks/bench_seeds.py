"""The same comparison as `benchmarks/run.py`, repeated over several seeds: each seed
draws its own train/validation/test split and its own initialization, so one seed's
test NLL on a small data set (breast_cancer: 341 training rows) says little on its own.
Reports, per dataset and model, the test NLL of every seed with its mean and standard
error, and the train steps/s ratio to a peer measured in the same run of each seed.

    python benchmarks/bench_seeds.py --models 'NSF,zuko NSF' --peer 'zuko NSF' --datasets breast_cancer --seeds 0,1,2,3,4
    python benchmarks/bench_seeds.py --models 'MAF,TFP MAF,zuko MAF' --peer 'TFP MAF' --seeds 0,1,2

Writes benchmarks/results/seeds_<date>.md (or --out).
"""

import argparse
import datetime
import math
import os
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import protocol, run  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")


def _mean_and_error(values):
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return values[0], math.nan
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _fmt(value, digits=2):
    return "—" if not math.isfinite(value) else f"{value:.{digits}f}"


def report(by_seed, seeds, peer, command, machine, started, minutes):
    """by_seed: {seed: [Result]} -> Markdown."""
    lines = [f"# Seed sweep ({started:%Y-%m-%d %H:%M})", "", f"Command: `{command}`", "", *machine,
             f"- Seeds: {', '.join(map(str, seeds))}; each seed draws its own split and initialization "
             "(protocol of `benchmarks/run.py`, otherwise unchanged).",
             f"- Steps/s ratios are to **{peer}** in the same run of the same seed; the mean of the per-seed "
             "ratios is shown with its standard error.",
             f"- Total run time: {minutes:.1f} min", ""]
    datasets = sorted({r.dataset for results in by_seed.values() for r in results},
                      key=lambda d: protocol.DATASETS.index(d) if d in protocol.DATASETS else 99)
    for dataset in datasets:
        models = []
        for results in by_seed.values():
            for r in results:
                if r.dataset == dataset and r.model not in models:
                    models.append(r.model)
        lines += [f"### {dataset}", "",
                  "| model | library | test NLL per seed | mean NLL ± s.e. | steps/s ratio per seed | mean ratio ± s.e. |",
                  "|---|---|---|---:|---|---:|"]
        for model in models:
            nll, ratio, library = [], [], ""
            for seed in seeds:
                rows = {r.model: r for r in by_seed[seed] if r.dataset == dataset}
                r = rows.get(model)
                library = library or (r.library if r else "")
                nll.append(r.test_nll if r and not r.failed else math.nan)
                ref = rows.get(peer)
                ok = r and ref and not r.failed and not ref.failed and ref.steps_per_s > 0
                ratio.append(r.steps_per_s / ref.steps_per_s if ok else math.nan)
            m, e = _mean_and_error(nll)
            rm, re = _mean_and_error(ratio)
            lines.append(f"| {model} | {library} | {' / '.join(_fmt(v) for v in nll)} | {_fmt(m)} ± {_fmt(e)} | "
                         f"{' / '.join(_fmt(v) for v in ratio)} | {_fmt(rm)} ± {_fmt(re)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="comma-separated names, as for benchmarks/run.py")
    p.add_argument("--peer", required=True, help="the model every steps/s ratio is taken to")
    p.add_argument("--datasets", default=",".join(protocol.DATASETS))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--max-train-seconds", default="120")
    p.add_argument("--out")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    started, t0 = datetime.datetime.now(), time.perf_counter()
    machine = protocol.machine_header()
    by_seed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            by_seed[seed] = run.main(["--models", args.models, "--datasets", args.datasets, "--peer", args.peer,
                                      "--seed", str(seed), "--no-jax", "--max-train-seconds", args.max_train_seconds,
                                      "--out", os.path.join(tmp, f"seed{seed}.md")])
    command = shlex.join(["python", "benchmarks/bench_seeds.py", *(argv if argv is not None else sys.argv[1:])])
    text = report(by_seed, seeds, args.peer, command, machine, started, (time.perf_counter() - t0) / 60)
    out = args.out or os.path.join(RESULTS, f"seeds_{started:%Y-%m-%d_%H%M}.md")
    with open(out, "w") as f:
        f.write(text + "\n")
    print("\n" + text + f"\nWritten to {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
