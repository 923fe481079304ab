"""The bijector contract (`base`), composition (`chain`), the shared elementwise
transformers and spline, and every layer family: elementwise, linear, coupling,
autoregressive, preprocessing and image layers."""
