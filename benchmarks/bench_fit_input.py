"""Steps/s of `Flow.fit` on in-memory arrays: tfflows' tf.data pipeline vs Keras's generic
array adapter (called through `keras.Model.fit` directly), same MAF, same data, same run.

    python benchmarks/bench_fit_input.py      # about 2 minutes on 2 cores
"""

import time

import keras
import numpy as np

import tfflows as tff


def steps_per_second(train, use_keras_adapter, epochs=6, batch_size=64):
    keras.utils.set_random_seed(0)
    flow = tff.MAF(train.shape[1], num_layers=5, hidden_units=(128, 128))
    fit = (lambda **kw: keras.Model.fit(flow, train, **kw)) if use_keras_adapter else \
        (lambda **kw: flow.fit(train, **kw))
    flow.fit(train, epochs=1, batch_size=batch_size, verbose=0)  # build, initialize, trace
    start = time.time()
    fit(epochs=epochs, batch_size=batch_size, verbose=0)
    return epochs * int(np.ceil(len(train) / batch_size)) / (time.time() - start)


def main():
    print("| data | Keras array adapter (steps/s) | tfflows tf.data pipeline (steps/s) | ratio |")
    print("|---|---:|---:|---:|")
    for name, loader in (("digits", tff.datasets.digits_tabular), ("breast_cancer", tff.datasets.breast_cancer)):
        train = loader()[0]
        keras_rate = steps_per_second(train, use_keras_adapter=True)
        ours = steps_per_second(train, use_keras_adapter=False)
        print(f"| {name} | {keras_rate:.1f} | {ours:.1f} | {ours / keras_rate:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
