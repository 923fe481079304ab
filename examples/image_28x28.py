"""A class-conditional Glow at 28x28: sample each class, and interpolate between two real
images in the latent space (a few minutes on 2 CPU cores).

    python examples/image_28x28.py                  # 5 minutes of training
    python examples/image_28x28.py --minutes 1 --out /tmp/glow28

Data: scikit-learn's 1,797 handwritten digits (shipped inside scikit-learn, 8x8, 17 levels)
upsampled to 28x28 with a cubic spline and requantized to 256 levels, with their labels
0-9. They are smooth strokes, easier than real 28x28 data; the benchmark at 28x28 uses
photograph crops instead (`benchmarks/bench_image.py --set photos28`). The model is
`Glow((28, 28, 1), context_features=10)`: every coupling network also sees the one-hot
class, so `sample(n, context=...)` draws images of the asked class.

Writes into --out (default saved_models/):
  digits28_glow_classes.png        one row per class, temperature 0.7
  digits28_glow_interpolation.png  pairs of test images of one class encoded, the latent
                                   path between them decoded (spherical interpolation)
  digits28_glow.keras              the trained model
and prints test bits/dim in pixel space (256 levels; a uniform model scores 8).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # 1.7-1.9x faster convolutions on CPU

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

import tfflows as tff  # noqa: E402
from tfflows.plot.images import image_grid, interpolation_strip, latent_interpolation  # noqa: E402

LEVELS = 256
SIZE = 28
CLASSES = 10


def digits_28x28():
    """(images (1797, 28, 28, 1) of levels 0..255, labels): each 8x8 digit zoomed by a
    cubic spline (order 3) to 28x28, clipped, rescaled from 0..16 to 0..255."""
    images, labels = tff.datasets.digits()
    zoomed = ndimage.zoom(images[..., 0].astype("float64"), (1, SIZE / 8, SIZE / 8), order=3)
    levels = np.clip(np.round(zoomed * (LEVELS - 1) / 16.0), 0, LEVELS - 1)
    return levels[..., None], labels


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the first epoch end after `seconds`."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget")
    parser.add_argument("--out", default="saved_models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace this script's outputs")
    args = parser.parse_args()
    names = ("digits28_glow_classes.png", "digits28_glow_interpolation.png", "digits28_glow.keras")
    existing = [os.path.join(args.out, n) for n in names if os.path.exists(os.path.join(args.out, n))]
    if existing and not args.force:
        parser.exit(2, f"{existing[0]} already exists; not overwriting it (choose another --out, "
                       "or add --force)\n")
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    images, labels = digits_28x28()
    order = np.random.default_rng(args.seed).permutation(len(images))
    test, val, train = np.split(order, [200, 400])
    onehot = np.eye(CLASSES, dtype="float32")[labels]
    # Training levels as floats: the model's Dequantize layer adds fresh noise each step.
    # Validation and test: one fixed dequantization, so the numbers are repeatable.
    x_train = {"x": images[train].astype("float32"), "context": onehot[train]}
    x_val = {"x": tff.dequantize(images[val], LEVELS, seed=1), "context": onehot[val]}
    x_test = tff.dequantize(images[test], LEVELS, seed=2)

    model = tff.Glow((SIZE, SIZE, 1), num_levels=LEVELS, context_features=CLASSES,
                     hidden_channels=48)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    history = model.fit(x_train, validation_data=x_val, batch_size=64, epochs=1000,
                        callbacks=[TimeBudget(60 * args.minutes),
                                   keras.callbacks.EarlyStopping(patience=10,
                                                                 restore_best_weights=True)],
                        verbose=2)
    seconds = time.perf_counter() - start
    bits = float(np.mean(model.bits_per_dim(x_test, context=onehot[test])))
    print(f"\nGlow 28x28, class-conditional: {len(history.history['loss'])} epochs in "
          f"{seconds:.0f} s; test bits/dim (pixel space, {LEVELS} levels) = {bits:.3f} "
          f"(uniform: 8.000)")

    # One row per class: z ~ N(0, T^2 I) decoded under that class's one-hot context.
    per_class, temperature = 8, 0.7
    rng = np.random.default_rng(args.seed)
    z = temperature * rng.normal(size=(CLASSES * per_class, SIZE, SIZE, 1)).astype("float32")
    context = np.repeat(np.eye(CLASSES, dtype="float32"), per_class, axis=0)
    drawn = tff.quantize(model.decode(z, context), LEVELS)
    path = os.path.join(args.out, "digits28_glow_classes.png")
    image_grid(drawn, path, cols=per_class, vmax=LEVELS - 1,
               title=f"class-conditional Glow samples, row k: class k (temperature {temperature})")
    print("wrote", path)

    # Interpolation: pairs of test images of the same class, encoded under that class.
    pairs = []
    for digit in (0, 2, 3, 5, 7):
        same = np.flatnonzero(labels[test] == digit)[:2]
        if len(same) == 2:
            pairs.append(same)
    pairs = np.array(pairs)
    strips = latent_interpolation(model, x_test[pairs[:, 0]], x_test[pairs[:, 1]], steps=10,
                                  spherical=True, context=onehot[test][pairs[:, 0]])
    path = os.path.join(args.out, "digits28_glow_interpolation.png")
    interpolation_strip(tff.quantize(strips, LEVELS), path, vmax=LEVELS - 1,
                        title="test images of one class (ends), latent path decoded between them")
    print("wrote", path)
    path = os.path.join(args.out, "digits28_glow.keras")
    model.save(path)
    print("wrote", path)


if __name__ == "__main__":
    main()
