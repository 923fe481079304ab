"""TensorFlow Probability interop, both ways (TensorFlow backend only).

tfflows -> TFP
- `to_tfp_bijector(layer)` / `layer.bijector` / `flow.bijector`: a `tfp.bijectors.Bijector`
  with the layer's forward (data -> latent), inverse and log-det Jacobians. It composes
  with `tfb.Chain` (which applies its list in reverse, unlike `tfflows.Chain`), `tfb.Invert`
  and `tfd.TransformedDistribution`.
- `flow_distribution(flow)` / `flow.distribution`: `TransformedDistribution(base,
  Invert(flow.bijector))`, whose `log_prob` equals `flow.log_prob` and whose
  `sample(n, seed=(s, 0))` equals `flow.sample(n, seed=s)` for the tfflows bases.

TFP -> tfflows
- `TFPBijector(tfb_bijector)`: any TFP bijector as a tfflows layer (usable in `Chain`).
- `TFPDistribution(tfd_distribution)`: any TFP distribution as a saveable `Flow` base.

What survives `model.save` (both wrappers): the TFP object is stored in the Keras config
as its class name in `tfp.bijectors` / `tfp.distributions` and its constructor
`parameters`, recursively. Parameters may be numbers, strings, booleans, None, arrays or
constant tensors, nested TFP bijectors/distributions (`tfb.Chain`, `tfd.Independent`,
`tfd.MixtureSameFamily`, ...), lists of these, `tf.Variable`s and
`tfp.util.TransformedVariable`s. Variables become Keras weights of the wrapper: they are
trained by `Flow.fit`, saved with the weights, and restored by `load_model` in safe mode
(only classes found in `tfp.bijectors` / `tfp.distributions` are ever rebuilt). A TFP
object with any other kind of parameter (a Python function such as
`tfb.MaskedAutoregressiveFlow`'s `shift_and_log_scale_fn`, a tf_keras network) still
works in memory, but its variables are not Keras weights (not trained by `Flow.fit`) and
`get_config` / `model.save` raise a `TypeError` that names the parameter. A raw TFP
distribution passed as `Flow(base=...)` is not serializable at all: wrap it in
`TFPDistribution` to save the model.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfflows.bijectors.base import Bijector
from tfflows.interop.tfp_adapter import LayerBijector, to_tfp_bijector

tfb = tfp.bijectors
tfd = tfp.distributions


def base_distribution(flow):
    """The flow's base as a TFP distribution over the latent event shape."""
    base = flow.base
    if isinstance(base, tfd.Distribution):
        return base
    if hasattr(base, "to_tfp"):
        return base.to_tfp(flow.latent_shape, dtype=flow.compute_dtype)
    raise TypeError(f"The base {type(base).__name__} has no TFP equivalent (no `to_tfp` method).")


def flow_distribution(flow, context=None):
    """The flow's density as `TransformedDistribution(base, Invert(forward map))`; its
    `trainable_variables` are the flow's (as `tf.Variable`s)."""
    bijector = to_tfp_bijector(flow.transform, context, variables=flow.variables)
    return tfd.TransformedDistribution(base_distribution(flow), tfb.Invert(bijector))


# ----- serialization of TFP objects ------------------------------------------------------
_KIND = {"bijector": (tfb, tfb.Bijector), "distribution": (tfd, tfd.Distribution)}


def _encode(value, variables, where):
    """JSON-able description of a TFP constructor argument; variables are appended to
    `variables` (as (initial value, dtype)) and referenced by index."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tf.DType, np.dtype)) or (
        isinstance(value, type) and issubclass(value, np.generic)
    ):
        return {"__dtype__": tf.as_dtype(value).name}
    if isinstance(value, tf.TensorShape):
        return {"__shape__": value.as_list() if value.rank is not None else None}
    if isinstance(value, tfp.util.TransformedVariable):
        return {
            "__transformed_variable__": {
                "pretransformed": _encode(value.pretransformed_input, variables, where),
                "bijector": _encode(value.bijector, variables, where),
            }
        }
    if isinstance(value, tf.Variable) or isinstance(value, keras.Variable):
        array = keras.ops.convert_to_numpy(value)
        variables.append((array, str(array.dtype)))
        return {"__variable__": len(variables) - 1}
    if isinstance(value, (tfb.Bijector, tfd.Distribution)):
        return _encode_object(value, variables)
    if isinstance(value, (list, tuple)):
        return [_encode(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.ndarray, tf.Tensor)) and not isinstance(value, tf.Variable):
        array = np.asarray(value)
        if array.dtype.kind in "fiub":
            return {"__array__": array.tolist(), "dtype": str(array.dtype)}
    raise TypeError(
        f"Cannot save the TFP parameter {where} = {value!r} (type {type(value).__name__}): only "
        "numbers, strings, dtypes, shapes, arrays, constant tensors, tf.Variables, "
        "TransformedVariables and nested TFP bijectors/distributions can be saved. The object "
        "works in memory, but to save the model "
        "rebuild it from such parameters (or use tfflows' own layers)."
    )


def _encode_object(obj, variables):
    kind = "bijector" if isinstance(obj, tfb.Bijector) else "distribution"
    module, base_class = _KIND[kind]
    name = type(obj).__name__
    if getattr(module, name, None) is not type(obj):
        raise TypeError(
            f"Cannot save {name}: it is not a class of tfp.{kind}s, so it cannot be rebuilt "
            "safely from its name."
        )
    parameters = {k: _encode(v, variables, f"{name}.{k}") for k, v in obj.parameters.items()}
    return {"__tfp__": kind, "class_name": name, "parameters": parameters}


def _decode(spec, weights):
    if isinstance(spec, list):
        return [_decode(v, weights) for v in spec]
    if not isinstance(spec, dict):
        return spec
    if "__tfp__" in spec:
        module, base_class = _KIND[spec["__tfp__"]]
        cls = getattr(module, spec["class_name"], None)
        if not (isinstance(cls, type) and issubclass(cls, base_class)):
            raise ValueError(
                f"Unknown TFP {spec['__tfp__']} class {spec['class_name']!r} in the saved config."
            )
        return cls(**{k: _decode(v, weights) for k, v in spec["parameters"].items()})
    if "__variable__" in spec:
        return weights[spec["__variable__"]]
    if "__dtype__" in spec:
        return tf.as_dtype(spec["__dtype__"])
    if "__shape__" in spec:
        return tf.TensorShape(spec["__shape__"])
    if "__array__" in spec:
        return tf.constant(np.asarray(spec["__array__"], dtype=spec["dtype"]))
    if "__transformed_variable__" in spec:
        inner = spec["__transformed_variable__"]
        return _decode(inner["bijector"], weights).forward(
            _decode(inner["pretransformed"], weights)
        )
    raise ValueError(f"Unrecognized TFP parameter description {spec!r}.")


class _TFPObjectMixin:
    """Holds a TFP object as (spec, weights); rebuilds it from the current weight values
    inside each call, so gradients reach the weights and the object is saveable."""

    def _init_tfp(self, obj, spec):
        self._tfp_object = obj
        self._spec = None
        self._initial_values = []
        if spec is not None:
            self._spec, self._initial_values = (
                spec["spec"],
                [np.asarray(v, dtype=d) for v, d in spec["variables"]],
            )
        else:
            try:
                variables = []
                self._spec = _encode_object(obj, variables)
                self._initial_values = [np.asarray(v, dtype=d) for v, d in variables]
            except TypeError as error:
                self._unsaveable = str(error)

    def _create_tfp_weights(self):
        if hasattr(self, "_tfp_weights"):
            return
        self._tfp_weights = [
            self.add_weight(
                shape=v.shape,
                dtype=str(v.dtype),
                name=f"tfp_parameter_{i}",
                initializer=keras.initializers.Constant(v),
            )
            for i, v in enumerate(self._initial_values)
        ]

    def _current(self):
        """The TFP object with the current weight values (built once when constant)."""
        if self._spec is None:
            return self._tfp_object
        if not self._initial_values:
            if self._tfp_object is None:
                self._tfp_object = _decode(self._spec, [])
            return self._tfp_object
        if not hasattr(self, "_tfp_weights"):  # before build: the initial values
            return _decode(self._spec, [tf.constant(v) for v in self._initial_values])
        return _decode(self._spec, [tf.convert_to_tensor(w) for w in self._tfp_weights])

    def _tfp_config(self, what):
        if self._spec is None:
            raise TypeError(f"This {what} cannot be saved: {self._unsaveable}")
        values = [
            keras.ops.convert_to_numpy(w) for w in getattr(self, "_tfp_weights", [])
        ] or self._initial_values
        return {
            "spec": self._spec,
            "variables": [(np.asarray(v).tolist(), str(np.asarray(v).dtype)) for v in values],
        }


@keras.saving.register_keras_serializable(package="tfflows")
class TFPBijector(_TFPObjectMixin, Bijector):
    """A TFP bijector as a tfflows layer (e.g. inside a `tfflows.Chain`).

    forward:  y = b.forward(x),   log_det = b.forward_log_det_jacobian(x, event_ndims)
    inverse:  x = b.inverse(y),   log_det = b.inverse_log_det_jacobian(y, event_ndims)
    `event_ndims` defaults to all non-batch axes (so the log-det has the batch shape);
    it must be at least the bijector's `forward_min_event_ndims`. `context` is ignored.

    `tf.Variable` / `TransformedVariable` parameters become Keras weights of this layer
    (trained by `Flow.fit`, saved by `model.save`). See the module docstring for exactly
    which bijectors survive `model.save`; e.g. `tfb.Shift`, `tfb.Scale`, `tfb.SinhArcsinh`,
    `tfb.Sigmoid`, `tfb.Chain`/`tfb.Invert` of such do. Parameters must have this layer's
    dtype (float32 unless `dtype=` is given).

    Args:
        bijector: the `tfp.bijectors.Bijector`.
        event_ndims: its event rank (default: every non-batch axis).
        tfp_spec: the saved form of the bijector (set by `from_config`, not by users).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, bijector=None, event_ndims=None, tfp_spec=None, **kwargs):
        super().__init__(**kwargs)
        if bijector is None and tfp_spec is None:
            raise ValueError("TFPBijector needs a tfp.bijectors.Bijector.")
        if bijector is not None and not isinstance(bijector, tfb.Bijector):
            raise TypeError(
                f"TFPBijector wraps a tfp.bijectors.Bijector; got {type(bijector).__name__}."
            )
        self._init_tfp(bijector, tfp_spec)
        self._event_ndims_arg = None if event_ndims is None else int(event_ndims)
        if self._event_ndims_arg is not None:
            self.event_ndims = self._event_ndims_arg

    @property
    def tfp_bijector(self):
        """The wrapped TFP bijector, with the current weight values."""
        return self._current()

    def build(self, input_shape):
        if self._event_ndims_arg is None:
            self.event_ndims = len(input_shape) - 1
        minimum = self._current().forward_min_event_ndims
        if isinstance(minimum, int) and self.event_ndims < minimum:
            raise ValueError(
                f"event_ndims={self.event_ndims} is below the bijector's "
                f"forward_min_event_ndims={minimum}."
            )
        self._create_tfp_weights()

    def _forward_and_log_det(self, x, context=None, training=False):
        b = self._current()
        return b.forward(x), self._per_row(
            b.forward_log_det_jacobian(x, event_ndims=self.event_ndims), x
        )

    def _inverse_and_log_det(self, y, context=None, training=False):
        b = self._current()
        return b.inverse(y), self._per_row(
            b.inverse_log_det_jacobian(y, event_ndims=self.event_ndims), y
        )

    def _per_row(self, log_det, x):
        # Constant-Jacobian TFP bijectors (Shift, Scale) return one number, not one per row.
        return tf.cast(log_det, x.dtype) + self._zeros_log_det(x)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        return shape[:1] + tuple(self._current().forward_event_shape(shape[1:]).as_list())

    def inverse_output_shape(self, output_shape):
        shape = tuple(output_shape)
        return shape[:1] + tuple(self._current().inverse_event_shape(shape[1:]).as_list())

    def get_config(self):
        return {
            **super().get_config(),
            "event_ndims": self._event_ndims_arg,
            "tfp_spec": self._tfp_config("TFPBijector"),
        }


@keras.saving.register_keras_serializable(package="tfflows")
class TFPDistribution(_TFPObjectMixin, keras.layers.Layer):
    """Any TFP distribution as a saveable `Flow` base: `Flow(bijector, base=TFPDistribution(d))`.

    `d.event_shape` is the latent shape of the flow (a multivariate law such as
    `tfd.MixtureSameFamily` of `tfd.MultivariateNormalDiag`), or `d` is a scalar law, e.g.
    `tfd.StudentT(df=4, loc=0, scale=1)`, drawn independently for every latent entry (or
    one of batch shape = the latent shape; see `over`). `sample(n, seed=s)` with an integer
    seed is stateless with TFP seed `(s, 0)`, the same convention as `flow.sample` and the exported
    `sample` signature. Variables in `d` are weights of this layer (created at
    construction, since no input shape is needed), trained by `Flow.fit` and saved.

    Args:
        distribution: the `tfp.distributions.Distribution`.
        tfp_spec: the saved form of the distribution (set by `from_config`, not by users).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, distribution=None, tfp_spec=None, **kwargs):
        super().__init__(**kwargs)
        if distribution is None and tfp_spec is None:
            raise ValueError("TFPDistribution needs a tfp.distributions.Distribution.")
        if distribution is not None and not isinstance(distribution, tfd.Distribution):
            raise TypeError(
                "TFPDistribution wraps a tfp.distributions.Distribution; got "
                f"{type(distribution).__name__}."
            )
        self._init_tfp(distribution, tfp_spec)
        self._create_tfp_weights()
        self.built = True

    @property
    def distribution(self):
        """The wrapped TFP distribution, with the current weight values."""
        return self._current()

    def over(self, event_shape):
        """The distribution as a law over events of `event_shape`: itself when its event
        shape is that; a scalar law (event shape ()) of batch shape () drawn iid for every
        entry (`tfd.Sample`), or of batch shape `event_shape` made one event
        (`tfd.Independent`). Any other shape mismatch is an error naming both shapes."""
        distribution = self._current()
        event_shape = tuple(int(s) for s in event_shape)
        own, batch = distribution.event_shape, distribution.batch_shape
        if own.is_fully_defined() and tuple(own.as_list()) == event_shape:
            return distribution
        if own.rank == 0 and batch.is_fully_defined():
            if batch.rank == 0:
                return tfd.Sample(distribution, sample_shape=event_shape)
            if tuple(batch.as_list()) == event_shape:
                return tfd.Independent(distribution, reinterpreted_batch_ndims=len(event_shape))
        raise ValueError(
            f"The TFP base has event shape {own} and batch shape {batch}; the flow's latent events "
            f"have shape {event_shape}. Use a law with that event shape, a scalar law (drawn for "
            f"every entry), or a scalar law of batch shape {event_shape}."
        )

    def log_prob(self, z, event_ndims=None):
        """log p(z) per batch row, over events of z's trailing `event_ndims` axes
        (default: the wrapped law's own event)."""
        if event_ndims is None:
            return tf.cast(self._current().log_prob(z), z.dtype)
        event_shape = tuple(z.shape[len(z.shape) - event_ndims :])
        return tf.cast(self.over(event_shape).log_prob(z), z.dtype)

    def sample(self, n, event_shape=None, seed=None, dtype=None):
        """n samples of events of `event_shape` (default: the law's own), cast to `dtype`.
        `seed`: an integer (stateless TFP seed (s, 0), as `flow.sample` and the exported
        `sample` signature use), a `keras.random.SeedGenerator` (its next stateless seed)
        or None."""
        if isinstance(seed, (int, np.integer)):
            seed = tf.constant([int(seed), 0], tf.int32)
        elif isinstance(seed, keras.random.SeedGenerator):
            seed = tf.cast(seed.next(), tf.int32)
        distribution = self._current() if event_shape is None else self.over(event_shape)
        samples = distribution.sample(n, seed=seed)
        return samples if dtype is None else tf.cast(samples, dtype)

    def to_tfp(self, event_shape=None, dtype=None):
        return self._current() if event_shape is None else self.over(event_shape)

    def call(self, z):
        return self.log_prob(z)

    def get_config(self):
        return {**super().get_config(), "tfp_spec": self._tfp_config("TFPDistribution")}


__all__ = [
    "LayerBijector",
    "to_tfp_bijector",
    "flow_distribution",
    "base_distribution",
    "TFPBijector",
    "TFPDistribution",
]
