"""Run every tfflows preset and the peers under the DESIGN.md protocol, in one process,
and write the Markdown table to benchmarks/results/run_<date>.md and stdout.

    python benchmarks/run.py                  # everything, both datasets
    python benchmarks/run.py --quick          # small epoch cap, breast_cancer only
    python benchmarks/run.py --models RealNVP,NICE,"TFP MAF" --datasets digits

Presets are looked up with getattr(tfflows, name), so those that exist join by
themselves; each gets the same number of layers and hidden sizes as the peers. Peers:
TensorFlow Probability's MaskedAutoregressiveFlow and RealNVP (always), zuko's MAF, NSF
and RealNVP (when `import zuko` works). The rows "JAX MAF" and "JAX NSF" are the same
tfflows presets under Keras's JAX backend, each run in a subprocess (when `import jax`
works). Timings are written as ratios to `--peer`.
"""

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers_tfp  # noqa: E402
import peers_zuko  # noqa: E402
import protocol  # noqa: E402
import report  # noqa: E402
from keras_flows import KerasFlowCandidate, preset_builder  # noqa: E402

# Presets run by default, in this order; a name missing from tfflows is skipped.
PRESETS = ("RealNVP", "NICE", "MAF", "NSF", "IAF", "GaussianizationFlow", "RBIG")
# Skipped unless asked for by --models, with the reason printed.
OPT_IN = {
    "IAF": "IAF's density is D sequential MADE passes per layer, so maximum-likelihood fit is "
           "~D times slower than MAF (tfflows trains it by distillation); ask with --models IAF",
}
# tfflows presets run again under Keras's JAX backend (row "JAX <preset>"), each in its own
# subprocess because Keras fixes its backend at import; run when `import jax` works.
JAX_PRESETS = ("MAF", "NSF")


class OtherBackendCandidate:
    """A tfflows preset evaluated under the protocol in a subprocess with
    KERAS_BACKEND=<backend> (same data, split, sizes and stopping rule); the subprocess
    writes its `protocol.Result` as JSON."""

    def __init__(self, preset, backend):
        self.preset, self.backend = preset, backend
        self.name = f"{backend.upper()} {preset}"
        self.library = f"tfflows ({backend} backend)"

    def evaluate(self, dataset, config, timeout=3600):
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        env = protocol.backend_env(self.backend, config.threads)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps({
            "preset": self.preset, "dataset": dataset, "config": dataclasses.asdict(config), "json": path})]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        try:
            with open(path) as f:
                fields = json.load(f)
        except (OSError, ValueError):
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
            fields = {"model": self.name, "library": self.library, "dataset": dataset,
                      "failed": f"worker exited with {proc.returncode}: {tail[0][:200]}"}
        finally:
            if os.path.exists(path):
                os.remove(path)
        fields.update(model=self.name, library=self.library)
        return protocol.Result(**fields)


def worker(spec):
    """Subprocess side of OtherBackendCandidate: evaluate one preset, write the Result."""
    spec = json.loads(spec)
    fields = dict(spec["config"], hidden_units=tuple(spec["config"]["hidden_units"]))
    config = protocol.Config(**fields)
    import tfflows

    candidate = KerasFlowCandidate(spec["preset"], preset_builder(getattr(tfflows, spec["preset"]), config))
    result = protocol.evaluate(candidate, spec["dataset"], config)
    with open(spec["json"], "w") as f:
        json.dump(result.as_dict(), f)


def our_candidates(config):
    import tfflows

    found, missing = {}, []
    for name in PRESETS:
        cls = getattr(tfflows, name, None)
        if cls is None:
            missing.append(name)
            continue
        found[name] = KerasFlowCandidate(name, preset_builder(cls, config))
    return found, missing


def select(candidates, wanted):
    """Keep candidates whose name matches one of `wanted` (case-insensitive; a bare
    library name such as "zuko" or "TFP" selects all of its models)."""
    if not wanted:
        return candidates
    keys = [w.strip().lower() for w in wanted if w.strip()]
    return {name: c for name, c in candidates.items()
            if any(name.lower() == k or name.lower().split()[0] == k for k in keys)}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="epoch cap 15 (patience 5), breast_cancer only unless --datasets")
    p.add_argument("--models", help="comma-separated names (e.g. RealNVP,NICE,'TFP MAF',zuko); default: all")
    p.add_argument("--datasets", help=f"comma-separated, from {','.join(protocol.DATASETS)}")
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--num-layers", type=int)
    p.add_argument("--max-train-seconds", type=float, help="training-time budget per model and dataset")
    p.add_argument("--hidden-units", help="comma-separated, e.g. 128,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jit-compile", choices=("default", "auto", "true", "false"), default="default",
                   help="tfflows model.compile(jit_compile=...); 'default' leaves Keras' default "
                        "(\"auto\": no XLA on a CPU-only machine)")
    p.add_argument("--tfp-jit-compile", action="store_true", help="tf.function(jit_compile=True) for the TFP peers")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per library (TF intra/inter-op, torch); 0 = library defaults (default 1: "
                        "comparable timings on a shared machine)")
    p.add_argument("--peer", default="TFP MAF", help="the row every timing is a ratio to")
    p.add_argument("--no-zuko", action="store_true", help="skip the zuko peers even if installed")
    p.add_argument("--no-jax", action="store_true", help="skip the JAX-backend rows even if jax is installed")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help="output Markdown path (default benchmarks/results/run_<date>.md)")
    return p.parse_args(argv)


def make_config(args):
    config = protocol.Config(seed=args.seed)
    if args.quick:
        config.epochs, config.patience, config.max_train_seconds = 15, 5, 30.0
    for field in ("epochs", "patience", "batch_size", "num_layers", "max_train_seconds"):
        value = getattr(args, field)
        if value is not None:
            setattr(config, field, value)
    if args.hidden_units:
        config.hidden_units = tuple(int(h) for h in args.hidden_units.split(","))
    config.jit_compile = {"default": None, "auto": "auto", "true": True, "false": False}[args.jit_compile]
    config.tfp_jit_compile = bool(args.tfp_jit_compile)
    config.threads = args.threads
    return config


def _jax_available():
    try:
        import jax  # noqa: F401
    except ImportError as exc:
        return False, str(exc)
    return True, ""


def main(argv=None):
    args = parse(argv)
    if args.worker:
        return worker(args.worker)
    config = make_config(args)
    if args.datasets:
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    else:
        datasets = ["breast_cancer"] if args.quick else list(protocol.DATASETS)
    wanted = args.models.split(",") if args.models else None
    protocol.limit_threads(config.threads)

    ours, missing = our_candidates(config)
    peers = dict(peers_tfp.candidates())
    skipped = [f"- not in tfflows yet: {', '.join(missing)}"] if missing else []
    skipped.append("- tfflows preset arguments: " + "; ".join(
        f"{name}({', '.join(f'{k}={v}' for k, v in c._build.kwargs.items()) or 'defaults'})"
        for name, c in ours.items()))
    if args.no_zuko:
        skipped.append("- zuko peers: skipped (--no-zuko)")
    else:
        ok, info = peers_zuko.available()
        if ok:
            peers.update(peers_zuko.candidates())
        else:
            skipped.append(f"- zuko peers: skipped, `import zuko` failed ({info}); "
                           "`pip install torch==2.13.0 zuko` enables them")
    backends = {}
    if args.no_jax:
        skipped.append("- JAX-backend rows: skipped (--no-jax)")
    else:
        ok, info = _jax_available()
        if ok:
            backends = {c.name: c for c in (OtherBackendCandidate(p, "jax") for p in JAX_PRESETS)}
        else:
            skipped.append(f"- JAX-backend rows: skipped, `import jax` failed ({info}); `pip install jax` enables them")
    candidates = {**ours, **backends, **peers}
    if wanted is None:
        for name, reason in OPT_IN.items():
            if candidates.pop(name, None) is not None:
                skipped.append(f"- {name}: skipped by default: {reason}")
    candidates = select(candidates, wanted)
    if not candidates:
        sys.exit(f"No model matches --models {args.models!r}.")

    out = args.out or report.default_out("run", args.quick)
    command = report.command_line("run.py") if argv is None else "run.main(...)"
    machine, started, t0 = report.machine_header(), datetime.datetime.now(), time.perf_counter()
    print("\n".join(machine), flush=True)
    print(f"- Protocol: {config.describe()}", flush=True)
    for line in skipped:
        print(line, flush=True)
    print(f"- Models: {', '.join(candidates)}; datasets: {', '.join(datasets)}", flush=True)

    results = []
    for dataset in datasets:
        data = protocol.load(dataset, config.seed)
        for candidate in candidates.values():
            if isinstance(candidate, OtherBackendCandidate):
                result = candidate.evaluate(dataset, config)
            else:
                result = protocol.evaluate(candidate, dataset, config, data=data)
            results.append(result)
            report.print_result(result)
            _write(out, results, config, args.peer, command, machine, started, skipped)
    skipped.append(f"- Total run time: {(time.perf_counter() - t0) / 60:.1f} min")
    print("\n" + _write(out, results, config, args.peer, command, machine, started, skipped))
    print(f"Written to {os.path.relpath(out)}")
    return results


def _write(path, results, config, peer, command, machine, started, extra):
    text = report.markdown_report(results, config, peer, command=command, machine=machine, started=started,
                                  extra=extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    main()
