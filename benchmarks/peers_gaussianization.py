"""Gaussianization models of the density suite (issue 17), all as `protocol.Candidate`s.

- `TfflowsRBIG`: `tff.RBIG(d, **options).fit_greedy(train, validation_data=val, **greedy)`.
- `TfflowsGF`: `tff.GaussianizationFlow(d, **options)`: greedy start, then `fit` with
  Adam(learning_rate), Keras' default batch (32), at most `epochs` epochs and `max_seconds`
  of training, `keep_best`. Records the validation (and test) NLL of the start and after
  every epoch, so one run answers "what if it had stopped at epoch E", with or without
  keep-best (`schedule_nll`).
- `SinflowGIS`: the `sinflow` package's `Flow` (a SINF / GIS-style sliced iterative
  flow: whitening, then K max-sliced-Wasserstein directions with a KDE spline per
  direction, early stopping on its own validation split) at its defaults. It is given
  train + validation rows with `validation_fraction` = the validation share, so it sees
  the same rows as the others (its own random split of them).
- `IPLRBIG`: an independent, benchmark-only re-implementation of the documented
  behaviour of IPL-UV's `rbig` package (github.com/IPL-UV/rbig, `rbig.RBIG()` defaults;
  not its code, which needs astropy and picard): per layer, a histogram marginal
  uniformization of every feature (numpy's bins="auto" on [min - 0.3 range, max + 0.3
  range], pdf + alpha 1e-10, piecewise-linear CDF), the inverse normal CDF of the values
  clipped to [1e-10, 1 - 1e-10], then a PCA rotation (centred, not whitened); it stops
  when the information reduction (difference of histogram marginal entropies with the
  Miller-Madow correction, set to 0 under the package's sample-size tolerance) is zero
  for 60 consecutive layers (at most 1000), dropping those 60. "IPL-UV RBIG (val depth)"
  is the same fit cut at the depth with the best validation NLL.
"""

import math
import time

import numpy as np
from scipy import special

try:
    from benchmarks import protocol
except ImportError:  # run as a script from benchmarks/
    import protocol

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _gauss_nll_rows(z, log_det):
    return 0.5 * np.sum(z**2, axis=1) + z.shape[1] * _HALF_LOG_2PI - log_det


def _mean(x):
    return float(np.mean(x)) if np.all(np.isfinite(x)) else math.nan


# ----- tfflows ------------------------------------------------------------------------------
class TfflowsRBIG(protocol.Candidate):
    library = "tfflows"

    def __init__(self, name, options=None, greedy=None):
        self.name, self.options, self.greedy = name, dict(options or {}), dict(greedy or {})

    def fit(self, train, val, config):
        import keras

        import tfflows as tff

        keras.utils.set_random_seed(config.seed)
        self.model = tff.RBIG(train.shape[1], seed=config.seed, **self.options)
        start = time.perf_counter()
        self.model.fit_greedy(train, validation_data=val, verbose=0, **self.greedy)
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        log.greedy_blocks = self.model.num_blocks
        log.note = f"{self.model.num_blocks}/{len(self.model.greedy_history['train_nll'])} blocks"
        return log

    def log_prob(self, x):
        return np.asarray(self.model.log_prob(x), dtype="float64")

    def sample(self, n):
        return np.asarray(self.model.sample(n, seed=0))

    def count_params(self):
        return int(self.model.count_params())


class TfflowsGF(TfflowsRBIG):
    def __init__(self, name, options=None, learning_rate=1e-4, epochs=50, keep_best=True, max_seconds=60.0,
                 batch_size=None, test=None):
        super().__init__(name, options)
        self.learning_rate, self.epochs, self.keep_best = learning_rate, epochs, keep_best
        self.max_seconds, self.batch_size, self.test = max_seconds, batch_size, test

    def fit(self, train, val, config):
        import keras

        import tfflows as tff

        keras.utils.set_random_seed(config.seed)
        self.model = model = tff.GaussianizationFlow(train.shape[1], seed=config.seed, **self.options)
        start = time.perf_counter()
        model.initialize_greedy(train, validation_data=val)
        self.greedy_s = time.perf_counter() - start
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        test = self.test

        def nll(x):
            return _mean(-np.asarray(model.log_prob(x), dtype="float64"))

        self.curve = {"val": [nll(val)], "test": [nll(test) if test is not None else math.nan]}
        curve, budget = self.curve, self.max_seconds

        class Record(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                curve["val"].append(nll(val))
                curve["test"].append(nll(test) if test is not None else math.nan)
                if time.perf_counter() - self.t0 > budget:
                    self.model.stop_training = True

        model.fit(train, validation_data=val, epochs=self.epochs, batch_size=self.batch_size,
                  keep_best=self.keep_best, callbacks=[Record()], verbose=0)
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        log.greedy_blocks = model.num_blocks
        log.note = f"{model.num_blocks} blocks, {len(curve['val']) - 1} epochs"
        return log


def schedule_nll(curve, epochs, keep_best):
    """(val, test) NLL had training stopped after `epochs` epochs (curve from TfflowsGF)."""
    val, test = curve["val"][:epochs + 1], curve["test"][:epochs + 1]
    if not keep_best:
        return val[-1], test[-1]
    finite = [v if math.isfinite(v) else math.inf for v in val]
    i = int(np.argmin(finite))
    return val[i], test[i]


# ----- sinflow (SINF / GIS style) ----------------------------------------------------------------
class SinflowGIS(protocol.Candidate):
    library = "sinflow"
    name = "sinflow GIS"

    def __init__(self, name="sinflow GIS", **options):
        self.name, self.options = name, options

    def fit(self, train, val, config):
        import sinflow

        np.random.seed(config.seed)  # sinflow shuffles with numpy's global generator
        rows = np.concatenate([train, val]).astype("float64")
        self.flow = sinflow.Flow(validation_fraction=len(val) / len(rows), random_state=config.seed, **self.options)
        start = time.perf_counter()
        self.flow.fit(rows)
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        log.greedy_blocks = len(self.flow.transforms)
        log.note = f"{len(self.flow.transforms)} transforms"
        return log

    def log_prob(self, x):
        return self.flow.log_prob(np.asarray(x, dtype="float64"))

    def sample(self, n):
        np.random.seed(0)
        return self.flow.sample(n)


# ----- IPL-UV RBIG behaviour (independent re-implementation) ------------------------------------------
def _hist_entropy(v, bins="auto"):
    counts, edges = np.histogram(v, bins=bins, range=(v.min(), v.max()))
    n, width = counts.sum(), np.diff(edges)
    p = counts[counts > 0] / n
    h = -np.sum(p * np.log(p / width[counts > 0]))
    return h + 0.5 * (np.sum(counts > 0) - 1) / n  # Miller-Madow correction


def _information_reduction(before, after):
    n, d = before.shape
    tol = np.interp(n, np.logspace(2, 8, 7), [0.1571, 0.0468, 0.0145, 0.0046, 0.0014, 0.0001, 0.00001])
    hx = np.array([_hist_entropy(c) for c in before.T])
    hy = np.array([_hist_entropy(c) for c in after.T])
    info = np.sum(hy) - np.sum(hx)
    if np.sqrt(np.sum((hy - hx) ** 2)) < np.sqrt(d * 0.25 * tol**2) or info < 0:
        return 0.0
    return float(info)


class _HistLayer:
    """Marginal histogram uniformization + inverse normal CDF + PCA rotation."""

    def __init__(self, x, bound_ext=0.3, alpha=1e-10, eps=1e-10):
        self.eps, self.hists = eps, []
        for c in x.T:
            span = c.max() - c.min()
            counts, edges = np.histogram(c, bins="auto", range=(c.min() - bound_ext * span, c.max() + bound_ext * span))
            pdf = counts / (counts.sum() * np.diff(edges))
            cdf = np.concatenate([[0.0], np.cumsum(pdf * np.diff(edges))])
            self.hists.append((edges, pdf + alpha, cdf))
        z, _ = self._marginal(x)
        self.mean = z.mean(axis=0)
        _, _, vt = np.linalg.svd(z - self.mean, full_matrices=False)
        self.components = vt

    def _marginal(self, x):
        z, log_det = np.empty_like(x), np.zeros(len(x))
        for j, (edges, pdf, cdf) in enumerate(self.hists):
            u = np.clip(np.interp(x[:, j], edges, cdf), self.eps, 1 - self.eps)
            z[:, j] = special.ndtri(u)
            idx = np.searchsorted(edges, x[:, j], side="right") - 1
            inside = (idx >= 0) & (idx < len(pdf))
            dens = np.where(inside, pdf[np.clip(idx, 0, len(pdf) - 1)], 1e-10)  # outside the support: alpha
            log_det += np.log(dens) + 0.5 * z[:, j] ** 2 + _HALF_LOG_2PI
        return z, log_det

    def forward(self, x):
        z, log_det = self._marginal(x)
        return (z - self.mean) @ self.components.T, log_det


class IPLRBIG(protocol.Candidate):
    library = "IPL-UV rbig (re-implemented)"

    def __init__(self, name="IPL-UV RBIG", val_depth=False, zero_tolerance=60, max_layers=1000):
        self.name, self.val_depth = name, val_depth
        self.zero_tolerance, self.max_layers = zero_tolerance, max_layers

    def fit(self, train, val, config):
        start = time.perf_counter()
        z, zv = np.asarray(train, "float64"), np.asarray(val, "float64")
        ld_v = np.zeros(len(zv))
        layers, info, val_nll = [], [], []
        for i in range(self.max_layers):
            layer = _HistLayer(z)
            new_z, _ = layer.forward(z)
            info.append(_information_reduction(z, new_z))
            zv, ld = layer.forward(zv)
            ld_v += ld
            val_nll.append(_mean(_gauss_nll_rows(zv, ld_v)))
            layers.append(layer)
            z = new_z
            if i > self.zero_tolerance and np.sum(np.abs(info[-self.zero_tolerance:])) == 0:
                layers = layers[:-self.zero_tolerance]
                val_nll = val_nll[:-self.zero_tolerance]
                break
        if self.val_depth:
            finite = [v if math.isfinite(v) else math.inf for v in val_nll]
            layers = layers[:int(np.argmin(finite)) + 1]
        self.layers = layers
        log = protocol.TrainLog()
        log.wall_s = time.perf_counter() - start
        log.greedy_blocks = len(layers)
        log.note = f"{len(layers)} layers"
        return log

    def log_prob(self, x):
        z, log_det = np.asarray(x, "float64"), np.zeros(len(x))
        for layer in self.layers:
            z, ld = layer.forward(z)
            log_det += ld
        return -_gauss_nll_rows(z, log_det)

    def sample(self, n):
        raise NotImplementedError("benchmark-only re-implementation: density only")
