"""The greedy fitting loop of iterative Gaussianization (no gradients): blocks are fitted
one at a time on the data transformed by the previous ones, with a stopping rule on the
training gain or the validation log-likelihood (used by `RBIG` and the start of
`GaussianizationFlow`)."""

import math
import time

import keras
import numpy as np
from keras import ops

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(z, log_det):
    """Mean negative log-likelihood (nats) of rows with latent z and log-det, and per row."""
    per_row = 0.5 * np.sum(np.square(z), axis=1) + z.shape[1] * _HALF_LOG_2PI - log_det
    return float(np.mean(per_row)), per_row


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def greedy_blocks(make_block, x, val, max_blocks, tol, patience, verbose, dtype):
    """Fit blocks (lists of layers with `fit_from_data`) one at a time on the data
    transformed by the previous ones. Returns (layers of every fitted block, the depth to
    keep, the per-block history); see `RBIG.fit_greedy` for the stopping rule."""
    n = len(x)
    # Training and validation rows travel together through each new block; the layers
    # are fitted on the training rows only.
    rows = x if val is None else np.concatenate([x, val], axis=0)
    h = ops.convert_to_tensor(rows, dtype)
    log_det = np.zeros(len(rows))
    train_nll = gaussian_nll(rows[:n], log_det[:n])[0]
    history = {"train_nll": [], "val_nll": [], "tc_reduction": [], "seconds": []}
    blocks, best_depth, best_val, wait_val, wait_tol = [], 0, math.inf, 0, 0
    bar = keras.utils.Progbar(max_blocks, unit_name="block",
                              stateful_metrics=["train_nll", "gain", "val_nll"]) if verbose else None
    start = time.perf_counter()
    for i in range(max_blocks):
        block = make_block(i)
        for layer in block:
            layer.build((None, x.shape[1]))
            layer.fit_from_data(h[:n])
            h, ld = layer.forward_and_log_det(h)
            log_det += _numpy(ld)
        blocks.append(block)
        z = _numpy(h)
        new_nll = gaussian_nll(z[:n], log_det[:n])[0]
        gain, train_nll = train_nll - new_nll, new_nll
        history["train_nll"].append(train_nll)
        history["tc_reduction"].append(gain)
        history["seconds"].append(time.perf_counter() - start)
        values = [("train_nll", train_nll), ("gain", gain)]
        wait_tol = wait_tol + 1 if gain < tol else 0
        if val is not None:
            val_nll = gaussian_nll(z[n:], log_det[n:])[0]
            history["val_nll"].append(val_nll)
            values.append(("val_nll", val_nll))
            if val_nll < best_val:
                best_val, best_depth, wait_val = val_nll, i + 1, 0
            else:
                wait_val += 1
        else:
            best_depth = i + 1
        if bar is not None:
            bar.update(i + 1, values=values, finalize=False)
        if wait_tol >= patience or wait_val >= patience:
            break
    if bar is not None:
        bar.update(len(blocks), values=values, finalize=True)
    if val is not None and best_depth == 0:
        best_depth = 1  # never return an empty model
    if val is None and wait_tol >= patience:
        best_depth = max(1, best_depth - patience)  # drop the blocks that gained < tol
    return blocks, best_depth, history
