"""Export cost and serving latency of a MAF at d=64.

    python benchmarks/bench_export.py [--out benchmarks/results/export.md] [--repeats 50]
    python benchmarks/bench_export.py --quick          # 1 epoch, 3 repeats

Measures, for `tfflows.MAF(64)` (5 MADE layers of 64-64 hidden units):
- seconds from `flow.export(path)` to a loaded, callable `log_prob` signature, split into
  export, `tf.saved_model.load` and first call (which runs the graph once);
- the same in a fresh process with TensorFlow only (interpreter start and `import
  tensorflow` excluded, measured from inside that process);
- per-row latency of log_prob at batch sizes 1, 64 and 1024: the loaded SavedModel
  signature against the in-process model, both through `flow.log_prob` (the public,
  eager, validated entry point) and through a `tf.function` of `flow.call`, all in this
  one run. Timings are medians over `--repeats` calls after a warm-up; the table also
  gives each as a ratio to the SavedModel.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import report  # noqa: E402
import tfflows as tff  # noqa: E402

D = 64
CHILD = """
import sys, time, json
t0 = time.perf_counter()
import numpy as np, tensorflow as tf
t1 = time.perf_counter()
m = tf.saved_model.load(sys.argv[1])
f = m.signatures["log_prob"]
t2 = time.perf_counter()
f(x=tf.zeros((1, int(sys.argv[2])), tf.float32))["log_prob"].numpy()
t3 = time.perf_counter()
print(json.dumps({"import_tf": t1 - t0, "load": t2 - t1, "first_call": t3 - t2,
                  "tfflows_loaded": "tfflows" in sys.modules}))
"""


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="default benchmarks/results/export.md")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 3 repeats (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 3

    train, val, test = tff.datasets.digits_tabular()
    model_name, flow = "MAF(64)", tff.MAF(D)
    start = time.perf_counter()
    flow.fit(train, validation_data=val, epochs=args.epochs, batch_size=128, verbose=0)
    fit_s = time.perf_counter() - start

    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "maf64")
    t0 = time.perf_counter()
    flow.export(path)
    t1 = time.perf_counter()
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures["log_prob"]
    t2 = time.perf_counter()
    sig(x=tf.constant(test[:1]))["log_prob"].numpy()
    t3 = time.perf_counter()
    export_s, load_s, first_s = t1 - t0, t2 - t1, t3 - t2
    size_mb = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs) / 2**20

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    child = json.loads(subprocess.run([sys.executable, "-c", CHILD, path, str(D)], capture_output=True, text=True,
                                      env=env, cwd=tmp, check=True).stdout.strip().splitlines()[-1])

    max_err = float(np.abs(sig(x=tf.constant(test))["log_prob"].numpy() - flow.log_prob(test).numpy()).max())
    compiled = tf.function(lambda x: flow(x, training=False), reduce_retracing=True)
    rows = []
    for batch in (1, 64, 1024):
        x = np.resize(test, (batch, D)).astype("float32")
        xt = tf.constant(x)
        t_sm = median_time(lambda: sig(x=xt)["log_prob"].numpy(), args.repeats)
        t_eager = median_time(lambda: flow.log_prob(x).numpy(), args.repeats)
        t_fn = median_time(lambda: compiled(xt).numpy(), args.repeats)
        rows.append((batch, t_sm, t_eager, t_fn))

    device = "GPU " + tf.config.list_physical_devices("GPU")[0].name if tf.config.list_physical_devices("GPU") \
        else f"CPU ({os.cpu_count()} cores visible)"
    lines = [
        "# Export and serving latency",
        "",
        f"Model: `tfflows.{model_name}`, {flow.count_params():,} parameters, trained {args.epochs} epochs on "
        f"digits_tabular ({fit_s:.1f} s). SavedModel size {size_mb:.1f} MiB. Device: {device}; "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}; 1-minute load average at the end "
        f"{os.getloadavg()[0]:.1f} (a shared machine inflates every timing; compare ratios).",
        f"Command: `{report.command_line('bench_export.py', argv)}`",
        "",
        "## From `Flow.export` to a loaded signature",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `flow.export(path)` (traces log_prob, encode, decode, sample; writes) | {export_s:.2f} |",
        f"| `tf.saved_model.load(path)` in the same process | {load_s:.2f} |",
        f"| first `log_prob` call | {first_s:.2f} |",
        f"| **total, export to first result** | **{export_s + load_s + first_s:.2f}** |",
        f"| fresh TF-only process: `import tensorflow` | {child['import_tf']:.2f} |",
        f"| fresh TF-only process: load + first call | {child['load'] + child['first_call']:.2f} |",
        "",
        f"Largest |log_prob difference| SavedModel vs in-process on {len(test)} test rows: {max_err:.2e}.",
        "",
        "## Per-row latency of log_prob (median of "
        f"{args.repeats} calls, microseconds per row; ratio to the SavedModel in brackets)",
        "",
        "| batch | loaded SavedModel | in-process `flow.log_prob` (eager) | in-process `tf.function(flow)` |",
        "|---|---|---|---|",
    ]
    for batch, t_sm, t_eager, t_fn in rows:
        us = 1e6 / batch
        lines.append(f"| {batch} | {t_sm * us:.1f} | {t_eager * us:.1f} ({t_eager / t_sm:.2f}x) | "
                     f"{t_fn * us:.1f} ({t_fn / t_sm:.2f}x) |")
    lines += ["", "The eager `flow.log_prob` also validates its input (dtype, shape) at the Python boundary; "
              "the SavedModel and the `tf.function` run one graph."]
    text = "\n".join(lines) + "\n"
    print(text)
    report.write(args.out or report.default_out("export", args.quick, dated=False), text)


if __name__ == "__main__":
    main()
