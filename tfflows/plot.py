"""Pictures of flows (matplotlib, headless). Each function returns a Figure and, given
`path`, also writes a PNG."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def grid_log_prob(flow, bounds, resolution=200):
    """log p on a regular grid over bounds = ((x0, x1), (y0, y1)).

    Returns (xs, ys, log_p) with log_p shaped (resolution, resolution).
    """
    (x0, x1), (y0, y1) = bounds
    xs = np.linspace(x0, x1, resolution)
    ys = np.linspace(y0, y1, resolution)
    xx, yy = np.meshgrid(xs, ys)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    log_p = np.concatenate([
        ops.convert_to_numpy(flow.log_prob(chunk)) for chunk in np.array_split(points, 8)
    ])
    return xs, ys, log_p.reshape(resolution, resolution)


def _bounds(data, margin=0.15):
    lo, hi = data.min(axis=0), data.max(axis=0)
    pad = (hi - lo) * margin
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def density_2d(flow, data, path=None, n_samples=2000, seed=0, title=None):
    """Three panels for a 2-D flow: training data, the model density, model samples."""
    data = np.asarray(data)
    bounds = _bounds(data)
    xs, ys, log_p = grid_log_prob(flow, bounds)
    samples = ops.convert_to_numpy(flow.sample(n_samples, seed=seed))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].scatter(data[:, 0], data[:, 1], s=2, alpha=0.5)
    axes[0].set_title("data")
    axes[1].pcolormesh(xs, ys, np.exp(log_p), shading="auto", cmap="magma")
    axes[1].set_title("model density")
    axes[2].scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, color="tab:orange")
    axes[2].set_title("model samples")
    for ax in axes:
        ax.set_xlim(bounds[0])
        ax.set_ylim(bounds[1])
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def training_curves(history, path=None):
    """Loss (negative log-likelihood) per epoch, train and validation."""
    logs = getattr(history, "history", history)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("loss", "val_loss"):
        if key in logs:
            ax.plot(np.arange(1, len(logs[key]) + 1), logs[key], label=key.replace("loss", "NLL").strip("_"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood (nats)")
    ax.legend()
    return _save(fig, path)
