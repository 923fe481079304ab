"""Mutual information across families of dependence (issue 28), all estimators on the same rows.

Families and truths: benchmarks/information_families.py (the "Beyond Normal" tasks of
benchmark-mi 0.1.3 re-written in NumPy, plus noisy manifolds, more radial laws, noise
models and marginal warps, each with a closed-form or quadrature truth). Estimators:
tfflows (`information.mutual_information_with_interval`, default settings), tfflows before
issue 28 (`remainder="flows"`: the cross-fitted RBIG remainder J(x, y) - J(x) - J(y)), and
the peers of benchmarks/peers_information.py (KSG, CCA, InfoNCE). Target: the mean over
seeds within max(10% of the truth, 0.03 nats); tfflows' 95% interval covering the truth in
at least 90% of runs.

Records go to a JSON file per run (`--estimators` picks the columns, `--seeds` the seeds),
so slow columns can run beside fast ones; `--render` merges records into the page:

    python benchmarks/bench_information_families.py --estimators tfflows,KSG,CCA --seeds 3
    python benchmarks/bench_information_families.py --estimators before,InfoNCE --seeds 1
    python benchmarks/bench_information_families.py --render results/a.json results/b.json
"""

import argparse
import datetime
import json
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import information_families as families  # noqa: E402
import peers_information as peers  # noqa: E402

N = 5000
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ORDER = ["tfflows", "before", "KSG", "CCA", "InfoNCE"]


def tolerance(truth):
    return max(0.1 * abs(truth), 0.03)


def estimators(names):
    from tfflows.gaussianization import information

    out = {}
    for name in names:
        if name == "tfflows":

            def run(x, y, seed):
                e = information.mutual_information_with_interval(x, y, seed=seed)
                return e.value, (e.ci_low, e.ci_high)
        elif name == "before":

            def run(x, y, seed):
                return information.mutual_information(x, y, seed=seed, remainder="flows"), None
        else:
            label, f = {
                "KSG": peers.ksg_peer(),
                "CCA": ("CCA (Gaussian MI)", peers.cca_mi),
                "InfoNCE": ("InfoNCE (Keras critic)", peers.infonce_mi),
            }[name]

            def run(x, y, seed, f=f):
                return f(x, y, seed), None

        out[name] = run
    return out


def measure(args):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    names = args.estimators.split(",")
    ests = estimators(names)
    records = []
    for case in families.cases(args.quick):
        if args.only and not any(s in case.name for s in args.only.split(";")):
            continue
        if args.skip and any(s in case.name for s in args.skip.split(";")):
            continue
        for seed in range(args.seeds):
            x, y = case.sample(seed, N)
            for name in names:
                start = time.perf_counter()
                value, ci = ests[name](x, y, seed)
                records.append(
                    dict(
                        family=case.family,
                        case=case.name,
                        dx=case.dx,
                        dy=case.dy,
                        truth=case.truth,
                        seed=seed,
                        estimator=name,
                        value=float(value),
                        ci=ci,
                        seconds=time.perf_counter() - start,
                        load=os.getloadavg()[0],
                    )
                )
            print(
                case.name,
                seed,
                " ".join(f"{r['estimator']}={r['value']:.4f}" for r in records[-len(names) :]),
                f"truth={case.truth:.4f}",
                flush=True,
            )
            with open(args.out, "w") as f:
                json.dump(dict(command=shlex.join(["python"] + sys.argv), n=N, records=records), f)
    print("wrote", args.out)


def render(paths, out):
    records, commands = [], []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        records += data["records"]
        commands.append(data["command"])
    names = [k for k in ORDER if any(r["estimator"] == k for r in records)]
    cases = list(dict.fromkeys((r["family"], r["case"]) for r in records))
    lines = [
        f"# Mutual information across families of dependence ({datetime.date.today()})",
        "",
        "```",
        *commands,
        "```",
        "",
        f"n = {N} rows per run; nats; each cell: the mean over seeds (error / tolerance, "
        "tolerance = "
        "max(10% of the truth, 0.03 nats); |ratio| <= 1 meets the target), seeds in brackets where "
        "fewer than the most. Same rows for every estimator of a seed. tfflows 'before' is the "
        "estimator of issue 17 (flow remainder). Load: the 1-minute load average of the shared "
        "2-core machine while the row ran.",
        "",
        "| family | case | dx+dy | truth | " + " | ".join(names) + " |",
        "|---|---|---|---:|" + "---:|" * len(names),
    ]
    passed, total, secs, cover = (
        {k: 0 for k in names},
        {k: 0 for k in names},
        {k: [] for k in names},
        [0, 0],
    )
    most = max(r["seed"] for r in records) + 1
    for family, case in cases:
        rows = [r for r in records if r["case"] == case]
        truth = rows[0]["truth"]
        cells = []
        for k in names:
            mine = [r for r in rows if r["estimator"] == k]
            if not mine:
                cells.append("—")
                continue
            mean = float(np.mean([r["value"] for r in mine]))
            ratio = (mean - truth) / tolerance(truth)
            total[k] += 1
            passed[k] += int(abs(ratio) <= 1)
            secs[k] += [r["seconds"] for r in mine]
            cell = f"{mean:.3f} ({ratio:+.1f})" + (f" [{len(mine)}]" if len(mine) < most else "")
            cells.append(f"**{cell}**" if abs(ratio) <= 1 else cell)
            for r in mine:
                if r["ci"] is not None:
                    cover[0] += int(r["ci"][0] <= truth <= r["ci"][1])
                    cover[1] += 1
        lines.append(
            f"| {family} | {case} | {rows[0]['dx']}+{rows[0]['dy']} | {truth:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "## Summary", ""]
    for k in names:
        lines.append(
            f"- {k}: mean within the tolerance on {passed[k]}/{total[k]} cases; "
            "seconds per estimate "
            f"median {np.median(secs[k]):.1f}, max {np.max(secs[k]):.1f}"
        )
    if cover[1]:
        lines.append(
            f"- tfflows 95% interval covers the truth in {cover[0]}/{cover[1]} runs "
            f"({100 * cover[0] / cover[1]:.0f}%)"
        )
    loads = [r["load"] for r in records]
    lines.append(f"- load average during the runs: {min(loads):.1f} to {max(loads):.1f} (2 cores)")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[-len(names) - 3 :]), f"\nwrote {out}", sep="\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", default="tfflows,KSG,CCA,InfoNCE")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one or two cases per family")
    parser.add_argument(
        "--only", default="", help="cases whose name contains one of these (';'-separated)"
    )
    parser.add_argument(
        "--skip", default="", help="cases whose name contains one of these (';'-separated)"
    )
    parser.add_argument(
        "--out", default=None, help="the JSON records (default results/information_families_*.json)"
    )
    parser.add_argument(
        "--render", nargs="+", default=None, help="JSON records to merge into the page"
    )
    parser.add_argument(
        "--page", default=os.path.join(RESULTS, f"information_families_{datetime.date.today()}.md")
    )
    args = parser.parse_args()
    if args.render:
        render(args.render, args.page)
        return
    args.out = args.out or os.path.join(
        RESULTS, f"information_families_{args.estimators.replace(',', '_')}.json"
    )
    measure(args)


if __name__ == "__main__":
    main()
