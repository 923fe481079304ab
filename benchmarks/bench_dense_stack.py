"""One flat variable per conditioner (tfflows' `MADE` and `MLP`) against the usual two
variables per dense layer: the cost of a training step (loss, gradient and
`keras.optimizers.Adam` update in one `tf.function`, Keras's CPU default jit_compile=False)
of MAF, NSF and RealNVP at the sizes of `benchmarks/run.py`, batch 64, one thread.

Both sides are the same explicit layer stack (stacks.py); only the conditioner passed to
every layer through `conditioner=` differs: tfflows' `MADE`/`MLP`, or `SeparateMADE`/
`SeparateMLP` below (the same masked/dense network with one kernel and one bias variable
per layer, the layout before the change). Steps of both are interleaved in blocks and the
median CPU ms is reported.

    python benchmarks/bench_dense_stack.py
    python benchmarks/bench_dense_stack.py --quick     # MAF and RealNVP at d=30, 2 rounds
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import protocol  # noqa: E402
import report  # noqa: E402
import stacks  # noqa: E402
import timing  # noqa: E402
from tfflows.nets.made import input_order, made_masks  # noqa: E402

CASES = [("MAF", 64), ("MAF", 30), ("NSF", 64), ("NSF", 30), ("RealNVP", 64), ("RealNVP", 30)]


class _Separate(keras.layers.Layer):
    """A ReLU dense stack with one kernel and one bias variable per layer (the last zero)."""

    def _add_stack(self, shapes):
        self.kernels, self.biases = [], []
        for k, (fan_in, fan_out) in enumerate(shapes):
            last, limit = k == len(shapes) - 1, 1.0 / np.sqrt(fan_in)
            init = "zeros" if last else keras.initializers.RandomUniform(-limit, limit)
            self.kernels.append(self.add_weight(shape=(fan_in, fan_out), initializer=init, name=f"kernel_{k}"))
            self.biases.append(self.add_weight(shape=(fan_out,), initializer="zeros", name=f"bias_{k}"))

    def _apply(self, x, kernels):
        for k, (kernel, bias) in enumerate(zip(kernels, self.biases)):
            x = ops.matmul(x, kernel) + bias
            if k < len(kernels) - 1:
                x = ops.relu(x)
        return x


class SeparateMADE(_Separate):
    """MADE (order "given") with separate variables: x (batch, D) -> (batch, P, D)."""

    def __init__(self, params_per_feature, hidden_units, **kwargs):
        super().__init__(**kwargs)
        self.params_per_feature, self.hidden_units = params_per_feature, tuple(hidden_units)

    def build(self, input_shape):
        self.features = int(input_shape[-1])
        self.permutation = input_order("given", self.features)
        degrees = np.empty(self.features, dtype="int64")
        degrees[self.permutation] = np.arange(1, self.features + 1)
        self.masks = made_masks(degrees, self.hidden_units, self.params_per_feature)
        self._add_stack([m.shape for m in self.masks])

    def call(self, x):
        h = self._apply(x, [k * ops.cast(m, k.dtype) for k, m in zip(self.kernels, self.masks)])
        return ops.reshape(h, (-1, self.params_per_feature, self.features))


class SeparateMLP(_Separate):
    """MLP with separate variables: x (batch, n) -> (batch, out_features)."""

    def __init__(self, out_features, hidden_units, **kwargs):
        super().__init__(**kwargs)
        self.out_features, self.hidden_units = out_features, tuple(hidden_units)

    def build(self, input_shape):
        widths = [int(input_shape[-1]), *self.hidden_units, self.out_features]
        self._add_stack(list(zip(widths[:-1], widths[1:])))

    def call(self, x):
        return self._apply(x, self.kernels)


def build(kind, features, layout, config):
    if layout == "flat":
        return stacks.build(kind, features, config)
    return stacks.build(kind, features, config, made=lambda p, h: SeparateMADE(p, h),
                        mlp=lambda out, h: SeparateMLP(out, h))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--block", type=float, default=0.25, help="CPU seconds per timing block")
    p.add_argument("--quick", action="store_true", help="MAF and RealNVP at d=30, 2 rounds of 0.1 s (smoke run)")
    p.add_argument("--out", help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    cases = [c for c in CASES if c[1] == 30 and c[0] != "NSF"] if args.quick else CASES
    if args.quick:
        args.rounds, args.block = 2, 0.1
    protocol.limit_threads(1)
    config = protocol.Config(num_layers=5, hidden_units=(128, 128))
    bench, counts = timing.Bench(args.block), {}
    for kind, features in cases:
        x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(64, features)).astype("float32"))
        for layout in ("separate", "flat"):
            model = build(kind, features, layout, config)
            model(x)
            counts[(kind, features, layout)] = len(model.trainable_variables)
            bench.add((kind, features, layout), lambda f=timing.fused_step(model): f(x))
    bench.run(args.rounds)
    x = np.random.default_rng(0).normal(size=(16, 30)).astype("float32")
    same = {kind: stacks.max_difference_to_preset(kind, 30, config, x) for kind in dict.fromkeys(k for k, _ in cases)}
    lines = ["| model | d | variables (separate) | variables (flat) | CPU ms/step separate | CPU ms/step flat "
             "| speed-up |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, features in cases:
        sep, flat = (bench.cpu((kind, features, layout)) * 1e3 for layout in ("separate", "flat"))
        lines.append(f"| {kind} | {features} | {counts[(kind, features, 'separate')]} "
                     f"| {counts[(kind, features, 'flat')]} | {sep:.2f} | {flat:.2f} | {sep / flat:.2f}× |")
    command = report.command_line("bench_dense_stack.py", argv)
    text = "\n".join(["# One flat variable per conditioner", "", f"Command: `{command}`",
                      "", *report.machine_header(), f"- Batch 64, 5 layers, hidden (128, 128), one thread; "
                      f"{args.rounds} interleaved rounds of ~{args.block} s, median CPU ms per fused step.",
                      "- The flat stacks are the presets layer for layer: max |Δ log p| to the preset at the same "
                      "seed and random weights: " + ", ".join(f"{k} {v:.1e}" for k, v in same.items()) + ".", "",
                      *lines])
    print(text)
    if args.out:
        report.write(args.out, text)


if __name__ == "__main__":
    main()
