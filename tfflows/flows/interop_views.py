"""The TensorFlow-side views of a `Flow`: SavedModel export and the flow as a TFP bijector
and distribution. A mixin of `Flow`; the work is done in `tfflows.interop`."""


class InteropViews:
    """`export`, `bijector` and `distribution` of a `Flow` (TensorFlow and TFP only)."""

    def export(
        self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs
    ):
        """Write a SavedModel for TF Serving with the signatures serving_default,
        log_prob, encode, decode and sample (see `tfflows.interop.export`). Any other
        `format` (e.g. "onnx", "openvino") or an explicit `input_signature` is Keras's own
        `Model.export` of `call` (log p(x)), with its arguments passed through."""
        if format == "tf_saved_model" and input_signature is None and not kwargs:
            from tfflows.interop.export import export_saved_model

            return export_saved_model(self, filepath, verbose=bool(verbose))
        self._ensure_built()
        return super().export(
            filepath,
            format=format,
            verbose=True if verbose is None else verbose,
            input_signature=input_signature,
            **kwargs,
        )

    @property
    def bijector(self):
        """The flow's map data -> latent as a `tfp.bijectors.Bijector`."""
        return self.transform.bijector

    @property
    def distribution(self):
        """The flow as a `tfd.TransformedDistribution` (base pushed through the inverse)."""
        from tfflows.interop.tfp import flow_distribution

        return flow_distribution(self)
