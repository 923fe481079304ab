"""`tfflows sample`, `tfflows score` and `tfflows info`: a saved flow put to use, and the
information measures of a table. Paths and data are checked before TensorFlow loads."""

import json
import os
import sys

import numpy as np

from tfflows.commands.common import (UserError, check_finite, load,
                                     load_flow, refuse_existing, remove_existing, table_rules)

SAMPLE_FORMATS = {".csv": ",", ".txt": ",", ".tsv": "\t", ".npy": None}


def sample_target(out, force):
    """Check `sample --out` before the model loads: a known extension (the file is written
    under exactly that name), an existing folder, no existing file unless `force`."""
    ext = os.path.splitext(out)[1].lower()
    if ext not in SAMPLE_FORMATS:
        known = ", ".join(SAMPLE_FORMATS)
        raise UserError(f"--out {out}: unknown file type '{ext}'; use one of {known} "
                        "(.csv/.txt comma-separated, .tsv tab-separated, .npy NumPy).")
    folder = os.path.dirname(out)
    if folder and not os.path.isdir(folder):
        raise UserError(f"--out {out}: the folder {folder} does not exist.")
    if os.path.isdir(out):
        raise UserError(f"--out {out} is a folder; give a file name such as samples.csv.")
    refuse_existing([out], force)


def cmd_sample(args):
    if args.out:
        sample_target(args.out, args.force)
    model = load_flow(args.model, args.package)
    samples = np.asarray(model.sample(args.n, seed=args.seed))
    if not args.out:
        np.savetxt(sys.stdout, samples.reshape(len(samples), -1), delimiter=",", fmt="%.6g")
        return 0
    if args.force:
        remove_existing(args.out)
    delimiter = SAMPLE_FORMATS[os.path.splitext(args.out)[1].lower()]
    with open(args.out, "xb") as handle:  # exclusive: never a file that appeared meanwhile
        if delimiter is None:
            np.save(handle, samples)
        else:
            np.savetxt(handle, samples.reshape(len(samples), -1), delimiter=delimiter,
                       fmt="%.8g")
    kind = "NumPy array" if delimiter is None else "text table"
    print(f"Wrote {args.n} samples to {args.out} ({kind}, shape {samples.shape}).")
    return 0


def cmd_score(args):
    if not os.path.isfile(args.model):
        load_flow(args.model)  # its one-line message, before reading the data
    loaded = load(args.data, args, keep_missing=True)
    data = loaded.values
    if data.dtype.kind not in "f":
        raise UserError(f"{args.data} holds {data.dtype} values: score data of the kind the "
                        "model was fitted on (dequantized floats).")
    model = load_flow(args.model, args.package)
    expected = tuple(model.event_shape)
    if tuple(data.shape[1:]) != expected:
        raise UserError(f"{args.data} has rows of shape {tuple(data.shape[1:])}; the model "
                        f"expects {expected}.")
    data = data.astype("float32")
    missing = ~np.isfinite(data.reshape(len(data), -1)).all(axis=1)
    log_p = np.full(len(data), np.nan)
    if (~missing).any():
        log_p[~missing] = np.asarray(model.log_prob(data[~missing]))
    if missing.any():
        first = loaded.describe_row(int(np.flatnonzero(missing)[0]))
        print(f"{int(missing.sum())} row(s) with missing or infinite values score nan (the "
              f"first is {first}).", file=sys.stderr)
    np.savetxt(sys.stdout, log_p, fmt="%.6g")  # one line per input row
    return 0


def cmd_info(args):
    loaded = load(args.data, args)
    if loaded.values.ndim != 2:
        raise UserError(f"{args.data}: entropy and total correlation need a table (rows, "
                        f"columns); got shape {loaded.values.shape}.")
    check_finite(loaded, args.data)
    x = table_rules(loaded, args.data, dequantize=args.dequantize, seed=args.seed,
                    what="an entropy estimate")
    args.package()
    from tfflows.gaussianization import information

    try:
        result = {
            "data": loaded.name, "rows": int(x.shape[0]), "features": int(x.shape[1]),
            "entropy_nats": information.entropy(x, seed=args.seed),
            "total_correlation_nats": information.total_correlation(x, seed=args.seed),
        }
    except (TypeError, ValueError) as err:
        raise UserError(f"{args.data}: {err}") from None
    print(json.dumps(result, indent=2))
    return 0
