"""Iterative Gaussianization presets: `RBIG` (fitted greedily, no gradients) and
`GaussianizationFlow` (initialized greedily, then trained end to end with `fit`).

Both are ordinary `Flow`s: exact `log_prob`, `sample`, `encode`, `decode`, `save` and
`export`; their blocks are {`MarginalGaussianization`, orthogonal rotation}.
"""

import math

import keras
import numpy as np
from keras import ops

from tfflows.bijectors.chain import Chain
from tfflows.flows import inputs
from tfflows.flows.preset import Preset
from tfflows.gaussianization import streamed
from tfflows.gaussianization.greedy import greedy_blocks
from tfflows.gaussianization.marginal import MarginalGaussianization
from tfflows.gaussianization.rotations import Householder, Rotation, signed_householder_vectors


# The default cap on the marginal splines' tail slopes, in units of the standardization's
# slope 1 / std (BENCHMARKS.md, "Tail slopes"): on validation NLL over the suite 0.75 and
# 1.0 beat no cap; 1.0 is the default because under a cap c < 1 every block's inverse
# stretches its tails by at least 1 / c, which compounds with the depth into far samples.
MAX_TAIL_SLOPE = 1.0


def _optional_float(value):
    return None if value is None else float(value)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def _check_data(flow, x, validation_data):
    """Training and validation rows as arrays: x, (x,) or (x, None) each, as Keras takes them."""
    x = flow._check_rows(inputs.unpack(x, "training data")[0], "training data", finite=True)
    val = None
    if validation_data is not None:
        val = flow._check_rows(inputs.unpack(validation_data, "validation_data")[0], "validation_data", finite=True)
    return x, val


def _array_rows(data, what):
    """The array inside data in a Keras form (x, (x,), (x, None)), or None for a stream."""
    if data is None or inputs.is_stream(data):
        return None
    data, weights = inputs.unpack(data, what)
    return None if weights is not None or isinstance(data, dict) else np.asarray(data)


class _GreedyPreset(Preset):
    """A preset whose chain holds the blocks a greedy fit chose.

    Before the first fit the chain is empty (or holds `num_blocks` unfitted blocks) and
    the model is unbuilt: the fitted layers become the chain's layers, then the model is
    built. A refit of a built model (whose sub-layers Keras no longer lets change)
    writes the fitted weights into the existing blocks, and blocks beyond the new depth
    become identities (the same density as the shallower model)."""

    def _greedy(self, make_block, x, validation_data, max_blocks, tol, patience, verbose, strategy=None):
        """The greedy loop on arrays (exact, in memory) or on streamed batches (sketches)."""
        if not streamed.is_stream(x) and strategy is None:
            x, val = _check_data(self, x, validation_data)
            return greedy_blocks(make_block, x, val, max_blocks, tol, patience, verbose, self.compute_dtype)
        features = self.event_shape[0]
        source = streamed.BatchSource(x if streamed.is_stream(x) else [_check_data(self, x, None)[0]], features)
        val = None
        if validation_data is not None:
            val = validation_data if streamed.is_stream(validation_data) else [_check_data(self, validation_data,
                                                                                          None)[0]]
            val = streamed.BatchSource(val, features, "validation_data")
        reduce = None
        if strategy is not None:
            from tfflows.interop.tf_training import all_reduce

            reduce = all_reduce(strategy)
        return streamed.streamed_greedy_blocks(make_block, source, val, max_blocks, tol, patience, verbose,
                                               self.compute_dtype, reduce=reduce)

    def _install_blocks(self, blocks):
        """blocks: lists [marginal, rotation] of fitted layers, in order."""
        layers = [layer for block in blocks for layer in block]
        chain = self.transform
        if not self.built:
            chain.set_layers(layers)
            self._arguments["num_blocks"] = len(blocks)
        else:
            current = list(chain.layers)
            if len(layers) > len(current):
                raise ValueError(
                    f"This {type(self).__name__} was built with {len(current) // 2} blocks and the new fit chose "
                    f"{len(blocks)}: a built Keras model cannot grow. Fit a new {type(self).__name__}, or pass "
                    f"max_blocks={len(current) // 2}.")
            for old, new in zip(current, layers):
                if not old.built:
                    old.build((None,) + self.event_shape)
                old.set_weights(new.get_weights())
            for marginal in current[len(layers)::2]:
                marginal.set_identity()
            for rotation in current[len(layers) + 1::2]:
                rotation.set_identity()
            return
        self.build((None,) + self.event_shape)

    @property
    def num_blocks(self):
        return self._arguments["num_blocks"]


@keras.saving.register_keras_serializable(package="tfflows")
class RBIG(_GreedyPreset):
    """Rotation-Based Iterative Gaussianization (Laparra, Camps-Valls & Malo 2011;
    Chen & Gopinath 2000), fitted greedily without gradients by `fit_greedy`.

    Block k: x -> Rotation_k(MarginalGaussianization_k(x)); both fitted on the output of
    the previous blocks. log p(x) = log N(z; 0, I) + sum_k sum_i log s_ki'(.), exact.

    Args:
        features: data dimension.
        num_blocks: number of blocks (set by `fit_greedy`; only give it to rebuild a
            fitted architecture, as `load_model` does).
        rotation: "max_sliced_wasserstein" (default; `num_directions` max-sliced-
            Wasserstein directions, default min(d, 8), completed by principal axes), "pca",
            "random" or "ica" (see `Rotation`).
        num_knots, bandwidth, shrinkage, max_tail_slope: of each
            `MarginalGaussianization` (spline); `shrinkage` in [0, 1) blends every
            marginal map toward the affine standardization, the regularization that helps
            on small data; `max_tail_slope` caps the slopes of the linear tails at that
            multiple of the standardization's (None: uncapped), so rows beyond the
            training range are not stretched block after block.
        seed: seeds the random / ICA / max-sliced-Wasserstein rotations.

    The defaults were chosen once, on validation NLL across a suite of 9 real and 9
    synthetic data sets (BENCHMARKS.md, "Gaussianization defaults").
    """

    def __init__(self, features, num_blocks=0, rotation="max_sliced_wasserstein", num_knots=16, bandwidth=1.5,
                 shrinkage=0.4, seed=0, num_directions=None, max_tail_slope=MAX_TAIL_SLOPE, **kwargs):
        features = int(features)
        self._block_args = dict(rotation=rotation, num_knots=int(num_knots), bandwidth=float(bandwidth),
                                shrinkage=float(shrinkage), seed=int(seed),
                                num_directions=None if num_directions is None else int(num_directions),
                                max_tail_slope=_optional_float(max_tail_slope))
        arguments = dict(features=features, num_blocks=int(num_blocks), **self._block_args)
        layers = [layer for i in range(int(num_blocks)) for layer in self._block(i)]
        super().__init__(Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs)

    def _block(self, i):
        a = self._block_args
        return [MarginalGaussianization(method="spline", num_knots=a["num_knots"], bandwidth=a["bandwidth"],
                                        shrinkage=a["shrinkage"], max_tail_slope=a.get("max_tail_slope"),
                                        name=f"marginal_{i}"),
                Rotation(kind=a["rotation"], seed=a["seed"] + i, num_directions=a["num_directions"],
                         name=f"rotation_{i}")]

    def fit_greedy(self, x, validation_data=None, max_blocks=100, tol=1e-3, patience=5, verbose=1, strategy=None):
        """Add blocks one at a time, each fitted on the data transformed by the previous ones.

        Stops when the gain in training log-likelihood per row (the reduction of the
        total correlation achieved by the previous rotation, in nats) stays below `tol`
        for `patience` blocks, or, with `validation_data`, when the validation
        log-likelihood has not improved for `patience` blocks; the best depth is kept.
        Shows a progress bar when `verbose`. Returns self (a fitted `Flow`); the
        per-block record is in `self.greedy_history`.

        `x` (and `validation_data`) may also be data streamed in batches, for data larger
        than memory: a `tf.data.Dataset`, a function returning an iterable of batches, or
        a re-iterable of batches (`tfflows.data.files.TextBatches`); the fit then keeps
        mergeable sketches instead of the rows (`tfflows.gaussianization.streamed`). With
        a `tf.distribute` `strategy` (e.g. `MultiWorkerMirroredStrategy`), each worker
        streams its own shard and the sketches are all-reduced, so every worker fits the
        model of all the data.
        """
        blocks, depth, self.greedy_history = self._greedy(self._block, x, validation_data, max_blocks, tol,
                                                          patience, verbose, strategy)
        self._install_blocks(blocks[:depth])
        return self

    def fit(self, x=None, y=None, validation_data=None, verbose=1, validation_split=0.0, sample_weight=None,
            **kwargs):
        """RBIG has no gradient training: `fit` runs `fit_greedy` and returns a
        `keras.callbacks.History` whose history holds the per-block losses ("loss" =
        training NLL, "val_loss" = validation NLL). Keras's `validation_split` takes the
        last fraction of the rows as validation data; epochs, batch sizes and callbacks
        have no meaning for a greedy fit and are ignored."""
        if y is not None:
            raise ValueError("Flows are trained without targets.")
        if sample_weight is not None:
            raise ValueError("RBIG's greedy fit does not take sample weights; weighted maximum likelihood "
                             "needs gradient training (tfflows.GaussianizationFlow or another Flow).")
        if validation_split:
            rows = _check_data(self, x, None)[0]
            (x, _), (validation_data, _) = inputs.split_for_validation(rows, None, validation_split)
        greedy = {k: kwargs.pop(k) for k in ("max_blocks", "tol", "patience") if k in kwargs}
        self.fit_greedy(x, validation_data=validation_data, verbose=verbose, **greedy)
        record = keras.callbacks.History()
        record.history = {"loss": list(self.greedy_history["train_nll"])}
        if self.greedy_history["val_nll"]:
            record.history["val_loss"] = list(self.greedy_history["val_nll"])
        return record


class _KeepBest(keras.callbacks.Callback):
    """Restores, at the end of training, the weights with the lowest validation NLL among
    the starting weights and those after each epoch (so training never ends worse, on the
    validation data, than where it started)."""

    def __init__(self, validation_rows):
        super().__init__()
        self.rows = validation_rows

    def _snapshot(self):
        return [np.array(_numpy(v)) for v in self.model.weights]

    def on_train_begin(self, logs=None):
        self.best = -float(np.mean(_numpy(self.model.log_prob(self.rows))))
        self.best_weights, self.best_epoch = self._snapshot(), 0
        self.start_val_nll = self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_weights, self.best_epoch = float(value), self._snapshot(), epoch + 1

    def on_train_end(self, logs=None):
        current = -float(np.mean(_numpy(self.model.log_prob(self.rows))))
        if not current <= self.best:
            for variable, value in zip(self.model.weights, self.best_weights):
                variable.assign(value)


@keras.saving.register_keras_serializable(package="tfflows")
class GaussianizationFlow(_GreedyPreset):
    """Gaussianization flow (Meng, Song, Song & Ermon 2020, arXiv:2003.01941): blocks of a
    trainable `MarginalGaussianization` and a `Householder` rotation (d reflections, or
    `num_reflections`), started from a greedy RBIG fit and trained end to end by `fit`.

    log p(x) = log N(z; 0, I) + sum_blocks sum_i [log f_i(.) - log phi(.)]

    marginal="spline" (default): the RBIG spline marginals, their knots and slopes
    trainable; marginal="logistic": mixture-of-logistics marginals (`num_components`), as
    in the paper.

    Greedy start (`initialize_greedy(x, validation_data)`, run by the first `fit` on
    arrays): the blocks are fitted exactly as `RBIG.fit_greedy` fits them (same
    `rotation`, `num_knots`, `bandwidth`, `shrinkage`, `max_tail_slope`, `seed`), each rotation stored in
    its trainable Householder layer. With `num_blocks=None` (default) the greedy fit
    chooses the depth (validation NLL, or the tolerance rule), so with spline marginals the
    flow starts *exactly* at the RBIG model, log_prob for log_prob. With an integer
    `num_blocks`, that many blocks are fitted and, with validation data, the spline
    marginals after the best validation depth start as identities (the density is that of
    RBIG at that depth).

    Fine-tuning: `fit` keeps the best weights on the validation data, the starting weights
    included, so the validation NLL never ends above the greedy start (`keep_best=False`
    turns this off); uncompiled, it uses Adam(1e-3) (`FINE_TUNE_LEARNING_RATE`); about 25
    epochs with validation data were the schedule chosen on the suite.
    """

    FINE_TUNE_LEARNING_RATE = 1e-3

    def __init__(self, features, num_blocks=None, marginal="spline", num_knots=16, num_components=16,
                 num_reflections=None, bandwidth=1.5, shrinkage=0.4, rotation="max_sliced_wasserstein",
                 num_directions=None, seed=0, max_tail_slope=MAX_TAIL_SLOPE, **kwargs):
        features = int(features)
        if marginal not in ("spline", "logistic"):
            raise ValueError(f"marginal must be 'spline' or 'logistic'; got {marginal!r}.")
        arguments = dict(features=features, num_blocks=None if num_blocks is None else int(num_blocks),
                         marginal=marginal, num_knots=int(num_knots), num_components=int(num_components),
                         num_reflections=None if num_reflections is None else int(num_reflections),
                         bandwidth=float(bandwidth), shrinkage=float(shrinkage), rotation=rotation,
                         num_directions=None if num_directions is None else int(num_directions), seed=int(seed),
                         max_tail_slope=_optional_float(max_tail_slope))
        self._fixed_depth = num_blocks is not None
        layers = [layer for i in range(int(num_blocks or 0)) for layer in self._block(i, arguments)]
        super().__init__(Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs)

    @staticmethod
    def _block(i, a, fitted=False):
        """Block i: [marginal, rotation]. `fitted=True` gives the greedy-fitting version,
        whose rotation is a `Rotation` (copied into the Householder layer afterwards)."""
        marginal = MarginalGaussianization(method=a["marginal"], num_knots=a["num_knots"],
                                           num_components=a["num_components"], bandwidth=a["bandwidth"],
                                           shrinkage=a["shrinkage"], max_tail_slope=a.get("max_tail_slope"),
                                           train_spline=True, name=f"marginal_{i}")
        if fitted:
            return [marginal, Rotation(kind=a["rotation"], seed=a["seed"] + i, num_directions=a["num_directions"],
                                       name=f"rotation_{i}")]
        return [marginal, Householder(num_reflections=a["num_reflections"], seed=a["seed"] + i,
                                      name=f"householder_{i}")]

    def initialize_greedy(self, x, validation_data=None, max_blocks=100, tol=1e-3, patience=5, verbose=0,
                          strategy=None):
        """Fit the blocks greedily, as `RBIG.fit_greedy` does (with `num_blocks=None`, with
        its stopping rule and arguments; arrays or streamed batches). Returns self; the
        record is in `greedy_history`."""
        val = validation_data
        a = self._arguments
        if a["num_reflections"] not in (None, self.event_shape[0]):
            raise ValueError("GaussianizationFlow's greedy start stores each fitted rotation in a Householder layer, "
                             f"which needs num_reflections=None (= d); got {a['num_reflections']}.")
        if self._fixed_depth:
            max_blocks = patience = a["num_blocks"]
        blocks, depth, self.greedy_history = self._greedy(lambda i: self._block(i, a, fitted=True), x, val,
                                                          max_blocks, tol, patience, verbose, strategy)
        if not self._fixed_depth:
            blocks = blocks[:depth]
        elif a["marginal"] == "logistic":
            depth = len(blocks)  # a logistic mixture has no exact identity: keep every fitted block
        # Each fitted rotation M_i is stored as well-conditioned reflections Q_i with
        # diag(f_i) M_i = Q_i diag(f_{i+1}) (`signed_householder_vectors`): the sign flips
        # f move forward through the next marginal (mirrored: -s(-x)) and vanish in the
        # symmetric base, so log_prob is RBIG's exactly.
        fitted, flip = [], np.ones(self.event_shape[0])
        for i, (marginal, rotation) in enumerate(blocks):
            if i >= depth:
                marginal.set_identity()  # beyond the validated depth: the density of RBIG at that depth
            else:
                marginal.mirror(flip < 0)
            householder = self._block(i, a)[1]
            householder.build((None, self.event_shape[0]))
            vectors, flip = signed_householder_vectors(flip[:, None] * _numpy(rotation.matrix("float64")))
            householder.vectors.assign(vectors.astype(householder.vectors.dtype))
            fitted.append([marginal, householder])
        self._install_blocks(fitted)
        return self

    def fit(self, x=None, y=None, batch_size=None, epochs=1, callbacks=None, validation_data=None, keep_best=True,
            **kwargs):
        """`Flow.fit`, preceded (once) by `initialize_greedy` on all of `x` (and the
        validation data) when they are arrays. With array `validation_data` and
        `keep_best`, the weights with the lowest validation NLL, the starting ones
        included, are restored at the end. Not compiled yet: Adam with the small
        `FINE_TUNE_LEARNING_RATE`: a small step from a good start (BENCHMARKS.md,
        "Gaussianization")."""
        if kwargs.get("validation_split") and _array_rows(x, "training data") is not None:
            (x, _), (validation_data, _) = inputs.split_for_validation(_array_rows(x, "training data"), None,
                                                                       kwargs.pop("validation_split"))
        val = _array_rows(validation_data, "validation_data")
        rows = _array_rows(x, "training data")
        if rows is not None and not self._greedy_done():
            self.initialize_greedy(rows, validation_data=val)
        elif not self.transform.layers:
            raise ValueError("GaussianizationFlow(num_blocks=None) chooses its depth from data: call "
                             "initialize_greedy(x) first, or fit on an array, or give num_blocks.")
        if not self.compiled:
            self.compile(optimizer=keras.optimizers.Adam(self.FINE_TUNE_LEARNING_RATE))
        callbacks = list(callbacks or [])
        if keep_best and val is not None:
            callbacks.append(_KeepBest(val))  # last: runs after EarlyStopping's own restore
        return super().fit(x, y=y, batch_size=batch_size, epochs=epochs, callbacks=callbacks,
                           validation_data=validation_data, **kwargs)

    def _greedy_done(self):
        first = self.transform.layers[0] if self.transform.layers else None
        return bool(first is not None and first.built and float(_numpy(first.initialized)) > 0)
