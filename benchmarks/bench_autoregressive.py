"""Autoregressive flows: IAF vs MAF sampling at d=64, and MAF -> IAF distillation.

    python benchmarks/bench_autoregressive.py                     # both parts (~5 min on 2 cores)
    python benchmarks/bench_autoregressive.py --quick             # smaller sampling run, short distillation

(Density under the protocol, MAF and NSF beside TFP and zuko, is benchmarks/run.py; the
density part of earlier versions of this script is in git history.)

sampling: samples/s of IAF and MAF of the same size at d=64, through `Flow.sample` (eager,
as users call it) and through one compiled function (tf.function around the decoder).

distill: examples/distillation_2d.py (teacher MAF on a 2-D banana density, smaller student IAF).
"""

import argparse
import importlib.util
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import report  # noqa: E402

ROOT = report.ROOT


# ----- sampling at d=64 --------------------------------------------------------------------
def run_sampling(features=64, n=2000, num_layers=5, hidden_units=(128, 128), repeats=3):
    """samples/s of MAF and IAF of the same size: eager `Flow.sample`, compiled decode and log_prob."""
    import keras
    import tensorflow as tf

    import tfflows as tff

    rng = np.random.default_rng(0)
    rows = []
    flows = {"MAF": tff.MAF(features, num_layers=num_layers, hidden_units=hidden_units),
             "IAF": tff.IAF(features, num_layers=num_layers, hidden_units=hidden_units)}
    for name, flow in flows.items():
        flow(np.zeros((1, features), "float32"))  # builds the weights
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
    return {"features": features, "n": n, "num_layers": num_layers, "hidden_units": list(hidden_units), "rows": rows,
            "repeats": repeats}


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
             f"n={s['n']} per call, best of {s['repeats']})", "",
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
    p.add_argument("--parts", default="sampling,distill", help="comma-separated from sampling, distill")
    p.add_argument("--quick", action="store_true", help="200 samples per call at d=16, short distillation")
    p.add_argument("--out", help="default benchmarks/results/autoregressive.md")
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.parts.split(",")]
    sections = [f"# Autoregressive flows: sampling and distillation\n\n"
                f"Command: `{report.command_line('bench_autoregressive.py', argv)}`\n\n"
                + "\n".join(report.machine_header()) + "\n"]
    if "sampling" in parts:
        sections.append(sampling_markdown(run_sampling(**(dict(features=16, n=200, repeats=1) if args.quick else {}))))
    if "distill" in parts:
        sections.append(distill_markdown(run_distill(args.quick)))
    text = "\n".join(sections)
    print("\n" + text)
    report.write(args.out or report.default_out("autoregressive", args.quick, dated=False), text)


if __name__ == "__main__":
    main()
