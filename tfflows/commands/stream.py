"""`tfflows fit --stream`: text shards larger than memory, read in batches at every pass
(`tfflows.data.files.TextBatches`; every 10th row validates). RBIG and the Gaussianization
flow's start fit greedily on the batches; the other models train on the same batches
(`Flow.fit` reads them again at every epoch). The outputs are those of the in-memory fit,
named after the pattern."""

import glob
import os
import re
import time
import warnings

import numpy as np

from tfflows.commands.common import (UserError, check_finite, fill_training, greedy_verbosity,
                                     keras_verbosity, table_rules)
from tfflows.commands.fit import GREEDY, build, prepare, write

HEAD_LINES = 1000  # lines of each shard read up front for the data rules


def stream_name(patterns, paths):
    """The outputs' name, from what the user typed: the one file's stem; the stem of one
    glob pattern without its wildcards (`big/shard-*.csv` -> shard), else its folder
    (`big/*.csv` -> big); for several arguments, the common stem of the files, else the
    folder they share (unless the current one); else 'stream'."""
    def stem(path):
        return os.path.splitext(os.path.basename(path))[0]

    def clean(text):
        return re.sub(r"[*?]|\[[^\]]*\]", "", text).strip("_-. ")

    if len(patterns) == 1:
        if not glob.has_magic(patterns[0]):
            return stem(patterns[0])
        folder = os.path.basename(os.path.dirname(os.path.abspath(patterns[0])))
        return clean(stem(patterns[0])) or clean(folder) or "stream"
    common = os.path.commonprefix([stem(p) for p in paths]).rstrip("_-. 0123456789")
    folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
    if not common and len(folders) == 1 and folders != {os.path.abspath(os.curdir)}:
        common = os.path.basename(folders.pop())
    return common or "stream"


def _batches(args):
    from tfflows.data.files import TextBatches

    columns = None if args.columns is None else args.columns.split(",")
    try:
        train = TextBatches(args.data, batch_size=65536, columns=columns,
                            delimiter=args.delimiter, part="train")
        val = TextBatches(args.data, batch_size=65536, columns=train.columns,
                          delimiter=train.delimiter, part="validation")
    except (OSError, ValueError) as err:
        raise UserError(f"{' '.join(args.data)}: {err}") from None
    return train, val


def _check_heads(train, args):
    """The data rules on the first lines of every shard (the whole data if it is small)."""
    from tfflows.data.loading import DataError, head

    parts, complete = [], True
    for path in train.paths:
        try:
            loaded, whole = head(path, HEAD_LINES, train.columns, train.delimiter)
        except DataError as err:
            raise UserError(str(err)) from None
        if loaded.columns != train.columns:
            raise UserError(f"{path} has the columns {', '.join(loaded.columns)}; the first shard "
                            f"{train.paths[0]} has {', '.join(train.columns)}.")
        check_finite(loaded, path)
        parts.append(loaded)
        complete = complete and whole
    first = parts[0]
    first.values = np.concatenate([p.values for p in parts])
    spec = train.paths[0] if len(train.paths) == 1 else " ".join(args.data)
    if not complete:
        spec += f" (in the first {HEAD_LINES} lines of each file)"
    table_rules(first, spec, count_rows=complete)
    return first.values


def run_stream(args):
    if args.model == "glow":
        raise UserError("--stream reads tables; --model glow models images.")
    if args.dequantize:
        raise UserError("--dequantize works on data read into memory; with --stream, dequantize "
                        "the files first (add uniform noise in [0, 1) to whole-number columns).")
    fill_training(args, "stream")
    train, val = _batches(args)
    sample = _check_heads(train, args)
    name = stream_name(args.data, train.paths)
    plane = train.features == 2
    pictures = ("training", "density", "layers") if plane else ("training",)
    paths = prepare(args, f"{name}_{args.model}", pictures)
    model = build(args, train.features)
    shown = ", ".join(train.paths[:3]) + (", ..." if len(train.paths) > 3 else "")
    print(f"Streaming {len(train.paths)} file(s) ({shown}), columns {', '.join(train.columns)}, "
          f"into {type(model).__name__}; every 10th row validates.", flush=True)
    try:
        with warnings.catch_warnings():
            # Keras on a stream: its length is unknown until it ends, so the end of every
            # pass is "running out of data"; a tf.data stream is shuffled in its buffer.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
            history, fit_seconds = _train(args, model, train, val)
            train_nll, val_nll = _nlls(args, model, train, val)
    except (ValueError, IndexError) as err:  # a bad cell past the lines checked up front
        raise UserError(f"While streaming {' '.join(args.data)}: {err}") from None
    steps = ({"blocks": int(model.num_blocks), "blocks_fitted": len(history.history["loss"])}
             if args.model in GREEDY else {"epochs": len(history.history["loss"])})
    metrics = dict(data=name, files=len(train.paths), model=args.model, features=train.features,
                   **steps, fit_seconds=round(fit_seconds, 2), train_nll=train_nll,
                   val_nll=val_nll)
    write(args, model, paths, metrics, history, sample if plane else None, name)
    return 0


def _train(args, model, train, val):
    import keras

    start = time.perf_counter()
    if args.model in ("rbig", "gaussianization"):
        greedy = model.fit_greedy if args.model == "rbig" else model.initialize_greedy
        greedy(train, validation_data=val, verbose=greedy_verbosity())
        record = keras.callbacks.History()
        record.history = {"loss": list(model.greedy_history["train_nll"]),
                          "val_loss": list(model.greedy_history["val_nll"])}
    if args.model not in GREEDY:
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        verbose, callbacks = keras_verbosity(args.epochs)
        stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
        record = model.fit(train, batch_size=args.batch_size, validation_data=val,
                           validation_batch_size=4096, epochs=args.epochs, verbose=verbose,
                           callbacks=[stop] + callbacks)
    return record, time.perf_counter() - start


def _nlls(args, model, train, val):
    """(train, validation) NLL of the fitted model: a greedy fit recorded both at the depth
    it kept; a gradient fit is evaluated with one more pass over each part."""
    if args.model in GREEDY:
        kept = model.num_blocks - 1
        return (float(model.greedy_history["train_nll"][kept]),
                float(model.greedy_history["val_nll"][kept]))
    return (float(model.evaluate(train, batch_size=4096, verbose=0)),
            float(model.evaluate(val, batch_size=4096, verbose=0)))
