"""Pictures of 2-D flows and of training: data / density / samples panels, the prior
warped layer by layer, and loss curves. Each function returns a matplotlib `Figure` and,
given `path`, also writes a PNG. Figures are made with matplotlib's object-oriented API
(`matplotlib.figure.Figure`), so importing or calling these never changes the global
matplotlib backend or pyplot's figure list."""

import numpy as np
from keras import ops
from matplotlib.figure import Figure


def figure(rows=1, cols=1, figsize=None, squeeze=True):
    """A headless Figure and its axes (`Figure.subplots`)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def save(fig, path, dpi=110):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
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
    # few large calls: a deep flow run eagerly costs a fixed time per layer call
    chunks = np.array_split(points, -(-len(points) // 65536))
    log_p = np.concatenate([ops.convert_to_numpy(flow.log_prob(chunk)) for chunk in chunks])
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
    # panels as tall as the data's aspect needs (equal axes), so wide data leave no band
    aspect = (bounds[1][1] - bounds[1][0]) / (bounds[0][1] - bounds[0][0])
    fig, axes = figure(1, 3, figsize=(12, min(max(4.0 * aspect, 2.0), 6.0) + 0.8))
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
    fig.tight_layout()
    return save(fig, path)


def training_curves(history, path=None, unit="epoch"):
    """Loss (negative log-likelihood) per epoch (or per `unit`, e.g. "block" for a greedy
    fit), train and validation."""
    logs = getattr(history, "history", history)
    fig, ax = figure(figsize=(5, 3.5))
    for key in ("loss", "val_loss"):
        if logs.get(key):
            ax.plot(np.arange(1, len(logs[key]) + 1), logs[key],
                    label=key.replace("loss", "NLL").strip("_"))
    ax.set_xlabel(unit)
    ax.set_ylabel("negative log-likelihood (nats)")
    ax.legend()
    return save(fig, path)


def _generative_layers(flow):
    """The flow's layers in the generative (latent -> data) order, as (layer, name) pairs."""
    layers = getattr(flow.transform, "layers", [flow.transform])
    return list(reversed(layers))


def layer_warps(flow, path=None, prior_range=3.0, resolution=120, grid_lines=11, max_panels=9):
    """The prior pushed through the generative direction of a 2-D flow, layer by layer.

    Panel k shows the exact density of h_k = g_k(...g_1(z)) (g are the layer inverses, in
    generative order): log p(h_k) = log p_Z(z) - sum of the inverse log-dets, computed by
    mapping grid points back to z with the forward maps. Over it, a square grid of
    latent lines is drawn as warped by the same k layers. Panel 0 is the prior itself.
    """
    layers = _generative_layers(flow)
    panels = min(max_panels, len(layers) + 1)
    steps = sorted(set(np.linspace(0, len(layers), panels).round().astype(int)))
    fig, axes = figure(1, len(steps), figsize=(3.2 * len(steps), 3.3), squeeze=False)
    lines = np.linspace(-prior_range, prior_range, grid_lines)
    dense = np.linspace(-prior_range, prior_range, 100)
    latent_lines = [np.stack([np.full_like(dense, c), dense], 1) for c in lines]
    latent_lines += [np.stack([dense, np.full_like(dense, c)], 1) for c in lines]
    warped = _push_lines(np.concatenate(latent_lines).astype("float32"), layers, steps)
    bounds = {}
    for k in steps:
        pts = warped[k][np.all(np.isfinite(warped[k]), axis=1)]
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        # a square window, so that the square panels show shapes undistorted
        half = 0.5 * 1.3 * float(np.max(hi - lo)) + 1e-3
        mid = 0.5 * (lo + hi)
        bounds[k] = ((mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half))
    grids = _partial_log_probs(flow, layers, steps, bounds, resolution)
    for ax, k in zip(axes[0], steps):
        xs, ys, log_p = grids[k]
        density = np.exp(log_p)
        ax.pcolormesh(xs, ys, density, shading="auto", cmap="magma",
                      vmax=np.percentile(density, 99.5))
        for line in np.split(warped[k], len(latent_lines)):
            ax.plot(line[:, 0], line[:, 1], color="white", lw=0.4, alpha=0.6)
        ax.set_xlim(bounds[k][0])
        ax.set_ylim(bounds[k][1])
        ax.set_title("prior" if k == 0 else f"after {k} layer{'s' if k > 1 else ''}")
        ax.set_xticks([])
        ax.set_yticks([])
    return save(fig, path)


def _push_lines(z, generative_layers, steps):
    """{k: z pushed through the first k generative layers} for k in steps, one layer call
    per layer (every line in one batch: an eager layer call has a fixed cost)."""
    pushed = {0: z}
    for k, layer in enumerate(generative_layers[:max(steps)], start=1):
        z = ops.convert_to_numpy(layer.inverse(z))
        pushed[k] = z
    return {k: pushed[k] for k in steps}


def _partial_log_probs(flow, generative_layers, steps, bounds, resolution):
    """{k: (xs, ys, log p(h_k) on a grid over bounds[k])}: each grid is mapped back to the
    latent with the forward maps of generative layers k-1, ..., 0; the grids of all
    panels still in flight go through each layer together (one call per layer)."""
    h, total, axes = {}, {}, {}
    for k in steps:
        (x0, x1), (y0, y1) = bounds[k]
        xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
        xx, yy = np.meshgrid(xs, ys)
        h[k] = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
        total[k], axes[k] = np.zeros(len(h[k])), (xs, ys)
    for j in reversed(range(max(steps))):
        active = [k for k in steps if k > j]
        out, log_det = generative_layers[j].forward_and_log_det(
            np.concatenate([h[k] for k in active]))
        out, log_det = ops.convert_to_numpy(out), ops.convert_to_numpy(log_det)
        for k, part, det in zip(active, np.split(out, len(active)), np.split(log_det, len(active))):
            h[k], total[k] = part, total[k] + det
    latent = np.concatenate([h[k] for k in steps])
    base = ops.convert_to_numpy(flow.base.log_prob(ops.convert_to_tensor(latent,
                                                                         flow.compute_dtype)))
    return {k: (*axes[k], (part + total[k]).reshape(resolution, resolution))
            for k, part in zip(steps, np.split(base, len(steps)))}
