"""Where an image flow's training step goes on the CPU (issue 29): tfflows' Glow against the
PyTorch peer normflows' Glow of the same size, with TensorFlow's oneDNN kernels off and on.

    python benchmarks/profile_image_step.py                    # about 6 minutes on 2 cores
    python benchmarks/profile_image_step.py --seconds 3 --rounds 1   # quicker, noisier

Parts (each size: Glow with 2 levels of 4 steps, width 64, batch 64, Adam):
  steps/s     whole training steps (`train_on_batch`; normflows: forward_kld, backward,
              Adam step), interleaved rounds in one process per oneDNN setting (the
              setting is read when TensorFlow loads), median of the rounds
  op types    tf.profiler's host self-time per op type of the tfflows step (oneDNN on)
  convs       forward + backward of each convolution of one coupling network at the first
              level's shape, TensorFlow (oneDNN on) against PyTorch, same threads
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import report  # noqa: E402

SIZES = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3)}
GLOW = dict(num_scales=2, steps_per_scale=4, hidden_channels=64)
BATCH = 64


def _rate(step, seconds):
    step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start)


def _steps(shape, with_peer):
    """{name: a function running one training step} for one image shape."""
    import keras
    import torch

    import peers_normflows
    import tfflows as tff

    x = np.random.default_rng(0).integers(0, 256, size=(BATCH,) + shape).astype("float32")
    model = tff.Glow(shape, network="glow", **GLOW)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    steps = {"tfflows Glow": lambda: model.train_on_batch(x)}
    if with_peer:
        torch.set_num_threads(os.cpu_count() or 1)
        peer = peers_normflows.build_glow(shape, GLOW["num_scales"], GLOW["steps_per_scale"],
                                          GLOW["hidden_channels"])
        optimizer = torch.optim.Adam(peer.parameters(), 1e-3)
        rng = np.random.default_rng(0)

        def peer_step():
            loss = peer.forward_kld(peers_normflows._to_unit(x, rng))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        steps["normflows Glow"] = peer_step
    return steps, model, x


def child(args):
    """One process, one oneDNN setting: steps/s of every model and size, interleaved rounds."""
    from tensorflow.python.util import _pywrap_util_port

    out = {"onednn": bool(_pywrap_util_port.IsMklEnabled()), "rates": {}}
    for size in args.sizes.split(","):
        steps, _, _ = _steps(SIZES[size], with_peer=args.with_peer)
        for _ in range(args.rounds):
            for name, step in steps.items():
                out["rates"].setdefault(f"{name} {size}", []).append(_rate(step, args.seconds))
    print("RESULT " + json.dumps(out))


def op_types(shape, steps=10):
    """{op type: ms per step} of the tfflows Glow step (tf.profiler host self-time, through
    profile_step.op_profile)."""
    import profile_step

    fns, _, _ = _steps(shape, with_peer=False)
    step = fns["tfflows Glow"]
    for _ in range(3):
        step()
    by_type = profile_step.op_profile(step, steps)
    if isinstance(by_type, str):
        return {f"(no profile: {by_type})": 0.0}
    return {name: us / 1e3 / steps for name, us in by_type.items()}


def convs(shape, seconds):
    """[(conv, TF ms, torch ms)] for the convolutions of one first-level coupling network."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    h, w, c = shape[0] // 2, shape[1] // 2, shape[2] * 4
    hidden, rng, rows = GLOW["hidden_channels"], np.random.default_rng(0), []
    for label, c_in, c_out, k in [("input 3x3", c // 2, hidden, 3), ("middle 1x1", hidden, hidden, 1),
                                  ("output 3x3", hidden, c, 3)]:
        x = tf.constant(rng.normal(size=(BATCH, h, w, c_in)).astype("float32"))
        kernel = tf.Variable(rng.normal(size=(k, k, c_in, c_out)).astype("float32") * 0.05)

        @tf.function
        def tf_step(x, kernel=kernel):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.conv2d(x, kernel, 1, "SAME")
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [x, kernel])

        xt = torch.randn(BATCH, c_in, h, w, requires_grad=True)
        conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2)

        def torch_step(xt=xt, conv=conv):
            conv.zero_grad()
            xt.grad = None
            (conv(xt) ** 2).sum().backward()

        tf_rate = _rate(lambda: tf_step(x), seconds)
        torch_rate = _rate(torch_step, seconds)
        rows.append((f"{label}, {c_in} -> {c_out} channels at {h}x{w}", 1e3 / tf_rate, 1e3 / torch_rate))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="28x28x1,32x32x3")
    parser.add_argument("--seconds", type=float, default=10.0, help="per steps/s measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--with-peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="default benchmarks/results/profile_image_step_<date>.md")
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    start = time.perf_counter()
    runs = {}
    for onednn, peer in (("0", False), ("1", True)):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--sizes", args.sizes,
               "--seconds", str(args.seconds), "--rounds", str(args.rounds)] + (["--with-peer"] if peer else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        runs[onednn] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    first = SIZES[args.sizes.split(",")[0]]
    profile = op_types(first)
    conv_rows = convs(first, args.seconds / 2)
    rates = {f"{key} (oneDNN {'on' if run['onednn'] else 'off'})": values
             for run in runs.values() for key, values in run["rates"].items()}
    lines = [f"# Image flow training step on the CPU ({datetime.datetime.now():%Y-%m-%d %H:%M})", "",
             f"Command: `{report.command_line('profile_image_step.py', argv)}` ({time.perf_counter() - start:.0f} s)",
             "", *report.machine_header(),
             f"- Glow {GLOW} (tfflows with network='glow', the paper's 3x3, 1x1, 3x3 coupling network; "
             f"normflows GlowBlocks of the same levels, steps and width), batch {BATCH}, Adam.", "",
             "## Training steps per second (median of the rounds)", "",
             "| model and size | steps/s | rounds |", "|---|---:|---|"]
    for key, values in rates.items():
        lines.append(f"| {key} | {statistics.median(values):.2f} | {', '.join(f'{r:.2f}' for r in values)} |")
    total = sum(profile.values())
    lines += ["", f"## tfflows Glow step by op type, {'x'.join(map(str, first))}, oneDNN on "
              f"(tf.profiler host self-time, {total:.0f} ms per profiled step)", "",
              "| op type | ms per step | share |", "|---|---:|---:|"]
    for name, ms in sorted(profile.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"| {name} | {ms:.1f} | {100 * ms / total:.0f}% |")
    lines += ["", "## One coupling network's convolutions, forward + backward (ms)", "",
              "| convolution | TensorFlow (oneDNN on) | PyTorch | TF / torch |", "|---|---:|---:|---:|"]
    for label, tf_ms, torch_ms in conv_rows:
        lines.append(f"| {label} | {tf_ms:.2f} | {torch_ms:.2f} | {tf_ms / torch_ms:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    report.write(args.out or report.default_out("profile_image_step"), text)


if __name__ == "__main__":
    main()
