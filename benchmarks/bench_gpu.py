"""GPU benchmark (issue 18): train steps/s of tfflows' MAF and NSF on Keras-on-JAX beside
zuko's MAF and NSF on PyTorch, same sizes, same batch, Adam, in one run.

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu_h200.md      # the issue's sizes
    python benchmarks/bench_gpu.py --cpu-small                                # seconds on CPU (CI)
    python benchmarks/bench_gpu.py --sizes 64x4096 --models MAF --torch-compile
    python benchmarks/bench_gpu.py --impls jit,eager,compile --require-gpu   # pick rows; GPU or stop

Target (issue 18, on an H200): tfflows MAF >= 4x zuko MAF, tfflows NSF >= 4x zuko NSF.

Sizes are `DxB` (features x batch); default the issue's two, 64x4096 and 784x1024, with 5
flow layers of conditioner hidden units (256, 256) (ReLU). tfflows runs on Keras's JAX
backend (KERAS_BACKEND=jax is set here before Keras is imported; TensorFlow is not needed);
zuko runs on torch, on CUDA when available. Rows, per model and size:
  tfflows fit        `Flow.fit` as a user calls it: a numpy array of `--steps` batches per
                     epoch, Keras's jitted train step, compile()'s default
                     steps_per_execution, shuffling and tfflows' callbacks included; time
                     between consecutive epoch starts, the first epoch (compilation) excluded.
  tfflows jit step   a stateless `jax.jit` train step (`model.stateless_call`, mean NLL,
                     `jax.value_and_grad`, `optimizer.stateless_apply`, buffers donated) in a
                     Python loop over batches already on the device.
  zuko eager         a plain eager torch step (`-flow().log_prob(x).mean()`, backward,
                     torch.optim.Adam's default (foreach) step) over batches already on the device.
  zuko torch.compile (`--torch-compile`) the same with the loss function torch.compile'd.
Timing: warm-up steps first (compilation, autotuning), then `--repeats` timed runs of
`--steps` steps, each closed by `jax.block_until_ready` / `torch.cuda.synchronize`; the
median steps/s is reported with the spread (max-min)/median. Inputs rotate through 8
standard-normal batches generated on the device. float32 everywhere; matrix products at
`--precision` in both libraries (default "highest": true float32, no TF32, since PyTorch's
default is float32 and JAX's default on GPU is TF32-like; "tf32" allows TF32 in both).
Ratios are tfflows / zuko eager of the same model and size, measured in the same run.
Missing torch or zuko (or `--skip-zuko`) marks the peer rows unavailable.
"""

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # the working tree's tfflows, unless one is installed or on PYTHONPATH

ISSUE_SIZES = "64x4096,784x1024"
POOL = 8  # distinct device batches the timed steps rotate through
TARGET = 4.0  # issue 18: tfflows >= 4x zuko on an H200


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


# ----- timing ---------------------------------------------------------------------------
def _summarize(rates):
    rates = [r for r in rates if math.isfinite(r)]
    if not rates:
        return math.nan, math.nan
    med = statistics.median(rates)
    return med, (max(rates) - min(rates)) / med if med > 0 else math.nan


def time_loop(run_steps, sync, steps, repeats, warmup):
    """Median steps/s of `repeats` timed calls of run_steps(steps), each followed by sync();
    `warmup` steps (and one sync) come first."""
    run_steps(warmup)
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        sync()
        rates.append(steps / (time.perf_counter() - start))
    return _summarize(rates)


# ----- tfflows on Keras/JAX ----------------------------------------------------------------
def build_tfflows(kind, features, config):
    import tfflows as tff

    cls = {"MAF": tff.MAF, "NSF": tff.NSF}[kind]
    return cls(features, num_layers=config.layers, hidden_units=config.hidden, seed=config.seed)


def tfflows_jit_step(kind, features, batch, config):
    """Stateless jitted train step over device-resident batches: (steps/s, spread, params, loss)."""
    import jax
    import jax.numpy as jnp
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_tfflows(kind, features, config)
    pool = list(jax.random.normal(jax.random.PRNGKey(config.seed), (POOL, batch, features), jnp.float32))
    model(pool[0][:2])  # builds the weights
    optimizer = keras.optimizers.Adam(config.learning_rate)
    optimizer.build(model.trainable_variables)

    def loss_fn(trainable, non_trainable, x):
        log_prob, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return -jnp.mean(log_prob), non_trainable

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def _step(state, x):
        trainable, non_trainable, opt_vars = state
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), loss

    step = jax.jit(_step, donate_argnums=0)
    box = {"state": ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables],
                     [v.value for v in optimizer.variables]),
           "loss": None, "i": 0}

    def run_steps(n):
        state = box["state"]
        for _ in range(n):
            state, box["loss"] = step(state, pool[box["i"] % POOL])
            box["i"] += 1
        box["state"] = state

    rate, spread = time_loop(run_steps, lambda: jax.block_until_ready((box["state"], box["loss"])),
                             config.steps, config.repeats, config.warmup)
    return rate, spread, model.count_params(), float(box["loss"]), ""


def tfflows_fit(kind, features, batch, config):
    """`Flow.fit` on a host array: (steps/s, spread, params, loss, note)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(config.seed)
    model = build_tfflows(kind, features, config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    x = np.random.default_rng(config.seed).standard_normal((config.steps * batch, features), dtype=np.float32)

    class EpochStarts(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.starts = []

        def on_epoch_begin(self, epoch, logs=None):
            self.starts.append(time.perf_counter())

        def on_train_end(self, logs=None):
            self.starts.append(time.perf_counter())

    timer = EpochStarts()
    # Epoch 0 compiles (like the warm-up), then `repeats` timed epochs; the last epoch's
    # end also runs on_train_end, so one extra epoch keeps every timed interval alike.
    history = model.fit(x, batch_size=batch, epochs=config.repeats + 2, verbose=0, callbacks=[timer])
    starts = timer.starts[1:-1]
    rates = [config.steps / (b - a) for a, b in zip(starts[:-1], starts[1:])]
    rate, spread = _summarize(rates)
    note = f"steps_per_execution={model.steps_per_execution}"
    return rate, spread, model.count_params(), float(history.history["loss"][-1]), note


# ----- zuko on torch --------------------------------------------------------------------
def zuko_available():
    try:
        import torch
        import zuko
    except Exception as exc:  # noqa: BLE001 - any import failure means "peer unavailable"
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"zuko {zuko.__version__}, torch {torch.__version__}"


def zuko_step(kind, features, batch, config, compiled=False):
    """Eager (or torch.compile'd loss) torch train step: (steps/s, spread, params, loss, note)."""
    import torch
    import zuko

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    flow = getattr(zuko.flows, kind)(features, transforms=config.layers,
                                     hidden_features=tuple(config.hidden)).to(device)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.learning_rate)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    pool = list(torch.randn((POOL, batch, features), generator=gen, device=device, dtype=torch.float32))

    def loss_fn(x):
        return -flow().log_prob(x).mean()

    if compiled:
        loss_fn = torch.compile(loss_fn)
    box = {"loss": None, "i": 0}

    def run_steps(n):
        for _ in range(n):
            loss = loss_fn(pool[box["i"] % POOL])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            box["loss"], box["i"] = loss.detach(), box["i"] + 1

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rate, spread = time_loop(run_steps, sync, config.steps, config.repeats, config.warmup)
    params = int(sum(p.numel() for p in flow.parameters()))
    return rate, spread, params, float(box["loss"]), f"device={device.type}"


def where(exc):
    """'tfflows/file.py:line' of the innermost tfflows frame of an exception, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}tfflows{os.sep}" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" at tfflows{f.filename.rsplit(os.sep + 'tfflows', 1)[1]}:{f.lineno}"


# ----- driver -----------------------------------------------------------------------------
def parse_sizes(text):
    sizes = []
    for item in text.split(","):
        d, b = item.lower().strip().split("x")
        sizes.append((int(d), int(b)))
    return sizes


def environment(args, peer_ok, peer_info):
    import jax
    import keras

    dev = jax.devices()[0]
    lines = [f"JAX {jax.__version__} on {dev.platform}: {getattr(dev, 'device_kind', dev)}; Keras {keras.__version__} "
             f"(backend {keras.backend.backend()}); Python {platform.python_version()}"]
    if peer_ok:
        import torch

        where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        lines.append(f"{peer_info} on {where}")
    else:
        lines.append(f"zuko peer unavailable: {peer_info}")
    return lines


def set_precision(precision, peer_ok):
    import jax

    jax.config.update("jax_default_matmul_precision", "highest" if precision == "highest" else "tensorfloat32")
    if peer_ok:
        import torch

        torch.set_float32_matmul_precision("highest" if precision == "highest" else "high")
        torch.backends.cudnn.allow_tf32 = precision != "highest"


RUNNERS = {
    "fit": ("tfflows fit", tfflows_fit),
    "jit": ("tfflows jit step", tfflows_jit_step),
    "eager": ("zuko eager", zuko_step),
    "compile": ("zuko torch.compile", lambda *a: zuko_step(*a, compiled=True)),
}


def implementations(args):
    names = [n.strip() for n in args.impls.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        raise SystemExit(f"--impls: unknown {unknown}; choose from {list(RUNNERS)}")
    if args.skip_fit and "fit" in names:
        names.remove("fit")
    if args.torch_compile and "compile" not in names:
        names.append("compile")
    return names


def check_gpu(peer_ok):
    """--require-gpu: stop before any work unless JAX (and torch, if it runs) see a GPU."""
    import jax

    problems = []
    if jax.devices()[0].platform != "gpu":
        problems.append(f"JAX runs on {jax.devices()[0].platform}")
    if peer_ok:
        import torch

        if not torch.cuda.is_available():
            problems.append("torch.cuda.is_available() is False")
    if problems:
        raise SystemExit("--require-gpu: " + "; ".join(problems))


def run(args):
    impls = implementations(args)
    wants_peer = any(n in ("eager", "compile") for n in impls)
    peer_ok, peer_info = (False, "--skip-zuko") if args.skip_zuko or not wants_peer else zuko_available()
    if args.require_gpu:
        check_gpu(peer_ok)
    if any(n in ("fit", "jit") for n in impls):
        try:
            import tfflows  # noqa: F401 - fail fast, with where, if the JAX path cannot import it
        except Exception as exc:  # noqa: BLE001
            print(f"import tfflows FAILED: {type(exc).__name__}{where(exc)}: {exc}", file=sys.stderr, flush=True)
            if args.require_gpu:  # on the device: do not spend its time on the peer alone
                raise SystemExit(2)
    set_precision(args.precision, peer_ok)
    rows = []
    for features, batch in parse_sizes(args.sizes):
        for kind in args.models.split(","):
            for key in impls:
                impl, runner = RUNNERS[key]
                row = dict(model=kind, d=features, B=batch, impl=impl, rate=math.nan, spread=math.nan,
                           params=0, loss=math.nan, note="")
                if impl.startswith("zuko") and not peer_ok:
                    row["note"] = f"unavailable ({peer_info})"
                else:
                    start = time.perf_counter()
                    try:
                        rate, spread, params, loss, note = runner(kind, features, batch, args)
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
    return rows, environment(args, peer_ok, peer_info)


def _fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


def markdown(rows, env, args):
    peer = {(r["model"], r["d"], r["B"]): r["rate"] for r in rows if r["impl"] == "zuko eager"}
    import jax

    dev = jax.devices()[0]
    kind = str(getattr(dev, "device_kind", ""))
    where_run = dev.platform if kind.lower() in ("", dev.platform) else f"{dev.platform} ({kind})"
    out = [f"# Train steps/s on {where_run}: tfflows (Keras on JAX) vs zuko (torch) - "
           f"{datetime.date.today().isoformat()}", "",
           f"- Command: `python benchmarks/bench_gpu.py {' '.join(sys.argv[1:])}`",
           *[f"- {line}" for line in env],
           f"- {args.layers} flow layers, conditioner hidden units {tuple(args.hidden)} (ReLU), Adam(lr="
           f"{args.learning_rate}), float32, matmul precision '{args.precision}' in both libraries; "
           f"{args.warmup} warm-up steps, then median of {args.repeats} runs of {args.steps} steps "
           "(fit: median of epochs of that many steps after the compiling epoch).",
           f"- Ratio: steps/s over zuko eager of the same model and size, in this run. Target (issue 18, H200): "
           f">= {TARGET:g}x.", "",
           "| model | d | batch | implementation | steps/s | ms/step | spread | params | last loss "
           "| vs zuko eager | note |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        base = peer.get((r["model"], r["d"], r["B"]), math.nan)
        ratio = r["rate"] / base if math.isfinite(base) and base > 0 else math.nan
        out.append(f"| {r['model']} | {r['d']} | {r['B']} | {r['impl']} | {_fmt(r['rate'], '.1f')} | "
                   f"{_fmt(1e3 / r['rate'] if r['rate'] > 0 else math.nan, '.2f')} | {_fmt(r['spread'], '.0%')} | "
                   f"{r['params'] or 'n/a'} | {_fmt(r['loss'], '.3f')} | {_fmt(ratio, '.2f')}"
                   f"{'x' if math.isfinite(ratio) else ''} | {r['note'].replace('|', '/')} |")
    out += ["", "| model | d | batch | best tfflows / zuko eager | best tfflows / best zuko | target (vs eager) |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    for (model, d, b), base in peer.items():
        same = [r for r in rows if (r["model"], r["d"], r["B"]) == (model, d, b) and math.isfinite(r["rate"])]
        ours = max([r["rate"] for r in same if r["impl"].startswith("tfflows")], default=math.nan)
        theirs = max([r["rate"] for r in same if r["impl"].startswith("zuko")], default=math.nan)
        ratio = ours / base if math.isfinite(base) and base > 0 else math.nan
        best = ours / theirs if math.isfinite(theirs) and theirs > 0 else math.nan
        verdict = "n/a" if not math.isfinite(ratio) else ("met" if ratio >= TARGET else "missed")
        out.append(f"| {model} | {d} | {b} | {_fmt(ratio, '.2f')} | {_fmt(best, '.2f')} | >= {TARGET:g}x: {verdict} |")
    return "\n".join(out) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=ISSUE_SIZES, help="comma-separated DxB (features x batch)")
    p.add_argument("--models", default="MAF,NSF")
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
    p.add_argument("--skip-zuko", action="store_true", help="do not run the zuko peer")
    p.add_argument("--skip-fit", action="store_true", help="do not run the tfflows Flow.fit rows")
    p.add_argument("--torch-compile", action="store_true", help="add zuko rows with a torch.compile'd loss")
    p.add_argument("--impls", default="fit,jit,eager",
                   help="rows to run, from fit, jit (tfflows) and eager, compile (zuko)")
    p.add_argument("--require-gpu", action="store_true", help="stop at once unless JAX and torch see a GPU")
    p.add_argument("--forbid-tensorflow", action="store_true",
                   help="make importing tensorflow/tensorflow_probability fail (checks the JAX path needs neither)")
    p.add_argument("--out", default=None, help="write the markdown report here")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed rows")
    args = p.parse_args(argv)
    if args.cpu_small:
        args.sizes, args.layers, args.hidden = "8x64", 2, "16,16"
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
    report = markdown(rows, env, args)
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report)
    return rows


if __name__ == "__main__":
    main()
