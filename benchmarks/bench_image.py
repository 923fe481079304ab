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

Images at the sizes users bring (issue 29), `--set photos28` (28x28 grey) or `--set
photos32c` (32x32x3 colour): crops of the photographs that ship inside scikit-image and
scikit-learn (`image_sets.py`: 4,000 training, 1,000 validation and 1,000 test crops from
disjoint regions of each photograph), 256 levels, a wall-clock budget per model
(`--max-train-seconds`, 300 or 1800), Adam 1e-3, batch 64:

    python benchmarks/bench_image.py --set photos28 --max-train-seconds 300 --pictures DIR

Rows: the tfflows presets (`--models`), the PyTorch peer normflows' Glow of the same
levels, steps and width (`peers_normflows.py`), and the per-pixel categorical floor (a
histogram of each pixel's levels, `image_sets.per_pixel_floor`). Timings are ratios to
the normflows Glow of the same run. Every model reads the same training images with fresh
uniform noise each step and is scored on the same once-dequantized test images.
"""

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the `tfflows` command sets it
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import image_sets  # noqa: E402
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
                 f"2 scales x 4 steps (ActNorm, 1x1 conv, affine coupling), GlowConvNet({args.hidden}) "
                 "(ConvResNet(1 block) on pages before 2026-12-07 20:00)"),
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


# ----- images at the sizes users bring (issue 29) --------------------------------------------
PHOTO_LEVELS = 256


def photo_data(name, seed):
    """(train levels as float32, validation and test dequantized once with fixed seeds, the
    uint8 splits) of an `image_sets` set."""
    import tfflows as tff

    splits = image_sets.image_set(name)
    return (splits["train"].astype("float32"), tff.dequantize(splits["val"], PHOTO_LEVELS, seed=seed + 1),
            tff.dequantize(splits["test"], PHOTO_LEVELS, seed=seed + 2), splits)


def photo_models(args, shape):
    """name -> (builder, description); the normflows peer is added by run_photo_peer."""
    import tfflows as tff

    glow = dict(num_scales=args.scales, steps_per_scale=args.steps, hidden_channels=args.hidden)
    return {
        "Glow (resnet net)": (lambda: tff.Glow(shape, network="resnet", **glow),
                              f"tfflows.Glow({shape}, network='resnet', {glow}), ConvResNet "
                              "couplings (1 residual block; the row 'Glow' of the 2026-12-07 pages)"),
        "Glow (glow net)": (lambda: tff.Glow(shape, network="glow", **glow),
                            f"tfflows.Glow({shape}, network='glow', {glow}): 3x3, 1x1, 3x3 couplings"),
        "ImageRealNVP": (lambda: tff.ImageRealNVP(shape),
                         f"tfflows.ImageRealNVP({shape}) with its defaults"),
    }


def run_photo(name, build, data, config, set_name, pictures):
    train, val, test, _ = data
    result = protocol.Result(model=name, library="tfflows", dataset=set_name)
    model = build()
    log = keras_flows.train_keras_flow(model, train, val, config)
    bpd = np.asarray(model.bits_per_dim(test), dtype="float64")
    result.test_nll, result.test_nll_finite, result.nonfinite_test = protocol.nll_summary(-bpd)
    result.val_bits = float(np.mean(np.asarray(model.bits_per_dim(val), dtype="float64")))
    result.steps_per_s, result.wall_s = log.steady_steps_per_s(), log.wall_s
    result.epochs, result.best_epoch = len(log.epoch_train_seconds), log.best_epoch
    result.steps = sum(log.epoch_steps)
    result.params = int(model.count_params())
    result.samples_per_s, result.nonfinite_samples = protocol.sampling_rate(lambda n: model.sample(n, seed=0), 16)
    result.note = log.note
    if pictures:
        save_grid(np.asarray(model.sample(64, seed=0)), os.path.join(pictures, f"{set_name}_{slug(name)}.png"))
    return result


def run_photo_peer(data, config, set_name, args, pictures):
    import torch

    import peers_normflows

    torch.set_num_threads(os.cpu_count() or 1)
    train, val, test, _ = data
    result = protocol.Result(model="normflows Glow", library=peers_normflows.PACKAGE, dataset=set_name)
    model = peers_normflows.build_glow(train.shape[1:], args.scales, args.steps, args.hidden, seed=config.seed)
    log = peers_normflows.train(model, train, val, learning_rate=config.learning_rate,
                                batch_size=config.batch_size, epochs=config.epochs, patience=config.patience,
                                max_train_seconds=config.max_train_seconds, seed=config.seed)
    bpd = peers_normflows.bits_per_dim(model, test)
    result.test_nll, result.test_nll_finite, result.nonfinite_test = protocol.nll_summary(-bpd)
    result.val_bits = float(np.mean(peers_normflows.bits_per_dim(model, val)))
    seconds = log["epoch_train_seconds"][1:] or log["epoch_train_seconds"]
    result.steps_per_s = log["steps_per_epoch"] * len(seconds) / sum(seconds)
    result.wall_s, result.epochs, result.best_epoch = log["wall_s"], log["epochs"], log["best_epoch"]
    result.steps = log["steps_per_epoch"] * log["epochs"]
    result.params = sum(p.numel() for p in model.parameters())
    result.samples_per_s, result.nonfinite_samples = protocol.sampling_rate(
        lambda n: peers_normflows.sample_levels(model, n), 16)
    result.note = log["note"]
    if pictures:
        save_grid(peers_normflows.sample_levels(model, 64), os.path.join(pictures, f"{set_name}_normflows_glow.png"))
    return result


def slug(name):
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def save_grid(images, path, columns=8):
    """Save images (N, H, W, C) of levels in [0, 256) as one PNG grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.clip(np.floor(np.nan_to_num(images, nan=0.0)), 0, 255).astype("uint8")
    n, h, w, c = images.shape
    rows = n // columns
    grid = images[: rows * columns].reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * h, columns * w, c)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    plt.imsave(path, grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=255)


def render_photo(results, floor, config, args, seconds, set_name, shape):
    peer = next((r for r in results if r.model == "normflows Glow"), None)

    def ratio(value, of):
        return f" ({value / of:.2f}x)" if peer is not None and of == of and of else ""

    lines = [f"# Image flows on {set_name} ({'x'.join(map(str, shape))}): test bits/dim, "
             f"{config.max_train_seconds:.0f} s budget", "",
             f"`{report.command_line('bench_image.py', args.argv)}` ({datetime.date.today()}, {platform.machine()}, "
             f"{os.cpu_count()} CPUs, whole run {seconds:.0f} s).", "",
             f"Data: `image_sets.image_set({set_name!r})`, 4,000 training, 1,000 validation and 1,000 test crops "
             f"from disjoint regions of the scikit-image / scikit-learn photographs, 256 levels. Every model "
             f"trains on the levels with fresh uniform noise each step and is scored on the test images "
             f"dequantized once (fixed seed). Budget: {budget(config)}. Lower is better; bits/dim are those of "
             "the dequantized density in pixel space.", "",
             "| model | validation bits/dim | test bits/dim | below the floor by | epochs (best) | steps | params | train steps/s "
             "(x normflows) | samples/s (x normflows) | wall s | architecture |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    lines.append(f"| per-pixel categorical floor | - | {floor[0]:.3f} | - | - | - | - | - | - | - | a histogram per "
                 f"pixel and channel, add-{floor[1]:g} smoothing chosen on validation |")
    for r in results:
        lines.append(
            f"| {r.model} | {r.val_bits:.3f} | {r.test_nll:.3f} | {floor[0] - r.test_nll:.3f} | {r.epochs} ({r.best_epoch}) | "
            f"{r.steps:,} | {r.params:,} | {r.steps_per_s:.2f}{ratio(r.steps_per_s, peer.steps_per_s if peer else 0)} | "
            f"{r.samples_per_s:.0f}{ratio(r.samples_per_s, peer.samples_per_s if peer else 0)} | {r.wall_s:.0f} | "
            f"{args.describe.get(r.model, '')}{'; ' + r.note if r.note else ''} |")
    lines += ["", "normflows Glow: " + args.describe.get("normflows Glow", ""), "",
              "Timings are ratios within this run on a shared 2-core machine."]
    return "\n".join(lines) + "\n"


def main_photo(args):
    import keras

    keras.utils.set_random_seed(args.seed)
    config = protocol.Config(epochs=args.epochs, patience=args.patience, batch_size=64, learning_rate=1e-3,
                             seed=args.seed, sample_count=64, max_train_seconds=args.max_train_seconds)
    data = photo_data(args.set, args.seed)
    if args.quick:  # a smoke run of the code paths: a few images
        data = (data[0][:128], data[1][:64], data[2][:64], data[3])
    shape = data[0].shape[1:]
    floor = image_sets.per_pixel_floor(data[3]["train"], data[3]["val"], data[3]["test"])
    print(f"per-pixel floor: {floor[0]:.3f} bits/dim", flush=True)
    table = photo_models(args, shape)
    args.describe = {name: spec[1] for name, spec in table.items()}
    args.describe["normflows Glow"] = (
        f"normflows 1.7.3 GlowBlock x {args.steps} per level, {args.scales} levels, hidden {args.hidden} "
        "(conv 3x3, 1x1, 3x3), learned GlowBase per level, data (k + u) / 256 (the package's recipe)")
    start, results = time.perf_counter(), []
    for name in [m.strip() for m in args.models.split(",")]:
        if name == "normflows Glow":
            result = run_photo_peer(data, config, args.set, args, args.pictures)
        else:
            keras.utils.set_random_seed(args.seed)
            result = run_photo(name, table[name][0], data, config, args.set, args.pictures)
        print(f"{name}: test bits/dim {result.test_nll:.3f}, {result.steps} steps, {result.steps_per_s:.2f} steps/s, "
              f"{result.wall_s:.0f} s", flush=True)
        results.append(result)
    text = render_photo(results, floor, config, args, time.perf_counter() - start, args.set, shape)
    print(text)
    report.write(args.out or report.default_out(f"image_{args.set}", False, dated=True), text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-seconds", type=float, default=600.0,
                        help="per-model training-time cap (protocol.Config.max_train_seconds)")
    parser.add_argument("--models", help="digits: default 'ImageRealNVP,Glow,flat MAF'; photo sets: default "
                        "'Glow (resnet net),Glow (glow net),ImageRealNVP,normflows Glow'")
    parser.add_argument("--set", default="digits", choices=["digits", *image_sets.SETS])
    parser.add_argument("--scales", type=int, default=2, help="photo sets: Glow levels (tfflows and normflows)")
    parser.add_argument("--steps", type=int, default=4, help="photo sets: Glow steps per level")
    parser.add_argument("--pictures", help="photo sets: folder for a grid of 64 samples per model")
    parser.add_argument("--quick", action="store_true", help="1 epoch, hidden 8 (smoke run)")
    parser.add_argument("--out", help="default benchmarks/results/image.md (digits) or image_<set>_<date>.md")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.set != "digits":
        if args.quick:
            args.epochs, args.hidden, args.patience, args.max_train_seconds = 1, 8, 1, 1.0
        if "--hidden" not in (argv or sys.argv):
            args.hidden = 64 if not args.quick else 8
        if "--epochs" not in (argv or sys.argv) and not args.quick:
            args.epochs = 10_000
        args.models = args.models or "Glow (resnet net),Glow (glow net),ImageRealNVP,normflows Glow"
        return main_photo(args)
    args.models = args.models or "ImageRealNVP,Glow,flat MAF"
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
