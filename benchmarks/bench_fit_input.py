"""Where `Flow.fit`'s per-step overhead goes: the same MAF trained by

  keras-default    `keras.Model.fit` on arrays (Keras's array adapter, one step per call)
  tf.data, spe=1   `Flow.fit` (its tf.data pipeline) compiled with steps_per_execution=1
  tfflows default  `Flow.fit` with `Flow.compile`'s default steps_per_execution="auto"
  compiled step    a bare `tf.function` train step called from Python (the floor: no
                   Keras loop, no callbacks, no input pipeline; the TFP peer's loop)

on the protocol's digits and breast_cancer training splits (batch 64, 1 TF thread).
Variants are interleaved round-robin and the median round is reported, in wall and process
CPU time per step; the ratios are to keras-default in the same run.

    python benchmarks/bench_fit_input.py      # about 2 minutes on 2 cores
    python benchmarks/bench_fit_input.py --rounds 3 --out /tmp/fit_input.md
    python benchmarks/bench_fit_input.py --quick    # breast_cancer, 1 round of 1 epoch
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import protocol  # noqa: E402
import report  # noqa: E402

VARIANTS = ("keras-default", "tf.data, spe=1", "tfflows default", "compiled step")


def make_runner(variant, train, batch_size, epochs):
    """A function running `epochs` epochs of training of a fresh, warmed-up MAF."""
    import keras
    import tensorflow as tf

    import tfflows as tff

    keras.utils.set_random_seed(0)
    flow = tff.MAF(train.shape[1], num_layers=5, hidden_units=(128, 128))
    flow.compile(optimizer=keras.optimizers.Adam(1e-3),
                 **({} if variant == "tfflows default" else {"steps_per_execution": 1}))
    flow.fit(train, epochs=1, batch_size=batch_size, verbose=0)  # build, initialize, trace
    if variant == "keras-default":
        return lambda: keras.Model.fit(flow, train, epochs=epochs, batch_size=batch_size, verbose=0)
    if variant in ("tf.data, spe=1", "tfflows default"):
        return lambda: flow.fit(train, epochs=epochs, batch_size=batch_size, verbose=0)

    variables, optimizer = flow.trainable_variables, flow.optimizer

    @tf.function(input_signature=[tf.TensorSpec([None, train.shape[1]], tf.float32)])
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(0)

    def run():
        for _ in range(epochs):
            order = rng.permutation(len(train))
            for i in range(0, len(train), batch_size):
                float(step(train[order[i:i + batch_size]]))

    run()
    return run


def measure(train, rounds, batch_size=64, epochs=4):
    runners = {v: make_runner(v, train, batch_size, epochs) for v in VARIANTS}
    steps = epochs * int(np.ceil(len(train) / batch_size))
    times = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant, run in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[variant].append(((time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps))
    return {v: (float(np.median([t[0] for t in ts])), float(np.median([t[1] for t in ts]))) for v, ts in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=4, help="epochs per round")
    p.add_argument("--quick", action="store_true", help="breast_cancer only, 1 round of 1 epoch (smoke run)")
    p.add_argument("--out", help="default benchmarks/results/fit_input.md")
    args = p.parse_args(argv)
    datasets = ("breast_cancer",) if args.quick else protocol.DATASETS
    if args.quick:
        args.rounds, args.epochs = 1, 1
    protocol.limit_threads(1)
    lines = [f"# Flow.fit per-step overhead ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Command: `{report.command_line('bench_fit_input.py', argv)}`", "", *report.machine_header(),
             f"- MAF (5 layers, hidden (128, 128)), Adam(1e-3), batch 64, {args.epochs} epochs per round, "
             f"{args.rounds} interleaved rounds, median; 1 TF thread. Ratios: steps/s relative to keras-default.", ""]
    for name in datasets:
        train = protocol.load(name, 0)[0]
        result = measure(train, args.rounds, epochs=args.epochs)
        base_wall, base_cpu = result["keras-default"]
        lines += [f"## {name} ({len(train)} training rows)", "",
                  "| variant | wall ms/step | steps/s (× keras-default) | CPU ms/step | steps per CPU s (× keras-default) |",
                  "|---|---:|---:|---:|---:|"]
        for variant, (wall, cpu) in result.items():
            lines.append(f"| {variant} | {wall * 1e3:.2f} | {1 / wall:.0f} ({base_wall / wall:.2f}×) "
                         f"| {cpu * 1e3:.2f} | {1 / cpu:.0f} ({base_cpu / cpu:.2f}×) |")
        lines.append("")
        print("\n".join(lines[-len(result) - 4:]), flush=True)
    report.write(args.out or report.default_out("fit_input", args.quick, dated=False), "\n".join(lines))


if __name__ == "__main__":
    main()
