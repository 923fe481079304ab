"""TensorFlow-only input pipeline for `Flow.fit` (the one backend-specific piece of the
training path).

Keras's generic array adapter rebuilds a Python-side iterator every epoch (tens of
milliseconds), which dominates the short epochs of tabular flows; a `tf.data` pipeline
over the same in-memory arrays costs about a millisecond. See BENCHMARKS.md.
"""

import tensorflow as tf


def array_dataset(inputs, batch_size, shuffle):
    """Batches of an in-memory array, or of a dict {"x": ..., "context": ...} of arrays."""
    dataset = tf.data.Dataset.from_tensor_slices(inputs)
    n = len(inputs["x"]) if isinstance(inputs, dict) else len(inputs)
    if shuffle:
        dataset = dataset.shuffle(n, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
