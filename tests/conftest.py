"""Test-session setup shared by every test file."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

if keras.backend.backend() == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)  # the property suite runs in float64
