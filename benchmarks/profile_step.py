"""Where the time of one training step goes: a timing breakdown of tfflows' MAF (and NSF,
RealNVP of the same size) at d=64, batch 256, with XLA (`jit_compile=True`) and without,
against the machine's matmul rate measured in the same run.

    python benchmarks/profile_step.py --models MAF,NSF --fit-models MAF   # the BENCHMARKS.md table
    python benchmarks/profile_step.py --quick                             # MAF, 2 rounds, no profiler

Parts, each a separate `tf.function(jit_compile=J)` on the same model and batch:
  log_prob    forward only: `model(x)`
  fwd+bwd     loss and gradient (GradientTape) w.r.t. every trainable weight
  opt apply   `Adam.apply(grads)` with fixed gradients
  Keras step  `model.train_on_batch(x)` of a model compiled with `jit_compile=J`
  `fit`       steady-state seconds per step of `model.fit` (epochs 2-3 of 3, 16 full
              batches per epoch), for the models in --fit-models; and the number of traces
              of the flow's `call` per epoch (a trace after epoch 1 is a retrace)
Timing: timing.Bench (interleaved blocks, median). FLOPs count the conditioners' dense
matmuls only (2*batch*in*out forward, a train step ~3x forward), compared with a plain
`keras.ops.matmul` at 2048^3 (peak) and at the model's own shapes. The op-level breakdown
of the Keras step (jit off) comes from tf.profiler.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import keras_flows  # noqa: E402
import protocol  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402

MODELS = ("MAF", "NSF", "RealNVP")
PARTS = ("log_prob", "fwd+bwd", "opt apply", "Keras step")
FLOP_FACTOR = {"log_prob": 1, "fwd+bwd": 3, "Keras step": 3}


def counting(cls):
    """A subclass of preset `cls` that counts the Python executions of its `call` (one per trace)."""

    class Counting(cls):
        calls = 0

        def call(self, inputs, training=False):  # Flow.call's signature (Keras builds from it)
            type(self).calls += 1
            return super().call(inputs, training=training)

    return Counting


def build_model(name, config, x, count=False):
    import keras

    import tfflows

    keras.utils.set_random_seed(config.seed)
    cls = getattr(tfflows, name)
    model = keras_flows.preset_builder(counting(cls) if count else cls, config)(x.shape[-1])
    model(x)
    model.transform.initialize_from_data(x)
    return model


def matmul_shapes(model):
    """(in, out) of every dense matmul in the flow's conditioners (MADE and MLP)."""
    shapes = []
    for layer in model.transform.layers:
        net = getattr(layer, "made", None) or getattr(layer, "conditioner", None)
        if net is not None and hasattr(net, "kernels_and_biases"):
            shapes += [tuple(int(s) for s in k.shape) for k in net.kernels_and_biases()[0]]
    return shapes


def register_parts(bench, name, config, x):
    import keras
    import tensorflow as tf
    from keras import ops

    model = build_model(name, config, x)
    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(config.learning_rate)
    optimizer.build(variables)

    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            loss = -ops.mean(model(x, training=True))
        return loss, tape.gradient(loss, variables)

    def apply(g):
        optimizer.apply(g, variables)
        return optimizer.iterations

    grads = [ops.convert_to_tensor(g) for g in loss_and_grads(x)[1]]
    for jit in (False, True):
        keras_model = build_model(name, config, x)
        keras_model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
        fns = {"log_prob": (tf.function(lambda x: model(x, training=True), jit_compile=jit), x),
               "fwd+bwd": (tf.function(loss_and_grads, jit_compile=jit), x),
               "opt apply": (tf.function(apply, jit_compile=jit), grads)}
        for part, (f, arg) in fns.items():
            bench.add((name, part, jit), lambda f=f, arg=arg: f(arg))
        bench.add((name, "Keras step", jit), lambda m=keras_model: m.train_on_batch(x, return_dict=True))
    return model.count_params(), matmul_shapes(model)


def matmul_rates(bench, shapes):
    """Plain eager keras.ops.matmul at 2048^3 (the peak) and at the model's shapes."""
    from keras import ops

    rng, flops = np.random.default_rng(0), {}
    for m, k, n in [(2048, 2048, 2048), *shapes]:
        a = ops.convert_to_tensor(rng.standard_normal((m, k)).astype("float32"))
        b = ops.convert_to_tensor(rng.standard_normal((k, n)).astype("float32"))
        key = f"matmul {m}x{k}x{n} (eager)"
        bench.add(key, lambda a=a, b=b: ops.matmul(a, b))
        flops[key] = 2 * m * k * n
    return flops


def fit_checks(name, config, data, batch, jit):
    """((wall, CPU) s per fit step in steady state, traces per training epoch, per validation)."""
    import keras

    train, val, _ = data
    model = build_model(name, config, train[:batch])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
    timer = keras_flows.epoch_timer()
    model.fit(np.resize(train, (16 * batch, train.shape[1])), batch_size=batch, epochs=3, callbacks=[timer],
              verbose=0)
    per_step = (statistics.mean(timer.seconds[1:]) / 16, statistics.mean(timer.cpu_seconds[1:]) / 16)
    model = build_model(name, config, train[:batch], count=True)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit)
    cls, marks = type(model), []

    class Traces(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append([cls.calls])

        def on_test_begin(self, logs=None):
            marks[-1].append(cls.calls)

        def on_test_end(self, logs=None):
            marks[-1].append(cls.calls)

    model.fit(train, validation_data=val, batch_size=batch, epochs=3, callbacks=[Traces()], verbose=0)
    return per_step, [b - a for a, b, _ in marks], [c - b for _, b, c in marks]


def op_profile(fn, steps):
    """{op type: host self-time in us} over `steps` calls of fn (tf.profiler), or a string why not."""
    import tensorflow as tf

    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
    except ImportError as exc:
        return f"ImportError: {exc}"
    logdir = tempfile.mkdtemp(prefix="tfflows_prof_")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            out = fn()
        timing._sync(out)
        tf.profiler.experimental.stop()
        files = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        raw, ok = plugin.xspace_to_tools_data(files, "framework_op_stats", {}) if files else (None, False)
        if not ok:
            return "no profile data"
        table = json.loads(raw)[0]
        cols = [c["id"] for c in table["cols"]]
        i_type, i_self = cols.index("type"), cols.index("total_self_time")
        by_type = {}
        for row in table["rows"]:
            v = [c.get("v") for c in row["c"]]
            if v[i_type] != "IDLE":
                by_type[v[i_type]] = by_type.get(v[i_type], 0.0) + float(v[i_self])
        return by_type
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def ms(s):
    return f"{s * 1e3:.2f}" if s == s else "—"


def gflops(flops, s):
    return flops / s / 1e9 if s and s == s else float("nan")


def render(args, names, bench, models, mm_flops, fits, profiles, total_s):
    peak = gflops(mm_flops["matmul 2048x2048x2048 (eager)"], bench.cpu("matmul 2048x2048x2048 (eager)"))
    lines = [f"# Where a training step's time goes (profile, {datetime.datetime.now():%Y-%m-%d %H:%M})", "",
             f"Command: `{report.command_line('profile_step.py', args.argv)}` ({total_s:.0f} s)", "",
             *report.machine_header(),
             f"- tfflows presets at the sizes of benchmarks/run.py (5 layers, hidden (128, 128), NSF bins=8) on "
             f"digits (d=64), batch {args.batch_size}, float32, TF threads: {args.threads or 'TF default'}.",
             f"- Timing: blocks of ~{args.block:.2f} s, interleaved for {args.rounds} rounds, median. **CPU ms** "
             "(process CPU time, all threads) is the work done; wall ms swings with the load. Ratios and FLOP/s "
             "use CPU time. `jit_compile=\"auto\"` resolves to False on a CPU-only machine.", "",
             "## Matmul reference (plain `keras.ops.matmul`, float32, same run)", "",
             "| matmul | CPU ms | wall ms | GFLOP/s (CPU time) | % of 2048³ peak |", "|---|---:|---:|---:|---:|"]
    for key, fl in mm_flops.items():
        g = gflops(fl, bench.cpu(key))
        lines.append(f"| {key} | {bench.cpu(key) * 1e3:.3f} | {bench.median(key) * 1e3:.3f} | {g:.1f} "
                     f"| {100 * g / peak:.0f}% |")
    for name in names:
        params, shapes = models[name]
        fwd = sum(2 * args.batch_size * i * o for i, o in shapes)
        lines += ["", f"## {name} (d=64, batch {args.batch_size}, {params:,} params)", "",
                  f"Dense matmuls: {len(shapes)}; forward {fwd / 1e6:.1f} MFLOP, train step ≈ 3× (matmuls only).", "",
                  "| part | CPU ms, jit=False | CPU ms, jit=True | XLA speed-up (CPU) | wall ms (False / True) "
                  "| GFLOP/s (False / True) | best % of peak | first call s (False / True) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for part in PARTS:
            cf, ct = bench.cpu((name, part, False)), bench.cpu((name, part, True))
            rates = "— | —"
            if part in FLOP_FACTOR:
                gf, gt = gflops(FLOP_FACTOR[part] * fwd, cf), gflops(FLOP_FACTOR[part] * fwd, ct)
                rates = f"{gf:.1f} / {gt:.1f} | {100 * max(gf, gt) / peak:.0f}%"
            lines.append(f"| {part} | {ms(cf)} | {ms(ct)} | {cf / ct:.2f}× | {ms(bench.median((name, part, False)))} / "
                         f"{ms(bench.median((name, part, True)))} | {rates} | {bench.first_s[(name, part, False)]:.1f}"
                         f" / {bench.first_s[(name, part, True)]:.1f} |")
        if (name, False) in fits:
            (wf, cf), (wt, ct) = fits[(name, False)][0], fits[(name, True)][0]
            gf, gt = gflops(3 * fwd, cf), gflops(3 * fwd, ct)
            lines.append(f"| `fit`, per step (steady) | {ms(cf)} | {ms(ct)} | {cf / ct:.2f}× | {ms(wf)} / {ms(wt)} "
                         f"| {gf:.1f} / {gt:.1f} | {100 * max(gf, gt) / peak:.0f}% | — |")
            lines.append("")
            for jit in (False, True):
                _, tr, va = fits[(name, jit)]
                again = any(tr[1:]) or any(va[1:])
                lines.append(f"- Traces of `call` per epoch, jit={jit}: training {tr}, validation {va} → "
                             f"{'RETRACES after epoch 1' if again else 'no retracing after the first epoch'}.")
    if profiles:
        lines += ["", "## Op-level breakdown of the Keras train step (tf.profiler, jit_compile=False, host self-time)",
                  "", "The profiler slows the run down: compare shares, not totals.", ""]
        for name, (steps, prof) in profiles.items():
            if isinstance(prof, str):
                lines += [f"- {name}: profiler unavailable ({prof})", ""]
                continue
            busy = sum(prof.values())
            lines += [f"**{name}** ({steps} steps, {busy / 1e3 / steps:.2f} ms/step in TF ops)", "",
                      "| op type | ms/step | % of op time |", "|---|---:|---:|"]
            lines += [f"| {op} | {us / 1e3 / steps:.3f} | {100 * us / busy:.0f}% |"
                      for op, us in sorted(prof.items(), key=lambda kv: -kv[1])[:10]] + [""]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated from {MODELS}")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--block", type=float, default=0.15, help="seconds per timing block")
    p.add_argument("--threads", type=int, default=1, help="TF intra/inter-op threads (0 = TF default)")
    p.add_argument("--fit-models", default="MAF", help="models that get the fit and retracing checks ('none': skip)")
    p.add_argument("--no-tf-profiler", action="store_true", help="skip the op-level tf.profiler breakdown")
    p.add_argument("--quick", action="store_true", help="MAF only, batch 64, 2 rounds, fit checks, no profiler")
    p.add_argument("--out", help="default benchmarks/results/profile_<date>.md")
    args = p.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.models, args.fit_models, args.batch_size, args.rounds, args.block = "MAF", "MAF", 64, 2, 0.05
        args.no_tf_profiler = True
    protocol.limit_threads(args.threads)
    import tensorflow as tf

    config = protocol.Config(batch_size=args.batch_size, num_layers=5, hidden_units=(128, 128))
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    data = protocol.load("digits", config.seed)
    x = tf.constant(data[0][:args.batch_size])
    t0 = time.perf_counter()
    bench, models, fits, profiles = timing.Bench(args.block), {}, {}, {}
    for name in names:
        print(f"[{time.perf_counter() - t0:.0f}s] compiling {name}", flush=True)
        models[name] = register_parts(bench, name, config, x)
    shapes = sorted({(args.batch_size, i, o) for _, s in models.values() for i, o in s})
    mm_flops = matmul_rates(bench, shapes)
    print(f"[{time.perf_counter() - t0:.0f}s] timing {len(bench.fns)} functions × {args.rounds} rounds", flush=True)
    bench.run(args.rounds)
    for name in [n.strip() for n in args.fit_models.split(",") if n.strip() in names]:
        for jit in (False, True):
            fits[(name, jit)] = fit_checks(name, config, data, args.batch_size, jit)
    if not args.no_tf_profiler:
        for name in [n for n in names if n in ("MAF", "NSF")]:
            steps = max(5, min(30, bench.n[(name, "Keras step", False)] * 2))
            profiles[name] = (steps, op_profile(bench.fns[(name, "Keras step", False)], steps))
    text = render(args, names, bench, models, mm_flops, fits, profiles, time.perf_counter() - t0)
    print(text)
    report.write(args.out or report.default_out("profile", args.quick), text)


if __name__ == "__main__":
    main()
