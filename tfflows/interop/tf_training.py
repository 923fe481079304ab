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

from tfflows._math import draw_seed
from tfflows.interop.feed import Feed, KerasFeeder


def array_dataset(
    inputs, batch_size, shuffle=False, sample_weight=None, seed=0, epoch=None, fill_last=False
):
    """Batches of in-memory inputs (an array or a dict {"x", "context"} of arrays), as
    Keras reads them: x, or (x, w, w) with sample weights w (Keras's (x, y, sample_weight);
    flows ignore y). With `shuffle`, `epoch` (a variable) keys the permutation.

    Every batch has the same, static number of rows wherever that costs nothing (one
    batch, or `batch_size` dividing the rows), and with `fill_last` (training) always:
    the last batch of an epoch is filled up with the first rows of the same epoch's order,
    so an epoch still reads every row, in ceil(n / batch_size) steps, and a few rows,
    different ones every epoch when shuffled, twice. A static batch dimension makes the
    gradient graph's broadcasting static: tracing the train step of the CLI's NSF took
    about 4 s less, and each step was faster: `tfflows fit` 25.5 -> 19.9 s of fit
    (benchmarks/results/first_run_2026-12-07c.md)."""
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    n = int(tf.nest.flatten(inputs)[0].shape[0])
    batch_size = min(int(batch_size), n)
    batches = -(-n // batch_size)
    static = fill_last or n % batch_size == 0
    filled = batches * batch_size if fill_last else n
    weights = None if sample_weight is None else tf.convert_to_tensor(sample_weight)

    def rows(index):
        x = tf.nest.map_structure(lambda a: tf.gather(a, index), inputs)
        if weights is None:
            return x
        w = tf.gather(weights, index)
        return x, w, w

    def order(_):
        rows_in_order = tf.range(n, dtype=tf.int64)
        if shuffle:
            key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch.read_value(), tf.int64)])
            rows_in_order = tf.random.experimental.stateless_shuffle(rows_in_order, key)
        if filled > n:
            rows_in_order = tf.concat([rows_in_order, rows_in_order[: filled - n]], axis=0)
        return tf.data.Dataset.from_tensor_slices(rows_in_order)

    indices = tf.data.Dataset.range(1).flat_map(order)
    # the order's cardinality is unknown to tf.data; Keras's progress bar needs it
    dataset = (
        indices.batch(batch_size, drop_remainder=static)
        .map(rows)
        .apply(tf.data.experimental.assert_cardinality(batches))
    )
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


def under_strategy(model):
    """Whether `model` trains under a tf.distribute strategy (other than the default)."""
    return (
        tf.distribute.has_strategy()
        or model.distribute_strategy is not tf.distribute.get_strategy()
    )


def mirrored(model):
    """Whether `model` is under a MirroredStrategy or MultiWorkerMirroredStrategy."""
    mirrored_strategies = (
        tf.distribute.MirroredStrategy,
        tf.distribute.MultiWorkerMirroredStrategy,
    )
    return isinstance(model.distribute_strategy, mirrored_strategies)


def multi_worker(model):
    """Whether `model` is under a strategy with replicas on more than one worker."""
    strategy = model.distribute_strategy
    return under_strategy(model) and strategy.num_replicas_in_sync > len(
        strategy.extended.worker_devices
    )


def runs_own_loop(model):
    """Whether `fit`/`evaluate` of `model` run `step_function`'s loop instead of Keras's:
    under a mirrored strategy, unless XLA-compiled (other strategies, e.g. TPU, and
    `jit_compile=True` keep Keras's)."""
    return mirrored(model) and under_strategy(model) and not model.jit_compile


def step_function(model, step):
    """Keras's train (or test) function for `model` under a mirrored strategy: up to
    `model.steps_per_execution` calls of `step` per execution, in one `tf.function`, each
    step traced inline, and the logs read once after the loop as the model's metrics
    (summed over replicas and workers by the metric variables' on-read aggregation).

    Keras's own function fails under these strategies (Keras 3.15, TF 2.21): its loop for
    steps_per_execution > 1 calls the step as a nested `tf.function` inside a `tf.cond`,
    and a nested function holding cross-replica collectives fails there under
    MirroredStrategy ("You must feed a value for placeholder tensor"); and under
    MultiWorkerMirroredStrategy it reduces each scalar log with
    `strategy.reduce("MEAN", value, axis=0)`, which fails ("Invalid reduction dimension 0
    for input with 0 dimensions", tensorflow/tensorflow#72388)."""
    strategy, steps = model.distribute_strategy, int(model.steps_per_execution)

    def run(iterator):
        def body(executed, exhausted):
            optional = iterator.get_next_as_optional()  # has_value agrees on every worker

            def one_step():
                strategy.run(step, args=(optional.get_value(),))
                return tf.constant(1)

            has_value = optional.has_value()
            return executed + tf.cond(has_value, one_step, lambda: tf.constant(0)), tf.logical_not(
                has_value
            )

        def more(executed, exhausted):
            return tf.logical_and(executed < steps, tf.logical_not(exhausted))

        executed, _ = tf.while_loop(more, body, (tf.constant(0), tf.constant(False)))
        return executed, model.get_metrics_result()

    if not model.run_eagerly:
        run = tf.function(run, reduce_retracing=True)

    def function(iterator):
        executed, logs = run(iterator)
        if int(executed) == 0:
            raise StopIteration
        return logs

    return function


def replica_loss(log_p, extra=None):
    """The mean negative log-likelihood -mean(log_p) (plus `extra`, regularization), as
    each replica's share under tf.distribute, so that the gradients summed over the
    replicas are those of the global batch's mean, exactly, however the batch is split:
    the replica's sum over its rows divided by the global batch's row count (one scalar
    all-reduce per step). Its value is the replica's own mean divided by the replica
    count (Keras's convention, which its loss tracker undoes: the reported loss is then
    the global mean as well); a replica given no rows (a last batch smaller than the
    replica count) contributes 0, never 0 / 0."""
    context = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1 or context is None:  # no strategy, or a symbolic call outside the replicas
        loss = -tf.reduce_mean(log_p)
        return loss if extra is None else loss + extra
    rows = tf.cast(tf.shape(log_p)[0], log_p.dtype)
    total = -tf.reduce_sum(log_p)
    share = total / tf.stop_gradient(context.all_reduce(tf.distribute.ReduceOp.SUM, rows))
    loss = share + tf.stop_gradient(tf.math.divide_no_nan(total, rows) / replicas - share)
    return loss if extra is None else loss + extra / replicas


class CheckpointVariables(tf.Module):
    """The model's variables, in `model.variables` order, as a `tf.Module` attribute of
    the model, so that `tf.train.Checkpoint(model=flow)` saves and restores them (Keras 3
    layers keep sub-layers in lists, which TensorFlow's checkpoint graph does not follow).

    Args:
        model: the built model whose variables to hold.
    """

    def __init__(self, model):
        super().__init__(name="checkpoint_variables")
        self.model_variables = [variable.value for variable in model.variables]


def all_reduce(strategy):
    """A `reduce(arrays, how)` for the streamed greedy fit: each named NumPy array summed
    ("sum"), minimized ("min"), maximized ("max") over the workers of `strategy`, or
    taken from the first worker ("first"; same shape on every worker), so every worker
    fits the same blocks from every worker's rows. Each worker counts once, however many
    local replicas it has."""
    import numpy as np

    local = max(1, len(strategy.extended.worker_devices))

    def reduce_one(value, how):
        context = tf.distribute.get_replica_context()
        if how == "sum":
            return context.all_reduce(tf.distribute.ReduceOp.SUM, value) / local
        gathered = context.all_gather(
            value[None], axis=0
        )  # (replicas, ...): ReduceOp has no MIN/MAX
        if how == "first":
            return gathered[0]
        return tf.reduce_min(gathered, axis=0) if how == "min" else tf.reduce_max(gathered, axis=0)

    def reduce(arrays, how):
        names = sorted(arrays)
        values = [tf.constant(np.asarray(arrays[name], dtype="float64")) for name in names]
        results = strategy.run(lambda: [reduce_one(v, how[n]) for n, v in zip(names, values)])
        return {
            name: np.asarray(strategy.experimental_local_results(value)[0])
            for name, value in zip(names, results)
        }

    return reduce


class TensorFlowFeeder(KerasFeeder):
    """The training path on TensorFlow (see `tfflows.interop.feed.KerasFeeder`): checked
    arrays through `array_dataset`, variables under the model's strategy, each
    replica's share of the loss, and tfflows's loop under mirrored strategies."""

    def scope(self, model):
        return model.distribute_strategy.scope()

    def on_build(self, model):
        model.checkpoint_variables = CheckpointVariables(model)

    def loss(self, log_p, extra=None):
        return replica_loss(log_p, extra)

    def refuse(self, model, data, what):
        if (data.weights is not None or data.context is not None) and multi_worker(model):
            raise ValueError(
                f"{what}: under MultiWorkerMirroredStrategy Keras (3.15) cannot feed "
                "batches of several tensors (sample weights or a context) to "
                "fit/evaluate (keras-team/keras#20329); train on x alone there, or "
                "use MirroredStrategy."
            )

    def feed(self, data, batch_size, shuffle, callbacks=None, training=False):
        """A single-threaded `tf.data` pipeline; with `shuffle` (and `callbacks` to join),
        an `EpochCounter` keys the order on the epoch; `training` fills the last batch
        (`array_dataset`)."""
        counter = None
        if shuffle and callbacks is not None:
            counter = EpochCounter()
            callbacks.append(counter)
        dataset = array_dataset(
            data.inputs,
            batch_size or 32,
            shuffle=counter is not None,
            sample_weight=data.weights,
            seed=draw_seed(),
            epoch=None if counter is None else counter.variable,
            fill_last=training,
        )
        return Feed(dataset)

    def multi_step_supported(self, model, compile_kwargs):
        """Everywhere but under a strategy whose loop stays Keras's (TPU, or an explicit
        jit_compile=True), which fails with more than one step per execution."""
        return not under_strategy(model) or (
            mirrored(model) and compile_kwargs.get("jit_compile") is not True
        )

    def own_step_function(self, model, kind, force=False):
        if not runs_own_loop(model):
            return False
        attribute = f"{kind}_function"
        if getattr(model, attribute) is None or force:
            setattr(model, attribute, step_function(model, getattr(model, f"{kind}_step")))
        return True

    def snapshot_function(self, model):
        """One `tf.function` call: a NumPy snapshot every epoch cost about 1 ms per step of
        a short tabular epoch (NSF on breast_cancer, six steps per epoch). TensorFlow
        variables are copy-on-write: holding the read values costs a copy only at the
        next update."""
        floats = [
            v
            for v in model.weights
            if keras.backend.standardize_dtype(v.dtype).startswith(("float", "bfloat"))
        ]

        @tf.function(autograph=False)
        def read():
            values = [tf.identity(v.value) for v in model.weights]
            flags = [tf.reduce_all(tf.math.is_finite(v.value)) for v in floats]
            return values, tf.reduce_all(tf.stack(flags)) if flags else tf.constant(True)

        def snapshot():
            values, finite = read()
            return values, bool(finite)

        return snapshot
