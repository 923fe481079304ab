"""Choose the Gaussianization defaults once, on VALIDATION NLL over the whole suite
(issue 17, part 3); test NLL is reported only after the choice.

    python benchmarks/select_gaussianization.py --stage rbig [--sets all] [--seeds 0,1,2]
    python benchmarks/select_gaussianization.py --stage tails [--seeds 3,4 --synthetic-seeds 3,4]
    python benchmarks/select_gaussianization.py --stage gf --base '{"rotation": ...}'
        [--sets real] [--out benchmarks/results/select_gaussianization_<date>.md]
    python benchmarks/select_gaussianization.py --stage tails --quick  # iris, gmm4, seed 0

Stage "rbig": greedy-fit options. Every candidate is a dict of `tff.RBIG` options
(rotation, num_directions, num_knots, bandwidth, shrinkage); one greedy pass per
(candidate, set, seed) is built from the public layers exactly as `RBIG.fit_greedy`
builds it (block i = MarginalGaussianization(spline) then Rotation(seed + i), fitted on
the training rows), run with patience 10 and the train-gain tol 1e-3, recording the
train / validation / test NLL after every block; the stopping rules patience in
PATIENCES are then replayed on that record (the same rule as fit_greedy: stop after
`patience` blocks without a validation improvement or with a train gain < tol; keep the
best validation depth). Round 1 varies one factor at a time around the current default;
round 2 combines the per-factor winners and varies again around the combination.

Stage "tails": the cap on the spline's outer-knot (tail) slopes, `max_tail_slope` in
TAIL_SLOPES (None: uncapped), around the current `tff.RBIG` defaults (CURRENT), scored as
stage "rbig" scores its rounds.

Stage "gf": GaussianizationFlow's fine-tuning schedule from the chosen greedy start:
learning rates LRS, one run of at most 50 epochs each (Keras batch 32), the validation
and test NLL recorded after every epoch; epochs in GF_EPOCHS and keep-best on/off are
replayed on that record.

Score of a candidate: for every (set, seed), its rank among the candidates of the round
and its regret (validation NLL minus the best candidate's); both averaged over seeds,
then over sets (every set counts once). The winner has the lowest mean rank; its mean
regret, worst-set regret and its test NLL are printed afterwards.
"""

import argparse
import datetime
import json
import math
import os
import tempfile
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import protocol  # noqa: E402
import report as report_pages  # noqa: E402
import suite_data  # noqa: E402

DEFAULT = dict(rotation="pca", num_directions=None, num_knots=32, bandwidth=1.0, shrinkage=0.2, patience=5)
PATIENCES = (3, 5, 10)
FACTORS = {
    "rotation": [dict(rotation="random"), dict(rotation="ica"),
                 *[dict(rotation="max_sliced_wasserstein", num_directions=k) for k in (2, 4, 8, 16)]],
    "num_knots": [dict(num_knots=k) for k in (16, 64)],
    "bandwidth": [dict(bandwidth=b) for b in (0.0, 0.5, 0.75, 1.5)],
    "shrinkage": [dict(shrinkage=s) for s in (0.0, 0.1, 0.4)],
    "patience": [dict(patience=p) for p in PATIENCES if p != 5],
}
# the tff.RBIG defaults before the tail cap (chosen by stage "rbig", then shrinkage 0.4 on fresh seeds)
CURRENT = dict(rotation="max_sliced_wasserstein", num_directions=None, num_knots=16, bandwidth=1.5, shrinkage=0.4,
               patience=5)
TAIL_SLOPES = (None, 0.5, 0.75, 1.0, 1.5, 2.0)
LRS = (1e-4, 3e-4, 1e-3)
GF_EPOCHS = (5, 10, 25, 50)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def label(c):
    parts = []
    for k, v in c.items():
        if k == "num_directions" and v is None:
            continue
        if k == "rotation" and v == "max_sliced_wasserstein":
            v = "msw"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def greedy_curve(split, options, seed, max_blocks=100, patience=10, tol=1e-3, make_block=None):
    """Per-block train/val/test NLL and cumulative seconds of one greedy RBIG pass."""
    import keras
    from keras import ops

    import tfflows as tff

    keras.utils.set_random_seed(seed)
    n, nv = len(split.train), len(split.val)
    d = split.features
    rows = np.concatenate([split.train, split.val, split.test]).astype("float32")
    h = ops.convert_to_tensor(rows)
    log_det = np.zeros(len(rows))

    def nll(z, ld):
        return float(np.mean(0.5 * np.sum(z**2, axis=1) + d * HALF_LOG_2PI - ld))

    curve = {"train": [], "val": [], "test": [], "seconds": []}
    prev_train = nll(rows[:n], log_det[:n])
    best, wait_val, wait_tol = math.inf, 0, 0
    start = time.perf_counter()
    for i in range(max_blocks):
        if make_block is not None:
            block = make_block(i, options, seed)
        else:
            block = [tff.MarginalGaussianization(method="spline", num_knots=options["num_knots"],
                                                 bandwidth=options["bandwidth"], shrinkage=options["shrinkage"],
                                                 max_tail_slope=options.get("max_tail_slope")),
                     tff.Rotation(kind=options["rotation"], seed=seed + i, num_directions=options.get("num_directions"))]
        for layer in block:
            layer.build((None, d))
            layer.fit_from_data(h[:n])
            h, ld = layer.forward_and_log_det(h)
            log_det += np.asarray(ld, dtype="float64")
        z = np.asarray(h, dtype="float64")
        for key, sl in (("train", slice(0, n)), ("val", slice(n, n + nv)), ("test", slice(n + nv, None))):
            curve[key].append(nll(z[sl], log_det[sl]))
        curve["seconds"].append(time.perf_counter() - start)
        gain, prev_train = prev_train - curve["train"][-1], curve["train"][-1]
        wait_tol = wait_tol + 1 if gain < tol else 0
        if curve["val"][-1] < best:
            best, wait_val = curve["val"][-1], 0
        else:
            wait_val += 1
        if not math.isfinite(curve["val"][-1]) or wait_val >= patience or wait_tol >= patience:
            break
    return curve


def replay(curve, patience, tol=1e-3):
    """(val, test, blocks kept, blocks fitted, seconds) under fit_greedy's rule."""
    best, depth, wait_val, wait_tol, prev = math.inf, 1, 0, 0, None
    for i, v in enumerate(curve["val"]):
        gain = (prev - curve["train"][i]) if prev is not None else math.inf
        prev = curve["train"][i]
        wait_tol = wait_tol + 1 if gain < tol else 0
        if v < best:
            best, depth, wait_val = v, i + 1, 0
        else:
            wait_val += 1
        if wait_val >= patience or wait_tol >= patience:
            break
    return curve["val"][depth - 1], curve["test"][depth - 1], depth, i + 1, curve["seconds"][i]


def describe(pairs):
    sets = list(dict.fromkeys(p[0] for p in pairs))
    return f"{len(sets)} sets ({', '.join(sets)}), {len(pairs)} (set, seed) pairs"


def score(results):
    """results: {cand: {(set, seed): val}} -> {cand: (mean rank, mean regret, worst set regret, worst set)}."""
    cands = list(results)
    keys = sorted(set.intersection(*(set(r) for r in results.values())))
    sets = sorted({k[0] for k in keys})
    out = {}
    ranks = {c: {} for c in cands}
    regrets = {c: {} for c in cands}
    for key in keys:
        vals = np.array([results[c][key] if math.isfinite(results[c][key]) else 1e9 for c in cands])
        order = vals.argsort().argsort() + 1.0
        for c, r, v in zip(cands, order, vals):
            ranks[c].setdefault(key[0], []).append(r)
            regrets[c].setdefault(key[0], []).append(v - vals.min())
    for c in cands:
        set_rank = [np.mean(ranks[c][s]) for s in sets]
        set_reg = {s: float(np.mean(regrets[c][s])) for s in sets}
        worst = max(set_reg, key=set_reg.get)
        out[c] = (float(np.mean(set_rank)), float(np.mean(list(set_reg.values()))), set_reg[worst], worst)
    return out


def run_rbig_candidates(cands, pairs, cache, log, cache_path=None):
    """Greedy curves for every candidate (dict without 'patience'), cached by label."""
    for c in cands:
        key = label({k: v for k, v in c.items() if k != "patience"})
        for s, seed in pairs:
            ck = f"{key}|{s}|{seed}"
            if ck in cache:
                continue
            split = suite_data.load(s, seed)
            try:
                curve = greedy_curve(split, c, seed)
            except Exception as exc:  # noqa: BLE001 - a failed candidate scores as the worst
                log(f"  {key} | {s} seed {seed}: failed {type(exc).__name__}: {exc}")
                curve = {"train": [math.nan], "val": [math.nan], "test": [math.nan], "seconds": [math.nan]}
            curve["true_test"] = split.true_test_nll
            cache[ck] = curve
            v = replay(curve, c.get("patience", 5))
            log(f"  {key} | {s} seed {seed}: val {v[0]:.3f} blocks {v[2]}/{v[3]} {v[4]:.1f}s")
        if cache_path:
            with open(cache_path, "w") as f:
                json.dump(cache, f)


def evaluate_round(name, cands, pairs, cache, lines):
    results, tests, secs = {}, {}, {}
    for c in cands:
        key = label({k: v for k, v in c.items() if k != "patience"})
        results[label(c)], tests[label(c)], secs[label(c)] = {}, {}, {}
        for s, seed in pairs:
            v, t, kept, fitted, sec = replay(cache[f"{key}|{s}|{seed}"], c.get("patience", 5))
            results[label(c)][(s, seed)], tests[label(c)][(s, seed)] = v, t
            secs[label(c)][(s, seed)] = sec
    scores = score(results)
    order = sorted(scores, key=lambda c: (scores[c][0], scores[c][1]))
    lines += ["", f"### {name}: validation score over {describe(pairs)}", "",
              "| candidate | mean rank | mean val regret (nats) | worst set regret | max fit s |",
              "|---|---:|---:|---|---:|"]
    for c in order:
        r = scores[c]
        lines.append(f"| {c} | {r[0]:.2f} | {r[1]:.3f} | {r[2]:.3f} ({r[3]}) | {max(secs[c].values()):.1f} |")
    return order[0], results, tests


def test_table(chosen, tests, pairs, lines, title):
    lines += ["", f"### {title}: test NLL of the chosen candidates (reported after the choice)", "",
              "| set | " + " | ".join(chosen) + " |", "|---|" + "---:|" * len(chosen)]
    for s in dict.fromkeys(p[0] for p in pairs):
        cells = [f"{np.mean([tests[c][k] for k in pairs if k[0] == s]):.3f}" for c in chosen]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")


def _load_cache(path):
    """Greedy curves already computed, by candidate label and (set, seed)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def stage_rbig(args, pairs, log):
    cache_path = args.cache
    cache = _load_cache(cache_path)
    lines = []
    round1 = [dict(DEFAULT)] + [dict(DEFAULT, **v) for vs in FACTORS.values() for v in vs]
    run_rbig_candidates(round1, pairs, cache, log, cache_path)
    best1, res1, tests1 = evaluate_round("Round 1 (one factor at a time around the current default)", round1,
                                         pairs, cache, lines)
    # per-factor winners vs the default
    combined = dict(DEFAULT)
    for factor, variants in FACTORS.items():
        group = [dict(DEFAULT)] + [dict(DEFAULT, **v) for v in variants]
        sc = score({label(c): res1[label(c)] for c in group})
        win = min(group, key=lambda c: (sc[label(c)][0], sc[label(c)][1]))
        keys = set().union(*variants)
        combined.update({k: win[k] for k in keys | ({"num_directions"} if factor == "rotation" else set())})
        lines.append(f"- factor {factor}: winner `{label(win)}` (mean rank {sc[label(win)][0]:.2f} of {len(group)})")
    round2 = [combined] + [dict(combined, **v) for vs in FACTORS.values() for v in vs if dict(combined, **v) != combined]
    round2 = list({label(c): c for c in round2 + [dict(DEFAULT)]}.values())
    run_rbig_candidates(round2, pairs, cache, log, cache_path)
    best2, res2, tests2 = evaluate_round("Round 2 (around the combined per-factor winners)", round2, pairs,
                                         cache, lines)
    test_table([label(DEFAULT), best2], tests2, pairs, lines, "Default vs chosen")
    return lines, best2


def stage_tails(args, pairs, log):
    cache = _load_cache(args.cache)
    lines = []
    cands = [dict(CURRENT, max_tail_slope=v) for v in TAIL_SLOPES]
    run_rbig_candidates(cands, pairs, cache, log, args.cache)
    best, _, tests = evaluate_round("Tail-slope cap around the current defaults", cands, pairs, cache, lines)
    test_table([label(cands[0]), best], tests, pairs, lines, "Uncapped vs chosen")
    return lines, best


def stage_gf(args, pairs, log):
    import peers_gaussianization as pg

    base = json.loads(args.base)
    patience = base.pop("patience", 5)
    lines, curves = [], {}
    cfg = protocol.Config(threads=1)
    for lr in LRS:
        for s, seed in pairs:
            split = suite_data.load(s, seed)
            cfg.seed = seed
            gf = pg.TfflowsGF("GF", base, learning_rate=lr, epochs=max(GF_EPOCHS), keep_best=False,
                              max_seconds=args.gf_seconds, test=split.test)
            if patience != 5:
                raise ValueError("GaussianizationFlow's greedy start uses fit_greedy's patience 5")
            gf.fit(split.train, split.val, cfg)
            curves[(lr, s, seed)] = gf.curve
            log(f"  lr {lr:g} | {s} seed {seed}: start val {gf.curve['val'][0]:.3f} "
                f"best {np.nanmin(gf.curve['val']):.3f} after {len(gf.curve['val']) - 1} epochs")
    results, tests = {}, {}
    for lr in LRS:
        for e in GF_EPOCHS:
            for kb in (True, False):
                c = f"lr={lr:g}, epochs={e}, keep_best={kb}"
                results[c], tests[c] = {}, {}
                for s, seed in pairs:
                    v, t = pg.schedule_nll(curves[(lr, s, seed)], e, kb)
                    results[c][(s, seed)], tests[c][(s, seed)] = v, t
    c0 = "greedy start (no fine-tuning)"
    results[c0] = {k: curves[(LRS[0],) + k]["val"][0] for k in results[c]}
    tests[c0] = {k: curves[(LRS[0],) + k]["test"][0] for k in results[c]}
    sc = score(results)
    order = sorted(sc, key=lambda c: (sc[c][0], sc[c][1]))
    lines += ["", f"### GaussianizationFlow fine-tuning: validation score over {describe(pairs)} "
              f"(start: {label(base)})", "",
              "| schedule | mean rank | mean val regret | worst set regret |", "|---|---:|---:|---|"]
    for c in order:
        lines.append(f"| {c} | {sc[c][0]:.2f} | {sc[c][1]:.3f} | {sc[c][2]:.3f} ({sc[c][3]}) |")
    current = "lr=0.0001, epochs=50, keep_best=True"
    test_table([c0, current, order[0]], tests, pairs, lines, "Start vs current vs chosen schedule")
    return lines, order[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=("rbig", "tails", "gf"), default="rbig")
    p.add_argument("--sets", default="all")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the real sets")
    p.add_argument("--synthetic-seeds", default="0,1", help="seeds of the synthetic sets (800 validation rows each)")
    p.add_argument("--base", default=json.dumps({k: v for k, v in DEFAULT.items()}))
    p.add_argument("--gf-seconds", type=float, default=40.0)
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tfflows_select_cache.json"),
                   help="fits already scored (a JSON file, reused across runs)")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: iris and gmm4, seed 0, GF 5 s (page: a new *_quick.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.sets, args.seeds, args.synthetic_seeds, args.gf_seconds = "iris,gmm4", "0", "0", 5.0
    protocol.limit_threads(1)
    sets, seeds = suite_data.parse_sets(args.sets), [int(s) for s in args.seeds.split(",")]
    syn_seeds = [int(s) for s in args.synthetic_seeds.split(",")]
    pairs = [(s, k) for s in sets for k in (seeds if s in suite_data.REAL else syn_seeds)]
    started = datetime.datetime.now()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"select_gaussianization_{args.stage}_{started.strftime('%Y-%m-%d_%H%M')}"
                                   f"{'_quick' if args.quick else ''}.md")

    def log(msg):
        print(msg, flush=True)

    lines, best = {"rbig": stage_rbig, "tails": stage_tails, "gf": stage_gf}[args.stage](args, pairs, log)
    command = report_pages.command_line("select_gaussianization.py", argv)
    header = [f"# Gaussianization defaults chosen on validation NLL, stage {args.stage} "
              f"({started.strftime('%Y-%m-%d %H:%M')}, {time.time() - started.timestamp():.0f} s)", "",
              f"Command: `{command}`", "", *protocol.machine_header(),
              f"- Validation over {describe(pairs)}.", "", f"**Chosen: `{best}`**"]
    text = "\n".join(header + lines) + "\n"
    print(text)
    report_pages.write(out, text)


if __name__ == "__main__":
    main()
