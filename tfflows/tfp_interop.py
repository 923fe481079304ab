"""TensorFlow Probability interop (TensorFlow backend only).

- `to_tfp_bijector(layer)`: a tfflows layer as a `tfp.bijectors.Bijector` with the same
  forward (data -> latent), inverse and log-det Jacobians.
- `flow_distribution(flow)`: a `tfd.TransformedDistribution` equal to the flow's density.
"""

import tensorflow_probability as tfp

tfb = tfp.bijectors
tfd = tfp.distributions


class LayerBijector(tfb.Bijector):
    """Adapter: TFP's Bijector API over a `tfflows.Bijector` layer.

    TFP's `forward` is the layer's forward; `tfb.Chain([a, b])` applies b first, unlike
    `tfflows.Chain`. The layer's variables are tracked, so gradients flow through it.
    """

    def __init__(self, layer, context=None, name=None):
        self.layer = layer
        self.context = context
        super().__init__(
            forward_min_event_ndims=layer.event_ndims,
            inverse_min_event_ndims=layer.event_ndims,
            is_constant_jacobian=False,
            validate_args=False,
            name=name or f"tfflows_{layer.name}",
        )

    def _forward(self, x):
        return self.layer.forward(x, self.context)

    def _inverse(self, y):
        return self.layer.inverse(y, self.context)

    def _forward_log_det_jacobian(self, x):
        return self.layer.forward_log_det_jacobian(x, self.context)

    def _inverse_log_det_jacobian(self, y):
        return self.layer.inverse_log_det_jacobian(y, self.context)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    @property
    def _is_permutation(self):
        return False


def to_tfp_bijector(layer, context=None):
    return LayerBijector(layer, context=context)


def flow_distribution(flow, context=None):
    """The flow's density as `TransformedDistribution(base, Invert(forward map))`."""
    flow._ensure_built()
    base = flow.base
    if not isinstance(base, tfd.Distribution):
        base = base.to_tfp(flow.event_shape, dtype=flow.compute_dtype)
    return tfd.TransformedDistribution(base, tfb.Invert(to_tfp_bijector(flow.transform, context)))


__all__ = ["LayerBijector", "to_tfp_bijector", "flow_distribution"]
