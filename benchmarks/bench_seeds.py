"""The same comparison as `benchmarks/run.py`, repeated over several seeds: each seed
draws its own train/validation/test split and its own initialization, so one seed's
test NLL on a small data set (breast_cancer: 341 training rows) says little on its own.
Reports, per dataset and model, the test NLL of every seed with its mean and standard
error, and for each pair (model, peer) the train steps/s ratio measured in the same run
of each seed and the per-seed difference in test NLL.

    python benchmarks/bench_seeds.py --pairs 'NSF:zuko NSF' --datasets breast_cancer --seeds 0,1,2,3,4
    python benchmarks/bench_seeds.py --pairs 'MAF:TFP MAF,MAF:zuko MAF,NSF:zuko NSF' --seeds 0,1,2,3,4

Writes benchmarks/results/seeds_<date>.md (or --out).
"""

import argparse
import datetime
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402


def _fmt(value, digits=2):
    return "—" if not math.isfinite(value) else f"{value:.{digits}f}"


def render(by_seed, seeds, pairs, command, machine, started, minutes):
    """by_seed: {seed: [Result]}, pairs: [(model, peer)] -> Markdown."""
    lines = [f"# Seed sweep ({started:%Y-%m-%d %H:%M})", "", f"Command: `{command}`", "", *machine,
             f"- Seeds: {', '.join(map(str, seeds))}; each seed draws its own split and initialization "
             "(protocol of `benchmarks/run.py`, otherwise unchanged).",
             "- Pairs: steps/s ratio = model / peer, both measured in the same run of the same seed (the "
             "mean of the per-seed ratios with its standard error); ΔNLL = model - peer per seed "
             "(negative: the model is better).",
             f"- Total run time: {minutes:.1f} min", ""]
    datasets = sorted({r.dataset for results in by_seed.values() for r in results},
                      key=lambda d: protocol.DATASETS.index(d) if d in protocol.DATASETS else 99)
    for dataset in datasets:
        models = []
        for results in by_seed.values():
            for r in results:
                if r.dataset == dataset and r.model not in models:
                    models.append(r.model)
        lines += [f"### {dataset}", "", "| model | library | test NLL per seed | mean NLL ± s.e. |", "|---|---|---|---:|"]
        for model in models:
            nll = [_nll(by_seed[seed], dataset, model) for seed in seeds]
            library = next((r.library for seed in seeds for r in by_seed[seed] if r.model == model), "")
            m, e = protocol.mean_and_error(nll)
            lines.append(f"| {model} | {library} | {' / '.join(_fmt(v) for v in nll)} | {_fmt(m)} ± {_fmt(e)} |")
        lines += ["", "| pair | steps/s ratio per seed | mean ratio ± s.e. | ΔNLL per seed | mean ΔNLL ± s.e. |",
                  "|---|---|---:|---|---:|"]
        for model, peer in pairs:
            ratio, delta = [], []
            for seed in seeds:
                rows = {r.model: r for r in by_seed[seed] if r.dataset == dataset and not r.failed}
                a, b = rows.get(model), rows.get(peer)
                ratio.append(a.steps_per_s / b.steps_per_s if a and b and b.steps_per_s > 0 else math.nan)
                delta.append(a.test_nll - b.test_nll if a and b else math.nan)
            rm, re = protocol.mean_and_error(ratio)
            dm, de = protocol.mean_and_error(delta)
            lines.append(f"| {model} : {peer} | {' / '.join(_fmt(v) for v in ratio)} | {_fmt(rm)} ± {_fmt(re)} | "
                         f"{' / '.join(_fmt(v) for v in delta)} | {_fmt(dm)} ± {_fmt(de)} |")
        lines.append("")
    return "\n".join(lines)


def _nll(results, dataset, model):
    for r in results:
        if r.dataset == dataset and r.model == model and not r.failed:
            return r.test_nll
    return math.nan


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True,
                   help="comma-separated model:peer pairs of benchmarks/run.py names, e.g. 'NSF:zuko NSF'")
    p.add_argument("--datasets", default=",".join(protocol.DATASETS))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--max-train-seconds", default="120")
    p.add_argument("--quick", action="store_true", help="seeds 0,1 on breast_cancer, run.py's --quick budget")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.datasets, args.max_train_seconds = "0,1", "breast_cancer", "10"
    seeds = [int(s) for s in args.seeds.split(",")]
    pairs = [tuple(part.strip() for part in pair.split(":")) for pair in args.pairs.split(",")]
    models = list(dict.fromkeys(name for pair in pairs for name in pair))
    started, t0 = datetime.datetime.now(), time.perf_counter()
    machine = report.machine_header()
    by_seed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            by_seed[seed] = run.main(["--models", ",".join(models), "--datasets", args.datasets, "--peer", pairs[0][1],
                                      "--seed", str(seed), "--no-jax", "--max-train-seconds", args.max_train_seconds,
                                      *(["--quick"] if args.quick else []),
                                      "--out", os.path.join(tmp, f"seed{seed}.md")])
    text = render(by_seed, seeds, pairs, report.command_line("bench_seeds.py", argv), machine, started,
                  (time.perf_counter() - t0) / 60)
    print("\n" + text)
    report.write(args.out or report.default_out("seeds", args.quick), text)


if __name__ == "__main__":
    main()
