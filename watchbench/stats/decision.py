"""The one decision function: did the candidate move a metric, by how much, and how sure.

``ci``, ``compare``, per-patch steps and bisect all decide here. The design:

* **The boot is the unit.** Repeats inside one boot share that boot's state (page layout,
  timer phase, what the other vCPU did), so they are not independent. Each boot is
  summarised per metric by the median of the log values of its repeats (``boot_logs``);
  the within-boot spread is reported, never used as independent evidence.
* **Rounds are paired.** Round *i* boots the baseline and the candidate back to back, so
  the change is the mean of the per-round log ratios ``d_i = log B_i - log A_i`` with a
  paired Student t interval (Student 1908). Boots without round numbers (``./wb compare``
  of arbitrary runs) use Welch's unpaired interval (Welch 1947).
* **A symmetric margin in log space.** ``delta = log(1 + threshold)``; the verdict compares
  the interval with ``(-delta, +delta)`` (equivalence testing with intervals, Schuirmann
  1987): *unchanged* when the interval lies inside, *regressed*/*improved* when it
  excludes 0 and reaches the margin, *undecided* otherwise. Working in logs makes a metric
  and its reciprocal (``ns_per_op`` and ``ops_per_s``) mirror images with one verdict.
* **Degenerate data.** Under icount boots are often identical to the last digit. The
  spread used is never below ``noise_floor`` per boot (0.1 %, under the 0.17 % between-
  boot CV measured under icount), so a zero-width interval never claims more certainty
  than the machine has, a deterministic +6 % is regressed and a deterministic +0.2 % is
  unchanged.
* **Multiplicity and looks.** A family of ``m`` gated metrics is tested at ``alpha / m``
  each (Bonferroni: it bounds the family-wise error whatever the correlation, and unlike
  Holm's step-down it has intervals that agree with its decisions). Looks after more
  rounds spend alpha linearly in the rounds (a Lan-DeMets spending function,
  ``alpha * n_k / n_max``), and the pieces add up to alpha, so stopping early does not
  inflate false alarms. The interval, the p-value and the verdict always use one level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np

from watchbench.settings import JUDGEMENT
from watchbench.stats import student

# The smallest between-boot spread (log units, ~relative) the gate believes in.
DEFAULT_POWER = 0.8


class Verdict(StrEnum):
    """What the gate says of one metric; FAILED is the candidate breaking a benchmark."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    UNDECIDED = "undecided"
    FAILED = "failed"

    @property
    def decided(self) -> bool:
        return self is not Verdict.UNDECIDED

    @property
    def fails_gate(self) -> bool:
        return self in (Verdict.REGRESSED, Verdict.FAILED)


@dataclass(frozen=True)
class Decision:
    """Candidate against baseline for one metric.

    ``change`` and the interval are relative (0.1 = +10 %), back-transformed from logs;
    ``level`` is the per-metric significance level the interval and p were taken at
    (the interval is a ``1 - level`` interval) and ``p_adjusted`` is p scaled to the
    family's alpha (significant exactly when ``p_adjusted < alpha``).
    """

    rounds: int
    paired: bool
    change: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    level: float
    mde: float
    spread: float
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Looks:
    """When the gate looks at the data and how much alpha each look may spend.

    ``rounds`` are the cumulative round counts of the looks; a fixed design is one look.
    ``spend(k)`` is look k's share of alpha: ``alpha * (n_k - n_{k-1}) / n_max``.
    """

    rounds: tuple[int, ...]
    alpha: float

    @classmethod
    def fixed(cls, rounds: int, alpha: float) -> Looks:
        return cls((rounds,), alpha)

    @classmethod
    def schedule(cls, first: int, step: int, last: int, alpha: float) -> Looks:
        if first < 2 or step < 1 or last < first:
            raise ValueError(f"bad look schedule: first {first}, step {step}, last {last}")
        points = list(range(first, last + 1, step))
        if points[-1] != last:
            points.append(last)
        return cls(tuple(points), alpha)

    def spend(self, look: int) -> float:
        before = self.rounds[look - 1] if look > 0 else 0
        return self.alpha * (self.rounds[look] - before) / self.rounds[-1]

    def look_at(self, rounds: int) -> int | None:
        """The index of the look made after ``rounds`` rounds, or None."""
        return self.rounds.index(rounds) if rounds in self.rounds else None


def boot_logs(values: Sequence[float]) -> tuple[float, float, int]:
    """One boot's summary: median and SD of the log values of its repeats, and their count.

    Non-positive values have no log: they raise (timings and rates are positive).
    """
    x = np.asarray(values, dtype=float)
    if len(x) == 0 or np.any(x <= 0) or not np.all(np.isfinite(x)):
        raise ValueError(f"boot summary needs positive finite values, got {x[:5]!r}")
    logs = np.log(x)
    sd = float(np.std(logs, ddof=1)) if len(x) > 1 else math.nan
    return float(np.median(logs)), sd, len(x)


def _interval(a: np.ndarray, b: np.ndarray, paired: bool, floor: float
              ) -> tuple[float, float, float, int]:
    """Mean log change, its standard error, the spread behind it and the degrees of freedom."""
    if paired:
        d = b - a
        n = len(d)
        sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
        spread = max(sd, floor * math.sqrt(2)) if n > 1 else math.nan
        return float(np.mean(d)), spread / math.sqrt(n), spread, n - 1
    n_a, n_b = len(a), len(b)
    var_a = max(float(np.var(a, ddof=1)) if n_a > 1 else math.nan, floor**2)
    var_b = max(float(np.var(b, ddof=1)) if n_b > 1 else math.nan, floor**2)
    se2 = var_a / n_a + var_b / n_b
    df = se2**2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1))
    return float(np.mean(b) - np.mean(a)), math.sqrt(se2), math.sqrt((var_a + var_b) / 2), df


def decide(
    a_logs: Sequence[float],
    b_logs: Sequence[float],
    *,
    direction: str,
    threshold: float,
    level: float,
    alpha: float | None = None,
    paired: bool = True,
    noise_floor: float = JUDGEMENT.noise_floor,
    power: float = DEFAULT_POWER,
) -> Decision:
    """Decide candidate boots ``b_logs`` against baseline boots ``a_logs`` (per-boot logs).

    ``paired``: element i of both is round i (equal lengths). ``level`` is this metric's
    significance level at this look (alpha spent / family size); ``alpha`` the family's,
    for ``p_adjusted``. Needs two boots per side.
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction {direction!r} is neither 'lower' nor 'higher'")
    if not 0 < level < 1 or threshold <= 0:
        raise ValueError(f"need 0 < level < 1 and threshold > 0 (got {level}, {threshold})")
    a, b = np.asarray(a_logs, dtype=float), np.asarray(b_logs, dtype=float)
    if paired and len(a) != len(b):
        raise ValueError(f"paired rounds need equal counts, got {len(a)} and {len(b)}")
    rounds = min(len(a), len(b))
    if rounds < 2:
        return Decision(rounds, paired, math.nan, math.nan, math.nan, math.nan, math.nan,
                        level, math.inf, math.nan, Verdict.UNDECIDED,
                        f"{rounds} boot(s) per side: at least 2 are needed")
    mean, se, spread, df = _interval(a, b, paired, noise_floor)
    crit = _t_quantile(1 - level / 2, df)
    lo, hi = mean - crit * se, mean + crit * se
    p = float(2 * student.sf(abs(mean) / se, df))
    family = alpha if alpha is not None else level
    p_adj = min(1.0, p * family / level)
    mde = math.expm1((crit + _t_quantile(power, df)) * se)
    verdict, reason = _verdict(mean, lo, hi, direction, threshold, level)
    return Decision(rounds, paired, math.expm1(mean), math.expm1(lo), math.expm1(hi), p, p_adj,
                    level, mde, spread, verdict, reason)


@lru_cache(maxsize=4096)
def _t_quantile(q: float, df: float) -> float:
    """Student t quantile; cached, the gate asks for the same few again and again."""
    return float(student.ppf(q, df))


def _verdict(mean: float, lo: float, hi: float, direction: str, threshold: float,
             level: float) -> tuple[Verdict, str]:
    delta = math.log1p(threshold)
    shown = f"{1 - level:.4g} CI [{math.expm1(lo):+.2%}, {math.expm1(hi):+.2%}]"
    if -delta < lo and hi < delta:
        small = " (a significant shift, below the threshold)" if lo > 0 or hi < 0 else ""
        return Verdict.UNCHANGED, f"{shown} inside +/-{threshold:.0%}{small}"
    up, down = lo > 0 and hi >= delta, hi < 0 and lo <= -delta
    if up or down:
        worse = up if direction == "lower" else down
        word = Verdict.REGRESSED if worse else Verdict.IMPROVED
        return word, f"{shown} excludes 0 and reaches {'+' if up else '-'}{threshold:.0%}"
    return Verdict.UNDECIDED, f"{shown} neither excludes 0 nor lies inside +/-{threshold:.0%}"


def noise_figures(boots: dict[str, np.ndarray], within_sd: np.ndarray, repeats: float
                  ) -> dict[str, float]:
    """Between-boot CV, within-boot CV and the effective n per side (Kish 1965).

    ``boots`` maps a side to its per-boot log medians. The between-boot variance is
    pooled over the sides; the intraclass correlation ``rho`` it implies gives the
    design effect ``1 + (k - 1) rho`` of ``k`` repeats per boot, so the effective n per
    side is ``boots * k / (1 + (k - 1) rho)``: about the number of boots when boots
    dominate the noise, the number of samples when they do not.
    """
    parts = [np.var(v, ddof=1) for v in boots.values() if len(v) > 1]
    between = float(np.sqrt(np.mean(parts))) if parts else math.nan
    finite = within_sd[np.isfinite(within_sd)]
    within = float(np.sqrt(np.mean(finite**2))) if len(finite) else math.nan
    k = max(float(repeats), 1.0)
    n_boots = float(np.mean([len(v) for v in boots.values()])) if boots else math.nan
    if math.isfinite(between) and math.isfinite(within) and between + within > 0:
        sigma_b2 = max(between**2 - within**2 / k, 0.0)
        rho = sigma_b2 / (sigma_b2 + within**2) if sigma_b2 + within**2 > 0 else 1.0
        n_eff = n_boots * k / (1 + (k - 1) * rho)
    else:
        n_eff = n_boots
    return {"between_cv": between, "within_cv": within, "n_eff": n_eff}
