"""The greedy fitting loop of iterative Gaussianization (no gradients): blocks are fitted
one at a time on the data transformed by the previous ones, with a stopping rule on the
training gain or the validation log-likelihood (used by `RBIG` and the start of
`GaussianizationFlow`; `tfflows.gaussianization.streamed` runs the same loop on data
streamed in batches)."""

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Stopping:
    """The greedy fits' stopping rule, built once from `fit_greedy`'s arguments: at most
    `max_blocks` blocks; stop when the training gain per block (the reduction of the
    total correlation, in nats) stays below `tol` for `patience` blocks, or, with
    validation data, when the validation NLL has not improved for `patience` blocks;
    keep the best depth. `verbose`: a progress bar."""

    max_blocks: int = 100
    tol: float = 1e-3
    patience: int = 5
    verbose: bool = False

    def __post_init__(self):
        for name in ("max_blocks", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not math.isfinite(float(self.tol)):
            raise ValueError(f"tol must be a finite number; got {self.tol!r}.")

    def start(self, train_nll, validated):
        """The rule's state for one fit, from the NLL of the data before any block."""
        return StoppingRule(self, train_nll, validated)


class StoppingRule:
    """The state of one greedy fit under a `Stopping` rule: the per-block history, the
    best depth so far and the progress bar.

    Args:
        stopping: the `Stopping` rule.
        train_nll: the training NLL before the first block.
        validated: whether the fit has validation data.
    """

    def __init__(self, stopping, train_nll, validated):
        self.train_nll, self.validated = train_nll, validated
        self.tol, self.patience = stopping.tol, stopping.patience
        self.history = {"train_nll": [], "val_nll": [], "tc_reduction": [], "seconds": []}
        self.best_depth, self.best_val, self.wait_val, self.wait_tol = 0, math.inf, 0, 0
        self.bar = None
        if stopping.verbose:
            self.bar = keras.utils.Progbar(
                stopping.max_blocks,
                unit_name="block",
                stateful_metrics=["train_nll", "gain", "val_nll"],
            )
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


# Blocks that each candidate first block's fit runs before the candidates are compared.
LOOKAHEAD_BLOCKS = 10


class _GreedyRun:
    """One greedy fit in progress: the training (and validation) rows transformed by the
    blocks so far, their log-determinants, the blocks and their (train, val) NLLs.

    The rows stay NumPy arrays (of `dtype`) between blocks: each block turns them into a
    tensor once, each layer is fitted on the NumPy rows and applied to the tensor, and its
    output comes back to NumPy once (the next layer's fit and the NLL read it there)."""

    def __init__(self, make_block, x, val, dtype):
        self.make_block, self.n, self.features = make_block, len(x), x.shape[1]
        # Training and validation rows travel together through each new block; the layers
        # are fitted on the training rows only.
        rows = x if val is None else np.concatenate([x, val], axis=0)
        self.h = np.asarray(rows, dtype=dtype)
        self.log_det = np.zeros(len(rows))
        self.validated = val is not None
        self.blocks, self.records = [], []

    def nll(self):
        """(training NLL, validation NLL or None) of the rows as they are now."""
        n, h, log_det = self.n, self.h, self.log_det
        val = gaussian_nll(h[n:], log_det[n:])[0] if self.validated else None
        return gaussian_nll(h[:n], log_det[:n])[0], val

    def add_block(self):
        """Fit the next block on the rows, apply it; returns its (train, val) NLLs."""
        block = self.make_block(len(self.blocks))
        tensor = ops.convert_to_tensor(self.h)
        for layer in block:
            layer.build((None, self.features))
            layer.fit_from_data(self.h[: self.n])
            tensor, ld = layer.forward_and_log_det(tensor)
            self.h = _numpy(tensor)
            self.log_det += _numpy(ld)
        self.blocks.append(block)
        self.records.append(self.nll())
        return self.records[-1]


def _lookahead(runs, horizon):
    """Advance every run `horizon` blocks; returns the index of the run with the lowest
    validation NLL then (training NLL without validation rows) and those NLLs."""
    for run in runs:
        for _ in range(horizon):
            run.add_block()
    scores = [run.records[-1][1 if run.validated else 0] for run in runs]
    return int(np.argmin(scores)), scores


def greedy_blocks(makers, x, val, stopping, dtype):
    """Fit blocks (lists of layers with `fit_from_data`) one at a time on the data
    transformed by the previous ones, under `stopping` (a `Stopping`). Returns (layers
    of every fitted block, the depth to keep, the per-block history).

    `makers`: one or more block makers (i -> block i) that differ in their first blocks.
    With several, each runs `LOOKAHEAD_BLOCKS` blocks and the one with the lowest NLL
    after them (on the validation rows when given) goes on; the history's `lookahead_nll`
    holds each maker's NLL after them (empty with one maker)."""
    runs = [_GreedyRun(maker, x, val, dtype) for maker in makers]
    scores = []
    if len(runs) > 1:
        chosen, scores = _lookahead(runs, min(LOOKAHEAD_BLOCKS, stopping.max_blocks))
        runs = [runs[chosen]]  # the others' rows are freed
    run = runs[0]
    rule = stopping.start(_start_nll(x, dtype), val is not None)
    stop, depth = False, 0
    for depth, (train_nll, val_nll) in enumerate(run.records, start=1):
        stop = rule.update(depth, train_nll, val_nll)
        if stop:
            break
    while not stop and len(run.blocks) < stopping.max_blocks:
        depth = len(run.blocks) + 1
        stop = rule.update(depth, *run.add_block())
    rule.history["lookahead_nll"] = scores
    return run.blocks, rule.finish(depth), rule.history


def _start_nll(x, dtype):
    """The training NLL of the rows before any block."""
    return gaussian_nll(np.asarray(x, dtype=dtype), np.zeros(len(x)))[0]
