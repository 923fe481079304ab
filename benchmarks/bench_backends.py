"""TensorFlow backend vs JAX backend: training steps/s of tfflows' MAF and NSF (the sizes of
benchmarks/run.py) on the same data, batch and number of steps, in one run. Writes
benchmarks/results/backends.md.

    python benchmarks/bench_backends.py                 # MAF and NSF, TF (auto, XLA) and JAX (~4 min)
    python benchmarks/bench_backends.py --models MAF --epochs 4

Keras fixes its backend at import, so each backend runs in its own subprocess
(`KERAS_BACKEND=tensorflow|jax`), one after the other. Rows:
  tensorflow, jit_compile="auto"  what `Flow.fit` runs by default (no XLA on a CPU-only machine)
  tensorflow, jit_compile=True    the same model with XLA
  jax, jit_compile="auto"         JAX always compiles the step with XLA (`jax.jit`)
Each model: `keras.utils.set_random_seed(seed)`, the preset of benchmarks/run.py, Adam, the
digits training split (`tfflows.datasets.digits_tabular`, 1078 rows, batch 64, partial last
batch kept, shuffled), `--epochs` epochs of `Flow.fit`; the first epoch (tracing and XLA
compilation) is excluded from steps/s. Reported per row: steps/s (wall), CPU ms per step
(process CPU time, all threads: the work done, steadier than wall on a shared machine),
first-epoch seconds (compile), test NLL after the same number of steps, samples/s.

A JAX probe (`--no-probe` skips it) also runs the MAF layer's inverse and a short fit in
float64 with `JAX_ENABLE_X64=1`, the setting of the JAX property suite, and reports the
first error with the tfflows file and line it comes from.
"""

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import protocol  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
ROWS = (("tensorflow", "auto"), ("tensorflow", "true"), ("jax", "auto"))
JIT = {"auto": "auto", "true": True, "false": False}
THREADS_NOTE = ("one thread per backend (TF intra/inter-op = 1; JAX XLA_FLAGS=--xla_cpu_multi_thread_eigen=false "
                "intra_op_parallelism_threads=1)")


def where_in_tfflows(exc):
    """'tfflows/file.py:line in function' of the innermost tfflows frame of an exception."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.sep + "tfflows" + os.sep in f.filename]
    if not frames:
        return "no tfflows frame"
    f = frames[-1]
    return f"{os.path.relpath(f.filename, ROOT)}:{f.lineno} in {f.name}"


def failure(exc):
    msg = str(exc).strip().splitlines()
    return {"error": f"{type(exc).__name__}: {msg[0][:300] if msg else ''}", "where": where_in_tfflows(exc)}


# ----- worker (runs inside one backend) ----------------------------------------------------
def worker(args):
    import keras

    from benchmarks.profile_step import epoch_clock
    from benchmarks.run import preset_builder

    backend = keras.backend.backend()
    if backend == "tensorflow":
        protocol.limit_threads(args.threads)
    import tfflows

    config = protocol.Config(batch_size=args.batch_size, num_layers=5, hidden_units=(128, 128), seed=args.seed)
    train, _, test = protocol.load("digits", config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    out = []
    for name in args.models.split(","):
        row = {"model": name, "backend": backend, "jit": args.jit, "steps_per_epoch": steps_per_epoch}
        try:
            keras.utils.set_random_seed(config.seed)
            model = preset_builder(getattr(tfflows, name), config)(train.shape[1])
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=JIT[args.jit])
            row["jit_resolved"] = bool(model.jit_compile)
            clock = epoch_clock()
            model.fit(train, batch_size=config.batch_size, epochs=args.epochs, callbacks=[clock], verbose=0,
                      shuffle=True)
            wall, cpu = clock.wall[1:], clock.cpu[1:]
            steps = steps_per_epoch * len(wall)
            row.update(first_epoch_s=clock.wall[0], steps=steps, steps_per_s=steps / sum(wall),
                       cpu_ms_per_step=1e3 * sum(cpu) / steps, params=int(model.count_params()))
            row["test_nll"], _, row["nonfinite_test"] = protocol.nll_summary(np.asarray(model.log_prob(test)))
            rate, bad = protocol.sampling_rate(lambda n: model.sample(n, seed=0), args.samples)
            row.update(samples_per_s=rate, nonfinite_samples=bad)
        except Exception as exc:  # noqa: BLE001 - a failure is a result
            row.update(failure(exc))
            row["traceback"] = traceback.format_exc()[-3000:]
        out.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), file=sys.stderr, flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f)


def x64_probe(args):
    """Float64 under JAX_ENABLE_X64=1: MAF layer inverse, a float64 MAF preset's log_prob,
    sample and a short fit; the first error of each with its tfflows location."""
    import keras

    import tfflows

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6))
    out = []

    def attempt(what, fn, where=None):
        try:
            fn()
            out.append({"check": what, "ok": True})
        except Exception as exc:  # noqa: BLE001
            out.append({"check": what, "ok": False, **failure(exc), **({"where": where} if where else {})})

    def dtype_kept():
        from keras import ops

        got = {name: keras.backend.standardize_dtype(getattr(ops, name)(ops.convert_to_tensor(x, "float64")).dtype)
               for name in ("tanh", "sigmoid", "exp", "softplus")}
        lost = [name for name, dt in got.items() if dt != "float64"]
        if lost:
            raise TypeError(f"keras.ops.{'/'.join(lost)} of a float64 tensor returned {got[lost[0]]} "
                            "(used by tfflows._math.soft_clamp: tanh)")

    attempt("keras.ops keeps float64 (tanh, sigmoid, exp, softplus)", dtype_kept,
            where="keras/src/backend/jax/numpy.py tanh (Keras' dtype promotion), reached from tfflows/_math.py soft_clamp")
    layer = tfflows.MaskedAutoregressive(hidden_units=(16, 16), dtype="float64")
    layer.build((None, 6))
    for w in layer.weights:  # random weights: a non-trivial map
        w.assign(rng.normal(scale=0.3, size=w.shape))

    def round_trip():
        back = np.asarray(layer.inverse(layer.forward(x)))
        err = float(np.max(np.abs(back - x)))
        if not err < 1e-10:
            y = layer.forward(x)
            raise AssertionError(f"float64 round trip max |x - inverse(forward(x))| = {err:.1e} (float32-level); "
                                 f"forward output dtype {keras.backend.standardize_dtype(y.dtype)}")

    attempt("MaskedAutoregressive(dtype=float64) inverse(forward(x)) == x to 1e-10", round_trip,
            where="tfflows/_math.py soft_clamp (ops.tanh) used by tfflows/autoregressive.py _AffineTransformer")
    keras.config.set_floatx("float64")
    try:
        model = tfflows.MAF(6, num_layers=2, hidden_units=(16, 16))
        attempt("MAF (floatx=float64).log_prob", lambda: model.log_prob(x))
        attempt("MAF (floatx=float64).sample", lambda: model.sample(8, seed=0))
        model.compile(optimizer="adam")
        attempt("MAF (floatx=float64).fit", lambda: model.fit(x, batch_size=8, epochs=1, verbose=0))
    finally:
        keras.config.set_floatx("float32")
    with open(args.json, "w") as f:
        json.dump(out, f)


# ----- driver --------------------------------------------------------------------------------
def run_worker(backend, jit, args, extra_env=None, probe=False):
    path = os.path.join(tempfile.gettempdir(), f"tfflows_backends_{os.getpid()}_{backend}_{jit}{'_probe' if probe else ''}.json")
    env = protocol.backend_env(backend, args.threads, extra_env)
    cmd = [sys.executable, os.path.abspath(__file__), "--probe-worker" if probe else "--worker", "--jit", jit,
           "--models", args.models, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--threads", str(args.threads), "--seed", str(args.seed), "--samples", str(args.samples),
           "--json", path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - start
    try:
        with open(path) as f:
            rows = json.load(f)
        os.remove(path)
    except (OSError, ValueError):
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        rows = [{"model": m, "backend": backend, "jit": jit, "error": f"worker exited with {proc.returncode}",
                 "where": "subprocess", "traceback": tail} for m in args.models.split(",")] if not probe else \
            [{"check": "probe", "ok": False, "error": f"worker exited with {proc.returncode}", "where": tail}]
    return rows, wall


def render(args, command, rows, probe, total_s):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"# TensorFlow vs JAX backend ({now})", "", f"Command: `{command}` ({total_s:.0f} s)", ""]
    lines += protocol.machine_header()
    try:
        import jax

        lines[-1] += f", jax {jax.__version__}"
    except ImportError:
        pass
    lines += [
        f"- Same data (digits training split, 1078 × 64), batch {args.batch_size} (partial last batch kept), "
        f"Adam(1e-3), seed {args.seed}, 5 layers, hidden units (128, 128) (NSF bins=8) as in benchmarks/run.py; "
        f"{args.epochs} epochs of `Flow.fit`, the first (tracing/compilation) excluded from steps/s; "
        f"{THREADS_NOTE if args.threads == 1 else 'library-default threads'}.",
        "- Each backend runs in its own subprocess, one after the other. **CPU ms/step** (process CPU time) "
        "measures the work done and is steady under other jobs' load; steps/s (wall) swings with the load of "
        "this shared machine. Absolute numbers are not comparable across runs; only the ratios within this "
        "run mean anything.",
        "",
        "| model | backend | jit_compile (resolved) | steps/s (× TF auto) | CPU ms/step (TF auto ÷ this) "
        "| first epoch s | test NLL after the same steps | samples/s | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in args.models.split(","):
        ref = next((r for r in rows if r["model"] == name and r["backend"] == "tensorflow" and r["jit"] == "auto"
                    and "error" not in r), None)
        for r in [r for r in rows if r["model"] == name]:
            jit = f"{r['jit']} ({r.get('jit_resolved', '?')})"
            if "error" in r:
                lines.append(f"| {name} | {r['backend']} | {jit} | failed | — | — | — | — "
                             f"| {r['error']} (at {r['where']}) |")
                continue
            sps = f"{r['steps_per_s']:.1f}" + (f" ({r['steps_per_s'] / ref['steps_per_s']:.2f}×)" if ref else "")
            cpu = f"{r['cpu_ms_per_step']:.1f}" + (f" ({ref['cpu_ms_per_step'] / r['cpu_ms_per_step']:.2f}×)"
                                                    if ref else "")
            note = []
            if r.get("nonfinite_test"):
                note.append(f"{r['nonfinite_test']} non-finite test rows")
            if r.get("nonfinite_samples"):
                note.append(f"{r['nonfinite_samples']} non-finite samples")
            lines.append(f"| {name} | {r['backend']} | {jit} | {sps} | {cpu} | {r['first_epoch_s']:.1f} "
                         f"| {r['test_nll']:.2f} | {r['samples_per_s']:.0f} | {'; '.join(note)} |")
    lines.append("")
    lines += ["Ratios in parentheses are to the TensorFlow row with Keras' default `jit_compile=\"auto\"` "
              "(>1: faster than it). Test NLL is after the same number of steps from the same seed; the backends "
              "draw different random initial weights and shuffles, so small NLL differences are expected.", ""]
    summary = []
    for name in args.models.split(","):
        get = {(r["backend"], r["jit"]): r for r in rows if r["model"] == name and "error" not in r}
        tf_auto, tf_xla, jx = get.get(("tensorflow", "auto")), get.get(("tensorflow", "true")), get.get(("jax", "auto"))
        if jx and tf_auto:
            s = (f"- {name}: JAX vs TF default: {jx['steps_per_s'] / tf_auto['steps_per_s']:.2f}× steps/s (wall), "
                 f"{tf_auto['cpu_ms_per_step'] / jx['cpu_ms_per_step']:.2f}× less CPU per step")
            if tf_xla:
                s += (f"; JAX vs TF with jit_compile=True: {jx['steps_per_s'] / tf_xla['steps_per_s']:.2f}× steps/s, "
                      f"{tf_xla['cpu_ms_per_step'] / jx['cpu_ms_per_step']:.2f}× less CPU per step")
            summary.append(s + ".")
    if summary:
        lines += ["## Ratios", ""] + summary + [""]
    if probe is not None:
        lines += ["## JAX float64 probe (`JAX_ENABLE_X64=1`, the JAX property suite's setting)", "",
                  "| check | result |", "|---|---|"]
        for p in probe:
            result = "ok" if p.get("ok") else f"FAILED: {p.get('error')} (at {p.get('where')})"
            lines.append(f"| {p['check']} | {result} |")
        lines.append("")
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["## Failures (traceback tails)", ""]
        for r in failed:
            lines += [f"### {r['model']} on {r['backend']} (jit {r['jit']})", "", "```",
                      r.get("traceback", "").strip(), "```", ""]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="MAF,NSF")
    p.add_argument("--epochs", type=int, default=4, help="epochs of fit; the first is excluded from steps/s")
    p.add_argument("--batch-size", type=int, default=64, help="default: the protocol's batch size")
    p.add_argument("--threads", type=int, default=1, help="1 (default, as benchmarks/run.py) or 0 = library defaults")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=500, help="samples for the sampling rate")
    p.add_argument("--rows", default=",".join(f"{b}:{j}" for b, j in ROWS),
                   help="backend:jit pairs, e.g. tensorflow:auto,jax:auto")
    p.add_argument("--no-probe", action="store_true", help="skip the JAX float64 probe")
    p.add_argument("--timeout", type=float, default=600, help="seconds per subprocess")
    p.add_argument("--out", default=os.path.join(RESULTS, "backends.md"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--probe-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--jit", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.probe_worker:
        return x64_probe(args)

    command = "python benchmarks/bench_backends.py " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    rows = []
    for pair in args.rows.split(","):
        backend, jit = pair.split(":")
        print(f"[{time.perf_counter() - start:.0f}s] {backend} jit_compile={jit} ...", flush=True)
        got, wall = run_worker(backend, jit, args)
        for r in got:
            r["worker_s"] = wall
            print("   ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "traceback"},
                  flush=True)
        rows += got
    probe = None
    if not args.no_probe:
        print(f"[{time.perf_counter() - start:.0f}s] JAX float64 probe ...", flush=True)
        probe, _ = run_worker("jax", "auto", args, extra_env={"JAX_ENABLE_X64": "1"}, probe=True)
        print("   ", probe, flush=True)
    report = render(args, command, rows, probe, time.perf_counter() - start)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(report)
    print(f"Written to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
