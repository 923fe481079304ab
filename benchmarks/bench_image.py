"""Image flows on scikit-learn's 8x8 digits: test bits/dim in pixel space (17 levels).

    python benchmarks/bench_image.py                # about 6 minutes on 2 cores
    python benchmarks/bench_image.py --quick        # smoke run: 1 epoch, hidden 8

Models, trained in one run on the same split, budget and preprocessing:
  ImageRealNVP  multi-scale RealNVP (tfflows.ImageRealNVP((8, 8, 1)))
  Glow          tfflows.Glow((8, 8, 1))
  flat MAF      tfflows.MAF(64) on the flattened images, behind the same Dequantize + Logit
                layers, so its log-density is in the same pixel space

Data: tfflows.datasets.digits(), 1797 images, shuffled with the seed and split 60/20/20.
Every model's first layers are Dequantize(17) (fresh uniform noise at every training
step) and Logit(alpha=0.05); training data are the integer levels as floats; validation
and test data are dequantized once with fixed seeds. Reported: -log2 p(k + u) / 64 on the
test set, i.e. bits/dim of the dequantized density, an upper bound (in expectation over u)
of the model's discrete bits/dim. A model uniform over the 17 levels scores log2 17 = 4.087.

Training: keras_flows.train_keras_flow (Adam, early stopping on validation NLL,
best weights restored, steady-state steps/s without the first epoch). Timings are ratios
to the flat MAF of the same run.
"""

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import keras_flows  # noqa: E402
import protocol  # noqa: E402
import report  # noqa: E402

LEVELS = 17


def data(seed):
    import tfflows as tff

    images, _ = tff.datasets.digits()
    order = np.random.default_rng(seed).permutation(len(images))
    n_train, n_val = int(0.6 * len(images)), int(0.2 * len(images))
    train, val, test = np.split(images[order], [n_train, n_train + n_val])
    return (train.astype("float32"), tff.dequantize(val, LEVELS, seed=seed + 1),
            tff.dequantize(test, LEVELS, seed=seed + 2))


def models(args):
    import tfflows as tff

    def flat_maf():
        maf = tff.MAF(64, num_layers=5, hidden_units=(128, 128))
        chain = tff.Chain([tff.Dequantize(LEVELS, name="dequantize"), tff.Logit(0.05, name="logit"),
                           maf.transform], name="flat_maf")
        return tff.Flow(chain, event_shape=(64,), name="flat_maf")

    return {
        "ImageRealNVP": (lambda: tff.ImageRealNVP((8, 8, 1), num_levels=LEVELS, num_scales=2, steps_per_scale=3,
                                                  hidden_channels=args.hidden, num_blocks=1), False,
                         f"2 scales, 3+3+4 affine couplings with ActNorm, ConvResNet({args.hidden}, 1 block)"),
        "Glow": (lambda: tff.Glow((8, 8, 1), num_levels=LEVELS, num_scales=2, steps_per_scale=4,
                                  hidden_channels=args.hidden, num_blocks=1), False,
                 f"2 scales x 4 steps (ActNorm, 1x1 conv, affine coupling), ConvResNet({args.hidden}, 1 block)"),
        "flat MAF": (flat_maf, True, "tfflows.MAF(64, num_layers=5, hidden_units=(128, 128)) on flattened images"),
    }


def run_one(name, build, flat, train, val, test, config):
    result = protocol.Result(model=name, library="tfflows", dataset="digits 8x8x1")
    shape = (-1, 64) if flat else (-1, 8, 8, 1)
    train, val, test = (x.reshape(shape) for x in (train, val, test))
    model = build()
    log = keras_flows.train_keras_flow(model, train, val, config)
    bpd = np.asarray(model.bits_per_dim(test), dtype="float64")
    result.test_nll, result.test_nll_finite, result.nonfinite_test = protocol.nll_summary(-bpd)  # in bits/dim
    result.n_test = len(test)
    result.steps_per_s = log.steady_steps_per_s()
    result.wall_s = log.wall_s
    result.epochs, result.best_epoch = len(log.epoch_train_seconds), log.best_epoch
    result.params = int(model.count_params())
    result.samples_per_s, result.nonfinite_samples = protocol.sampling_rate(lambda n: model.sample(n, seed=0), 500)
    result.note = log.note
    return result


def budget(config):
    return (f"Adam(lr={config.learning_rate}), batch {config.batch_size}, at most {config.epochs} epochs and "
            f"{config.max_train_seconds:.0f} s of training per model, early stopping on validation NLL with "
            f"patience {config.patience} (best weights restored)")


def render(results, config, args, seconds):
    peer = next(r for r in results if r.model == "flat MAF")
    lines = [
        "# Image flows on 8x8 digits: test bits/dim in pixel space (17 levels)",
        "",
        f"`{report.command_line('bench_image.py', args.argv)}` "
        f"({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, whole run {seconds:.0f} s).",
        "",
        "Same split (60/20/20 of the 1797 images, seed %d), same preprocessing inside every model "
        "(`Dequantize(17)` with fresh noise each training step, then `Logit(0.05)`), same budget: %s. "
        "Test data dequantized once (fixed seed). Lower is better; a uniform model scores "
        "log2 17 = 4.087 bits/dim." % (config.seed, budget(config)),
        "",
        "| model | test bits/dim | best epoch / run | params | train steps/s (x flat MAF) | "
        "wall s (x flat MAF) | samples/s (x flat MAF) | architecture |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.test_nll:.3f} | {r.best_epoch} / {r.epochs} | {r.params:,} | "
            f"{r.steps_per_s:.1f} ({r.steps_per_s / peer.steps_per_s:.2f}x) | {r.wall_s:.0f} "
            f"({r.wall_s / peer.wall_s:.2f}x) | {r.samples_per_s:.0f} ({r.samples_per_s / peer.samples_per_s:.2f}x) | "
            f"{args.describe[r.model]}{'; ' + r.note if r.note else ''} |")
    lines += ["", "bits/dim = -log2 p(k + u) / 64 for the test images k and their fixed noise u: the density "
              "of the dequantized variable in [0, 17)^64, whose mean over u bounds the discrete model's "
              "-log2 P(k) / 64 from above (Jensen). Timings are only meaningful as ratios within this run; "
              "other processes shared the 2 CPUs."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-seconds", type=float, default=600.0,
                        help="per-model training-time cap (protocol.Config.max_train_seconds)")
    parser.add_argument("--models", default="ImageRealNVP,Glow,flat MAF")
    parser.add_argument("--quick", action="store_true", help="1 epoch, hidden 8 (smoke run)")
    parser.add_argument("--out", help="default benchmarks/results/image.md")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.epochs, args.hidden, args.patience = 1, 8, 1

    import keras

    keras.utils.set_random_seed(args.seed)
    config = protocol.Config(epochs=args.epochs, patience=args.patience, batch_size=64, learning_rate=2e-3,
                             seed=args.seed, sample_count=500, max_train_seconds=args.max_train_seconds)
    train, val, test = data(args.seed)
    table = models(args)
    args.describe = {name: spec[2] for name, spec in table.items()}
    wanted = [m.strip() for m in args.models.split(",")]
    if "flat MAF" not in wanted:
        sys.exit("the table's ratios are to the flat MAF: keep it in --models")
    start, results = time.perf_counter(), []
    for name in wanted:
        build, flat, _ = table[name]
        result = run_one(name, build, flat, train, val, test, config)
        print(f"{name}: test bits/dim {result.test_nll:.3f}, {result.epochs} epochs, {result.wall_s:.0f} s",
              flush=True)
        results.append(result)
    text = render(results, config, args, time.perf_counter() - start)
    print(text)
    report.write(args.out or report.default_out("image", args.quick, dated=False), text)


if __name__ == "__main__":
    main()
