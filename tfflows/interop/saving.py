"""Loading saved flows with clear errors.

- `load_model(path)`: `keras.models.load_model` for `.keras` files, always in Keras's safe
  mode (tfflows never needs unsafe deserialization: every layer, preset, base and TFP
  wrapper is a registered class with a plain-data config). A missing, truncated or
  corrupt file, or a SavedModel directory passed by mistake, raises `ModelFileError`
  (a `ValueError`) that says which, instead of an error from deep inside Keras, zipfile
  or h5py (Keras itself reports a truncated file as "File not found").
- `load_saved_model(path)`: `tf.saved_model.load` for a directory written by
  `Flow.export`, with the same kind of errors. In a process without tfflows, call
  `tf.saved_model.load(path)` directly.
"""

import os
import zipfile

import keras

_KERAS_MEMBERS = ("config.json", "model.weights.h5")


class ModelFileError(ValueError):
    """A model file or SavedModel that is missing, truncated, corrupt or of the wrong kind."""


def _check_keras_file(path):
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ModelFileError(
                f"{path} is a SavedModel directory (written by Flow.export), not a .keras file. "
                "Load it with tfflows.load_saved_model(path) or tf.saved_model.load(path); "
                "it serves "
                "log_prob/encode/decode/sample but is not a trainable Keras model."
            )
        raise ModelFileError(
            f"{path} is a directory; expected a .keras file written by model.save()."
        )
    if not os.path.exists(path):
        raise ModelFileError(f"No such file: {path}.")
    if path.endswith(".weights.h5"):
        raise ModelFileError(
            f"{path} holds weights only: rebuild the model (e.g. tfflows.RealNVP(...)), then call "
            "model.load_weights(path)."
        )
    if not path.endswith(".keras"):
        return  # legacy .h5 or another format: let Keras decide
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} ({size} bytes) is not a valid .keras archive: it is truncated or corrupt "
            "(a .keras file is a zip archive and this one has no readable zip directory). "
            "Save the model again or restore the file from a backup."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            missing = [m for m in _KERAS_MEMBERS if m not in names]
            if missing:
                raise ModelFileError(
                    f"{path} is a zip archive but not a .keras model: it lacks {missing}."
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ModelFileError(f"{path} is a corrupt .keras archive ({error}).") from error
    if bad is not None:
        raise ModelFileError(
            f"{path} is a corrupt .keras archive: member {bad!r} fails its checksum."
        )


def load_model(path, custom_objects=None, compile=True):
    """Load a flow saved with `model.save(path)` (`.keras`), in Keras's safe mode.

    Returns the `Flow` (or preset) with its weights and, if it was compiled, its optimizer
    state, so `fit` resumes training. Raises `ModelFileError` for a missing, truncated or
    corrupt file.
    """
    path = os.fspath(path)
    _check_keras_file(path)
    try:
        return keras.models.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=True
        )
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise ModelFileError(
            f"{path} could not be read: it is truncated or corrupt ({type(error).__name__}: "
            f"{error})."
        ) from error


def load_saved_model(path):
    """Load a SavedModel written by `Flow.export` (`tf.saved_model.load`) with clear errors.

    The result has `.signatures["log_prob" | "encode" | "decode" | "sample"]`.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isdir(path):
        if os.path.isfile(path) and path.endswith(".keras"):
            raise ModelFileError(f"{path} is a .keras file; load it with tfflows.load_model(path).")
        raise ModelFileError(f"No SavedModel directory at {path}.")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ModelFileError(
            f"{path} is not a SavedModel: it has no saved_model.pb (was the export interrupted?)."
        )
    variables = os.path.join(path, "variables")
    if not os.path.exists(os.path.join(variables, "variables.index")):
        raise ModelFileError(
            f"The SavedModel at {path} has no variables/variables.index: it is incomplete."
        )
    try:
        return tf.saved_model.load(path)
    except Exception as error:  # protobuf, checkpoint and OS errors of a damaged directory
        where = (
            "saved_model.pb (the graph)"
            if "saved_model.pb" in str(error) or "parse" in str(error).lower()
            else "variables/ (the weights)"
        )
        raise ModelFileError(
            f"The SavedModel at {path} is truncated or corrupt in {where}: "
            f"{type(error).__name__}: {str(error).rstrip('.')}. Export the model again."
        ) from error


__all__ = ["ModelFileError", "load_model", "load_saved_model"]
