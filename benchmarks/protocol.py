"""The benchmark protocol of DESIGN.md, shared by every benchmark script.

Data: `tfflows.datasets.digits_tabular(seed)` (64-D, dequantized + logit) and
`tfflows.datasets.breast_cancer(seed)` (30-D, log1p), each split 60/20/20 and
standardized with the training statistics.

Training, the same for every model: Adam(learning_rate), `batch_size`, at most `epochs`
epochs, early stopping on the validation NLL with `patience` and the best weights
restored. Keras flows (tfflows) train with their own `model.fit` (keras_flows.py); TFP and
PyTorch peers train in a compiled step (`tf.function` / eager torch) driven by `train_loop`
below, which follows the same rules (shuffle every epoch, partial last batch kept).

Modules beside this one: report.py (machine header, Markdown tables, writing pages),
keras_flows.py (tfflows flows under the protocol, the presets' sizes), stacks.py (the
presets rebuilt from layers with other conditioners), timing.py (interleaved timing).

Result record (`Result`): test NLL in nats (mean over all test rows; non-finite rows are
counted and the mean over the finite ones is kept too), train steps per second over
steady-state epochs (the first epoch, which holds tracing/compilation, is excluded, and
so is validation), wall seconds of the whole fit, and the sampling rate (samples/s of the
second call of `sample(n)`, the first one warming up).

Timings are only meaningful as ratios to a peer measured in the same run:
`markdown_report` (report.py, re-exported here) writes each one with its ratio to a named peer.
"""

import dataclasses
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # report.py beside this file, also when imported as benchmarks.protocol
from report import machine_header, markdown_report, markdown_table, print_result  # noqa: E402,F401 (re-exported)

DATASETS = ("digits", "breast_cancer")


# ----- configuration -----------------------------------------------------------------
@dataclasses.dataclass
class Config:
    """One budget for every model of a run."""

    epochs: int = 60
    patience: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    num_layers: int = 5
    hidden_units: tuple = (128, 128)
    seed: int = 0
    sample_count: int = 2000
    jit_compile: object = None  # passed to tfflows' model.compile; None = Keras' default ("auto")
    tfp_jit_compile: bool = False  # the TFP peers' tf.function(jit_compile=...)
    threads: int = 0  # intra-op threads of every library (0: each library's default)
    max_train_seconds: float = 120.0  # per model and dataset; training stops at the first epoch end past it

    def describe(self):
        return (f"Adam(lr={self.learning_rate}), batch {self.batch_size}, at most {self.epochs} epochs "
                f"and {self.max_train_seconds:.0f} s of training per model and dataset, "
                f"early stopping on validation NLL with patience {self.patience} (best weights restored), "
                f"{self.num_layers} flow layers, conditioner hidden units {tuple(self.hidden_units)} (ReLU), "
                f"seed {self.seed}; sampling rate from {self.sample_count} samples; "
                f"tfflows compile(jit_compile={self.jit_compile!r}), TFP peers tf.function(jit_compile={self.tfp_jit_compile}); "
                + (f"every library limited to {self.threads} thread(s) (TF intra- and inter-op, torch.set_num_threads)"
                   if self.threads else "library-default thread pools"))


def limit_threads(n):
    """Give TensorFlow (intra- and inter-op pools) and PyTorch, if installed, `n` threads
    each. Must run before TensorFlow executes its first op. 0 leaves the defaults.

    On a machine shared with other jobs, PyTorch's default OpenMP pool can be slowed
    by an order of magnitude when one of its threads is descheduled, so equal, small
    thread counts make the libraries' timings comparable."""
    if not n:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


def backend_env(backend, threads, extra=None):
    """Environment for a subprocess on Keras backend `backend`: quiet TensorFlow, and with
    threads == 1 the JAX counterpart of `limit_threads(1)` (single-threaded XLA CPU)."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **(extra or {}))
    if backend == "jax" and threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


# ----- data ----------------------------------------------------------------------------
def load(name, seed=0):
    """(train, validation, test) float32 arrays of a protocol dataset."""
    from tfflows import datasets

    if name == "digits":
        return datasets.digits_tabular(seed)
    if name == "breast_cancer":
        return datasets.breast_cancer(seed)
    raise ValueError(f"Unknown dataset {name!r}; choose from {DATASETS}.")


# ----- result record ---------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    model: str
    library: str
    dataset: str
    test_nll: float = math.nan  # mean over all test rows, nats
    test_nll_finite: float = math.nan  # mean over the finite rows only
    nonfinite_test: int = 0
    n_test: int = 0
    steps_per_s: float = math.nan  # steady state: epochs after the first, training only
    steps_per_cpu_s: float = math.nan  # the same steps per second of process CPU time
    wall_s: float = math.nan  # the whole fit, tracing and validation included
    samples_per_s: float = math.nan
    nonfinite_samples: int = 0
    epochs: int = 0  # epochs run
    best_epoch: int = 0  # 1-based epoch whose weights were kept
    steps: int = 0
    params: int = 0
    note: str = ""
    failed: str = ""  # why a model produced no result

    def as_dict(self):
        return dataclasses.asdict(self)


class TrainLog:
    """What a training driver reports: epochs, steady-state timing, failure notes."""

    def __init__(self):
        self.epoch_train_seconds = []  # training part of each epoch (no validation)
        self.epoch_train_cpu_seconds = []  # the same, in process CPU time (all threads)
        self.epoch_steps = []
        self.best_epoch = 0
        self.wall_s = math.nan
        self.note = ""

    def steady_steps_per_s(self, cpu=False):
        """Steps per second over the epochs after the first (wall time, or process CPU
        time with cpu=True: the work done, which other jobs on a shared machine do not
        inflate as long as each library runs on its own limited threads)."""
        epoch_seconds = self.epoch_train_cpu_seconds if cpu else self.epoch_train_seconds
        if not epoch_seconds:
            return math.nan
        seconds, steps = epoch_seconds[1:], self.epoch_steps[1:]
        if not seconds:  # a single epoch: tracing included, say so
            seconds, steps = epoch_seconds, self.epoch_steps
            if seconds and not cpu:
                self.note = (self.note + "; " if self.note else "") + "steps/s includes tracing (1 epoch)"
        total = sum(seconds)
        return sum(steps) / total if total > 0 else math.nan


def mean_and_error(values):
    """(mean, standard error) of the finite values: (value, nan) for one, (nan, nan) for none."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return (values[0] if values else math.nan), math.nan
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def nll_summary(log_prob):
    """(mean NLL over all rows, mean over finite rows, number of non-finite rows)."""
    log_prob = np.asarray(log_prob, dtype="float64").reshape(-1)
    finite = np.isfinite(log_prob)
    mean_all = float(-log_prob.mean()) if finite.all() else math.nan
    mean_finite = float(-log_prob[finite].mean()) if finite.any() else math.nan
    return mean_all, mean_finite, int((~finite).sum())


def sampling_rate(sample_fn, n):
    """samples/s of the second call of sample_fn(n) (the first warms up), and the number
    of samples with a non-finite entry."""
    sample_fn(min(n, 16))
    start = time.perf_counter()
    samples = np.asarray(sample_fn(n))
    seconds = time.perf_counter() - start
    bad = int((~np.isfinite(samples.reshape(len(samples), -1)).all(axis=1)).sum())
    return n / seconds, bad


# ----- driver for custom training steps (TFP, PyTorch) -------------------------------------
def train_loop(step, val_nll, get_state, set_state, train, val, config):
    """Generic protocol loop: `step(batch) -> loss (float)`, `val_nll(array) -> float`,
    `get_state()` / `set_state(state)` snapshot and restore the weights.

    Shuffles every epoch (seeded), keeps the partial last batch, stops at the first
    non-finite training loss (restoring the best weights) and early-stops on the
    validation NLL with `config.patience`."""
    rng = np.random.default_rng(config.seed)
    log = TrainLog()
    best, best_state, wait = math.inf, get_state(), 0
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(len(train))
        t0, c0 = time.perf_counter(), time.process_time()
        steps, bad = 0, None
        for i in range(0, len(train), config.batch_size):
            loss = step(train[order[i:i + config.batch_size]])
            steps += 1
            if not math.isfinite(loss):
                bad = (epoch + 1, steps - 1, loss)
                break
        log.epoch_train_seconds.append(time.perf_counter() - t0)
        log.epoch_train_cpu_seconds.append(time.process_time() - c0)
        log.epoch_steps.append(steps)
        if bad is not None:
            log.note = f"training loss {bad[2]} at epoch {bad[0]}, step {bad[1]}; stopped, best weights restored"
            break
        current = val_nll(val)
        if math.isfinite(current) and current < best:
            best, best_state, wait, log.best_epoch = current, get_state(), 0, epoch + 1
        else:
            wait += 1
            if wait >= config.patience:
                break
        if time.perf_counter() - start > config.max_train_seconds and epoch + 1 < config.epochs:
            log.note = f"stopped by the {config.max_train_seconds:.0f} s budget"
            break
    set_state(best_state)
    log.wall_s = time.perf_counter() - start
    return log


# ----- one benchmark -------------------------------------------------------------------------
class Candidate:
    """A model under test, library-agnostic. Subclasses (or instances built by the
    peers' modules) provide `fit(train, val, config) -> TrainLog`, `log_prob(x) -> array`,
    `sample(n) -> array` and `count_params() -> int`."""

    name = "?"
    library = "?"

    def fit(self, train, val, config):
        raise NotImplementedError

    def log_prob(self, x):
        raise NotImplementedError

    def sample(self, n):
        raise NotImplementedError

    def count_params(self):
        return 0


def evaluate(candidate, dataset, config, data=None):
    """Train `candidate` on `dataset` under the protocol and return its `Result`. Any
    exception is recorded in `Result.failed` rather than raised."""
    result = Result(model=candidate.name, library=candidate.library, dataset=dataset)
    try:
        train, val, test = data if data is not None else load(dataset, config.seed)
        result.n_test = len(test)
        log = candidate.fit(train, val, config)
        result.wall_s = log.wall_s
        result.steps_per_s = log.steady_steps_per_s()
        result.steps_per_cpu_s = log.steady_steps_per_s(cpu=True)
        result.epochs = len(log.epoch_steps) or int(getattr(log, "greedy_blocks", 0) or 0)
        result.steps = int(sum(log.epoch_steps))
        result.best_epoch = log.best_epoch
        result.note = log.note
        result.test_nll, result.test_nll_finite, result.nonfinite_test = nll_summary(candidate.log_prob(test))
        result.params = candidate.count_params()
        try:
            result.samples_per_s, result.nonfinite_samples = sampling_rate(candidate.sample, config.sample_count)
        except Exception as exc:  # noqa: BLE001 - a sampling failure is a result too
            result.note = (result.note + "; " if result.note else "") + f"sampling failed: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a training failure is a result too
        result.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return result
