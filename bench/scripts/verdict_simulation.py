#!/usr/bin/env python3
"""False alarms and power of the CI gate's decision rule, by simulation.

Each trial draws a family of gated metrics (like the `ci` suite's) for up to
``--max-rounds`` paired rounds of boots: value = base * exp(boot effect + repeat noise),
with boot effects correlated across the metrics of one boot (``--rho``), and runs the
gate's own sequential design on them: looks after 4, 6, ... rounds (``CiOptions``
defaults), alpha spent across the looks, every metric decided by ``decision.decide`` at
``spend / m``, decisions locked at the look that made them, stop when every metric is
decided or the answer is final. The table gives, per noise model:

  A/A exit 1   share of A/A trials the gate fails (family-wise false alarms)
  A/A exit 3   share of A/A trials left undecided
  power        share of trials with a true regression on one metric that exit 1
  rounds       median rounds the design used (A/A / with the regression)

A cross-check runs ``--check`` trials of each model through the real frame path
(``stats.compare_frames`` + ``ci.lock_decisions`` + ``stats.gate_exit``) and counts
trials whose answer differs from the array path (must be 0).

Run: .venv/bin/python bench/scripts/verdict_simulation.py [--trials 2000]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from watchbench.flows.ci import CiOptions, lock_decisions
from watchbench.stats.compare import compare_frames, gate_exit
from watchbench.stats.decision import Verdict, decide


@dataclass(frozen=True)
class Model:
    name: str
    boot_cv: float
    within_cv: float
    effect: float  # the true regression the power column is about
    outlier_share: float = 0.0
    outlier_size: float = 0.0
    digits: int = 0  # round values to this many significant digits (icount ties)


MODELS = (
    Model("icount-like", 0.001, 0.0005, 0.05, digits=4),
    Model("KVM-like", 0.02, 0.01, 0.10, outlier_share=0.03, outlier_size=0.30),
    Model("boot-dominated", 0.03, 0.005, 0.10),
    Model("TCG-like", 0.20, 0.03, 0.10),
)


def draw(model: Model, rng: np.random.Generator, metrics: int, rounds: int, repeats: int,
         rho: float, effect: float) -> np.ndarray:
    """values[side, round, metric, repeat]; metric 0 of the candidate carries ``effect``."""
    shared = rng.normal(size=(2, rounds, 1))
    own = rng.normal(size=(2, rounds, metrics))
    boot = model.boot_cv * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * own)
    noise = model.within_cv * rng.normal(size=(2, rounds, metrics, repeats))
    logs = boot[..., None] + noise
    if model.outlier_share:
        hit = rng.random(logs.shape) < model.outlier_share
        logs = logs + hit * math.log1p(model.outlier_size)
    logs[1, :, 0, :] += math.log1p(effect)
    values = 1000.0 * np.exp(logs)
    if model.digits:
        scale = 10.0 ** (np.floor(np.log10(values)) - model.digits + 1)
        values = np.round(values / scale) * scale
    return values


def gate_arrays(values: np.ndarray, options: CiOptions) -> tuple[Verdict, int]:
    """The gate's sequential design on arrays; the answer and the rounds used."""
    looks, judged = options.looks(), options.judgement
    metrics = values.shape[2]
    boot_logs = np.median(np.log(values), axis=3)  # [side, round, metric]
    locked: dict[int, Verdict] = {}
    for k, n in enumerate(looks.rounds):
        level = looks.spend(k) / metrics
        for j in range(metrics):
            if j in locked:
                continue
            d = decide(boot_logs[0, :n, j], boot_logs[1, :n, j], direction="lower",
                       threshold=judged.threshold, level=level, alpha=judged.alpha,
                       noise_floor=judged.noise_floor)
            if d.verdict.decided:
                locked[j] = d.verdict
        verdicts = [locked.get(j, Verdict.UNDECIDED) for j in range(metrics)]
        answer = _answer(verdicts)
        if len(locked) == metrics or answer is Verdict.REGRESSED:
            return answer, n
    return _answer(verdicts), looks.rounds[-1]


def _answer(verdicts: list[Verdict]) -> Verdict:
    for v in (Verdict.REGRESSED, Verdict.UNDECIDED):
        if v in verdicts:
            return v
    return Verdict.UNCHANGED


def gate_frames(values: np.ndarray, options: CiOptions) -> Verdict:
    """The same trial through compare_frames / lock_decisions / gate_exit (the real path)."""
    looks = options.looks()
    rows = []
    for side, name in enumerate(("a", "b")):
        for r in range(values.shape[1]):
            for j in range(values.shape[2]):
                for i, v in enumerate(values[side, r, j]):
                    rows.append((f"{name}{r}", r, f"m{j}", i, float(v)))
    df = pd.DataFrame(rows, columns=["run_id", "ci_round", "params", "iteration", "value"])
    df = df.assign(benchmark="sim", metric="ns_per_op", unit="ns", direction="lower",
                   accel="icount", status="ok", reason="", primary=True, ci_id="sim")
    decisions = None
    for k, n in enumerate(looks.rounds):
        part = df[df["ci_round"] < n]
        look = compare_frames(part, [f"a{r}" for r in range(n)], [f"b{r}" for r in range(n)],
                              judgement=options.judgement, spend=looks.spend(k))
        decisions = lock_decisions(decisions, look, n)
        answer = gate_exit(decisions)
        if (decisions["verdict"] != Verdict.UNDECIDED).all() or answer is Verdict.REGRESSED:
            return answer
    return gate_exit(decisions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per cell")
    parser.add_argument("--metrics", type=int, default=11, help="gated metrics in the family")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per boot")
    parser.add_argument("--rho", type=float, default=0.5,
                        help="correlation of boot effects across the metrics of one boot")
    parser.add_argument("--check", type=int, default=20,
                        help="trials per model also run through the frame path")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    options = CiOptions(series="")
    print(f"{args.trials} trials per cell, {args.metrics} gated metrics, {args.repeats} "
          f"repeats per boot, rho {args.rho}; threshold {options.judgement.threshold:.0%}, "
          f"alpha {options.judgement.alpha:g}, looks at {', '.join(map(str, options.looks().rounds))} rounds")
    head = (f"{'model':15} {'boot/within':>12} {'A/A exit 1':>10} {'A/A exit 3':>10} "
            f"{'effect':>6} {'power':>6} {'rounds':>7}")
    print(head)
    print("-" * len(head))
    start = time.monotonic()
    rng = np.random.default_rng(args.seed)
    mismatches = 0
    for model in MODELS:
        aa, hit, rounds_aa, rounds_hit = [], [], [], []
        for _ in range(args.trials):
            answer, n = gate_arrays(draw(model, rng, args.metrics, options.max_rounds,
                                         args.repeats, args.rho, 0.0), options)
            aa.append(answer)
            rounds_aa.append(n)
            answer, n = gate_arrays(draw(model, rng, args.metrics, options.max_rounds,
                                         args.repeats, args.rho, model.effect), options)
            hit.append(answer is Verdict.REGRESSED)
            rounds_hit.append(n)
        for effect in (0.0, model.effect)[: 2 if args.check else 0]:
            for _ in range(args.check):
                values = draw(model, rng, args.metrics, options.max_rounds, args.repeats,
                              args.rho, effect)
                mismatches += gate_arrays(values, options)[0] != gate_frames(values, options)
        fa = np.mean([a is Verdict.REGRESSED for a in aa])
        und = np.mean([a is Verdict.UNDECIDED for a in aa])
        print(f"{model.name:15} {model.boot_cv:>6.1%}/{model.within_cv:<5.2%} {fa:>10.2%} "
              f"{und:>10.1%} {model.effect:>6.0%} {np.mean(hit):>6.1%} "
              f"{np.median(rounds_aa):>3.0f}/{np.median(rounds_hit):<3.0f}")
    print(f"frame-path cross-check: {mismatches} of {2 * args.check * len(MODELS)} trials "
          f"differ; {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
