"""One flat variable per conditioner (tfflows' `MADE` and `MLP`) against the usual two
variables per dense layer: the cost of a training step (loss, gradient and
`keras.optimizers.Adam` update in one `tf.function`, Keras's CPU default jit_compile=False)
of MAF, NSF and RealNVP at the sizes of `benchmarks/run.py`, batch 64, one thread.

The peer is the same conditioner with `build` and `kernels_and_biases` replaced by one
kernel and one bias variable per layer (the layout before this change); everything else
is shared. Steps of both are interleaved in blocks and the median CPU ms is reported.

    python benchmarks/bench_dense_stack.py
"""

import os
import statistics
import sys
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def separate_variable_classes():
    """MADE and MLP with one kernel and one bias variable per layer."""
    from tfflows.conditioners import MLP
    from tfflows.made import MADE

    def add_separate(layer, shapes):
        layer._kernels = [layer.add_weight(shape=tuple(s), initializer="glorot_uniform", name=f"kernel_{k}")
                          for k, s in enumerate(shapes)]
        layer._biases = [layer.add_weight(shape=(s[1],), initializer="zeros", name=f"bias_{k}")
                         for k, s in enumerate(shapes)]

    class SeparateMADE(MADE):
        def build(self, input_shape):
            super().build(input_shape)
            self._tracker.unlock()
            self._trainable_variables.remove(self.parameters)  # the flat variable is unused
            add_separate(self, self._shapes)

        def kernels_and_biases(self):
            from keras import ops

            return [k * ops.cast(m, k.dtype) for k, m in zip(self._kernels, self._masks)], list(self._biases)

    class SeparateMLP(MLP):
        def build(self, input_shape):
            super().build(input_shape)
            self._tracker.unlock()
            self._trainable_variables.remove(self.parameters)
            add_separate(self, self._shapes)

        def kernels_and_biases(self):
            return list(self._kernels), list(self._biases)

    return SeparateMADE, SeparateMLP


def build(kind, features, layout):
    import tfflows

    made_cls, mlp_cls = separate_variable_classes() if layout == "separate" else (tfflows.MADE, tfflows.MLP)
    with mock.patch("tfflows.autoregressive.MADE", made_cls), mock.patch("tfflows.coupling.MLP", mlp_cls):
        kwargs = {"bins": 8} if kind == "NSF" else {}
        model = getattr(tfflows, kind)(features, num_layers=5, hidden_units=(128, 128), **kwargs)
        model(np.zeros((2, features), "float32"))
    return model


def fused_step(model):
    import keras
    import tensorflow as tf
    from keras import ops

    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = -ops.mean(model(x, training=True))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return step, len(variables)


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    for kind, features in [("MAF", 64), ("MAF", 30), ("NSF", 64), ("NSF", 30), ("RealNVP", 64), ("RealNVP", 30)]:
        x = tf.constant(np.random.default_rng(0).normal(size=(64, features)), tf.float32)
        steps = {}
        for layout in ("separate", "flat"):
            step, count = fused_step(build(kind, features, layout))
            step(x)
            steps[layout] = (step, count)
        times = {layout: [] for layout in steps}
        for _ in range(7):
            for layout, (step, _) in steps.items():
                n, start = 0, time.process_time()
                while time.process_time() - start < 0.25:
                    step(x).numpy()
                    n += 1
                times[layout].append((time.process_time() - start) / n * 1e3)
        sep, flat = (statistics.median(times[k]) for k in ("separate", "flat"))
        rows.append(f"| {kind} | {features} | {steps['separate'][1]} | {steps['flat'][1]} | {sep:.2f} | {flat:.2f} | "
                    f"{sep / flat:.2f}× |")
        print(rows[-1], flush=True)
    print("\n| model | d | variables (separate) | variables (flat) | CPU ms/step separate | CPU ms/step flat | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
