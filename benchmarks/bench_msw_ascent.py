"""The max-sliced-Wasserstein ascent of `Rotation(kind="max_sliced_wasserstein")`: objective
reached per number of objective evaluations, heavy-ball momentum (tfflows' default) against
the plain normalized-step ascent tfflows used before (re-implemented here as the peer).

    python benchmarks/bench_msw_ascent.py [--sets copula64,gmm64] [--rows 10000] [--blocks 0,3,10,20]

The inputs are those the rotation of block b of a default `RBIG` greedy fit sees (the
suite's synthetic sets, `rows` training rows): blocks are built from the public layers as
`RBIG` builds them. Score: the summed squared 2-Wasserstein distance to N(0, 1) of the 8
found directions, on all rows (the ascent itself uses a 5,000-row subsample); higher is
better. Evaluation budgets 10, 25, 40 (the default) and 200; seconds for the whole ascent.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from scipy import special  # noqa: E402

import report  # noqa: E402
import suite_data  # noqa: E402

BUDGETS = (10, 25, 40, 200)


def score(x, directions):
    n = len(x)
    q = special.ndtri((np.arange(n) + 0.5) / n)[:, None]
    return float(np.sum(np.mean((np.sort(x @ directions, axis=0) - q) ** 2, axis=0)))


def plain_ascent(x, k, seed, max_iter, step=0.3, tol=1e-6, max_rows=5000):
    """The ascent before 2026-12-03: normalized Riemannian steps, halved on a decrease, stopped
    at a relative gain below tol; same start as tfflows' (principal axes + 4 random bases)."""
    from tfflows.gaussianization.rotations import pca_rotation, random_orthogonal

    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        x = x[rng.choice(len(x), max_rows, replace=False)]
    n, d = x.shape
    quantiles = special.ndtri((np.arange(n) + 0.5) / n)[:, None]
    candidates = np.concatenate([pca_rotation(x)] + [random_orthogonal(d, [seed, i]) for i in range(4)], axis=1)
    scores = np.mean((np.sort(x @ candidates, axis=0) - quantiles) ** 2, axis=0)
    q, r = np.linalg.qr(candidates[:, np.argsort(scores)[::-1][:k]])
    a = q * np.sign(np.diag(r))

    def objective_and_gradient(a):
        proj = x @ a
        order = np.argsort(proj, axis=0)
        residual = np.take_along_axis(proj, order, axis=0) - quantiles
        unsorted = np.empty_like(residual)
        np.put_along_axis(unsorted, order, residual, axis=0)
        return np.sum(np.mean(residual**2, axis=0)), (2.0 / n) * (x.T @ unsorted)

    value, grad = objective_and_gradient(a)
    for _ in range(max_iter - 1):
        sym = a.T @ grad
        riemannian = grad - a @ (0.5 * (sym + sym.T))
        norm = np.linalg.norm(riemannian)
        if norm < 1e-12:
            break
        q, r = np.linalg.qr(a + (step / norm) * riemannian * np.sqrt(k))
        candidate = q * np.sign(np.diag(r))
        new_value, new_grad = objective_and_gradient(candidate)
        if new_value < value:
            step *= 0.5
            if step < 1e-4:
                break
            continue
        gain = new_value - value
        a, value, grad = candidate, new_value, new_grad
        if gain <= tol * max(value, 1e-12):
            break
    return a


def block_inputs(name, rows, blocks, seed=0):
    """{b: the rows the rotation of block b sees} for a default RBIG's blocks."""
    import tfflows as tff

    split = suite_data.load(name, seed, rows=int(round(rows / suite_data.FRACTIONS[0])))
    h, found = split.train, {}
    for i in range(max(blocks) + 1):  # RBIG's defaults (tff.RBIG's signature)
        marginal = tff.MarginalGaussianization(method="spline", num_knots=16, bandwidth=1.5, shrinkage=0.4)
        rotation = tff.Rotation(kind="max_sliced_wasserstein", seed=seed + i)
        h = np.asarray(marginal.fit_from_data(h).forward(h))
        if i in blocks:
            found[i] = h.astype("float64")
        h = np.asarray(rotation.fit_from_data(h).forward(h))
    return found


def main(argv=None):
    from tfflows.gaussianization.rotations import max_sliced_wasserstein_rotation

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="copula64,gmm64")
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--blocks", default="0,3,10,20")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: copula64, 500 rows, blocks 0 and 3 (page: a new *_quick.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.sets, args.rows, args.blocks = "copula64", 500, "0,3"
    blocks = [int(b) for b in args.blocks.split(",")]
    head = " | ".join(f"{m} {b}" for m in ("plain", "momentum") for b in BUDGETS)
    lines = ["# Max-sliced-Wasserstein ascent: objective per evaluation budget", "", *report.machine_header(), "",
             f"`{report.command_line('bench_msw_ascent.py', argv)}`", "",
             "Summed W2^2 of the 8 directions on all rows (higher is better); seconds of the whole ascent in "
             "brackets.", "", f"| set | block | start | {head} |", "|---|---:|---:|" + "---:|" * (2 * len(BUDGETS))]
    for name in suite_data.parse_sets(args.sets):
        for b, x in block_inputs(name, args.rows, blocks).items():
            cells = []
            for method in ("plain", "momentum"):
                for budget in BUDGETS:
                    start = time.perf_counter()
                    if method == "plain":
                        a = plain_ascent(x, 8, b, budget)
                    else:
                        a = max_sliced_wasserstein_rotation(x, 8, seed=b, max_iter=budget)[:, :8]
                    cells.append(f"{score(x, a):.4f} ({time.perf_counter() - start:.2f} s)")
            start_value = score(x, plain_ascent(x, 8, b, 1))
            lines.append(f"| {name} | {b} | {start_value:.4f} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    out = args.out or report.default_out("msw_ascent", quick=args.quick)
    report.write(out, "\n".join(lines))


if __name__ == "__main__":
    main()
