"""Density-estimation suite (issue 17): test NLL of tfflows' Gaussianization models and
their peers on every real set that ships with scikit-learn / statsmodels and on
synthetic sets with an exact true NLL (benchmarks/suite_data.py), several seeds.

    python benchmarks/bench_density_suite.py [--quick] [--sets real,synthetic]
        [--seeds 0,1,2] [--models ...] [--rbig 'label={"rotation": "ica"}']
        [--out benchmarks/results/suite_<date>.md]

Models (one run, same split per seed): tfflows RBIG (default), RBIG with MSW rotations,
GaussianizationFlow (default: greedy start, `fit` with its own Adam(1e-4), Keras' batch,
keep-best; at most --gf-epochs epochs and --peer-seconds of training); peers: TFP MAF and
zuko NSF (protocol.py candidates: 5 layers, (128, 128); Adam(1e-3), batch 64, early
stopping on validation, patience 20, at most 200 epochs and --peer-seconds of training),
the authors' GIS (the SINF repository at 450ee7b, peers_sinf.py) and sinflow's GIS-style
flow (a re-implementation, labelled so) at their defaults, and the IPL-UV RBIG behaviour
(peers_gaussianization.py). Every library runs on 1 thread. Reported: mean test NLL
(nats, standardized space) +- standard error over seeds, the true NLL for synthetic sets,
fit seconds; --quick: 4 sets, seed 0, 10 s budgets (about 2-3 minutes).
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import peers_gaussianization as pg  # noqa: E402
import protocol  # noqa: E402
import report as report_pages  # noqa: E402
import suite_data  # noqa: E402

OURS = ("RBIG", "RBIG MSW", "GaussianizationFlow")
PEERS = ("TFP MAF", "zuko NSF", "GIS (authors)", "sinflow GIS", "IPL-UV RBIG",
         "IPL-UV RBIG (val depth)")
REFERENCES = ("RBIG 0.1 default (PCA)",)  # shown for comparison, neither a peer nor a current default


def make_models(names, args, extra_rbig):
    import peers_sinf
    import peers_tfp
    import peers_zuko

    factories = {
        "RBIG": lambda: pg.TfflowsRBIG("RBIG"),
        "RBIG MSW": lambda: pg.TfflowsRBIG("RBIG MSW", dict(rotation="max_sliced_wasserstein")),
        "GaussianizationFlow": lambda: pg.TfflowsGF("GaussianizationFlow", epochs=args.gf_epochs,
                                                    max_seconds=args.peer_seconds),
        "TFP MAF": lambda: peers_tfp.candidates()["TFP MAF"],
        "zuko NSF": lambda: peers_zuko.candidate("zuko NSF"),
        "GIS (authors)": lambda: peers_sinf.AuthorsGIS(),
        "sinflow GIS": lambda: pg.SinflowGIS(),
        "IPL-UV RBIG": lambda: pg.IPLRBIG(),
        "IPL-UV RBIG (val depth)": lambda: pg.IPLRBIG("IPL-UV RBIG (val depth)", val_depth=True),
    }
    for label, options in extra_rbig.items():
        options = dict(options)
        kind = options.pop("model", "RBIG")
        greedy = options.pop("greedy", {})
        if kind == "GaussianizationFlow":
            lr = options.pop("learning_rate", 1e-4)
            epochs = options.pop("epochs", args.gf_epochs)
            factories[label] = (lambda label=label, options=options, lr=lr, epochs=epochs: pg.TfflowsGF(
                label, options, learning_rate=lr, epochs=epochs, max_seconds=args.peer_seconds))
        else:
            factories[label] = lambda label=label, options=options, greedy=greedy: pg.TfflowsRBIG(label, options,
                                                                                                   greedy)
        names.append(label)
    return {n: factories[n] for n in names}


def run_one(factory, split, config):
    record = {"test_nll": math.nan, "fit_s": math.nan, "note": ""}
    try:
        candidate = factory()
        log = candidate.fit(split.train, split.val, config)
        record["fit_s"] = log.wall_s
        record["greedy_s"] = getattr(candidate, "greedy_s", log.wall_s)
        record["note"] = log.note
        test_lp = np.asarray(candidate.log_prob(split.test), dtype="float64")
        val_lp = np.asarray(candidate.log_prob(split.val), dtype="float64")
        record["test_nll"] = float(-test_lp.mean()) if np.isfinite(test_lp).all() else math.nan
        record["val_nll"] = float(-val_lp.mean()) if np.isfinite(val_lp).all() else math.nan
        record["nonfinite"] = int((~np.isfinite(test_lp)).sum())
    except Exception as exc:  # noqa: BLE001 - a failure is a result
        record["note"] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
    return record


def fmt(values, digits=2):
    mean, err = protocol.mean_and_error(values)
    if not math.isfinite(mean):
        return "—"
    if len([v for v in values if math.isfinite(v)]) < len(values):
        return f"{mean:.{digits}f} ({len(values) - sum(map(math.isfinite, values))} failed)"
    return f"{mean:.{digits}f}" + (f" ± {err:.{digits}f}" if math.isfinite(err) else "")


def report(records, sets, models, seeds, header):
    lines = list(header)
    by = {(r["set"], r["model"], r["seed"]): r for r in records}
    for title, group in (("Real sets", [s for s in sets if s in suite_data.REAL]),
                         ("Synthetic sets (known density)", [s for s in sets if s in suite_data.SYNTHETIC])):
        if not group:
            continue
        extra = " true NLL |" if group[0] in suite_data.SYNTHETIC else ""
        used = sorted({r["seed"] for r in records if r["set"] in group})
        lines += ["", f"### {title}: test NLL (nats), mean ± s.e. over seeds {','.join(map(str, used))}", "",
                  "| set | d | n train |" + "".join(f" {m} |" for m in models) + extra + " ours − best peer |",
                  "|---|---:|---:|" + "---:|" * len(models) + ("---:|" if extra else "") + "---:|"]
        for s in group:
            rows = {m: [by[(s, m, k)]["test_nll"] for k in seeds if (s, m, k) in by] for m in models}
            means = {m: protocol.mean_and_error(v)[0] for m, v in rows.items()}
            ours = [means[m] for m in models if m not in PEERS + REFERENCES and math.isfinite(means[m])]
            peers = [means[m] for m in models if m in PEERS and math.isfinite(means[m])]
            best_ours, best_peer = min(ours, default=math.nan), min(peers, default=math.nan)
            cells = []
            for m in models:
                text = fmt(rows[m])
                if math.isfinite(means[m]) and means[m] == min(ours + peers):
                    text = f"**{text}**"
                cells.append(text)
            r0 = next(r for r in records if r["set"] == s)
            true = f" | {fmt([by[(s, models[0], k)]['true'] for k in seeds if (s, models[0], k) in by])}" if extra else ""
            lines.append(f"| {s} | {r0['d']} | {r0['n_train']} | " + " | ".join(cells) + true
                         + f" | {best_ours - best_peer:+.2f} |")
    lines += ["", "### Fit seconds (mean over every set and seed; greedy part for GaussianizationFlow in brackets)", "",
              "| model | mean fit s | max fit s |", "|---|---:|---:|"]
    for m in models:
        secs = [r["fit_s"] for r in records if r["model"] == m and math.isfinite(r["fit_s"])]
        greedy = [r.get("greedy_s", math.nan) for r in records if r["model"] == m]
        extra = f" ({np.nanmean(greedy):.1f})" if m == "GaussianizationFlow" and greedy else ""
        if secs:
            lines.append(f"| {m} | {np.mean(secs):.1f}{extra} | {np.max(secs):.1f} |")
    notes = [r for r in records if r["note"].startswith("failed")]
    if notes:
        lines += ["", "Failures:"] + [f"- {r['set']} seed {r['seed']} {r['model']}: {r['note']}" for r in notes]
    return "\n".join(lines) + "\n"


def versions():
    import importlib.metadata as md

    out = []
    for pkg in ("tensorflow", "keras", "tensorflow-probability", "torch", "zuko", "sinflow", "scikit-learn",
                "statsmodels", "numpy", "scipy"):
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="all")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the real sets")
    p.add_argument("--synthetic-seeds", default="0,1", help="seeds of the synthetic sets")
    p.add_argument("--models", default=",".join(OURS + PEERS))
    p.add_argument("--rbig", action="append", default=[], help='extra tfflows model: label={json options}')
    p.add_argument("--peer-seconds", type=float, default=60.0)
    p.add_argument("--gf-epochs", type=int, default=50)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--note", action="append", default=[], help="extra header line (e.g. how merged runs were made)")
    p.add_argument("--merge", action="append", default=[],
                   help="records (.json) of earlier runs to include in the table (same sets / seeds)")
    args = p.parse_args(argv)
    if args.quick:
        args.sets, args.seeds, args.synthetic_seeds = "iris,breast_cancer,macro,gmm4", "0", "0"
        args.peer_seconds, args.gf_epochs = 10.0, 10
    protocol.limit_threads(1)
    sets, seeds = suite_data.parse_sets(args.sets), [int(s) for s in args.seeds.split(",")]
    syn_seeds = [int(s) for s in args.synthetic_seeds.split(",")]
    extra = dict(item.split("=", 1) for item in args.rbig)
    models = make_models([m for m in args.models.split(",") if m], args, {k: json.loads(v) for k, v in extra.items()})
    config = protocol.Config(epochs=200, patience=20, max_train_seconds=args.peer_seconds, threads=1)
    started = datetime.datetime.now()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"suite_{started.strftime('%Y-%m-%d_%H%M')}{'_quick' if args.quick else ''}.md")
    records = []
    for path in args.merge:
        with open(path) as f:
            records += [r for r in json.load(f) if r["model"] not in models]
    merged = list(dict.fromkeys(r["model"] for r in records))
    for s in sets:
        for seed in (seeds if s in suite_data.REAL else syn_seeds):
            split = suite_data.load(s, seed)
            config.seed = seed
            for name, factory in models.items():
                r = run_one(factory, split, config)
                r.update(set=s, seed=seed, model=name, d=split.features, n_train=len(split.train),
                         true=split.true_test_nll)
                records.append(r)
                print(f"[{s} seed {seed}] {name}: test {r['test_nll']:.3f} fit {r['fit_s']:.1f}s {r['note']}"
                      + (f" (true {split.true_test_nll:.3f})" if math.isfinite(split.true_test_nll) else ""),
                      flush=True)
            with open(out + ".json", "w") as f:
                json.dump(records, f)
    command = report_pages.command_line("bench_density_suite.py", argv)
    header = [f"# Density suite ({started.strftime('%Y-%m-%d %H:%M')}, {time.time() - started.timestamp():.0f} s)", "",
              f"Command: `{command}`", "", *protocol.machine_header(), f"- Versions: {versions()}",
              f"- Peers: TFP MAF / zuko NSF: {config.describe()}. GaussianizationFlow: Adam(1e-4), batch 32, at most "
              f"{args.gf_epochs} epochs / {args.peer_seconds:.0f} s, keep-best. sinflow and IPL-UV RBIG "
              "(re-implemented, peers_gaussianization.py) at their defaults.",
              "- Bold: best mean on the row. Last column: best tfflows mean (current models; the 0.1 default is a reference) − best peer mean (negative: we win).",
              *[f"- {n}" for n in args.note]]
    text = report(records, sets, merged + list(models), sorted(set(seeds) | set(syn_seeds)), header)
    print(text)
    report_pages.write(out, text)


if __name__ == "__main__":
    main()
