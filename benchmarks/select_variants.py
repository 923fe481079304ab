"""Choose spline parameter ranges and conditioner initialization on VALIDATION NLL.

The spline layers soft-clamp their raw bin widths and heights to +-RAW_PARAMETER_CLAMP and
map the raw interior derivatives through `tfflows.splines.knot_derivatives`; the MADE and
MLP conditioners start from `tfflows._dense_stack.initial_values`. Each variant patches
one of these. The script trains a preset (default NSF) under the protocol of
`benchmarks/run.py` once per variant and seed (each seed: its own split and
initialization) and reports the validation NLL of the kept weights (the selection
criterion) next to the test NLL (reported, never used to choose) and steps/s.

    python benchmarks/select_variants.py --datasets breast_cancer,digits --seeds 0,1,2,3,4
    python benchmarks/select_variants.py --preset MAF --variants 0,5 --seeds 0,1,2,3,4

Writes benchmarks/results/variants_<preset>_<date>.md (or --out).
"""

import argparse
import contextlib
import datetime
import math
import os
import shlex
import statistics
import sys
import time
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import protocol, run  # noqa: E402
from tfflows.splines import knot_derivatives as _softplus_derivatives  # noqa: E402  (the shipped map)

RESULTS = os.path.join(ROOT, "benchmarks", "results")


def _exp_derivatives(limit):
    """exp of a raw value soft-clamped to +-ln(limit): derivatives in (1/limit, limit)."""

    def derivatives(raw):
        from keras import ops

        from tfflows._math import soft_clamp

        return ops.exp(soft_clamp(raw, math.log(limit)))

    return derivatives


def spline_range(clamp, derivatives):
    from tfflows import splines

    return lambda: mock.patch.multiple(splines, RAW_PARAMETER_CLAMP=clamp, knot_derivatives=derivatives)


def uniform_init(zero_last, kernels="fan_in", biases="fan_in"):
    """Conditioner initialization. kernels="fan_in": uniform in +-1/sqrt(fan_in) (PyTorch's
    nn.Linear default, zuko's conditioners), "glorot": Glorot-uniform; biases="fan_in":
    uniform in +-1/sqrt(fan_in) (PyTorch), "zero": zero. The last kernel and bias are
    zero if `zero_last`. Draws from numpy's global RNG (`keras.utils.set_random_seed`
    seeds it)."""
    import numpy as np

    from tfflows import _dense_stack

    def initial_values(shapes, zero_last_ignored=True, dtype=None):
        parts = []
        for k, (fan_in, fan_out) in enumerate(shapes):
            last = zero_last and k == len(shapes) - 1
            torch_limit = 1.0 / math.sqrt(fan_in)
            kernel_limit = torch_limit if kernels == "fan_in" else math.sqrt(6.0 / (fan_in + fan_out))
            bias_limit = torch_limit if biases == "fan_in" else 0.0
            if last:
                kernel_limit = bias_limit = 0.0
            parts += [np.random.uniform(-kernel_limit, kernel_limit, fan_in * fan_out),
                      np.random.uniform(-bias_limit, bias_limit, fan_out)]
        return np.concatenate(parts).astype(dtype or "float32")

    return lambda: mock.patch.multiple(_dense_stack, initial_values=initial_values)


# name -> a factory of the context in which the preset is built and trained; the first is
# what tfflows ships (uniform +-1/sqrt(fan_in) kernels and biases since 2026-11-29)
VARIANTS = {
    "shipped (clamp 3.5, softplus derivatives, 1/sqrt(fan_in) init)": contextlib.nullcontext,
    "clamp 3.5, exp derivatives in (1e-3, 1e3)": spline_range(3.5, _exp_derivatives(1e3)),
    "clamp 5, softplus derivatives": spline_range(5.0, _softplus_derivatives),
    "clamp 5, exp derivatives in (1e-3, 1e3)": spline_range(5.0, _exp_derivatives(1e3)),
    "clamp 7, exp derivatives in (1e-3, 1e3)": spline_range(7.0, _exp_derivatives(1e3)),
    "Glorot kernels, zero biases (Keras defaults; shipped before)": uniform_init(True, "glorot", "zero"),
    "1/sqrt(fan_in) kernels, zero biases": uniform_init(True, "fan_in", "zero"),
    "Glorot kernels, 1/sqrt(fan_in) biases": uniform_init(True, "glorot", "fan_in"),
    "1/sqrt(fan_in) init, random last layer too": uniform_init(False),
}


def one_fit(preset, dataset, seed, config):
    import numpy as np
    import tfflows

    train, val, test = protocol.load(dataset, seed)
    candidate = protocol.KerasFlowCandidate(preset, run.preset_builder(getattr(tfflows, preset), config))
    log = candidate.fit(train, val, config)
    val_nll = -float(np.mean(candidate.log_prob(val)))
    test_nll = -float(np.mean(candidate.log_prob(test)))
    return dict(val=val_nll, test=test_nll, steps_per_s=log.steady_steps_per_s(), epochs=len(log.epoch_steps))


def report(preset, rows, datasets, seeds, command, started, minutes):
    lines = [f"# Spline parameter range, chosen on validation NLL ({started:%Y-%m-%d %H:%M})", "",
             f"Command: `{command}`", "", *protocol.machine_header(),
             f"- {preset} preset, protocol of `benchmarks/run.py`; seeds {', '.join(map(str, seeds))} "
             "(each: its own split and initialization).",
             "- val NLL: validation NLL of the kept (early-stopped) weights: the selection criterion. "
             "test NLL is reported only. Mean ± standard error over seeds; Δ is the per-seed "
             "difference to the first variant.",
             f"- Total run time: {minutes:.1f} min", ""]
    names = list(VARIANTS)
    for dataset in datasets:
        lines += [f"## {dataset}", "",
                  "| variant | val NLL | Δ val vs shipped | test NLL | steps/s | per-seed val NLL |",
                  "|---|---|---|---|---|---|"]
        base = [rows[(names[0], dataset, s)]["val"] for s in seeds]
        for name in names:
            vals = [rows[(name, dataset, s)]["val"] for s in seeds]
            tests = [rows[(name, dataset, s)]["test"] for s in seeds]
            speed = [rows[(name, dataset, s)]["steps_per_s"] for s in seeds]
            mv, ev = protocol.mean_and_error(vals)
            md, ed = protocol.mean_and_error([v - b for v, b in zip(vals, base)])
            mt, et = protocol.mean_and_error(tests)
            lines.append(f"| {name} | {mv:.2f} ± {ev:.2f} | {md:+.2f} ± {ed:.2f} | {mt:.2f} ± {et:.2f} | "
                         f"{statistics.fmean(speed):.0f} | {' / '.join(f'{v:.2f}' for v in vals)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="NSF", help="the tfflows preset trained (default NSF)")
    p.add_argument("--datasets", default="breast_cancer,digits")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--variants", help="comma-separated indices into VARIANTS (default: all)")
    p.add_argument("--max-train-seconds", type=float, default=120.0)
    p.add_argument("--out")
    args = p.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    global VARIANTS
    if args.variants:
        items = list(VARIANTS.items())
        VARIANTS = dict(items[int(i)] for i in args.variants.split(","))
    started = datetime.datetime.now()
    t0 = time.perf_counter()
    rows = {}
    for dataset in datasets:
        for seed in seeds:
            config = protocol.Config(seed=seed, max_train_seconds=args.max_train_seconds)
            for name, variant in VARIANTS.items():  # interleaved: load drifts hit all alike
                with variant():
                    rows[(name, dataset, seed)] = r = one_fit(args.preset, dataset, seed, config)
                print(f"{dataset} seed {seed} {name}: val {r['val']:.3f} test {r['test']:.3f} "
                      f"{r['steps_per_s']:.0f} steps/s, {r['epochs']} epochs", flush=True)
    command = "python benchmarks/select_variants.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = report(args.preset, rows, datasets, seeds, command.strip(), started, (time.perf_counter() - t0) / 60)
    out = args.out or os.path.join(RESULTS, f"variants_{args.preset}_{started:%Y-%m-%d}.md")
    with open(out, "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
