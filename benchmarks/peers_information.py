"""Peers of the mutual-information sweep (benchmarks/bench_information_families.py), each
called as f(x, y, seed) -> nats on the same rows as tfflows:

- KSG: Kraskov, Stoegbauer & Grassberger (2004) algorithm 1 with k = 3, multivariate, from
  the PyPI package `infomeasure` (its "ksg" mutual information; benchmark-only, not a
  dependency of tfflows); if it is not installed, the re-implementation from the paper in
  bench_information.py (labelled "KSG (ours)").
- CCA: the Gaussian mutual information of the canonical correlations of the raw features,
  -1/2 sum log(1 - rho_i^2) (what a linear-Gaussian model sees).
- InfoNCE: a separable critic g(x)^T h(y) (two 2 x 128 ReLU networks to 32 features, Keras)
  trained on 80% of the rows for 1,000 steps with the InfoNCE loss (van den Oord et al. 2018; Poole et al.
  2019) at batch 512; the bound is evaluated on the 20% held out in one batch, so it is
  capped at log(1,000) = 6.9 nats.
"""

import math

import numpy as np


def _standardize(z):
    return (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)


def cca_mi(x, y, seed=0):
    x, y = _standardize(x), _standardize(y)
    c = np.cov(np.concatenate([x, y], axis=1).T)
    dx = x.shape[1]
    return 0.5 * (np.linalg.slogdet(c[:dx, :dx])[1] + np.linalg.slogdet(c[dx:, dx:])[1] - np.linalg.slogdet(c)[1])


def ksg_peer():
    """(label, f) for the multivariate KSG peer."""
    try:
        import infomeasure
    except ImportError:
        from bench_information import ksg_mi

        return "KSG (ours, k=3)", lambda x, y, seed=0: float(ksg_mi(x, y, k=3))

    def ksg(x, y, seed=0):
        return float(infomeasure.mutual_information(_standardize(x), _standardize(y), approach="ksg", k=3))
    return f"KSG (infomeasure {infomeasure.__version__}, k=3)", ksg


def infonce_mi(x, y, seed=0, steps=1000, batch=512):
    import keras

    keras.utils.set_random_seed(seed)
    x, y = _standardize(x).astype("float32"), _standardize(y).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 5
    test, train = order[:n_test], order[n_test:]

    def net(d):
        return keras.Sequential([keras.Input((d,)), keras.layers.Dense(128, activation="relu"),
                                 keras.layers.Dense(128, activation="relu"), keras.layers.Dense(32)])

    g, h = net(x.shape[1]), net(y.shape[1])
    xin, yin = keras.Input((x.shape[1],)), keras.Input((y.shape[1],))
    scores = keras.ops.matmul(g(xin), keras.ops.transpose(h(yin)))
    model = keras.Model([xin, yin], scores)

    def loss(_, s):  # the positives are on the diagonal
        labels = keras.ops.arange(keras.ops.shape(s)[0])
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, s, from_logits=True))

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    rng = np.random.default_rng(seed)
    batches = [rng.choice(train, batch, replace=False) for _ in range(steps)]
    xs = np.concatenate([x[b] for b in batches])
    ys = np.concatenate([y[b] for b in batches])
    model.fit([xs, ys], np.zeros(len(xs)), batch_size=batch, epochs=1, shuffle=False, verbose=0)
    s = np.asarray(model.predict([x[test], y[test]], batch_size=n_test, verbose=0), dtype="float64")
    log_softmax = s - np.log(np.exp(s - s.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)) \
        - s.max(axis=1, keepdims=True)
    return float(np.mean(np.diag(log_softmax)) + math.log(n_test))


def peers():
    """{label: f(x, y, seed)} in the sweep's column order."""
    label, ksg = ksg_peer()
    return {label: ksg, "CCA (Gaussian MI)": cca_mi, "InfoNCE (Keras critic)": infonce_mi}
