"""TensorFlow backend vs JAX backend: training steps/s of tfflows' MAF and NSF (the sizes of
benchmarks/run.py) on the same data, batch and number of steps, in one run. Writes
benchmarks/results/backends.md.

    python benchmarks/bench_backends.py                 # MAF and NSF, TF (auto, XLA) and JAX (~4 min)
    python benchmarks/bench_backends.py --models MAF --epochs 4
    python benchmarks/bench_backends.py --quick          # MAF, 2 epochs of 300 rows

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

(The float64 probe of earlier versions, whose finding BENCHMARKS.md records, is in git
history; float64 under JAX is covered by the test suite.)
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import keras_flows  # noqa: E402
import protocol  # noqa: E402
import report  # noqa: E402
ROWS = (("tensorflow", "auto"), ("tensorflow", "true"), ("jax", "auto"))
JIT = {"auto": "auto", "true": True, "false": False}
THREADS_NOTE = ("one thread per backend (TF intra/inter-op = 1; JAX XLA_FLAGS=--xla_cpu_multi_thread_eigen=false "
                "intra_op_parallelism_threads=1)")


def failure(exc):
    msg = str(exc).strip().splitlines()
    return {"error": f"{type(exc).__name__}: {msg[0][:300] if msg else ''}",
            "where": report.where_in_tfflows(exc) or "no tfflows frame"}


# ----- worker (runs inside one backend) ----------------------------------------------------
def worker(args):
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        protocol.limit_threads(args.threads)
    import tfflows

    config = protocol.Config(batch_size=args.batch_size, num_layers=5, hidden_units=(128, 128), seed=args.seed)
    train, _, test = protocol.load("digits", config.seed)
    train = train[:args.train_rows] if args.train_rows else train
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    out = []
    for name in args.models.split(","):
        row = {"model": name, "backend": backend, "jit": args.jit, "steps_per_epoch": steps_per_epoch}
        try:
            keras.utils.set_random_seed(config.seed)
            model = keras_flows.preset_builder(getattr(tfflows, name), config)(train.shape[1])
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=JIT[args.jit])
            row["jit_resolved"] = bool(model.jit_compile)
            clock = keras_flows.epoch_timer()
            model.fit(train, batch_size=config.batch_size, epochs=args.epochs, callbacks=[clock], verbose=0,
                      shuffle=True)
            wall, cpu = clock.seconds[1:], clock.cpu_seconds[1:]
            steps = steps_per_epoch * len(wall)
            row.update(first_epoch_s=clock.seconds[0], steps=steps, steps_per_s=steps / sum(wall),
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


# ----- driver --------------------------------------------------------------------------------
def run_worker(backend, jit, args):
    path = os.path.join(tempfile.gettempdir(), f"tfflows_backends_{os.getpid()}_{backend}_{jit}.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--jit", jit, "--models", args.models,
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
           "--seed", str(args.seed), "--samples", str(args.samples), "--train-rows", str(args.train_rows),
           "--json", path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=protocol.backend_env(backend, args.threads), capture_output=True, text=True,
                          timeout=args.timeout)
    wall = time.perf_counter() - start
    try:
        with open(path) as f:
            rows = json.load(f)
        os.remove(path)
    except (OSError, ValueError):
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        rows = [{"model": m, "backend": backend, "jit": jit, "error": f"worker exited with {proc.returncode}",
                 "where": "subprocess", "traceback": tail} for m in args.models.split(",")]
    return rows, wall


def render(args, command, rows, total_s):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"# TensorFlow vs JAX backend ({now})", "", f"Command: `{command}` ({total_s:.0f} s)", ""]
    lines += report.machine_header()
    lines += [
        f"- Same data (digits training split, {args.train_rows or 1078} × 64), batch {args.batch_size} (partial last batch kept), "
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
    p.add_argument("--train-rows", type=int, default=0, help="use only the first N training rows (0: all)")
    p.add_argument("--quick", action="store_true", help="MAF, 2 epochs of 320 rows (smoke run)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per subprocess")
    p.add_argument("--out", help="default benchmarks/results/backends.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--jit", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.models, args.epochs, args.train_rows = "MAF", 2, 320

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
    text = render(args, report.command_line("bench_backends.py", argv), rows, time.perf_counter() - start)
    print(text)
    report.write(args.out or report.default_out("backends", args.quick, dated=False), text)


if __name__ == "__main__":
    main()
