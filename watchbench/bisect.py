"""`inv bisect`: find the commit that made a benchmark slower, with git bisect and our
measurement, saying at each step how sure the classification is.

Each step builds the commit (incrementally, content-keyed), boots it ``rounds`` times and
decides its boots against those of the known-good and the known-bad commit with the gate's
own decision function (``decision.decide``, boots unpaired): unchanged from good and not
from bad is good, the reverse is bad; anything else goes to the nearer side and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from watchbench import tree as trees
from watchbench.benchrun import run_bench
from watchbench.build import build
from watchbench.configure import configure, fragments_for
from watchbench.decision import Decision, Verdict, decide
from watchbench.errors import InputError, TreeError
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.settings import Settings
from watchbench.stats import boot_table

FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)


@dataclass
class Step:
    commit: str
    subject: str
    median: float
    verdict: str  # good | bad
    vs_good: Decision
    vs_bad: Decision
    sure: bool  # both decisions agree; False: the nearer side was taken

    def describe(self) -> str:
        how = "sure" if self.sure else "nearer side, not decided"
        return (f"{self.commit[:12]} {self.verdict:4}  median {self.median:,.1f}  ({how}: vs good "
                f"{self.vs_good.verdict} {self.vs_good.change:+.1%}, vs bad "
                f"{self.vs_bad.verdict} {self.vs_bad.change:+.1%})  {self.subject}")


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
        """The per-boot log medians of the metric at ``commit`` (one per boot)."""
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
        boots = boot_table(rows, {"commit": ids})  # the gate's own boot summary
        if boots["log_median"].isna().any():
            raise InputError(f"{self.benchmark} {self.metric} has values <= 0 at {commit[:12]}",
                             hint="bisect a timing or a rate: it is judged in relative terms")
        return boots["log_median"].to_numpy(dtype=float)


def classify(boots: np.ndarray, good: np.ndarray, bad: np.ndarray, *, direction: str = "lower",
             threshold: float = 0.05, alpha: float = 0.01) -> tuple[str, Decision, Decision, bool]:
    """good or bad for one commit's per-boot log medians (pure).

    Unchanged from good while not unchanged from bad is good, the reverse is bad; when
    the decisions do not say (both or neither unchanged, or undecided), the side whose
    mean log level is nearer is taken and ``sure`` is False.
    """
    options = {"direction": direction, "threshold": threshold, "level": alpha, "paired": False}
    vs_good, vs_bad = decide(good, boots, **options), decide(bad, boots, **options)
    same_good = vs_good.verdict is Verdict.UNCHANGED
    same_bad = vs_bad.verdict is Verdict.UNCHANGED
    if same_good != same_bad:
        return ("good" if same_good else "bad"), vs_good, vs_bad, True
    level = np.mean(boots)
    nearer = "bad" if abs(level - np.mean(bad)) < abs(level - np.mean(good)) else "good"
    return nearer, vs_good, vs_bad, False


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
        ends = decide(good_samples, bad_samples, direction="lower", threshold=0.05, level=0.01,
                      paired=False)
        progress.step(f"good median {np.exp(np.mean(good_samples)):,.1f}, bad median "
                      f"{np.exp(np.mean(bad_samples)):,.1f} (bad vs good: {ends.verdict}, "
                      f"{ends.change:+.1%})")
        if ends.verdict is Verdict.UNCHANGED:
            raise InputError(f"--bad {bad} is not distinguishable from --good {good}: "
                             f"{ends.reason}", hint="check the metric, or add --rounds")
        git("bisect", "start", bad_id, good_id)
        while True:
            commit = git.head()
            samples = measure.samples(commit)
            verdict, vs_good, vs_bad, sure = classify(samples, good_samples, bad_samples)
            subject = git.out("log", "-1", "--format=%s", commit)
            steps.append(Step(commit, subject, float(np.exp(np.mean(samples))), verdict,
                              vs_good, vs_bad, sure))
            progress.step(steps[-1].describe())
            git("checkout", "-q", "--detach", commit)
            answer = git("bisect", verdict)
            found = FIRST_BAD.search(answer.stdout)
            if found:
                return git.rev(found[1]) or found[1], steps
    finally:
        git("bisect", "reset", check=False)
        git("checkout", "-q", "--detach", prior, check=False)
