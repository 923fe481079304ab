"""The kernel-smoothed CDF and density that every spline `MarginalGaussianization` fit reads
(`marginal_fit.SampleSummary.kernel_cdf_pdf`) above 4,096 rows: tfflows' linear binning on
a uniform grid of spacing h / 16 against the exact sums and against the 4,096-bin asinh
histogram (`sketches.HistogramSketch`) that tfflows used before (the peer).

    python benchmarks/bench_kernel_sums.py [--rows 10000] [--out benchmarks/results/kernel_sums_<date>.md]

Columns: normal, Student t3, exponential, lognormal (sigma 1.5), a normal with a narrow spike
(30% of the mass at 3 +- 0.05), and the standardized columns of the suite's 64-D synthetic
sets (what the first block of an RBIG fit reads). Error: the largest change, over columns
and the 16 knots, of the fitted knots of the marginal map (y_k = Phi^-1(F_hat(x_k)), and
log d_k, d_k its slope) against the exact kernel sums, with shrinkage 0 (the raw map) and
0.4 (RBIG's default). Time: the kernel sums of 64 columns, the histogram's filling included.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import report  # noqa: E402
import suite_data  # noqa: E402
from tfflows.gaussianization.marginal_fit import SampleSummary, smoothed_cdf_knots  # noqa: E402


def families(rows, rng):
    spike = np.where(rng.random((rows, 64)) < 0.3, 3 + 0.05 * rng.normal(size=(rows, 64)), rng.normal(size=(rows, 64)))
    return {"normal": rng.normal(size=(rows, 64)), "student t3": rng.standard_t(3, size=(rows, 64)),
            "exponential": rng.exponential(size=(rows, 64)), "lognormal": np.exp(1.5 * rng.normal(size=(rows, 64))),
            "spike": spike}


def suite_columns(rows):
    out = {}
    for name in ("copula64", "student64", "gmm64"):
        train = suite_data.load(name, 0, rows=int(round(rows / suite_data.FRACTIONS[0]))).train
        out[name] = np.asarray(train, "float64")[:rows]
    return out


class Summed(SampleSummary):
    """A SampleSummary whose kernel sums come from `how`: exact, asinh histogram or tfflows'."""

    def __init__(self, x, how):
        super().__init__(x)
        self.how = how

    def kernel_cdf_pdf(self, points, h):
        if self.how == "exact":
            return self._exact_kernel_sums(points, h)
        if self.how == "asinh histogram":  # tfflows' far-outlier path, on every column
            return self._histogram_kernel_sums(points, h, np.ones(len(points), dtype=bool))
        return super().kernel_cdf_pdf(points, h)


def measure(x):
    """{method: (max |dy|, max |dlog d| at shrinkage 0, same at 0.4, ms)} for the columns x."""
    out = {}
    reference = {s: smoothed_cdf_knots(Summed(x, "exact"), 16, 1.5, s) for s in (0.0, 0.4)}
    for how in ("asinh histogram", "tfflows"):
        errors = []
        for s in (0.0, 0.4):
            _, y, slope = smoothed_cdf_knots(Summed(x, how), 16, 1.5, s)
            _, y0, slope0 = reference[s]
            errors += [np.abs(y - y0).max(), np.abs(np.log(slope / slope0)).max()]
        summary = Summed(x, how)
        start = time.perf_counter()
        for _ in range(5):
            smoothed_cdf_knots(summary, 16, 1.5, 0.4)
        out[how] = (*errors, (time.perf_counter() - start) / 5 * 1e3)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 500 rows (page: a new *_quick.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.rows = 500
    data = {**families(args.rows, np.random.default_rng(0)), **suite_columns(args.rows)}
    lines = [f"# Kernel sums of the spline marginal fit, {args.rows} rows x 64 columns", "", *report.machine_header(),
             "", f"`{report.command_line('bench_kernel_sums.py', argv)}`", "",
             "Largest change of the knots against the exact kernel sums (shrinkage 0 / 0.4); time of one 64-column "
             "fit of the knots (ms).", "",
             "| columns | method | max abs dy (0) | max abs dlog slope (0) | max abs dy (0.4) | "
             "max abs dlog slope (0.4) | ms |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, x in data.items():
        for how, (dy0, ds0, dy4, ds4, ms) in measure(x).items():
            lines.append(f"| {name} | {how} | {dy0:.1e} | {ds0:.1e} | {dy4:.1e} | {ds4:.1e} | {ms:.1f} |")
        print(lines[-2], lines[-1], sep="\n", flush=True)
    text = "\n".join(lines) + "\n"
    report.write(args.out or report.default_out("kernel_sums", quick=args.quick), text)
    print(text)


if __name__ == "__main__":
    main()
