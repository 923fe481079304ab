"""tfflows flows under the protocol: the presets at the run's sizes (`preset_builder`),
`train_keras_flow` (the flow's own `model.fit` with early stopping, a time budget and
per-epoch timing), `fit_greedy_flow` (RBIG) and `KerasFlowCandidate`."""

import inspect
import math
import time

import numpy as np

import protocol


def preset_builder(cls, config):
    """features -> a preset instance with the run's layer count and hidden sizes (for the
    arguments the preset accepts); `build.kwargs` holds them for the report."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    if "num_layers" in params:
        kwargs["num_layers"] = config.num_layers
    if "hidden_units" in params:
        kwargs["hidden_units"] = tuple(config.hidden_units)
    if "bins" in params:
        kwargs["bins"] = 8  # zuko's NSF default
    # GaussianizationFlow keeps its default num_blocks=None: the greedy start chooses the
    # depth on the validation data, as RBIG does.

    def build(features):
        return cls(features, **kwargs)

    build.kwargs = kwargs
    return build


def epoch_timer():
    """A Keras callback timing the training part of each epoch (epoch start to validation
    start, or to the epoch end without validation): `.seconds`, `.cpu_seconds`."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.cpu_seconds, self._start = [], [], None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def _stop(self):
            if self._start is not None:
                self.seconds.append(time.perf_counter() - self._start[0])
                self.cpu_seconds.append(time.process_time() - self._start[1])
                self._start = None

        def on_test_begin(self, logs=None):
            self._stop()

        def on_epoch_end(self, epoch, logs=None):
            self._stop()  # no validation this epoch

    return EpochTimer()


def _time_budget(seconds):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stops training at the first epoch end past `seconds` of training."""

        def __init__(self):
            super().__init__()
            self.hit = False

        def on_train_begin(self, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self._start > seconds:
                self.hit = True
                self.model.stop_training = True

    return TimeBudget()


def train_keras_flow(model, train, val, config):
    """Train a tfflows `Flow` with its own `fit` under the protocol; returns a TrainLog."""
    import keras

    jit = {} if config.jit_compile is None else {"jit_compile": config.jit_compile}
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), **jit)
    timer, budget = epoch_timer(), _time_budget(config.max_train_seconds)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, batch_size=config.batch_size, epochs=config.epochs,
                        callbacks=[stop, timer, budget], verbose=0)
    log = protocol.TrainLog()
    log.wall_s = time.perf_counter() - start
    log.epoch_train_seconds, log.epoch_train_cpu_seconds = timer.seconds, timer.cpu_seconds
    log.epoch_steps = [int(math.ceil(len(train) / config.batch_size))] * len(timer.seconds)
    val_loss = history.history.get("val_loss", [])
    finite = [v if math.isfinite(v) else math.inf for v in val_loss]
    log.best_epoch = int(np.argmin(finite)) + 1 if finite else 0
    if "nonfinite_loss" in history.history:
        log.note = f"training loss became non-finite at epoch {len(val_loss)}; stopped"
    if budget.hit and not stop.stopped_epoch:
        log.note = (log.note + "; " if log.note else "") + f"stopped by the {config.max_train_seconds:.0f} s budget"
    return log


def fit_greedy_flow(model, train, val):
    """A flow fitted without gradients (RBIG): `model.fit(train, validation_data=val)`
    with the model's own stopping rule; the TrainLog has no steps (steps/s is n/a)."""
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, verbose=0)
    log = protocol.TrainLog()
    log.wall_s = time.perf_counter() - start
    val_loss = history.history.get("val_loss", [])
    log.best_epoch = int(np.nanargmin(val_loss)) + 1 if len(val_loss) else 0
    log.greedy_blocks = getattr(model, "num_blocks", None)
    log.note = f"greedy fit, no gradient steps: {log.greedy_blocks} blocks"
    return log


class KerasFlowCandidate(protocol.Candidate):
    """A tfflows `Flow` (any preset), built lazily by `build(features)`."""

    library = "tfflows"

    def __init__(self, name, build):
        self.name, self._build, self.model = name, build, None

    def fit(self, train, val, config):
        import keras

        keras.utils.set_random_seed(config.seed)
        self.model = self._build(train.shape[-1])
        if hasattr(self.model, "fit_greedy"):  # RBIG: no gradient steps, fitted block by block
            return fit_greedy_flow(self.model, train, val)
        return train_keras_flow(self.model, train, val, config)

    def log_prob(self, x):
        return np.asarray(self.model.log_prob(x))

    def sample(self, n):
        return np.asarray(self.model.sample(n, seed=0))

    def count_params(self):
        return int(self.model.count_params())
