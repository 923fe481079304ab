"""The one backend choice of the training path (see `tfflows.interop.feed`)."""

import functools

import keras

from tfflows.interop.feed import KerasFeeder


def feeder():
    """The feeder of the current Keras backend: a `tfflows.interop.feed.KerasFeeder`."""
    return _feeder(keras.backend.backend())


@functools.cache
def _feeder(backend):
    if backend == "tensorflow":
        from tfflows.interop.tf_training import TensorFlowFeeder

        return TensorFlowFeeder()
    return KerasFeeder()
