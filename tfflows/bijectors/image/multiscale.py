"""`MultiScale`: one scale of the RealNVP/Glow multi-scale architecture."""

import keras
from keras import ops

from tfflows.bijectors.image.layout import ImageLayer, squeeze, unsqueeze


@keras.saving.register_keras_serializable(package="tfflows")
class MultiScale(ImageLayer):
    """One scale of the multi-scale architecture (RealNVP sec. 3.6; Glow sec. 3).

    forward:  h = squeeze(x)  (H/2, W/2, 4C);  h = transform(h);
              split channels h -> [z_out (first 2C), h_kept (last 2C)];
              h_kept = inner(h_kept)  (the coarser scales; may itself end in a MultiScale);
              y = unsqueeze(concat[z_out, h_kept])
    inverse:  the same steps backwards.
    log_det:  transform log_det + inner log_det.

    Half of the channels are factored out at each scale (only the kept half goes on to
    `inner`), yet y has the shape of x, so x and z are the same size and the layer
    composes like any other; z_out and the inner latents are interleaved by the final
    unsqueeze, which does not matter for a factorized base distribution.

    Args:
        transform: the `tfflows.Bijector` applied to the squeezed image; it must keep the
            shape (H/2, W/2, 4C).
        inner: the bijector of the coarser scales, applied to the kept half (2C channels),
            or None (the last scale).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    _even = True

    def __init__(self, transform, inner=None, **kwargs):
        super().__init__(**kwargs)
        self.transform = transform
        self.inner = inner

    def build(self, input_shape):
        super().build(input_shape)
        h, w, c = self._hwc
        squeezed = (None, h // 2, w // 2, 4 * c)
        if not self.transform.built:
            self.transform.build(squeezed)
        if tuple(self.transform.compute_output_shape(squeezed)) != squeezed:
            raise ValueError("MultiScale's transform must keep the squeezed shape (H/2, W/2, 4C) = "
                             f"{squeezed[1:]}.")
        self._factored = 2 * c
        if self.inner is not None and not self.inner.built:
            self.inner.build((None, h // 2, w // 2, 2 * c))

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        h = squeeze(x)
        self.transform.initialize_from_data(h, context)
        if self.inner is not None:
            h = self.transform.forward(h, context)
            self.inner.initialize_from_data(h[..., self._factored:], context)

    def _forward_and_log_det(self, x, context=None, training=False):
        self._check_input(x)
        h, log_det = self.transform.forward_and_log_det(squeeze(x), context, training=training)
        if self.inner is not None:
            kept, inner_log_det = self.inner.forward_and_log_det(h[..., self._factored:], context,
                                                                 training=training)
            h = ops.concatenate([h[..., :self._factored], kept], axis=-1)
            log_det = log_det + inner_log_det
        return unsqueeze(h), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        self._check_input(y)
        h, log_det = squeeze(y), 0.0
        if self.inner is not None:
            kept, log_det = self.inner.inverse_and_log_det(h[..., self._factored:], context,
                                                           training=training)
            h = ops.concatenate([h[..., :self._factored], kept], axis=-1)
        h, outer_log_det = self.transform.inverse_and_log_det(h, context, training=training)
        return unsqueeze(h), log_det + outer_log_det

    def get_config(self):
        config = super().get_config()
        config["transform"] = keras.saving.serialize_keras_object(self.transform)
        config["inner"] = (None if self.inner is None
                           else keras.saving.serialize_keras_object(self.inner))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transform"] = keras.saving.deserialize_keras_object(config["transform"])
        if config.get("inner") is not None:
            config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)
