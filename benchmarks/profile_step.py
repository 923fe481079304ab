"""Where the time of one training step goes: a timing breakdown of tfflows' MAF (and NSF,
RealNVP of the same size) at d=64, batch 256, with XLA (`jit_compile=True`) and without,
against the machine's matmul rate measured in the same run. Writes
benchmarks/results/profile.md.

    python benchmarks/profile_step.py                    # MAF, NSF, RealNVP; fit checks on MAF (~5 CPU-min)
    python benchmarks/profile_step.py --fit-models MAF,NSF,RealNVP   # fit checks on all three (~7.5 CPU-min)
    python benchmarks/profile_step.py --models MAF --rounds 5 --no-variants --no-tf-profiler

Parts, each a separate `tf.function(jit_compile=J)` on the same model and batch:
  log_prob      forward only: `model(x)` (log p per row)
  conditioners  the conditioner networks alone (MADE / MLP of every layer, same input)
  fwd+bwd       loss and gradient (GradientTape) w.r.t. every trainable weight
  opt apply     `Adam.apply(grads)` with fixed gradients
  fused step    fwd+bwd+apply in one function (what an ideal train step costs)
  Keras step    `model.train_on_batch(x)` of a model compiled with `jit_compile=J`
                (Keras' own compiled train function + its per-call Python work)
  `fit`         steady-state seconds per step of `model.fit` (epochs 2-3 of 3, 16 full
                batches per epoch, validation excluded), for the models in --fit-models
Timing: after warm-up, every part runs in blocks of ~`--block` seconds; the blocks of all
parts are interleaved round-robin for `--rounds` rounds, and the median block is
reported (interleaving keeps the ratios fair on a machine shared with other jobs).

FLOPs are counted analytically from the dense matmuls of the conditioners (MADE masked
kernels, MLP Dense kernels): 2*batch*in*out per matmul forward, backward counted as 2x
forward (dX and dW), so a train step is ~3x forward. Elementwise work (masks, tanh/exp,
spline bins, Adam) is not counted. Achieved FLOP/s is compared with a plain
`keras.ops.matmul` loop (float32) at 2048^3 (peak) and at the model's own shapes.

Retracing: the Python `call` of the flow is counted per epoch over 3 epochs of
`model.fit` (with a partial last batch and validation data); a trace in epoch 2 or 3
would be a retrace.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import protocol  # noqa: E402
from benchmarks.run import preset_builder  # noqa: E402 - the same sizes as benchmarks/run.py

RESULTS = os.path.join(ROOT, "benchmarks", "results")
MODELS = ("MAF", "NSF", "RealNVP")


# ----- timing --------------------------------------------------------------------------
def _sync(out):
    """Materialize a result so the timing includes the work (TF CPU calls are synchronous,
    but a numpy copy of one leaf makes sure)."""
    import tensorflow as tf

    for leaf in tf.nest.flatten(out):
        if hasattr(leaf, "numpy"):
            leaf.numpy()
            return


class Bench:
    """Named zero-argument callables timed in interleaved rounds."""

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
        one = max(time.perf_counter() - start, 1e-6)
        self.fns[key] = fn
        self.n[key] = max(1, int(self.block_s / one))
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
        """Median wall seconds per call."""
        return statistics.median(self.blocks[key]) if self.blocks.get(key) else float("nan")

    def cpu(self, key):
        """Median CPU seconds per call (all threads of this process): the work done,
        insensitive to time slices lost to other jobs on a shared machine."""
        return statistics.median(self.cpu_blocks[key]) if self.cpu_blocks.get(key) else float("nan")


# ----- FLOPs ---------------------------------------------------------------------------
def matmul_shapes(model):
    """(in, out) of every dense matmul in the flow's conditioners."""
    import keras

    from tfflows.made import MADE

    shapes = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, MADE):
            shapes += [tuple(int(s) for s in m.shape) for m in layer._masks]
        elif isinstance(layer, keras.layers.Dense):
            shapes.append(tuple(int(s) for s in layer.kernel.shape))
    return shapes


def forward_flops(shapes, batch):
    return sum(2 * batch * i * o for i, o in shapes)


# ----- matmul reference ----------------------------------------------------------------------
def matmul_rates(bench, shapes):
    """Register plain keras.ops.matmul loops: 2048^3 (peak) and the model's shapes
    (eager loop, as users would write it) plus a compiled chain of 256x128x128."""
    import keras
    import tensorflow as tf
    from keras import ops

    rng = np.random.default_rng(0)
    flops = {}
    big = 2048
    a = ops.convert_to_tensor(rng.standard_normal((big, big)).astype("float32"))
    b = ops.convert_to_tensor(rng.standard_normal((big, big)).astype("float32"))
    key = f"matmul {big}x{big}x{big} (eager)"
    bench.add(key, lambda: ops.matmul(a, b))
    flops[key] = 2 * big ** 3
    for m, k, n in shapes:
        x = ops.convert_to_tensor(rng.standard_normal((m, k)).astype("float32"))
        w = ops.convert_to_tensor(rng.standard_normal((k, n)).astype("float32"))
        key = f"matmul {m}x{k}x{n} (eager)"
        bench.add(key, lambda x=x, w=w: ops.matmul(x, w))
        flops[key] = 2 * m * k * n
    chain = 50
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    wq = ops.convert_to_tensor(q.astype("float32"))  # orthogonal: the chain keeps its scale
    h0 = ops.convert_to_tensor(rng.standard_normal((256, 128)).astype("float32"))
    for jit in (False, True):
        @tf.function(jit_compile=jit)
        def chained(h):
            for _ in range(chain):
                h = ops.matmul(h, wq)
            return h

        key = f"matmul 256x128x128 ×{chain} chained (tf.function, jit={jit})"
        bench.add(key, lambda f=chained: f(h0))
        flops[key] = chain * 2 * 256 * 128 * 128
    del keras
    return flops


# ----- one model ---------------------------------------------------------------------------
def build_model(name, config, features, x):
    import keras

    import tfflows

    keras.utils.set_random_seed(config.seed)
    model = preset_builder(getattr(tfflows, name), config)(features)
    model(x)  # build
    model.transform.initialize_from_data(x)
    return model


def conditioner_fn(model):
    """x -> outputs of every layer's conditioner on x (MADE) or on its identity half (MLP)."""
    layers = [layer for layer in model.transform.layers if hasattr(layer, "made") or hasattr(layer, "conditioner")]

    def run(x):
        outs = []
        for layer in layers:
            if hasattr(layer, "made"):
                outs.append(layer.made(x))
            else:
                outs.append(layer.conditioner(layer._split(x)[0]))
        return outs

    return run


def register_parts(bench, name, model, x, models_k):
    """The step components of one model, for jit in (False, True)."""
    import keras
    import tensorflow as tf
    from keras import ops

    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    cond = conditioner_fn(model)

    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            loss = -ops.mean(model(x, training=True))
        return loss, tape.gradient(loss, variables)

    grads = [ops.convert_to_tensor(g) for g in loss_and_grads(x)[1]]
    for jit in (False, True):
        tag = f"jit={jit}"
        f_fwd = tf.function(lambda x: model(x, training=True), jit_compile=jit)
        f_cond = tf.function(cond, jit_compile=jit)
        f_grad = tf.function(loss_and_grads, jit_compile=jit)

        def apply(g):
            optimizer.apply(g, variables)
            return optimizer.iterations

        def step(x):
            loss, g = loss_and_grads(x)
            optimizer.apply(g, variables)
            return loss

        f_apply = tf.function(apply, jit_compile=jit)
        f_step = tf.function(step, jit_compile=jit)
        bench.add((name, "log_prob", tag), lambda f=f_fwd: f(x))
        bench.add((name, "conditioners", tag), lambda f=f_cond: f(x))
        bench.add((name, "fwd+bwd", tag), lambda f=f_grad: f(x))
        bench.add((name, "opt apply", tag), lambda f=f_apply: f(grads))
        bench.add((name, "fused step", tag), lambda f=f_step: f(x))
        bench.add((name, "Keras step", tag), lambda m=models_k[jit]: m.train_on_batch(x, return_dict=True))


def keras_models(name, config, features, x):
    """{jit: model compiled with jit_compile=jit} (same seed, same initial weights)."""
    import keras

    out = {}
    for jit in (False, True):
        m = build_model(name, config, features, x)
        m.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
        out[jit] = m
    return out


def count_calls(model):
    """Count Python-side executions of the flow's `call` (one per trace in compiled code)."""
    counter = {"n": 0}
    original = model.call

    def counted(*args, **kwargs):
        counter["n"] += 1
        return original(*args, **kwargs)

    model.call = counted
    return counter


def trace_callback(counter):
    import keras

    class TraceCount(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train, self.val = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._mark = counter["n"]

        def on_test_begin(self, logs=None):
            self.train.append(counter["n"] - self._mark)
            self._mark = counter["n"]

        def on_test_end(self, logs=None):
            self.val.append(counter["n"] - self._mark)

    return TraceCount()


def epoch_clock():
    """Wall and CPU seconds of each training epoch."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._t[0])
            self.cpu.append(time.process_time() - self._t[1])

    return EpochClock()


def fit_checks(name, config, features, data, batch, jit):
    """((wall, CPU) seconds per fit step in steady state, 16 full batches per epoch, epochs
    2-3 of 3), and the trace counts per epoch on the real split (partial last batch,
    validation every epoch)."""
    import keras

    train, val, _ = data
    x = train[:batch]
    # throughput: 16 full batches per epoch, 3 epochs, epochs 2-3 timed
    model = build_model(name, config, features, x)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
    tiled = np.resize(train, (16 * batch, features)).astype("float32")
    timer = epoch_clock()
    model.fit(tiled, batch_size=batch, epochs=3, callbacks=[timer], verbose=0, shuffle=True)
    per_step = (statistics.mean(timer.wall[1:]) / 16, statistics.mean(timer.cpu[1:]) / 16)
    # retracing: real split (partial last batch), validation every epoch
    model = build_model(name, config, features, x)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
    counter = count_calls(model)
    traces = trace_callback(counter)
    model.fit(train, validation_data=val, batch_size=batch, epochs=3, callbacks=[traces], verbose=0)
    return per_step, traces.train, traces.val


# ----- proposed changes, measured without editing tfflows ----------------------------------------------
def unstack_affine_params(model):
    """Proposal A: `_AffineTransformer._shift_and_log_scale` reads (shift, raw log-scale)
    with one `ops.unstack` instead of two strided slices `params[..., 0, :]`,
    `params[..., 1, :]` (whose gradients are two StridedSliceGrad ops that each write a
    full-size zero tensor). Patched on this model's layer instances only. Adopted by
    tfflows; since the parameter-major MADE layout it is the same as "MAF as is"."""
    from keras import ops

    clamp = _current_clamp()
    for layer in model.transform.layers:
        if hasattr(layer, "_shift_and_log_scale") and hasattr(layer, "log_scale_clamp"):
            def split(params, layer=layer):
                shift, raw = ops.unstack(params, 2, axis=-2)  # params (batch, 2, D), parameter-major
                return shift, clamp(raw, layer.log_scale_clamp)

            layer._shift_and_log_scale = split
    return model


def _current_clamp():
    """The soft clamp tfflows' autoregressive layers use now (a module-local one since
    commit c7b039c, `tfflows._math.soft_clamp` before)."""
    from tfflows import _math, autoregressive

    return getattr(autoregressive, "_soft_clamp", None) or _math.soft_clamp


def tanh_clamp(model):
    """Proposal C: the float32 path of the MAF clamp as `bound * ops.tanh(x / bound)` (one
    native op) instead of the expm1/where formula of c7b039c, which is needed only for
    float64 under JAX (keras.ops.tanh returns float32 there)."""
    from keras import ops

    for layer in model.transform.layers:
        if hasattr(layer, "_shift_and_log_scale") and hasattr(layer, "log_scale_clamp"):
            def split(params, layer=layer):
                bound = layer.log_scale_clamp
                return params[..., 0, :], bound * ops.tanh(params[..., 1, :] / bound)

            layer._shift_and_log_scale = split
    return model


def maf_with_orders(features, config):
    """Proposal B: MAF whose layers alternate MADE orders "given"/"reversed" instead of
    `Reverse` layers between them (the same family of densities; no ReverseV2 op and
    no gradient through it)."""
    import tfflows

    layers = [tfflows.MaskedAutoregressive(hidden_units=tuple(config.hidden_units),
                                           order="given" if i % 2 == 0 else "reversed",
                                           name=f"maskedautoregressive_{i}")
              for i in range(config.num_layers)]
    return tfflows.Flow(tfflows.Chain(layers, name="chain"), event_shape=(features,))


VARIANTS = ("MAF as is", "A: unstack", "B: orders, no Reverse", "A+B", "C: tanh clamp")


def register_variants(bench, config, features, x):
    """MAF as built now vs proposals A, B and A+B: fused step (both jit settings) and
    Keras `train_on_batch` with Keras' CPU default (jit_compile=False)."""
    import keras
    import tensorflow as tf
    from keras import ops

    def build(kind):
        keras.utils.set_random_seed(config.seed)
        if kind in ("B: orders, no Reverse", "A+B"):
            model = maf_with_orders(features, config)
        else:
            model = preset_builder(getattr(__import__("tfflows"), "MAF"), config)(features)
        model(x)
        if kind in ("A: unstack", "A+B"):
            unstack_affine_params(model)
        if kind == "C: tanh clamp":
            tanh_clamp(model)
        return model

    def make_step(model):
        variables = model.trainable_variables
        optimizer = keras.optimizers.Adam(config.learning_rate)
        optimizer.build(variables)

        def step(x):
            with tf.GradientTape() as tape:
                loss = -ops.mean(model(x, training=True))
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        return step

    for kind in VARIANTS:
        step = make_step(build(kind))
        for jit in (False, True):
            f = tf.function(step, jit_compile=jit)
            bench.add(("variant", kind, f"fused jit={jit}"), lambda f=f: f(x))
        compiled = build(kind)
        compiled.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=False)
        bench.add(("variant", kind, "Keras step jit=False"),
                  lambda m=compiled: m.train_on_batch(x, return_dict=True))


# ----- tf.profiler op breakdown ------------------------------------------------------------------
def op_profile(fn, steps, logdir):
    """Host self-time per op type over `steps` calls of fn (tf.profiler, offline), and
    the wall time of those calls. Returns (wall_s, {op_type: self_us}) or None."""
    import tensorflow as tf

    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
    except ImportError:
        return None
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    _sync(out)
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()
    files = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not files:
        return None
    raw, ok = plugin.xspace_to_tools_data(files, "framework_op_stats", {})
    if not ok:
        return None
    table = json.loads(raw)[0]
    cols = [c["id"] for c in table["cols"]]
    i_type, i_self = cols.index("type"), cols.index("total_self_time")
    by_type = {}
    for row in table["rows"]:
        v = [c.get("v") for c in row["c"]]
        if v[i_type] == "IDLE":
            continue
        by_type[v[i_type]] = by_type.get(v[i_type], 0.0) + float(v[i_self])
    return wall, by_type


# ----- driver and report ----------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated from {MODELS}")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--block", type=float, default=0.15, help="seconds per timing block")
    p.add_argument("--threads", type=int, default=1,
                   help="TF intra/inter-op threads (default 1, as benchmarks/run.py; 0 = TF default)")
    p.add_argument("--fit-models", default="MAF",
                   help="models that also get the model.fit throughput and retracing checks (default MAF; "
                        "'none' skips them)")
    p.add_argument("--no-tf-profiler", action="store_true", help="skip the op-level tf.profiler breakdown")
    p.add_argument("--no-variants", action="store_true", help="skip the measured MAF proposals")
    p.add_argument("--out", default=os.path.join(RESULTS, "profile.md"))
    args = p.parse_args(argv)
    command = "python benchmarks/profile_step.py " + " ".join(sys.argv[1:] if argv is None else argv)

    protocol.limit_threads(args.threads)
    import tensorflow as tf

    config = protocol.Config(batch_size=args.batch_size, num_layers=5, hidden_units=(128, 128))
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    data = protocol.load("digits", config.seed)
    features = data[0].shape[1]
    batch = args.batch_size
    x = tf.constant(data[0][:batch])
    t_start = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - t_start:.0f}s] {msg}", flush=True)

    bench = Bench(args.block)
    shapes_by_model, params = {}, {}
    all_shapes = set()
    for name in names:
        model = build_model(name, config, features, x)
        shapes_by_model[name] = matmul_shapes(model)
        params[name] = model.count_params()
        all_shapes.update((batch, i, o) for i, o in shapes_by_model[name])
        say(f"compiling {name} ({params[name]:,} params, {len(shapes_by_model[name])} matmuls)")
        register_parts(bench, name, model, x, keras_models(name, config, features, x))
    variants_check = None
    if not args.no_variants:
        say("compiling the MAF proposals")
        variants_check = check_proposal_a(config, features, x)
        register_variants(bench, config, features, x)
    say("compiling matmul references")
    mm_flops = matmul_rates(bench, sorted(all_shapes))
    say(f"timing {len(bench.fns)} functions × {args.rounds} interleaved rounds")
    bench.run(args.rounds)

    fits = {}
    fit_names = [n.strip() for n in args.fit_models.split(",") if n.strip() in names]
    if fit_names:
        for name in fit_names:
            for jit in (False, True):
                say(f"fit checks {name} jit={jit}")
                fits[(name, jit)] = fit_checks(name, config, features, data, batch, jit)

    profiles = {}
    if not args.no_tf_profiler:
        for name in [n for n in names if n in ("MAF", "NSF")]:
            for jit in (False,):  # under XLA the step is one compiled cluster: nothing to break down
                say(f"tf.profiler {name} jit={jit}")
                key = (name, "Keras step", f"jit={jit}")
                logdir = tempfile.mkdtemp(prefix="tfflows_prof_")
                try:
                    steps = max(5, min(30, bench.n[key] * 2))
                    profiles[(name, jit)] = (steps, op_profile(bench.fns[key], steps, logdir))
                except Exception as exc:  # noqa: BLE001 - the profiler is optional
                    profiles[(name, jit)] = (0, f"{type(exc).__name__}: {exc}")
                finally:
                    shutil.rmtree(logdir, ignore_errors=True)
    total_s = time.perf_counter() - t_start

    report = render(args, command, names, batch, bench, shapes_by_model, params, mm_flops, fits, profiles,
                    variants_check, total_s)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(report)
    print(f"Written to {os.path.relpath(args.out)}")


def check_proposal_a(config, features, x):
    """Largest |difference| of log p(x) between MAF as is and with proposal A (same weights)."""
    import keras

    import tfflows

    keras.utils.set_random_seed(config.seed)
    a = preset_builder(tfflows.MAF, config)(features)
    b = preset_builder(tfflows.MAF, config)(features)
    a(x), b(x)
    rng = np.random.default_rng(1)
    for w in a.weights:  # random weights so that the output layers are not zero
        w.assign(rng.normal(scale=0.1, size=w.shape).astype("float32"))
    b.set_weights(a.get_weights())
    unstack_affine_params(b)
    return float(np.max(np.abs(np.asarray(a(x)) - np.asarray(b(x)))))


PARTS = ("log_prob", "conditioners", "fwd+bwd", "opt apply", "fused step", "Keras step")
FLOP_FACTOR = {"log_prob": 1, "conditioners": 1, "fwd+bwd": 3, "fused step": 3, "Keras step": 3}


def fmt_ms(s):
    return f"{s * 1e3:.2f}" if s == s else "—"


def gflops(flops, s):
    return flops / s / 1e9 if s and s == s else float("nan")


def render(args, command, names, batch, bench, shapes_by_model, params, mm_flops, fits, profiles, variants_check,
           total_s):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    peak_key = next(k for k in mm_flops if k.startswith("matmul 2048"))
    peak = gflops(mm_flops[peak_key], bench.cpu(peak_key))
    lines = [f"# Where a training step's time goes (profile, {now})", "",
             f"Command: `{command}` ({total_s:.0f} s)", ""]
    lines += protocol.machine_header()
    lines += [
        f"- Models: tfflows presets built as in benchmarks/run.py (5 layers, conditioner hidden units "
        f"(128, 128), NSF bins=8) on digits (d=64), batch {batch}, float32, "
        f"TF intra/inter-op threads: {args.threads or 'TF default'}.",
        f"- Timing: each part runs in blocks of ~{args.block:.2f} s, the blocks of all parts interleaved "
        f"round-robin for {args.rounds} rounds after warm-up; the median block is reported. **CPU ms** is the "
        "process CPU time per call (all threads): the work done, which stays steady when other jobs take "
        "time slices of this shared machine; **wall ms** is elapsed time and swings with the load. Ratios "
        "and FLOP/s are computed from CPU time (with 1 thread, GFLOP/s per core). Absolute numbers are not "
        "comparable across runs; only the ratios within this run mean anything.",
        "- `jit_compile=\"auto\"` (Keras' default, used by `Flow.fit` when the user does not compile) resolves "
        "to **False** on a CPU-only TensorFlow machine (Keras turns XLA off when no GPU/TPU is present).",
        "",
        "## Matmul reference (plain `keras.ops.matmul`, float32, same run)",
        "",
        "| matmul | CPU ms | wall ms | GFLOP/s (CPU time) | % of 2048³ peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, fl in mm_flops.items():
        c = bench.cpu(key)
        g = gflops(fl, c)
        lines.append(f"| {key} | {c * 1e3:.3f} | {bench.median(key) * 1e3:.3f} | {g:.1f} | {100 * g / peak:.0f}% |")
    lines.append("")

    for name in names:
        fwd_fl = forward_flops(shapes_by_model[name], batch)
        shape_list = ", ".join(f"{i}×{o}" for i, o in shapes_by_model[name][:3])
        lines += [
            f"## {name} (d=64, batch {batch}, {params[name]:,} params)", "",
            f"Dense matmuls: {len(shapes_by_model[name])} (per layer {shape_list}); forward "
            f"{fwd_fl / 1e6:.1f} MFLOP, train step ≈ 3× = {3 * fwd_fl / 1e6:.1f} MFLOP "
            "(matmuls only; elementwise work not counted).", "",
            "| part | CPU ms, jit=False | CPU ms, jit=True | XLA speed-up (CPU) | wall ms (False / True) "
            "| GFLOP/s (False / True) | best % of peak | first call s (False / True) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for part in PARTS:
            kf, kt = (name, part, "jit=False"), (name, part, "jit=True")
            cf, ct = bench.cpu(kf), bench.cpu(kt)
            if part in FLOP_FACTOR:
                fl = FLOP_FACTOR[part] * fwd_fl
                gf, gt = gflops(fl, cf), gflops(fl, ct)
                rates = f"{gf:.1f} / {gt:.1f} | {100 * max(gf, gt) / peak:.0f}%"
            else:
                rates = "— | —"
            lines.append(f"| {part} | {fmt_ms(cf)} | {fmt_ms(ct)} | {cf / ct:.2f}× "
                         f"| {fmt_ms(bench.median(kf))} / {fmt_ms(bench.median(kt))} | {rates} "
                         f"| {bench.first_s[kf]:.1f} / {bench.first_s[kt]:.1f} |")
        if (name, False) in fits:
            (wf, cf), (wt, ct) = fits[(name, False)][0], fits[(name, True)][0]
            gf, gt = gflops(3 * fwd_fl, cf), gflops(3 * fwd_fl, ct)
            lines.append(f"| `fit`, per step (steady) | {fmt_ms(cf)} | {fmt_ms(ct)} | {cf / ct:.2f}× "
                         f"| {fmt_ms(wf)} / {fmt_ms(wt)} | {gf:.1f} / {gt:.1f} | {100 * max(gf, gt) / peak:.0f}% | — |")
        lines.append("")
        for jit in (False, True):
            tag = f"jit={jit}"
            step = bench.cpu((name, "fused step", tag))
            fwd, grad = bench.cpu((name, "log_prob", tag)), bench.cpu((name, "fwd+bwd", tag))
            app, cond = bench.cpu((name, "opt apply", tag)), bench.cpu((name, "conditioners", tag))
            keras_step = bench.cpu((name, "Keras step", tag))
            lines.append(
                f"- {tag}: fused step {fmt_ms(step)} CPU ms; fwd+bwd alone {100 * grad / step:.0f}% of it "
                f"(forward {100 * fwd / step:.0f}%, of which the conditioner nets {100 * cond / fwd:.0f}%), "
                f"optimizer apply alone {100 * app / step:.0f}% (parts timed separately, so shares need not sum "
                f"to 100%); Keras `train_on_batch` costs {keras_step / step:.2f}× the fused step.")
        if (name, False) in fits:
            for jit in (False, True):
                _, tr, va = fits[(name, jit)]
                retrace = any(tr[1:]) or any(va[1:])
                lines.append(f"- Retracing, jit={jit}: Python `call` runs per epoch: training {tr}, validation {va} "
                             f"→ {'RETRACES after epoch 1' if retrace else 'no retracing after the first epoch'} "
                             "(epoch 1: full batch + partial last batch).")
        lines.append("")

    if variants_check is not None:
        base = {j: bench.cpu(("variant", "MAF as is", f"fused jit={j}")) for j in (False, True)}
        base_k = bench.cpu(("variant", "MAF as is", "Keras step jit=False"))
        lines += ["## Proposed MAF changes, measured (same run, CPU ms per step, batch 256)", "",
                  "A: `_AffineTransformer._shift_and_log_scale` takes `ops.unstack(params, 2, axis=-1)` instead of "
                  "`params[..., 0]`, `params[..., 1]` (patched on the instances here; log p identical: max "
                  f"|Δ log p| = {variants_check:.1e} with random weights). B: alternate the MADE order "
                  "(\"given\"/\"reversed\") instead of `Reverse` layers between MAF layers. "
                  "C: the clamp as `bound * ops.tanh(x / bound)` (float32 path) instead of the expm1/where form "
                  "of commit c7b039c.", "",
                  "| variant | fused, jit=False | fused, jit=True | Keras step, jit=False | speed-up of Keras step |",
                  "|---|---:|---:|---:|---:|"]
        for kind in VARIANTS:
            f0 = bench.cpu(("variant", kind, "fused jit=False"))
            f1 = bench.cpu(("variant", kind, "fused jit=True"))
            k0 = bench.cpu(("variant", kind, "Keras step jit=False"))
            lines.append(f"| {kind} | {fmt_ms(f0)} ({base[False] / f0:.2f}×) | {fmt_ms(f1)} ({base[True] / f1:.2f}×) "
                         f"| {fmt_ms(k0)} | {base_k / k0:.2f}× |")
        lines.append("")

    if profiles:
        lines += ["## Op-level breakdown of the Keras train step (tf.profiler, host self-time per op type)", "",
                  "Ops of `train_on_batch` with Keras' CPU default `jit_compile=False` (the profiler slows the run "
                  "down; compare shares, not totals). Under XLA the whole step is one compiled cluster, so there is "
                  "nothing to break down.", ""]
        for (name, jit), (steps, prof) in profiles.items():
            if not isinstance(prof, tuple):
                lines += [f"- {name} jit={jit}: profiler unavailable ({prof})", ""]
                continue
            _, by_type = prof
            busy = sum(by_type.values()) / 1e6
            top = sorted(by_type.items(), key=lambda kv: -kv[1])[:10]
            lines.append(f"**{name}, jit={jit}** ({steps} steps, {1e3 * busy / steps:.2f} ms/step in TF ops)")
            lines += ["", "| op type | ms/step | % of op time |", "|---|---:|---:|"]
            for op, us in top:
                lines.append(f"| {op} | {us / 1e3 / steps:.3f} | {100 * us / 1e6 / busy:.0f}% |")
            lines.append("")

    lines += findings(names, bench, fits, shapes_by_model, batch, peak)
    return "\n".join(lines) + "\n"


def findings(names, bench, fits, shapes_by_model, batch, peak):
    """Measured conclusions, computed from this run's numbers (CPU time)."""
    out = ["## Findings (computed from this run, CPU time)", ""]
    for name in names:
        kf, kt = bench.cpu((name, "Keras step", "jit=False")), bench.cpu((name, "Keras step", "jit=True"))
        ff, ft = bench.cpu((name, "fused step", "jit=False")), bench.cpu((name, "fused step", "jit=True"))
        lf, lt = bench.cpu((name, "log_prob", "jit=False")), bench.cpu((name, "log_prob", "jit=True"))
        step_fl = 3 * forward_flops(shapes_by_model[name], batch)
        best = min(kf, kt)
        line = (f"- {name}: `jit_compile=True` changes the Keras train step by {kf / kt:.2f}× "
                f"({fmt_ms(kf)} → {fmt_ms(kt)} CPU ms; >1 is faster), the fused step by {ff / ft:.2f}×, "
                f"log_prob by {lf / lt:.2f}×. Best Keras step: {gflops(step_fl, best):.1f} GFLOP/s = "
                f"{100 * gflops(step_fl, best) / peak:.0f}% of the 2048³ matmul peak.")
        if (name, False) in fits:
            cf, ct = fits[(name, False)][0][1], fits[(name, True)][0][1]
            line += f" In `fit`: {cf / ct:.2f}× ({fmt_ms(cf)} → {fmt_ms(ct)} CPU ms/step)."
        out.append(line)
    out.append("")
    return out


if __name__ == "__main__":
    main()
