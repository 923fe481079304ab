"""TensorFlow-only pieces of `Flow.fit`: the input pipeline and tf.distribute helpers
(the one backend-specific part of the training path).

Keras's generic array adapter rebuilds a Python-side iterator every epoch, which
dominates the short epochs of tabular flows; a `tf.data` pipeline over the same in-memory
arrays is much cheaper. The pipeline runs in the training thread: no prefetch thread, a
private pool of one thread and no autotuning. Slicing an in-memory array needs no
parallelism, and on a busy machine every extra thread that must be scheduled stalls the
step (BENCHMARKS.md, "fit input").
"""

import tensorflow as tf


def array_dataset(inputs, batch_size, shuffle, seed=None):
    """Batches of an in-memory array, of a dict {"x": ..., "context": ...} of arrays, or
    of a tuple of such (e.g. (x, sample_weight))."""
    dataset = tf.data.Dataset.from_tensor_slices(inputs)
    n = int(dataset.cardinality())
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return dataset.batch(batch_size).with_options(options)


def is_dataset(x):
    return isinstance(x, tf.data.Dataset)


def under_strategy(model):
    """Whether `model` trains under a tf.distribute strategy (other than the default)."""
    return tf.distribute.has_strategy() or model.distribute_strategy is not tf.distribute.get_strategy()


def scale_for_replicas(loss):
    """Under tf.distribute each replica's loss is divided by the replica count, so that the
    summed gradients are those of the global mean (as Keras does for compiled losses)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / replicas
