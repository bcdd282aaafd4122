"""Goodness of fit with NumPy alone: Kolmogorov-Smirnov statistics against a
reference CDF, and their critical values.  Every test using these draws from
a fixed seed, so the outcome is deterministic (never flaky); the 0.1% level
only says how far from the reference a correct sampler could plausibly be."""
import math

import numpy as np

# c(alpha) of the asymptotic Kolmogorov distribution at alpha = 0.001
C_001 = math.sqrt(-0.5 * math.log(0.001 / 2))   # 1.9495


def normal_cdf(x):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


def uniform_cdf(low, high):
    return lambda x: np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0)


def gaussian_cdf(mean, std):
    return lambda x: normal_cdf((np.asarray(x, np.float64) - mean) / std)


def truncated_cdf(mean, std, a, b):
    lo, hi = normal_cdf((a - mean) / std), normal_cdf((b - mean) / std)
    return lambda x: np.clip((normal_cdf((np.asarray(x, np.float64) - mean) / std) - lo) / (hi - lo), 0, 1)


def ks_statistic(sample, cdf) -> float:
    """sup |F_n(x) - F(x)| of the one-sample KS test."""
    x = np.sort(np.asarray(sample, dtype=np.float64).ravel())
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def ks_critical(n: int) -> float:
    """Critical value of the one-sample statistic at the 0.1% level."""
    return C_001 / math.sqrt(n)


def ks_2samp(a, b) -> float:
    a, b = np.sort(np.ravel(a)).astype(np.float64), np.sort(np.ravel(b)).astype(np.float64)
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def ks_2samp_critical(n: int, m: int) -> float:
    return C_001 * math.sqrt((n + m) / (n * m))
