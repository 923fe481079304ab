"""`GreedyPreset`: the base of the presets whose chain holds the blocks of a greedy fit
(`RBIG`, `GaussianizationFlow`): the greedy loop on arrays or streams under one
`greedy.Stopping` rule, and the fitted blocks installed in the chain."""

import functools

import numpy as np
from keras import ops

from tfflows.data.source import Source, is_stream
from tfflows.flows import inputs
from tfflows.flows.preset import Preset
from tfflows.gaussianization import streamed
from tfflows.gaussianization.greedy import greedy_blocks


# The default cap on the marginal splines' tail slopes, in units of the standardization's
# slope 1 / std (BENCHMARKS.md, "Tail slopes"): on validation NLL over the suite 0.75 and
# 1.0 beat no cap; 1.0 is the default because under a cap c < 1 every block's inverse
# stretches its tails by at least 1 / c, which compounds with the depth into far samples.
MAX_TAIL_SLOPE = 1.0

# The greedy fits' block regularization and stopping defaults (BENCHMARKS.md, "Small
# steps"): every block after the first takes a small step (shrinkage 0.8 toward the
# affine map) along freshly chosen directions, so a fit runs through many small blocks.
# The first block meets the raw marginals: with first_shrinkage=None it is chosen between
# a large step (FIRST_STEP, which Gaussianizes skewed or bounded columns at once: the
# copulas, digits, breast_cancer) and the same small step (which leaves the pixel axes of
# image patches alone, whose structure lies in other directions) by the NLL after
# `greedy.LOOKAHEAD_BLOCKS` blocks.
FIRST_STEP = 0.4
SHRINKAGE = 0.8
MAX_BLOCKS = 1000
PATIENCE = 10


def first_shrinkages(first_shrinkage, shrinkage):
    """The candidate shrinkages of the first block: the given one, or with None the large
    FIRST_STEP and `shrinkage` (one candidate where they coincide)."""
    if first_shrinkage is not None:
        return [float(first_shrinkage)]
    return list(dict.fromkeys([FIRST_STEP, float(shrinkage)]))


def first_block_makers(make_block, first_shrinkage, shrinkage):
    """One block maker per candidate shrinkage of the first block (`first_shrinkages`):
    `make_block(i, first_shrinkage=s)` with s bound."""
    return [
        functools.partial(make_block, first_shrinkage=s)
        for s in first_shrinkages(first_shrinkage, shrinkage)
    ]


def optional_float(value):
    return None if value is None else float(value)


def numpy_of(x):
    return np.asarray(ops.convert_to_numpy(x))


def plain_rows(data):
    """Whether checked `Data` are rows x alone in memory (no stream, weights or context):
    what the greedy start and `_KeepBest` read."""
    return (
        data is not None and data.stream is None and data.weights is None and data.context is None
    )


class GreedyPreset(Preset):
    """A preset whose chain holds the blocks a greedy fit chose.

    Before the first fit the chain is empty (or holds `num_blocks` unfitted blocks) and
    the model is unbuilt: the fitted layers become the chain's layers, then the model is
    built. A refit of a built model (whose sub-layers Keras no longer lets change)
    writes the fitted weights into the existing blocks, and blocks beyond the new depth
    become identities (the same density as the shallower model)."""

    def _greedy(self, makers, x, validation_data, stopping, strategy=None):
        """The greedy loop under `stopping` on arrays (exact, in memory) or on streamed
        batches (sketches; arrays are one-batch sources there). `makers`: block makers
        that differ in their first block, chosen by `greedy.greedy_blocks`' lookahead in
        memory; a streamed fit takes the first."""
        train = self._greedy_source(x, "training data")
        val = (
            None
            if validation_data is None
            else self._greedy_source(validation_data, "validation_data")
        )
        if strategy is None and train.array is not None and (val is None or val.array is not None):
            return greedy_blocks(
                makers,
                train.array,
                None if val is None else val.array,
                stopping,
                self.compute_dtype,
            )
        reduce = None
        if strategy is not None:
            from tfflows.interop.tf_training import all_reduce

            reduce = all_reduce(strategy)
        return streamed.streamed_greedy_blocks(
            makers[0], train, val, stopping, self.compute_dtype, reduce=reduce
        )

    def _greedy_source(self, data, what):
        """A `Source` of rows x alone: arrays checked whole here, once (in their own float
        dtype), a stream batch by batch as the fit reads it."""
        if not is_stream(data):
            data = inputs.check_data(data, self._check_rows, None, what=what)
            if data.weights is not None or data.context is not None:
                raise ValueError(
                    f"{what}: the greedy fit takes the rows x alone (no sample weights, "
                    "no context)."
                )
            data = data.x
        return Source(data, self.event_shape[0], what)

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
                    f"This {type(self).__name__} was built with {len(current) // 2} blocks and "
                    f"the new fit chose {len(blocks)}: a built Keras model cannot grow. Fit a "
                    f"new {type(self).__name__}, or pass "
                    f"max_blocks={len(current) // 2}."
                )
            for old, new in zip(current, layers):
                if not old.built:
                    old.build((None,) + self.event_shape)
                old.set_weights(new.get_weights())
            for marginal in current[len(layers) :: 2]:
                marginal.set_identity()
            for rotation in current[len(layers) + 1 :: 2]:
                rotation.set_identity()
            return
        self.build((None,) + self.event_shape)

    @property
    def num_blocks(self):
        return self._arguments["num_blocks"]
