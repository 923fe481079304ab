"""Gaussianization on the suite's large sets (issue 26): tfflows RBIG (its defaults) against
the authors' GIS (the SINF repository at 450ee7b, `peers_sinf.py`), as learning curves.

    python benchmarks/bench_gis_large.py [--sets large_real] [--models rbig,rbig_earlier,gis]
        [--gis-iterations 400] [--out benchmarks/results/gis_large_<date>.md]

Each model is fitted once per set (seed 0 split, 60/20/20, standardized; suite_data.py)
with the validation rows for its stopping rule. Recorded after every block / iteration:
the wall seconds since the fit started and the validation NLL (nats per row), so the two
can be compared at the same wall time: GIS's validation NLL when RBIG stopped, and the
seconds RBIG needed to reach GIS's final validation NLL. GIS logs its validation
log-likelihood per iteration (verbose=True, parsed here); it runs on one thread, in
float32, at its defaults, capped at --gis-iterations iterations (it stops earlier after 5
iterations without a better validation NLL). RBIG runs on TensorFlow's default threads.
The test NLL of each fitted model is reported at its end. `rbig_earlier`: RBIG with the
greedy defaults before issue 26 (shrinkage 0.4 in every block, at most 100 blocks,
patience 5), a reference.
"""

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import report  # noqa: E402
import suite_data  # noqa: E402

_GIS_LINE = re.compile(r"logp:\s*(\S+)\s+(\S+)\s+time:\s*(\S+)\s+iteration:\s*(\d+)")


class _Lines(io.TextIOBase):
    """A stdout that parses GIS's per-iteration lines as they are printed."""

    def __init__(self, start):
        self.start, self.curve, self._pending = start, [], ""

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            match = _GIS_LINE.search(line)
            if match:
                self.curve.append((time.perf_counter() - self.start, -float(match.group(2))))
        return len(text)


def run_gis(split, iterations):
    import peers_sinf

    gis, torch = peers_sinf._import_gis()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    start = time.perf_counter()
    lines = _Lines(start)
    with contextlib.redirect_stdout(lines):
        model = gis(torch.tensor(split.train), torch.tensor(split.val), iteration=iterations,
                    nocuda=True, verbose=True)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        test = -float(model.evaluate_density(torch.tensor(split.test)).numpy().mean())
    return dict(model="GIS (authors)", curve=lines.curve, seconds=seconds, test_nll=test,
                depth=len(model.layer))


# The greedy defaults before issue 26 (one shrinkage of 0.4 for every block, at most 100
# blocks, patience 5), as a reference column "RBIG (earlier defaults)".
EARLIER_DEFAULTS = (dict(shrinkage=0.4, first_shrinkage=0.4), dict(max_blocks=100, patience=5))


def run_rbig(split, earlier=False, options=None):
    import tfflows as tff

    options, greedy = EARLIER_DEFAULTS if earlier else (dict(options or {}), {})
    start = time.perf_counter()
    model = tff.RBIG(split.features, **options).fit_greedy(split.train, validation_data=split.val, verbose=0,
                                                           **greedy)
    seconds = time.perf_counter() - start
    history = model.greedy_history
    curve = list(zip(history["seconds"], history["val_nll"]))
    test = -float(np.mean(model.log_prob(split.test)))
    label = f"RBIG {json.dumps(options)}" if options and not earlier else "RBIG"
    return dict(model="RBIG (earlier defaults)" if earlier else label, curve=curve, seconds=seconds, test_nll=test, depth=model.num_blocks)


def best_so_far(curve, seconds):
    """The best validation NLL reached by `seconds` (nan before the first point)."""
    values = [v for t, v in curve if t <= seconds]
    return min(values) if values else math.nan


def time_to_reach(curve, target):
    """The first wall second at which the curve is at or below target (nan: never)."""
    return next((t for t, v in curve if v <= target), math.nan)


def compare(rbig, gis):
    gis_final = min(v for _, v in gis["curve"])
    rbig_final = min(v for _, v in rbig["curve"])
    return dict(
        gis_val_at_rbig_end=best_so_far(gis["curve"], rbig["seconds"]),
        rbig_val=rbig_final,
        gis_val=gis_final,
        rbig_seconds_to_gis_final=time_to_reach(rbig["curve"], gis_final),
        gis_seconds=gis["seconds"],
    )


def page(records, args):
    f = report.fmt
    lines = [f"## Gaussianization on large sets: RBIG vs the authors' GIS ({time.strftime('%Y-%m-%d %H:%M')})",
             "", f"Command: `{report.command_line('bench_gis_large.py')}`", "", *report.machine_header(), "",
             "| set | n train | d | model | val NLL | test NLL | fit s | blocks / iterations |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in records:
        for m in r["runs"]:
            lines.append(f"| {r['set']} | {r['n']} | {r['d']} | {m['model']} | {f(min(v for _, v in m['curve']), 3)} "
                         f"| {f(m['test_nll'], 3)} | {f(m['seconds'], 1)} | {m['depth']} |")
    compared = [r for r in records if "compare" in r]
    if compared:
        lines += ["", "At the same wall time (validation NLL; lower is better):", "",
                  "| set | RBIG final | GIS when RBIG stopped | GIS final | GIS s | RBIG s to reach GIS final |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in compared:
            c = r["compare"]
            lines.append(f"| {r['set']} | {f(c['rbig_val'], 3)} | {f(c['gis_val_at_rbig_end'], 3)} "
                         f"| {f(c['gis_val'], 3)} | {f(c['gis_seconds'], 0)} | {f(c['rbig_seconds_to_gis_final'], 1)} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="large_real")
    p.add_argument("--models", default="rbig,gis")
    p.add_argument("--gis-iterations", type=int, default=400)
    p.add_argument("--rbig-options", default=None,
                   help='an extra RBIG column with these constructor options, e.g. \'{"shrinkage": 0.9}\'')
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    models = args.models.split(",")
    records = []
    for name in suite_data.parse_sets(args.sets):
        split = suite_data.load(name, 0)
        record = dict(set=name, n=len(split.train), d=split.features, runs=[])
        if "rbig" in models:
            record["runs"].append(run_rbig(split))
            print(name, "RBIG", round(record["runs"][-1]["test_nll"], 3), flush=True)
        if args.rbig_options:
            record["runs"].append(run_rbig(split, options=json.loads(args.rbig_options)))
            print(name, record["runs"][-1]["model"], round(record["runs"][-1]["test_nll"], 3), flush=True)
        if "rbig_earlier" in models:
            record["runs"].append(run_rbig(split, earlier=True))
            print(name, "RBIG (earlier defaults)", round(record["runs"][-1]["test_nll"], 3), flush=True)
        if "gis" in models:
            record["runs"].append(run_gis(split, args.gis_iterations))
            print(name, "GIS", round(record["runs"][-1]["test_nll"], 3), flush=True)
        rbig = [r for r in record["runs"] if r["model"] == "RBIG"]
        gis = [r for r in record["runs"] if r["model"] == "GIS (authors)"]
        if rbig and gis:
            record["compare"] = compare(rbig[0], gis[0])
        records.append(record)
    out = args.out or report.default_out("gis_large")
    report.write_with_records(out, page(records, args), records)


if __name__ == "__main__":
    main()
