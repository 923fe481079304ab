"""`tfflows fit`: a table in memory, images, or text shards streamed from disk. Every input
is read and checked, and every output path is checked, before TensorFlow is imported and
before any training; the outputs are the model (.keras), a SavedModel (`<stem>/1/`, the
layout TF Serving reads), a metrics JSON and pictures, all named `<out>/<data>_<model>*`."""

import json
import math
import os
import time

import numpy as np

from tfflows.commands.common import (UserError, check_finite, check_rows, fill_training,
                                     greedy_verbosity, keras_verbosity, load, output_folder,
                                     refuse_existing, remove_existing, table_rules)

GREEDY = ("rbig",)  # fitted block by block, without epochs
# Rows per validation batch: no gradients are kept there, and a small flow's step is mostly
# per-call overhead, so one large batch validates the 8,000 rows of the default run at once.
VALIDATION_BATCH_SIZE = 8192


def outputs(out, stem, pictures):
    """Every path a fit writes, by role."""
    base = os.path.join(out, stem)
    paths = {"model": base + ".keras", "export": os.path.join(base, "1"),
             "metrics": base + "_metrics.json"}
    paths.update({name: f"{base}_{name}.png" for name in pictures})
    return paths


def prepare(args, stem, pictures):
    """Check the output folder and refuse existing outputs, before any training."""
    output_folder(args.out)
    paths = outputs(args.out, stem, pictures)
    refuse_existing(paths.values(), args.force)
    return paths


def run(args):
    if len(args.data) > 1:
        raise UserError(f"{len(args.data)} data files given: read several shards with --stream.")
    spec = args.data[0]
    loaded = load(spec, args)
    if loaded.values.ndim in (3, 4):
        fill_training(args, "images")
        return run_images(args, loaded, spec)
    fill_training(args, "table")
    if loaded.values.ndim != 2:
        raise UserError(f"{spec}: data must be a table (rows, columns) or images (N, H, W, C); "
                        f"got shape {loaded.values.shape}.")
    if args.model == "glow":
        raise UserError("--model glow models images (an .npy of shape (N, H, W, C)); "
                        f"{spec} is a table.")
    x = table_rules(loaded, spec, dequantize=args.dequantize, seed=args.seed)
    pictures = ("training", "density", "layers") if x.shape[1] == 2 else ("training",)
    paths = prepare(args, f"{loaded.name}_{args.model}", pictures)

    from tfflows.data.splits import split

    train, val = split(x, (0.8, 0.2), args.seed)
    model = build(args, x.shape[1])
    print(f"Fitting {type(model).__name__} on {loaded.name}: {len(train)} training and {len(val)} "
          f"validation rows, {x.shape[1]} features.", flush=True)
    history, fit_seconds = train_model(args, model, train, val)
    metrics = dict(data=loaded.name, model=args.model, rows=int(len(x)), features=int(x.shape[1]),
                   **trained(args, model, history), fit_seconds=round(fit_seconds, 2),
                   train_nll=nll(model, train, args), val_nll=nll(model, val, args))
    write(args, model, paths, metrics, history, x if x.shape[1] == 2 else None, loaded.name)
    return 0


def build(args, features, **more):
    """The preset `--model` names (`args.preset`: class name and arguments, from the
    table in `tfflows.cli`); imports TensorFlow."""
    tfflows = args.package()
    import keras

    class_name, kwargs = args.preset
    if features == 1 and kwargs.get("kind") == "coupling":  # a coupling needs two features
        kwargs = {**kwargs, "kind": "autoregressive"}
    keras.utils.set_random_seed(args.seed)
    try:
        return getattr(tfflows, class_name)(features, **{**kwargs, **more})
    except ValueError as err:  # e.g. too few features for a coupling split
        raise UserError(f"--model {args.model}: {err}") from None


def train_model(args, model, train, val):
    """Trains in place; returns (a History-like record, seconds)."""
    import keras

    start = time.perf_counter()
    if args.model in GREEDY:
        history = model.fit(train, validation_data=val, verbose=greedy_verbosity())
    else:
        verbose, callbacks = keras_verbosity(args.epochs)
        batch_size = min(args.batch_size, len(train))
        model.compile(optimizer=keras.optimizers.Adam(cosine_decay(args, len(train), batch_size)))
        stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
        history = model.fit(train, validation_data=val, epochs=args.epochs,
                            batch_size=batch_size, verbose=verbose,
                            validation_batch_size=VALIDATION_BATCH_SIZE,
                            callbacks=[stop] + callbacks)
    return history, time.perf_counter() - start


def cosine_decay(args, rows, batch_size):
    """Adam's rate: --learning-rate decayed to 0 along a cosine over every step of the
    epochs (early stopping may end sooner)."""
    import keras

    steps = args.epochs * max(1, math.ceil(rows / batch_size))
    return keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps)


def trained(args, model, history):
    """{"blocks": kept, "blocks_fitted": n} for a greedy fit, {"epochs": n} otherwise."""
    steps = len(history.history["loss"])
    if args.model in GREEDY:
        return {"blocks": int(model.num_blocks), "blocks_fitted": steps}
    return {"epochs": steps}


def nll(model, rows, args=None):
    """Mean NLL of the rows: for a trained model through Keras's compiled test step (traced
    already by the validation passes), else the eager `log_prob`."""
    if args is not None and args.model not in GREEDY:
        return float(model.evaluate(rows, batch_size=VALIDATION_BATCH_SIZE, verbose=0))
    import keras

    return float(-np.mean(keras.ops.convert_to_numpy(model.log_prob(rows))))


def write(args, model, paths, metrics, history, plane, name, draw=None):
    """Save, export, metrics and pictures (`plane`: 2-D rows to draw the density over;
    `draw`: a function that draws more pictures)."""
    try:
        _write(args, model, paths, metrics, history, plane, name, draw)
    except OSError as err:  # a full disk, a permission: one line
        raise UserError(f"Could not write {getattr(err, 'filename', '') or args.out}: "
                        f"{err.strerror or err}.") from None
    report(metrics, paths)


def _write(args, model, paths, metrics, history, plane, name, draw):
    from tfflows.plot import density as plot

    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    for role in ("model", "export"):
        if args.force:
            remove_existing(paths[role])
    model.save(paths["model"])
    model.export(paths["export"])
    metrics["save_export_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    unit = "block" if "blocks" in metrics else "epoch"
    plot.training_curves(history, _fresh(paths["training"], args.force), unit=unit)
    if plane is not None:
        plot.density_2d(model, plane, _fresh(paths["density"], args.force),
                        title=f"{type(model).__name__} on {name}")
        plot.layer_warps(model, _fresh(paths["layers"], args.force))
    if draw is not None:
        draw()
    metrics["pictures_seconds"] = round(time.perf_counter() - start, 2)
    metrics["total_seconds"] = round(time.perf_counter() - args.started, 2)
    with open(_fresh(paths["metrics"], args.force), "w" if args.force else "x") as handle:
        json.dump(metrics, handle, indent=2)


def _fresh(path, force):
    if force:
        remove_existing(path)
    return path


def _count(n, unit):
    return f"{n} {unit}{'' if n == 1 else 's'}"


def report(metrics, paths):
    steps = (f"{_count(metrics['blocks'], 'block')} (of {metrics['blocks_fitted']} fitted)"
             if "blocks" in metrics else _count(metrics["epochs"], "epoch"))
    value = (f"{metrics['val_bits_per_dim']:.3f} bits/dim" if "val_bits_per_dim" in metrics
             else f"NLL {metrics['val_nll']:.3f} nats")
    print(f"Validation {value} after {steps}.")
    print(f"Fit {metrics['fit_seconds']:.1f} s, save and export "
          f"{metrics['save_export_seconds']:.1f} s, pictures {metrics['pictures_seconds']:.1f} s; "
          f"{metrics['total_seconds']:.1f} s in all since the command started.")
    written = [paths["model"], paths["export"] + os.sep + " (SavedModel)", paths["metrics"]]
    written += [p for role, p in paths.items() if role.endswith(("training", "density", "layers",
                                                                 "samples"))]
    print("Wrote " + ", ".join(written) + ".")


# ----- images ---------------------------------------------------------------------------------
def run_images(args, loaded, spec):
    """Images (N, H, W[, C]) of pixel levels: dequantized, a multi-scale RealNVP or Glow."""
    data = loaded.values if loaded.values.ndim == 4 else loaded.values[..., None]
    if args.model not in ("realnvp", "glow"):
        raise UserError(f"{spec} holds images: model them with --model realnvp or --model glow, "
                        f"not '{args.model}'.")
    check_finite(loaded, spec)
    check_rows(len(data), 1, spec)
    if data.min() < 0:
        raise UserError(f"{spec}: pixel levels must be non-negative; the smallest is {data.min()}.")
    paths = prepare(args, f"{loaded.name}_{args.model}", ("training", "samples"))
    num_levels = int(np.floor(data.max())) + 1
    levels = data if data.dtype.kind in "iub" else np.floor(data)
    tfflows = args.package()
    import keras

    from tfflows.data.splits import split
    from tfflows.plot.images import image_grid

    x = tfflows.dequantize(levels.astype("int64"), num_levels, seed=args.seed)
    train, val = split(x, (0.8, 0.2), args.seed)
    keras.utils.set_random_seed(args.seed)
    preset = tfflows.Glow if args.model == "glow" else tfflows.RealNVP
    try:
        model = preset(tuple(x.shape[1:]), num_levels=num_levels, hidden_channels=32)
    except ValueError as err:
        raise UserError(f"{spec}: {err}") from None
    print(f"Fitting {type(model).__name__} on {loaded.name}: {len(train)} training and {len(val)} "
          f"validation images of shape {tuple(x.shape[1:])}, {num_levels} levels.", flush=True)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    verbose, callbacks = keras_verbosity(args.epochs)
    start = time.perf_counter()
    stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    history = model.fit(train, validation_data=val, epochs=args.epochs,
                        batch_size=args.batch_size, verbose=verbose,
                        callbacks=[stop] + callbacks)
    fit_seconds = time.perf_counter() - start
    bits = keras.ops.convert_to_numpy(model.bits_per_dim(val))
    metrics = dict(data=loaded.name, model=args.model, images=int(len(x)),
                   epochs=len(history.history["loss"]), fit_seconds=round(fit_seconds, 2),
                   val_nll=nll(model, val), val_bits_per_dim=float(np.mean(bits)))

    def draw():
        samples = tfflows.quantize(model.sample(32, seed=args.seed), num_levels)
        image_grid(samples, _fresh(paths["samples"], args.force), cols=8,
                   title=f"{type(model).__name__} samples", vmax=num_levels - 1)

    write(args, model, paths, metrics, history, None, loaded.name, draw)
    return 0

