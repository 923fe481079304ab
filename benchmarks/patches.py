"""Large real sets of the density suite (issue 26): pixel patches of the photographs that
ship inside scikit-image (`skimage.data`, no download) and scikit-learn
(`sklearn.datasets.load_sample_images`), prepared by the BSDS300 recipe of the MAF paper
(Papamakarios et al. 2017): grey levels 0..255 plus uniform noise U(0, 1) (dequantization),
divided by 256, the patch mean removed, one pixel dropped (the mean removal leaves the
pixels summing to 0, a degenerate density).

- patches_photos: 8x8 grey patches (d = 63) of seven photographs: camera, astronaut,
  coffee, chelsea, rocket (scikit-image), china, flower (scikit-learn).
- patches_textures: 8x8 grey patches (d = 63) of the three texture photographs grass,
  gravel and brick (scikit-image): dense, repetitive structure unlike the photographs'.
- patches_colour: 4x4 colour patches (d = 45) of the five colour photographs astronaut,
  coffee, chelsea (scikit-image), china and flower (scikit-learn); each channel's patch
  mean removed and one pixel of each channel dropped.

ROWS patches per set, taken at positions drawn uniformly over the images (a fixed seed,
the same rows for every split seed; the split seed then shuffles and splits them 60/20/20).
Patches at nearby positions overlap, so training and test rows share pixels, as in any
random-patch set of a few images; every model sees the same split.
"""

import numpy as np

ROWS = 30_000
_POSITION_SEED = 26
_GREY = {
    "patches_photos": ("camera", "astronaut", "coffee", "chelsea", "rocket", "china", "flower"),
    "patches_textures": ("grass", "gravel", "brick"),
}
_COLOUR = ("astronaut", "coffee", "chelsea", "china", "flower")


def _image(name):
    """An image as float64 levels 0..255, (H, W) grey or (H, W, 3) colour."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg").astype("float64")
    import skimage.data

    return getattr(skimage.data, name)().astype("float64")


def _grey(image):
    if image.ndim == 2:
        return image
    return image[..., :3] @ np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's weights


def _patches(images, size, rows, rng, equal_share=False):
    """rows patches (rows, size, size[, c]) at uniform positions within each image, each
    image drawn in proportion to its number of positions (equal_share: with the same
    probability)."""
    if equal_share:
        which = rng.integers(0, len(images), size=rows)
    else:
        counts = np.array([(im.shape[0] - size + 1) * (im.shape[1] - size + 1) for im in images])
        which = rng.choice(len(images), size=rows, p=counts / counts.sum())
    out = []
    for k, image in enumerate(images):
        m = int(np.sum(which == k))
        top = rng.integers(0, image.shape[0] - size + 1, size=m)
        left = rng.integers(0, image.shape[1] - size + 1, size=m)
        out += [image[t : t + size, s : s + size] for t, s in zip(top, left)]
    return np.stack(out)


def patch_rows(name, seed=0):
    """The (ROWS, d) float64 rows of a patch set (the same for every seed: the split seed
    orders them; `seed` is accepted for the suite's interface)."""
    rng = np.random.default_rng(_POSITION_SEED)
    if name in _GREY:
        images = [np.round(_grey(_image(n))) for n in _GREY[name]]
        p = _patches(images, 8, ROWS, rng).reshape(ROWS, 64)
        p = (p + rng.uniform(size=p.shape)) / 256.0
        return (p - p.mean(axis=1, keepdims=True))[:, :-1]
    if name == "patches_colour":
        images = [_image(n)[..., :3] for n in _COLOUR]
        p = _patches(images, 4, ROWS, rng).reshape(ROWS, 16, 3)
        p = (p + rng.uniform(size=p.shape)) / 256.0
        p = p - p.mean(axis=1, keepdims=True)
        return p[:, :-1, :].reshape(ROWS, 45)
    raise ValueError(f"Unknown patch set {name!r}.")
