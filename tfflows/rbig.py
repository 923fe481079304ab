"""Iterative Gaussianization presets: `RBIG` (fitted greedily, no gradients) and
`GaussianizationFlow` (initialized greedily, then trained end to end with `fit`).

Both are ordinary `Flow`s: exact `log_prob`, `sample`, `encode`, `decode`, `save` and
`export`; their blocks are {`MarginalGaussianization`, orthogonal rotation}.
"""

import math
import time

import keras
import numpy as np
from keras import ops

from tfflows import validation
from tfflows.base import Chain
from tfflows.gaussianization import MarginalGaussianization
from tfflows.presets import Preset
from tfflows.rotations import Householder, Rotation, pca_rotation

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _gaussian_nll(z, log_det):
    """Mean negative log-likelihood (nats) of rows with latent z and log-det, and per row."""
    per_row = 0.5 * np.sum(np.square(z), axis=1) + z.shape[1] * _HALF_LOG_2PI - log_det
    return float(np.mean(per_row)), per_row


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


@keras.saving.register_keras_serializable(package="tfflows")
class RBIG(Preset):
    """Rotation-Based Iterative Gaussianization (Laparra, Camps-Valls & Malo 2011;
    Chen & Gopinath 2000), fitted greedily without gradients by `fit_greedy`.

    Block k: x -> Rotation_k(MarginalGaussianization_k(x)); both fitted on the output of
    the previous blocks. log p(x) = log N(z; 0, I) + sum_k sum_i log s_ki'(.), exact.

    Args:
        features: data dimension.
        num_blocks: number of blocks (set by `fit_greedy`; only give it to rebuild a
            fitted architecture, as `load_model` does).
        rotation: "pca" (default), "random" or "ica" (see `Rotation`).
        num_knots, bandwidth, shrinkage: of each `MarginalGaussianization` (spline);
            `shrinkage` in [0, 1) blends every marginal map toward the affine
            standardization, the regularization that helps on small data.
        seed: seeds the random / ICA rotations.
    """

    def __init__(self, features, num_blocks=0, rotation="pca", num_knots=32, bandwidth=1.0, shrinkage=0.2,
                 seed=0, **kwargs):
        features = int(features)
        self._block_args = dict(rotation=rotation, num_knots=int(num_knots), bandwidth=float(bandwidth),
                                shrinkage=float(shrinkage), seed=int(seed))
        arguments = dict(features=features, num_blocks=int(num_blocks), **self._block_args)
        layers = [layer for i in range(int(num_blocks)) for layer in self._block(i)]
        super().__init__(Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs)

    def _block(self, i):
        a = self._block_args
        return [MarginalGaussianization(method="spline", num_knots=a["num_knots"], bandwidth=a["bandwidth"],
                                        shrinkage=a["shrinkage"], name=f"marginal_{i}"),
                Rotation(kind=a["rotation"], seed=a["seed"] + i, name=f"rotation_{i}")]

    @property
    def num_blocks(self):
        return self._arguments["num_blocks"]

    def fit_greedy(self, x, validation_data=None, max_blocks=100, tol=1e-3, patience=5, verbose=1):
        """Add blocks one at a time, each fitted on the data transformed by the previous ones.

        Stops when the gain in training log-likelihood per row (the reduction of the
        total correlation achieved by the previous rotation, in nats) stays below `tol`
        for `patience` blocks, or, with `validation_data`, when the validation
        log-likelihood has not improved for `patience` blocks; the best depth is kept.
        Shows a progress bar when `verbose`. Returns self (a fitted `Flow`); the
        per-block record is in `self.greedy_history`.
        """
        x = validation.check_array(x, self.event_shape, "training data", finite=True)
        val = None
        if validation_data is not None:
            val = validation.check_array(validation_data, self.event_shape, "validation_data", finite=True)
        n = len(x)
        # Training and validation rows travel together through each new block; the
        # layers are fitted on the training rows only.
        rows = x if val is None else np.concatenate([x, val], axis=0)
        h = ops.convert_to_tensor(rows, self.compute_dtype)
        log_det = np.zeros(len(rows))
        train_nll = _gaussian_nll(rows[:n], log_det[:n])[0]
        history = {"train_nll": [], "val_nll": [], "tc_reduction": [], "seconds": []}
        layers, best_depth, best_val, wait_val, wait_tol = [], 0, math.inf, 0, 0
        bar = keras.utils.Progbar(max_blocks, unit_name="block",
                                  stateful_metrics=["train_nll", "gain", "val_nll"]) if verbose else None
        start = time.perf_counter()
        for i in range(max_blocks):
            block = self._block(i)
            for layer in block:
                layer.build((None,) + self.event_shape)
                layer.fit_from_data(h[:n])
                h, ld = layer.forward_and_log_det(h)
                log_det += _numpy(ld)
            layers += block
            z = _numpy(h)
            new_nll = _gaussian_nll(z[:n], log_det[:n])[0]
            gain, train_nll = train_nll - new_nll, new_nll
            history["train_nll"].append(train_nll)
            history["tc_reduction"].append(gain)
            history["seconds"].append(time.perf_counter() - start)
            values = [("train_nll", train_nll), ("gain", gain)]
            wait_tol = wait_tol + 1 if gain < tol else 0
            if val is not None:
                val_nll = _gaussian_nll(z[n:], log_det[n:])[0]
                history["val_nll"].append(val_nll)
                values.append(("val_nll", val_nll))
                if val_nll < best_val:
                    best_val, best_depth, wait_val = val_nll, i + 1, 0
                else:
                    wait_val += 1
            else:
                best_depth = i + 1
            if bar is not None:
                bar.update(i + 1, values=values, finalize=False)
            if wait_tol >= patience or wait_val >= patience:
                break
        if bar is not None:
            bar.update(i + 1, values=values, finalize=True)
        if val is not None and best_depth == 0:
            best_depth = 1  # never return an empty model
        if val is None and wait_tol >= patience:
            best_depth = max(1, best_depth - patience)  # drop the blocks that gained < tol
        self._set_layers(layers[: 2 * best_depth])
        self.greedy_history = history
        return self

    def _set_layers(self, layers):
        old = self.transform
        self.transform = Chain(layers, name="chain")
        # Keras tracks every layer ever assigned; drop the replaced chain so that
        # `save`/`load_model` see exactly one, as in a model built with these blocks.
        if old in self._layers:
            self._layers.remove(old)
        self.transform.build((None,) + self.event_shape)
        self._arguments["num_blocks"] = len(layers) // 2
        self.built = True

    def fit(self, x=None, y=None, validation_data=None, verbose=1, **kwargs):
        """RBIG has no gradient training: `fit` runs `fit_greedy` and returns a
        `keras.callbacks.History` whose history holds the per-block losses ("loss" =
        training NLL, "val_loss" = validation NLL)."""
        if y is not None:
            raise ValueError("Flows are trained without targets.")
        greedy = {k: kwargs.pop(k) for k in ("max_blocks", "tol", "patience") if k in kwargs}
        self.fit_greedy(x, validation_data=validation_data, verbose=verbose, **greedy)
        record = keras.callbacks.History()
        record.history = {"loss": list(self.greedy_history["train_nll"])}
        if self.greedy_history["val_nll"]:
            record.history["val_loss"] = list(self.greedy_history["val_nll"])
        return record


@keras.saving.register_keras_serializable(package="tfflows")
class GaussianizationFlow(Preset):
    """Gaussianization flow (Meng, Song, Song & Ermon 2020, arXiv:2003.01941): blocks of a
    trainable `MarginalGaussianization` and a `Householder` rotation with
    `num_reflections` reflections (default d), trained end to end by `fit`.

    marginal="spline" (default): the RBIG spline marginals with trainable knots;
    marginal="logistic": mixture-of-logistics marginals (`num_components`), as in the paper.

    Before the first `fit` (or explicitly by `initialize_greedy(x, validation_data)`) the
    blocks are fitted greedily, as `RBIG.fit_greedy` does: each marginal to the current
    data, each rotation to its principal axes. With validation data, the blocks after the
    best validation depth start as identity marginals (their rotations random, which does
    not change the density), so training starts exactly from the RBIG fit.

    log p(x) = log N(z; 0, I) + sum_blocks sum_i [log f_i(.) - log phi(.)]
    """

    def __init__(self, features, num_blocks=6, marginal="spline", num_knots=32, num_components=16,
                 num_reflections=None, bandwidth=1.0, shrinkage=0.2, seed=0, **kwargs):
        features = int(features)
        if marginal not in ("spline", "logistic"):
            raise ValueError(f"marginal must be 'spline' or 'logistic'; got {marginal!r}.")
        arguments = dict(features=features, num_blocks=int(num_blocks), marginal=marginal, num_knots=int(num_knots),
                         num_components=int(num_components),
                         num_reflections=None if num_reflections is None else int(num_reflections),
                         bandwidth=float(bandwidth), shrinkage=float(shrinkage), seed=int(seed))
        layers = []
        for i in range(int(num_blocks)):
            layers.append(MarginalGaussianization(method=marginal, num_knots=num_knots, num_components=num_components,
                                                  bandwidth=bandwidth, shrinkage=shrinkage, train_spline=True,
                                                  name=f"marginal_{i}"))
            layers.append(Householder(num_reflections=num_reflections, seed=int(seed) + i, name=f"householder_{i}"))
        super().__init__(Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs)

    def initialize_greedy(self, x, validation_data=None):
        """Fit each block in turn on the data transformed by the blocks before it; with
        `validation_data`, blocks beyond the best validation depth start as identities."""
        self._ensure_built()
        x = validation.check_array(x, self.event_shape, "training data", finite=True)
        n = len(x)
        if validation_data is not None:
            val = validation.check_array(validation_data, self.event_shape, "validation_data", finite=True)
            x = np.concatenate([x, val], axis=0)
        h = ops.convert_to_tensor(np.asarray(x), self.compute_dtype)
        log_det = np.zeros(len(x))
        layers = self.transform.layers
        scores = []
        for i in range(0, len(layers), 2):
            marginal, rotation = layers[i], layers[i + 1]
            marginal.fit_from_data(h[:n])
            h, ld = marginal.forward_and_log_det(h)
            log_det += _numpy(ld)
            scores.append(_gaussian_nll(_numpy(h)[n:], log_det[n:])[0] if len(x) > n else 0.0)
            if rotation.vectors.shape[0] == rotation.vectors.shape[1]:
                rotation.set_matrix(pca_rotation(_numpy(h[:n])))
            h = rotation.forward(h)
        if len(x) > n:
            best = int(np.argmin(scores)) + 1
            for i in range(2 * best, len(layers), 2):
                if layers[i].method == "spline":
                    layers[i].set_identity()
                    layers[i + 1].vectors.assign(layers[i + 1]._initial_vectors(*layers[i + 1].vectors.shape))
        return self

    def fit(self, x=None, y=None, batch_size=None, epochs=1, callbacks=None, validation_data=None, **kwargs):
        """`Flow.fit`, preceded (once) by `initialize_greedy` on all of `x` (and the
        validation data) when they are arrays; on the first batch when x is a dataset."""
        first = self.transform.layers[0] if self.transform.layers else None
        if first is not None and isinstance(x, np.ndarray):
            self._ensure_built()
            if float(_numpy(first.initialized)) == 0:
                val = validation_data if isinstance(validation_data, np.ndarray) else None
                self.initialize_greedy(x, validation_data=val)
        return super().fit(x, y=y, batch_size=batch_size, epochs=epochs, callbacks=callbacks,
                           validation_data=validation_data, **kwargs)
