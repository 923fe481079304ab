"""What every command shares: one-line errors, output files that are never overwritten
unless asked (`--force`), the Python API's data rules applied to files, TensorFlow
imported quietly and only when a command needs it, and plain progress lines when stdout
is not a terminal. Nothing here imports TensorFlow at module level."""

import os
import shutil
import sys
import tempfile

import numpy as np

MIN_ROWS = 10  # a fit's smallest data: 8 training and 2 validation rows
ROWS_PER_COLUMN = 2  # and at least this many rows per column (a full-rank training split)


class UserError(Exception):
    """A problem with what the user asked for; printed in one line, exit status 2."""


def fill_training(args, kind):
    """Set --epochs, --batch-size and --learning-rate that the user left out to the
    defaults of this kind of fit ("table", "images" or "stream": `args.training`, the
    tables in `tfflows.cli`)."""
    for name, value in args.training[kind].items():
        if getattr(args, name) is None:
            setattr(args, name, value)


# ----- output files ---------------------------------------------------------------------------
def refuse_existing(paths, force):
    """Refuse (before any work) to overwrite a path that exists, unless `force`."""
    existing = [p for p in paths if os.path.lexists(p)]
    if existing and not force:
        more = f" (and {len(existing) - 1} more output(s) of this run)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{more}; not overwriting it: "
                        "choose another --out, or add --force to replace it.")


def remove_existing(path):
    """Clear `path` just before writing it again (only called for a refused-unless-forced
    output, after --force)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def output_folder(folder):
    """The folder `fit` writes into: created if missing, refused if it is a file."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"--out {folder} is a file; `fit --out` names a folder for its outputs.")
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UserError(f"--out {folder}: the folder {os.path.dirname(folder) or '.'} "
                        "does not exist.")


# ----- data -----------------------------------------------------------------------------------
def load(spec, args, keep_missing=False):
    """`tfflows.data.loading.load` with its problems as `UserError`s and its notes printed."""
    from tfflows.data.loading import DataError, load

    columns = None if args.columns is None else [c for c in args.columns.split(",")]
    try:
        return load(spec, n=getattr(args, "n", 4000), seed=getattr(args, "seed", 0),
                    columns=columns, delimiter=args.delimiter, keep_missing=keep_missing,
                    report=print)
    except DataError as err:
        raise UserError(str(err)) from None


def check_finite(loaded, spec):
    values = loaded.values
    if values.dtype.kind not in "iub":
        flat = values.reshape(len(values), -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            first = loaded.describe_row(int(np.flatnonzero(bad)[0]))
            kind = "NaN or Inf" if np.isnan(flat).any() else "Inf"
            raise UserError(f"{spec} has {int(bad.sum())} row(s) with {kind}; the first is "
                            f"{first}. Remove or impute them.")


def check_rows(rows, columns, spec, what="a fit"):
    need = max(MIN_ROWS, ROWS_PER_COLUMN * columns)
    if rows < need:
        raise UserError(f"{spec} has {rows} row(s) of {columns} column(s); {what} needs at least "
                        f"{need} rows ({MIN_ROWS} or more, and {ROWS_PER_COLUMN} per column).")


def table_rules(loaded, spec, dequantize=False, seed=0, what="a fit", count_rows=True):
    """The Python API's data rules for a (rows, columns) table read from a file: no NaN or
    Inf, enough rows, no constant or duplicate column (refused, naming them and the
    --columns that leaves them out), no whole-number column unless `dequantize` (then
    uniform noise in [0, 1) is added to those columns, with a note). Returns float32.
    `count_rows=False` skips the row count (a stream's first lines are not all of it)."""
    from tfflows.data.validation import constant_columns, duplicate_columns, integer_columns

    check_finite(loaded, spec)
    x, names = loaded.values, loaded.columns
    if count_rows:
        check_rows(len(x), x.shape[1], spec, what)
    quote = ", ".join

    def keep_hint(drop):
        keep = [n for j, n in enumerate(names) if j not in drop]
        return f" leave {'it' if len(drop) == 1 else 'them'} out with --columns {','.join(keep)}"

    constant = constant_columns(x)
    if constant:
        listed = quote(f"{names[j]!r} (= {x[0, j]:g})" for j in constant)
        raise UserError(f"{spec}: constant column(s) {listed} have no density;"
                        f"{keep_hint(constant)}.")
    duplicates = duplicate_columns(x)
    if duplicates:
        listed = quote(f"{names[j]!r} repeats {names[k]!r}" for j, k in duplicates)
        raise UserError(f"{spec}: duplicate column(s): {listed}; the copies have no density;"
                        f"{keep_hint([j for j, _ in duplicates])}.")
    whole = list(range(x.shape[1])) if x.dtype.kind in "iub" else integer_columns(x)
    if whole and not dequantize:
        listed = quote(repr(names[j]) for j in whole[:5]) + (", ..." if len(whole) > 5 else "")
        raise UserError(f"{spec}: column(s) {listed} hold only whole numbers, which have no "
                        "density: add --dequantize (uniform noise in [0, 1)), or dequantize "
                        "them yourself (tfflows.dequantize) and save them as floats.")
    x = x.astype("float64")
    if whole:
        noise = np.random.default_rng(seed).uniform(size=(len(x), len(whole)))
        x[:, whole] += noise
        print(f"Dequantized {len(whole)} whole-number column(s) (added uniform noise in [0, 1)).")
    return x.astype("float32")


# ----- TensorFlow -----------------------------------------------------------------------------
def import_tensorflow():
    """Import TensorFlow and Keras without their start-up lines on stderr (absl's
    pre-initialization notice, oneDNN, CUDA probing): those are written before
    TF_CPP_MIN_LOG_LEVEL applies, so file descriptor 2 points at a temporary file during
    the import and device discovery, and that file is shown only if the import fails.
    Set TF_CPP_MIN_LOG_LEVEL to 0, 1 or 2 to see them."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        return  # the user asked to see TensorFlow's log
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing (cuInit) logs here
        except Exception as err:  # noqa: BLE001 - a broken installation: show what it said
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise UserError(f"TensorFlow could not be imported: {type(err).__name__}: {err}")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


def load_flow(path, package=None):
    """A flow saved as .keras, through `tfflows.load_model` (safe mode) and its messages.
    `package` returns the `tfflows` package (`args.package`); None only checks the path."""
    if os.path.isdir(path):
        keras_file = _keras_file_beside(path)
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            hint = f"; use {keras_file}" if keras_file else "; pass the .keras file `fit` wrote"
            raise UserError(f"{path} is a SavedModel (a serving export, for TF Serving or "
                            f"tf.saved_model.load), not a .keras model{hint}.")
        raise UserError(f"{path} is a folder; expected a .keras file written by `tfflows fit`"
                        f"{f' (e.g. {keras_file})' if keras_file else ''}.")
    if not os.path.exists(path):
        raise UserError(f"No such file: {path}.")
    if package is None:
        return None
    tfflows = package()
    try:
        model = tfflows.load_model(path, compile=False)
    except tfflows.ModelFileError as err:
        raise UserError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - any file Keras cannot rebuild: say so in one line
        raise UserError(f"{path} is not a model tfflows can load: {_plain(err)}") from None
    if not isinstance(model, tfflows.Flow):
        raise UserError(f"{path} holds a Keras {type(model).__name__}, not a tfflows flow; "
                        "sample and score need a model written by `tfflows fit` or Flow.save().")
    return model


def _keras_file_beside(path):
    """The .keras file `fit` wrote next to its SavedModel `<stem>/1/` (or `<stem>/`)."""
    path = os.path.normpath(path)
    for stem in (path, os.path.dirname(path)):
        if os.path.isfile(stem + ".keras"):
            return stem + ".keras"
    return None


def _plain(err):
    """An error's first sentence or line, without Keras's `safe_mode=False` advice (the
    command line always loads in safe mode: a file that needs unsafe code is refused)."""
    text = " ".join(str(err).split())
    if "safe_mode" in text:
        return "it holds Python code (e.g. a Lambda layer), which tfflows does not run."
    return f"{type(err).__name__}: {text[:300]}"


# ----- progress -------------------------------------------------------------------------------
def keras_verbosity(epochs, unit="Epoch"):
    """(verbose, callbacks) for Keras's fit: its progress bar on a terminal, else one
    plain line per epoch (no colour codes or carriage returns in a log file)."""
    if sys.stdout.isatty():
        return 1, []
    import keras

    class PlainProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items()
                              if isinstance(v, float) and k in ("loss", "val_loss"))
            print(f"{unit} {epoch + 1}/{epochs}: {shown}", flush=True)

    return 0, [PlainProgress()]


def greedy_verbosity():
    """verbose for a greedy fit: its per-block progress bar on a terminal only."""
    return 1 if sys.stdout.isatty() else 0
