"""The training path of `Flow.fit` and `evaluate`: in-memory arrays checked once and fed
through the TensorFlow input pipeline (or to Keras directly on other backends), streams
passed through with their first batch checked, and the data-dependent initialization."""

import dataclasses
import weakref

import keras
from keras import ops

from tfflows._math import draw_seed
from tfflows.flows import inputs as forms
from tfflows.flows.callbacks import EpochProgbarLogger, StopOnNonFiniteLoss


def split_inputs(inputs):
    """`inputs` is x, or a dict {"x": x, "context": c} for conditional flows."""
    if isinstance(inputs, dict):
        return inputs["x"], inputs.get("context")
    return inputs, None


@dataclasses.dataclass
class Data:
    """Checked data: `arrays` (x or {"x", "context"}) with normalized `weights`, or a
    `stream` Keras reads; `first` is a checked first batch for initialization."""

    arrays: object = None
    weights: object = None
    stream: object = None
    first: object = None


_CHECKED_DATASETS = weakref.WeakSet()  # tf.data pipelines built here from checked arrays


def is_checked_dataset(x):
    try:
        return x in _CHECKED_DATASETS
    except TypeError:  # unhashable inputs (arrays, dicts)
        return False


def checked(flow, data, sample_weight, what):
    """Data in any form `fit` takes, checked once (arrays whole, streams' first batch)."""
    if forms.is_stream(data):
        if sample_weight is not None:
            raise ValueError(f"{what}: with a dataset or generator, put the sample weights in its "
                             "batches as (x, None, sample_weight).")
        stream = forms.first_batch(data, what)
        first = forms.checked_rows(stream.first_batch[0], flow._check_rows, what, flow.compute_dtype)
        return Data(stream=stream.source, first=first)
    data, sample_weight = forms.unpack(data, what, sample_weight)
    arrays = forms.checked_rows(data, flow._check_rows, what, flow.compute_dtype)
    weights = None
    if sample_weight is not None:
        weights = forms.normalized_weights(forms.check_weights(sample_weight, forms.rows(arrays), what),
                                           flow.compute_dtype)
    if (weights is not None or isinstance(arrays, dict)) and _multi_worker(flow):
        raise ValueError(f"{what}: under MultiWorkerMirroredStrategy Keras (3.15) cannot feed batches of "
                         "several tensors (sample weights or a context) to fit/evaluate "
                         "(keras-team/keras#20329); train on x alone there, or use MirroredStrategy.")
    return Data(arrays=arrays, weights=weights, first=forms.head(arrays, 256))


def _multi_worker(flow):
    if keras.backend.backend() != "tensorflow":
        return False
    from tfflows.interop.tf_training import multi_worker

    return multi_worker(flow)


def train_and_validation(flow, x, sample_weight, validation_data, validation_split):
    """(training Data, validation Data or None) from fit's arguments."""
    train = checked(flow, x, sample_weight, "training data")
    if not validation_split:
        return train, None if validation_data is None else checked(flow, validation_data, None, "validation_data")
    if train.arrays is None:
        raise ValueError("validation_split needs array data; for a dataset or generator pass validation_data.")
    if validation_data is not None:
        raise ValueError("Give validation_data or validation_split, not both.")
    (a, w), (va, vw) = forms.split_for_validation(train.arrays, train.weights, validation_split)
    return Data(arrays=a, weights=w, first=forms.head(a, 256)), Data(arrays=va, weights=vw)


def array_source(data, batch_size, shuffle, callbacks=None):
    """(what Keras reads, extra keyword arguments) for in-memory `Data`: a single-threaded
    tf.data pipeline on TensorFlow (see `tfflows.interop.tf_training`), the arrays
    themselves elsewhere. With `shuffle` on TensorFlow, an `EpochCounter` joins `callbacks`."""
    if keras.backend.backend() != "tensorflow":
        # y = the weights, ignored by the loss: Keras drops sample weights when y is None
        return data.arrays, {"y": data.weights, "sample_weight": data.weights, "batch_size": batch_size,
                             "shuffle": shuffle}
    from tfflows.interop.tf_training import EpochCounter, array_dataset

    counter = None
    if shuffle and callbacks is not None:
        counter = EpochCounter()
        callbacks.append(counter)
    dataset = array_dataset(data.arrays, batch_size or 32, shuffle=counter is not None, sample_weight=data.weights,
                            seed=draw_seed(), epoch=None if counter is None else counter.variable)
    _CHECKED_DATASETS.add(dataset)
    return dataset, {"shuffle": False}


def validation_source(data, batch_size):
    if data.stream is not None:
        return data.stream
    if keras.backend.backend() != "tensorflow":
        return data.arrays if data.weights is None else (data.arrays, data.weights, data.weights)
    return array_source(data, batch_size, shuffle=False)[0]


def prepare_training(flow, first):
    """Build, initialize from data (ActNorm, fitted layers) and compile, under the
    strategy's scope; build the optimizer before the first trace."""
    with flow._strategy_scope():  # variables made here must be mirrored under tf.distribute
        data, context = split_inputs(first)
        flow._ensure_built_for(data)
        flow.transform.initialize_from_data(
            ops.convert_to_tensor(data, flow.compute_dtype),
            None if context is None else ops.convert_to_tensor(context, flow.compute_dtype),
        )
        if not flow.compiled:
            flow.compile(optimizer="adam")
        if flow.optimizer is not None and not flow.optimizer.built:
            # Built now, not lazily inside the first traced train step (Keras's default
            # without a distribution strategy): variables created during a trace make
            # tf.function trace the whole train step a second time.
            flow.optimizer.build(flow.trainable_variables)


def training_callbacks(callbacks, verbose):
    """`fit`'s callbacks with `StopOnNonFiniteLoss` and (unless silent) the epoch progress bar."""
    callbacks = list(callbacks or [])
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
        callbacks.append(StopOnNonFiniteLoss())
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(EpochProgbarLogger())
    return callbacks


def multi_step_supported(flow, compile_kwargs):
    """Whether compile's steps_per_execution="auto" may run several steps per execution:
    everywhere but under a tf.distribute strategy whose loop stays Keras's (TPU, or an
    explicit jit_compile=True), which fails with more."""
    if keras.backend.backend() != "tensorflow":
        return True
    from tfflows.interop.tf_training import mirrored, under_strategy

    return not under_strategy(flow) or (mirrored(flow) and compile_kwargs.get("jit_compile") is not True)


def distributed_function(flow, kind, force=False):
    """Sets `flow.train_function` (kind "train") or `test_function` ("test") to tfflows's
    loop under a mirrored strategy (`tfflows.interop.tf_training.step_function`) and
    returns True; False where Keras's own function is used."""
    if keras.backend.backend() != "tensorflow":
        return False
    from tfflows.interop.tf_training import runs_own_loop, step_function

    if not runs_own_loop(flow):
        return False
    attribute = f"{kind}_function"
    if getattr(flow, attribute) is None or force:
        setattr(flow, attribute, step_function(flow, getattr(flow, f"{kind}_step")))
    return True
