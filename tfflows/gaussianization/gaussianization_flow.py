"""`GaussianizationFlow` (Meng, Song, Song & Ermon 2020): the blocks of a greedy RBIG fit,
then trained end to end by `fit`; and `KeepBest`, the callback that keeps its best
validation weights."""

import functools
import math

import keras
import numpy as np

from tfflows.bijectors.chain import Chain
from tfflows.flows import training
from tfflows.gaussianization.greedy import Stopping
from tfflows.gaussianization.greedy_preset import (
    MAX_BLOCKS,
    MAX_TAIL_SLOPE,
    PATIENCE,
    SHRINKAGE,
    GreedyPreset,
    first_block_makers,
    first_shrinkages,
    numpy_of,
    optional_float,
    plain_rows,
)
from tfflows.gaussianization.marginal import MarginalGaussianization
from tfflows.gaussianization.rotations import Householder, Rotation, signed_householder_vectors


class KeepBest(keras.callbacks.Callback):
    """Restores, at the end of training, the weights with the lowest validation NLL among
    the starting weights and those after each epoch (so training never ends worse, on the
    validation data, than where it started).

    Args:
        validation_rows: the validation rows x.
    """

    def __init__(self, validation_rows):
        super().__init__()
        self.rows = validation_rows

    def _snapshot(self):
        return [np.array(numpy_of(v)) for v in self.model.weights]

    def on_train_begin(self, logs=None):
        self.best = -float(np.mean(numpy_of(self.model.log_prob(self.rows))))
        self.best_weights, self.best_epoch = self._snapshot(), 0
        self.start_val_nll = self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_weights, self.best_epoch = (
                float(value),
                self._snapshot(),
                epoch + 1,
            )

    def on_train_end(self, logs=None):
        current = -float(np.mean(numpy_of(self.model.log_prob(self.rows))))
        if not current <= self.best:
            for variable, value in zip(self.model.weights, self.best_weights):
                variable.assign(value)


@keras.saving.register_keras_serializable(package="tfflows")
class GaussianizationFlow(GreedyPreset):
    """Gaussianization flow (Meng, Song, Song & Ermon 2020, arXiv:2003.01941): blocks of a
    trainable `MarginalGaussianization` and a `Householder` rotation (d reflections, or
    `num_reflections`), started from a greedy RBIG fit and trained end to end by `fit`.

    log p(x) = log N(z; 0, I) + sum_blocks sum_i [log f_i(.) - log phi(.)]

    marginal="spline" (default): the RBIG spline marginals, their knots and slopes
    trainable; marginal="logistic": mixture-of-logistics marginals (`num_components`), as
    in the paper.

    Greedy start (`initialize_greedy(x, validation_data)`, run by the first `fit` on
    arrays): the blocks are fitted exactly as `RBIG.fit_greedy` fits them (same
    `rotation`, `num_knots`, `bandwidth`, `shrinkage`, `max_tail_slope`, `seed`), each
    rotation stored in its trainable Householder layer. With `num_blocks=None` (default) the
    greedy fit chooses the depth (validation NLL, or the tolerance rule), so with spline
    marginals the flow starts *exactly* at the RBIG model, log_prob for log_prob. With an
    integer `num_blocks`, that many blocks are fitted and, with validation data, the spline
    marginals after the best validation depth start as identities (the density is that of
    RBIG at that depth).

    Fine-tuning: `fit` keeps the best weights on the validation data, the starting weights
    included, so the validation NLL never ends above the greedy start (`keep_best=False`
    turns this off); uncompiled, it uses Adam(1e-3) (`FINE_TUNE_LEARNING_RATE`); about 25
    epochs with validation data were the schedule chosen on the suite.

    Args:
        features: data dimension.
        num_blocks: None (the greedy fit chooses the depth) or a fixed number of blocks.
        marginal: "spline" or "logistic" (above).
        num_knots: spline knots of each marginal.
        num_components: logistic components of each marginal.
        num_reflections: reflections of each Householder layer (None: d, required by
            the greedy start).
        bandwidth, shrinkage, max_tail_slope, first_shrinkage: of the greedy start's
            blocks, as in `RBIG` (`first_shrinkage` for the first block).
        rotation: the greedy start's rotation kind (see `RBIG`).
        num_directions: of the max-sliced-Wasserstein rotation (None: min(d, 8)).
        seed: seeds the rotations and the Householder initializations.
        **kwargs: of `Flow` (name, dtype).
    """

    FINE_TUNE_LEARNING_RATE = 1e-3

    def __init__(
        self,
        features,
        num_blocks=None,
        marginal="spline",
        num_knots=16,
        num_components=16,
        num_reflections=None,
        bandwidth=1.5,
        shrinkage=SHRINKAGE,
        rotation="max_sliced_wasserstein",
        num_directions=None,
        seed=0,
        max_tail_slope=MAX_TAIL_SLOPE,
        first_shrinkage=None,
        **kwargs,
    ):
        features = int(features)
        if marginal not in ("spline", "logistic"):
            raise ValueError(f"marginal must be 'spline' or 'logistic'; got {marginal!r}.")
        arguments = dict(
            features=features,
            num_blocks=None if num_blocks is None else int(num_blocks),
            marginal=marginal,
            num_knots=int(num_knots),
            num_components=int(num_components),
            num_reflections=None if num_reflections is None else int(num_reflections),
            bandwidth=float(bandwidth),
            shrinkage=float(shrinkage),
            rotation=rotation,
            num_directions=None if num_directions is None else int(num_directions),
            seed=int(seed),
            max_tail_slope=optional_float(max_tail_slope),
            first_shrinkage=optional_float(first_shrinkage),
        )
        self._fixed_depth = num_blocks is not None
        layers = [layer for i in range(int(num_blocks or 0)) for layer in self._block(i, arguments)]
        super().__init__(
            Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs
        )

    @staticmethod
    def _block(i, a, fitted=False, first_shrinkage=None):
        """Block i: [marginal, rotation]. `fitted=True` gives the greedy-fitting version,
        whose rotation is a `Rotation` (copied into the Householder layer afterwards)."""
        if first_shrinkage is None:
            first_shrinkage = first_shrinkages(a.get("first_shrinkage"), a["shrinkage"])[0]
        marginal = MarginalGaussianization(
            method=a["marginal"],
            num_knots=a["num_knots"],
            num_components=a["num_components"],
            bandwidth=a["bandwidth"],
            shrinkage=first_shrinkage if i == 0 else a["shrinkage"],
            max_tail_slope=a.get("max_tail_slope"),
            train_spline=True,
            name=f"marginal_{i}",
        )
        if fitted:
            return [
                marginal,
                Rotation(
                    kind=a["rotation"],
                    seed=a["seed"] + i,
                    num_directions=a["num_directions"],
                    name=f"rotation_{i}",
                ),
            ]
        return [
            marginal,
            Householder(
                num_reflections=a["num_reflections"], seed=a["seed"] + i, name=f"householder_{i}"
            ),
        ]

    def initialize_greedy(
        self,
        x,
        validation_data=None,
        max_blocks=MAX_BLOCKS,
        tol=1e-3,
        patience=PATIENCE,
        verbose=0,
        strategy=None,
    ):
        """Fit the blocks greedily, as `RBIG.fit_greedy` does (with `num_blocks=None`, with
        its stopping rule and arguments; arrays or streamed batches). Returns self; the
        record is in `greedy_history`."""
        val = validation_data
        a = self._arguments
        if a["num_reflections"] not in (None, self.event_shape[0]):
            raise ValueError(
                "GaussianizationFlow's greedy start stores each fitted rotation in a "
                "Householder layer, "
                f"which needs num_reflections=None (= d); got {a['num_reflections']}."
            )
        if self._fixed_depth:
            max_blocks = patience = a["num_blocks"]
        stopping = Stopping(max_blocks, tol, patience, bool(verbose))
        fitted_block = functools.partial(self._block, a=a, fitted=True)
        makers = first_block_makers(fitted_block, a.get("first_shrinkage"), a["shrinkage"])
        blocks, depth, self.greedy_history = self._greedy(makers, x, val, stopping, strategy)
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
                # beyond the validated depth: the density of RBIG at that depth
                marginal.set_identity()
            else:
                marginal.mirror(flip < 0)
            householder = self._block(i, a)[1]
            householder.build((None, self.event_shape[0]))
            vectors, flip = signed_householder_vectors(
                flip[:, None] * numpy_of(rotation.matrix("float64"))
            )
            householder.vectors.assign(vectors.astype(householder.vectors.dtype))
            fitted.append([marginal, householder])
        self._install_blocks(fitted)
        return self

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        callbacks=None,
        validation_data=None,
        keep_best=True,
        **kwargs,
    ):
        """`Flow.fit`, preceded (once) by `initialize_greedy` on all of `x` (and the
        validation data) when they are arrays. With array `validation_data` and
        `keep_best`, the weights with the lowest validation NLL, the starting ones
        included, are restored at the end. Not compiled yet: Adam with the small
        `FINE_TUNE_LEARNING_RATE`: a small step from a good start (BENCHMARKS.md,
        "Gaussianization")."""
        train, val = training.train_and_validation(
            self,
            x,
            kwargs.pop("sample_weight", None),
            validation_data,
            kwargs.pop("validation_split", 0.0),
        )
        if plain_rows(train) and not self._greedy_done():
            self.initialize_greedy(train, validation_data=val if plain_rows(val) else None)
        elif not self.transform.layers:
            raise ValueError(
                "GaussianizationFlow(num_blocks=None) chooses its depth from data: call "
                "initialize_greedy(x) first, or fit on an array, or give num_blocks."
            )
        if not self.compiled:
            self.compile(optimizer=keras.optimizers.Adam(self.FINE_TUNE_LEARNING_RATE))
        callbacks = list(callbacks or [])
        if keep_best and plain_rows(val):
            callbacks.append(KeepBest(val.x))  # last: runs after EarlyStopping's own restore
        return super().fit(
            train,
            y=y,
            batch_size=batch_size,
            epochs=epochs,
            callbacks=callbacks,
            validation_data=val,
            **kwargs,
        )

    def _greedy_done(self):
        first = self.transform.layers[0] if self.transform.layers else None
        return bool(first is not None and first.built and float(numpy_of(first.initialized)) > 0)
