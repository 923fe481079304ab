"""The 1-D Kozachenko-Leonenko marginal entropies under `tfflows.information.entropy` and
`kl_divergence`: bias, spread and root-mean-square error per number of neighbours k and
rows n, on marginals with known entropy, and tfflows' rule for k (`information_terms.
neighbours`).

    python benchmarks/bench_marginal_entropy.py [--seeds 40] [--rows 100,500,2000,5000,20000]
        [--out benchmarks/results/marginal_entropy_<date>.md]

Marginals: those of bench_information.py's Gaussian copulas (exponential, uniform, log-normal,
cubed normal), plus the normal, Student t3 and a two-component normal mixture (entropy by
quadrature). For each n, k in 3, 5, 10, 20 and tfflows' rule; the RMSE column is that of the
sum over the 7 marginals (the error of an entropy of 7 such features).
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from scipy import integrate, special, stats  # noqa: E402

import report  # noqa: E402
from tfflows.gaussianization.information_terms import marginal_entropy_rows, neighbours  # noqa: E402

HALF_LOG_2PIE = 0.5 * math.log(2 * math.pi * math.e)


def _mixture_entropy():
    density = lambda y: 0.5 * stats.norm(-2, 0.5).pdf(y) + 0.5 * stats.norm(2, 1).pdf(y)  # noqa: E731
    return -integrate.quad(lambda y: density(y) * np.log(density(y) + 1e-300), -10, 12, limit=200)[0]


MARGINALS = {  # name: (sampler(rng, n), entropy)
    "exponential": (lambda rng, n: rng.exponential(size=n), 1.0),
    "uniform": (lambda rng, n: rng.random(n), 0.0),
    "lognormal": (lambda rng, n: np.exp(0.5 * rng.normal(size=n)), 0.5 + math.log(0.5 * math.sqrt(2 * math.pi))),
    "cube": (lambda rng, n: rng.normal(size=n) ** 3, HALF_LOG_2PIE + math.log(3) - (np.euler_gamma + math.log(2))),
    "normal": (lambda rng, n: rng.normal(size=n), HALF_LOG_2PIE),
    "t3": (lambda rng, n: rng.standard_t(3, size=n), float(stats.t(3).entropy())),
    "mixture": (lambda rng, n: np.where(rng.random(n) < 0.5, rng.normal(-2, 0.5, n), rng.normal(2, 1, n)),
                _mixture_entropy()),
}


def errors(n, k, seeds):
    """{marginal: array of (estimate - truth) over seeds}."""
    out = {}
    for name, (sample, truth) in MARGINALS.items():
        out[name] = np.array([marginal_entropy_rows(sample(np.random.default_rng([seed, n]), n)[:, None], k=k).mean()
                              - truth for seed in range(seeds)])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=40)
    p.add_argument("--rows", default="100,500,2000,5000,20000")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 seeds, 100 and 500 rows (page: a new *_quick.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.rows = 2, "100,500"
    lines = ["# 1-D Kozachenko-Leonenko marginal entropies", "", *report.machine_header(), "",
             f"`{report.command_line('bench_marginal_entropy.py', argv)}`", "",
             f"bias / s.d. over {args.seeds} seeds per marginal (nats); RMSE of the sum over the {len(MARGINALS)} "
             "marginals; **bold**: the lowest RMSE of the row's n; 'rule' is tfflows' k.", "",
             "| n | k | " + " | ".join(MARGINALS) + " | RMSE of the sum |", "|---:|---|" + "---|" * len(MARGINALS) + "---:|"]
    for n in [int(v) for v in args.rows.split(",")]:
        rows = []
        for k in sorted({3, 5, 10, 20, neighbours(n)}):
            e = errors(n, k, args.seeds)
            rmse = math.sqrt(sum(float(np.mean(v**2)) for v in e.values()))
            label = f"{k} (rule)" if k == neighbours(n) else str(k)
            rows.append((rmse, f"| {n} | {label} | " + " | ".join(f"{v.mean():+.3f} / {v.std():.3f}" for v in e.values())))
        best = min(r for r, _ in rows)
        for rmse, text in rows:
            lines.append(text + (f" | **{rmse:.4f}** |" if rmse == best else f" | {rmse:.4f} |"))
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    report.write(args.out or report.default_out("marginal_entropy", quick=args.quick), text)
    print(text)


if __name__ == "__main__":
    main()
