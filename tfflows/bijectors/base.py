"""The one bijector contract: `Bijector`, the base class of every tfflows layer.

A `Bijector` is a Keras layer that maps x to y invertibly and reports the log
absolute determinant of the Jacobian, summed over the event dimensions, so that
`log_det` has the batch shape.

Subclasses write two methods (TFP's convention of a private implementation behind
a public entry point, so that the public one can build the layer first):

    _forward_and_log_det(x, context=None, training=False) -> (y, log|det dy/dx|)
    _inverse_and_log_det(y, context=None, training=False) -> (x, log|det dx/dy|)

Everything else (`forward`, `inverse`, `forward_log_det_jacobian`,
`inverse_log_det_jacobian`, `call`, the TFP adapter `.bijector`) derives from them.
This module imports nothing of the package; composition (`Chain`, `Invert`) is in
`tfflows.bijectors.chain`.
"""

import keras
from keras import ops


def precision_policies(dtype=None):
    """(the policy of a flow's own math, the policy of its conditioner networks) for a
    layer or flow constructed with `dtype` (None: Keras's global policy).

    Under a mixed policy ("mixed_float16", "mixed_bfloat16") the conditioner networks
    compute in the low precision (their matmuls are the cost), while the flow's own math
    (transformers, log-determinants, base log-probabilities, the loss) runs in the variable
    dtype, float32, where exp and log of log-scales and sums of many log-derivatives stay
    accurate and finite. Otherwise both are the given (or global) policy, e.g. float64."""
    policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
    if policy.compute_dtype != policy.variable_dtype:
        return keras.dtype_policies.get(policy.variable_dtype), policy
    return policy, policy


@keras.saving.register_keras_serializable(package="tfflows")
class Bijector(keras.layers.Layer):
    """Base class of every tfflows layer: an invertible map with a tractable log-det.

    forward:  y = f(x),       log_det = log|det df/dx|      (summed over the event)
    inverse:  x = f^-1(y),    log_det = log|det df^-1/dy| = -forward log_det

    `event_ndims` is the number of trailing axes that form one event (1 for
    tabular data, 3 for images shaped (H, W, C)). `context` is an optional
    conditioning tensor with the same leading (batch) axis, threaded everywhere.

    Args:
        **kwargs: of `keras.layers.Layer` (name, dtype). A mixed `dtype` policy runs the
            conditioner networks in low precision and the flow's own math in float32
            (`precision_policies`).
    """

    event_ndims = 1

    def __init__(self, **kwargs):
        policy = precision_policies(kwargs.get("dtype"))
        kwargs["dtype"] = policy[0]
        super().__init__(**kwargs)
        self.network_dtype_policy = policy[1]

    # ----- what a subclass writes ---------------------------------------------------
    def _forward_and_log_det(self, x, context=None, training=False):
        raise NotImplementedError(f"{type(self).__name__} has no forward.")

    def _inverse_and_log_det(self, y, context=None, training=False):
        raise NotImplementedError(f"{type(self).__name__} has no inverse.")

    def initialize_from_data(self, x, context=None):
        """Data-dependent initialization on a first batch (e.g. ActNorm); no-op here.

        Called eagerly, outside any compiled step, by `Flow.fit` before training.
        """

    # ----- derived API --------------------------------------------------------------
    def _ensure_built(self, x):
        if not self.built:
            self.build(tuple(x.shape))

    def _cast(self, x):
        return ops.cast(x, self.compute_dtype)

    def forward_and_log_det(self, x, context=None, training=False):
        x = self._cast(x)
        self._ensure_built(x)
        if x.shape[0] == 0:
            return self._empty_result(x, self.compute_output_shape(x.shape))
        return self._forward_and_log_det(x, context=context, training=training)

    def inverse_and_log_det(self, y, context=None, training=False):
        y = self._cast(y)
        self._ensure_built(y)
        if y.shape[0] == 0:
            return self._empty_result(y, self.inverse_output_shape(y.shape))
        return self._inverse_and_log_det(y, context=context, training=training)

    def _empty_result(self, x, out_shape):
        """An empty batch maps to an empty batch (some kernels, e.g. convolutions, refuse it)."""
        batch_ndims = len(x.shape) - self.event_ndims
        return (ops.zeros((0,) + tuple(out_shape[1:]), x.dtype),
                ops.zeros((0,) * batch_ndims, x.dtype))

    def forward(self, x, context=None):
        return self.forward_and_log_det(x, context)[0]

    def inverse(self, y, context=None):
        return self.inverse_and_log_det(y, context)[0]

    def forward_log_det_jacobian(self, x, context=None):
        return self.forward_and_log_det(x, context)[1]

    def inverse_log_det_jacobian(self, y, context=None):
        return self.inverse_and_log_det(y, context)[1]

    def call(self, x, context=None, training=False):
        return self._forward_and_log_det(x, context=context, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def inverse_output_shape(self, output_shape):
        return tuple(output_shape)

    def _batch_shape(self, x):
        return ops.shape(x)[: len(x.shape) - self.event_ndims]

    def _zeros_log_det(self, x):
        """A zero log-det with the batch shape of `x` (for volume-preserving maps)."""
        return ops.zeros(self._batch_shape(x), dtype=x.dtype)

    @property
    def bijector(self):
        """This layer as a `tfp.bijectors.Bijector` (TensorFlow backend only).

        The adapter module is a leaf that imports nothing of tfflows, loaded here on
        first use so that the contract itself needs neither TensorFlow nor TFP."""
        from tfflows.interop.tfp_adapter import to_tfp_bijector

        return to_tfp_bijector(self)


class FittedOnce:
    """Mixin for layers fitted from data without gradients (`fit_from_data(x)`) that keep
    an `initialized` flag weight: `initialize_from_data` fits them once, so `Flow.fit`
    does not refit a loaded or already fitted layer. Put it before the Bijector base."""

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        if float(ops.convert_to_numpy(self.initialized)) > 0:
            return
        self.fit_from_data(x)
