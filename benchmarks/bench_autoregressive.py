"""Issue 3 benchmarks: MAF and NSF against TFP's MaskedAutoregressiveFlow, IAF vs MAF
sampling at d=64, and MAF -> IAF distillation. Writes benchmarks/results/autoregressive.md.

    python benchmarks/bench_autoregressive.py                     # all parts (~10-15 min on 2 cores)
    python benchmarks/bench_autoregressive.py --parts density --datasets breast_cancer
    python benchmarks/bench_autoregressive.py --parts sampling,distill

density (DESIGN.md protocol, benchmarks/protocol.py): digits (64-D) and breast_cancer
(30-D), 60/20/20 standardized; tfflows MAF and NSF (autoregressive and coupling) and TFP's
`MaskedAutoregressiveFlow` with `tfb.AutoregressiveNetwork` of the same hidden sizes, in
the same run, same batch size, same Adam, early stopping on validation. Two drivers for
tfflows' MAF: its own `Flow.fit` (Keras, what users run; Keras builds a tf.data iterator
every epoch, and these datasets have only 2-5 steps per epoch) and "MAF (same loop)":
`train_on_batch` inside the very loop that drives the TFP peer (`protocol.train_loop`),
which isolates the model's own step cost. zuko's MAF/NSF join with --zuko.

sampling: samples/s of IAF and MAF of the same size at d=64, through `Flow.sample` (eager,
as users call it) and through one compiled function (tf.function around the decoder).

distill: examples/distillation_2d.py (teacher MAF on a 2-D banana density, smaller student IAF).
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import peers_tfp, peers_zuko, protocol  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")


# ----- density ------------------------------------------------------------------------------
class SameLoopCandidate(protocol.KerasFlowCandidate):
    """A tfflows flow trained by `train_on_batch` inside `protocol.train_loop`, the loop
    that drives the TFP peer (same shuffling, batches, early stopping)."""

    def fit(self, train, val, config):
        import keras

        keras.utils.set_random_seed(config.seed)
        model = self.model = self._build(train.shape[-1])
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=config.jit_compile)
        model._ensure_built_for(train[:1])
        model.transform.initialize_from_data(train[:256])
        return protocol.train_loop(
            step=lambda x: float(model.train_on_batch(x)),
            val_nll=lambda x: float(-np.mean(np.asarray(model.log_prob(x)))),
            get_state=model.get_weights, set_state=model.set_weights,
            train=train, val=val, config=config,
        )


class CompiledStepCandidate(protocol.KerasFlowCandidate):
    """A tfflows flow trained by exactly the driver of the TFP peer: one
    `tf.function(input_signature=...)` step (GradientTape, Keras Adam) per batch inside
    `protocol.train_loop`. Isolates the model's own cost from Keras' per-call overhead."""

    def fit(self, train, val, config):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(config.seed)
        model = self.model = self._build(train.shape[-1])
        model._ensure_built_for(train[:1])
        model.transform.initialize_from_data(train[:256])
        variables = model.trainable_variables
        optimizer = keras.optimizers.Adam(config.learning_rate)
        spec = tf.TensorSpec([None, train.shape[-1]], tf.float32)

        @tf.function(input_signature=[spec], jit_compile=config.tfp_jit_compile)
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(model(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        @tf.function(input_signature=[spec])
        def mean_nll(x):
            return -tf.reduce_mean(model(x))

        return protocol.train_loop(
            step=lambda x: float(train_step(x)), val_nll=lambda x: float(mean_nll(x)),
            get_state=model.get_weights, set_state=model.set_weights,
            train=train, val=val, config=config,
        )


def density_candidates(config, zuko=False, only=None):
    import tfflows as tff

    size = dict(num_layers=config.num_layers, hidden_units=tuple(config.hidden_units))
    found = {
        "MAF": protocol.KerasFlowCandidate("MAF", lambda f: tff.MAF(f, **size)),
        "MAF (same loop)": SameLoopCandidate("MAF (same loop)", lambda f: tff.MAF(f, **size)),
        "MAF (TFP's step)": CompiledStepCandidate("MAF (TFP's step)", lambda f: tff.MAF(f, **size)),
        "NSF": protocol.KerasFlowCandidate("NSF", lambda f: tff.NSF(f, bins=8, **size)),
        "NSF (coupling)": protocol.KerasFlowCandidate("NSF (coupling)",
                                                      lambda f: tff.NSF(f, bins=8, kind="coupling", **size)),
        "TFP MAF": peers_tfp.candidates()["TFP MAF"],
    }
    if zuko and peers_zuko.available()[0]:
        zc = peers_zuko.candidates()
        found.update({"zuko MAF": zc["zuko MAF"], "zuko NSF": zc["zuko NSF"]})
    if only:
        found = {k: v for k, v in found.items() if k in only}
    return found


def run_density(datasets, config, zuko, only=None):
    results = []
    for dataset in datasets:
        data = protocol.load(dataset, config.seed)
        for candidate in density_candidates(config, zuko, only).values():
            result = protocol.evaluate(candidate, dataset, config, data=data)
            results.append(result)
            protocol.print_result(result)
    return results


# ----- sampling at d=64 --------------------------------------------------------------------
def run_sampling(features=64, n=2000, num_layers=5, hidden_units=(128, 128), repeats=3):
    import keras
    import tensorflow as tf

    import tfflows as tff

    rng = np.random.default_rng(0)
    rows = []
    flows = {"MAF": tff.MAF(features, num_layers=num_layers, hidden_units=hidden_units),
             "IAF": tff.IAF(features, num_layers=num_layers, hidden_units=hidden_units)}
    for name, flow in flows.items():
        flow._ensure_built()
        for var in flow.trainable_variables:  # non-trivial weights (speed does not depend on them)
            var.assign(rng.normal(scale=0.05, size=var.shape).astype(var.dtype))
        decode = tf.function(_decoder(flow))
        z = flow.base.sample(n, flow.latent_shape, seed=0)
        timings = {}
        for label, fn in (("eager Flow.sample", lambda: flow.sample(n, seed=1)), ("compiled decode", lambda: decode(z))):
            out = fn()
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                out = keras.ops.convert_to_numpy(fn())
                best = min(best, time.perf_counter() - start)
            assert np.isfinite(out).all()
            timings[label] = n / best
        x = keras.ops.convert_to_numpy(flow.sample(n, seed=2))
        log_prob = tf.function(_density(flow))
        log_prob(x)
        start = time.perf_counter()
        log_prob(x).numpy()
        timings["compiled log_prob"] = n / (time.perf_counter() - start)
        rows.append((name, timings))
        print(f"[sampling d={features}] {name}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in timings.items()), flush=True)
    return {"features": features, "n": n, "num_layers": num_layers, "hidden_units": list(hidden_units), "rows": rows}


def _decoder(flow):
    def decode(z):
        return flow.transform.inverse(z)
    return decode


def _density(flow):
    def log_prob(x):
        return flow(x)
    return log_prob


def sampling_markdown(s):
    (maf_name, maf), (iaf_name, iaf) = s["rows"]
    lines = [f"## Sampling rate at d={s['features']} ({s['num_layers']} layers, hidden {tuple(s['hidden_units'])}, "
             f"n={s['n']} per call, best of 3)", "",
             "| model | eager `Flow.sample` (samples/s) | compiled decode (samples/s) | compiled log_prob (rows/s) |",
             "|---|---:|---:|---:|"]
    for name, t in s["rows"]:
        lines.append(f"| {name} | {t['eager Flow.sample']:,.0f} | {t['compiled decode']:,.0f} | {t['compiled log_prob']:,.0f} |")
    lines.append(f"| **IAF / MAF** | **{iaf['eager Flow.sample'] / maf['eager Flow.sample']:.1f}×** | "
                 f"**{iaf['compiled decode'] / maf['compiled decode']:.1f}×** | "
                 f"{iaf['compiled log_prob'] / maf['compiled log_prob']:.3f}× |")
    lines.append("")
    return "\n".join(lines)


# ----- distillation ---------------------------------------------------------------------------
def run_distill(quick=False):
    spec = importlib.util.spec_from_file_location("distillation_2d", os.path.join(ROOT, "examples", "distillation_2d.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kwargs = dict(teacher_epochs=10, distill_epochs=5) if quick else {}
    return module.run(verbose=0, **kwargs)


def distill_markdown(d):
    r = d["sampling_rates"]
    hist = d["kl_history"]
    lines = ["## Distillation (examples/distillation_2d.py: teacher MAF 5 x (128, 128) on a 2-D banana density "
             "-> student IAF 2 x (32, 32))", "",
             f"- Teacher train NLL {d['teacher_train_nll']:.3f} nats; KL(student || teacher) at start "
             f"{d['kl_start']:.3g} nats, after distillation **{d['kl']:.4f} ± {d['kl_stderr']:.4f}** nats "
             f"(Monte Carlo, 50,000 student samples; target < 0.05).",
             "- KL estimate per epoch (training batches): " + ", ".join(f"{v:.3g}" for v in hist),
             f"- Sampling ({d['sampling_n']:,} samples per call): teacher {r['teacher_eager']:,.0f}/s eager, "
             f"{r['teacher_compiled']:,.0f}/s compiled; student {r['student_eager']:,.0f}/s eager, "
             f"{r['student_compiled']:,.0f}/s compiled; student/teacher **{r['student_eager'] / r['teacher_eager']:.1f}×** "
             f"eager, **{r['student_compiled'] / r['teacher_compiled']:.1f}×** compiled (target >= 10×).",
             f"- Picture: `{os.path.relpath(d['png'], ROOT)}`.", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="density,sampling,distill")
    p.add_argument("--datasets", default="digits,breast_cancer")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--patience", type=int, default=15)
    p.add_argument("--zuko", action="store_true", help="add zuko's MAF and NSF as extra peers")
    p.add_argument("--models", help="comma-separated subset of the density models, e.g. 'MAF,TFP MAF'")
    p.add_argument("--batch-size", type=int, help="default: the protocol's")
    p.add_argument("--quick", action="store_true", help="small epoch caps everywhere (smoke run)")
    p.add_argument("--out", default=os.path.join(RESULTS, "autoregressive.md"))
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.parts.split(",")]
    config = protocol.Config(epochs=15 if args.quick else args.epochs, patience=5 if args.quick else args.patience)
    if args.batch_size:
        config.batch_size = args.batch_size
    only = [m.strip() for m in args.models.split(",")] if args.models else None
    command = "python benchmarks/bench_autoregressive.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sections = []
    print("\n".join(protocol.machine_header()), flush=True)
    if "density" in parts:
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        results = run_density(datasets, config, args.zuko, only)
        with open(args.out + ".density.json", "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=1)
        sections.append(protocol.markdown_report(results, config, "TFP MAF", command=command,
                                                 title="Autoregressive and spline flows (issue 3)"))
    elif os.path.exists(args.out + ".density.json"):  # keep the last density run's table
        with open(args.out + ".density.json") as f:
            results = [protocol.Result(**r) for r in json.load(f)]
        sections.append(protocol.markdown_report(results, config, "TFP MAF", command=command,
                                                 title="Autoregressive and spline flows (issue 3)")
                        + "\n(Density table: from the last `--parts density` run, read back from "
                        + os.path.basename(args.out) + ".density.json.)\n")
    else:
        sections.append(f"# Autoregressive and spline flows (issue 3)\n\nCommand: `{command}`\n\n"
                        + "\n".join(protocol.machine_header()) + "\n")
    if "sampling" in parts:
        sections.append(sampling_markdown(run_sampling()))
    if "distill" in parts:
        sections.append(distill_markdown(run_distill(args.quick)))
    report = "\n".join(sections)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print("\n" + report + f"\nWritten to {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
