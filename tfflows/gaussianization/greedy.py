"""The greedy fitting loop of iterative Gaussianization (no gradients): blocks are fitted
one at a time on the data transformed by the previous ones, with a stopping rule on the
training gain or the validation log-likelihood (used by `RBIG` and the start of
`GaussianizationFlow`; `tfflows.gaussianization.streamed` runs the same loop on data
streamed in batches)."""

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


class StoppingRule:
    """Stop when the training gain per block (the reduction of the total correlation, in
    nats) stays below `tol` for `patience` blocks, or, with validation data, when the
    validation NLL has not improved for `patience` blocks; keep the best depth."""

    def __init__(self, train_nll, max_blocks, tol, patience, validated, verbose):
        self.train_nll, self.tol, self.patience, self.validated = train_nll, tol, patience, validated
        self.history = {"train_nll": [], "val_nll": [], "tc_reduction": [], "seconds": []}
        self.best_depth, self.best_val, self.wait_val, self.wait_tol = 0, math.inf, 0, 0
        self.bar = keras.utils.Progbar(max_blocks, unit_name="block",
                                       stateful_metrics=["train_nll", "gain", "val_nll"]) if verbose else None
        self.start, self.values = time.perf_counter(), []

    def update(self, depth, train_nll, val_nll=None):
        """Record block `depth` (1-based); returns True when fitting should stop."""
        gain, self.train_nll = self.train_nll - train_nll, train_nll
        self.history["train_nll"].append(train_nll)
        self.history["tc_reduction"].append(gain)
        self.history["seconds"].append(time.perf_counter() - self.start)
        self.values = [("train_nll", train_nll), ("gain", gain)]
        self.wait_tol = self.wait_tol + 1 if gain < self.tol else 0
        if self.validated:
            self.history["val_nll"].append(val_nll)
            self.values.append(("val_nll", val_nll))
            if val_nll < self.best_val:
                self.best_val, self.best_depth, self.wait_val = val_nll, depth, 0
            else:
                self.wait_val += 1
        else:
            self.best_depth = depth
        if self.bar is not None:
            self.bar.update(depth, values=self.values, finalize=False)
        return self.wait_tol >= self.patience or self.wait_val >= self.patience

    def finish(self, fitted):
        """The depth to keep of `fitted` blocks."""
        if self.bar is not None:
            self.bar.update(fitted, values=self.values, finalize=True)
        if self.validated and self.best_depth == 0:
            return 1  # never return an empty model
        if not self.validated and self.wait_tol >= self.patience:
            return max(1, self.best_depth - self.patience)  # drop the blocks that gained < tol
        return self.best_depth


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
    rule = StoppingRule(gaussian_nll(rows[:n], log_det[:n])[0], max_blocks, tol, patience, val is not None, verbose)
    blocks = []
    for i in range(max_blocks):
        block = make_block(i)
        for layer in block:
            layer.build((None, x.shape[1]))
            layer.fit_from_data(h[:n])
            h, ld = layer.forward_and_log_det(h)
            log_det += _numpy(ld)
        blocks.append(block)
        z = _numpy(h)
        val_nll = None if val is None else gaussian_nll(z[n:], log_det[n:])[0]
        if rule.update(i + 1, gaussian_nll(z[:n], log_det[:n])[0], val_nll):
            break
    return blocks, rule.finish(len(blocks)), rule.history
