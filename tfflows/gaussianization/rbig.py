"""`RBIG`: rotation-based iterative Gaussianization, fitted greedily without gradients.

An ordinary `Flow`: exact `log_prob`, `sample`, `encode`, `decode`, `save` and `export`;
its blocks are {`MarginalGaussianization`, `Rotation`}. (`GaussianizationFlow`, the
same blocks trained end to end, is in `tfflows.gaussianization.gaussianization_flow`.)
"""

import keras

from tfflows.bijectors.chain import Chain
from tfflows.flows import inputs

# GaussianizationFlow's old home (`from tfflows.gaussianization.rbig import ...` still works)
from tfflows.gaussianization.gaussianization_flow import GaussianizationFlow  # noqa: F401
from tfflows.gaussianization.greedy import Stopping
from tfflows.gaussianization.greedy_preset import (
    MAX_BLOCKS,
    MAX_TAIL_SLOPE,
    PATIENCE,
    SHRINKAGE,
    GreedyPreset,
    first_block_makers,
    first_shrinkages,
    optional_float,
)
from tfflows.gaussianization.marginal import MarginalGaussianization
from tfflows.gaussianization.rotations import Rotation


@keras.saving.register_keras_serializable(package="tfflows")
class RBIG(GreedyPreset):
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
            `MarginalGaussianization` (spline); `shrinkage` in [0, 1) blends the marginal
            maps of every block after the first toward the affine standardization: each
            block then takes a small step (1 - shrinkage) of the Gaussianization along its
            directions, and many small blocks generalize better than few large ones
            (BENCHMARKS.md, "Small steps"); `max_tail_slope` caps the slopes of the
            linear tails at that multiple of the standardization's (None: uncapped), so
            rows beyond the training range are not stretched block after block.
        seed: seeds the random / ICA / max-sliced-Wasserstein rotations.
        num_directions: max-sliced-Wasserstein directions (None: min(d, 8)).
        first_shrinkage: the shrinkage of the first block, which meets the raw marginals.
            None (default): chosen by `fit_greedy` between 0.4 (a large step, which
            Gaussianizes skewed or bounded columns at once) and `shrinkage` (the same
            small step as the others) by the NLL after 10 blocks, on the validation
            rows when given (streamed fits take 0.4).
        **kwargs: of `Flow` (name, dtype).

    The defaults were chosen on validation NLL across the suite's 18 small sets (90-2,400
    training rows, d = 3-64; BENCHMARKS.md, "Gaussianization defaults" and "Small steps")
    and checked on its large sets (18,000-60,000 training rows, d = 16-63).
    """

    def __init__(
        self,
        features,
        num_blocks=0,
        rotation="max_sliced_wasserstein",
        num_knots=16,
        bandwidth=1.5,
        shrinkage=SHRINKAGE,
        seed=0,
        num_directions=None,
        max_tail_slope=MAX_TAIL_SLOPE,
        first_shrinkage=None,
        **kwargs,
    ):
        features = int(features)
        self._block_args = dict(
            rotation=rotation,
            num_knots=int(num_knots),
            bandwidth=float(bandwidth),
            shrinkage=float(shrinkage),
            seed=int(seed),
            num_directions=None if num_directions is None else int(num_directions),
            max_tail_slope=optional_float(max_tail_slope),
            first_shrinkage=optional_float(first_shrinkage),
        )
        arguments = dict(features=features, num_blocks=int(num_blocks), **self._block_args)
        layers = [layer for i in range(int(num_blocks)) for layer in self._block(i)]
        super().__init__(
            Chain(layers, name="chain"), event_shape=(features,), arguments=arguments, **kwargs
        )

    def _block(self, i, first_shrinkage=None):
        a = self._block_args
        if first_shrinkage is None:
            first_shrinkage = first_shrinkages(a["first_shrinkage"], a["shrinkage"])[0]
        return [
            MarginalGaussianization(
                method="spline",
                num_knots=a["num_knots"],
                bandwidth=a["bandwidth"],
                shrinkage=first_shrinkage if i == 0 else a["shrinkage"],
                max_tail_slope=a.get("max_tail_slope"),
                name=f"marginal_{i}",
            ),
            Rotation(
                kind=a["rotation"],
                seed=a["seed"] + i,
                num_directions=a["num_directions"],
                name=f"rotation_{i}",
            ),
        ]

    def fit_greedy(
        self,
        x,
        validation_data=None,
        max_blocks=MAX_BLOCKS,
        tol=1e-3,
        patience=PATIENCE,
        verbose=1,
        strategy=None,
    ):
        """Add blocks one at a time, each fitted on the data transformed by the previous ones.

        Stops when the gain in training log-likelihood per row (the reduction of the
        total correlation achieved by the previous rotation, in nats) stays below `tol`
        for `patience` blocks, or, with `validation_data`, when the validation
        log-likelihood has not improved for `patience` blocks; the best depth is kept.
        With `first_shrinkage=None` the first 10 blocks are fitted twice, after a first
        block of shrinkage 0.4 and of `shrinkage`, and the run with the lower NLL after
        them goes on (`greedy_history["lookahead_nll"]` holds both).
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
        stopping = Stopping(max_blocks, tol, patience, bool(verbose))
        a = self._block_args
        makers = first_block_makers(self._block, a["first_shrinkage"], a["shrinkage"])
        blocks, depth, self.greedy_history = self._greedy(
            makers, x, validation_data, stopping, strategy
        )
        self._install_blocks(blocks[:depth])
        return self

    def fit(
        self,
        x=None,
        y=None,
        validation_data=None,
        verbose=1,
        validation_split=0.0,
        sample_weight=None,
        **kwargs,
    ):
        """RBIG has no gradient training: `fit` runs `fit_greedy` and returns a
        `keras.callbacks.History` whose history holds the per-block losses ("loss" =
        training NLL, "val_loss" = validation NLL). Keras's `validation_split` takes the
        last fraction of the rows as validation data; epochs, batch sizes and callbacks
        have no meaning for a greedy fit and are ignored."""
        if y is not None:
            raise ValueError("Flows are trained without targets.")
        if sample_weight is not None:
            raise ValueError(
                "RBIG's greedy fit does not take sample weights; weighted maximum likelihood "
                "needs gradient training (tfflows.GaussianizationFlow or another Flow)."
            )
        if validation_split:
            data = inputs.check_data(x, self._check_rows, None, what="training data")
            train, val = data.split(validation_split)
            x, validation_data = train.x, val.x
        greedy = {k: kwargs.pop(k) for k in ("max_blocks", "tol", "patience") if k in kwargs}
        self.fit_greedy(x, validation_data=validation_data, verbose=verbose, **greedy)
        record = keras.callbacks.History()
        record.history = {"loss": list(self.greedy_history["train_nll"])}
        if self.greedy_history["val_nll"]:
            record.history["val_loss"] = list(self.greedy_history["val_nll"])
        return record
