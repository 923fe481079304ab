"""GPU benchmark (issues 18 and 29): train steps/s of tfflows' MAF and NSF on Keras-on-JAX
beside zuko's MAF and NSF on PyTorch, and of tfflows' Glow beside normflows' Glow on images
(32x32x3 at batch 64 and 256), same sizes, same batch, Adam, in one run.

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu_h200.md      # the issue's sizes
    python benchmarks/bench_gpu.py --cpu-small                                # seconds on CPU (CI)
    python benchmarks/bench_gpu.py --sizes 64x4096 --models MAF --impls jit,eager,compile
    python benchmarks/bench_gpu.py --require-gpu                             # GPU or stop at once

Target (issue 18, on an H200): tfflows MAF >= 4x zuko MAF, tfflows NSF >= 4x zuko NSF.
Glow has no GPU target (issue 29 asks for images to be measured on a GPU too).

Sizes are `DxB` (features x batch), default 64x4096 and 784x1024, 5 flow layers of hidden
units (256, 256) (ReLU). tfflows runs on Keras's JAX backend (set here before Keras is
imported; TensorFlow is not needed); zuko on torch, on CUDA when available. Rows (`--impls`):
  fit      `Flow.fit` on a host array of `--steps` batches per epoch, as a user calls it;
           time between epoch starts, the compiling first epoch excluded.
  jit      a stateless `jax.jit` train step (`stateless_call`, `value_and_grad`,
           `optimizer.stateless_apply`, buffers donated) over batches on the device.
  eager    zuko: a plain eager torch step (loss, backward, Adam) over batches on the device.
  compile  zuko: the same with the loss function torch.compile'd.
Images (`--image-sizes HxWxCxB`, `--image-models Glow`, default 32x32x3x64,32x32x3x256):
`tfflows.Glow(shape, num_levels=256, num_scales, steps_per_scale, hidden_channels)` from
`--glow-scales/--glow-steps/--glow-width` (default 2, 4, 64: the preset's defaults) on
dequantized levels in [0, 256); the peer is normflows 1.7.3's Glow of the same levels, steps
and width (`peers_normflows.build_glow`, data (k + u) / 256 as its README), rows "normflows
eager" and "normflows torch.compile". Their "last loss" is bits/dim in pixel space.
Timing (timing.time_loop): warm-up steps, then the median steps/s of `--repeats` runs of
`--steps` steps, each closed by a device sync, with the spread (max-min)/median. float32;
matmuls at `--precision` in both libraries ("highest": true float32, no TF32). Ratios are to
zuko eager of the same model and size in the same run; a missing torch/zuko (or
`--skip-zuko`) marks its rows unavailable.
"""

import argparse
import datetime
import math
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if os.path.dirname(HERE) not in sys.path:
    sys.path.append(os.path.dirname(HERE))  # the working tree's tfflows, unless one is installed

import peers_normflows  # noqa: E402 - none of these imports TensorFlow
import peers_zuko  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402

ISSUE_SIZES = "64x4096,784x1024"
IMAGE_SIZES = "32x32x3x64,32x32x3x256"  # issue 29: Glow at 32x32x3, batch 64 and 256
POOL = 8  # distinct device batches the timed steps rotate through
TARGETS = {"MAF": 4.0, "NSF": 4.0}  # issue 18: tfflows >= 4x zuko on an H200


# ----- set-up that must precede `import keras` / `import jax` ---------------------------
def _forbid_tensorflow():
    """Make `import tensorflow` / `tensorflow_probability` fail, as on the GPU machine."""
    import importlib.abc

    class Forbid(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tensorflow_probability", "tf_keras"):
                raise ImportError(f"{name} is forbidden by --forbid-tensorflow (the GPU machine has none)")
            return None

    sys.meta_path.insert(0, Forbid())


def _prepare_environment(args):
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # JAX and torch share the GPU in this process: JAX must not take 75% of it up front.
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    if args.threads:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={args.threads}").strip()
    if args.forbid_tensorflow:
        _forbid_tensorflow()
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
        raise RuntimeError("keras was imported before bench_gpu with another backend; run it in a fresh process.")


# ----- tfflows on Keras/JAX ----------------------------------------------------------------
def build_tfflows(kind, shape, config):
    """The tfflows model of a row: MAF/NSF of `shape` = (features,), Glow of (H, W, C)."""
    import tfflows as tff

    if kind == "Glow":
        return tff.Glow(shape, num_levels=256, num_scales=config.glow_scales,
                        steps_per_scale=config.glow_steps, hidden_channels=config.glow_width)
    cls = {"MAF": tff.MAF, "NSF": tff.NSF}[kind]
    return cls(shape[0], num_layers=config.layers, hidden_units=config.hidden, seed=config.seed)


def _random_rows(key, n, batch, shape, kind):
    """n batches of standard normal rows, or for images of dequantized levels in [0, 256)."""
    import jax
    import jax.numpy as jnp

    if kind == "Glow":
        return jax.random.uniform(key, (n, batch, *shape), jnp.float32, 0.0, 256.0 - 1e-3)
    return jax.random.normal(key, (n, batch, *shape), jnp.float32)


def _reported_loss(kind, loss, shape):
    """The row's "last loss": nats per row, bits/dim for images."""
    return loss / (math.prod(shape) * math.log(2.0)) if kind == "Glow" else loss


def tfflows_jit_step(kind, shape, batch, config):
    """Stateless jitted train step over device-resident batches: (steps/s, spread, params, loss)."""
    import jax
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_tfflows(kind, shape, config)
    pool = list(_random_rows(jax.random.PRNGKey(config.seed), POOL, batch, shape, kind))
    model(pool[0][:2])  # builds the weights
    step, state = timing.jax_train_step(model, keras.optimizers.Adam(config.learning_rate))
    box = {"state": state, "loss": None, "i": 0}

    def run_steps(n):
        state = box["state"]
        for _ in range(n):
            state, box["loss"] = step(state, pool[box["i"] % POOL])
            box["i"] += 1
        box["state"] = state

    rate, spread = timing.time_loop(run_steps, lambda: jax.block_until_ready((box["state"], box["loss"])),
                                    config.steps, config.repeats, config.warmup)
    return rate, spread, model.count_params(), _reported_loss(kind, float(box["loss"]), shape), ""


def tfflows_fit(kind, shape, batch, config):
    """`Flow.fit` on a host array: (steps/s, spread, params, loss, note)."""
    import jax
    import keras
    import numpy as np

    keras.utils.set_random_seed(config.seed)
    model = build_tfflows(kind, shape, config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    rows = _random_rows(jax.random.PRNGKey(config.seed + 1), 1, config.steps * batch, shape, kind)
    x = np.asarray(rows[0])

    starts = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()))
    # epoch 0 compiles (like the warm-up); the starts of epochs 1..repeats+1 bound `repeats` timed epochs
    history = model.fit(x, batch_size=batch, epochs=config.repeats + 2, verbose=0, callbacks=[timer])
    rate, spread = timing.summarize([config.steps / (b - a) for a, b in zip(starts[1:-1], starts[2:])])
    note = f"steps_per_execution={model.steps_per_execution}"
    loss = _reported_loss(kind, float(history.history["loss"][-1]), shape)
    return rate, spread, model.count_params(), loss, note


def where(exc):
    """' at tfflows/file.py:line in function' of an exception, or ''."""
    place = report.where_in_tfflows(exc)
    return f" at {place}" if place else ""


# ----- driver -----------------------------------------------------------------------------
def parse_sizes(text):
    """"DxB,..." -> [((D,), B), ...]; with `images`, "HxWxCxB,..." -> [((H, W, C), B), ...]."""
    sizes = []
    for item in text.split(","):
        if item.strip():
            *shape, batch = (int(v) for v in item.lower().strip().split("x"))
            sizes.append((tuple(shape), batch))
    return sizes


def _size_label(shape):
    return "x".join(str(v) for v in shape)


def setup_devices(args, peers):
    """Matmul precision in both libraries; --require-gpu stops unless JAX (and torch, if it
    runs) see a GPU. Returns the environment lines of the report."""
    import jax
    import keras

    dev = jax.devices()[0]
    problems = [f"JAX runs on {dev.platform}"] if dev.platform != "gpu" else []
    jax.config.update("jax_default_matmul_precision", "highest" if args.precision == "highest" else "tensorfloat32")
    lines = [f"JAX {jax.__version__} on {dev.platform}: {getattr(dev, 'device_kind', dev)}; Keras {keras.__version__} "
             f"(backend {keras.backend.backend()}); Python {platform.python_version()}"]
    if any(ok for ok, _ in peers.values()):
        import torch

        torch.set_float32_matmul_precision("highest" if args.precision == "highest" else "high")
        torch.backends.cudnn.allow_tf32 = args.precision != "highest"
        problems += [] if torch.cuda.is_available() else ["torch.cuda.is_available() is False"]
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    for name, (ok, info) in peers.items():
        lines.append(f"{info} on {device}" if ok else f"{name} peer unavailable: {info}")
    if args.require_gpu and problems:
        raise SystemExit("--require-gpu: " + "; ".join(problems))
    return lines


def torch_peer_steps(kind, shape, batch, config, compiled=False):
    """The PyTorch peer's row: zuko for MAF/NSF, normflows for Glow."""
    if kind == "Glow":
        return peers_normflows.device_steps_per_s(shape, batch, config, pool=POOL, compiled=compiled)
    return peers_zuko.device_steps_per_s(kind, shape[0], batch, config, pool=POOL, compiled=compiled)


RUNNERS = {
    "fit": ("tfflows fit", tfflows_fit),
    "jit": ("tfflows jit step", tfflows_jit_step),
    "eager": ("{peer} eager", torch_peer_steps),
    "compile": ("{peer} torch.compile", lambda *a: torch_peer_steps(*a, compiled=True)),
}


def peer_name(kind):
    return "normflows" if kind == "Glow" else "zuko"


def _peer_availability(args, wants_peer):
    """{"zuko": (ok, info), "normflows": (ok, info)} for the peers this run needs."""
    peers = {}
    kinds = [k for k in args.models.split(",") if k] + [k for k in args.image_models.split(",") if k]
    for name in sorted({peer_name(k) for k in kinds}):
        if args.skip_zuko or not wants_peer:
            peers[name] = (False, "--skip-zuko" if args.skip_zuko else "no peer rows asked")
        elif name == "zuko":
            peers[name] = peers_zuko.available(with_torch=True)
        else:
            ok = peers_normflows.available()
            peers[name] = (ok, peers_normflows.PACKAGE if ok else f"{peers_normflows.PACKAGE} or torch not installed")
    return peers


def implementations(args):
    names = [n.strip() for n in args.impls.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        raise SystemExit(f"--impls: unknown {unknown}; choose from {list(RUNNERS)}")
    return [n for n in names if not (args.skip_fit and n == "fit")]


def run(args):
    impls = implementations(args)
    wants_peer = any(n in ("eager", "compile") for n in impls)
    peers = _peer_availability(args, wants_peer)
    env = setup_devices(args, peers)
    if any(n in ("fit", "jit") for n in impls):
        try:
            import tfflows  # noqa: F401 - fail fast, with where, if the JAX path cannot import it
        except Exception as exc:  # noqa: BLE001
            print(f"import tfflows FAILED: {type(exc).__name__}{where(exc)}: {exc}", file=sys.stderr, flush=True)
            if args.require_gpu:  # on the device: do not spend its time on the peer alone
                raise SystemExit(2)
    rows = []
    cases = [(kind, shape, batch) for shape, batch in parse_sizes(args.sizes)
             for kind in args.models.split(",") if kind]
    cases += [(kind, shape, batch) for shape, batch in parse_sizes(args.image_sizes)
              for kind in args.image_models.split(",") if kind]
    for kind, shape, batch in cases:
        features = _size_label(shape)
        for key in impls:
            impl, runner = RUNNERS[key]
            impl = impl.format(peer=peer_name(kind))
            row = dict(model=kind, d=features, B=batch, impl=impl, rate=math.nan, spread=math.nan,
                       params=0, loss=math.nan, note="")
            peer_ok, peer_info = peers.get(peer_name(kind), (True, ""))
            if not impl.startswith("tfflows") and not peer_ok:
                row["note"] = f"unavailable ({peer_info})"
            else:
                start = time.perf_counter()
                try:
                    rate, spread, params, loss, note = runner(kind, shape, batch, args)
                    row.update(rate=rate, spread=spread, params=params, loss=loss, note=note)
                    if not math.isfinite(loss):
                        row["note"] = (note + "; " if note else "") + "non-finite loss"
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the run
                    msg = str(exc).splitlines()[0][:160] if str(exc) else ""
                    row["note"] = f"FAILED {type(exc).__name__}{where(exc)}: {msg}"
                    if args.verbose:
                        traceback.print_exc()
                row["wall"] = time.perf_counter() - start
            rows.append(row)
            print(f"{kind} d={features} B={batch} {impl}: {row['rate']:.1f} steps/s "
                  f"(spread {row['spread']:.0%}), loss {row['loss']:.3f}, {row.get('wall', 0):.0f}s wall "
                  f"{row['note']}", flush=True)
    return rows, env


def _fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


def markdown(rows, env, args):
    peer = {(r["model"], r["d"], r["B"]): r["rate"] for r in rows if r["impl"].endswith(" eager")}
    import jax

    dev = jax.devices()[0]
    kind = str(getattr(dev, "device_kind", ""))
    where_run = dev.platform if kind.lower() in ("", dev.platform) else f"{dev.platform} ({kind})"
    out = [f"# Train steps/s on {where_run}: tfflows (Keras on JAX) vs zuko and normflows (torch) - "
           f"{datetime.date.today().isoformat()}", "",
           f"- Command: `{report.command_line('bench_gpu.py', args.argv)}`",
           *[f"- {line}" for line in env],
           f"- {args.layers} flow layers, conditioner hidden units {tuple(args.hidden)} (ReLU), Adam(lr="
           f"{args.learning_rate}), float32, matmul precision '{args.precision}' in both libraries; "
           f"{args.warmup} warm-up steps, then median of {args.repeats} runs of {args.steps} steps "
           "(fit: median of epochs of that many steps after the compiling epoch).",
           f"- Images: Glow and normflows' Glow of {args.glow_scales} levels x {args.glow_steps} steps, width "
           f"{args.glow_width}, 256 levels; their last loss is bits/dim.",
           "- Ratio: steps/s over the torch peer's eager row (zuko, or normflows for Glow) of the same model and "
           "size, in this run. Target (issue 18, H200): "
           + ", ".join(f"{m} >= {t:g}x" for m, t in TARGETS.items()) + "; none for Glow.", "",
           "| model | d | batch | implementation | steps/s | ms/step | spread | params | last loss "
           "| vs torch eager | note |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        base = peer.get((r["model"], r["d"], r["B"]), math.nan)
        ratio = r["rate"] / base if math.isfinite(base) and base > 0 else math.nan
        out.append(f"| {r['model']} | {r['d']} | {r['B']} | {r['impl']} | {_fmt(r['rate'], '.1f')} | "
                   f"{_fmt(1e3 / r['rate'] if r['rate'] > 0 else math.nan, '.2f')} | {_fmt(r['spread'], '.0%')} | "
                   f"{r['params'] or 'n/a'} | {_fmt(r['loss'], '.3f')} | {_fmt(ratio, '.2f')}"
                   f"{'x' if math.isfinite(ratio) else ''} | {r['note'].replace('|', '/')} |")
    out += ["", "| model | d | batch | best tfflows / torch eager | best tfflows / best torch | target (vs eager) |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    for (model, d, b), base in peer.items():
        same = [r for r in rows if (r["model"], r["d"], r["B"]) == (model, d, b) and math.isfinite(r["rate"])]
        ours = max([r["rate"] for r in same if r["impl"].startswith("tfflows")], default=math.nan)
        theirs = max([r["rate"] for r in same if not r["impl"].startswith("tfflows")], default=math.nan)
        ratio = ours / base if math.isfinite(base) and base > 0 else math.nan
        best = ours / theirs if math.isfinite(theirs) and theirs > 0 else math.nan
        target = TARGETS.get(model)
        if target is None:
            verdict = "none"
        else:
            met = "n/a" if not math.isfinite(ratio) else ("met" if ratio >= target else "missed")
            verdict = f">= {target:g}x: {met}"
        out.append(f"| {model} | {d} | {b} | {_fmt(ratio, '.2f')} | {_fmt(best, '.2f')} | {verdict} |")
    return "\n".join(out) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=ISSUE_SIZES, help="comma-separated DxB (features x batch)")
    p.add_argument("--models", default="MAF,NSF", help="dense flows at --sizes ('' for none)")
    p.add_argument("--image-sizes", default=IMAGE_SIZES, help="comma-separated HxWxCxB (image x batch)")
    p.add_argument("--image-models", default="Glow", help="image flows at --image-sizes ('' for none)")
    p.add_argument("--glow-scales", type=int, default=2)
    p.add_argument("--glow-steps", type=int, default=4, help="Glow steps per scale")
    p.add_argument("--glow-width", type=int, default=64, help="channels of each coupling network")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--hidden", default="256,256", help="conditioner hidden units, comma-separated")
    p.add_argument("--steps", type=int, default=50, help="steps per timed run (and per fit epoch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=("highest", "tf32"), default="highest")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for XLA and torch (0: defaults)")
    p.add_argument("--cpu-small", action="store_true",
                   help="tiny sizes for a CPU check in seconds: d=8, B=64, 2 layers (16, 16), few steps, 1 thread")
    p.add_argument("--skip-zuko", action="store_true", help="do not run the torch peers (zuko, normflows)")
    p.add_argument("--skip-fit", action="store_true", help="do not run the tfflows Flow.fit rows")
    p.add_argument("--impls", default="fit,jit,eager",
                   help="rows to run, from fit, jit (tfflows) and eager, compile (zuko)")
    p.add_argument("--require-gpu", action="store_true", help="stop at once unless JAX and torch see a GPU")
    p.add_argument("--forbid-tensorflow", action="store_true",
                   help="make importing tensorflow/tensorflow_probability fail (checks the JAX path needs neither)")
    p.add_argument("--out", default=None, help="write the markdown report here")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed rows")
    args = p.parse_args(argv)
    args.argv = argv
    if args.cpu_small:
        args.sizes, args.layers, args.hidden = "8x64", 2, "16,16"
        args.image_sizes, args.glow_scales, args.glow_steps, args.glow_width = "8x8x3x8", 1, 1, 8
        args.steps, args.repeats, args.warmup = 8, 3, 2
        args.threads = args.threads or 1
    args.hidden = [int(h) for h in str(args.hidden).split(",") if h.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    _prepare_environment(args)
    if args.threads:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    rows, env = run(args)
    text = markdown(rows, env, args)
    print(text)
    if args.out:
        report.write(args.out, text)
    return rows


if __name__ == "__main__":
    main()
