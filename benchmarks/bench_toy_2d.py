"""How far `tfflows fit` lands from the truth on the embedded 2-D sets.

Every candidate is trained exactly as `tfflows fit <set>` trains (tfflows/cli.py
`cmd_fit`): `toy_2d(set, n, seed)`, the seeded 80/20 `tfflows.data.splits.split`,
`keras.utils.set_random_seed(seed)`, the preset, `compile(Adam(lr))`, `fit(train,
validation_data=val, epochs, batch_size, callbacks=[EarlyStopping(patience,
restore_best_weights=True)])`. A candidate may replace the constant learning rate by a
cosine decay over the planned steps (`schedule="cosine"`). It is then scored on fresh draws
(`--test-rows` rows from seed 10_000 + seed): the model's test NLL, the true NLL of the
same rows (`tfflows.data.toy_density`, an estimate of the entropy), their gap in nats, and
the wall seconds of the fit alone (the CLI's import, export and pictures come on top).
Density pictures (`tfflows.plot.density.density_2d`) are written for the first seed.

    python benchmarks/bench_toy_2d.py                       # every candidate, 5 sets, 2 seeds
    python benchmarks/bench_toy_2d.py --candidates default nsf_c8 --seeds 0 --sets moons
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

SETS = ("moons", "circles", "eight_gaussians", "checkerboard", "pinwheel")
_DEFAULT = dict(model="realnvp", kwargs=dict(num_layers=8, hidden_units=(64, 64)), epochs=40,
                batch_size=256, learning_rate=2e-3, schedule=None, n=8000, patience=10)


def _candidate(**changes):
    return {**_DEFAULT, **changes}


# name -> the preset, its arguments and the fit arguments (what `tfflows fit` would use).
# A step costs about the same CPU time at batch 256 and 1024 (small MLPs: overhead-bound), so
# the "_40k" candidates see 5x the rows in about the default's number of steps (30 x 32).
_NSF = dict(num_layers=4, hidden_units=(64, 64), bins=8, kind="coupling")
_BIG = dict(n=40000, batch_size=1024, epochs=30, learning_rate=3e-3, schedule="cosine")


def _nsf16(net=None, **fit):
    """A 16-bin NSF candidate on 40k rows: `net` changes the preset's arguments, `fit` the
    training's (epochs, batch_size, learning_rate)."""
    return _candidate(model="nsf", kwargs={**_NSF, "bins": 16, **(net or {})}, **{**_BIG, **fit})


CANDIDATES = {
    "default": _candidate(),
    "realnvp_40k": _candidate(**_BIG),
    "nsf": _candidate(model="nsf", kwargs=_NSF),
    "nsf_40k": _candidate(model="nsf", kwargs=_NSF, **_BIG),
    "nsf_40k_lr5": _candidate(model="nsf", kwargs=_NSF, **{**_BIG, "learning_rate": 5e-3}),
    "nsf_40k_lr5_e20": _candidate(model="nsf", kwargs=_NSF,
                                  **{**_BIG, "learning_rate": 5e-3, "epochs": 20}),
    "nsf_40k_bins16": _nsf16(),
    "nsf_40k_bins16_e20": _nsf16(epochs=20),
    "nsf_40k_bins16_e25": _nsf16(epochs=25),
    # probes of what limits checkerboard (issue 27): training length, width, depth, bins,
    # batch size and learning rate
    "nsf_40k_bins16_e100": _nsf16(epochs=100),
    "nsf_40k_bins16_h128_e25": _nsf16(dict(hidden_units=(128, 128)), epochs=25),
    "nsf_40k_bins16_l6_e25": _nsf16(dict(num_layers=6), epochs=25),
    "nsf_40k_bins32_e25": _nsf16(dict(bins=32), epochs=25),
    "nsf_40k_bins16_b512_e25": _nsf16(epochs=25, batch_size=512),
    "nsf_40k_bins16_b512_e15": _nsf16(epochs=15, batch_size=512),
    "nsf_40k_bins16_lr5_e25": _nsf16(epochs=25, learning_rate=5e-3),
    "nsf_40k_bins32_b512_e20": _nsf16(dict(bins=32), epochs=20, batch_size=512),
    "nsf_40k_bins16_b512_lr5_e20": _nsf16(epochs=20, batch_size=512, learning_rate=5e-3),
    "nsf_40k_bins16_b256_e12": _nsf16(epochs=12, batch_size=256),
    "nsf_40k_bins16_b512_lr5_e25": _nsf16(epochs=25, batch_size=512, learning_rate=5e-3),
    # the `tfflows fit` default for tables since 2026-12-07 21:40
    "nsf_40k_bins16_b256_lr5_e15": _nsf16(epochs=15, batch_size=256, learning_rate=5e-3),
    "nsf_40k_6layers": _candidate(model="nsf", kwargs={**_NSF, "num_layers": 6}, **_BIG),
    "nsf_ar_40k": _candidate(model="nsf", kwargs={**_NSF, "kind": "autoregressive"}, **_BIG),
    "rbig": _candidate(model="rbig", kwargs={}),
    "rbig_40k": _candidate(model="rbig", kwargs={}, n=40000),
    # RBIG with the greedy defaults before issue 26 (shrinkage 0.4 in every block, at most
    # 100 blocks, patience 5), a reference for the small-step defaults
    "rbig_earlier": _candidate(model="rbig", kwargs=dict(shrinkage=0.4, first_shrinkage=0.4),
                               greedy=dict(max_blocks=100, patience=5)),
    "gaussianization": _candidate(model="gaussianization", kwargs={}, learning_rate=1e-3,
                                  epochs=25),
}


def build(candidate):
    import tfflows

    cls = {"realnvp": tfflows.RealNVP, "nsf": tfflows.NSF, "rbig": tfflows.RBIG,
           "gaussianization": tfflows.GaussianizationFlow}[candidate["model"]]
    return cls(2, **candidate["kwargs"])


def learning_rate(candidate, train_rows):
    import keras

    if candidate["schedule"] is None:
        return candidate["learning_rate"]
    if candidate["schedule"] == "cosine":
        steps = candidate["epochs"] * math.ceil(train_rows / candidate["batch_size"])
        return keras.optimizers.schedules.CosineDecay(candidate["learning_rate"], decay_steps=steps)
    raise ValueError(f"unknown schedule {candidate['schedule']!r}")


def run_one(name, candidate, dataset, seed, test_rows, pictures):
    """One `tfflows fit`-equivalent training and its scores on fresh draws."""
    import keras

    from tfflows.data.datasets import toy_2d
    from tfflows.data.splits import split
    from tfflows.data.toy_density import toy_2d_log_prob

    data = toy_2d(dataset, n=candidate["n"], seed=seed).astype("float32")
    train, val = split(data, (0.8, 0.2), seed)
    keras.utils.set_random_seed(seed)
    model = build(candidate)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(candidate, len(train))))
    start, cpu = time.time(), time.process_time()
    history = model.fit(train, validation_data=val, epochs=candidate["epochs"],
                        batch_size=candidate["batch_size"], verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(patience=candidate["patience"],
                                                                 restore_best_weights=True)],
                        **candidate.get("greedy", {}))
    seconds, cpu = time.time() - start, time.process_time() - cpu
    test = toy_2d(dataset, n=test_rows, seed=10_000 + seed)
    log_p = keras.ops.convert_to_numpy(model.log_prob(test)).astype("float64")
    true = toy_2d_log_prob(dataset, test)
    finite = np.isfinite(log_p)
    picture = None
    if pictures:
        from tfflows.plot.density import density_2d

        picture = os.path.join(pictures, f"{dataset}_{name}_seed{seed}.png")
        density_2d(model, data, picture, title=f"{name} on {dataset} (seed {seed})")
    test_nll = float(-log_p[finite].mean()) if finite.all() else float("inf")
    return dict(set=dataset, candidate=name, seed=seed, n=candidate["n"], test_nll=test_nll,
                true_nll=float(-true.mean()), gap=test_nll - float(-true.mean()),
                nonfinite=int((~finite).sum()), fit_s=seconds, fit_cpu_s=cpu,
                epochs=len(history.history["loss"]),
                picture=picture)


def table(rows):
    lines = ["| set | n | candidate | seed | test NLL | true NLL | gap (nats) | fit wall s "
             "| fit CPU s | epochs |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['n']} | {r['candidate']} | {r['seed']} "
                     f"| {r['test_nll']:.4f} | {r['true_nll']:.4f} | {r['gap']:+.4f} "
                     f"| {r['fit_s']:.1f} | {r['fit_cpu_s']:.1f} | {r['epochs']} |")
    return "\n".join(lines)


def summary(rows, names):
    lines = ["| candidate | " + " | ".join(f"{s} gap" for s in SETS) + " | mean gap | worst gap "
             "| mean fit CPU s | max fit CPU s |", "|---|" + "---:|" * (len(SETS) + 4)]
    for name in names:
        mine = [r for r in rows if r["candidate"] == name]
        if not mine:
            continue
        per_set = {s: np.mean([r["gap"] for r in mine if r["set"] == s]) for s in SETS
                   if any(r["set"] == s for r in mine)}
        seconds = [r["fit_cpu_s"] for r in mine]
        cells = [f"{per_set[s]:+.4f}" if s in per_set else "—" for s in SETS]
        worst = max(r["gap"] for r in mine)
        lines.append(f"| {name} | {' | '.join(cells)} | {np.mean(list(per_set.values())):+.4f} "
                     f"| {worst:+.4f} | {np.mean(seconds):.1f} | {max(seconds):.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES),
                        choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--test-rows", type=int, default=20000)
    parser.add_argument("--pictures", default=os.path.join(report.RESULTS, "toy_2d_pictures"),
                        help="folder for the density pictures of the first seed ('' for none)")
    parser.add_argument("--out", default=None,
                        help="result page (default: results/toy_2d_<date>.md)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started, machine = datetime.datetime.now(), report.machine_header()
    if args.pictures:
        os.makedirs(args.pictures, exist_ok=True)
    out = args.out or report.default_out("toy_2d")
    rows = []
    for name in args.candidates:  # candidate-major: each candidate meets the same load across sets
        for seed in args.seeds:
            for dataset in args.sets:
                pictures = args.pictures if seed == args.seeds[0] else ""
                r = run_one(name, CANDIDATES[name], dataset, seed, args.test_rows, pictures)
                rows.append(r)
                print(f"{dataset:16s} {name:18s} seed {seed}: test {r['test_nll']:.4f} "
                      f"true {r['true_nll']:.4f} gap {r['gap']:+.4f} fit {r['fit_s']:.1f}s "
                      f"(CPU {r['fit_cpu_s']:.1f}s, {r['epochs']} epochs) "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                write_page(out, rows, args, argv, started, machine)  # partial results survive
    return 0


def write_page(out, rows, args, argv, started, machine):
    configs = "\n".join(f"- `{name}`: {json.dumps(CANDIDATES[name])}" for name in args.candidates)
    text = "\n".join([
        f"# `tfflows fit` on the embedded 2-D sets vs the true densities "
        f"({started:%Y-%m-%d %H:%M})", "",
        f"Command: `{report.command_line('bench_toy_2d.py', argv)}`", "", *machine,
        f"- Load average at the last row: {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "- Data: `toy_2d(set, n, seed)` (2 features), split 80/20 by "
        "`tfflows.data.splits.split` with the seed, trained as `tfflows fit` trains; scored on "
        f"{args.test_rows} fresh rows (seed 10000 + seed). True NLL: `tfflows.data.toy_density`. "
        "Gap = test NLL - true NLL (nats per row; >= 0 up to sampling noise, which is shared "
        "because both are averaged over the same rows). Fit wall s: seconds of `model.fit` alone "
        "on a shared machine (compare candidates within this page only); fit CPU s: the process "
        "CPU time of the same call (all threads), less sensitive to other jobs' load.",
        "", "## Candidates", "", configs, "", "## Mean gap per set over seeds", "",
        summary(rows, args.candidates), "", "## Every run", "", table(rows), ""])
    report.write(out, text)


if __name__ == "__main__":
    sys.exit(main())
