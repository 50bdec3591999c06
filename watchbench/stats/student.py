"""Student's t distribution, from ``scipy.special`` (the functions ``scipy.stats.t`` itself
calls, so the values are the same for 0 < q < 1, all the gate asks): importing
``scipy.stats`` costs about 0.6 s, which every ``wb ci``, ``wb report`` and ``wb bench`` paid
before its first line."""

from __future__ import annotations

import numpy as np
from scipy import special


def ppf(q: float | np.ndarray, df: float | np.ndarray) -> float | np.ndarray:
    """The quantile: P(T <= ppf(q)) = q. NaN where ``df`` is NaN or not positive."""
    return special.stdtrit(df, q)


def sf(x: float | np.ndarray, df: float | np.ndarray) -> float | np.ndarray:
    """P(T > x), computed from the left tail so that tiny p-values keep their digits."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def isf(q: float | np.ndarray, df: float | np.ndarray) -> float | np.ndarray:
    """The upper quantile: P(T > isf(q)) = q."""
    return -special.stdtrit(df, q)
