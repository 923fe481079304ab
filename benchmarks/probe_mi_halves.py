"""Is the k-NN MI estimate's remaining bias a finite-sample bias? (issue 28, the interval's
coverage). For cases where tfflows' mean estimate misses the truth while its interval is wider
than the seed-to-seed spread, compare the estimate on all n = 5,000 rows with the mean of the
estimates on the two halves (2,500 rows each), 2 seeds. A bias that shrinks with n shows as
full - halves of the size of the bias (Richardson: 2 full - halves removes a 1/n bias).

    python benchmarks/probe_mi_halves.py
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import information_families as fam  # noqa: E402
from tfflows.gaussianization import information as info  # noqa: E402
want = ["additive uniform eps=0.1", "log-normal scale 5x5 sigma=1.0", "multiplicative exp(U(-0.2,0.2))",
        "circle 2x1 rho=0.9 noise=0.05", "additive Gaussian on U(0,1)^5 sigma=0.3", "dense 5x5", "Student-t 2x2 df=1", "swiss roll 2x1 noise=0.05"]
cases = {c.name: c for c in fam.cases(False)}
for name in want:
    c = cases[name]
    out = []
    for seed in range(2):
        x, y = c.sample(seed, 5000)
        full = info.mutual_information(x, y, seed=seed)
        halves = np.mean([info.mutual_information(x[i::2], y[i::2], seed=seed) for i in (0, 1)])
        out.append((full, halves))
    f = np.mean([o[0] for o in out]); h = np.mean([o[1] for o in out])
    print(f"{name:45s} truth {c.truth:.3f} full {f:.3f} (bias {f-c.truth:+.3f}) halves {h:.3f} diff {f-h:+.3f} richardson(a=1) {2*f-h:.3f}", flush=True)
