"""`inv bisect`: find the commit that made a benchmark slower, with git bisect and our
measurement, saying at each step how sure the classification is.

Each step builds the commit (incrementally, content-keyed), boots it ``rounds`` times and
compares its samples with those of the known-good and known-bad commits (Mann-Whitney U);
the commit is called bad when its median is closer to the bad one's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from watchbench import tree as trees
from watchbench.benchrun import run_bench
from watchbench.build import build
from watchbench.configure import configure, fragments_for
from watchbench.errors import InputError, TreeError
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.settings import Settings

FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)


@dataclass
class Step:
    commit: str
    subject: str
    median: float
    verdict: str  # good | bad
    p_vs_good: float
    p_vs_bad: float

    def describe(self) -> str:
        sure = self.p_vs_good if self.verdict == "bad" else self.p_vs_bad
        return (f"{self.commit[:12]} {self.verdict:4}  median {self.median:,.1f}  "
                f"(differs from the other side with p={sure:.2g}; "
                f"p vs good {self.p_vs_good:.2g}, vs bad {self.p_vs_bad:.2g})  {self.subject}")


@dataclass
class Measure:
    """How one commit's samples are taken: build, boot ``rounds`` times, pick one metric."""

    settings: Settings
    benchmark: str
    metric: str
    params: str
    suite: str
    accel: str
    rounds: int
    runner: Runner
    progress: Progress

    def samples(self, commit: str) -> np.ndarray:
        from watchbench.results import load_runs

        tree = trees.active(self.settings)
        tree.git(self.runner)("checkout", "-q", "--detach", commit)
        configure(tree, self.settings, fragments_for(self.settings, tree), self.runner)
        kernel = build(self.settings, tree, self.runner, self.progress)
        ids = [run_bench(self.settings, self.suite, self.accel, label=f"bisect {commit[:12]}",
                         kernel=kernel, runner=self.runner, progress=self.progress).name
               for _ in range(self.rounds)]
        df = load_runs(self.settings.runs_dir, run_ids=ids)
        rows = df[(df["benchmark"].astype(str) == self.benchmark)
                  & (df["metric"].astype(str) == self.metric) & (df["status"] == "ok")]
        if self.params:
            rows = rows[rows["params"].astype(str) == self.params]
        if rows.empty:
            raise InputError(f"no ok samples of {self.benchmark} {self.metric} {self.params} "
                             f"at {commit[:12]}",
                             hint="check --benchmark/--metric/--params against `inv compare` output")
        if rows["params"].nunique() > 1:
            choices = ", ".join(sorted(rows["params"].astype(str).unique())[:6])
            raise InputError(f"{self.benchmark} {self.metric} has several parameter sets; pick one "
                             f"with --params", hint=f"for example: {choices}")
        return rows["value"].to_numpy(dtype=float)


def classify(samples: np.ndarray, good: np.ndarray, bad: np.ndarray) -> tuple[str, float, float]:
    """good/bad by the nearer median, with both Mann-Whitney p-values (pure)."""
    p_good = float(sps.mannwhitneyu(samples, good, alternative="two-sided").pvalue)
    p_bad = float(sps.mannwhitneyu(samples, bad, alternative="two-sided").pvalue)
    med = np.median(samples)
    verdict = "bad" if abs(med - np.median(bad)) < abs(med - np.median(good)) else "good"
    return verdict, p_good, p_bad


def bisect(settings: Settings, good: str, bad: str, benchmark: str, metric: str = "ns_per_op",
           params: str = "", suite: str = "ci", accel: str = "icount", rounds: int = 3,
           runner: Runner = default_runner, progress: Progress | None = None) -> tuple[str, list[Step]]:
    """Return (first bad commit, the steps taken). The tree is put back where it was."""
    progress = progress or Progress("bisect")
    tree = trees.active(settings)
    git = tree.git(runner)
    if git.dirty():
        raise TreeError(f"{tree.src} has uncommitted changes", hint="commit or discard them first")
    good_id, bad_id = git.rev(good), git.rev(bad)
    if not good_id or not bad_id:
        raise InputError(f"--good {good!r} or --bad {bad!r} is not a commit in {tree.src}")
    prior = git.head()
    measure = Measure(settings, benchmark, metric, params, suite, accel, rounds, runner, progress)
    steps: list[Step] = []
    try:
        progress.step(f"measuring good {good} and bad {bad} ({rounds} boots each)")
        good_samples, bad_samples = measure.samples(good_id), measure.samples(bad_id)
        verdict, p_good, p_bad = classify(bad_samples, good_samples, bad_samples)
        progress.step(f"good median {np.median(good_samples):,.1f}, bad median "
                      f"{np.median(bad_samples):,.1f} (p={p_good:.2g})")
        git("bisect", "start", bad_id, good_id)
        while True:
            commit = git.head()
            samples = measure.samples(commit)
            verdict, p_good, p_bad = classify(samples, good_samples, bad_samples)
            subject = git.out("log", "-1", "--format=%s", commit)
            steps.append(Step(commit, subject, float(np.median(samples)), verdict, p_good, p_bad))
            progress.step(steps[-1].describe())
            git("checkout", "-q", "--detach", commit)
            answer = git("bisect", verdict)
            found = FIRST_BAD.search(answer.stdout)
            if found:
                return git.rev(found[1]) or found[1], steps
    finally:
        git("bisect", "reset", check=False)
        git("checkout", "-q", "--detach", prior, check=False)
