#!/usr/bin/env python3
"""False alarms and power of the history's change-point detection, by simulation.

Each trial draws one series of per-entry medians, value = 100 * (1 + noise), the noise
either independent or AR(1) (``e_t = phi e_{t-1} + innovation``, started stationary, its
marginal SD the model's CV), and runs ``stats.changepoints.change_points`` on it with its defaults
(threshold 5 %, alpha 0.01, min_size 3). The table gives, per noise model:

  false alarm   share of stationary ``--length``-point series with >= 1 change point
  step +5 %     share of series with a +5 % step halfway that report a change point
                within ``--slack`` entries of it (and nothing else counts)
  step +10 %    the same for a +10 % step

Autocorrelated noise wanders: runs of high and low entries look like level shifts to a
test that assumes independent points. The detector must stay quiet on those and still
find a real step.

Run: .venv/bin/python bench/scripts/history_simulation.py [--trials 400]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import signal

from watchbench.stats.changepoints import change_points


@dataclass(frozen=True)
class Model:
    name: str
    cv: float
    phi: float = 0.0


MODELS = (
    Model("independent, CV 0.2 %", 0.002),
    Model("independent, CV 5 %", 0.05),
    Model("AR(1) phi 0.6, CV 5 %", 0.05, 0.6),
    Model("AR(1) phi 0.9, CV 2 %", 0.02, 0.9),
)


def noise(model: Model, rng: np.random.Generator, n: int) -> np.ndarray:
    """Stationary noise with marginal SD ``model.cv`` and lag-1 correlation ``phi``."""
    z = rng.normal(0.0, 1.0, n)
    if model.phi == 0:
        return model.cv * z
    scale = math.sqrt(1 - model.phi**2)
    z[0] /= scale  # the first point from the stationary distribution
    return model.cv * scale * signal.lfilter([1.0], [1.0, -model.phi], z)


def series(model: Model, rng: np.random.Generator, n: int, step: float) -> np.ndarray:
    """``n`` entries, the last half ``1 + step`` times the first."""
    level = np.where(np.arange(n) >= n // 2, 1 + step, 1.0)
    return 100 * level * (1 + noise(model, rng, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="series per cell")
    parser.add_argument("--length", type=int, default=50, help="entries per series")
    parser.add_argument("--slack", type=int, default=2, help="entries a found step may be off")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    n, half = args.length, args.length // 2
    print(f"{args.trials} series of {n} entries per cell; steps at entry {half}, found "
          f"within +/-{args.slack}")
    print(f"{'noise model':<24}{'false alarm':>13}{'step +5 %':>12}{'step +10 %':>12}")
    for model in MODELS:
        cells = []
        for step in (0.0, 0.05, 0.10):
            hits = 0
            for _ in range(args.trials):
                found = change_points(series(model, rng, n, step))
                if step == 0:
                    hits += bool(found)
                else:
                    hits += any(abs(cp.index - half) <= args.slack for cp in found)
            cells.append(hits / args.trials)
        print(f"{model.name:<24}{cells[0]:>13.1%}{cells[1]:>12.1%}{cells[2]:>12.1%}")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
