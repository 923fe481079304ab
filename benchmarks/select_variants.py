"""Choose the conditioners' initialization on VALIDATION NLL.

Each variant is a conditioner network handed to every layer of the preset's stack
(stacks.py, the preset layer for layer) through `conditioner=`: tfflows' own `MADE` /
`MLP`, or the same network whose flat `parameters` variable starts from another
initialization (`Reinitialized` below). The script trains the stack under the protocol
of `benchmarks/run.py` once per variant and seed (each seed: its own split and
initialization) and reports the validation NLL of the kept weights (the selection
criterion) next to the test NLL (reported, never used to choose) and steps/s.

    python benchmarks/select_variants.py --datasets breast_cancer,digits --seeds 0,1,2,3,4
    python benchmarks/select_variants.py --preset MAF --variants shipped,glorot --seeds 0,1,2,3,4
    python benchmarks/select_variants.py --quick     # 2 variants, 1 seed, breast_cancer, 3 epochs

Writes benchmarks/results/variants_<preset>_<date>.md (or --out).
"""

import argparse
import datetime
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import keras_flows  # noqa: E402
import protocol  # noqa: E402
import report  # noqa: E402
import stacks  # noqa: E402

# name -> (description, kernels, biases, zero last layer); "shipped" is what tfflows ships
VARIANTS = {
    "shipped": ("shipped: uniform ±1/sqrt(fan_in) kernels and biases, zero last layer", None, None, True),
    "glorot": ("Glorot kernels, zero biases (Keras defaults; shipped before)", "glorot", "zero", True),
    "fan_in-zero-bias": ("1/sqrt(fan_in) kernels, zero biases", "fan_in", "zero", True),
    "glorot-fan_in-bias": ("Glorot kernels, 1/sqrt(fan_in) biases", "glorot", "fan_in", True),
    "random-last": ("1/sqrt(fan_in) init, random last layer too (as zuko starts)", "fan_in", "fan_in", False),
}


def initial_values(shapes, kernels, biases, zero_last):
    """[kernel_0, bias_0, ...] flattened (the layout of tfflows.nets.dense_stack), drawn
    from numpy's global generator (`keras.utils.set_random_seed` seeds it)."""
    parts = []
    for k, (fan_in, fan_out) in enumerate(shapes):
        fan_in_limit = 1.0 / math.sqrt(fan_in)
        kernel_limit = fan_in_limit if kernels == "fan_in" else math.sqrt(6.0 / (fan_in + fan_out))
        bias_limit = fan_in_limit if biases == "fan_in" else 0.0
        if zero_last and k == len(shapes) - 1:
            kernel_limit = bias_limit = 0.0
        parts += [np.random.uniform(-kernel_limit, kernel_limit, fan_in * fan_out),
                  np.random.uniform(-bias_limit, bias_limit, fan_out)]
    return np.concatenate(parts).astype("float32")


def reinitialized(cls, kernels, biases, zero_last):
    """A subclass of tfflows' `MADE` or `MLP` whose flat `parameters` start from
    `initial_values(...)` instead of the shipped initialization."""

    class Reinitialized(cls):
        def build(self, input_shape):
            super().build(input_shape)
            shapes = [tuple(int(s) for s in k.shape) for k in self.kernels_and_biases()[0]]
            self.parameters.assign(initial_values(shapes, kernels, biases, zero_last))

    return Reinitialized


def build_variant(preset, variant, config):
    import tfflows as tff

    _, kernels, biases, zero_last = VARIANTS[variant]
    if kernels is None:
        return lambda features: stacks.build(preset, features, config)
    made_cls = reinitialized(tff.MADE, kernels, biases, zero_last)
    mlp_cls = reinitialized(tff.MLP, kernels, biases, zero_last)
    return lambda features: stacks.build(preset, features, config,
                                         made=lambda p, h: made_cls(p, hidden_units=h, name="made"),
                                         mlp=lambda out, h: mlp_cls(out, hidden_units=h, name="conditioner"))


def one_fit(preset, variant, dataset, seed, config):
    train, val, test = protocol.load(dataset, seed)
    candidate = keras_flows.KerasFlowCandidate(variant, build_variant(preset, variant, config))
    log = candidate.fit(train, val, config)
    return dict(val=-float(np.mean(candidate.log_prob(val))), test=-float(np.mean(candidate.log_prob(test))),
                steps_per_s=log.steady_steps_per_s(), epochs=len(log.epoch_steps))


def render(preset, variants, rows, datasets, seeds, command, started, minutes):
    lines = [f"# Conditioner initialization, chosen on validation NLL ({started:%Y-%m-%d %H:%M})", "",
             f"Command: `{command}`", "", *report.machine_header(),
             f"- {preset} stack (the preset, layer for layer), protocol of `benchmarks/run.py`; seeds "
             f"{', '.join(map(str, seeds))} (each: its own split and initialization).",
             "- val NLL: validation NLL of the kept (early-stopped) weights: the selection criterion. "
             "test NLL is reported only. Mean ± standard error over seeds; Δ is the per-seed "
             "difference to the first variant.",
             f"- Total run time: {minutes:.1f} min", ""]
    for dataset in datasets:
        lines += [f"## {dataset}", "", f"| variant | val NLL | Δ val vs {variants[0]} | test NLL | steps/s "
                  "| per-seed val NLL |", "|---|---|---|---|---|---|"]
        base = [rows[(variants[0], dataset, s)]["val"] for s in seeds]
        for name in variants:
            vals = [rows[(name, dataset, s)]["val"] for s in seeds]
            mv, ev = protocol.mean_and_error(vals)
            md, ed = protocol.mean_and_error([v - b for v, b in zip(vals, base)])
            mt, et = protocol.mean_and_error([rows[(name, dataset, s)]["test"] for s in seeds])
            speed = statistics.fmean(rows[(name, dataset, s)]["steps_per_s"] for s in seeds)
            lines.append(f"| {VARIANTS[name][0]} | {mv:.2f} ± {ev:.2f} | {md:+.2f} ± {ed:.2f} | {mt:.2f} ± {et:.2f} "
                         f"| {speed:.0f} | {' / '.join(f'{v:.2f}' for v in vals)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="NSF", choices=stacks.KINDS, help="the stack trained (default NSF)")
    p.add_argument("--datasets", default="breast_cancer,digits")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated from {', '.join(VARIANTS)}")
    p.add_argument("--max-train-seconds", type=float, default=120.0)
    p.add_argument("--quick", action="store_true", help="shipped,glorot on breast_cancer, seed 0, 3 epochs")
    p.add_argument("--out")
    args = p.parse_args(argv)
    epochs = protocol.Config.epochs
    if args.quick:
        args.datasets, args.seeds, args.variants, epochs = "breast_cancer", "0", "shipped,glorot", 3
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    protocol.limit_threads(1)
    started, t0, rows = datetime.datetime.now(), time.perf_counter(), {}
    for dataset in datasets:
        for seed in seeds:
            config = protocol.Config(seed=seed, epochs=epochs, max_train_seconds=args.max_train_seconds)
            for name in variants:  # interleaved: load drifts hit all alike
                rows[(name, dataset, seed)] = r = one_fit(args.preset, name, dataset, seed, config)
                print(f"{dataset} seed {seed} {name}: val {r['val']:.3f} test {r['test']:.3f} "
                      f"{r['steps_per_s']:.0f} steps/s, {r['epochs']} epochs", flush=True)
    text = render(args.preset, variants, rows, datasets, seeds, report.command_line("select_variants.py", argv),
                  started, (time.perf_counter() - t0) / 60)
    print(text)
    report.write(args.out or report.default_out(f"variants_{args.preset}", args.quick), text)


if __name__ == "__main__":
    main()
