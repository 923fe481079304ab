"""The `tfflows` command line: fit, sample, score, info.

`tfflows fit` with no arguments trains the default model (`FIT_DEFAULTS` below) on the
embedded two-moons data and writes the model (.keras), a SavedModel, metrics and pictures
into saved_models/. The commands live in `tfflows.commands`; this module parses the
arguments and imports nothing heavy, so `tfflows --help` and argument errors answer at
once: TensorFlow loads only when a command needs it, after its inputs and outputs are
checked. Errors a user can cause are one line on stderr and exit status 2, never a
traceback; no command overwrites an existing file unless given --force.
"""

import argparse
import os
import sys
import time
import warnings

# The default of `tfflows fit`: the model and its training settings (one place to change).
# An in-memory table trains with TABLE_TRAINING: chosen across the five embedded 2-D sets
# against their true densities (benchmarks/bench_toy_2d.py, 32,000 training rows x 2, two
# seeds; BENCHMARKS.md "The first run"): batch 256 and Adam 5e-3 for 15 epochs beat batch
# 1024 and 3e-3 for 25 on every set, in less time. The learning rate decays to 0 along a
# cosine over the epochs. Images and streamed shards keep the settings they had (they were
# not part of that selection; a stream's rate stays constant).
FIT_DEFAULTS = dict(model="nsf", n=40000)
TABLE_TRAINING = dict(epochs=15, batch_size=256, learning_rate=5e-3)
IMAGE_TRAINING = dict(epochs=25, batch_size=64, learning_rate=3e-3)
STREAM_TRAINING = dict(epochs=25, batch_size=1024, learning_rate=3e-3)

# What each --model builds: a tfflows class name and its arguments (after `features`).
PRESETS = {
    "realnvp": ("RealNVP", dict(num_layers=8, hidden_units=(64, 64))),
    "nice": ("NICE", dict(num_layers=4, hidden_units=(64, 64))),
    "maf": ("MAF", {}),
    "iaf": ("IAF", {}),
    "nsf": ("NSF", dict(num_layers=4, hidden_units=(64, 64), bins=16, kind="coupling")),
    "rbig": ("RBIG", {}),
    "gaussianization": ("GaussianizationFlow", {}),
    "glow": ("Glow", {}),
}
MODEL_CHOICES = tuple(PRESETS)
EMBEDDED = ("moons, circles, eight_gaussians, checkerboard, pinwheel, spirals, breast_cancer, "
            "digits")


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (no usage block) and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _positive(kind):
    """argparse type: a number of `kind` that must be > 0 (0 or negative epochs would
    train nothing and leave no history to report)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32 - 1, got {text}")
    return value


def _delimiter(text):
    text = {"\\t": "\t", "tab": "\t", "space": " "}.get(text, text)
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"must be one character (or 'tab'), got {text!r}")
    return text


def _table_options(parser):
    parser.add_argument("--columns", default=None,
                        help="comma-separated column names or 0-based positions (default: "
                             "every numeric column; text columns such as ids are left out)")
    parser.add_argument("--delimiter", type=_delimiter, default=None,
                        help="field delimiter of a text table, one character or 'tab' "
                             "(default: detected; ',' if unclear)")


def _dequantize_option(parser):
    parser.add_argument("--dequantize", action="store_true",
                        help="add uniform noise in [0, 1) to columns of whole numbers (counts, "
                             "levels) instead of refusing them")


def make_parser():
    parser = Parser(prog="tfflows", description="Normalizing flows for Keras 3 on TensorFlow.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _fit_parser(commands)
    sample = commands.add_parser("sample", help="draw samples from a saved .keras model")
    sample.add_argument("model", help="a .keras file written by `tfflows fit`")
    sample.add_argument("-n", type=_positive(int), default=10, help="how many (default: 10)")
    sample.add_argument("--seed", type=_seed, default=None)
    sample.add_argument("--out", default=None,
                        help="a new .csv, .txt (comma-separated), .tsv or .npy file, written "
                             "under exactly that name (default: print CSV)")
    sample.add_argument("--force", action="store_true", help="replace --out if it exists")

    score = commands.add_parser("score", help="per-row log-density (nats) of data under a "
                                              "saved model, one line per row")
    score.add_argument("model", help="a .keras file written by `tfflows fit`")
    score.add_argument("data", help="a .csv/.tsv/.txt/.npy/.npz file")
    _table_options(score)

    info = commands.add_parser("info", help="entropy and total correlation (nats) via "
                                            "Gaussianization")
    info.add_argument("data", help="an embedded dataset name or a .csv/.tsv/.txt/.npy/.npz file")
    info.add_argument("--n", type=_positive(int), default=4000,
                      help="rows to generate for an embedded 2-D dataset (default: 4000)")
    info.add_argument("--seed", type=_seed, default=0)
    _dequantize_option(info)
    _table_options(info)
    return parser


def _fit_parser(commands):
    d = FIT_DEFAULTS
    fit = commands.add_parser("fit", help="train a flow; write the model, a SavedModel, "
                                          "metrics and pictures")
    fit.add_argument("data", nargs="*", default=["moons"],
                     help=f"an embedded dataset ({EMBEDDED}), a .csv/.tsv/.txt/.npy/.npz table, "
                          "or an .npy of images (N, H, W, C) of integer levels for --model "
                          "realnvp/glow (default: moons); with --stream, text files or glob "
                          "patterns")
    fit.add_argument("--stream", action="store_true",
                     help="read text tables larger than memory in batches, at every pass "
                          "(every 10th row validates)")
    fit.add_argument("--model", default=d["model"], choices=MODEL_CHOICES,
                     help=f"(default: {d['model']})")
    t, i, s = TABLE_TRAINING, IMAGE_TRAINING, STREAM_TRAINING
    fit.add_argument("--epochs", type=_positive(int), default=None,
                     help=f"(default: {t['epochs']}; images and --stream {i['epochs']}; greedy "
                          "rbig fits blocks instead)")
    fit.add_argument("--batch-size", type=_positive(int), default=None,
                     help=f"rows per step (default: {t['batch_size']}; images {i['batch_size']}, "
                          f"--stream {s['batch_size']})")
    fit.add_argument("--learning-rate", type=_positive(float), default=None,
                     help=f"Adam's initial rate, decayed along a cosine over the epochs of an "
                          f"in-memory table (default: {t['learning_rate']}; images and "
                          f"--stream {i['learning_rate']}, constant)")
    fit.add_argument("--n", type=_positive(int), default=d["n"],
                     help=f"rows to generate for an embedded 2-D dataset (default: {d['n']})")
    fit.add_argument("--seed", type=_seed, default=0)
    fit.add_argument("--out", default="saved_models",
                     help="output folder (default: saved_models)")
    fit.add_argument("--force", action="store_true",
                     help="replace this run's outputs if they exist (default: refuse)")
    _dequantize_option(fit)
    _table_options(fit)


def _package():
    """The `tfflows` package with its public names (every serializable class registered),
    imported quietly when a command needs TensorFlow, after its inputs and outputs are
    checked (`import tfflows` defers its names in a command-line process)."""
    from tfflows.commands.common import import_tensorflow

    import_tensorflow()
    import tfflows

    return tfflows


def _run(args):
    args.package = _package
    if args.command == "fit":
        args.preset = PRESETS[args.model]
        args.training = dict(table=TABLE_TRAINING, images=IMAGE_TRAINING, stream=STREAM_TRAINING)
        if args.stream:
            from tfflows.commands import stream

            return stream.run_stream(args)
        from tfflows.commands import fit

        return fit.run(args)
    from tfflows.commands import use

    return {"sample": use.cmd_sample, "score": use.cmd_score, "info": use.cmd_info}[
        args.command](args)


def _warning_line(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    print(f"tfflows: warning: {text}", file=sys.stderr)


def main(argv=None):
    """Run one command (argv: the arguments, default sys.argv[1:]); returns the exit status."""
    started = time.perf_counter()
    # TensorFlow's C++ log (CUDA probing, CPU features): set before TensorFlow loads, which
    # here is later, when a command needs it. Set TF_CPP_MIN_LOG_LEVEL=0 to see it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow turns its oneDNN CPU kernels on by default only on some processors; where it
    # does not (an AMD EPYC, for one), a Glow step at 28x28 or 32x32x3 is 1.7-1.9x slower
    # (benchmarks/profile_image_step.py). Set TF_ENABLE_ONEDNN_OPTS=0 to keep them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    args = make_parser().parse_args(argv)  # --help and argument errors end here, at once
    args.started = started
    from tfflows.commands.common import UserError

    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.showwarning = _warning_line  # one line each, no source excerpt
        try:
            return _run(args)
        except KeyboardInterrupt:
            print("tfflows: interrupted.", file=sys.stderr)
            return 130
        except UserError as err:
            print(f"tfflows: error: {err}", file=sys.stderr)
            return 2


def entry():
    """The `tfflows` console script: `main`, then exit at once. Once TensorFlow is loaded,
    the interpreter's own exit spends a second or two tearing it down after every output
    is written; `os._exit` skips that, after the output streams are flushed (every file a
    command writes is closed before `main` returns)."""
    status = main()
    if "tensorflow" not in sys.modules:
        sys.exit(status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    entry()
