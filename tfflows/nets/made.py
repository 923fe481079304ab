"""MADE: masked autoencoder for distribution estimation (Germain et al. 2015, arXiv:1502.03509).

A stack of dense layers whose kernels are multiplied by fixed binary masks built from
*degrees*: input feature i gets the degree d(i) in {1..D} given by its position in the
autoregressive order; each hidden unit gets a degree; a connection exists only from a
unit of degree a to a hidden unit of degree b >= a, and to an output of feature i only
from units of degree < d(i). Hence output block i depends only on the inputs that
precede i in the order (never on x_i itself), which is what an autoregressive flow needs.

A context vector (conditional flows) enters the first layer with degree 0, so it reaches
every output; when a context is present some hidden units get degree 0 as well (they
see the context only), which lets the parameters of the *first* feature in the order
depend on the context too.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import draw_seed
from tfflows.nets import dense_stack


def input_order(order, features, seed=None):
    """The autoregressive order as a permutation: `perm[k]` is the feature generated k-th.

    order: "given" (0, 1, ..., D-1), "reversed" (D-1, ..., 0), "random" (seeded
    permutation) or an explicit permutation of range(D).
    """
    if isinstance(order, str):
        if order == "given":
            return np.arange(features)
        if order == "reversed":
            return np.arange(features)[::-1].copy()
        if order == "random":
            return np.random.default_rng(seed).permutation(features)
        raise ValueError(f"Unknown order {order!r}; "
                         "use 'given', 'reversed', 'random' or a permutation.")
    perm = np.asarray(order, dtype="int64").reshape(-1)
    if sorted(perm.tolist()) != list(range(features)):
        raise ValueError(f"order must be a permutation of range({features}); got {list(perm)}.")
    return perm


def made_masks(input_degrees, hidden_units, params_per_feature, context_features=0):
    """Binary masks (fan_in, fan_out) of every layer, first to last, as float arrays.

    Rows of the first mask are the D inputs followed by the context inputs (degree 0).
    Hidden degrees cycle over 1..D-1 (0..D-1 with a context); the output columns are
    laid out parameter-major: column p * D + i is parameter p of feature i.
    """
    features = len(input_degrees)
    low = 0 if context_features else 1
    high = max(features - 1, low)
    prev = np.concatenate([np.asarray(input_degrees), np.zeros(context_features, dtype="int64")])
    masks = []
    for units in hidden_units:
        degrees = low + np.arange(units) % (high - low + 1)
        masks.append((degrees[None, :] >= prev[:, None]).astype("float32"))
        prev = degrees
    out_degrees = np.tile(np.asarray(input_degrees), params_per_feature)
    masks.append((out_degrees[None, :] > prev[:, None]).astype("float32"))
    return masks


@keras.saving.register_keras_serializable(package="tfflows")
class MADE(keras.layers.Layer):
    """Masked dense network: x (batch, D) [+ context (batch, C)] -> (batch, P, D) parameters.

    out[..., :, i] depends only on x_j with order position(j) < position(i) (and on the
    context). One pass computes the parameters of all D features at once. The layout is
    parameter-major, (P, D): each parameter is a contiguous (batch, D) block, which the
    transformers read without strided slices. All kernels and biases are one flat
    variable, `parameters`; `kernels_and_biases()` returns them masked and reshaped.

    Args:
        params_per_feature: P, number of outputs per input feature.
        hidden_units: sizes of the masked hidden layers.
        order: "given", "reversed", "random" (seeded) or an explicit permutation; see
            `input_order`. A random order draws `seed` at construction if none is given
            and keeps it in the config, so a saved layer rebuilds the same masks.
        seed: integer seed of the "random" order (None: drawn at construction when the
            order is "random"); unused by the other orders.
        activation: hidden activation.
        context_features: size of the optional conditioning input.
        zero_init: start the output layer at zero (the flow layer starts at the identity).
            Hidden kernels and biases start uniform in +-1/sqrt(fan_in) (fan_in before
            masking; see `tfflows.nets.dense_stack`).
    """

    def __init__(self, params_per_feature=2, hidden_units=(64, 64), order="given", seed=None,
                 activation="relu", context_features=0, zero_init=True, **kwargs):
        super().__init__(**kwargs)
        self.params_per_feature = int(params_per_feature)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.order = order if isinstance(order, str) else [int(i) for i in np.ravel(order)]
        if seed is None and isinstance(order, str) and order == "random":
            seed = draw_seed()
        self.seed = None if seed is None else int(seed)
        self.activation = activation
        self._activation = keras.activations.get(activation)
        self.context_features = int(context_features)
        self.zero_init = bool(zero_init)

    def build(self, input_shape):
        features = int(input_shape[-1])
        self.features = features
        self.permutation = input_order(self.order, features, self.seed)
        degrees = np.empty(features, dtype="int64")
        degrees[self.permutation] = np.arange(1, features + 1)
        self.input_degrees = degrees
        self._masks = made_masks(degrees, self.hidden_units, self.params_per_feature,
                                 self.context_features)
        # All kernels and biases live in ONE flat variable (see `tfflows.nets.dense_stack`):
        # one optimizer update per MADE instead of two per layer.
        self._shapes = [mask.shape for mask in self._masks]
        self._flat_mask = np.concatenate(
            [part for mask in self._masks for part in (mask.ravel(), np.ones(mask.shape[1]))]
        ).astype("float32")
        self.parameters = dense_stack.add_parameters(self, self._shapes, self.zero_init)

    def kernels_and_biases(self):
        """The masked kernels (fan_in, fan_out) and the biases of every layer, first to last."""
        flat = self.parameters * ops.cast(self._flat_mask, self.parameters.dtype)
        return dense_stack.kernels_and_biases(flat, self._shapes)

    def call(self, x, context=None):
        kernels, biases = self.kernels_and_biases()
        h = dense_stack.apply(dense_stack.with_context(self, x, context), kernels, biases,
                              self._activation)
        return ops.reshape(h, tuple(ops.shape(h)[:-1]) + (self.params_per_feature, self.features))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.params_per_feature, int(input_shape[-1]))

    def get_config(self):
        return {
            **super().get_config(),
            "params_per_feature": self.params_per_feature,
            "hidden_units": list(self.hidden_units),
            "order": self.order,
            "seed": self.seed,
            "activation": self.activation,
            "context_features": self.context_features,
            "zero_init": self.zero_init,
        }
