"""Pictures of image flows (matplotlib, Agg): sample grids and latent interpolation strips."""

import numpy as np


def _figure(rows, cols, size=0.9):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return plt, fig, axes


def _show(ax, image, vmax):
    image = np.asarray(image)
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image / vmax, cmap="gray_r", vmin=0, vmax=vmax)


def save_image_grid(images, path, cols=10, title=None, vmax=None):
    """Save images (N, H, W, C) as a grid PNG; pixel values in [0, vmax]."""
    images = np.asarray(images, dtype="float64")
    vmax = float(images.max()) if vmax is None else float(vmax)
    rows = int(np.ceil(len(images) / cols))
    plt, fig, axes = _figure(rows, cols)
    for ax, image in zip(axes.ravel(), images):
        _show(ax, image, vmax)
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def latent_interpolation(flow, x_a, x_b, steps=10, spherical=False):
    """Decode points on the path between encode(x_a) and encode(x_b); returns
    (len(x_a), steps, H, W, C). Linear by default; `spherical` interpolates on the
    great circle, which keeps the latent norm typical of N(0, I)."""
    z_a = np.asarray(flow.encode(x_a), dtype="float64")
    z_b = np.asarray(flow.encode(x_b), dtype="float64")
    t = np.linspace(0.0, 1.0, steps).reshape((1, steps) + (1,) * (z_a.ndim - 1))
    za, zb = z_a[:, None], z_b[:, None]
    if spherical:
        flat_a, flat_b = z_a.reshape(len(z_a), -1), z_b.reshape(len(z_b), -1)
        cos = np.sum(flat_a * flat_b, 1) / (np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1))
        omega = np.arccos(np.clip(cos, -1, 1)).reshape((-1, 1) + (1,) * (z_a.ndim - 1))
        sin = np.maximum(np.sin(omega), 1e-8)
        path = np.sin((1 - t) * omega) / sin * za + np.sin(t * omega) / sin * zb
    else:
        path = (1 - t) * za + t * zb
    flat = path.reshape((-1,) + z_a.shape[1:]).astype(flow.compute_dtype)
    decoded = np.asarray(flow.decode(flat))
    return decoded.reshape(path.shape)


def save_interpolation_strip(strips, path, title=None, vmax=None):
    """Save interpolation rows (R, steps, H, W, C) as a PNG, one row per pair."""
    strips = np.asarray(strips, dtype="float64")
    vmax = float(strips.max()) if vmax is None else float(vmax)
    plt, fig, axes = _figure(strips.shape[0], strips.shape[1])
    for r in range(strips.shape[0]):
        for c in range(strips.shape[1]):
            _show(axes[r, c], strips[r, c], vmax)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
