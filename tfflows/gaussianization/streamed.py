"""The greedy Gaussianization fit on data streamed in batches, in memory that does not grow
with the number of rows (`RBIG.fit_greedy` and `GaussianizationFlow.initialize_greedy` on
a `tfflows.data.source.Source`: a `tf.data.Dataset`, a function returning an iterator of
batches, or any re-iterable).

Block k costs two passes over its input, which the previous block wrote to a spill file on
disk (one float32 copy of the data; the source itself is read once, for moments, and for
the first block), so every block is applied once per row:
1. a `HistogramSketch` of the block's input (its location and scale are known from the
   previous pass), from which the marginal splines are fitted exactly as in memory but
   with quantiles and kernel sums read off the histogram (error bounds in `sketches`);
2. the `MomentSketch` of the marginal outputs (exact second moments: the PCA rotation is
   the in-memory one) or a `Reservoir` sample (max-sliced-Wasserstein, ICA: fitted on at
   most 5,000 rows in memory too), the training NLL after the block, and the spill file.
Validation NLL is summed over the validation batches. The stopping rule is the in-memory
one (`greedy.StoppingRule`). `reduce`, when given, merges the sketches' sums across
workers (see `tfflows.interop.tf_training.all_reduce`), so every worker fits the same
blocks from all workers' rows.
"""

import os
import tempfile

import numpy as np
from keras import ops

from tfflows.gaussianization.greedy import gaussian_nll
from tfflows.gaussianization.sketches import HistogramSketch, MomentSketch, Reservoir


def _identity_reduce(arrays, how):
    return arrays


class _Stage:
    """The data as block k sees it: batches of a source (or of a spill file written by the
    previous block) with the layers still to apply on the fly, and their log-dets."""

    def __init__(self, batches, layers, dtype):
        self.batches, self.layers, self.dtype = batches, list(layers), dtype

    def __iter__(self):
        for batch, log_det in self.batches:
            h = ops.convert_to_tensor(batch, self.dtype)
            log_det = np.array(log_det, dtype="float64")
            for layer in self.layers:
                h, ld = layer.forward_and_log_det(h)
                log_det += np.asarray(ops.convert_to_numpy(ld), dtype="float64")
            yield np.asarray(ops.convert_to_numpy(h), dtype="float64"), log_det


class _Spill:
    """Rows and their log-dets appended to a file on disk and read back in batches: each
    block is applied once per row (the next block reads its output) instead of every
    previous block at every pass. Takes one float32 copy of the data on disk."""

    def __init__(self, folder, name, features):
        self.path, self.features, self.sizes = os.path.join(folder, name), features, []
        self.handle = open(self.path, "wb")

    def write(self, rows, log_det):
        record = np.concatenate(
            [rows.astype("float32"), log_det.astype("float32")[:, None]], axis=1
        )
        self.handle.write(record.tobytes())
        self.sizes.append(len(rows))

    def close(self):
        self.handle.close()
        return self

    def __iter__(self):
        width = self.features + 1
        with open(self.path, "rb") as handle:
            for size in self.sizes:
                record = np.frombuffer(handle.read(size * width * 4), dtype="float32").reshape(
                    size, width
                )
                yield record[:, :-1].astype("float64"), record[:, -1].astype("float64")

    def remove(self):
        os.remove(self.path)


def _with_zero_log_det(source):
    class Batches:
        def __iter__(self):
            for batch in source:
                yield batch, np.zeros(len(batch))

    return Batches()


def _mean_nll(stage, reduce):
    total = np.zeros(2)
    for z, log_det in stage:
        total += [gaussian_nll(z, log_det)[1].sum(), len(z)]
    total = reduce({"nll": total}, {"nll": "sum"})["nll"]
    return float(total[0] / total[1])


def streamed_greedy_blocks(
    make_block, source, val_source, stopping, dtype, reduce=None, bins=16384, spill_dir=None
):
    """`greedy.greedy_blocks` on `tfflows.data.source.Source`s, under `stopping` (a
    `greedy.Stopping`): (fitted blocks, depth to keep, history)."""
    with tempfile.TemporaryDirectory(dir=spill_dir, prefix="tfflows-greedy-") as folder:
        return _fit(
            make_block,
            source,
            val_source,
            stopping,
            dtype,
            reduce or _identity_reduce,
            bins,
            folder,
        )


def _fit(make_block, source, val_source, stopping, dtype, reduce, bins, folder):
    d = source.features
    moments = MomentSketch(d)
    for batch in source:
        moments.add(batch)
    moments.set_state(reduce(moments.state(), dict.fromkeys(moments.state(), "sum")))
    center, scale = moments.mean, np.sqrt(np.maximum(np.diag(moments.covariance), 0.0))
    second = np.trace(moments.outer) / moments.count
    rule = stopping.start(0.5 * second + d * 0.5 * np.log(2 * np.pi), val_source is not None)
    stage = _Stage(_with_zero_log_det(source), [], dtype)
    val_stage = None if val_source is None else _Stage(_with_zero_log_det(val_source), [], dtype)
    blocks, old = [], {}
    for i in range(stopping.max_blocks):
        marginal, rotation = make_block(i)
        for layer in (marginal, rotation):
            layer.build((None, d))
        sketch = HistogramSketch(center, scale, bins=bins)
        for h, _ in stage:
            sketch.add(h)
        how = {"counts": "sum", "moments": "sum", "low": "min", "high": "max"}
        sketch.set_state(reduce(sketch.state(), how))
        marginal.fit_from_summary(sketch)
        spill = _Spill(folder, f"block{i}.bin", d)
        marginal_outputs = _Stage(stage, [marginal], dtype)
        outputs, train_nll = _fit_rotation(rotation, marginal_outputs, spill, reduce)
        matrix = np.asarray(ops.convert_to_numpy(rotation.matrix("float64")))
        center = outputs.mean @ matrix
        spread = np.einsum("ij,jk,ki->i", matrix.T, outputs.covariance, matrix)
        scale = np.sqrt(np.maximum(spread, 0.0))
        _replace(old, "train", spill.close())
        stage = _Stage(spill, [rotation], dtype)
        blocks.append([marginal, rotation])
        val_nll = None
        if val_stage is not None:
            val_spill = _Spill(folder, f"val{i}.bin", d)
            for z, log_det in _Stage(val_stage, [marginal, rotation], dtype):
                val_spill.write(z, log_det)
            _replace(old, "val", val_spill.close())
            val_stage = _Stage(val_spill, [], dtype)
            val_nll = _mean_nll(val_stage, reduce)
        if rule.update(i + 1, train_nll, val_nll):
            break
    return blocks, rule.finish(len(blocks)), rule.history


def _replace(old, name, spill):
    """Keep `spill` as the latest spill file of `name`; remove the one it replaces."""
    if name in old:
        old[name].remove()
    old[name] = spill


def _fit_rotation(rotation, stage, spill, reduce):
    """One pass over the marginal outputs `stage`: their moments (and a reservoir sample),
    the training NLL, the spill file; then `rotation` fitted. Returns (the outputs'
    `MomentSketch`, the mean training NLL after the marginal)."""
    d = spill.features
    outputs, reservoir, nll = MomentSketch(d), Reservoir(d, seed=rotation.seed % 2**31), np.zeros(2)
    for z, log_det in stage:
        outputs.add(z)
        if rotation.kind != "pca":
            reservoir.add(z)
        nll += [gaussian_nll(z, log_det)[1].sum(), len(z)]
        spill.write(z, log_det)
    how = dict.fromkeys(["count", "total", "outer", "nll"], "sum")
    state = reduce({**outputs.state(), "nll": nll}, how)
    outputs.set_state(state)
    if rotation.kind == "pca":
        rotation.fit_from_moments(outputs.covariance)
    else:  # the same rows on every worker: the first worker's reservoir (reduce "first")
        padded = np.zeros((reservoir.size, d))
        padded[: len(reservoir.rows)] = reservoir.rows
        shared = reduce(
            {"rows": padded, "count": np.array([len(reservoir.rows)], "float64")},
            {"rows": "first", "count": "first"},
        )
        rotation.fit_from_data(shared["rows"][: int(shared["count"][0])])
    return outputs, float(state["nll"][0] / state["nll"][1])
