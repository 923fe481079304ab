"""Orthogonal layers (log-det 0): `Householder` (trainable reflections) and `Rotation`
(a fixed rotation fitted from data: PCA, seeded random, orthogonalized ICA, or
max-sliced-Wasserstein directions).

Both store their matrix as Householder vectors v_1..v_k, M = H(v_1) H(v_2) ... H(v_k) with
H(v) = I - 2 v v^T / (v^T v) (H(0) = I). Every value of the vectors is an exactly
orthogonal matrix, so the layers are invertible for any weights, and any orthogonal
d x d matrix is such a product with k = d (`householder_vectors`).
"""

import warnings

import keras
import numpy as np
from keras import ops
from scipy import special

from tfflows._math import draw_seed
from tfflows.bijectors.base import Bijector, FittedOnce


def householder_vectors(matrix):
    """Vectors v_1..v_d (rows of a (d, d) array) with matrix = H(v_1) ... H(v_d).

    Householder QR that maps each column to +e_j (Golub & Van Loan, alg. 5.1.1, with the
    cancellation-free first component), so the triangular factor is the identity.
    """
    a = np.array(matrix, dtype="float64")
    d = a.shape[0]
    vectors = np.zeros((d, d))
    for j in range(d):
        x = a[j:, j]
        norm = np.linalg.norm(x)
        rest = norm**2 - x[0] ** 2
        v = x.copy()
        v[0] = -rest / (x[0] + norm) if x[0] > 0 else x[0] - norm
        vv = v @ v
        if vv > 1e-300:
            a[j:, :] -= np.outer(v, (2.0 / vv) * (v @ a[j:, :]))
        vectors[j, j:] = v
    return vectors


def signed_householder_vectors(matrix):
    """Vectors v_1..v_d and signs r with matrix = H(v_1) ... H(v_d) diag(r), each v_j
    reflecting column j to -sign(x_0) |x| e_j (the numerically stable choice), so
    |v_j|^2 >= 2 for an orthogonal matrix: every reflection is well away from the
    ill-conditioned v = 0 (identity) that `householder_vectors` can return, and a small
    step of a trained vector is a small change of the matrix."""
    a = np.array(matrix, dtype="float64")
    d = a.shape[0]
    vectors, signs = np.zeros((d, d)), np.ones(d)
    for j in range(d):
        x = a[j:, j]
        sign = 1.0 if x[0] >= 0 else -1.0
        v = x.copy()
        v[0] += sign * np.linalg.norm(x)
        a[j:, :] -= np.outer(v, (2.0 / (v @ v)) * (v @ a[j:, :]))
        vectors[j, j:] = v
        signs[j] = -sign
    return vectors, signs


def _reflection_product(vectors, dtype):
    """H(v_1) ... H(v_k) for vectors (k, d), by a balanced tree of batched matmuls."""
    v = ops.cast(vectors, dtype)
    k, d = int(v.shape[0]), int(v.shape[1])
    norms = ops.sum(ops.square(v), axis=-1)
    scale = ops.where(norms > 0, 2.0 / ops.maximum(norms, 1e-30), 0.0)
    eye = ops.eye(d, dtype=dtype)
    mats = eye[None] - scale[:, None, None] * (v[:, :, None] * v[:, None, :])
    size = 1
    while size < k:
        size *= 2
    if size > k:
        mats = ops.concatenate([mats, ops.broadcast_to(eye[None], (size - k, d, d))], axis=0)
    while size > 1:
        mats = ops.reshape(mats, (size // 2, 2, d, d))
        mats = ops.matmul(mats[:, 0], mats[:, 1])
        size //= 2
    return mats[0]


def random_orthogonal(d, seed):
    """A Haar-distributed random orthogonal (d, d) matrix from a seed."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def pca_rotation(x):
    """Columns = principal axes of x, by decreasing variance (y = x @ M decorrelates x)."""
    x = np.asarray(x, dtype="float64")
    x = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(x.T @ x / len(x))
    return vectors[:, np.argsort(values)[::-1]]


def ica_rotation(x, seed=0, max_iter=200, tol=1e-3):
    """The orthogonal matrix nearest (polar factor) to FastICA's unmixing of x, transposed
    so that y = x @ M gives the (orthogonalized) independent components."""
    from sklearn.decomposition import FastICA

    x = np.asarray(x, dtype="float64")
    ica = FastICA(
        n_components=x.shape[1],
        whiten="unit-variance",
        random_state=seed,
        max_iter=max_iter,
        tol=tol,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica.fit(x)
    u, _, vt = np.linalg.svd(ica.components_)
    return (u @ vt).T


def _complete(a, x):
    """A (d, d) orthogonal matrix whose first K columns are the orthonormal a (d, K); the
    other columns are the principal axes of x projected on the orthogonal complement."""
    d, k = a.shape
    q = np.linalg.qr(np.concatenate([a, np.eye(d)], axis=1))[0][:, k:d]  # basis of the complement
    if d > k:
        q = q @ pca_rotation(x @ q)
    return np.concatenate([a, q], axis=1)


def _tangent(a, g):
    """The projection of g on the tangent space of the Stiefel manifold at a: g - a sym(a^T g)."""
    sym = a.T @ g
    return g - a @ (0.5 * (sym + sym.T))


def max_sliced_wasserstein_rotation(
    x,
    num_directions=None,
    seed=0,
    max_iter=40,
    step=0.3,
    momentum=0.9,
    max_rows=5000,
    num_starts=4,
    score_rows=1000,
):
    """Orthogonal (d, d) M whose first K columns (`num_directions`, default min(d, 8)) are
    orthonormal directions maximizing the summed squared 2-Wasserstein distance between
    the projected data and N(0, 1) (the max-sliced-Wasserstein directions of Dai & Seljak
    2021, arXiv:2007.00674, SINF), the remaining columns completing it (principal axes of
    the rest). y = x @ M. Fitted in numpy, no gradients through Keras.

    W_2^2(x a, N(0, 1)) = mean_i ((x a)_(i) - q_i)^2 with the sorted projections (x a)_(i)
    and the normal quantiles q_i = Phi^-1((i + 1/2) / n). Riemannian ascent on the Stiefel
    manifold with heavy-ball momentum: direction m = `momentum` P_A(m) + sqrt(K) G / |G|
    (G the Riemannian gradient G - A sym(A^T G), P_A the tangent projection), candidate
    A' = qf(A + step m) (QR retraction). A candidate that increases the objective is kept
    (and the step grows by 10%); otherwise the step halves and the momentum restarts. At
    most `max_iter` objective evaluations: with momentum, 40 reach about the objective that
    200 plain normalized steps reached (BENCHMARKS.md, "Fit time"). Start: the K
    highest-scoring of the principal axes and `num_starts` seeded random orthonormal
    bases (scored on `score_rows` of the rows), orthonormalized. At most `max_rows` rows
    (a seeded subsample) are used.
    """
    x = np.asarray(x, dtype="float64")
    n, d = x.shape
    k = min(d, 8) if num_directions is None else max(1, min(int(num_directions), d))
    rng = np.random.default_rng(seed)
    if n > max_rows:
        x = x[rng.choice(n, max_rows, replace=False)]
    a = _best_starts(x, k, seed, rng, num_starts, score_rows)
    a = _stiefel_ascent(a, _wasserstein_objective(x), max_iter, step, momentum)
    return _complete(a, x)


def _best_starts(x, k, seed, rng, num_starts, score_rows):
    """Orthonormal (d, K) start: the K highest-scoring of the principal axes and
    `num_starts` seeded random orthonormal bases (the objective has flat, noisy regions
    near Gaussian directions, where ascent stalls), scored on `score_rows` rows."""
    n, d = x.shape
    candidates = np.concatenate(
        [pca_rotation(x)] + [random_orthogonal(d, [seed, i]) for i in range(num_starts)], axis=1
    )
    scored = x[rng.choice(n, score_rows, replace=False)] if n > score_rows else x
    scored_quantiles = special.ndtri((np.arange(len(scored)) + 0.5) / len(scored))[:, None]
    scores = np.mean((np.sort(scored @ candidates, axis=0) - scored_quantiles) ** 2, axis=0)
    q, r = np.linalg.qr(candidates[:, np.argsort(scores)[::-1][:k]])
    return q * np.sign(np.diag(r))


def _wasserstein_objective(x):
    """a -> (sum over the K columns of W_2^2(x a_j, N(0, 1)), its gradient in a). The
    projections, their ranks and the gradient in float32 (the precision of the layer's
    data; ~1.5x faster than float64), the objective's sum in float64."""
    n = len(x)
    levels = special.ndtri((np.arange(n) + 0.5) / n).astype("float32")
    # (d, n): projections come out row-major
    rows_by_feature = np.ascontiguousarray(x.T, dtype="float32")

    def objective_and_gradient(a):
        proj = a.T.astype("float32") @ rows_by_feature  # (k, n)
        matched = np.empty_like(proj)  # the normal quantile matched to each projection by rank
        np.put_along_axis(matched, np.argsort(proj, axis=1), levels[None, :], axis=1)
        residual = proj - matched
        value = np.sum(np.mean(np.square(residual, dtype="float64"), axis=1))
        return value, (2.0 / n) * (rows_by_feature @ residual.T).astype("float64")

    return objective_and_gradient


def _stiefel_ascent(a, objective_and_gradient, max_iter, step, momentum):
    """Riemannian ascent with heavy-ball momentum from the orthonormal a (d, K); see
    `max_sliced_wasserstein_rotation`."""
    k = a.shape[1]
    value, grad = objective_and_gradient(a)
    velocity = np.zeros_like(a)
    for _ in range(max_iter - 1):
        riemannian = _tangent(a, grad)
        norm = np.linalg.norm(riemannian)
        if norm < 1e-12:
            break
        direction = momentum * _tangent(a, velocity) + riemannian * (np.sqrt(k) / norm)
        q, r = np.linalg.qr(a + step * direction)
        candidate = q * np.sign(np.diag(r))
        new_value, new_grad = objective_and_gradient(candidate)
        if new_value < value:  # overshoot: shrink the step, restart the momentum, keep the point
            step *= 0.5
            velocity[:] = 0.0
            if step < 1e-5:
                break
            continue
        a, value, grad, velocity = candidate, new_value, new_grad, direction
        step *= 1.1
    return a


@keras.saving.register_keras_serializable(package="tfflows")
class Householder(Bijector):
    """Product of k Householder reflections (Tomczak & Welling 2016, arXiv:1611.09630).

    M = H(v_1) ... H(v_k),  H(v) = I - 2 v v^T / |v|^2
    forward:  y = x M,   inverse:  x = y M^T,   log_det = 0
    Trainable; the vectors start random (seeded). With `num_reflections=None`, k = d.

    Args:
        num_reflections: k (None: d).
        seed: of the random initial vectors (None: drawn from Keras's seed generator).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, num_reflections=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_reflections = None if num_reflections is None else int(num_reflections)
        self.seed = draw_seed() if seed is None else int(seed)

    def _initial_vectors(self, k, d):
        return np.random.default_rng(self.seed).normal(size=(k, d))

    def build(self, input_shape):
        d = int(input_shape[-1])
        k = d if self.num_reflections is None else self.num_reflections
        self.vectors = self.add_weight(
            shape=(k, d),
            initializer=keras.initializers.Constant(self._initial_vectors(k, d)),
            trainable=self._trainable_vectors,
            name="vectors",
        )
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized"
        )

    _trainable_vectors = True

    def matrix(self, dtype=None):
        """The orthogonal matrix M with y = x @ M."""
        return _reflection_product(self.vectors, dtype or self.compute_dtype)

    def set_identity(self):
        """M = I (every vector zero)."""
        self.vectors.assign(np.zeros(tuple(self.vectors.shape), self.vectors.dtype))

    def set_matrix(self, matrix):
        """Store an orthogonal (d, d) matrix (needs k = d reflections)."""
        vectors = householder_vectors(matrix)
        if tuple(self.vectors.shape) != vectors.shape:
            raise ValueError(
                f"{type(self).__name__} holds {self.vectors.shape[0]} reflections; an arbitrary "
                f"{vectors.shape[0]}-D rotation needs num_reflections=None (= d)."
            )
        self.vectors.assign(vectors.astype(self.vectors.dtype))

    def _forward_and_log_det(self, x, context=None, training=False):
        return ops.matmul(x, self.matrix(x.dtype)), self._zeros_log_det(x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return ops.matmul(y, ops.transpose(self.matrix(y.dtype))), self._zeros_log_det(y)

    def get_config(self):
        return {**super().get_config(), "num_reflections": self.num_reflections, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfflows")
class Rotation(FittedOnce, Householder):
    """A fixed orthogonal map fitted from data (Laparra, Camps-Valls & Malo 2011, RBIG).

    forward:  y = x M,   inverse:  x = y M^T,   log_det = 0, M orthogonal, not trained.
    kind="pca": M = principal axes of the data (by decreasing variance);
    kind="random": a Haar random rotation drawn from `seed` when built (data not used);
    kind="ica": the orthogonal polar factor of scikit-learn's FastICA unmixing matrix
        (maximally non-Gaussian directions, up to the orthogonalization);
    kind="max_sliced_wasserstein": `num_directions` (default min(d, 8)) orthonormal directions
        maximizing the Wasserstein distance of the projected data to N(0, 1) (Dai & Seljak
        2021, SINF; `max_sliced_wasserstein_rotation`), completed by principal axes.
    Stored as d Householder vectors (non-trainable weights), so `model.save` keeps it and
    every weight value is still an exact rotation. `fit_from_data(x)` fits (always);
    `initialize_from_data(x)` fits once.

    Args:
        kind: "pca", "random", "ica" or "max_sliced_wasserstein" (above).
        seed: of the random, ICA and max-sliced-Wasserstein fits.
        ica_max_iter: FastICA's iteration limit.
        num_directions: max-sliced-Wasserstein directions K (None: min(d, 8)).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    _trainable_vectors = False

    KINDS = ("pca", "random", "ica", "max_sliced_wasserstein")

    def __init__(self, kind="pca", seed=None, ica_max_iter=200, num_directions=None, **kwargs):
        kwargs.pop("num_reflections", None)
        super().__init__(num_reflections=None, seed=seed, **kwargs)
        if kind not in self.KINDS:
            raise ValueError(
                f"kind must be one of {', '.join(map(repr, self.KINDS))}; got {kind!r}."
            )
        self.kind = kind
        self.ica_max_iter = int(ica_max_iter)
        self.num_directions = None if num_directions is None else int(num_directions)

    def _initial_vectors(self, k, d):
        if self.kind == "random":
            return householder_vectors(random_orthogonal(d, self.seed))
        return np.zeros((k, d))  # identity until fitted

    def fit_from_moments(self, covariance):
        """kind="pca" from the covariance of the data alone (a streamed fit's exact second
        moments); returns self."""
        if self.kind != "pca":
            raise ValueError(f"Only kind='pca' fits from moments; kind={self.kind!r} needs rows.")
        covariance = np.asarray(covariance, dtype="float64")
        if not self.built:
            self.build((None, len(covariance)))
        values, vectors = np.linalg.eigh(covariance)
        self.set_matrix(vectors[:, np.argsort(values)[::-1]])
        self.initialized.assign(1.0)
        return self

    def fit_from_data(self, x):
        """Fit the rotation to the rows of x (N, d); returns self."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float64").reshape(-1, int(np.shape(x)[-1]))
        self._ensure_built(x)  # by its shape alone
        if self.kind == "pca":
            self.set_matrix(pca_rotation(x))
        elif self.kind == "ica":
            self.set_matrix(ica_rotation(x, seed=self.seed % (2**31), max_iter=self.ica_max_iter))
        elif self.kind == "max_sliced_wasserstein":
            self.set_matrix(max_sliced_wasserstein_rotation(x, self.num_directions, seed=self.seed))
        self.initialized.assign(1.0)
        return self

    def get_config(self):
        config = super().get_config()
        config.pop("num_reflections", None)
        return {
            **config,
            "kind": self.kind,
            "ica_max_iter": self.ica_max_iter,
            "num_directions": self.num_directions,
        }
