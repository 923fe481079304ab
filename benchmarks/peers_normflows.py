"""The PyTorch image-flow peer: normflows' Glow (Stimper et al. 2023, `pip install
normflows==1.7.3`), built as the package's own README and `examples/glow.ipynb` build it, run
as it is (benchmark-only; nothing of it is in tfflows):

    per level i of L: K x nf.flows.GlowBlock(channels, hidden, split_mode="channel",
    scale=True) then nf.flows.Squeeze(); nf.flows.Merge() between levels; one
    nf.distributions.GlowBase (learned per-channel mean and scale) per level;
    nf.MultiscaleFlow(q0, flows, merges, class_cond=False).

Each GlowBlock is an affine coupling with normflows' ConvNet2d (conv 3x3, 1x1, 3x3 of
`hidden` channels, LeakyReLU 0), an LU 1x1 convolution and an ActNorm. Data: the package's
recipe, pixel levels k mapped to x = (k + u) / 256 in [0, 1) (channels first); the density of
the pixel-space variable v = k + u is p(x) / 256^D, so bits/dim in pixel space are
-log2 p(x) / D + 8: the same quantity tfflows' `bits_per_dim` reports.
"""

import copy
import math
import time

import numpy as np

PACKAGE = "normflows==1.7.3"


def available():
    try:
        import normflows  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def build_glow(image_shape, num_scales, steps_per_scale, hidden_channels, seed=0):
    """normflows' multi-scale Glow for images (H, W, C), L = num_scales levels of K =
    steps_per_scale GlowBlocks (the README's construction)."""
    import normflows as nf
    import torch

    torch.manual_seed(seed)
    h, w, c = image_shape
    levels = num_scales
    q0, merges, flows = [], [], []
    for i in range(levels):
        blocks = [nf.flows.GlowBlock(c * 2 ** (levels + 1 - i), hidden_channels, split_mode="channel",
                                     scale=True) for _ in range(steps_per_scale)]
        flows.append(blocks + [nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (c * 2 ** (levels - i), h // 2 ** (levels - i), w // 2 ** (levels - i))
        else:
            latent = (c * 2 ** (levels + 1), h // 2**levels, w // 2**levels)
        q0.append(nf.distributions.GlowBase(latent))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def _to_unit(levels_nhwc, rng=None):
    """Pixel levels (N, H, W, C) -> torch (N, C, H, W) in [0, 1): (k + u) / 256, with
    fresh noise when `rng` is given and the values as they are (already dequantized)
    otherwise."""
    import torch

    x = np.asarray(levels_nhwc, dtype="float32")
    if rng is not None:
        x = x + rng.uniform(size=x.shape).astype("float32")
    return torch.from_numpy(np.ascontiguousarray((x / 256.0).transpose(0, 3, 1, 2)))


def bits_per_dim(model, dequantized_nhwc, batch=500):
    """Pixel-space bits/dim of dequantized levels v in [0, 256): -log2 p(v) / D per image."""
    import torch

    d = int(np.prod(dequantized_nhwc.shape[1:]))
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(dequantized_nhwc), batch):
            log_p = model.log_prob(_to_unit(dequantized_nhwc[start:start + batch]), None)
            out.append(-log_p.double().numpy() / (d * math.log(2.0)) + 8.0)
    model.train()
    return np.concatenate(out)


def train(model, train_levels, val_dequantized, *, learning_rate, batch_size, epochs, patience,
          max_train_seconds, seed=0):
    """Adam on the mean NLL with fresh dequantization noise each step, validation bits/dim
    after each epoch, early stopping with the best weights restored, and the same
    wall-clock budget rule as the Keras runs (stop at the first epoch end past it).
    Returns a dict: wall_s, epoch_train_seconds, steps, best_epoch, epochs, note."""
    import torch

    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    with torch.no_grad():  # ActNorm initializes on its first batch, as in the package's example
        model.log_prob(_to_unit(train_levels[:batch_size], rng), None)
    best, best_state, best_epoch, bad = math.inf, None, 0, 0
    epoch_seconds, steps, note = [], 0, ""
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train_levels))
        t0 = time.perf_counter()
        for b in range(0, len(order), batch_size):
            x = _to_unit(train_levels[order[b:b + batch_size]], rng)
            loss = model.forward_kld(x)
            if not torch.isfinite(loss):
                note = f"training loss became non-finite at epoch {epoch}; stopped"
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        epoch_seconds.append(time.perf_counter() - t0)
        if note:
            break
        val = float(np.mean(bits_per_dim(model, val_dequantized)))
        if val < best:
            best, best_state, best_epoch, bad = val, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            bad += 1
        if bad >= patience:
            break
        if time.perf_counter() - start > max_train_seconds:
            note = f"stopped by the {max_train_seconds:.0f} s budget"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return dict(wall_s=time.perf_counter() - start, epoch_train_seconds=epoch_seconds,
                steps_per_epoch=math.ceil(len(train_levels) / batch_size), best_epoch=best_epoch,
                epochs=len(epoch_seconds), note=note)


def sample_levels(model, n):
    """n samples as pixel levels (N, H, W, C) in [0, 256) (clipped), for pictures."""
    import torch

    model.eval()
    with torch.no_grad():
        x, _ = model.sample(n)
    model.train()
    return np.clip(x.numpy().transpose(0, 2, 3, 1) * 256.0, 0, 255.999)


def device_steps_per_s(image_shape, batch, config, pool=8, compiled=False):
    """bench_gpu.py's normflows row: an eager (or torch.compile'd loss) torch train step of
    `build_glow` over `pool` batches of dequantized levels already on the device (CUDA when
    available), timed by `timing.time_loop`. `config` has glow_scales, glow_steps,
    glow_width, learning_rate, seed, steps, repeats, warmup. Returns (steps/s, spread,
    params, last loss, note)."""
    import torch

    import timing

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_glow(image_shape, config.glow_scales, config.glow_steps, config.glow_width,
                       seed=config.seed).to(device)
    rng = np.random.default_rng(config.seed)
    levels = rng.integers(0, 256, size=(pool, batch) + tuple(image_shape))
    batches = [_to_unit(levels[i], rng).to(device) for i in range(pool)]
    with torch.no_grad():  # ActNorm initializes on its first batch
        model.log_prob(batches[0], None)
    params = list(model.parameters())
    rate, spread, loss = timing.torch_steps_per_s(model.forward_kld, params, batches, device, config,
                                                  compiled)
    d = int(np.prod(image_shape))
    bits = loss / (d * math.log(2.0)) + 8.0  # forward_kld is the mean -log p(x)
    return (rate, spread, int(sum(p.numel() for p in params)), bits,
            f"device={device.type}; loss in bits/dim")
