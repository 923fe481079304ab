"""The normal CDF and its inverse in log space (keras.ops; float64 recommended):
`log_ndtr(y)` = log Phi(y) and `ndtri_from_logs(log F, log(1 - F))` = Phi^-1(F), finite
and accurate for every finite input, however far in the tails."""

import numpy as np
from keras import ops

from tfflows._math import LOG_2PI

_SQRT2 = float(np.sqrt(2.0))
_ASYMPTOTIC = -20.0  # below this, log Phi uses its asymptotic series (erfc underflows later)


def _log_mills_lower(y):
    """log Phi(y) - log phi(y) (log of the Mills ratio at -y), finite for every finite y:
    through erfc above `_ASYMPTOTIC`, through the asymptotic series below it."""
    y_mid = ops.maximum(y, _ASYMPTOTIC)
    mid = ops.log(0.5 * ops.erfc(-y_mid / _SQRT2)) + 0.5 * ops.square(y_mid) + 0.5 * LOG_2PI
    y_tail = ops.minimum(y, _ASYMPTOTIC)
    r = 1.0 / ops.square(y_tail)
    series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r))))
    tail = ops.log(series) - ops.log(-y_tail)
    return ops.where(y >= _ASYMPTOTIC, mid, tail)


def log_phi(y):
    return -0.5 * ops.square(y) - 0.5 * LOG_2PI


def log_ndtr(y):
    """log Phi(y), finite for every finite y, accurate in both tails (float64 recommended)."""
    neg = ops.minimum(y, 0.0)
    pos = ops.minimum(-y, 0.0)
    return ops.where(
        y <= 0,
        log_phi(neg) + _log_mills_lower(neg),
        ops.log1p(-ops.exp(log_phi(pos) + _log_mills_lower(pos))),
    )


def _ndtri_lower(log_p, newton_steps=3):
    """Phi^-1(exp(log_p)) for log_p <= log(1/2) (a value <= 0), by a closed-form start
    (erfinv in the body, the asymptotic expansion in the tail) and Newton steps on
    log Phi, which is concave, so the steps converge from either side."""
    log_p = ops.minimum(log_p, float(np.log(0.5)))
    p = ops.exp(ops.maximum(log_p, -30.0))
    body = _SQRT2 * ops.erfinv(2.0 * p - 1.0)
    t = -2.0 * ops.minimum(log_p, -1.0)
    tail = -ops.sqrt(ops.maximum(t - ops.log(t) - LOG_2PI, 1.0))
    y = ops.where(log_p > -30.0, body, tail)
    for _ in range(newton_steps):
        log_mills = _log_mills_lower(y)
        y = y - (log_phi(y) + log_mills - log_p) * ops.exp(log_mills)
        y = ops.minimum(y, 0.0)
    return y


def ndtri_from_logs(log_cdf, log_sf):
    """Phi^-1(F) from log F and log(1 - F), using the smaller tail for precision."""
    y = _ndtri_lower(ops.minimum(log_cdf, log_sf))
    return ops.where(log_cdf <= log_sf, y, -y)
