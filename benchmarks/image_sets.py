"""Image sets of the image benchmark (issue 29) at the sizes users bring, cut reproducibly from
the photographs that ship inside scikit-image (`skimage.data`, no download) and scikit-learn
(`sklearn.datasets.load_sample_images`):

- photos28: 28x28 grey crops (levels 0..255, the photographs converted with rgb2gray's
  weights);
- photos32c: 32x32x3 colour crops (levels 0..255).

Each photograph is used at three scales (1, 1/2 and 1/4 of its side, by block means rounded
to whole levels), so that a crop holds anything from texture to whole objects. Training,
validation and test crops come from disjoint regions of every scaled photograph: training
from the top 70% of its rows, validation from the bottom 30% left half, test from the bottom
30% right half. No pixel of a test crop was seen in training; a (photograph, scale) whose
regions are smaller than a crop is skipped. Crop positions are uniform within each region,
drawn with a fixed seed; each split takes the same share of its crops from every scaled
photograph, so that the large ones (the Hubble deep field) do not dominate.
"""

import numpy as np

import patches

SETS = {
    # name: (side, colour, photographs)
    "photos28": (28, False, ("camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "moon",
                             "hubble_deep_field", "immunohistochemistry", "china", "flower")),
    "photos32c": (32, True, ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                             "immunohistochemistry", "china", "flower")),
}
SPLIT_ROWS = {"train": 4000, "val": 1000, "test": 1000}
SCALES = (1, 2, 4)
_SEED = 29


def _photo(name):
    """A photograph as float64 levels 0..255, (H, W) grey or (H, W, 3) colour."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg").astype("float64")
    import skimage.data

    return getattr(skimage.data, name)().astype("float64")


def _as(image, colour):
    if colour:
        return image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    if image.ndim == 2:
        return image
    return image[..., :3] @ np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's weights


def _downscale(image, factor):
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, *image.shape[2:])
    return np.round(blocks.mean(axis=(1, 3)))


def _regions(image, side):
    """The image's (train, val, test) regions, or None where one is smaller than a crop."""
    h, w = image.shape[:2]
    cut = int(0.7 * h)
    parts = (image[:cut], image[cut:, : w // 2], image[cut:, w // 2 :])
    if any(p.shape[0] < side or p.shape[1] < side for p in parts):
        return None
    return parts


def _crops(images, side, rows, rng):
    crops = patches._patches(images, side, rows, rng, equal_share=True)
    return crops[rng.permutation(len(crops))]


def image_set(name):
    """{"train", "val", "test"} -> uint8 images (N, side, side, C) of the named set."""
    if name not in SETS:
        raise ValueError(f"Unknown image set {name!r}; choose from {sorted(SETS)}.")
    side, colour, photos = SETS[name]
    regions = [r for p in photos for f in SCALES
               if (r := _regions(_downscale(_as(_photo(p), colour), f), side)) is not None]
    rng = np.random.default_rng(_SEED)
    out = {}
    for k, split in enumerate(("train", "val", "test")):
        crops = _crops([r[k] for r in regions], side, SPLIT_ROWS[split], rng)
        out[split] = np.clip(crops, 0, 255).astype("uint8").reshape(len(crops), side, side, -1)
    return out


def per_pixel_floor(train, val, test, levels=256, alphas=(0.01, 0.1, 0.5, 1.0, 2.0)):
    """Bits/dim of an independent categorical per pixel and channel (a histogram of each
    pixel's levels over the training images, add-alpha smoothed, alpha chosen on validation),
    on the test images: the floor a flow must beat. Returns (test bits/dim, alpha)."""
    flat = [x.reshape(len(x), -1).astype(np.int64) for x in (train, val, test)]
    d = flat[0].shape[1]
    counts = np.zeros((d, levels))
    np.add.at(counts, (np.tile(np.arange(d), len(flat[0])), flat[0].ravel()), 1.0)

    def bits(x, alpha):
        probs = (counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * levels)
        return float(-np.mean(np.log2(probs[np.arange(d)[None, :], x])))

    alpha = min(alphas, key=lambda a: bits(flat[1], a))
    return bits(flat[2], alpha), alpha
