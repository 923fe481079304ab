"""Pictures of image flows: sample grids and latent interpolation strips. Each function
returns a matplotlib `Figure` (object-oriented API, no global backend change) and, given
`path`, also writes a PNG."""

import numpy as np

from tfflows.plot.density import figure, save


def _axes_grid(rows, cols, size=0.9):
    fig, axes = figure(rows, cols, figsize=(cols * size, rows * size + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _show(ax, image, vmax):
    image = np.asarray(image)
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image / vmax, cmap="gray_r", vmin=0,
              vmax=vmax)


def image_grid(images, path=None, cols=10, title=None, vmax=None):
    """Images (N, H, W, C), C = 1 or 3, as a grid; pixel values in [0, vmax] (default:
    the largest value)."""
    images = np.asarray(images, dtype="float64")
    vmax = float(images.max()) if vmax is None else float(vmax)
    fig, axes = _axes_grid(int(np.ceil(len(images) / cols)), cols)
    for ax, image in zip(axes.ravel(), images):
        _show(ax, image, vmax)
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path, dpi=100)


def latent_interpolation(flow, x_a, x_b, steps=10, spherical=False, context=None):
    """Decode points on the path between encode(x_a) and encode(x_b); returns
    (len(x_a), steps, H, W, C). Linear by default; `spherical` interpolates on the
    great circle, which keeps the latent norm typical of N(0, I). A conditional flow
    takes `context`, one row per pair (both ends and the whole path are encoded and
    decoded under it)."""
    z_a = np.asarray(flow.encode(x_a, context), dtype="float64")
    z_b = np.asarray(flow.encode(x_b, context), dtype="float64")
    t = np.linspace(0.0, 1.0, steps).reshape((1, steps) + (1,) * (z_a.ndim - 1))
    za, zb = z_a[:, None], z_b[:, None]
    if spherical:
        flat_a, flat_b = z_a.reshape(len(z_a), -1), z_b.reshape(len(z_b), -1)
        norms = np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1)
        cos = np.sum(flat_a * flat_b, 1) / norms
        omega = np.arccos(np.clip(cos, -1, 1)).reshape((-1, 1) + (1,) * (z_a.ndim - 1))
        sin = np.maximum(np.sin(omega), 1e-8)
        path = np.sin((1 - t) * omega) / sin * za + np.sin(t * omega) / sin * zb
    else:
        path = (1 - t) * za + t * zb
    flat = path.reshape((-1,) + z_a.shape[1:]).astype(flow.compute_dtype)
    along = None if context is None else np.repeat(np.asarray(context), steps, axis=0)
    decoded = np.asarray(flow.decode(flat, along))
    return decoded.reshape(path.shape)


def interpolation_strip(strips, path=None, title=None, vmax=None):
    """Interpolation rows (R, steps, H, W, C), one row per pair (from `latent_interpolation`)."""
    strips = np.asarray(strips, dtype="float64")
    vmax = float(strips.max()) if vmax is None else float(vmax)
    fig, axes = _axes_grid(strips.shape[0], strips.shape[1])
    for r in range(strips.shape[0]):
        for c in range(strips.shape[1]):
            _show(axes[r, c], strips[r, c], vmax)
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path, dpi=100)
