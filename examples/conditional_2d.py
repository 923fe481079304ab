"""A conditional density: 2-D points whose distribution depends on a class label.

Class 0 is the two-moons set, class 1 two concentric circles, class 2 a ring of eight
Gaussians. One conditional neural spline flow (`NSF(context_features=3)`) learns all
three, with the one-hot label as its context:

    flow.fit(x={"x": points, "context": one_hot})
    flow.log_prob(points, context=one_hot)      # p(x | label)
    flow.sample(n, context=one_hot_row)         # x ~ p(x | label)

Writes saved_models/conditional_2d.png (the density and samples per label).

    python examples/conditional_2d.py           # about a minute on 2 CPU cores
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfflows as tff  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
CLASSES = ("moons", "circles", "eight_gaussians")


def make_data(n_per_class=3000, seed=0):
    points, labels = [], []
    for label, name in enumerate(CLASSES):
        pts = tff.datasets.toy_2d(name, n=n_per_class, seed=seed + label)
        points.append(pts / pts.std())  # comparable scales
        labels.append(np.full(n_per_class, label))
    points, labels = np.concatenate(points).astype("float32"), np.concatenate(labels)
    return points, np.eye(len(CLASSES), dtype="float32")[labels], labels


def run(epochs=40, seed=0, verbose=1):
    keras.utils.set_random_seed(seed)
    points, context, labels = make_data(seed=seed)
    flow = tff.NSF(2, num_layers=4, hidden_units=(64, 64), bins=8, bound=4.0, context_features=len(CLASSES))
    flow.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, epochs * 36)))
    start = time.perf_counter()
    flow.fit(x={"x": points, "context": context}, batch_size=256, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start

    log_prob = keras.ops.convert_to_numpy(flow.log_prob(points, context=context))
    # The label matters: the same points under the wrong label are much less likely.
    wrong = np.roll(context, 1, axis=1)
    log_prob_wrong = keras.ops.convert_to_numpy(flow.log_prob(points, context=wrong))
    per_class = {name: -float(log_prob[labels == k].mean()) for k, name in enumerate(CLASSES)}
    print(f"trained in {seconds:.0f} s; NLL per class (nats): "
          + ", ".join(f"{k} {v:.3f}" for k, v in per_class.items())
          + f"; mean NLL with the right label {-log_prob.mean():.3f}, with a wrong label {-log_prob_wrong.mean():.3f}")
    os.makedirs(OUT, exist_ok=True)
    path = plot(flow, os.path.join(OUT, "conditional_2d.png"))
    print(f"Wrote {path}")
    return flow, per_class


def plot(flow, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-3.5, 3.5, 180)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    fig, axes = plt.subplots(2, len(CLASSES), figsize=(4.2 * len(CLASSES), 8.2))
    for k, name in enumerate(CLASSES):
        one_hot = np.eye(len(CLASSES), dtype="float32")[[k]]
        density = np.exp(keras.ops.convert_to_numpy(
            flow.log_prob(points, context=np.repeat(one_hot, len(points), axis=0)))).reshape(xx.shape)
        axes[0, k].pcolormesh(xx, yy, density, shading="auto", cmap="viridis")
        axes[0, k].set_title(f"p(x | label={k}: {name})")
        samples = keras.ops.convert_to_numpy(flow.sample(1500, seed=k, context=one_hot))
        axes[1, k].scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
        axes[1, k].set_xlim(-3.5, 3.5)
        axes[1, k].set_ylim(-3.5, 3.5)
        axes[1, k].set_title(f"samples given label={k}")
        for ax in axes[:, k]:
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    run(epochs=10 if "--quick" in sys.argv else 40, verbose=0 if "--quiet" in sys.argv else 2)
