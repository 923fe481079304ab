"""The `tfflows` command line: fit, sample, score, info.

`tfflows fit` with no arguments trains a RealNVP on the embedded two-moons data and
writes the model (.keras), a SavedModel, metrics and pictures into saved_models/.
Errors a user can cause (bad paths, bad columns, unknown names) are reported in one
line, never as a traceback.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

MODEL_CHOICES = ("realnvp", "nice", "maf", "iaf", "nsf", "rbig", "gaussianization", "glow")


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


# ----- data --------------------------------------------------------------------------------
def load_data(spec, n=4000, seed=0, columns=None, delimiter=None, keep_missing=False):
    """`tfflows.data.loading.load_data` with its problems reported as `UserError`s and its
    notes printed."""
    from tfflows.data.loading import DataError
    from tfflows.data.loading import load_data as load

    try:
        return load(spec, n=n, seed=seed, columns=None if columns is None else columns.split(","),
                    delimiter=delimiter, keep_missing=keep_missing, report=print)
    except DataError as err:
        raise UserError(str(err)) from None


# ----- models ------------------------------------------------------------------------------
def build_model(name, features):
    import tfflows

    presets = {
        "realnvp": ("RealNVP", dict(num_layers=8, hidden_units=(64, 64))),
        "nice": ("NICE", dict(num_layers=4, hidden_units=(64, 64))),
        "maf": ("MAF", {}),
        "iaf": ("IAF", {}),
        "nsf": ("NSF", {}),
        "rbig": ("RBIG", {}),
        "gaussianization": ("GaussianizationFlow", {}),
        "glow": ("Glow", {}),
    }
    if name not in presets:
        raise UserError(f"Unknown model '{name}'; choose one of {', '.join(MODEL_CHOICES)}.")
    class_name, kwargs = presets[name]
    cls = getattr(tfflows, class_name, None)
    if cls is None:
        raise UserError(f"The model '{name}' is not available in this version of tfflows.")
    try:
        return cls(features, **kwargs)
    except ValueError as err:  # e.g. too few features for a coupling split
        raise UserError(f"--model {name}: {err}") from None


def _split(x, seed=0, val_fraction=0.2):
    from tfflows.data.splits import split

    return split(x, (1.0 - val_fraction, val_fraction), seed)


# ----- commands ----------------------------------------------------------------------------
def cmd_fit(args):
    import keras

    from tfflows.plot import density as plot

    if args.stream:
        return _fit_stream(args)
    if len(args.data) > 1:
        raise UserError(f"{len(args.data)} data files given: read several shards with --stream.")
    args.data = args.data[0]
    data, name = load_data(args.data, n=args.n, seed=args.seed, columns=args.columns, delimiter=args.delimiter)
    if data.ndim == 3:
        data = data[..., None]  # (N, H, W) grey images
    if data.ndim == 4:
        return _fit_images(args, data, name)
    if data.ndim != 2:
        raise UserError(f"Data must be a table (rows, columns) or images (N, H, W, C); got shape {data.shape}.")
    if args.model == "glow":
        raise UserError("--model glow models images (an .npy of shape (N, H, W, C)); this data is a table.")
    if data.dtype.kind in "iub":
        raise UserError("The data are integers: flows model continuous data. Dequantize them first "
                        "(add uniform noise in [0, 1) and save as float).")
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        raise UserError(f"The data have {int(bad.sum())} row(s) with NaN or Inf; the first is row {int(np.flatnonzero(bad)[0])}.")
    data = data.astype("float32")
    train, val = _split(data, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.model, data.shape[1])
    print(f"Fitting {type(model).__name__} on {name}: {len(train)} training and {len(val)} validation rows, "
          f"{data.shape[1]} features.")
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    start = time.time()
    history = model.fit(
        train, validation_data=val, epochs=args.epochs, batch_size=args.batch_size, verbose=1,
        callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)],
    )
    seconds = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, f"{name}_{args.model}.keras")
    model.save(model_path)
    export_path = os.path.join(args.out, f"{name}_{args.model}", "1")  # TF Serving: <model>/<version>/
    model.export(export_path)
    metrics = {
        "data": name, "model": args.model, "epochs": len(history.history["loss"]), "fit_seconds": round(seconds, 2),
        "train_nll": float(-np.mean(keras.ops.convert_to_numpy(model.log_prob(train)))),
        "val_nll": float(-np.mean(keras.ops.convert_to_numpy(model.log_prob(val)))),
    }
    with open(os.path.join(args.out, f"{name}_{args.model}_metrics.json"), "w") as handle:
        json.dump(metrics, handle, indent=2)
    pictures = [os.path.join(args.out, f"{name}_{args.model}_training.png")]
    plot.training_curves(history, pictures[0])
    if data.shape[1] == 2:
        pictures.append(os.path.join(args.out, f"{name}_{args.model}_density.png"))
        plot.density_2d(model, data, pictures[-1], title=f"{type(model).__name__} on {name}")
        pictures.append(os.path.join(args.out, f"{name}_{args.model}_layers.png"))
        plot.layer_warps(model, pictures[-1])
    print(f"Validation NLL {metrics['val_nll']:.3f} nats after {metrics['epochs']} epochs ({seconds:.1f} s).")
    print(f"Wrote {model_path}, {export_path}/, the metrics JSON and {', '.join(pictures)}.")
    return 0


def _fit_stream(args):
    """Text shards larger than memory, read in batches at every pass (`TextBatches`): every
    10th row is validation. RBIG and the Gaussianization flow's start fit greedily on
    the batches; the other models train on a tf.data pipeline over the files."""
    import keras

    from tfflows.data.files import TextBatches

    if args.model == "glow":
        raise UserError("--stream reads tables; --model glow models images.")
    try:
        train = TextBatches(args.data, batch_size=65536, columns=None if args.columns is None else
                            args.columns.split(","), delimiter=args.delimiter, part="train")
        val = TextBatches(args.data, batch_size=65536, columns=train.columns, delimiter=train.delimiter,
                          part="validation")
    except (OSError, ValueError) as err:
        raise UserError(f"Could not read {args.data[0]}: {err}") from None
    name = os.path.splitext(os.path.basename(train.paths[0]))[0]
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.model, train.features)
    print(f"Streaming {len(train.paths)} file(s), columns {', '.join(train.columns)}, into {type(model).__name__}.")
    start = time.time()
    if args.model in ("rbig", "gaussianization"):
        greedy = model.fit_greedy if args.model == "rbig" else model.initialize_greedy
        greedy(train, validation_data=val, verbose=1)
    if args.model != "rbig":
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        model.fit(train.as_dataset(args.batch_size, shuffle_buffer=100_000, seed=args.seed),
                  validation_data=val.as_dataset(4096), epochs=args.epochs, verbose=1,
                  callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)])
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{name}_{args.model}")
    model.save(stem + ".keras")
    model.export(os.path.join(stem, "1"))
    val_nll = model.evaluate(val.as_dataset(4096), verbose=0)
    print(f"Validation NLL {val_nll:.3f} nats ({time.time() - start:.1f} s). Wrote {stem}.keras and {stem}/1/.")
    return 0


def _fit_images(args, data, name):
    """Images (N, H, W, C): integer levels are dequantized; a multi-scale RealNVP or Glow."""
    import keras

    import tfflows
    from tfflows.plot import density as plot
    from tfflows.plot.images import image_grid

    if args.model not in ("realnvp", "glow"):
        raise UserError(f"Images are modelled by --model realnvp or --model glow, not '{args.model}'.")
    if not np.isfinite(data.astype("float64")).all():
        raise UserError("The images contain NaN or Inf values.")
    if data.min() < 0:
        raise UserError(f"Pixel levels must be non-negative; the smallest is {data.min()}.")
    num_levels = int(np.floor(data.max())) + 1
    levels = data if data.dtype.kind in "iub" else np.floor(data)
    x = tfflows.dequantize(levels.astype("int64"), num_levels, seed=args.seed)
    train, val = _split(x, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    preset = tfflows.Glow if args.model == "glow" else tfflows.RealNVP
    try:
        model = preset(tuple(x.shape[1:]), num_levels=num_levels, hidden_channels=32)
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"Fitting {type(model).__name__} on {name}: {len(train)} training and {len(val)} validation images "
          f"of shape {tuple(x.shape[1:])}, {num_levels} levels.")
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    start = time.time()
    history = model.fit(train, validation_data=val, epochs=args.epochs, batch_size=min(args.batch_size, 64),
                        verbose=1, callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    seconds = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{name}_{args.model}")
    model.save(stem + ".keras")
    model.export(os.path.join(stem, "1"))  # TF Serving: <model>/<version>/
    metrics = {
        "data": name, "model": args.model, "epochs": len(history.history["loss"]), "fit_seconds": round(seconds, 2),
        "val_nll": float(-np.mean(keras.ops.convert_to_numpy(model.log_prob(val)))),
        "val_bits_per_dim": float(np.mean(keras.ops.convert_to_numpy(model.bits_per_dim(val)))),
    }
    with open(stem + "_metrics.json", "w") as handle:
        json.dump(metrics, handle, indent=2)
    plot.training_curves(history, stem + "_training.png")
    samples = tfflows.quantize(model.sample(32, seed=args.seed), num_levels)
    image_grid(samples, stem + "_samples.png", cols=8, title=f"{type(model).__name__} samples",
               vmax=num_levels - 1)
    print(f"Validation {metrics['val_bits_per_dim']:.3f} bits/dim after {metrics['epochs']} epochs ({seconds:.1f} s).")
    print(f"Wrote {stem}.keras, {stem}/1/ (SavedModel), the metrics JSON, {stem}_training.png and {stem}_samples.png.")
    return 0


def _load_flow(path):
    import keras

    import tfflows  # noqa: F401  (registers the serializable classes)

    if not os.path.exists(path):
        raise UserError(f"No model at '{path}'.")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # a corrupt or foreign file: say so in one line
        raise UserError(f"Could not load a tfflows model from '{path}': {type(err).__name__}: {err}") from None


def cmd_sample(args):
    model = _load_flow(args.model)
    if args.n < 0:
        raise UserError(f"-n must be a non-negative integer; got {args.n}.")
    samples = np.asarray(model.sample(args.n, seed=args.seed))
    if args.out:
        if args.out.endswith(".csv"):
            np.savetxt(args.out, samples.reshape(len(samples), -1), delimiter=",")
        else:
            np.save(args.out, samples)
        print(f"Wrote {args.n} samples to {args.out}.")
    else:
        np.savetxt(sys.stdout, samples.reshape(len(samples), -1), delimiter=",", fmt="%.6g")
    return 0


def cmd_score(args):
    model = _load_flow(args.model)
    data, _ = load_data(args.data, columns=args.columns, delimiter=args.delimiter, keep_missing=True)
    expected = tuple(model.event_shape)
    if tuple(data.shape[1:]) != expected:
        raise UserError(f"The data have rows of shape {tuple(data.shape[1:])}; the model expects {expected}.")
    data = data.astype("float32")
    missing = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1)
    log_p = np.full(len(data), np.nan)
    if (~missing).any():
        log_p[~missing] = np.asarray(model.log_prob(data[~missing]))
    if missing.any():
        print(f"{int(missing.sum())} row(s) with missing values score nan.", file=sys.stderr)
    np.savetxt(sys.stdout, log_p, fmt="%.6g")  # one line per input row
    return 0


def cmd_info(args):
    from tfflows.gaussianization import information

    data, name = load_data(args.data, n=args.n, seed=args.seed, columns=args.columns, delimiter=args.delimiter)
    if data.ndim != 2:
        raise UserError(f"Tabular data must be 2-D (rows, columns); got shape {data.shape}.")
    if data.dtype.kind in "iub":
        raise UserError("The data are integers: entropy needs continuous data. Dequantize them first "
                        "(add uniform noise in [0, 1) and save as float).")
    try:
        result = {
            "data": name, "rows": int(data.shape[0]), "features": int(data.shape[1]),
            "entropy_nats": information.entropy(data, seed=args.seed),
            "total_correlation_nats": information.total_correlation(data, seed=args.seed),
        }
    except (TypeError, ValueError) as err:
        raise UserError(str(err)) from None
    print(json.dumps(result, indent=2))
    return 0


def _positive(kind):
    """argparse type: a number of `kind` that must be > 0 (0 or negative epochs would
    train nothing and leave no history to report)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _table_options(parser):
    parser.add_argument("--columns", default=None,
                        help="comma-separated column names or 0-based positions of a text table (default: every "
                             "numeric column; non-numeric ones such as string ids are left out)")
    parser.add_argument("--delimiter", default=None,
                        help="field delimiter of a text table (default: detected; ',' if unclear)")


def make_parser():
    parser = argparse.ArgumentParser(prog="tfflows", description="Normalizing flows for Keras 3 on TensorFlow.")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="train a flow and write the model, a SavedModel, metrics and pictures")
    fit.add_argument("data", nargs="*", default=["moons"],
                     help="an embedded dataset (moons, circles, eight_gaussians, checkerboard, pinwheel, "
                          "spirals, breast_cancer, digits), a .csv/.npy/.npz table, or an .npy of images "
                          "(N, H, W, C) of integer levels for --model realnvp/glow (default: moons); "
                          "with --stream, one or more text files or glob patterns")
    fit.add_argument("--stream", action="store_true",
                     help="read text tables larger than memory in batches, at every pass (every 10th row validates)")
    fit.add_argument("--model", default="realnvp", choices=MODEL_CHOICES)
    fit.add_argument("--epochs", type=_positive(int), default=40)
    fit.add_argument("--batch-size", type=_positive(int), default=256)
    fit.add_argument("--learning-rate", type=_positive(float), default=2e-3)
    fit.add_argument("--n", type=_positive(int), default=8000, help="rows to generate for an embedded 2-D dataset")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default="saved_models", help="output folder (default: saved_models)")
    _table_options(fit)
    fit.set_defaults(run=cmd_fit)

    sample = commands.add_parser("sample", help="draw samples from a saved .keras model")
    sample.add_argument("model", help="path to a .keras file written by `tfflows fit`")
    sample.add_argument("-n", type=_positive(int), default=10)
    sample.add_argument("--seed", type=int, default=None)
    sample.add_argument("--out", default=None, help=".npy or .csv file (default: print CSV)")
    sample.set_defaults(run=cmd_sample)

    score = commands.add_parser("score", help="per-row log-density of data under a saved model")
    score.add_argument("model")
    score.add_argument("data")
    _table_options(score)
    score.set_defaults(run=cmd_score)

    info = commands.add_parser("info", help="entropy and total correlation (nats) via Gaussianization")
    info.add_argument("data", help="an embedded dataset name or a .csv/.npy/.npz file")
    info.add_argument("--n", type=_positive(int), default=4000, help="rows to generate for an embedded 2-D dataset")
    info.add_argument("--seed", type=int, default=0)
    _table_options(info)
    info.set_defaults(run=cmd_info)
    return parser


def main(argv=None):
    # TensorFlow's C++ start-up log (CUDA probing, CPU features) is noise on a terminal;
    # set TF_CPP_MIN_LOG_LEVEL yourself to see it. Set here, before TensorFlow loads.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as err:
        print(f"tfflows: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
