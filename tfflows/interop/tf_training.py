"""TensorFlow-only pieces of `Flow.fit`: the input pipeline, tf.distribute helpers and
`tf.train.Checkpoint` support (the one backend-specific part of the training path).

Keras's generic array adapter rebuilds a Python-side iterator every epoch, which
dominates the short epochs of tabular flows; a `tf.data` pipeline over the same in-memory
arrays is much cheaper. The pipeline runs in the training thread: no prefetch thread, a
private pool of one thread and no autotuning. Slicing an in-memory array needs no
parallelism, and on a busy machine every extra thread that must be scheduled stalls the
step (BENCHMARKS.md, "fit input").

Shuffling is a stateless permutation of the rows keyed on (seed, epoch), the epoch read
from a variable that `EpochCounter` sets at the start of every epoch: epoch k sees the
same order in a run that was interrupted and resumed (`keras.callbacks.BackupAndRestore`)
as in one that was not.
"""

import keras
import tensorflow as tf


def array_dataset(inputs, batch_size, shuffle=False, sample_weight=None, seed=0, epoch=None):
    """Batches of in-memory inputs (an array or a dict {"x", "context"} of arrays), as
    Keras reads them: x, or (x, w, w) with sample weights w (Keras's (x, y, sample_weight);
    flows ignore y). With `shuffle`, `epoch` (a variable) keys the permutation."""
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    n = int(tf.nest.flatten(inputs)[0].shape[0])
    weights = None if sample_weight is None else tf.convert_to_tensor(sample_weight)

    def rows(index):
        x = tf.nest.map_structure(lambda a: tf.gather(a, index), inputs)
        if weights is None:
            return x
        w = tf.gather(weights, index)
        return x, w, w

    if shuffle:
        def order(_):
            key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch.read_value(), tf.int64)])
            return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(tf.range(n), key))

        indices = tf.data.Dataset.range(1).flat_map(order)
    else:
        indices = tf.data.Dataset.range(n)
    batches = -(-n // int(batch_size))
    # the shuffled order's cardinality is unknown to tf.data; Keras's progress bar needs it
    dataset = indices.batch(batch_size).map(rows).apply(tf.data.experimental.assert_cardinality(batches))
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return dataset.with_options(options)


class EpochCounter(keras.callbacks.Callback):
    """Sets `variable` to the index of the epoch about to run (keys the shuffle order)."""

    def __init__(self):
        super().__init__()
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


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


class CheckpointVariables(tf.Module):
    """The model's variables, in `model.variables` order, as a `tf.Module` attribute of
    the model, so that `tf.train.Checkpoint(model=flow)` saves and restores them (Keras 3
    layers keep sub-layers in lists, which TensorFlow's checkpoint graph does not follow)."""

    def __init__(self, model):
        super().__init__(name="checkpoint_variables")
        self.model_variables = [variable.value for variable in model.variables]
