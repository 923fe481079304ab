"""Peers of the mutual-information sweep (benchmarks/bench_information_families.py), each
called as f(x, y, seed) -> nats on the same rows as tfflows:

- KSG: Kraskov, Stoegbauer & Grassberger (2004) algorithm 1 with k = 3, multivariate, from
  the PyPI package `infomeasure` (its "ksg" mutual information; benchmark-only, not a
  dependency of tfflows); if it is not installed, the re-implementation from the paper in
  bench_information.py (labelled "KSG (ours)").
- CCA: the Gaussian mutual information of the canonical correlations of the raw features,
  -1/2 sum log(1 - rho_i^2) (what a linear-Gaussian model sees).
- InfoNCE: a separable critic g(x)^T h(y) (two 2 x 128 ReLU networks to 32 features, Keras)
  trained on 60% of the rows with the InfoNCE loss (van den Oord et al. 2018; Poole et al.
  2019) at batch 256, stopped early on the bound over 20% of the rows (patience 5 epochs,
  at most 60); the bound is evaluated on the last 20% in one batch, so it is capped at
  log(1,000) = 6.9 nats.
"""

import math

import numpy as np


def _standardize(z):
    return (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)


def cca_mi(x, y, seed=0):
    x, y = _standardize(x), _standardize(y)
    c = np.cov(np.concatenate([x, y], axis=1).T)
    dx = x.shape[1]
    return 0.5 * (
        np.linalg.slogdet(c[:dx, :dx])[1]
        + np.linalg.slogdet(c[dx:, dx:])[1]
        - np.linalg.slogdet(c)[1]
    )


def ksg_peer():
    """(label, f) for the multivariate KSG peer."""
    try:
        import infomeasure
    except ImportError:
        from bench_information import ksg_mi

        return "KSG (ours, k=3)", lambda x, y, seed=0: float(ksg_mi(x, y, k=3))

    def ksg(x, y, seed=0):
        return float(
            infomeasure.mutual_information(_standardize(x), _standardize(y), approach="ksg", k=3)
        )

    return f"KSG (infomeasure {infomeasure.__version__}, k=3)", ksg


def _infonce_bound(model, x, y):
    """The InfoNCE bound of the critic on rows x, y in one batch: mean log softmax of the
    positives + log(rows)."""
    s = np.asarray(model.predict([x, y], batch_size=len(x), verbose=0), dtype="float64")
    top = s.max(axis=1, keepdims=True)
    log_softmax = s - top - np.log(np.exp(s - top).sum(axis=1, keepdims=True))
    return float(np.mean(np.diag(log_softmax)) + math.log(len(x)))


def infonce_mi(x, y, seed=0, max_epochs=60, patience=5, batch=256):
    import keras

    keras.utils.set_random_seed(seed)
    x, y = _standardize(x).astype("float32"), _standardize(y).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_hold = len(x) // 5
    test, val, train = order[:n_hold], order[n_hold : 2 * n_hold], order[2 * n_hold :]

    def net(d):
        return keras.Sequential(
            [
                keras.Input((d,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(32),
            ]
        )

    g, h = net(x.shape[1]), net(y.shape[1])
    xin, yin = keras.Input((x.shape[1],)), keras.Input((y.shape[1],))
    model = keras.Model([xin, yin], keras.ops.matmul(g(xin), keras.ops.transpose(h(yin))))

    def loss(_, s):  # the positives are on the diagonal
        labels = keras.ops.arange(keras.ops.shape(s)[0])
        return keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, s, from_logits=True)
        )

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    rng = np.random.default_rng(seed)
    best, best_weights, waited = -math.inf, None, 0
    for _ in range(max_epochs):  # early stopping on the held-out bound
        rows = rng.permutation(train)[: len(train) // batch * batch]
        model.fit(
            [x[rows], y[rows]],
            np.zeros(len(rows)),
            batch_size=batch,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        bound = _infonce_bound(model, x[val], y[val])
        if bound > best:
            best, best_weights, waited = bound, model.get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.set_weights(best_weights)
    return _infonce_bound(model, x[test], y[test])


def peers():
    """{label: f(x, y, seed)} in the sweep's column order."""
    label, ksg = ksg_peer()
    return {label: ksg, "CCA (Gaussian MI)": cca_mi, "InfoNCE (Keras critic)": infonce_mi}
