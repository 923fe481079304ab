"""Float32 round-trip error of the sequential (autoregressive) inverses at random weights.

For each layer and weight scale: 20 seeds; weights drawn N(0, scale^2) (tests/helpers.py
`randomize_weights`), x and a context ~ N(0, 1) (64 rows, 6 features), and the worst
relative error max |inverse(forward(x)) - x| / (1 + |x|). Writes
benchmarks/results/round_trip.md.

    python benchmarks/bench_round_trip.py          # about a minute on 2 cores
    python benchmarks/bench_round_trip.py --quick  # 2 seeds, scale 0.1
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests.helpers

import keras  # noqa: E402
import numpy as np  # noqa: E402

import report  # noqa: E402
import tfflows as tff  # noqa: E402
from tests.helpers import randomize_weights  # noqa: E402

FEATURES, CONTEXT, ROWS, SEEDS = 6, 3, 64, 20
LAYERS = {
    "MaskedAutoregressive": lambda: tff.MaskedAutoregressive(hidden_units=(64, 64)),
    "MaskedAutoregressive-context": lambda: tff.MaskedAutoregressive(hidden_units=(64, 64), context_features=CONTEXT),
    "SplineAutoregressive": lambda: tff.SplineAutoregressive(hidden_units=(64, 64)),
    "SplineAutoregressive-context": lambda: tff.SplineAutoregressive(hidden_units=(64, 64), context_features=CONTEXT),
    "SplineCoupling (one pass, for comparison)": lambda: tff.SplineCoupling(hidden_units=(64, 64)),
}
SCALES = (0.1, 0.3, 1.0)


def worst_error(make, scale, seeds=SEEDS):
    worst = 0.0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        layer = make()
        x = rng.normal(size=(ROWS, FEATURES)).astype("float32")
        context = rng.normal(size=(ROWS, CONTEXT)).astype("float32") if layer.context_features else None
        layer.forward(x, context)
        randomize_weights(layer, rng, scale=scale)
        back = keras.ops.convert_to_numpy(layer.inverse(layer.forward(x, context), context))
        worst = max(worst, float(np.max(np.abs(back - x) / (1.0 + np.abs(x)))))
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, scale 0.1 (smoke run)")
    p.add_argument("--out", help="default benchmarks/results/round_trip.md")
    args = p.parse_args(argv)
    seeds, scales = (2, SCALES[:1]) if args.quick else (SEEDS, SCALES)
    start = time.perf_counter()
    lines = ["# Float32 round trip of the autoregressive inverses at random weights", "",
             f"Command: `{report.command_line('bench_round_trip.py', argv)}`", "", *report.machine_header(),
             f"- {FEATURES} features, {ROWS} rows, context of {CONTEXT} where named, hidden (64, 64); weights "
             f"N(0, scale²); worst of {seeds} seeds of max |x_back - x| / (1 + |x|).", "",
             "| layer | " + " | ".join(f"scale {s}" for s in scales) + " |",
             "|---|" + "---:|" * len(scales)]
    for name, make in LAYERS.items():
        row = [f"{worst_error(make, s, seeds):.1e}" for s in scales]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    lines += ["", f"Total {time.perf_counter() - start:.0f} s."]
    report.write(args.out or report.default_out("round_trip", args.quick, dated=False), "\n".join(lines))


if __name__ == "__main__":
    main()
