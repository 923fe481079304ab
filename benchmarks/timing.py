"""Timing shared by the speed benchmarks: interleaved blocks of named calls (`Bench`), a
median-of-repeats step loop (`time_loop`), the fused TensorFlow train step (loss, gradient
and Keras Adam update in one `tf.function`) and a jitted stateless JAX train step. No
TensorFlow or JAX import at module level.
"""

import math
import statistics
import time


def _sync(out):
    """Materialize one leaf of a result, so that the timing includes the work."""
    leaves = out if isinstance(out, (list, tuple)) else list(out.values()) if isinstance(out, dict) else [out]
    for leaf in leaves:
        if isinstance(leaf, (list, tuple, dict)):
            return _sync(leaf)
        if hasattr(leaf, "numpy"):
            leaf.numpy()
            return
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
            return


class Bench:
    """Named zero-argument callables timed in interleaved rounds: after warm-up, each runs
    in blocks of ~`block_s` seconds, the blocks of all of them round-robin, so a load change
    on a shared machine hits them alike. Medians per call of wall (`median`) and process
    CPU time (`cpu`: the work done, all threads)."""

    def __init__(self, block_s):
        self.block_s = block_s
        self.fns, self.n, self.first_s, self.blocks, self.cpu_blocks = {}, {}, {}, {}, {}

    def add(self, key, fn):
        start = time.perf_counter()
        _sync(fn())  # traces and compiles
        self.first_s[key] = time.perf_counter() - start
        _sync(fn())
        start = time.perf_counter()
        _sync(fn())
        self.fns[key] = fn
        self.n[key] = max(1, int(self.block_s / max(time.perf_counter() - start, 1e-6)))
        self.blocks[key], self.cpu_blocks[key] = [], []

    def run(self, rounds):
        for _ in range(rounds):
            for key, fn in self.fns.items():
                n = self.n[key]
                start, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    out = fn()
                _sync(out)
                self.cpu_blocks[key].append((time.process_time() - cpu) / n)
                self.blocks[key].append((time.perf_counter() - start) / n)

    def median(self, key):
        return statistics.median(self.blocks[key]) if self.blocks.get(key) else math.nan

    def cpu(self, key):
        return statistics.median(self.cpu_blocks[key]) if self.cpu_blocks.get(key) else math.nan


def summarize(rates):
    """(median, (max - min) / median) of the finite rates."""
    rates = [r for r in rates if math.isfinite(r)]
    if not rates:
        return math.nan, math.nan
    med = statistics.median(rates)
    return med, (max(rates) - min(rates)) / med if med > 0 else math.nan


def time_loop(run_steps, sync, steps, repeats, warmup):
    """(median steps/s, spread) of `repeats` timed calls of run_steps(steps), each followed
    by sync(); `warmup` steps (and one sync) come first."""
    run_steps(warmup)
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        sync()
        rates.append(steps / (time.perf_counter() - start))
    return summarize(rates)


def torch_steps_per_s(loss_fn, parameters, batches, device, config, compiled=False):
    """(median steps/s, spread, last loss) of an eager torch train step -- loss_fn(batch)
    (torch.compile'd with `compiled`), backward, Adam(config.learning_rate) -- cycling
    through `batches` already on `device`, timed by `time_loop` with config.steps,
    repeats and warmup."""
    import torch

    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    if compiled:
        loss_fn = torch.compile(loss_fn)
    box = {"loss": None, "i": 0}

    def run_steps(n):
        for _ in range(n):
            loss = loss_fn(batches[box["i"] % len(batches)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            box["loss"], box["i"] = loss.detach(), box["i"] + 1

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rate, spread = time_loop(run_steps, sync, config.steps, config.repeats, config.warmup)
    return rate, spread, float(box["loss"])


def fused_step(model, learning_rate=1e-3, jit_compile=False):
    """A `tf.function(x -> loss)`: mean NLL, its gradient and a Keras Adam update of
    `model`'s trainable variables, in one compiled call."""
    import keras
    import tensorflow as tf
    from keras import ops

    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)

    def step(x):
        with tf.GradientTape() as tape:
            loss = -ops.mean(model(x, training=True))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return tf.function(step, jit_compile=jit_compile)


def jax_train_step(model, optimizer):
    """A jitted stateless JAX train step of a built Keras model (mean NLL): returns
    (step, state) with `step(state, x) -> (state, loss)` (state buffers donated) and the
    initial state (trainable, non-trainable and optimizer variables)."""
    import jax
    import jax.numpy as jnp

    optimizer.build(model.trainable_variables)

    def loss_fn(trainable, non_trainable, x):
        log_prob, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return -jnp.mean(log_prob), non_trainable

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state, x):
        trainable, non_trainable, opt_vars = state
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), loss

    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    return jax.jit(step, donate_argnums=0), state
